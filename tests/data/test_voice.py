import sys

import numpy as np
import pytest

from speechsep.data.mixing import MixingConfig, synthesize
from speechsep.data.voice import VoiceShift, change_voice, random_voice_shift

pytest.importorskip("parselmouth")  # an optional dependency (speechsep[voice]); `make setup` installs it
import parselmouth  # noqa: E402
from parselmouth.praat import call  # noqa: E402

SR = 8000


def _vowel(f0=120.0, formants=(600.0, 1200.0, 2400.0), seconds=1.0):
    """A sustained synthetic vowel: a glottal pulse train through three formant resonators."""
    from scipy.signal import lfilter

    n = int(seconds * SR)
    x = np.zeros(n)
    x[(np.arange(0, seconds, 1 / f0) * SR).astype(int)] = 1.0
    for f in formants:  # a two-pole resonator of 80 Hz bandwidth per formant
        r = np.exp(-np.pi * 80.0 / SR)
        x = lfilter([1.0 - r], [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _pitch(x):
    return call(parselmouth.Sound(x.astype(np.float64), SR).to_pitch(None, 75.0, 600.0), "Get quantile", 0, 0, 0.5,
                "Hertz")


def _first_formant(x):
    formant = parselmouth.Sound(x.astype(np.float64), SR).to_formant_burg(0.01, 4, 3800.0, 0.025, 50.0)
    return float(np.nanmedian([formant.get_value_at_time(1, t) for t in formant.ts()]))


def test_a_pitch_shift_moves_the_pitch_by_its_semitones_and_keeps_the_formants():
    x = _vowel()
    y = change_voice(x, SR, VoiceShift(pitch_semitones=4.0))
    assert y.shape == x.shape and y.dtype == np.float32
    assert _pitch(y) / _pitch(x) == pytest.approx(2 ** (4 / 12), rel=0.03)
    assert _first_formant(y) == pytest.approx(_first_formant(x), rel=0.05)


def test_a_formant_shift_moves_the_formants_and_keeps_the_pitch():
    x = _vowel()
    y = change_voice(x, SR, VoiceShift(formant_ratio=1.15))
    assert y.shape == x.shape
    assert _first_formant(y) / _first_formant(x) == pytest.approx(1.15, rel=0.05)
    assert _pitch(y) == pytest.approx(_pitch(x), rel=0.03)


def test_identity_silence_and_bad_input():
    x = _vowel()
    assert change_voice(x, SR, VoiceShift()) is x
    silent = np.zeros(800, np.float32)
    np.testing.assert_array_equal(change_voice(silent, SR, VoiceShift(1.1, 2.0)), silent)
    with pytest.raises(ValueError, match="NaN"):
        change_voice(np.full(800, np.nan, np.float32), SR, VoiceShift(1.1))
    with pytest.raises(ValueError, match="one channel"):
        change_voice(np.ones((2, 800), np.float32), SR, VoiceShift(1.1))
    with pytest.raises(ValueError, match="formant_ratio"):
        VoiceShift(formant_ratio=3.0)
    with pytest.raises(ValueError, match="pitch_semitones"):
        VoiceShift(pitch_semitones=30.0)


def test_an_unvoiced_track_gets_the_formant_shift_alone_without_a_warning():
    import warnings

    noise = (0.05 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)  # nothing voiced
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Praat's "no voiced segments" would fail the test here
        y = change_voice(noise, SR, VoiceShift(formant_ratio=1.15, pitch_semitones=3.0))
    assert y.shape == noise.shape and np.all(np.isfinite(y))
    assert not np.allclose(y, noise, atol=1e-3)  # the formant shift was still applied


def test_without_parselmouth_the_error_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "parselmouth", None)
    with pytest.raises(ImportError, match="praat-parselmouth"):
        change_voice(_vowel(), SR, VoiceShift(1.1))


def test_random_shifts_stay_in_their_ranges_and_lengthen_and_shorten_alike():
    rng = np.random.default_rng(0)
    shifts = [random_voice_shift(rng, (0.8, 1.25), (-3.0, 3.0)) for _ in range(2000)]
    ratios = np.array([s.formant_ratio for s in shifts])
    semitones = np.array([s.pitch_semitones for s in shifts])
    assert ratios.min() >= 0.8 and ratios.max() <= 1.25 and semitones.min() >= -3 and semitones.max() <= 3
    # log-uniform: as many shorter vocal tracts as longer ones (0.8 and 1.25 are one log-step apart)
    assert np.mean(ratios > 1.0) == pytest.approx(0.5, abs=0.04)
    assert random_voice_shift(rng, (1.0, 1.0), (2.0, 2.0)) == VoiceShift(1.0, 2.0)


def test_voice_shifts_are_off_by_default_and_leave_every_other_draw_alone():
    pools = {"a": np.array([0]), "b": np.array([1])}
    lengths = np.array([SR, SR])
    utterances = [_vowel(110.0), _vowel(200.0, (700.0, 1500.0, 2600.0))]

    def draw(**mixing):
        cfg = MixingConfig(segment_seconds=1.0, noise_weights={"none": 1.0}, lead_seconds=(0.0, 0.0), **mixing)
        return synthesize(np.random.default_rng(4), pools, lengths, utterances.__getitem__, [np.ones(3000, np.float32)],
                          lambda r: (-1, np.ones((2, 1), np.float32), np.ones((2, 1), np.float32)), cfg, SR)

    plain_plan, plain = draw()
    assert plain_plan.voices == []
    plan, out = draw(formant_shift_range=(1.0, 1.0), pitch_shift_semitones=(5.0, 5.0))
    assert plan.voices == [VoiceShift(1.0, 5.0)] * 2 and plan.placements == plain_plan.placements
    np.testing.assert_allclose(out.mixture, out.reverb.sum(0), atol=1e-6)  # the targets carry the new voices
    for k in range(2):
        assert _pitch(out.reverb[k]) / _pitch(plain.reverb[k]) == pytest.approx(2 ** (5 / 12), rel=0.04)
    with pytest.raises(ValueError, match="formant_shift_range"):
        MixingConfig(formant_shift_range=(1.2, 1.1))
    with pytest.raises(ValueError, match="pitch_shift_semitones"):
        MixingConfig(pitch_shift_semitones=(-30.0, 0.0))
