import itertools

import numpy as np
import pytest
import torch

from speechsep.inference.segmenting import segment_starts, separate_long
from speechsep.losses.pit import apply_permutation, pit_from_pairwise
from speechsep.losses.snr import pairwise_neg_si_sdr, si_sdr

SR = 8000


def _turns(total, rng, talkers=2, overlap=0.3, fade=0.02):
    """(talkers, total) gains: talkers take turns of 1.5-4 s, consecutive turns overlap by ``overlap`` s."""
    gains = np.zeros((talkers, total), dtype=np.float32)
    start, who = 0, 0
    ramp = int(fade * SR)
    while start < total:
        end = min(total, start + int(rng.uniform(1.5, 4.0) * SR))
        env = np.ones(end - start, dtype=np.float32)
        n = min(ramp, len(env) // 2)
        env[:n] = np.linspace(0, 1, n)
        env[len(env) - n :] = np.linspace(1, 0, n)
        gains[who, start:end] = env
        if end == total:
            break
        start, who = end - int(overlap * SR), (who + 1) % talkers
    return gains


def _alternating_mixture(seconds, rng, tones):
    total = int(seconds * SR)
    low = tones(rng.uniform(100, 250, 6), total, rng)  # speaker A lives below the cut-off
    high = tones(rng.uniform(1000, 2000, 6), total, rng)  # speaker B above it
    refs = np.stack([low, high]) * _turns(total, rng)
    return torch.from_numpy(refs.sum(0))[None], torch.from_numpy(refs)[None]  # (1, T), (1, 2, T)


def _globally_aligned(est, ref):
    _, perm = pit_from_pairwise(pairwise_neg_si_sdr(est, ref))
    return apply_permutation(est, perm)


def test_segment_starts_cover_the_input():
    assert segment_starts(100, 100, 10) == [0]
    assert segment_starts(50, 100, 10) == [0]
    starts = segment_starts(1000, 300, 100)
    assert starts == [0, 200, 400, 600, 700]  # the last one is pulled back to end at 1000
    assert all(b - a <= 200 for a, b in itertools.pairwise(starts))
    with pytest.raises(ValueError, match="overlap < segment"):
        segment_starts(1000, 100, 100)


def test_short_input_goes_straight_through(band_model):
    model = band_model(mode="gain")
    x = torch.randn(3, 4000)
    out = separate_long(model, x, segment_seconds=1.0, overlap_seconds=0.25)
    assert out.shape == (3, 2, 4000) and model.calls == 1
    torch.testing.assert_close(out, torch.stack([0.8 * x, 0.2 * x], 1))
    out = separate_long(model, x[:, None], segment_seconds=None)  # (B, 1, T) accepted, None = never split
    assert out.shape == (3, 2, 4000)


def test_crossfade_reproduces_a_time_invariant_model_exactly(band_model):
    """Gains are identical in every segment, so the weights summing to one must give the same output,
    even though the model returns its sources in a random order per call."""
    model = band_model(mode="gain", gain=0.7, shuffle=True)
    x = torch.randn(2, 10 * SR)
    out = separate_long(model, x, segment_seconds=1.5, overlap_seconds=0.4, batch_segments=3)
    assert model.calls == 3 and [1, 0] in model.permutations  # it did shuffle
    # the first segment's order is arbitrary; after one global reordering every sample must match
    expected = torch.stack([0.7 * x, 0.3 * x], 1)
    torch.testing.assert_close(_globally_aligned(out, expected), expected, atol=1e-6, rtol=1e-5)


def test_speaker_order_is_kept_over_alternating_turns(band_model, tones):
    """A perfect separator that forgets who is who between calls: alignment on the overlaps must keep
    each speaker in one output over the whole file, through every change of turn."""
    rng = np.random.default_rng(1)
    mix, refs = _alternating_mixture(40.0, rng, tones)
    model = band_model(cutoff_hz=600.0, shuffle=True, seed=3)
    out = separate_long(model, mix, segment_seconds=4.0, overlap_seconds=1.0)
    perms = model.permutations
    assert len(perms) == len(segment_starts(mix.shape[-1], 4 * SR, SR)) and [1, 0] in perms and [0, 1] in perms

    aligned = _globally_aligned(out, refs)
    assert si_sdr(aligned, refs).min() > 25.0
    # and in every half second where a speaker talks, that speaker is in its own output
    win = SR // 2
    for i in range(0, mix.shape[-1] - win, win):
        for c in range(2):
            ref = refs[0, c, i : i + win]
            if ref.pow(2).mean() > 1e-3:
                assert si_sdr(aligned[0, c, i : i + win], ref) > 15.0, (i / SR, c)


def test_batched_segments_match_one_at_a_time(band_model, tones):
    rng = np.random.default_rng(2)
    mix, _ = _alternating_mixture(12.0, rng, tones)
    mix = torch.cat([mix, mix.flip(-1)])  # two different examples
    one = separate_long(band_model(cutoff_hz=600.0), mix, segment_seconds=2.0, overlap_seconds=0.5)
    model = band_model(cutoff_hz=600.0, shuffle=True)
    many = separate_long(model, mix, segment_seconds=2.0, overlap_seconds=0.5, batch_segments=4)
    assert model.max_batch_rows == 8
    torch.testing.assert_close(_globally_aligned(many, one), one, atol=1e-5, rtol=1e-4)


def test_sixty_seconds_with_bounded_model_input(band_model):
    model = band_model(mode="gain")
    x = torch.randn(1, 60 * SR)
    out = separate_long(model, x, segment_seconds=3.0, overlap_seconds=0.5, batch_segments=2)
    assert out.shape == (1, 2, 60 * SR) and out.dtype == torch.float32
    # the model never saw more than one segment per example, two segments per call
    assert model.max_input_length == 3 * SR and model.max_batch_rows == 2
    assert model.calls == -(-len(segment_starts(60 * SR, 3 * SR, SR // 2)) // 2)


def test_bad_arguments_are_reported(band_model):
    model = band_model()
    with pytest.raises(ValueError, match=r"got \(2, 3, 100\)"):
        separate_long(model, torch.randn(2, 3, 100))
    with pytest.raises(ValueError, match="overlap"):
        separate_long(model, torch.randn(1, 5 * SR), segment_seconds=1.0, overlap_seconds=0.0)
    with pytest.raises(ValueError, match="batch_segments"):
        separate_long(model, torch.randn(1, 100), batch_segments=0)


def test_bf16_precision_runs_the_model_under_autocast_and_returns_float32():
    import speechsep

    model = speechsep.build("iter-freq-simo1-siso2-it1-tiny", sample_rate=SR).eval()
    x = 0.1 * torch.randn(1, 3 * SR, generator=torch.Generator().manual_seed(0))
    exact = separate_long(model, x, segment_seconds=1.0, overlap_seconds=0.25)
    low = separate_long(model, x, segment_seconds=1.0, overlap_seconds=0.25, precision="bf16")
    assert low.dtype == torch.float32 and low.shape == exact.shape
    # bf16 keeps 8 bits of mantissa: close to the float32 result, not equal to it
    rel = float((low - exact).norm() / exact.norm())
    assert 0 < rel < 0.05, rel
    with pytest.raises(ValueError, match="precision must be one of"):
        separate_long(model, x, precision="fp8")
