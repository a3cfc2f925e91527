"""The KTuberling reader on a fake package tree (tags, sessions, TTS, copies), plus one check on the real package."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources.ktuberling import SOUNDS_DIR, KTuberling, speaker_of

SR = 44100


def _word(seed: int, sr: int = SR) -> np.ndarray:
    """0.15 s silence, 0.1 s tone, 0.15 s silence."""
    t = np.arange(int(0.1 * sr)) / sr
    tone = (0.4 * np.sin(2 * np.pi * (150 + 25 * seed) * t)).astype(np.float32)
    pad = np.zeros(int(0.15 * sr), np.float32)
    return np.concatenate([pad, tone, pad])


def _write(path: Path, seed: int, *, artist: str = "", date: str = "", comment: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".wav":  # the oldest sets: 8 kHz 16-bit WAV
        sf.write(path, _word(seed, 8000), 8000, format="WAV", subtype="PCM_16")
        return
    with sf.SoundFile(path, "w", SR, 1, format="OGG", subtype="VORBIS") as f:
        for key, value in (("artist", artist), ("date", date), ("comment", comment)):
            if value:
                setattr(f, key, value)
        f.write(_word(seed))


@pytest.fixture
def package(tmp_path):
    root = tmp_path / "ktuberling-data"
    base = root / SOUNDS_DIR
    _write(base / "ca/patata_nas.ogg", 0, artist="Otger Mas")
    _write(base / "ca/patata_ull.ogg", 1, artist="Bernat")  # the same boy as "Bernat Mas"
    _write(base / "ca/moon_lluna.ogg", 2, artist="Bernat Mas")
    _write(base / "ca/tv_cotxe.ogg", 3, artist="Eudald Lladó")
    _write(base / "ca/tv_tren.ogg", 4)  # untagged among tagged voices
    _write(base / "da/blomst.ogg", 5)
    _write(base / "da/tux-fish.ogg", 6, artist="Martha Schou")
    _write(base / "da/xmas_owl.ogg", 7, comment="Processed by SoX")
    _write(base / "ru/ball.ogg", 8, date="2010-11-24")
    _write(base / "ru/tux-fish.ogg", 9, date="2010-12-08")
    _write(base / "ru/egypt_column.ogg", 10)
    _write(base / "sr/nos.ogg", 11)
    (base / "sr@latin").mkdir()
    (base / "sr@latin/nos.ogg").write_bytes((base / "sr/nos.ogg").read_bytes())
    _write(base / "nn/ball.opus", 12)  # CereVoice TTS in the real package
    _write(base / "fr/bouche.wav", 13)
    _write(base / "nds/Ogen.wav", 14)
    (base / "en.soundtheme").write_text('<language code="en"></language>')
    return root


def test_speaker_of():
    empty = {"artist": "", "date": "", "comment": ""}
    assert speaker_of("ca", {**empty, "artist": "Eudald Lladó"}) == "ca-eudald-llado"
    assert speaker_of("ca", {**empty, "artist": "Bernat"}) == "ca-bernat-mas"
    assert speaker_of("ca", empty) is None
    assert speaker_of("da", empty) == "da"
    assert speaker_of("da", {**empty, "comment": "Processed by SoX"}) is None
    assert speaker_of("ru", {**empty, "date": "2010-12-08"}) == "ru-2010-12"
    assert speaker_of("ru", empty) == "ru-2010-11"
    assert speaker_of("sr@latin", empty) == "sr@latin"


def test_list_speakers_languages_groups_and_skips(package):
    base = package / SOUNDS_DIR
    listing = KTuberling().list({"ktuberling-data": package})
    assert listing.files_seen == 16  # audio files only, not the .soundtheme
    got = {u.id: (u.speaker, u.language, u.actor_group) for u in listing.utterances}
    assert got == {
        "ktuberling/ca/patata_nas": ("ktuberling/ca-otger-mas", "ca", "kde-voices/ca"),
        "ktuberling/ca/patata_ull": ("ktuberling/ca-bernat-mas", "ca", "kde-voices/ca"),
        "ktuberling/ca/moon_lluna": ("ktuberling/ca-bernat-mas", "ca", "kde-voices/ca"),
        "ktuberling/ca/tv_cotxe": ("ktuberling/ca-eudald-llado", "ca", "kde-voices/ca"),
        "ktuberling/da/blomst": ("ktuberling/da", "da", "kde-voices/da"),
        "ktuberling/da/tux-fish": ("ktuberling/da-martha-schou", "da", "kde-voices/da"),
        "ktuberling/ru/ball": ("ktuberling/ru-2010-11", "ru", "kde-voices/ru"),
        "ktuberling/ru/egypt_column": ("ktuberling/ru-2010-11", "ru", "kde-voices/ru"),
        "ktuberling/ru/tux-fish": ("ktuberling/ru-2010-12", "ru", "kde-voices/ru"),
        "ktuberling/sr/nos": ("ktuberling/sr", "sr", "kde-voices/sr"),
        "ktuberling/fr/bouche": ("ktuberling/fr", "fr", "kde-voices/fr"),
        "ktuberling/nds/Ogen": ("ktuberling/nds", "nds", "kde-voices/nds"),
    }
    skipped = {Path(p).relative_to(base).as_posix(): why.split(" (")[0].split(" of ")[0] for p, why in listing.skipped}
    assert skipped == {
        "ca/tv_tren.ogg": "no speaker tag in a folder",
        "da/xmas_owl.ogg": "no speaker tag in a folder",
        "sr@latin/nos.ogg": "byte-identical copy",
        "nn/ball.opus": "text-to-speech",
    }


def test_decode_wav_and_ogg_and_corrupt_file(package):
    source = KTuberling()
    lines = {u.id: u for u in source.list({"ktuberling-data": package}).utterances}
    wav, sr = source.decode(lines["ktuberling/fr/bouche"])
    assert sr == 8000 and wav.dtype == np.float32
    assert int(0.2 * 8000) - 80 <= len(wav) <= int(0.2 * 8000) + 80  # 0.1 s tone + 2 x 50 ms, not 0.4 s
    tone = _word(13, 8000)[int(0.15 * 8000):int(0.25 * 8000)]
    start = int(np.argmax(np.abs(wav) > 1e-4))
    assert np.allclose(wav[start:start + 400], tone[np.argmax(np.abs(tone) > 1e-4):][:400], atol=1e-3)
    wav, sr = source.decode(lines["ktuberling/ru/tux-fish"])
    assert sr == SR and len(wav) < int(0.3 * SR)
    line = lines["ktuberling/da/blomst"]
    Path(line.path).write_bytes(b"RIFF garbage")
    with pytest.raises(AudioError, match="blomst.ogg"):
        source.decode(line)



@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing("ktuberling")
    assert listing.files_seen >= 1850  # 1,892 in 4:22.12.3-1
    assert len(listing.utterances) >= 1550  # 1,618
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert {"ca-otger-mas", "ca-bernat-mas", "ca-orestes", "da", "da-martha-schou", "ru-2010-11",
            "ru-2010-12", "lt", "uk", "fr", "sr"} <= set(speakers)
    assert not any(s.startswith(("nn", "sr@", "ca-bernat")) and s != "ca-bernat-mas" for s in speakers)
    assert speakers["da-martha-schou"] == 40 and speakers["lt"] == 167
    reasons = collections.Counter(why.split(" (")[0].split(" of ")[0] for _, why in listing.skipped)
    assert reasons["text-to-speech"] == 190 and reasons["byte-identical copy"] >= 45
    assert all(u.actor_group == f"kde-voices/{u.language}" for u in listing.utterances)
    wav, sr = source.decode(next(u for u in listing.utterances if u.id == "ktuberling/en/ball"))
    assert sr == 44100 and 0.2 * sr < len(wav) < 3 * sr
