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
``B*S``) at once; there is no Python loop over segments. Segmentation and overlap-add are a few
``reshape``/``cat``/``pad`` ops on hop-long pieces (:mod:`speechsep.blocks.segmentation`), whose sizes
a trace keeps symbolic: the model exports to ONNX with a dynamic length.

Causal variant: ``DPRNNBlock(..., intra_bidirectional=False, inter_bidirectional=False, norm="ln")``.
With one-way LSTMs, segment ``g`` at position ``s`` depends only on segments ``<= g`` at positions
``<= s``, i.e. on frames ``<= g*hop + s``, so 50 % overlap keeps causality (a *bidirectional* intra
LSTM would not: it reads the rest of the segment). ``"ln"`` normalises each frame over channels
only; ``"gln"`` (global over the utterance) looks at the future.

Stateful variant (:class:`CausalDualPath`, the streaming baselines of TFACM's Table I). ``DPRNNBlock``
takes no recurrent state in or out and :func:`segment` pads a hop of zeros in front, so it cannot
continue a stream. ``CausalDualPath`` cuts segments without front padding (segment ``j`` holds
frames ``[j P, j P + S)``, ``P = S / 2``), runs one-way :class:`ResidualLSTM` paths whose ``(h, c)``
is explicit, and shares them between ``forward`` and ``step``. The two keep separate weights layouts
(``DPRNNBlock``: ``nn.LSTM`` then ``nn.Linear``; ``ResidualLSTM``: an LSTM with a built-in
projection, which feeds the projected state back into the recurrence), so saved models of either
load unchanged.

Streaming (:meth:`CausalDualPath.step`). Every frame lies in two segments: the *newer* one (it
starts at most ``P - 1`` frames before) and the *older* one (started ``P`` frames earlier). ``step``
walks the new frames in runs that stay inside one hop, pushes each run through both segment tracks
of every block (the intra LSTM continues each track's state; the inter LSTM continues the state of
each position from the previous segment), and sums the two tracks, which is the offline overlap-add.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from speechsep.blocks import segmentation
from speechsep.blocks.recurrent import CausalLSTM, LSTMState
from speechsep.blocks.segmentation import ceil_div

__all__ = ["segment", "overlap_add", "num_segments", "DPRNNBlock", "GlobalLayerNorm", "group_norm",
           "ResidualLSTM", "DualPathState", "CausalDualPath"]


def _hop(size: int) -> int:
    if size < 2:
        raise ValueError(f"segment size must be at least 2 frames; got {size}")
    return size // 2


def num_segments(length: int, size: int) -> int:
    """Segments :func:`segment` makes of ``length`` frames (every frame lies in two segments).

    ``hop`` zeros go in front and the end is padded up to a whole number of hops:
    ``ceil((L + 2 hop - S) / hop) + 1``, in integer ops that a trace keeps symbolic (ONNX export)."""
    hop = _hop(size)
    return ceil_div(length + 2 * hop - size, hop) + 1


def segment(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, L) -> (B, G, S, N): 50 %-overlapping segments, zero-padded at both ends.

    ``hop`` zeros go in front so the first real frame is covered by two segments like every other
    frame; the end is padded up to a whole number of hops.
    """
    if x.dim() != 3:
        raise ValueError(f"segment expects (batch, channels, frames); got {tuple(x.shape)}")
    hop = _hop(size)
    groups = num_segments(x.shape[-1], size)
    # (B, N, L) -> (B, L + hop, N), hop zeros in front -> (B, G, S, N)
    front = F.pad(x, (hop, 0)).transpose(1, 2)
    return segmentation.windows(front, size, hop, groups).contiguous()


def overlap_add(segments: torch.Tensor, length: int) -> torch.Tensor:
    """(B, G, S, N) -> (B, N, L): inverse of :func:`segment` by summing overlapping segments."""
    if segments.dim() != 4:
        raise ValueError(f"overlap_add expects (batch, segments, size, channels); got {tuple(segments.shape)}")
    groups, size = segments.shape[1], segments.shape[2]
    hop = _hop(size)
    # a traced graph cannot raise: its sizes are run-time values there
    if not torch.jit.is_tracing() and (groups - 1) * hop + size < length + hop:
        raise ValueError(f"{groups} segments of {size} frames cannot cover {length} frames")
    out = segmentation.overlap_add(segments, hop)  # (B, (G - 1) hop + S, N)
    return out[:, hop : hop + length].transpose(1, 2)


def _traced_normalise(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` over ``dims``, statistics in two float64 passes: for traced graphs.

    TorchScript's exporter writes ``var_mean`` as ``E[x^2] - E[x]^2``, and onnxruntime reduces float32
    in one pass (ReduceMean, InstanceNormalization); over a long utterance of features with a mean,
    the normalised values lose digits. On 2.37 s of the paper-size time-domain iterative model the ONNX
    graph was 1.5e-4 of the output RMS away from PyTorch with them, 2.4e-6 with this.
    """
    y = x.double()
    centred = y - y.mean(dim=dims, keepdim=True)
    return (centred * torch.rsqrt(centred.square().mean(dim=dims, keepdim=True) + eps)).to(x.dtype)


def group_norm(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` for ``x`` ``(B, N, ...)``; while traced (ONNX export), with exact statistics."""
    if not torch.jit.is_tracing():
        return norm(x)
    # (B, N, ...) -> (B, groups, N / groups * ...): each group's statistics over its channels and positions
    y = _traced_normalise(x.reshape(x.shape[0], norm.num_groups, -1), (2,), norm.eps).reshape(x.shape)
    if not norm.affine:
        return y
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return y * norm.weight.view(shape) + norm.bias.view(shape)


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
        if torch.jit.is_tracing():
            return _traced_normalise(x, dims, self.eps) * self.weight + self.bias
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


# ----------------------------------------------------------------------------- stateful, one-way
class ResidualLSTM(nn.Module):
    """``x + LN(Linear(LSTM(x)))`` along the middle axis of ``(R, P, D)``, with explicit ``(h, c)``.

    The path of a DPRNN block (intra or inter) and of SkiM's SegLSTM / MemLSTM.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.rnn = CausalLSTM(channels, hidden, proj_size=channels)
        self.norm = nn.LayerNorm(channels, eps=1e-8)

    @property
    def hidden_size(self) -> int:
        return self.rnn.hidden_size

    def init_state(self, rows: int, *, device=None, dtype=None) -> LSTMState:
        return self.rnn.init_state(rows, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each row from a zero state."""
        return self.step(x, self.init_state(x.shape[0], device=x.device, dtype=x.dtype))[0]

    def step(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """Each row continuing ``state`` (a stream's, or a segment's given start); the state after it."""
        y, state = self.rnn.step(x, state)
        return x + self.norm(y), state


class DualPathState(NamedTuple):
    """Streaming state of :class:`CausalDualPath` (R = number of blocks).

    intra_h, intra_c: ``(R, B, 2, H)`` intra-LSTM state of the older and the newer segment track.
    inter_h, inter_c: ``(R, B, S, H)`` inter-LSTM state at every within-segment position.
    frames: 0-d int64, frames consumed so far (fixes the position inside the current hop).
    """

    intra_h: torch.Tensor
    intra_c: torch.Tensor
    inter_h: torch.Tensor
    inter_c: torch.Tensor
    frames: torch.Tensor


class CausalDualPath(nn.Module):
    """Stack of one-way dual-path blocks on ``(B, K, D)`` (channels last), 50 % overlapping segments."""

    def __init__(self, channels: int, hidden: int, segment: int, num_blocks: int):
        super().__init__()
        if segment < 2 or segment % 2:
            raise ValueError(f"segment size must be an even number >= 2 frames; got {segment}")
        self.channels, self.hidden, self.segment, self.hop = channels, hidden, segment, segment // 2
        self.intra = nn.ModuleList(ResidualLSTM(channels, hidden) for _ in range(num_blocks))
        self.inter = nn.ModuleList(ResidualLSTM(channels, hidden) for _ in range(num_blocks))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.channels:
            raise ValueError(f"CausalDualPath expects (B, K, {self.channels}); got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        batch, frames, dim = x.shape
        hop, size = self.hop, self.segment
        groups = segmentation.segment_count(frames, hop)
        # segment j holds frames [jP, jP + S), zeros past the end: (B, K, D) -> (B, J, S, D)
        seg = segmentation.windows(x, size, hop, groups)
        for intra, inter in zip(self.intra, self.inter, strict=True):
            seg = intra(seg.reshape(batch * groups, size, dim)).view(batch, groups, size, dim)
            # (B, J, S, D) -> (B*S, J, D): the inter LSTM runs across segments at each position
            across = seg.transpose(1, 2).reshape(batch * size, groups, dim)
            seg = inter(across).view(batch, size, groups, dim).transpose(1, 2)
        # 50 % overlap-add: first halves land on [jP, jP+P), second halves on [(j+1)P, (j+2)P)
        return segmentation.overlap_add(seg, hop)[:, :frames]

    def init_state(self, batch_size: int, *, device=None, dtype=torch.float32) -> DualPathState:
        blocks = len(self.intra)
        intra = torch.zeros(blocks, batch_size, 2, self.hidden, device=device, dtype=dtype)
        inter = torch.zeros(blocks, batch_size, self.segment, self.hidden, device=device, dtype=dtype)
        return DualPathState(intra, intra.clone(), inter, inter.clone(),
                             torch.zeros((), dtype=torch.long, device=device))

    def step(self, x: torch.Tensor, state: DualPathState) -> tuple[torch.Tensor, DualPathState]:
        self._check(x)
        batch, frames, dim = x.shape
        hop, hidden = self.hop, self.hidden
        ih, ic, eh, ec = (t.clone() for t in state[:4])
        t, pos, outs = int(state.frames), 0, []
        while pos < frames:
            r, j = t % hop, t // hop
            run = min(hop - r, frames - pos)
            if r == 0 and j > 0:  # a new segment starts: the newer track becomes the older one
                ih[:, :, 0], ic[:, :, 0] = ih[:, :, 1], ic[:, :, 1]
                ih[:, :, 1], ic[:, :, 1] = 0.0, 0.0
            # tracks: 0 = older segment (positions r+P..), 1 = newer segment (positions r..); segment -1 is absent
            tracks = slice(1, 2) if j == 0 else slice(0, 2)
            offsets = [hop, 0][tracks]
            nt = len(offsets)
            index = torch.tensor([[o + r + i for i in range(run)] for o in offsets], device=x.device).view(-1)
            z = x[:, pos:pos + run].unsqueeze(1).expand(batch, nt, run, dim)
            for b, (intra, inter) in enumerate(zip(self.intra, self.inter, strict=True)):
                st = LSTMState(ih[b, :, tracks].reshape(1, batch * nt, hidden),
                               ic[b, :, tracks].reshape(1, batch * nt, hidden))
                z, st = intra.step(z.reshape(batch * nt, run, dim), st)
                ih[b, :, tracks], ic[b, :, tracks] = st.h.view(batch, nt, hidden), st.c.view(batch, nt, hidden)
                # one inter step per (track, position), each continuing its position's own state
                st = LSTMState(eh[b][:, index].reshape(1, batch * nt * run, hidden),
                               ec[b][:, index].reshape(1, batch * nt * run, hidden))
                z, st = inter.step(z.reshape(batch * nt * run, 1, dim), st)
                eh[b][:, index], ec[b][:, index] = st.h.view(batch, nt * run, hidden), st.c.view(batch, nt * run, hidden)
            outs.append(z.view(batch, nt, run, dim).sum(1))
            t, pos = t + run, pos + run
        out = torch.cat(outs, dim=1) if outs else x.new_zeros(batch, 0, dim)
        return out, DualPathState(ih, ic, eh, ec, state.frames + frames)
