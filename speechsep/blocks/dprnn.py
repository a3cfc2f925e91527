"""Dual-path RNN (Luo, Chen and Yoshioka, ICASSP 2020): segmentation, the DPRNN block, overlap-add.

A long frame sequence is cut into segments of ``S`` frames with hop ``S // 2`` (50 % overlap), an
*intra-segment* LSTM runs inside every segment and an *inter-segment* LSTM runs across segments at
each within-segment position; each has a linear projection, a normalisation and a residual.

Axis legend (all tensors here are channels-last, the layout ``nn.LSTM(batch_first=True)`` wants,
so a stack of blocks never transposes back and forth):
    B  batch (times streams when the caller folds sources into it)
    L  frames of the unsegmented sequence
    G  segments (chunks)
    S  frames within a segment
    N  feature channels

Speed: every LSTM call covers all segments (intra: batch ``B*G``) or all positions (inter: batch
``B*S``) at once; there is no Python loop over segments, and segmentation/overlap-add are a single
``unfold``/``fold``.

Causal variant: ``DPRNNBlock(..., intra_bidirectional=False, inter_bidirectional=False, norm="ln")``.
With one-way LSTMs, segment ``g`` at position ``s`` depends only on segments ``<= g`` at positions
``<= s``, i.e. on frames ``<= g*hop + s``, so 50 % overlap keeps causality (a *bidirectional* intra
LSTM would not: it reads the rest of the segment). ``"ln"`` normalises each frame over channels
only; ``"gln"`` (global over the utterance) looks at the future.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["segment", "overlap_add", "num_segments", "DPRNNBlock", "GlobalLayerNorm"]


def _hop(size: int) -> int:
    if size < 2:
        raise ValueError(f"segment size must be at least 2 frames; got {size}")
    return size // 2


def num_segments(length: int, size: int) -> int:
    """Segments :func:`segment` makes of ``length`` frames (every frame lies in two segments)."""
    hop = _hop(size)
    padded = length + 2 * hop
    # round the padded length up so the last segment ends exactly on it
    rest = (padded - size) % hop
    if rest:
        padded += hop - rest
    return (padded - size) // hop + 1


def segment(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, L) -> (B, G, S, N): 50 %-overlapping segments, zero-padded at both ends.

    ``hop`` zeros go in front so the first real frame is covered by two segments like every other
    frame; the end is padded up to a whole number of hops.
    """
    if x.dim() != 3:
        raise ValueError(f"segment expects (batch, channels, frames); got {tuple(x.shape)}")
    hop = _hop(size)
    length = x.shape[-1]
    groups = num_segments(length, size)
    back = (groups - 1) * hop + size - length - hop
    x = F.pad(x, (hop, back))
    # (B, N, G, S) -> (B, G, S, N)
    return x.unfold(-1, size, hop).permute(0, 2, 3, 1).contiguous()


def overlap_add(segments: torch.Tensor, length: int) -> torch.Tensor:
    """(B, G, S, N) -> (B, N, L): inverse of :func:`segment` by summing overlapping segments."""
    if segments.dim() != 4:
        raise ValueError(f"overlap_add expects (batch, segments, size, channels); got {tuple(segments.shape)}")
    batch, groups, size, channels = segments.shape
    hop = _hop(size)
    padded = (groups - 1) * hop + size
    if padded < length + hop:
        raise ValueError(f"{groups} segments of {size} frames cannot cover {length} frames")
    # fold wants (B, N*S, G) with the kernel (1, S) sliding by hop over a (1, padded) image
    cols = segments.permute(0, 3, 2, 1).reshape(batch, channels * size, groups)
    out = F.fold(cols, output_size=(1, padded), kernel_size=(1, size), stride=(1, hop))
    return out[:, :, 0, hop:hop + length]


class GlobalLayerNorm(nn.Module):
    """gLN (Conv-TasNet): statistics over every axis but the batch, gain and bias per channel.

    Works on any channels-last tensor (B, ..., N).
    """

    def __init__(self, channels: int, eps: float = 1e-8):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.dim()))
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


def _make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "gln":
        return GlobalLayerNorm(channels)
    if kind == "ln":
        return nn.LayerNorm(channels, eps=1e-8)
    raise ValueError(f"unknown norm {kind!r}; use 'gln' (non-causal) or 'ln' (per frame, causal)")


class _PathRNN(nn.Module):
    """LSTM along one axis of the segmented tensor, projection back to N, normalisation, residual."""

    def __init__(self, channels: int, hidden: int, bidirectional: bool, norm: str, dropout: float):
        super().__init__()
        self.rnn = nn.LSTM(channels, hidden, batch_first=True, bidirectional=bidirectional)
        self.proj = nn.Linear(hidden * (2 if bidirectional else 1), channels)
        self.norm = _make_norm(norm, channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, R, P, N); the LSTM runs along P for all B*R rows in one call
        b, r, p, n = x.shape
        y, _ = self.rnn(x.reshape(b * r, p, n))
        y = self.proj(self.dropout(y)).reshape(b, r, p, n)
        return x + self.norm(y)


class DPRNNBlock(nn.Module):
    """One dual-path block: intra-segment then inter-segment RNN, each with a residual.

    Args:
        channels: N, the feature size in and out (the bottleneck size).
        hidden: LSTM hidden units per direction.
        intra_bidirectional / inter_bidirectional: two-way LSTMs (the non-causal DPRNN) or one-way.
        norm: ``"gln"`` (global layer norm, non-causal) or ``"ln"`` (per frame over channels).
        dropout: on the LSTM outputs before the projection (0 in both papers).

    forward: (B, G, S, N) -> (B, G, S, N).
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        *,
        intra_bidirectional: bool = True,
        inter_bidirectional: bool = True,
        norm: str = "gln",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.intra = _PathRNN(channels, hidden, intra_bidirectional, norm, dropout)
        self.inter = _PathRNN(channels, hidden, inter_bidirectional, norm, dropout)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] != self.channels:
            raise ValueError(
                f"DPRNNBlock expects (batch, segments, size, {self.channels}); got {tuple(x.shape)}"
            )
        x = self.intra(x)  # along S, rows = (B, G)
        # (B, G, S, N) -> (B, S, G, N): the inter LSTM runs along G at each position s
        x = self.inter(x.transpose(1, 2).contiguous())
        return x.transpose(1, 2).contiguous()
