import json
import math

import numpy as np
import pytest

from speechsep.data import pitch as pitch_mod
from speechsep.data.pitch import PitchSettings, corpus_speaker_pitch, median_pitch, semitones_apart
from speechsep.data.utterances import Utterances

pytest.importorskip("librosa")

SR = 8000


def _voice(f0: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A buzz of harmonics at ``f0`` with a silent half: YIN's period on silence must not count."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    x[: x.size // 2] = 1e-4 * np.random.default_rng(seed).standard_normal(x.size // 2)
    return x.astype(np.float32)


def test_median_pitch_finds_the_fundamental_of_the_voiced_frames():
    for f0 in (95.0, 180.0, 310.0):
        assert median_pitch([_voice(f0), _voice(f0, seed=1)], SR) == pytest.approx(f0, rel=0.03)
    assert math.isnan(median_pitch([np.zeros(100, np.float32)], SR))  # too short to measure


def test_semitones_apart_is_symmetric_and_unknown_pitches_are_never_distinct():
    assert semitones_apart(110.0, 220.0) == pytest.approx(12.0)
    assert semitones_apart(220.0, 110.0) == pytest.approx(12.0)
    assert math.isnan(semitones_apart(math.nan, 110.0)) and not semitones_apart(math.nan, 110.0) >= 0


def _corpus(tmp_path):
    waves = [_voice(120.0), _voice(125.0, seed=2), _voice(240.0)]
    speech = tmp_path / "speech"
    speech.mkdir()
    utts = Utterances(ids=["u0", "u1", "u2"], speakers=["low", "low", "high"], splits=["train"] * 3,
                      lengths=np.array([w.size for w in waves]), sample_rate=SR,
                      paths=[str(tmp_path / f"u{k}.wav") for k in range(3)])
    import soundfile as sf
    for k, w in enumerate(waves):
        sf.write(tmp_path / f"u{k}.wav", w, SR)
    utts.save_table(speech / "utterances.csv")
    return Utterances.load_table(speech / "utterances.csv", SR)


def test_corpus_pitch_is_cached_and_remeasured_when_the_table_or_settings_change(tmp_path, monkeypatch):
    utts = _corpus(tmp_path)
    first = corpus_speaker_pitch(tmp_path, utts)
    assert first["low"] == pytest.approx(122.5, rel=0.04) and first["high"] == pytest.approx(240.0, rel=0.03)
    cache = tmp_path / "speech" / "pitch.json"
    assert json.loads(cache.read_text())["median_hz"]["high"] == pytest.approx(first["high"], abs=0.01)

    calls = []
    real = pitch_mod.speaker_pitch
    monkeypatch.setattr(pitch_mod, "speaker_pitch", lambda u, s=None: calls.append(s) or real(u, s))
    assert corpus_speaker_pitch(tmp_path, utts) == pytest.approx(first, abs=0.01) and calls == []  # read back
    corpus_speaker_pitch(tmp_path, utts, PitchSettings(max_utterances=1))
    assert len(calls) == 1  # other settings: measured again
    cache.write_text("{ not json")
    assert corpus_speaker_pitch(tmp_path, utts, PitchSettings(max_utterances=1))["high"] > 0 and len(calls) == 2
    with pytest.raises(FileNotFoundError, match="utterances.csv"):
        corpus_speaker_pitch(tmp_path / "elsewhere", utts)
