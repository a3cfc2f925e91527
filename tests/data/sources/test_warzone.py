"""The Warzone 2100 reader on a fake ``base.wz`` zip of small Ogg members, plus one check on the real package."""

from __future__ import annotations

import collections
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources.warzone import DATA_DIR, Warzone2100, classify_member

SR = 11025


def _tone(seed: int, seconds: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (180 + 15 * seed) * t)).astype(np.float32)


def _ogg(seed: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _tone(seed), SR, format="OGG", subtype="VORBIS")
    return buf.getvalue()


MEMBERS = [
    "audio/memressp/research/pcv354.ogg",  # announcer
    "audio/memressp/cmndrvoc/com021.ogg",  # commander
    "audio/memressp/console/pcv480.ogg",
    "audio/tutorial/tut1.ogg",
    "audio/proxmessages/c1prox1.ogg",
    "audio/countdown/5min.ogg",
    "audio/taunts/taunt1/gmeover1.ogg",
    "audio/taunts/taunt2/gmeover2.ogg",
    "audio/taunts/taunt1/haha1.ogg",  # laughter
    "audio/nexus/laugh1.ogg",  # robot voice
    "audio/vtoltalk/v-eloc1.ogg",  # radio chatter
    "audio/sfx/weapons/boom.ogg",  # effect
    "sequenceaudio/res_pow.ogg",  # cutscene soundtrack
    "audio/newfolder/x.ogg",  # unknown folder
]


@pytest.fixture
def package(tmp_path):
    data = tmp_path / "wz" / DATA_DIR
    data.mkdir(parents=True)
    with zipfile.ZipFile(data / "base.wz", "w") as zf:
        for i, member in enumerate(MEMBERS):
            zf.writestr(member, _ogg(i))
        zf.writestr("audio/memressp/missmesg/pcv480.ogg", _ogg(99))  # same line number, other bytes
        zf.writestr("audio/tutorial/tut2.ogg", zf.read("audio/tutorial/tut1.ogg"))  # same bytes
        zf.writestr("audio/tutorial/readme.txt", b"not audio")
    with zipfile.ZipFile(data / "mp.wz", "w") as zf:
        zf.writestr("stats/x.json", b"{}")
    return tmp_path / "wz"


def test_classify_member():
    assert classify_member("audio/memressp/power/pcv341.ogg") == ("announcer", "narrator")
    assert classify_member("audio/memressp/cmndrvoc/7.ogg") == ("commander", "narrator")
    assert classify_member("audio/taunts/taunt3/tme2die3.ogg") == ("taunt3", "taunts-low")
    assert classify_member("audio/taunts/taunt2/hahaha2.ogg") == (None, "laughter, not speech")
    assert classify_member("audio/coltive/col012a.ogg")[0] is None


def test_list_roles_groups_and_skips(package):
    listing = Warzone2100().list({"warzone2100-data": package})
    assert listing.files_seen == len(MEMBERS) + 2  # audio members of every .wz
    got = {u.entry: (u.speaker, u.group) for u in listing.utterances}
    assert got == {
        "audio/memressp/research/pcv354.ogg": ("warzone2100/announcer", "warzone2100/narrator"),
        "audio/memressp/cmndrvoc/com021.ogg": ("warzone2100/commander", "warzone2100/narrator"),
        "audio/memressp/console/pcv480.ogg": ("warzone2100/announcer", "warzone2100/narrator"),
        "audio/tutorial/tut1.ogg": ("warzone2100/tutorial", "warzone2100/narrator"),
        "audio/proxmessages/c1prox1.ogg": ("warzone2100/briefing", "warzone2100/narrator"),
        "audio/countdown/5min.ogg": ("warzone2100/countdown", "warzone2100/narrator"),
        "audio/taunts/taunt1/gmeover1.ogg": ("warzone2100/taunt1", "warzone2100/taunts-low"),
        "audio/taunts/taunt2/gmeover2.ogg": ("warzone2100/taunt2", "warzone2100/narrator"),
    }
    assert {u.language for u in listing.utterances} == {"en"}
    assert all(u.path.endswith("base.wz") for u in listing.utterances)
    assert "warzone2100/audio/tutorial/tut1" in {u.id for u in listing.utterances}
    reasons = {p.split(":", 1)[1]: why for p, why in listing.skipped}
    assert reasons["audio/taunts/taunt1/haha1.ogg"] == "laughter, not speech"
    assert reasons["audio/nexus/laugh1.ogg"].startswith("NEXUS AI voice")
    assert reasons["audio/vtoltalk/v-eloc1.ogg"].startswith("radio chatter")
    assert reasons["audio/sfx/weapons/boom.ogg"] == "sound effect"
    assert reasons["sequenceaudio/res_pow.ogg"].startswith("cutscene soundtrack")
    assert reasons["audio/newfolder/x.ogg"] == "folder not known to hold clean speech"
    assert reasons["audio/memressp/missmesg/pcv480.ogg"].startswith("same console line as")
    assert reasons["audio/tutorial/tut2.ogg"].startswith("byte-identical copy of")
    assert len(listing.skipped) == 8


def test_decode_samples_and_corrupt_member(package):
    source = Warzone2100()
    listing = source.list({"warzone2100-data": package})
    line = next(u for u in listing.utterances if u.entry == "audio/tutorial/tut1.ogg")
    wav, sr = source.decode(line)
    expected = _tone(MEMBERS.index("audio/tutorial/tut1.ogg"))
    assert sr == SR and wav.dtype == np.float32 and wav.shape == expected.shape
    assert np.corrcoef(wav, expected)[0, 1] > 0.99
    archive = Path(line.path)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("audio/tutorial/broken.ogg", b"OggS but not really")
    broken = type(line)(id="x", speaker=line.speaker, language="en", path=str(archive), entry="audio/tutorial/broken.ogg")
    with pytest.raises(AudioError, match="base.wz:audio/tutorial/broken.ogg"):
        source.decode(broken)
    missing = type(line)(id="y", speaker=line.speaker, language="en", path=str(archive), entry="audio/none.ogg")
    with pytest.raises(AudioError, match="audio/none.ogg"):
        source.decode(missing)



@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing("warzone2100")
    assert listing.files_seen >= 550
    assert len(listing.utterances) >= 380
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert speakers["tutorial"] == 80 and speakers["announcer"] > 200
    assert set(speakers) == {"announcer", "commander", "countdown", "tutorial", "briefing", "taunt1", "taunt2", "taunt3"}
    reasons = collections.Counter(why.split(" as ")[0] for _, why in listing.skipped)
    assert reasons["same console line"] == 6  # console and missmesg share pcv480-486
    line = next(u for u in listing.utterances if u.entry == "audio/tutorial/tut1.ogg")
    wav, sr = source.decode(line)
    assert sr == 11025 and 2 * sr < len(wav) < 5 * sr
