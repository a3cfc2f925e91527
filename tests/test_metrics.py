import math

import numpy as np
import pytest
import torch

from speechsep.losses import si_sdr
from speechsep.metrics import evaluate_example, pesq_stoi_available, sdr, si_sdr_improvement, summarize


def _speechlike(num: int, length: int, sample_rate: int = 8000, seed: int = 0) -> torch.Tensor:
    """Harmonic tones with syllable-rate amplitude modulation: voiced enough for PESQ to find utterances."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64) / sample_rate
    out = []
    for _ in range(num):
        f0 = 100 + 150 * torch.rand(1, generator=gen, dtype=torch.float64)
        wave = sum(torch.sin(2 * math.pi * k * f0 * t + k) / k for k in range(1, 12))
        envelope = 0.5 * (1 + torch.sin(2 * math.pi * (3 + 2 * torch.rand(1, generator=gen, dtype=torch.float64)) * t))
        out.append(envelope * wave)
    return torch.stack(out)


def _orthogonal_noise(ref: torch.Tensor, ratio_db: float) -> torch.Tensor:
    """Noise orthogonal to (and zero-mean like) each row of ref, at |ref|^2/|n|^2 = ratio_db."""
    noise = torch.randn_like(ref)
    noise = noise - noise.mean(-1, keepdim=True)
    noise = noise - (noise * ref).sum(-1, keepdim=True) / (ref * ref).sum(-1, keepdim=True) * ref
    return noise * ((ref * ref).sum(-1, keepdim=True) / 10 ** (ratio_db / 10) / (noise * noise).sum(-1, keepdim=True)).sqrt()


def test_si_sdr_improvement_closed_form_after_pit():
    ref = torch.randn(2, 2, 4000, dtype=torch.float64)
    ref = ref - ref.mean(-1, keepdim=True)
    mix = ref.sum(1)
    est_ordered = ref + _orthogonal_noise(ref, 12.0)
    est = est_ordered[:, [1, 0]]  # swapped: PIT must undo it
    expected = 12.0 - si_sdr(mix.unsqueeze(1).expand_as(ref), ref)
    torch.testing.assert_close(si_sdr_improvement(est, ref, mix), expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"\(2, 3999\)"):
        si_sdr_improvement(est, ref, mix[:, :-1])


def test_sdr_matches_constructed_value_and_finds_permutation():
    length = 16000
    ref = torch.randn(1, 2, length, dtype=torch.float64)
    # A short filter (delay + gain) is distortion bss_eval forgives; white noise is not.
    filtered = 0.8 * torch.roll(ref, 3, dims=-1)
    noise = torch.randn_like(ref)
    noise = noise * ((filtered**2).sum(-1, keepdim=True) / 10 ** (15.0 / 10) / (noise**2).sum(-1, keepdim=True)).sqrt()
    est = (filtered + noise)[:, [1, 0]]
    values, perm = sdr(est, ref)
    assert perm.tolist() == [[1, 0]]
    # The 512-tap projection absorbs about 2 * 512 / T of the noise energy: < 0.3 dB here.
    assert values.shape == (1, 2)
    assert torch.all((values - 15.0).abs() < 0.3), values


def test_evaluate_example_keys_and_values():
    sr = 8000
    ref = _speechlike(2, 2 * sr)
    ref = ref - ref.mean(-1, keepdim=True)
    mix = ref.sum(0)
    est = (ref + _orthogonal_noise(ref, 20.0))[[1, 0]]
    out = evaluate_example(est.float(), ref.float(), mix.float(), sr, pesq_stoi=False)
    assert set(out) == {"si_sdr", "si_sdri", "sdr", "sdri"}
    assert abs(out["si_sdr"] - 20.0) < 1e-3
    mix_si = float(si_sdr(mix.expand_as(ref), ref).mean())
    assert abs(out["si_sdri"] - (20.0 - mix_si)) < 1e-3
    assert out["sdr"] > 19.0 and out["sdri"] > 15.0
    with pytest.raises(ValueError, match=r"\(15999,\)"):
        evaluate_example(est, ref, mix[:-1], sr)


@pytest.mark.slow
@pytest.mark.skipif(not pesq_stoi_available(), reason="pesq/pystoi not installed")
def test_evaluate_example_pesq_stoi_perfect_and_noisy():
    sr = 8000
    ref = _speechlike(2, 2 * sr).numpy().astype(np.float32)
    mix = ref.sum(0)
    perfect = evaluate_example(ref[::-1].copy(), ref, mix, sr)
    assert perfect["stoi"] > 0.99 and perfect["pesq"] > 4.0
    noisy = evaluate_example(ref + 0.3 * np.random.default_rng(0).standard_normal(ref.shape).astype(np.float32), ref, mix, sr)
    assert noisy["stoi"] < perfect["stoi"] and noisy["pesq"] < perfect["pesq"] - 1.0


def test_summarize_known_values():
    out = summarize([1.0, 2.0, 3.0, 4.0, 5.0, float("nan")])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t_{0.975, 4} * s / sqrt(n)
    assert out["n"] == 5 and out["mean"] == 3.0 and out["median"] == 3.0
    assert out["ci95_low"] == pytest.approx(3.0 - half, abs=1e-12)
    assert out["ci95_high"] == pytest.approx(3.0 + half, abs=1e-12)
    single = summarize([2.0])
    assert single["mean"] == 2.0 and math.isnan(single["ci95_low"]) and single["n"] == 1
    assert summarize([])["n"] == 0
