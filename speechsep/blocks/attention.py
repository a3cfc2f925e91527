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

The cache is an append-only buffer with room for ``window - 1`` past frames plus some slack. A step
writes its new keys/values after the frames its state sees and attends to one contiguous view, so
streaming does not copy the whole window every chunk; only when the slack runs out are the last
``window - 1`` frames moved to a fresh buffer. Earlier states stay valid: they never look past their
own end, and a step from a state that is not the newest one (a branch) copies first. With autograd
recording, steps copy instead of writing in place.

A traced graph (ONNX export) cannot carry python-int positions or a buffer whose size changes, so
:meth:`WindowedCausalAttention.step_fixed` keeps a :class:`FixedKVCache` instead: exactly
``window - 1`` past frames, ``valid`` as a tensor, the new frames concatenated and the oldest dropped.
Both paths score and weight through :meth:`WindowedCausalAttention._attend`, so the arithmetic
exists once; they differ only in how the past is stored.

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

from speechsep.threads import heavy_kernel

__all__ = ["KVCache", "FixedKVCache", "WindowedCausalAttention"]


class KVCache(NamedTuple):
    """Key/value cache of :class:`WindowedCausalAttention`.

    keys, values: buffers ``(B, capacity, D_k)`` / ``(B, capacity, D_v)``; this state's past is the
        ``window - 1`` frames before ``end`` (zeros where the stream had not started: see ``valid``).
    end: buffer index one past this state's newest frame.
    valid: how many of those ``window - 1`` frames are real frames of the stream.
    tip: 1-element int64 shared by every state on the buffer: the ``end`` of the newest one.
    """

    keys: torch.Tensor
    values: torch.Tensor
    end: int
    valid: int
    tip: torch.Tensor


class FixedKVCache(NamedTuple):
    """Fixed-size key/value cache of :meth:`WindowedCausalAttention.step_fixed` (all tensors).

    keys, values: ``(B, window - 1, D_k)`` / ``(B, window - 1, D_v)``, the last ``window - 1`` frames,
        oldest first (zeros where the stream had not started).
    valid: 0-d int64, how many of them are real frames of the stream.
    """

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor


class WindowedCausalAttention(nn.Module):
    """Single-head scaled dot-product attention; batch heads by folding them into ``B``."""

    def __init__(self, window: int, *, block: int | None = None):
        super().__init__()
        if window < 1:
            raise ValueError(f"attention window must be at least 1 frame; got {window}")
        self.window = int(window)
        self.block = int(block or max(window, 64))

    def extra_repr(self) -> str:
        return f"window={self.window}, block={self.block}"

    def init_state(self, batch_size: int, key_dim: int, value_dim: int, *, device=None,
                   dtype=torch.float32) -> KVCache:
        past = self.window - 1
        return KVCache(
            torch.zeros(batch_size, past, key_dim, device=device, dtype=dtype),
            torch.zeros(batch_size, past, value_dim, device=device, dtype=dtype),
            past, 0, torch.full((1,), past, dtype=torch.long),
        )

    def _append(self, cache: KVCache, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
        """Buffers holding this state's past followed by ``k``/``v``; returns them, the new end and tip."""
        past, n, end = self.window - 1, k.shape[1], cache.end
        recording = torch.is_grad_enabled() and (k.requires_grad or v.requires_grad)
        if not recording and end == int(cache.tip[0]) and end + n <= cache.keys.shape[1]:
            cache.keys[:, end : end + n] = k  # room after the newest state: write in place
            cache.values[:, end : end + n] = v
            cache.tip[0] = end + n
            return cache.keys, cache.values, end + n, cache.tip
        # a fresh buffer: this state's past, the new frames, and slack (never read before written)
        slack = 0 if recording else max(self.block, n)
        keys = torch.cat([cache.keys[:, end - past : end], k, k.new_empty(k.shape[0], slack, k.shape[2])], 1)
        values = torch.cat([cache.values[:, end - past : end], v, v.new_empty(v.shape[0], slack, v.shape[2])], 1)
        return keys, values, past + n, torch.full((1,), past + n, dtype=torch.long)

    def init_fixed_state(self, batch_size: int, key_dim: int, value_dim: int, *, device=None,
                         dtype=torch.float32) -> FixedKVCache:
        cache = self.init_state(batch_size, key_dim, value_dim, device=device, dtype=dtype)
        return FixedKVCache(cache.keys, cache.values, torch.zeros((), dtype=torch.long, device=device))

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

    def step_fixed(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: FixedKVCache
                   ) -> tuple[torch.Tensor, FixedKVCache]:
        """:meth:`step` with a fixed-size cache and no python-int positions (traceable for ONNX).

        Every query scores all ``window - 1 + n`` frames (no blocking: chunks here are short); the
        window and the not-yet-real past are masked."""
        self._check(q, k, v)
        past, n = self.window - 1, q.shape[1]
        keys = torch.cat([cache.keys, k], dim=1)  # (B, past + n, D_k)
        values = torch.cat([cache.values, v], dim=1)
        a = torch.arange(n, device=q.device).unsqueeze(1)
        j = torch.arange(past + n, device=q.device).unsqueeze(0)
        out = self._attend(q, keys, values, a, j, blocked=j < past - cache.valid)
        valid = torch.clamp(cache.valid + n, max=past)
        return out, FixedKVCache(keys[:, n:], values[:, n:], valid)

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
        self._check(q, k, v)
        past, n = self.window - 1, q.shape[1]
        if n == 0:
            return q.new_zeros(q.shape[0], 0, v.shape[-1]), cache
        keys, values, end, tip = self._append(cache, k, v)
        base = end - n - past  # buffer index of the oldest frame the first query may see
        # Frames before ``first_real`` are the zero padding of a young stream: never computed.
        first_real = past - cache.valid
        outs = []
        for s in range(0, n, self.block):
            e = min(n, s + self.block)
            lo = max(s, first_real)
            # query s+a sits at window position past+s+a and sees positions s+a .. past+s+a
            a = torch.arange(s, e, device=q.device).unsqueeze(1)
            j = torch.arange(lo, past + e, device=q.device).unsqueeze(0)
            span = slice(base + lo, base + past + e)
            outs.append(self._attend(q[:, s:e], keys[:, span], values[:, span], a, j))
        out = torch.cat(outs, dim=1) if len(outs) != 1 else outs[0]
        return out, KVCache(keys, values, end, min(cache.valid + n, past), tip)
