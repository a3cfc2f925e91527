import math

import pytest
import torch

from speechsep.losses import (
    neg_si_sdr,
    neg_snr,
    pairwise_neg_si_sdr,
    pairwise_neg_snr,
    pairwise_si_sdr,
    pairwise_snr,
    si_sdr,
    snr,
)


def _scaled_noise(ref: torch.Tensor, ratio_db: torch.Tensor, orthogonal: bool) -> torch.Tensor:
    """Noise with |ref|^2 / |noise|^2 = 10^(ratio_db/10) exactly, optionally orthogonal to a zero-mean ref."""
    noise = torch.randn_like(ref)
    if orthogonal:
        noise = noise - noise.mean(-1, keepdim=True)
        noise = noise - (noise * ref).sum(-1, keepdim=True) / (ref * ref).sum(-1, keepdim=True) * ref
    target = (ref * ref).sum(-1) / 10 ** (ratio_db / 10)
    return noise * (target / (noise * noise).sum(-1)).sqrt().unsqueeze(-1)


def test_snr_closed_form():
    ref = torch.randn(3, 2, 4000, dtype=torch.float64)
    ratio = torch.tensor([[0.0, 5.0], [12.5, -3.0], [30.0, 60.0]], dtype=torch.float64)
    est = ref + _scaled_noise(ref, ratio, orthogonal=False)
    torch.testing.assert_close(snr(est, ref), ratio, atol=1e-4, rtol=0)
    torch.testing.assert_close(neg_snr(est, ref), -ratio, atol=1e-4, rtol=0)


def test_si_sdr_closed_form_and_scale_invariance():
    ref = torch.randn(4, 8000, dtype=torch.float64)
    ref = ref - ref.mean(-1, keepdim=True)
    ratio = torch.tensor([-5.0, 0.0, 10.0, 40.0], dtype=torch.float64)
    gain = torch.tensor([0.3, 1.0, 2.0, -1.5], dtype=torch.float64).unsqueeze(-1)
    noise = _scaled_noise(ref, ratio, orthogonal=True)
    # est = a ref + n, n orthogonal to ref: SI-SDR = 10 log10(|a ref|^2 / |n|^2) = ratio + 20 log10 |a|.
    est = gain * ref + noise
    expected = ratio + 20 * torch.log10(gain.abs().squeeze(-1))
    torch.testing.assert_close(si_sdr(est, ref), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(neg_si_sdr(est, ref), -expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(si_sdr(7.5 * est, ref), si_sdr(est, ref), atol=1e-6, rtol=0)
    # A DC offset is removed by the zero-mean default, and counts as error without it.
    torch.testing.assert_close(si_sdr(est + 3.0, ref), expected, atol=1e-6, rtol=0)
    assert (si_sdr(est + 3.0, ref, zero_mean=False) < expected - 1).all()


def test_float32_precision_at_high_snr():
    ref = torch.randn(2, 3, 16000)
    est = ref + 1e-3 * torch.randn(2, 3, 16000)  # about 60 dB
    exact = 10 * torch.log10((ref.double() ** 2).sum(-1) / ((ref.double() - est.double()) ** 2).sum(-1))
    assert snr(est, ref).dtype == torch.float32
    torch.testing.assert_close(snr(est, ref).double(), exact, atol=1e-3, rtol=0)
    torch.testing.assert_close(torch.diagonal(pairwise_snr(est, ref), dim1=1, dim2=2).double(), exact, atol=1e-3, rtol=0)


@pytest.mark.parametrize("num_sources", [1, 2, 3])
def test_pairwise_matches_elementwise(num_sources):
    est = torch.randn(2, num_sources, 1000)
    ref = torch.randn(2, num_sources, 1000)
    pw_snr, pw_si = pairwise_snr(est, ref), pairwise_si_sdr(est, ref)
    assert pw_snr.shape == (2, num_sources, num_sources)
    for i in range(num_sources):
        for j in range(num_sources):
            torch.testing.assert_close(pw_snr[:, i, j], snr(est[:, i], ref[:, j]))
            torch.testing.assert_close(pw_si[:, i, j], si_sdr(est[:, i], ref[:, j]))
    torch.testing.assert_close(pairwise_neg_snr(est, ref), -pw_snr)
    torch.testing.assert_close(pairwise_neg_si_sdr(est, ref), -pw_si)


def test_gradients_flow_and_inputs_untouched():
    est = torch.randn(2, 2, 500, requires_grad=True)
    ref = torch.randn(2, 2, 500)
    before = est.detach().clone()
    loss = pairwise_neg_si_sdr(est, ref).sum() + neg_snr(est, ref).sum()
    loss.backward()
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
    assert est.grad.dtype == torch.float32
    assert torch.equal(est.detach(), before)


def test_snr_gradient_matches_finite_difference():
    est = torch.randn(1, 64, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(1, 64, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda e: snr(e, ref), (est,))
    assert torch.autograd.gradcheck(lambda e: si_sdr(e, ref), (est,))


def test_bf16_input_gives_float32_loss():
    ref = torch.randn(2, 2, 800)
    est = (ref + 0.1 * torch.randn_like(ref)).bfloat16()
    out = pairwise_snr(est, ref.bfloat16())
    assert out.dtype == torch.float32
    assert math.isfinite(float(out.sum()))


def test_wrong_shapes_raise_with_shape():
    with pytest.raises(ValueError, match=r"\(2, 100\)"):
        snr(torch.randn(2, 100), torch.randn(2, 101))
    with pytest.raises(ValueError, match=r"\(2, 100\)"):
        pairwise_snr(torch.randn(2, 100), torch.randn(2, 100))
    with pytest.raises(ValueError, match=r"\(2, 3, 100\)"):
        pairwise_si_sdr(torch.randn(2, 3, 100), torch.randn(2, 2, 100))
