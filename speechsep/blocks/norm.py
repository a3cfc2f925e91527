"""Normalisation layers that never look at a later frame.

Axis legend: ``B`` batch, ``N`` channels, ``F`` frequency bins, ``K`` frames (time is always the last
axis). A layer norm over the whole utterance (gLN, GroupNorm(1, N)) reads every frame, so a causal
model may only normalise

* over channels at each (bin, frame): :class:`ChannelLayerNorm` (TF-GridNet's 4-D layer norm);
* over channels and bins of each frame: :class:`FrameLayerNorm` (TF-GridNet's attention norm);
* over channels with statistics accumulated from the first frame up to now:
  :class:`CumulativeLayerNorm` (Conv-TasNet's cLN), the only one of the three that keeps a state.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChannelLayerNorm", "FrameLayerNorm", "CumulativeLayerNorm", "CumulativeStats"]


def _normalise(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).pow(2).mean(dim=dims, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis (dim 1) of ``(B, N, ...)``, separately at every position.

    Each frame is normalised with its own statistics, so the layer is causal and needs no state.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"ChannelLayerNorm expects (B, {self.num_channels}, ...); got {tuple(x.shape)}")
        shape = (1, self.num_channels) + (1,) * (x.dim() - 2)
        return _normalise(x, (1,), self.eps) * self.weight.view(shape) + self.bias.view(shape)

    def channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """The same normalisation of ``(..., N)``, channels on the LAST axis: one fused ``layer_norm``
        call instead of the eight element-wise ops above (for callers that permute to channels-last
        anyway: TFACM's F-Local and T-Local). The result is contiguous."""
        if x.dim() < 1 or x.shape[-1] != self.num_channels:
            raise ValueError(f"ChannelLayerNorm.channels_last expects (..., {self.num_channels}); got {tuple(x.shape)}")
        return F.layer_norm(x, (self.num_channels,), self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


class FrameLayerNorm(nn.Module):
    """Layer norm over channels and bins of each frame: ``(B, N, F, K)`` normalised over (N, F).

    The gain and bias are per (channel, bin), as in TF-GridNet's attention branch.
    """

    def __init__(self, num_channels: int, num_bins: int, eps: float = 1e-5):
        super().__init__()
        self.num_channels, self.num_bins, self.eps = num_channels, num_bins, eps
        self.weight = nn.Parameter(torch.ones(num_channels, num_bins, 1))
        self.bias = nn.Parameter(torch.zeros(num_channels, num_bins, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:3] != (self.num_channels, self.num_bins):
            raise ValueError(
                f"FrameLayerNorm expects (B, {self.num_channels}, {self.num_bins}, K); got {tuple(x.shape)}"
            )
        return _normalise(x, (1, 2), self.eps) * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"({self.num_channels}, {self.num_bins}), eps={self.eps}"


class CumulativeStats(NamedTuple):
    """Running sums of :class:`CumulativeLayerNorm`, each ``(B, 1)``: frames' element count, sum, sum of squares."""

    count: torch.Tensor
    total: torch.Tensor
    total_sq: torch.Tensor


class CumulativeLayerNorm(nn.Module):
    """Cumulative layer norm (Conv-TasNet's cLN) on ``(B, N, K)``.

    Frame ``k`` is normalised with the mean and variance of all channels of frames ``0..k``. The
    streaming state carries the running sums, so ``step`` over chunks equals ``forward``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-8):
        super().__init__()
        self.num_channels, self.eps = num_channels, eps
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def init_state(self, batch_size: int, device=None, dtype=torch.float32) -> CumulativeStats:
        # float64 sums: an hour at 1,000 frames/s would lose precision in float32.
        zero = torch.zeros(batch_size, 1, device=device, dtype=torch.float64)
        return CumulativeStats(zero, zero.clone(), zero.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step(x, self.init_state(x.shape[0], x.device))[0]

    def step(self, x: torch.Tensor, state: CumulativeStats) -> tuple[torch.Tensor, CumulativeStats]:
        if x.dim() != 3 or x.shape[1] != self.num_channels:
            raise ValueError(f"CumulativeLayerNorm expects (B, {self.num_channels}, K); got {tuple(x.shape)}")
        x64 = x.double()
        count = state.count + self.num_channels * torch.arange(1, x.shape[-1] + 1, device=x.device)  # (B, K)
        total = state.total + x64.sum(1).cumsum(-1)
        total_sq = state.total_sq + x64.pow(2).sum(1).cumsum(-1)
        mean = total / count
        var = (total_sq / count - mean.pow(2)).clamp_min(0.0)
        y = (x - mean.unsqueeze(1).to(x.dtype)) * torch.rsqrt(var.unsqueeze(1).to(x.dtype) + self.eps)
        new_state = CumulativeStats(count[:, -1:], total[:, -1:], total_sq[:, -1:]) if x.shape[-1] else state
        return y * self.weight + self.bias, new_state
