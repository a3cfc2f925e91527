"""Deep clustering: the affinity loss on per-bin embeddings, and the labels and weights it needs.

Hershey, Chen, Le Roux and Watanabe, "Deep clustering: discriminative embeddings for segmentation and
separation", ICASSP 2016: a network maps every time-frequency bin of the mixture to a D-dimensional
unit vector, and the loss asks bins dominated by the same source to share a direction and bins of
different sources to be orthogonal (Eq. 2). Chimera++ (Wang, Le Roux and Hershey, "Alternative objective
functions for deep clustering", ICASSP 2018, Sec. 2-3) trains such a head beside a mask head on one shared
BLSTM stack and finds that the embedding term makes the masks better; speechsep uses it that way, as a
training-only auxiliary term of a mask model (``loss.deep_clustering_weight``,
:class:`speechsep.losses.objectives.ObjectiveConfig`).

Axis legend: B batch, N time-frequency bins (F x K flattened), E embedding size, C sources.
"""

from __future__ import annotations

import torch

__all__ = ["deep_clustering_loss", "dominant_source_labels", "active_bin_weights"]


def deep_clustering_loss(embeddings: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``||V^T W V||^2 - 2 ||V^T W Y||^2 + ||Y^T W Y||^2`` over ``(sum W)^2``, one value per example ``(B,)``.

    ``embeddings`` V ``(B, N, E)`` (unit rows), ``labels`` Y ``(B, N, C)`` (one-hot), ``weights`` W ``(B, N)``
    (``>= 0``). The expanded form of ``||V V^T - Y Y^T||_F^2`` restricted to weighted bins (Hershey et
    al. 2016, Eq. 2-3): it only forms E x E, E x C and C x C products, so its cost is linear in N, where
    the N x N affinity matrices of a 4 s crop would hold 4 x 10^9 entries. Dividing by ``(sum W)^2``
    makes it the mean over pairs of weighted bins of ``(v_i . v_j - y_i . y_j)^2``, in [0, 4] whatever the
    crop length, so its weight means the same at any size.
    """
    if embeddings.dim() != 3 or labels.dim() != 3 or weights.dim() != 2:
        raise ValueError(
            f"deep clustering expects embeddings (B, N, E), labels (B, N, C), weights (B, N); got "
            f"{tuple(embeddings.shape)}, {tuple(labels.shape)}, {tuple(weights.shape)}"
        )
    if embeddings.shape[:2] != labels.shape[:2] or embeddings.shape[:2] != weights.shape:
        raise ValueError(
            f"deep clustering: embeddings {tuple(embeddings.shape)}, labels {tuple(labels.shape)} and weights "
            f"{tuple(weights.shape)} must share (B, N)"
        )
    # Affinities and energies want float32 even when the embeddings came out of bf16 autocast.
    v, y, w = embeddings.float(), labels.float(), weights.float().unsqueeze(-1)
    vv = torch.einsum("bne,bnf->bef", v * w, v)
    vy = torch.einsum("bne,bnc->bec", v * w, y)
    yy = torch.einsum("bnc,bnd->bcd", y * w, y)
    total = vv.square().sum((1, 2)) - 2 * vy.square().sum((1, 2)) + yy.square().sum((1, 2))
    return total / w.sum((1, 2)).square().clamp_min(1.0)


def dominant_source_labels(source_magnitudes: torch.Tensor) -> torch.Tensor:
    """``(B, C, F, K)`` magnitudes -> ``(B, F * K, C)`` one-hot of the loudest source in each bin.

    The ideal binary mask as a partition (Hershey et al. 2016, Sec. 2): each bin belongs to the source
    with the most energy in it. Bins are flattened frequency-major, as :func:`active_bin_weights` does.
    """
    if source_magnitudes.dim() != 4:
        raise ValueError(f"source magnitudes must be (B, C, F, K); got {tuple(source_magnitudes.shape)}")
    b, c = source_magnitudes.shape[:2]
    winner = source_magnitudes.argmax(dim=1).reshape(b, -1)  # (B, F * K)
    return torch.nn.functional.one_hot(winner, c).to(source_magnitudes.dtype)


def active_bin_weights(mixture_magnitude: torch.Tensor, floor_db: float = 40.0) -> torch.Tensor:
    """``(B, F, K)`` mixture magnitudes -> ``(B, F * K)`` weights: 1 within ``floor_db`` of the example's
    loudest bin, else 0.

    Silent bins carry no source identity, and an affinity on them only teaches the embedding noise;
    Hershey et al. (2016, Sec. 4.1) leave out the bins more than 40 dB below the mixture's maximum.
    """
    if mixture_magnitude.dim() != 3:
        raise ValueError(f"mixture magnitude must be (B, F, K); got {tuple(mixture_magnitude.shape)}")
    if floor_db <= 0:
        raise ValueError(f"floor_db must be > 0; got {floor_db}")
    flat = mixture_magnitude.reshape(mixture_magnitude.shape[0], -1)
    threshold = flat.amax(dim=1, keepdim=True) * 10.0 ** (-floor_db / 20.0)
    return (flat > threshold).to(mixture_magnitude.dtype)
