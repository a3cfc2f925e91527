"""The Fish Fillets NG readers on a fake package tree of small Ogg files, plus one check on the real packages."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources.fillets import SOUND_DIR, FilletsCzech, FilletsDutch, parse_name

SR = 22050


def _tone(seed: int, seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (150 + 10 * seed) * t)).astype(np.float32)


def _write(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _tone(seed), SR, format="OGG", subtype="VORBIS")


@pytest.fixture
def czech(tmp_path):
    root = tmp_path / "cs"
    sound = root / SOUND_DIR
    for i, rel in enumerate([
        "city/cs/vit-m-hlava.ogg",  # small fish
        "city/cs/vit-v-proc.ogg",  # big fish
        "city/cs/vit-hs-klid1.ogg",  # the statue: minor character
        "city/cs/vit-x-beg.ogg",  # catch-all code: left out
        "linux/cs/1-nebavi.ogg",  # penguin 1, no level prefix
        "fdto/cs/mene-m.ogg",  # speaker last
        "briefcase/cs/help4.ogg",  # the boss's tape
        "keys/cs/rand-0-5-3.ogg",  # numbered dialogue step: script picks the fish
        "share/border/cs/sp-shout_big_00.ogg",  # shout
        "share/blackjokes/cs/smrt-v-4.ogg",  # shared folder, big fish
        "city/en/vit-m-hlava.ogg",  # another language: not looked at
    ]):
        _write(sound / rel, i)
    # the same bytes reused by a second level
    (sound / "city2/cs").mkdir(parents=True)
    (sound / "city2/cs/vit-m-hlava.ogg").write_bytes((sound / "city/cs/vit-m-hlava.ogg").read_bytes())
    (sound / "city/cs/notes.txt").write_text("not audio")
    return root


def test_parse_name():
    assert parse_name("city", "vit-m-hlava") == ("small", "")
    assert parse_name("barrel", "bar_v_fotka") == ("big", "")
    assert parse_name("hanoi", "m-hazet") == ("small", "")
    assert parse_name("fdto", "semafor-v") == ("big", "")
    assert parse_name("gods", "b1-zasah3") == ("gods-b1", "")
    assert parse_name("viking2", "dr-3-chlap") == ("viking2-3", "")
    assert parse_name("briefcase", "kd-silver") == ("briefcase-kd", "")
    assert parse_name("key", "cactus-0big")[0] is None
    assert parse_name("electromagnet", "s-hurt-0") == (None, "scream/shout, not speech")
    assert parse_name("electromagnet", "init-0")[0] is None


def test_list_speakers_groups_and_skips(czech):
    listing = FilletsCzech().list({"fillets-ng-data-cs": czech})
    assert listing.files_seen == 11  # the cs .ogg files only
    got = {f"{Path(u.path).parent.parent.name}/{Path(u.path).name}": u.speaker for u in listing.utterances}
    assert got == {
        "city/vit-m-hlava.ogg": "fillets-cs/small",
        "city/vit-v-proc.ogg": "fillets-cs/big",
        "city/vit-hs-klid1.ogg": "fillets-cs/city-hs",
        "linux/1-nebavi.ogg": "fillets-cs/linux-1",
        "fdto/mene-m.ogg": "fillets-cs/small",
        "briefcase/help4.ogg": "fillets-cs/briefcase-help",
        "blackjokes/smrt-v-4.ogg": "fillets-cs/big",
    }
    assert {u.language for u in listing.utterances} == {"cs"}
    assert {u.actor_group for u in listing.utterances} == {"fillets-cs/cast"}  # one group a Czech dubbing
    assert len({u.id for u in listing.utterances}) == len(listing.utterances)
    reasons = {Path(p).name: why for p, why in listing.skipped}
    assert reasons["vit-x-beg.ogg"].startswith("-x- line")
    assert reasons["rand-0-5-3.ogg"].startswith("numbered dialogue step")
    assert reasons["sp-shout_big_00.ogg"] == "scream/shout, not speech"
    assert reasons["vit-m-hlava.ogg"].startswith("byte-identical copy of")
    assert len(listing.skipped) == 4


def test_dutch_groups_leave_big_fish_alone(tmp_path):
    sound = tmp_path / SOUND_DIR
    for i, rel in enumerate(["city/nl/vit-m-a.ogg", "city/nl/vit-v-b.ogg", "briefcase/nl/help1.ogg"]):
        _write(sound / rel, i)
    listing = FilletsDutch().list({"fillets-ng-data-nl": tmp_path})
    groups = {u.speaker: u.group for u in listing.utterances}
    assert groups == {
        "fillets-nl/small": "fillets-nl/cast",
        "fillets-nl/briefcase-help": "fillets-nl/cast",
        "fillets-nl/big": "fillets-nl/big",
    }
    assert {u.language for u in listing.utterances} == {"nl"}


def test_decode_samples_and_corrupt_file(czech):
    source = FilletsCzech()
    listing = source.list({"fillets-ng-data-cs": czech})
    line = next(u for u in listing.utterances if u.speaker == "fillets-cs/big" and "city" in u.path)
    wav, sr = source.decode(line)
    assert sr == SR and wav.dtype == np.float32 and wav.ndim == 1
    assert len(wav) == len(_tone(1))
    assert np.corrcoef(wav, _tone(1))[0, 1] > 0.99  # lossy, but the same tone
    Path(line.path).write_bytes(b"OggS" + b"\0" * 60)
    with pytest.raises(AudioError, match="vit-v-proc.ogg"):
        source.decode(line)



@pytest.mark.corpus
@pytest.mark.parametrize("name, minimum, groups", [
    ("fillets-cs", 1750, {"fillets-cs/cast"}),
    ("fillets-nl", 1450, {"fillets-nl/cast", "fillets-nl/big"}),
])
def test_real_package(name, minimum, groups, real_listing):
    source, listing = real_listing(name)
    assert len(listing.utterances) >= minimum
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert speakers["small"] > 700 and speakers["big"] > 650  # the two leads, ~40 min each
    assert "briefcase-help" in speakers
    assert {u.group for u in listing.utterances} == groups
    line = next(u for u in listing.utterances if u.id == f"{name}/city/vit-m-hlava") if name == "fillets-cs" \
        else listing.utterances[0]
    wav, sr = source.decode(line)
    assert sr == 22050 and len(wav) > sr // 4
