import numpy as np
import pytest
from data_fakes import tone, write_wav

from speechsep.data.noise import load_noise_folder, loop_crossfade


def test_loop_without_fade_is_tiling():
    clip = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(loop_crossfade(clip, 25, fade=0), np.tile(clip, 3)[:25])


def test_crossfade_formula_and_offset():
    rng = np.random.default_rng(0)
    clip = rng.standard_normal(100).astype(np.float32)
    fade = 20
    out = loop_crossfade(clip, 300, fade=fade)
    period = 100 - fade
    ramp = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade)
    # first copy untouched before its fade-out; the seam is fade-out(tail) + fade-in(head)
    np.testing.assert_allclose(out[:period], clip[:period], rtol=0, atol=0)
    np.testing.assert_allclose(out[period : period + fade], clip[period:] * ramp[::-1] + clip[:fade] * ramp, atol=1e-6)
    np.testing.assert_allclose(loop_crossfade(clip, 50, fade=fade, offset=130), out[130:180], atol=1e-6)


def test_crossfade_removes_the_seam_click():
    clip = np.linspace(0.0, 1.0, 400, dtype=np.float32)  # a sawtooth: butt-joining jumps by 1.0
    assert np.abs(np.diff(np.tile(clip, 3))).max() > 0.99
    looped = loop_crossfade(clip, 1000, fade=100)
    assert np.abs(np.diff(looped)).max() < 0.05


def test_loop_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        loop_crossfade(np.zeros((2, 3)), 10, fade=1)


def test_load_noise_folder_resamples_and_lists_skips(tmp_path, caplog):
    write_wav(tmp_path / "a.wav", tone(100, 16000, 16000), 16000)
    write_wav(tmp_path / "b.wav", tone(100, 16000, 16000), 16000)
    write_wav(tmp_path / "short.wav", tone(100, 100), 8000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEnope")
    with caplog.at_level("INFO"):
        clips, report = load_noise_folder(tmp_path, 8000)
    assert [c.name for c in clips] == ["a.wav", "b.wav"]
    assert clips[0].wav.size == 8000
    skipped = {p.rsplit("/", 1)[-1]: why for p, why in report.skipped}
    assert set(skipped) == {"short.wav", "broken.wav"}
    assert report.resampled[(16000, 8000)] == 2
    assert sum("resampled 2 noise clips from 16000 Hz to 8000 Hz" in r.message for r in caplog.records) == 1
