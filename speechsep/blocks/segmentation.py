"""Cutting a frame sequence into segments, and gluing segments back, with sizes known only at run time.

Axis legend (channels last, the layout the LSTMs and attention here want):
    B  batch      L  frames      N  channels
    J  segments   S  frames per segment      P  hop between segment starts (P <= S)

DPRNN, SkiM, RE-SepFormer and TFACM's T-Local cut their frames into segments whose count follows the
input length. Written with python ints (``math.ceil``, ``max``) or ``unfold``, that count is frozen
when the model is traced for ONNX export (``speechsep.export.offline``), and TorchScript's exporter
has no ``unfold`` or ``fold`` over a length it does not know. Here the count uses only ``+``, ``-``,
``*`` and ``//``, which a trace records as operations on the input's shape, and segments are made of
hop-long pieces by ``reshape`` and ``cat``: copies of the same values, so the numbers do not change.

* :func:`split` cuts into ``J = ceil(L / S)`` non-overlapping segments (the end zero-padded);
* :func:`windows` cuts ``J`` segments of ``S`` frames starting every ``P`` frames, and :func:`overlap_add`
  sums them back: segment ``j`` is the pieces ``j .. j + R - 1`` of ``P`` frames, ``R = ceil(S / P)``,
  so no strided view or ``unfold`` is needed;
* :func:`sliding` is ``unfold(-1, size, 1)`` (TF-GridNet's sub-band unfold), as shifted slices while traced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ceil_div", "segment_count", "split", "windows", "overlap_add", "sliding"]

#: a frame count: a python int in eager mode, a 0-d tensor while ``torch.jit.trace`` records shapes
Count = int | torch.Tensor


def ceil_div(n: Count, d: int) -> Count:
    """``ceil(n / d)`` for ``d > 0`` (any integer ``n``), in the integer ops a trace keeps symbolic."""
    return (n + d - 1) // d


def segment_count(frames: Count, size: int) -> Count:
    """Segments of ``size`` frames that cover ``frames`` frames; at least one (an empty input gets one
    segment of zeros). While tracing, ``frames >= 1`` is assumed: an encoder frames every input."""
    count = ceil_div(frames, size)
    return max(count, 1) if isinstance(count, int) else count


def split(x: torch.Tensor, size: int, count: Count | None = None) -> torch.Tensor:
    """(B, L, N) -> (B, J, S, N): ``count`` (default :func:`segment_count`) consecutive segments of
    ``size`` frames, zeros after the last frame."""
    if x.dim() != 3:
        raise ValueError(f"split expects (batch, frames, channels); got {tuple(x.shape)}")
    batch, frames, channels = x.shape
    count = segment_count(frames, size) if count is None else count
    padded = F.pad(x, (0, 0, 0, count * size - frames))  # (B, J*S, N)
    return padded.reshape(batch, count, size, channels)


def windows(x: torch.Tensor, size: int, hop: int, count: Count) -> torch.Tensor:
    """(B, L, N) -> (B, J, S, N) with ``J = count``: segment ``j`` holds frames ``[j P, j P + S)``, zeros
    past the end (``x`` is the already front-padded sequence; frames past what the segments reach are
    dropped)."""
    if x.dim() != 3:
        raise ValueError(f"windows expects (batch, frames, channels); got {tuple(x.shape)}")
    if not 1 <= hop <= size:
        raise ValueError(f"need 1 <= hop <= size; got size={size}, hop={hop}")
    batch, frames, channels = x.shape
    pieces = ceil_div(size, hop)
    # (B, L, N) -> (B, (J + R - 1) P, N) -> (B, J + R - 1, P, N): hop-long pieces
    padded = F.pad(x, (0, 0, 0, (count + pieces - 1) * hop - frames))
    chunks = padded.reshape(batch, count + pieces - 1, hop, channels)
    # segment j = pieces j .. j + R - 1, end to end: (B, J, R P, N), cut to S frames
    joined = torch.cat([chunks[:, r : r + count] for r in range(pieces)], dim=2) if pieces > 1 else chunks
    return joined[:, :, :size] if pieces * hop != size else joined


def overlap_add(segments: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, J, S, N) -> (B, (J - 1) P + S, N): the inverse of :func:`windows` by summing where segments
    overlap; frame ``t`` gets its segments in order of their offset ``t - j P`` (as ``F.fold`` adds them)."""
    if segments.dim() != 4:
        raise ValueError(f"overlap_add expects (batch, segments, size, channels); got {tuple(segments.shape)}")
    batch, count, size, channels = segments.shape
    pieces = ceil_div(size, hop)
    if pieces * hop != size:
        segments = F.pad(segments, (0, 0, 0, pieces * hop - size))
    out = None
    for r in range(pieces):
        # piece r of every segment lands on pieces r .. r + J - 1 of the output: (B, J P, N) shifted r P
        piece = segments[:, :, r * hop : (r + 1) * hop].reshape(batch, count * hop, channels)
        piece = F.pad(piece, (0, 0, r * hop, (pieces - 1 - r) * hop))
        out = piece if out is None else out + piece
    return out[:, : (count - 1) * hop + size]


def sliding(x: torch.Tensor, size: int) -> torch.Tensor:
    """(..., L) -> (..., L - size + 1, size): every run of ``size`` consecutive positions, ``x.unfold(-1, size, 1)``.

    While traced, the same values are stacked from ``size`` shifted slices: a copy instead of a view, but
    one the exporter can size at run time.
    """
    if not torch.jit.is_tracing():
        return x.unfold(-1, size, 1)
    count = x.shape[-1] - size + 1
    return torch.stack([x[..., i : i + count] for i in range(size)], dim=-1)
