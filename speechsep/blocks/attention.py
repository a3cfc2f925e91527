"""Causal dot-product attention over frames with a bounded window and a key/value cache.

Axis legend: ``B`` batch (heads flattened into it by the caller), ``K`` frames, ``D`` features.

TFACM's CAR module (Sec. II-C) attends over frames under a lower-triangular ("diagonal") mask. Over a
whole utterance that costs O(K^2) and a stream would have to keep every past frame, so frame k here
attends to frames ``k - window + 1 .. k`` only, offline and streaming alike (docs/design.md#bounded-attention-windows). The cache
holds the last ``window - 1`` keys and values at a bounded size, plus how many of them are real (the
stream's first frames have fewer predecessors); its size never grows.

Queries are processed in blocks of ``block`` frames: each block multiplies against its own keys and
the ``window - 1`` before them, so the cost is linear in K and no Python loop runs over single frames.
``forward`` is ``step`` from an empty cache.

The cache is a :class:`KVCache`: a buffer of key and value slots and a 0-d count of the frames the
stream has had, in one of two layouts that its size tells apart. *Sliding* (``window - 1`` slots,
``init_state(..., sliding=True)``): slot i holds the frame ``count - window + 1 + i``, and every step
copies the window on (a concat and a fixed slice: the cheapest form for a traced graph, so the ONNX
export's states slide). *Epochs* (``window - 1 + slack`` slots, the default): the eager stream's. The stream's time is cut into epochs of ``slack`` frames, and
the buffer of an epoch holds that epoch's frames after the ``window - 1`` before it, each frame in
a slot that its time and the count fix (see :class:`KVCache`). Eagerly, a step of the newest state
on its buffer writes its frames in place after the newest frame, and every query block then scores
one contiguous span of slots, as long as the epoch lasts; a new epoch, an older state stepped again
(a branch, a repeated step), or a step under autograd starts a new buffer instead, so no step ever
changes a frame that another state can see. Every size is fixed and no position is a python int, so
the same :meth:`WindowedCausalAttention.step` runs in a traced graph (ONNX export), which always
builds the next buffer (a gather) and scores every slot, masking the ones that hold no frame of the
window.

A whole-utterance ``forward`` has a python loop over query blocks whose count follows the input
length, which a trace would freeze. While tracing (the offline ONNX export), ``forward`` runs
:meth:`WindowedCausalAttention.forward_blocked` instead: the frames zero-padded to whole blocks of
``block`` queries, every block scored at once against itself and the ``ceil((window - 1) / block)``
blocks before it, as a 4-D batched ``_attend``. Each query sees the same keys as in ``step`` (the rest
is masked, and a masked key weighs exactly 0), so only float rounding differs; memory grows with
``frames x (lookback + 1) x block`` instead of one block at a time, which is why eager mode keeps the loop.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from speechsep.threads import heavy_kernel

__all__ = ["KVCache", "WindowedCausalAttention"]


class KVCache(NamedTuple):
    """Key/value cache of :meth:`WindowedCausalAttention.step` (tensors of fixed size only).

    keys, values: ``(B, S, D_k)`` / ``(B, S, D_v)``. Sliding (``S = window - 1``): stream time ``t`` is
        slot ``t - count + window - 1``. Epochs (``S = window - 1 + slack``): the buffer of the cache's
        epoch ``e = (count - 1) // slack`` (0 before the first frame), where stream time ``t`` is slot
        ``t - e * slack + window - 1``. Either way slots of times before the stream or from ``count``
        on hold no frame.
    count: 0-d int64, frames the stream has had (the next frame's time).
    """

    keys: torch.Tensor
    values: torch.Tensor
    count: torch.Tensor


# The count of the newest state on each buffer (eager only). Only that state writes into the buffer,
# after its newest frame, so every older state on it still finds its own frames. Keyed by the tensor
# object and forgotten with it.
_NEWEST: WeakIdKeyDictionary = WeakIdKeyDictionary()


class WindowedCausalAttention(nn.Module):
    """Single-head scaled dot-product attention; batch heads by folding them into ``B``."""

    def __init__(self, window: int, *, block: int | None = None, slack: int = 16):
        super().__init__()
        if window < 1 or slack < 1:
            raise ValueError(f"attention window and cache slack must be at least 1 frame; got {window}, {slack}")
        self.window = int(window)
        self.block = int(block or max(window, 64))
        # frames an epoch's buffer takes in place before the next epoch copies the window into a new
        # one: a 2-frame stream step then copies the window once every 8 steps, and the exported state
        # is only 16 frames larger than the window
        self.slack = int(slack)

    def extra_repr(self) -> str:
        return f"window={self.window}, block={self.block}, slack={self.slack}"

    def init_state(self, batch_size: int, key_dim: int, value_dim: int, *, device=None,
                   dtype=torch.float32, sliding: bool = False) -> KVCache:
        """An empty cache; ``sliding``: the fixed ``window - 1`` slots a traced step copies on (export),
        else the eager stream's epoch buffer (see the module docstring)."""
        size = self.window - 1 + (0 if sliding else self.slack)
        keys = torch.zeros(batch_size, size, key_dim, device=device, dtype=dtype)
        _NEWEST[keys] = 0
        return KVCache(keys, torch.zeros(batch_size, size, value_dim, device=device, dtype=dtype),
                       torch.zeros((), dtype=torch.long, device=device))

    def _slides(self, cache: KVCache) -> bool:
        # a stream's slot count never changes, so reading it as a python int is sound in a trace too
        # (``shape[1]`` would be a traced tensor there; ``numel`` of the 1-element size is an int)
        return cache.keys.shape[1:2].numel() == self.window - 1

    def _slot0_time(self, count: int | torch.Tensor, sliding: bool) -> int | torch.Tensor:
        """Stream time of slot 0 of the buffer of a cache at ``count``."""
        if sliding:
            return count - (self.window - 1)
        if isinstance(count, torch.Tensor):
            epoch = torch.div(torch.clamp(count - 1, min=0), self.slack, rounding_mode="floor")
        else:
            epoch = max(count - 1, 0) // self.slack
        return epoch * self.slack - (self.window - 1)

    @staticmethod
    def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        if q.dim() != 3 or k.shape[:2] != q.shape[:2] or v.shape[:2] != q.shape[:2] or k.shape[-1] != q.shape[-1]:
            raise ValueError(
                f"attention expects q, k (B, K, D_k) and v (B, K, D_v); got {tuple(q.shape)}, {tuple(k.shape)}, "
                f"{tuple(v.shape)}"
            )

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, a: torch.Tensor,
                j: torch.Tensor, blocked: torch.Tensor | None = None) -> torch.Tensor:
        """Queries ``(..., n, D_k)`` against keys/values ``(..., m, D)``; ``a`` ``(n, 1)`` and ``j`` ``(1, m)``
        place them on one frame axis shifted by ``window - 1`` (query ``a`` sees keys ``a .. a + window - 1``);
        ``blocked`` (broadcast to the scores) masks keys that are not real frames."""
        mask = (j < a) | (j > a + (self.window - 1))
        if blocked is not None:
            mask = mask | blocked
        with heavy_kernel:  # the products over the whole window: worth several threads (speechsep.threads)
            scores = torch.matmul(q, keys.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
            return torch.matmul(F.softmax(scores.masked_fill(mask, float("-inf")), dim=-1), values)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Whole sequences from an empty cache: ``(B, K, D_k)``, ``(B, K, D_k)``, ``(B, K, D_v)`` -> ``(B, K, D_v)``."""
        if torch.jit.is_tracing():  # the block loop below would be frozen at the traced length
            return self.forward_blocked(q, k, v)
        state = self.init_state(q.shape[0], k.shape[-1], v.shape[-1], device=q.device, dtype=q.dtype)
        return self.step(q, k, v, state)[0]

    def forward_blocked(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with every query block at once, in ops whose sizes a trace keeps symbolic.

        Frames are zero-padded to ``J`` whole blocks of ``Q = block`` frames; block ``b``'s queries score
        the keys of blocks ``b - R .. b``, ``R = ceil((window - 1) / Q)`` (zero blocks before the start),
        masked to each query's window and to real frames.
        """
        self._check(q, k, v)
        past, size = self.window - 1, self.block
        lookback = -(-past // size)
        n = q.shape[1]
        count = (n + size - 1) // size  # J

        def blocks(t: torch.Tensor, front: int) -> torch.Tensor:
            # (B, K, D) -> (B, front + J, Q, D): ``front`` zero blocks, then the frames, zeros to a whole block
            t = F.pad(t, (0, 0, front * size, count * size - n))
            return t.reshape(t.shape[0], front + count, size, t.shape[-1])

        def with_lookback(t: torch.Tensor) -> torch.Tensor:
            # (B, R + J, Q, D) -> (B, J, (R + 1) Q, D): block b's keys are blocks b - R .. b end to end
            return torch.cat([t[:, r : r + count] for r in range(lookback + 1)], dim=2) if lookback else t

        keys, values = with_lookback(blocks(k, lookback)), with_lookback(blocks(v, lookback))
        # query a of block b is frame bQ + a; key j of its row is frame bQ + j - RQ. On _attend's axis
        # (keys shifted by window - 1) query a sees j + past - RQ in a .. a + past
        a = torch.arange(size, device=q.device).unsqueeze(1)
        j = torch.arange((lookback + 1) * size, device=q.device).unsqueeze(0) + (past - lookback * size)
        # keys before frame 0 (the zero blocks) are no frames: (J, 1, (R + 1) Q)
        first = torch.arange(count, device=q.device).view(-1, 1, 1) * size
        out = self._attend(blocks(q, 0), keys, values, a, j, blocked=first + j - past < 0)  # (B, J, Q, D_v)
        return out.reshape(q.shape[0], count * size, v.shape[-1])[:, :n]

    def step(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: KVCache
             ) -> tuple[torch.Tensor, KVCache]:
        """``(B, n, D_k)``, ``(B, n, D_k)``, ``(B, n, D_v)`` -> ``(B, n, D_v)`` and the next cache.

        Queries go in blocks of ``block``; a block scores the ``window - 1`` frames before it and its
        own. Eagerly these are one or two contiguous spans (the buffer's, the new frames'), and only
        real frames; a trace must not read ``count``, so it scores every slot, placed in time by
        ``count``, and masks.
        """
        self._check(q, k, v)
        past, n = self.window - 1, q.shape[1]
        if n == 0:
            return q.new_zeros(q.shape[0], 0, v.shape[-1]), cache
        if torch.jit.is_tracing():
            return self._step_traced(q, k, v, cache)
        count, sliding = int(cache.count), self._slides(cache)
        start = self._slot0_time(count, sliding)
        recording = torch.is_grad_enabled() and (k.requires_grad or v.requires_grad)
        in_place = (not sliding and not recording and _NEWEST.get(cache.keys) == count
                    and self._slot0_time(count + n, False) == start and count + n - start <= cache.keys.shape[1])
        if in_place:  # the newest state, and its epoch lasts: the new frames go after the newest one
            cache.keys[:, count - start : count + n - start] = k
            cache.values[:, count - start : count + n - start] = v
            _NEWEST[cache.keys] = count + n
            keys, values, origin = cache.keys, cache.values, start
        else:  # the window's frames and the new ones in one tensor (a copy, once an epoch or a branch)
            origin = max(count - past, 0)
            if origin == count:  # no past (a whole sequence from the empty cache): no copy
                keys, values = k, v
            else:
                keys = torch.cat([cache.keys[:, origin - start : count - start], k], dim=1)
                values = torch.cat([cache.values[:, origin - start : count - start], v], dim=1)
        # either way every query block scores one contiguous span of stream times: the same arithmetic
        # whichever path a step takes (a repeated step gives the same answer to the last bit)
        outs = []
        for s in range(0, n, self.block):
            e = min(n, s + self.block)
            t0 = max(count + s - past, 0)  # the earliest real frame block s sees
            a = torch.arange(s, e, device=q.device).unsqueeze(1)  # query times; _attend's key axis is time + past
            j = torch.arange(t0 - count + past, e + past, device=q.device).unsqueeze(0)
            span = slice(t0 - origin, count + e - origin)
            outs.append(self._attend(q[:, s:e], keys[:, span], values[:, span], a, j))
        out = torch.cat(outs, dim=1) if len(outs) != 1 else outs[0]
        if in_place:
            return out, KVCache(cache.keys, cache.values, cache.count + n)
        # the next epoch's buffers from the span: slot i holds time epoch_start + i (times before the span
        # or from count + n on are no frames of the next state's window: whatever the clamp finds)
        index = torch.arange(cache.keys.shape[1], device=k.device) + (self._slot0_time(count + n, sliding) - origin)
        index = torch.clamp(index, 0, keys.shape[1] - 1)
        keys, values = keys.index_select(1, index), values.index_select(1, index)
        _NEWEST[keys] = count + n
        return out, KVCache(keys, values, cache.count + n)

    def _step_traced(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: KVCache
                     ) -> tuple[torch.Tensor, KVCache]:
        """:meth:`step` in a trace: ``count`` is a tensor, so the buffer and the new frames are joined once
        (the next buffer is gathered from the join), and a query block scores every slot and masks."""
        past, n, size = self.window - 1, q.shape[1], cache.keys.shape[1]
        count, sliding = cache.count, self._slides(cache)
        keys, values = torch.cat([cache.keys, k], dim=1), torch.cat([cache.values, v], dim=1)
        slot = torch.arange(size + n, device=q.device)
        if sliding:  # the join is the times count - past .. count + n - 1 in order
            j_all, no_frame = slot, slot < past - count
        else:  # buffer slot i holds time slot0_time + i (a frame only from 0 to count - 1); new frame m is count + m
            times = torch.where(slot < size, slot + self._slot0_time(count, False), slot - size + count)
            no_frame = (times < 0) | ((times >= count) & (slot < size))
            j_all = times - count + past
        outs = []
        for s in range(0, n, self.block):
            e = min(n, s + self.block)
            a = torch.arange(s, e, device=q.device).unsqueeze(1)
            # the buffer holds the only frames before this step; blocks past the window need only new ones
            lo, hi = (0 if s < past else size + s - past), size + e
            # a span of the whole join is the join itself: a traced slice would copy it (a third of the
            # exported step's slicing time)
            part_k, part_v = (keys, values) if (lo, hi) == (0, size + n) else (keys[:, lo:hi], values[:, lo:hi])
            outs.append(self._attend(q[:, s:e], part_k, part_v, a, j_all[lo:hi].unsqueeze(0),
                                     blocked=no_frame[lo:hi].unsqueeze(0)))
        out = torch.cat(outs, dim=1) if len(outs) != 1 else outs[0]
        if sliding:  # the window after this step: a fixed slice
            return out, KVCache(keys[:, n:], values[:, n:], count + n)
        # the next buffer: slot i takes its time's frame from the join (the old buffer for times before
        # count, the new frames after); slots of later times take whatever the clamped index finds
        later = torch.arange(size, device=k.device) + self._slot0_time(count + n, False)
        index = torch.where(later < count, later - self._slot0_time(count, False), size + later - count)
        index = torch.clamp(index, 0, size + n - 1)
        return out, KVCache(keys.index_select(1, index), values.index_select(1, index), count + n)

    def restart(self, cache: KVCache) -> KVCache:
        """The cache of a new sequence (no frames seen) in ``cache``'s shapes; ``cache`` stays valid."""
        if torch.jit.is_tracing():  # a traced cache at count 0 masks every slot
            return cache._replace(count=torch.zeros_like(cache.count))
        keys = torch.zeros_like(cache.keys)
        _NEWEST[keys] = 0
        return KVCache(keys, torch.zeros_like(cache.values), torch.zeros_like(cache.count))
