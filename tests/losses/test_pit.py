import itertools

import pytest
import torch

from speechsep.losses import (
    PITLoss,
    apply_permutation,
    pairwise_neg_si_sdr,
    pairwise_neg_snr,
    pit_from_pairwise,
    snr,
)
from speechsep.losses import pit as pit_module


def _planted(batch: int, num_sources: int, snr_db: torch.Tensor, length: int = 2000):
    """ref, est = ref placed by a random permutation + noise at exact SNRs, and the permutation."""
    ref = torch.randn(batch, num_sources, length, dtype=torch.float64)
    noise = torch.randn_like(ref)
    scale = ((ref**2).sum(-1) / 10 ** (snr_db / 10) / (noise**2).sum(-1)).sqrt()
    noisy = ref + scale.unsqueeze(-1) * noise  # noisy[b, j] has SNR snr_db[j] against ref[b, j]
    perm = torch.stack([torch.randperm(num_sources) for _ in range(batch)])
    est = torch.empty_like(ref)
    batch_idx = torch.arange(batch).unsqueeze(1)
    est[batch_idx, perm] = noisy  # estimate perm[b, j] carries reference j
    return est, ref, perm


@pytest.mark.parametrize("num_sources", [2, 3, 5])
def test_pit_recovers_planted_permutation_at_analytic_optimum(num_sources):
    snr_db = torch.linspace(15.0, 25.0, num_sources, dtype=torch.float64)
    est, ref, perm = _planted(6, num_sources, snr_db)
    loss, found = PITLoss(pairwise_neg_snr)(est, ref)
    assert found.dtype == torch.long and found.shape == (6, num_sources)
    assert torch.equal(found, perm)
    # Optimal loss is the mean over sources of -SNR_j, known in closed form.
    torch.testing.assert_close(loss, torch.full((6,), -float(snr_db.mean()), dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(snr(apply_permutation(est, found), ref), snr_db.expand(6, -1), atol=1e-6, rtol=0)


def test_pit_loss_is_the_minimum_over_all_permutations():
    pairwise = torch.randn(7, 3, 3)
    loss, perm = pit_from_pairwise(pairwise)
    brute = torch.stack(
        [pairwise[:, list(p), range(3)].mean(-1) for p in itertools.permutations(range(3))], dim=1
    ).min(dim=1).values
    torch.testing.assert_close(loss, brute)
    torch.testing.assert_close(pairwise[torch.arange(7)[:, None], perm, torch.arange(3)].mean(-1), loss)


@pytest.mark.parametrize("num_sources", [2, 3, 4])
def test_hungarian_agrees_with_exhaustive(num_sources):
    pairwise = torch.randn(20, num_sources, num_sources, dtype=torch.float64)
    loss_h, perm_h = pit_module._hungarian(pairwise)
    loss_e, perm_e = pit_module._exhaustive(pairwise)
    torch.testing.assert_close(loss_h, loss_e)
    assert torch.equal(perm_h, perm_e)


def test_gradient_flows_through_pit():
    for num_sources in (2, 4):
        est = torch.randn(3, num_sources, 400, requires_grad=True)
        ref = torch.randn(3, num_sources, 400)
        loss, _ = PITLoss(pairwise_neg_si_sdr)(est, ref)
        assert loss.shape == (3,)
        loss.mean().backward()
        assert est.grad is not None and est.grad.abs().sum() > 0


def test_apply_permutation_with_trailing_axes():
    est = torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    perm = torch.tensor([[2, 0, 1], [0, 1, 2]])
    out = apply_permutation(est, perm)
    assert torch.equal(out[0, 0], est[0, 2]) and torch.equal(out[0, 1], est[0, 0]) and torch.equal(out[1], est[1])


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(2, 2, 3\)"):
        pit_from_pairwise(torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        apply_permutation(torch.randn(2, 2, 10), torch.zeros(2, 3, dtype=torch.long))
