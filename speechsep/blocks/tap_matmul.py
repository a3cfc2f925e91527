"""Transposed 1-D convolution of a channels-last tensor, computed as one matrix product per kernel tap.

Axis legend: ``L`` positions along the convolved axis (frames or sub-bands), ``C`` channels (last).

TFACM's F-Local and T-Local (Sec. II-C) end in a transposed convolution back to the feature size.
Their data is channels-last at that point (the LSTM's output), and the positions are few per call in
a stream (16 frames, 26-30 sub-bands). ``nn.ConvTranspose1d`` wants ``(B, C, L)``, so the caller had
to transpose a copy in and out, and oneDNN's deconvolution kernel is slow at such short L. A
transposed convolution is the sum over taps j of ``x @ W[:, :, j]`` placed at ``i * stride + j``:
``k`` plain matrix products of all positions at once, added into strided slices of the output.
At a stream's 16 frames this takes 0.72-0.77x the time of the transposed conv, offline about the same
(``python -m bench tfacm kernels``; BENCHMARKS.md, "TFACM").

A trace (the ONNX export) does not take this route: the strided in-place adds export as
element-wise ScatterND, which onnxruntime runs slowly (a third of tfacm-lite's streaming step), so a
trace runs the transposed-convolution operator on the axis moved next to the channels.

The weights stay in ``nn.ConvTranspose1d``'s layout ``(C_in, C_out, k)``, so checkpoints do not change.
"""

from __future__ import annotations

import torch

__all__ = ["conv_transpose_taps"]


def conv_transpose_taps(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, dim: int,
                        stride: int = 1, start: int = 0, length: int | None = None) -> torch.Tensor:
    """Transposed convolution of ``x`` (channels last) along axis ``dim``.

    ``x`` ``(..., L, ..., C_in)``; ``weight`` ``(C_in, C_out, k)``; input position i through tap j lands
    on output position ``i * stride + j``. Returns output positions ``start .. start + length - 1``
    (default: all ``(L - 1) * stride + k``) as ``(..., length, ..., C_out)``: positions outside that
    range are never computed.
    """
    dim = dim % x.dim()
    if dim == x.dim() - 1:
        raise ValueError("conv_transpose_taps: the last axis holds the channels, it cannot be the convolved one")
    if x.shape[-1] != weight.shape[0]:
        raise ValueError(f"conv_transpose_taps: input has {x.shape[-1]} channels, the weight expects {weight.shape[0]}")
    steps, taps = x.shape[dim], weight.shape[-1]
    if length is None:
        length = (steps - 1) * stride + taps - start
    if torch.jit.is_tracing():
        return _conv_transpose_traced(x, weight, bias, dim=dim, stride=stride, start=start, length=length)
    shape = list(x.shape)
    shape[dim], shape[-1] = length, weight.shape[1]
    out = x.new_zeros(shape) if bias is None else bias.to(x.dtype).expand(shape).clone()
    index = [slice(None)] * x.dim()
    for j in range(taps):
        first = max(0, -((j - start) // stride))  # smallest i with i * stride + j >= start
        stop = min(steps, (start + length - 1 - j) // stride + 1)  # past the largest i landing inside
        if stop <= first:
            continue
        at = first * stride + j - start
        index[dim] = slice(at, at + (stop - first - 1) * stride + 1, stride)
        out[tuple(index)] += torch.matmul(x.narrow(dim, first, stop - first), weight[:, :, j])
    return out


def _conv_transpose_traced(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, dim: int,
                           stride: int, start: int, length: int) -> torch.Tensor:
    """:func:`conv_transpose_taps` for a trace (ONNX export): the strided in-place adds export as
    element-wise ScatterND, which onnxruntime runs slowly (a third of tfacm-lite's streaming step), so a
    trace moves the axis next to the channels and runs the transposed convolution operator itself."""
    steps, taps = x.shape[dim], weight.shape[-1]
    moved = x.movedim(dim, x.dim() - 2)  # (..., L, C_in); axes counted from the front (ONNX perms)
    lead = moved.shape[:-2]
    flat = moved.reshape(-1, steps, x.shape[-1]).transpose(1, 2)  # (N, C_in, L)
    y = torch.nn.functional.conv_transpose1d(flat, weight, None if bias is None else bias.to(x.dtype), stride=stride)
    full = (steps - 1) * stride + taps
    y = y[:, :, start : min(start + length, full)]
    if start + length > full:  # positions no tap reaches: the bias alone, as in the eager sum
        tail = (torch.zeros(y.shape[0], y.shape[1], start + length - full, dtype=y.dtype, device=y.device)
                if bias is None else bias.to(y.dtype).view(1, -1, 1).expand(y.shape[0], -1, start + length - full))
        y = torch.cat([y, tail], dim=-1)
    return y.transpose(1, 2).reshape(*lead, length, weight.shape[1]).movedim(x.dim() - 2, dim)
