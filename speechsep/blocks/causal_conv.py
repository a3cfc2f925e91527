"""Convolutions that are causal in time, with a cache so that they stream.

Axis legend: ``B`` batch, ``C`` channels, ``F`` frequency bins, ``K`` frames. Time is the LAST axis:
1-D layers take ``(B, C, K)``, 2-D layers ``(B, C, F, K)`` (frequency may be padded on both sides,
it is not time).

TFACM (Sec. II-B) makes TF-GridNet causal by giving its convolutions and transposed convolutions
no future context: CConv1d/CConv2d and CDeconv1d/CDeconv2d. Here each layer needs ``context``
past input frames to compute its outputs. The offline ``forward`` prepends ``context`` zero frames;
``step`` prepends the cached last ``context`` input frames instead and returns the new cache. Both
then call the same ``_compute``, so the arithmetic exists once and ``step`` over any split of the
frames equals ``forward``.

The state of every layer here is one tensor: the last ``context`` input frames, ``(B, C, [F,] context)``
(``(B, context, C)`` for a 1-D transposed conv built ``channels_last``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from speechsep.blocks.tap_matmul import conv_transpose_taps

__all__ = ["CausalConv1d", "CausalConv2d", "CausalConvTranspose1d", "CausalConvTranspose2d"]


class _TimeCached(nn.Module):
    """Shared cache logic; subclasses set ``context``, ``in_channels``, ``time_ratio`` and ``_compute``."""

    context: int
    in_channels: int
    #: output frames per input frame (the time stride of a transposed convolution)
    time_ratio: int = 1
    #: number of axes of the input (3 for 1-D, 4 for 2-D layers)
    input_dims: int = 3
    #: ``(B, K, C)`` instead of ``(B, C, K)`` (1-D layers that support it)
    channels_last: bool = False

    @property
    def _time_dim(self) -> int:
        return -2 if self.channels_last else -1

    def _check(self, x: torch.Tensor) -> None:
        channels = x.shape[-1 if self.channels_last else 1] if x.dim() >= 2 else None
        if x.dim() != self.input_dims or channels != self.in_channels:
            want = "(B, K, C)" if self.channels_last else "(B, C, K)" if self.input_dims == 3 else "(B, C, F, K)"
            raise ValueError(
                f"{type(self).__name__} expects {want} with C = {self.in_channels}; got {tuple(x.shape)}"
            )

    def init_state(self, batch_size: int, num_bins: int | None = None, *, device=None, dtype=None) -> torch.Tensor:
        """Zero cache ``(B, C, [F,] context)`` (``(B, context, C)`` channels-last): the stream starts from
        silence, as ``forward`` does."""
        middle = () if self.input_dims == 3 else (int(num_bins),)
        shape = (batch_size, self.context, self.in_channels) if self.channels_last else \
            (batch_size, self.in_channels, *middle, self.context)
        weight = next(self.parameters())
        return torch.zeros(shape, device=device or weight.device, dtype=dtype or weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        n = x.shape[self._time_dim]
        if n == 0:
            return self._empty_output(x)
        pad = (0, 0, self.context, 0) if self.channels_last else (self.context, 0)
        return self._compute(F.pad(x, pad), n)

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x)
        dim = self._time_dim
        n = x.shape[dim]
        if n == 0:
            return self._empty_output(x), cache
        if self.context == 0:  # nothing to remember (a kernel of one frame)
            return self._compute(x, n), cache
        full = torch.cat([cache, x], dim=dim)
        return self._compute(full, n), full.narrow(dim, full.shape[dim] - self.context, self.context)

    def _empty_output(self, x: torch.Tensor) -> torch.Tensor:
        shape = list(x.shape)
        shape[self._time_dim] = self.context + 1
        return self._compute(x.new_zeros(shape), 1).narrow(self._time_dim, 0, 0)

    def _compute(self, full: torch.Tensor, n: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class CausalConv1d(_TimeCached):
    """``(B, C_in, K) -> (B, C_out, K)``; output frame k sees input frames k - (kernel-1)*dilation .. k."""

    input_dims = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1,
                 groups: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.context = (kernel_size - 1) * dilation
        # an nn.Conv1d (not F.conv1d) so that ptflops' module hooks count its MACs
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups, bias=bias)

    def _compute(self, full: torch.Tensor, n: int) -> torch.Tensor:
        return self.conv(full)


class CausalConv2d(_TimeCached):
    """``(B, C_in, F, K) -> (B, C_out, F', K)``: causal over frames K, ordinary over bins F.

    ``freq_padding`` defaults to ``freq_kernel // 2`` on both sides (F' = F for stride 1).
    """

    input_dims = 4

    def __init__(self, in_channels: int, out_channels: int, *, time_kernel: int, freq_kernel: int = 1,
                 freq_padding: int | None = None, freq_stride: int = 1, time_dilation: int = 1,
                 groups: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.context = (time_kernel - 1) * time_dilation
        pad_f = freq_kernel // 2 if freq_padding is None else freq_padding
        self.conv = nn.Conv2d(in_channels, out_channels, (freq_kernel, time_kernel), stride=(freq_stride, 1),
                              padding=(pad_f, 0), dilation=(1, time_dilation), groups=groups, bias=bias)

    def _compute(self, full: torch.Tensor, n: int) -> torch.Tensor:
        conv = self.conv
        if conv.kernel_size == (1, 1) and conv.groups == conv.in_channels == conv.out_channels:
            # a 1x1 depth-wise conv is a per-channel scale: PyTorch's grouped-conv path would loop over
            # the channels (0.7 ms instead of microseconds on a (1, 64, 33, 16) input)
            y = full * conv.weight.view(1, -1, 1, 1)
            return y + conv.bias.view(1, -1, 1, 1) if conv.bias is not None else y
        return conv(full)


class CausalConvTranspose1d(_TimeCached):
    """Transposed convolution over frames: ``(B, C_in, K) -> (B, C_out, K * stride)``.

    Input frame i is spread over output frames i*stride .. i*stride + kernel - 1, never earlier, so
    the layer is causal. Output frames before (i+1)*stride are complete once input i has arrived;
    the tail still waiting for later inputs is recomputed from the cached ``ceil((kernel-1)/stride)``
    input frames.

    ``channels_last=True`` takes and returns ``(B, K, C)`` (an LSTM's layout) and computes with
    :func:`~speechsep.blocks.tap_matmul.conv_transpose_taps` from the same weights (groups = 1).
    """

    input_dims = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 groups: int = 1, bias: bool = True, channels_last: bool = False):
        super().__init__()
        if channels_last and groups != 1:
            raise ValueError("a channels-last CausalConvTranspose1d has groups = 1")
        self.in_channels, self.channels_last = in_channels, channels_last
        self.time_ratio = stride
        self.context = math.ceil((kernel_size - 1) / stride)
        # With stride 1 the transposed conv's own padding crops exactly the ``context`` outputs at each
        # end that are not wanted, so they are never computed; other strides slice.
        self._crop = self.context if stride == 1 else 0
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride, groups=groups,
                                       bias=bias, padding=self._crop)

    def _compute(self, full: torch.Tensor, n: int) -> torch.Tensor:
        if self.channels_last:
            return conv_transpose_taps(full, self.conv.weight, self.conv.bias, dim=1, stride=self.time_ratio,
                                       start=self.context * self.time_ratio, length=n * self.time_ratio)
        start = self.context * self.time_ratio - self._crop
        return self.conv(full)[..., start : start + n * self.time_ratio]


class CausalConvTranspose2d(_TimeCached):
    """``(B, C_in, F, K) -> (B, C_out, F', K * time_stride)``: causal transposed conv over frames,
    ordinary over bins (``freq_padding`` defaults to ``freq_kernel // 2``: F' = F for stride 1 and odd kernel).
    """

    input_dims = 4

    def __init__(self, in_channels: int, out_channels: int, *, time_kernel: int, freq_kernel: int = 1,
                 freq_padding: int | None = None, time_stride: int = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.time_ratio = time_stride
        self.context = math.ceil((time_kernel - 1) / time_stride)
        pad_f = freq_kernel // 2 if freq_padding is None else freq_padding
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, (freq_kernel, time_kernel),
                                       stride=(1, time_stride), padding=(pad_f, 0), groups=groups, bias=bias)

    def _compute(self, full: torch.Tensor, n: int) -> torch.Tensor:
        start = self.context * self.time_ratio
        return self.conv(full)[..., start : start + n * self.time_ratio]
