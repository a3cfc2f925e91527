"""Deep clustering (Hershey et al. 2016; Chimera++'s auxiliary term): the low-rank form against the N x N
definition, its extremes, which bins count, labels, weights and bad shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from speechsep.losses.deep_clustering import active_bin_weights, deep_clustering_loss, dominant_source_labels


def _brute_force(v, y, w):
    """The definition: sum over weighted pairs of (v_i . v_j - y_i . y_j)^2, over (sum w)^2."""
    out = []
    for vb, yb, wb in zip(v, y, w, strict=True):
        diff = vb @ vb.T - yb @ yb.T
        out.append((wb[:, None] * wb[None, :] * diff.square()).sum() / wb.sum().square())
    return torch.stack(out)


def test_low_rank_form_equals_the_pairwise_definition():
    gen = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(3, 50, 6, generator=gen), dim=-1)
    y = F.one_hot(torch.randint(0, 2, (3, 50), generator=gen), 2).float()
    w = (torch.rand(3, 50, generator=gen) > 0.3).float()
    torch.testing.assert_close(deep_clustering_loss(v, y, w), _brute_force(v, y, w))


def test_perfect_embeddings_score_zero_and_collapsed_ones_score_the_cross_pairs():
    y = F.one_hot(torch.tensor([[0, 0, 1, 1, 1, 0]]), 2).float()
    w = torch.ones(1, 6)
    assert float(deep_clustering_loss(y.clone(), y, w)) == pytest.approx(0.0, abs=1e-7)
    collapsed = F.normalize(torch.ones(1, 6, 3), dim=-1)  # every bin the same direction
    # 3 x 3 bins of different sources, each ordered pair off by 1: 18 of 36 pairs
    assert float(deep_clustering_loss(collapsed, y, w)) == pytest.approx(18 / 36)


def test_bins_of_weight_zero_do_not_count():
    gen = torch.Generator().manual_seed(1)
    v = F.normalize(torch.randn(1, 20, 4, generator=gen), dim=-1)
    y = F.one_hot(torch.randint(0, 2, (1, 20), generator=gen), 2).float()
    w = torch.ones(1, 20)
    w[:, 5:9] = 0
    moved = v.clone()
    moved[:, 5:9] = F.normalize(torch.randn(1, 4, 4, generator=gen), dim=-1)
    torch.testing.assert_close(deep_clustering_loss(moved, y, w), deep_clustering_loss(v, y, w))
    assert not torch.allclose(deep_clustering_loss(moved, y, torch.ones(1, 20)), deep_clustering_loss(v, y, torch.ones(1, 20)))


def test_shapes_that_do_not_fit_are_named():
    v, y, w = torch.zeros(2, 10, 4), torch.zeros(2, 10, 2), torch.ones(2, 10)
    with pytest.raises(ValueError, match=r"embeddings \(B, N, E\)"):
        deep_clustering_loss(v[0], y, w)
    with pytest.raises(ValueError, match="must share"):
        deep_clustering_loss(v, y[:, :9], w)
    with pytest.raises(ValueError, match=r"\(B, C, F, K\)"):
        dominant_source_labels(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"\(B, F, K\)"):
        active_bin_weights(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="floor_db"):
        active_bin_weights(torch.zeros(1, 2, 3), floor_db=0)


def test_labels_mark_the_loudest_source_frequency_major():
    mags = torch.zeros(1, 2, 3, 4)  # (B, C, F, K)
    mags[0, 0] = 1.0
    mags[0, 1, 2, 1] = 5.0  # source 1 wins bin f=2, k=1 only
    labels = dominant_source_labels(mags)
    assert labels.shape == (1, 12, 2)
    assert labels.sum(-1).eq(1).all()
    assert labels[0, 2 * 4 + 1].tolist() == [0.0, 1.0]
    assert labels[0, :, 1].sum() == 1


def test_weights_keep_bins_within_the_floor_of_the_peak():
    mags = torch.tensor([[[1.0, 0.02, 0.005]], [[10.0, 0.2, 0.05]]])  # (2, 1, 3): -34 dB and -46 dB
    assert active_bin_weights(mags).tolist() == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]  # per example, scale-free
    assert active_bin_weights(mags, floor_db=60).tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
