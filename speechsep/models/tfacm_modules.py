"""The parts of the TFACM separator (the TFACM paper, Sec. II-C): F-Local, T-Local, cache memory, CAR.

Axis legend:
    B  batch          N  embedding channels       F  frequency bins       K  frames (a chunk of them)
    H  LSTM hidden    E  per-head query/key channels                     M  heads
    W1 sub-band width S1 sub-band stride          W2 T-Local segment length in frames
    P  pieces of a chunk (see ``segment_pieces``)

Every module works on a *chunk* of frames and a state, and the offline forward of the model is the
same calls on big chunks from the initial state. The one exception is T-Local: its streaming
``step`` finds segment boundaries with tensor masks (a traced graph runs it frame by frame, eager mode
in one LSTM call per run of frames between segment starts),
while the offline forward keeps :meth:`TLocal.forward_block`, whole segments in one batched LSTM
call, for training speed; the streaming contract tests check that the two agree.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from speechsep.blocks import segmentation
from speechsep.blocks.attention import KVCache, WindowedCausalAttention
from speechsep.blocks.causal_conv import CausalConv2d, CausalConvTranspose1d
from speechsep.blocks.norm import ChannelLayerNorm, FrameLayerNorm
from speechsep.blocks.recurrent import CausalLSTM, LSTMState, select_state
from speechsep.blocks.tap_matmul import conv_transpose_taps

__all__ = ["segment_pieces", "SegmentStates", "FLocal", "TLocal", "CacheMemory", "MemoryState", "CAR",
           "CARState"]


def segment_pieces(position: int, frames: int, segment: int) -> list[int]:
    """Split ``frames`` frames starting at stream frame ``position`` at multiples of ``segment``.

    >>> segment_pieces(65, 150, 70)   # 5 frames finish segment 0, then segment 1 whole, then 5 of segment 2
    [5, 70, 70, 5]
    """
    if frames <= 0:
        return []
    head = min(segment - position % segment, frames)
    rest = frames - head
    return [head] + [segment] * (rest // segment) + ([rest % segment] if rest % segment else [])


class SegmentStates(NamedTuple):
    """LSTM-T states, one per segment piece: ``h`` and ``c`` each ``(P, B*F, H)``."""

    h: torch.Tensor
    c: torch.Tensor

    def take(self, start: int, stop: int | None = None) -> SegmentStates:
        return SegmentStates(self.h[start:stop], self.c[start:stop])

    def lstm_state(self, index: int) -> LSTMState:
        return LSTMState(self.h[index : index + 1], self.c[index : index + 1])


class FLocal(nn.Module):
    """F-Local (Sec. II-C): per frame, unfold the bins into sub-bands of W1 bins (stride S1), layer norm,
    a one-way LSTM across the L_F sub-bands, a transposed conv back to F bins, and a residual.

    It never mixes frames, so it has no streaming state. ``(B, N, F, K) -> (B, N, F, K)``.
    """

    def __init__(self, channels: int, hidden: int, num_bins: int, width: int, stride: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.width, self.stride, self.num_bins = channels, width, stride, num_bins
        # L_F = (F - W1) / S1 + 1, rounded up: the bins are zero-padded at the top to fit
        self.num_subbands = -(-max(num_bins - width, 0) // stride) + 1
        self.padded_bins = (self.num_subbands - 1) * stride + width
        self.norm = ChannelLayerNorm(channels, eps)
        self.lstm = CausalLSTM(channels * width, hidden, batch_first=False)
        # holds the weights (the checkpoints' layout); applied by ``conv_transpose_taps``
        self.back = nn.ConvTranspose1d(hidden, channels, width, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, f, k = x.shape
        # sub-band-major, the LSTM's own layout: one copy of the unfolded input, none inside the LSTM
        y = self.norm.channels_last(x.permute(2, 0, 3, 1))  # (F, B, K, N)
        if self.padded_bins > f:
            y = F.pad(y, (0, 0, 0, 0, 0, 0, 0, self.padded_bins - f))  # (F_padded, B, K, N)
        if torch.jit.is_tracing():
            # the ONNX exporter cannot unfold a tensor whose shape it does not track: gather the same
            # bins (bin s*S1 + w of sub-band s) with an index instead; the values are identical
            index = (torch.arange(self.num_subbands)[:, None] * self.stride + torch.arange(self.width)).flatten()
            y = y.index_select(0, index.to(y.device)).reshape(self.num_subbands, self.width, b, k, n)
            y = y.permute(0, 2, 3, 4, 1)  # (L_F, B, K, N, W1)
        else:
            y = y.unfold(0, self.width, self.stride)  # (L_F, B, K, N, W1)
        y = y.reshape(self.num_subbands, b * k, n * self.width)  # (L_F, B*K, N*W1)
        # the LSTM's output is sub-band-major, channels last: the transposed conv back to the bins runs
        # on it as it is, one matrix product per tap, and only the F real bins are computed
        y = conv_transpose_taps(self.lstm(y), self.back.weight, self.back.bias, dim=0, stride=self.stride,
                                length=f)  # (F, B*K, N)
        return x + y.view(f, b, k, n).permute(1, 3, 0, 2)


class TLocal(nn.Module):
    """T-Local (Sec. II-C, SkiM-like): for each bin, frames are cut into non-overlapping segments of W2
    frames, each run through LSTM-T from its own initial state (the cache memory's, eq. 2), then a
    causal transposed conv over frames and a residual.

    Streaming (:meth:`step`) restarts LSTM-T where a mask marks a segment start (frame by frame in a
    trace, eagerly one LSTM call per run of frames between starts).
    The offline forward runs blocks of frames through :meth:`forward_block` instead: a block that starts
    mid-segment is cut into pieces (``segment_pieces``), the first continuing the carried LSTM state,
    every later piece starting a new segment from ``inits``; whole segments inside a block are
    independent given their initial states, so they run as one batched LSTM call.
    """

    def __init__(self, channels: int, hidden: int, segment: int, kernel: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.hidden, self.segment = channels, hidden, segment
        self.norm = ChannelLayerNorm(channels, eps)
        self.lstm = CausalLSTM(channels, hidden, proj_size=channels)
        self.lstm_norm = nn.LayerNorm(channels, eps=eps)
        self.back = CausalConvTranspose1d(channels, channels, kernel, channels_last=True)

    def _sequence(self, x: torch.Tensor) -> torch.Tensor:
        b, n, f, k = x.shape
        return self.norm.channels_last(x.permute(0, 2, 3, 1)).view(b * f, k, n)  # (B*F, K, N)

    def _finish(self, x: torch.Tensor, seq: torch.Tensor, y: torch.Tensor, conv_cache: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``conv_cache=None``: the transposed conv from silence (its ``forward``), no cache back."""
        b, n, f, k = x.shape
        y = seq + self.lstm_norm(y)  # SkiM's segment LSTM: residual around the normalised projection
        if conv_cache is None:
            y = self.back(y)  # (B*F, K, N)
        else:
            y, conv_cache = self.back.step(y, conv_cache)
        return x + y.view(b, f, k, n).permute(0, 3, 1, 2), conv_cache

    def forward(self, x: torch.Tensor, inits: SegmentStates) -> tuple[torch.Tensor, SegmentStates]:
        """The whole sequence from the stream's start, every segment at once: :meth:`forward_block` from frame 0
        with a zero carry, in sizes a trace keeps symbolic (offline ONNX export).

        ``x`` ``(B, N, F, K)``; ``inits`` ``(J, B*F, H)`` starts segment ``j`` of ``J = ceil(K / W2)`` (segment 0
        included). The last segment runs over zeros past frame K, so of its final state (returned
        with the others) only what its real frames reach is right; eq. 2 never uses it.
        """
        b, n, f, k = x.shape
        groups = inits.h.shape[0]
        seq = self._sequence(x)  # (B*F, K, N)
        # (B*F, K, N) -> (B*F*J, W2, N), batch index = bf * J + segment (``forward_block``'s layout)
        inp = segmentation.split(seq, self.segment, groups).reshape(b * f * groups, self.segment, n)
        h0 = inits.h.transpose(0, 1).reshape(1, b * f * groups, self.hidden)
        c0 = inits.c.transpose(0, 1).reshape(1, b * f * groups, self.hidden)
        y, st = self.lstm.step(inp, LSTMState(h0.contiguous(), c0.contiguous()))
        y = y.reshape(b * f, groups * self.segment, n)[:, :k]
        finals = SegmentStates(st.h.reshape(b * f, groups, self.hidden).transpose(0, 1),
                               st.c.reshape(b * f, groups, self.hidden).transpose(0, 1))
        return self._finish(x, seq, y, None)[0], finals

    def forward_block(self, x: torch.Tensor, position: int, carry: LSTMState, inits: SegmentStates | None,
                      conv_cache: torch.Tensor) -> tuple[torch.Tensor, SegmentStates, torch.Tensor]:
        """:meth:`step`'s output on a block of frames at python-int stream ``position``, with every whole
        segment in one batched LSTM call: kept for the offline forward's speed (training), and for the
        unaligned ablation, whose segments start from states :meth:`step` has no room for.

        ``x`` ``(B, N, F, K)``; ``carry`` continues the first piece; ``inits`` starts pieces 1, 2, ...
        Returns the output, the final LSTM-T state of every piece, and the new transposed-conv cache.
        """
        b, n, f, k = x.shape
        pieces = segment_pieces(position, k, self.segment)
        seq = self._sequence(x)
        outs, finals_h, finals_c = [], [], []
        head = pieces[0]
        y, st = self.lstm.step(seq[:, :head], carry)
        outs.append(y)
        finals_h.append(st.h)
        finals_c.append(st.c)
        full = sum(1 for p in pieces[1:] if p == self.segment)
        if full:
            # whole segments: (B*F, full*W2, N) -> (B*F*full, W2, N), batch index = bf * full + segment
            inp = seq[:, head : head + full * self.segment].reshape(b * f * full, self.segment, n)
            h0 = inits.h[:full].transpose(0, 1).reshape(1, b * f * full, self.hidden)
            c0 = inits.c[:full].transpose(0, 1).reshape(1, b * f * full, self.hidden)
            y, st = self.lstm.step(inp, LSTMState(h0.contiguous(), c0.contiguous()))
            outs.append(y.reshape(b * f, full * self.segment, n))
            finals_h.append(st.h.reshape(b * f, full, self.hidden).transpose(0, 1))
            finals_c.append(st.c.reshape(b * f, full, self.hidden).transpose(0, 1))
        if len(pieces) > 1 + full:  # a last, partial segment
            y, st = self.lstm.step(seq[:, head + full * self.segment :], inits.lstm_state(full))
            outs.append(y)
            finals_h.append(st.h)
            finals_c.append(st.c)
        y = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        out, conv_cache = self._finish(x, seq, y, conv_cache)
        return out, SegmentStates(torch.cat(finals_h, 0), torch.cat(finals_c, 0)), conv_cache

    def step(self, x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, carry: LSTMState,
             init: LSTMState, conv_cache: torch.Tensor) -> tuple[torch.Tensor, LSTMState, LSTMState, torch.Tensor]:
        """The streaming step, segment boundaries as tensors (so that a trace of it holds at every
        stream position: ONNX export runs this same step).

        ``starts``/``ends`` ``(K,)`` bool mark the frames that start/finish a segment; at most one
        segment may finish inside the chunk (the caller checks K <= W2). Frame by frame, LSTM-T
        continues ``carry`` and restarts from ``init`` at a start (frame 0 never restarts: a chunk that
        starts a segment was given its initial state as ``carry``). Returns the output, the state after
        the last frame, the state after the frame that finished a segment (unused if none did) and
        the transposed-conv cache.
        """
        seq = self._sequence(x)
        k = seq.shape[1]
        # LSTM-T runs in one call over each run of frames that no segment start interrupts: a restart
        # (and the state after a finished segment, which is the frame before one) falls between runs.
        # A trace must hold at every stream position, so there any frame may start a segment and
        # every run is one frame; eagerly the cuts are the frames that do (none, in most chunks).
        if torch.jit.is_tracing():
            cuts = list(range(1, k))
        else:
            cuts = (starts[1:].nonzero().flatten() + 1).tolist()
        bounds = [0, *cuts, k]
        state, done, outs = carry, carry, []
        for s, e in zip(bounds[:-1], bounds[1:], strict=True):
            if s:
                state = select_state(starts[s], init, state)
            y, state = self.lstm.step(seq[:, s:e], state)
            done = select_state(ends[e - 1], state, done)
            outs.append(y)
        out, conv_cache = self._finish(x, seq, torch.cat(outs, dim=1) if len(outs) != 1 else outs[0], conv_cache)
        return out, state, done, conv_cache


class MemoryState(NamedTuple):
    """Streaming state of the cache memory at one block boundary: LSTM-H's and LSTM-C's ``(h, c)``."""

    h_net: LSTMState
    c_net: LSTMState


class CacheMemory(nn.Module):
    """Cache memory (eq. 1): LSTM-H and LSTM-C re-encode the final (h, c) of each completed segment,
    running one-way over the sequence of segments, with a residual around a layer-normed projection.
    One instance is shared by all blocks (each boundary keeps its own streaming state).
    The shift of eq. 2 is done by the caller: the output for segment l starts segment l + 1.
    """

    def __init__(self, hidden: int, eps: float = 1e-5):
        super().__init__()
        self.hidden = hidden
        self.h_net = CausalLSTM(hidden, hidden, proj_size=hidden)
        self.c_net = CausalLSTM(hidden, hidden, proj_size=hidden)
        self.h_norm = nn.LayerNorm(hidden, eps=eps)
        self.c_norm = nn.LayerNorm(hidden, eps=eps)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> MemoryState:
        return MemoryState(self.h_net.init_state(batch_size, device=device, dtype=dtype),
                           self.c_net.init_state(batch_size, device=device, dtype=dtype))

    def step(self, segments: SegmentStates, state: MemoryState) -> tuple[SegmentStates, MemoryState]:
        h = segments.h.transpose(0, 1)  # (B*F, L, H): one step per completed segment
        c = segments.c.transpose(0, 1)
        oh, sh = self.h_net.step(h, state.h_net)
        oc, sc = self.c_net.step(c, state.c_net)
        h = h + self.h_norm(oh)
        c = c + self.c_norm(oc)
        return SegmentStates(h.transpose(0, 1), c.transpose(0, 1)), MemoryState(sh, sc)


class _HeadProjection(nn.Module):
    """1x1 conv ``N -> M*D``, a PReLU per head and a layer norm over (D, F) per head and frame
    (TF-GridNet's attention projections; all heads in one conv). ``(B, N, F, K) -> (B*M, K, D*F)``."""

    def __init__(self, channels: int, heads: int, dim: int, num_bins: int, eps: float):
        super().__init__()
        self.heads, self.dim, self.num_bins, self.eps = heads, dim, num_bins, eps
        self.conv = nn.Conv2d(channels, heads * dim, 1)
        self.prelu = nn.Parameter(torch.full((heads, 1, 1, 1), 0.25))
        self.weight = nn.Parameter(torch.ones(heads, dim, num_bins, 1))
        self.bias = nn.Parameter(torch.zeros(heads, dim, num_bins, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, k = x.shape
        y = F.prelu(self.conv(x).view(b, self.heads, self.dim, f, k), self.prelu.view(-1))  # a slope per head
        # frames first, (D, F) last: one fused layer norm per head and frame, in the layout attention takes
        # (the normalised shape from the config: an ONNX graph needs it constant, not read off x)
        y = F.layer_norm(y.permute(0, 1, 4, 2, 3), (self.dim, self.num_bins), eps=self.eps)  # (B, M, K, D, F)
        y = y * self.weight.squeeze(-1)[:, None] + self.bias.squeeze(-1)[:, None]  # per-head gain and bias
        return y.view(b * self.heads, k, self.dim * f)


class _GatePath(nn.Module):
    """Point-wise conv, causal depth-wise conv over frames, point-wise conv, optional PReLU."""

    def __init__(self, channels: int, kernel: int, activation: bool):
        super().__init__()
        self.pw_in = nn.Conv2d(channels, channels, 1)
        self.dw = CausalConv2d(channels, channels, time_kernel=kernel, groups=channels)
        self.pw_out = nn.Conv2d(channels, channels, 1)
        self.act = nn.PReLU() if activation else nn.Identity()

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, cache = self.dw.step(self.pw_in(x), cache)
        return self.act(self.pw_out(y)), cache


class CARState(NamedTuple):
    """CAR streaming state: the attention's key/value cache and the two depth-wise conv caches
    (``(B, N, F, gate_kernel - 1)``; ``None`` when the gated convolution is ablated)."""

    kv: KVCache
    gate_left: torch.Tensor | None
    gate_right: torch.Tensor | None


class CAR(nn.Module):
    """Causal attention refinement (Sec. II-C): Q, K, V from 1x1 conv + PReLU + layer norm; attention
    over frames within a bounded causal window, heads concatenated, projected and added back; then the
    gated convolution (point-wise/depth-wise paths, the gate with PReLU, a final point-wise conv, no
    residual, as released). ``gated=False`` removes the gated convolution (Table II's "CAR x").
    """

    def __init__(self, channels: int, num_bins: int, *, heads: int, qk_channels: int, window: int,
                 gate_kernel: int = 1, gated: bool = True, eps: float = 1e-5):
        super().__init__()
        if channels % heads:
            raise ValueError(f"embedding size {channels} is not divisible by {heads} heads")
        self.channels, self.num_bins, self.heads = channels, num_bins, heads
        self.value_dim = channels // heads
        self.query = _HeadProjection(channels, heads, qk_channels, num_bins, eps)
        self.key = _HeadProjection(channels, heads, qk_channels, num_bins, eps)
        self.value = _HeadProjection(channels, heads, self.value_dim, num_bins, eps)
        self.attention = WindowedCausalAttention(window)
        self.proj = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.PReLU(),
                                  FrameLayerNorm(channels, num_bins, eps))
        self.gated = gated
        if gated:
            self.gate_left = _GatePath(channels, gate_kernel, activation=False)
            self.gate_right = _GatePath(channels, gate_kernel, activation=True)
            self.gate_out = nn.Conv2d(channels, channels, 1)

    def init_state(self, batch_size: int, *, device=None, dtype=torch.float32, sliding: bool = False) -> CARState:
        """``sliding``: the attention cache a traced step copies on (see :class:`WindowedCausalAttention`)."""
        kv = self.attention.init_state(batch_size * self.heads, self.query.dim * self.num_bins,
                                       self.value_dim * self.num_bins, device=device, dtype=dtype, sliding=sliding)
        if not self.gated:
            return CARState(kv, None, None)
        left = self.gate_left.dw.init_state(batch_size, self.num_bins, device=device, dtype=dtype)
        return CARState(kv, left, left.clone())

    def _refine(self, x: torch.Tensor, v: torch.Tensor, gate_left: torch.Tensor | None,
                gate_right: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Attention output ``(B*M, K, N/M*F)`` -> the block's output and the gated convs' new caches."""
        b, n, f, k = x.shape
        v = v.reshape(b, self.heads, k, self.value_dim, f).permute(0, 1, 3, 4, 2).reshape(b, n, f, k)
        x = x + self.proj(v)
        if not self.gated:
            return x, None, None
        left, cache_l = self.gate_left.step(x, gate_left)
        right, cache_r = self.gate_right.step(x, gate_right)
        return self.gate_out(left * right), cache_l, cache_r

    def step(self, x: torch.Tensor, state: CARState) -> tuple[torch.Tensor, CARState]:
        v, kv = self.attention.step(self.query(x), self.key(x), self.value(x), state.kv)  # (B*M, K, N/M*F)
        x, cache_l, cache_r = self._refine(x, v, state.gate_left, state.gate_right)
        return x, CARState(kv, cache_l, cache_r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole sequence from :meth:`init_state`; the attention through ``WindowedCausalAttention.forward``
        (block-parallel while traced)."""
        v = self.attention(self.query(x), self.key(x), self.value(x))  # (B*M, K, N/M*F)
        gates = None
        if self.gated:
            gates = self.gate_left.dw.init_state(x.shape[0], self.num_bins, device=x.device, dtype=x.dtype)
        return self._refine(x, v, gates, gates)[0]
