"""The Asterisk voice-pack readers on a fake tree of raw GSM files, plus one check on the real packages."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources import is_reserved
from speechsep.data.sources.asterisk_prompts import (
    SOUNDS_DIR,
    ArmelleFrench,
    ColombianSpanish,
    non_speech_reason,
)


def _vowel(seconds: float = 0.5, f0: float = 200.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    rng = np.random.default_rng(seed)
    wav = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def _gsm(path: Path, wav: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, 8000, format="RAW", subtype="GSM610")


@pytest.fixture
def french(tmp_path):
    root = tmp_path / "armelle"
    sounds = root / SOUNDS_DIR
    _gsm(sounds / "fr" / "hello-world.gsm", _vowel(seed=1))
    _gsm(sounds / "fr" / "digits" / "1.gsm", _vowel(0.3, 150, seed=2))
    _gsm(sounds / "fr" / "letters" / "a.gsm", _vowel(0.2, 250, seed=3))
    _gsm(sounds / "fr" / "beep.gsm", (0.3 * np.sin(2 * np.pi * 1000 * np.arange(4000) / 8000)).astype(np.float32))
    (sounds / "fr" / "vm-copy.gsm").write_bytes((sounds / "fr" / "hello-world.gsm").read_bytes())
    (sounds / "fr" / "notes.txt").write_text("not a prompt")
    os.symlink("hello-world.gsm", sounds / "fr" / "link.gsm")
    (sounds / "digits").mkdir()
    os.symlink("../fr/digits", sounds / "digits" / "fr")  # as the package installs it: outside fr/
    return root


def test_list_one_speaker_and_skips(french):
    listing = ArmelleFrench().list({"asterisk-prompt-fr-armelle": french})
    assert listing.files_seen == 6  # the .gsm files under fr/, the link included, not the txt
    assert [u.id for u in listing.utterances] == [
        "asterisk-fr-armelle/digits/1", "asterisk-fr-armelle/hello-world", "asterisk-fr-armelle/letters/a",
    ]
    assert {u.speaker for u in listing.utterances} == {"asterisk-fr-armelle/armelle"}
    assert {u.language for u in listing.utterances} == {"fr"}
    assert {u.actor_group for u in listing.utterances} == {""}  # one credited person: own group
    skipped = {Path(p).name: why for p, why in listing.skipped}
    assert skipped == {
        "beep.gsm": "tone/music, not speech",
        "link.gsm": "symbolic link to another file",
        "vm-copy.gsm": f"byte-identical copy of {french / SOUNDS_DIR / 'fr' / 'hello-world.gsm'}",
    }


def test_colombian_pack(tmp_path):
    root = tmp_path / "co"
    _gsm(root / SOUNDS_DIR / "es" / "vm-goodbye.gsm", _vowel(seed=4))
    _gsm(root / SOUNDS_DIR / "es" / "beeperr.gsm", _vowel(0.2, 333, seed=5))
    listing = ColombianSpanish().list({"asterisk-prompt-es-co": root})
    assert [(u.id, u.speaker, u.language) for u in listing.utterances] == [
        ("asterisk-es-co/vm-goodbye", "asterisk-es-co/july", "es")]
    assert [Path(p).name for p, _ in listing.skipped] == ["beeperr.gsm"]


def test_decode_gsm(french):
    source = ArmelleFrench()
    utt = next(u for u in source.list({"asterisk-prompt-fr-armelle": french}).utterances if u.id.endswith("hello-world"))
    wav, sr = source.decode(utt)
    original = _vowel(seed=1)
    assert sr == 8000 and wav.dtype == np.float32 and wav.ndim == 1
    assert len(wav) == 4000  # 25 frames of 160 samples
    assert os.path.getsize(utt.path) == 25 * 33
    # GSM is lossy, but the waveform must still follow the original (codec delay is small)
    best = max(np.corrcoef(wav[lag:], original[:len(original) - lag])[0, 1] for lag in range(0, 40))
    assert best > 0.95


def test_non_speech_names():
    assert non_speech_reason("beep.gsm")
    assert non_speech_reason("moh/fpm-calm-river.gsm")
    assert not non_speech_reason("vm-tooshort.gsm")
    assert not non_speech_reason("digits/1.gsm")


def test_corrupt_file_names_the_file(french):
    source = ArmelleFrench()
    listing = source.list({"asterisk-prompt-fr-armelle": french})
    bad = french / SOUNDS_DIR / "fr" / "letters" / "a.gsm"
    bad.write_bytes(bad.read_bytes()[:50])  # cut inside the second frame
    with pytest.raises(AudioError, match=r"letters/a\.gsm.*GSM"):
        source.decode(next(u for u in listing.utterances if u.path == str(bad)))
    bad.write_bytes(b"")
    with pytest.raises(AudioError, match=r"a\.gsm"):
        source.decode(next(u for u in listing.utterances if u.path == str(bad)))


def test_reads_no_reserved_package():
    for cls in (ArmelleFrench, ColombianSpanish):
        assert cls.packages and not any(is_reserved(p) for p in cls.packages)



@pytest.mark.corpus
@pytest.mark.parametrize("name, kept, minutes", [("asterisk-fr-armelle", 327, 15.0), ("asterisk-es-co", 278, 9.9)])
def test_real_package(name, kept, minutes, real_listing):
    source, listing = real_listing(name)
    assert len(listing.utterances) >= kept
    assert len({u.speaker for u in listing.utterances}) == 1
    reasons = collections.Counter(why.split(" of ")[0] for _, why in listing.skipped)
    if name == "asterisk-es-co":
        assert reasons == {"byte-identical copy": 5, "tone/music, not speech": 2}
    total = 0.0
    for utt in listing.utterances[::10]:
        wav, sr = source.decode(utt)
        assert sr == 8000
        total += len(wav) / sr
    assert total * 10 / 60 > 0.7 * minutes  # every tenth line, scaled: roughly the whole pack
