"""Utterance-level permutation invariant training (uPIT, Kolbaek et al. 2017).

Both papers train with negative SNR under uPIT (iterative paper Sec. 3.2; TFACM Sec. IV). PIT is
split in two: a pairwise loss matrix ``(B, C_est, C_ref)`` from any criterion in
:mod:`speechsep.losses.snr`, then the assignment that minimises its mean over sources.

Permutation convention, used everywhere in speechsep: ``perm[b, j]`` is the index of the *estimate*
matched to reference ``j``, so ``apply_permutation(est, perm)`` puts estimates in reference order.
The iterative model reuses the permutation of iteration i to order the inputs of iteration i + 1.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from speechsep.losses.snr import pairwise_neg_snr

__all__ = ["pit_from_pairwise", "apply_permutation", "PITLoss", "EXHAUSTIVE_MAX_SOURCES"]

#: Up to this many sources every permutation is scored at once (C! <= 6 columns); above it the
#: Hungarian algorithm finds the same optimum in O(C^3) instead of O(C!).
EXHAUSTIVE_MAX_SOURCES = 3


@functools.cache
def _all_permutations(num_sources: int, device: torch.device) -> torch.Tensor:
    """(C!, C) long: row p lists, for each reference j, the estimate assigned to it."""
    return torch.tensor(list(itertools.permutations(range(num_sources))), dtype=torch.long, device=device)


def _check_pairwise(pairwise: torch.Tensor) -> None:
    if pairwise.dim() != 3 or pairwise.shape[1] != pairwise.shape[2] or pairwise.shape[1] == 0:
        raise ValueError(f"pairwise losses must be shaped (batch, sources, sources); got {tuple(pairwise.shape)}")


def _exhaustive(pairwise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    num_sources = pairwise.shape[1]
    perms = _all_permutations(num_sources, pairwise.device)  # (P, C)
    refs = torch.arange(num_sources, device=pairwise.device)
    # pairwise[:, perms, refs] -> (B, P, C): the loss of every permutation for every reference, one gather.
    per_perm = pairwise[:, perms, refs].mean(dim=-1)  # (B, P)
    loss, best = per_perm.min(dim=1)
    return loss, perms[best]


def _hungarian(pairwise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.optimize import linear_sum_assignment

    costs = pairwise.detach().float().cpu().numpy()
    perm = np.empty(costs.shape[:2], dtype=np.int64)
    for b, cost in enumerate(costs):
        # rows are estimates, columns references: perm[b, col] = row.
        rows, cols = linear_sum_assignment(cost)
        perm[b, cols] = rows
    perm_t = torch.from_numpy(perm).to(pairwise.device)
    refs = torch.arange(pairwise.shape[1], device=pairwise.device)
    batch = torch.arange(pairwise.shape[0], device=pairwise.device).unsqueeze(1)
    loss = pairwise[batch, perm_t, refs].mean(dim=-1)
    return loss, perm_t


def pit_from_pairwise(pairwise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best assignment of a ``(B, C_est, C_ref)`` loss matrix.

    Returns ``loss (B,)``, the mean over sources of the matched pairwise values (differentiable),
    and ``perm (B, C)`` long with ``perm[b, j]`` the estimate matched to reference ``j``.
    """
    _check_pairwise(pairwise)
    if pairwise.shape[1] <= EXHAUSTIVE_MAX_SOURCES:
        return _exhaustive(pairwise)
    return _hungarian(pairwise)


def apply_permutation(est: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Reorder ``est (B, C, ...)`` by ``perm (B, C)``: ``out[b, j] = est[b, perm[b, j]]``."""
    if est.dim() < 2 or perm.dim() != 2 or tuple(perm.shape) != tuple(est.shape[:2]):
        raise ValueError(
            f"apply_permutation needs est (batch, sources, ...) and perm (batch, sources); "
            f"got {tuple(est.shape)} and {tuple(perm.shape)}"
        )
    batch = torch.arange(est.shape[0], device=est.device).unsqueeze(1)
    return est[batch, perm.to(est.device)]


class PITLoss(nn.Module):
    """uPIT over a pairwise criterion: ``forward(est, ref) -> (loss (B,), perm (B, C))``; callers reduce."""

    def __init__(self, pairwise_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = pairwise_neg_snr):
        super().__init__()
        self.pairwise_fn = pairwise_fn

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pit_from_pairwise(self.pairwise_fn(est, ref))

    def extra_repr(self) -> str:
        return f"pairwise_fn={getattr(self.pairwise_fn, '__name__', self.pairwise_fn)!r}"
