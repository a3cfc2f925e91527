"""Our bss_eval SDR (Cholesky on shared systems) against fast_bss_eval's own numbers."""

import numpy as np
import pytest
import torch

from speechsep.metrics import bss_sdr, evaluate_example, sdr

fast_bss_eval = pytest.importorskip("fast_bss_eval")

# fast_bss_eval takes log10(0) for an infinite SIR; that is its business, not what is tested here
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in log10:RuntimeWarning")


def _case(num, length, seed):
    rng = np.random.default_rng(seed)
    ref = torch.from_numpy(rng.standard_normal((num, length)))
    # leakage of the other sources, a delayed (filtered) copy, noise, and a shuffled order
    leak = 0.3 * ref.roll(5, dims=-1).sum(0)
    est = 0.7 * ref + leak + 0.5 * torch.from_numpy(rng.standard_normal((num, length)))
    return est[torch.from_numpy(rng.permutation(num))], ref


@pytest.mark.parametrize(("num", "length", "taps", "seed"), [(2, 6000, 512, 0), (3, 3000, 128, 1), (2, 2000, 64, 2)])
def test_sdr_equals_fast_bss_eval_values_and_permutation(num, length, taps, seed):
    est, ref = _case(num, length, seed)
    mix = ref.sum(0)
    values, perm, mix_values = bss_sdr(est, ref, mix, filter_length=taps)
    want, _, _, want_perm = fast_bss_eval.bss_eval_sources(ref.numpy(), est.numpy(), filter_length=taps)
    assert perm.tolist() == want_perm.tolist()
    np.testing.assert_allclose(values.numpy(), want, atol=1e-8, rtol=0)
    # the mixture as every source's estimate: SDRi's baseline
    want_mix, _, _, _ = fast_bss_eval.bss_eval_sources(ref.numpy(), mix.expand(num, length).numpy().copy(),
                                                       filter_length=taps)
    np.testing.assert_allclose(mix_values.numpy(), want_mix, atol=1e-8, rtol=0)


def test_batched_sdr_and_evaluate_example_use_the_same_numbers():
    est, ref = _case(2, 2000, 3)
    values, perm = sdr(est[None].float(), ref[None].float())
    one, one_perm, _ = bss_sdr(est.float(), ref.float())
    assert values.shape == (1, 2) and torch.equal(perm[0], one_perm)
    torch.testing.assert_close(values[0], one)
    out = evaluate_example(est.float(), ref.float(), ref.sum(0).float(), 8000, pesq_stoi=False)
    _, _, mix_values = bss_sdr(est.float(), ref.float(), ref.sum(0).float())
    assert out["sdr"] == pytest.approx(float(one.mean()), abs=1e-9)
    assert out["sdri"] == pytest.approx(float((one - mix_values).mean()), abs=1e-9)


def test_a_filtered_estimate_is_forgiven_and_a_silent_reference_does_not_crash():
    rng = np.random.default_rng(4)
    ref = torch.from_numpy(rng.standard_normal((1, 4000)))
    # a 3-tap filter is inside the 512-tap distortion model: near-perfect SDR
    padded = torch.nn.functional.pad(ref, (2, 0))
    filtered = 0.5 * padded[:, 2:] + 0.3 * padded[:, 1:-1] - 0.2 * padded[:, :-2]
    value, perm, _ = bss_sdr(filtered, ref)
    # only the filter's 2-sample tail, cut at the end, is outside the model
    assert perm.tolist() == [0] and value.item() > 35.0
    noisy, _, _ = bss_sdr(filtered + 0.1 * torch.randn(1, 4000, dtype=torch.float64), ref)
    assert noisy.item() < 20.0
    silent = torch.cat([ref, torch.zeros(1, 4000)])
    values, _, _ = bss_sdr(silent.flip(0), silent)
    assert values.shape == (2,)  # the singular system is solved by least squares: no exception


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 10\) and \(2, 9\)"):
        bss_sdr(torch.zeros(2, 10), torch.zeros(2, 9))
    with pytest.raises(ValueError, match=r"got \(9,\)"):
        bss_sdr(torch.zeros(2, 10), torch.zeros(2, 10), torch.zeros(9))
