"""The Drascula readers on a fake package tree of raw 8-bit files, plus one check on the real packages."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import pytest

from speechsep.audio import AudioError
from speechsep.data.sources import SourceError
from speechsep.data.sources.drascula import (
    ACTOR_GROUP,
    ALS_DIR,
    SAMPLE_RATE,
    DrasculaEnglish,
    DrasculaSpanish,
    speaker_of,
    trim_silence_runs,
)


def _speech(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    samples = rng.integers(1, 255, int(seconds * SAMPLE_RATE), dtype=np.uint8)
    samples[samples == 0x80] = 0x81  # no exact silence inside the "speech"
    return samples.tobytes()


SILENCE = b"\x80"


@pytest.fixture
def english(tmp_path):
    root = tmp_path / "drascula"
    folder = root / ALS_DIR / "en"
    folder.mkdir(parents=True)
    files = {
        # hero line with 0.5 s of exact silence before (cut) and 0.1 s after (kept)
        "1.ALS": SILENCE * int(0.5 * SAMPLE_RATE) + _speech(0.2, 1) + SILENCE * int(0.1 * SAMPLE_RATE),
        "D3.ALS": _speech(0.1, 2),  # Drascula
        "D60.ALS": _speech(0.1, 3),  # hero through talk_hacker
        "D70.ALS": _speech(0.1, 4),  # the blind man
        "D82.ALS": _speech(0.1, 5),  # the bartender's special case
        "D79.ALS": _speech(0.1, 6),  # no confirmed speaker
        "I1.ALS": _speech(0.1, 7),
        "VB2.ALS": _speech(0.1, 7),  # byte-identical to I1
        "S1.ALS": _speech(0.1, 8),
        "F1.ALS": _speech(0.1, 9),
        "B61.ALS": _speech(0.1, 10),
        "readme.txt": b"not audio",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    os.symlink("../en/1.ALS", folder / "2.ALS")
    return root


def test_list_speakers_groups_and_skips(english):
    listing = DrasculaEnglish().list({"drascula": english})
    assert listing.files_seen == 12  # every .ALS, links included; not readme.txt
    got = {Path(u.path).name: u.speaker for u in listing.utterances}
    assert got == {
        "1.ALS": "drascula-en/hero", "D3.ALS": "drascula-en/drascula", "D60.ALS": "drascula-en/hero",
        "D70.ALS": "drascula-en/blind", "D82.ALS": "drascula-en/bartender", "I1.ALS": "drascula-en/igor",
    }
    assert {u.language for u in listing.utterances} == {"en"}
    assert {u.actor_group for u in listing.utterances} == {ACTOR_GROUP}
    assert [u.id for u in listing.utterances][:2] == ["drascula-en/1", "drascula-en/D3"]
    skipped = {Path(p).name: why for p, why in listing.skipped}
    assert set(skipped) == {"2.ALS", "B61.ALS", "D79.ALS", "F1.ALS", "S1.ALS", "VB2.ALS"}
    assert skipped["2.ALS"].startswith("symbolic link")
    assert skipped["S1.ALS"].startswith("sound effect")
    assert skipped["VB2.ALS"] == f"byte-identical copy of {english / ALS_DIR / 'en' / 'I1.ALS'}"


def test_spanish_reads_its_own_folder(english):
    (english / ALS_DIR / "en").rename(english / ALS_DIR / "es")
    listing = DrasculaSpanish().list({"drascula-spanish": english})
    assert len(listing.utterances) == 6
    assert {u.language for u in listing.utterances} == {"es"}
    assert all(u.speaker.startswith("drascula-es/") and u.id.startswith("drascula-es/") for u in listing.utterances)
    # both languages share one actor group: the same studio may have voiced both
    assert {u.actor_group for u in listing.utterances} == {ACTOR_GROUP}
    with pytest.raises(SourceError, match="en"):
        DrasculaEnglish().list({"drascula": english})


def test_decode_cuts_only_long_silence_runs(english):
    source = DrasculaEnglish()
    hero = next(u for u in source.list({"drascula": english}).utterances if u.id == "drascula-en/1")
    wav, sr = source.decode(hero)
    raw = (english / ALS_DIR / "en" / "1.ALS").read_bytes()[int(0.5 * SAMPLE_RATE):]
    expected = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    assert sr == 11025
    assert wav.dtype == np.float32 and wav.ndim == 1
    np.testing.assert_array_equal(wav, expected)  # leading 0.5 s cut, trailing 0.1 s kept


def test_trim_silence_runs():
    sr = 100
    wav = np.concatenate([np.zeros(40), np.ones(5), np.zeros(20), -np.ones(3), np.zeros(31)]).astype(np.float32)
    out = trim_silence_runs(wav, sr, max_run_s=0.3)
    assert len(out) == 5 + 20 + 3  # 40 and 31 zeros > 30 are cut, the inner 20 stay
    short = np.concatenate([np.zeros(30), np.ones(2), np.zeros(30)]).astype(np.float32)
    assert len(trim_silence_runs(short, sr, max_run_s=0.3)) == 62  # runs of exactly 0.3 s stay


def test_speaker_of_names():
    assert speaker_of("304") == ("hero", "")
    assert speaker_of("BJ12") == ("bj", "")
    assert speaker_of("L3") == ("werewolf", "")
    assert speaker_of("D40") == ("drascula", "")
    assert speaker_of("D56")[0] is None
    assert speaker_of("X1")[0] is None
    assert speaker_of("AUX1")[0] is None


def test_corrupt_file_names_the_file(english):
    source = DrasculaEnglish()
    listing = source.list({"drascula": english})
    empty = english / ALS_DIR / "en" / "D3.ALS"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="D3.ALS"):
        source.decode(next(u for u in listing.utterances if u.path == str(empty)))
    silent = english / ALS_DIR / "en" / "I1.ALS"
    silent.write_bytes(SILENCE * 100)
    with pytest.raises(AudioError, match="I1.ALS.*silent"):
        source.decode(next(u for u in listing.utterances if u.path == str(silent)))



@pytest.mark.corpus
@pytest.mark.parametrize("name, minimum, three", [
    ("drascula-en", 750, 145166 - 73959 - 26336),  # ScummVM's own workaround cuts the same 73,959 bytes
    ("drascula-es", 750, None),
])
def test_real_package(name, minimum, three, real_listing):
    source, listing = real_listing(name)
    assert len(listing.utterances) >= minimum
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert {"hero", "drascula", "igor", "vonbraun", "bj", "blind"} <= set(speakers)
    assert speakers.most_common(1)[0][0] == "hero"
    reasons = collections.Counter(why for _, why in listing.skipped)
    assert reasons["sound effect (S*)"] == 15
    line = next(u for u in listing.utterances if u.id == f"{name}/3")
    wav, sr = source.decode(line)
    assert sr == 11025
    assert len(wav) == (three or Path(line.path).stat().st_size)
