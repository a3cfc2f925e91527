"""The KLettres reader (and its silence trimming) on a fake package tree, plus one check on the real package."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources import SourceError
from speechsep.data.sources.common import trim_silence
from speechsep.data.sources.klettres import SOUNDS_DIR, KLettres

SR = 44100


def _tone(seed: int, seconds: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * (180 + 30 * seed) * t)).astype(np.float32)


def _padded(seed: int) -> np.ndarray:
    """0.2 s of silence, 0.1 s of tone, 0.3 s of silence: the shape of a KLettres letter."""
    return np.concatenate([np.zeros(int(0.2 * SR), np.float32), _tone(seed), np.zeros(int(0.3 * SR), np.float32)])


@pytest.fixture
def package(tmp_path):
    root = tmp_path / "klettres-data"
    base = root / SOUNDS_DIR
    for i, rel in enumerate([
        "en/alpha/A.ogg",
        "en/syllab/ba.ogg",
        "en_GB/alpha/A.ogg",
        "de/alpha/a.ogg",
        "de/alpha/sz.ogg",  # the man of de/syllab, measured on the real package
        "de/syllab/ba.ogg",
        "pt_BR/alpha/a.ogg",
        "nds/syllab/ba.ogg",
    ]):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _padded(i), SR, format="OGG", subtype="VORBIS")
    # a copy byte for byte under another letter's name
    (base / "en/alpha/B.ogg").write_bytes((base / "en/alpha/A.ogg").read_bytes())
    (base / "en/sounds.xml").write_text("<klettres/>")
    (base / "de.txt").write_text("Ä\n")
    (base / "icons/hicolor/16x16").mkdir(parents=True)
    (base / "icons/hicolor/16x16/x.png").write_bytes(b"\x89PNG")
    (base / "nn").mkdir()  # a language with a sounds.xml and no audio, like the real nn and id
    (base / "nn/sounds.xml").write_text("<klettres/>")
    return root


def test_trim_silence_clean_and_noisy():
    sig = _padded(0)
    out = trim_silence(sig, SR)
    # 0.1 s of tone plus at most 50 ms and one 10 ms frame on each side
    assert int(0.2 * SR) <= len(out) <= int(0.22 * SR)
    assert np.allclose(out[np.abs(out) > 0][:10], _tone(0)[np.abs(_tone(0)) > 0][:10])
    # room noise 35 dB below the tone's RMS: -50 dB would keep it all, the noise-floor rule trims it
    rng = np.random.default_rng(0)
    noisy = sig + (0.5 / np.sqrt(2)) * 10 ** (-35 / 20) * rng.standard_normal(len(sig)).astype(np.float32)
    assert len(trim_silence(noisy, SR)) < int(0.25 * SR)
    silent = np.zeros(SR // 10, np.float32)
    assert trim_silence(silent, SR) is silent


def test_list_speakers_languages_groups_and_skips(package):
    listing = KLettres().list({"klettres-data": package})
    assert listing.files_seen == 9  # the .ogg files only
    got = {u.id: (u.speaker, u.language, u.actor_group) for u in listing.utterances}
    assert got == {
        "klettres/en/alpha/A": ("klettres/en", "en", "kde-voices/en"),
        "klettres/en/syllab/ba": ("klettres/en", "en", "kde-voices/en"),
        "klettres/en_GB/alpha/A": ("klettres/en_GB", "en", "kde-voices/en"),
        "klettres/de/alpha/a": ("klettres/de-alpha", "de", "kde-voices/de"),
        "klettres/de/alpha/sz": ("klettres/de-syllab", "de", "kde-voices/de"),
        "klettres/de/syllab/ba": ("klettres/de-syllab", "de", "kde-voices/de"),
        "klettres/pt_BR/alpha/a": ("klettres/pt_BR", "pt", "kde-voices/pt"),
        "klettres/nds/syllab/ba": ("klettres/nds", "nds", "kde-voices/nds"),
    }
    assert listing.skipped == [(str(package / SOUNDS_DIR / "en/alpha/B.ogg"),
                                f"byte-identical copy of {package / SOUNDS_DIR / 'en/alpha/A.ogg'}")]


def test_decode_trims_and_corrupt_file(package):
    source = KLettres()
    line = next(u for u in source.list({"klettres-data": package}).utterances if u.id == "klettres/de/syllab/ba")
    wav, sr = source.decode(line)
    assert sr == SR and wav.dtype == np.float32 and wav.ndim == 1
    assert int(0.19 * SR) <= len(wav) <= int(0.24 * SR)  # 0.6 s file, 0.1 s tone + margins (Vorbis smears a little)
    tone = _tone(5)
    start = int(np.argmax(np.abs(wav) > 0.05))
    assert np.corrcoef(wav[start:start + len(tone) // 2], tone[: len(tone) // 2])[0, 1] > 0.9
    Path(line.path).write_bytes(b"not an ogg stream")
    with pytest.raises(AudioError, match="syllab/ba.ogg"):
        source.decode(line)


def test_no_audio_raises(tmp_path):  # the missing folder: test_common
    (tmp_path / SOUNDS_DIR / "en").mkdir(parents=True)
    with pytest.raises(SourceError, match="no LANG/alpha"):
        KLettres().list({"klettres-data": tmp_path})



@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing("klettres")
    assert listing.files_seen >= 1800 and len(listing.utterances) >= 1800  # 1,836 in 4:22.12.3-1
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert len(speakers) >= 20
    assert speakers["ml"] > 500 and speakers["es"] > 140
    assert {"de-alpha", "de-syllab", "en", "en_GB", "pt_BR", "nds"} <= set(speakers)
    assert {u.language for u in listing.utterances} >= {"en", "de", "pt", "nds", "ml", "tn", "he", "ar"}
    assert all(u.actor_group == f"kde-voices/{u.language}" for u in listing.utterances)
    line = next(u for u in listing.utterances if u.id == "klettres/en/alpha/A")
    wav, sr = source.decode(line)
    assert sr == 44100 and 0.2 * sr < len(wav) < sf.info(line.path).frames  # trimmed, not emptied
