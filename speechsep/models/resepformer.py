"""Resource-efficient SepFormer (Della Libera et al., ICASSP 2024), causal: TFACM Table I's third row.

Axis legend:
    B  batch       C  sources       T  samples       N  encoder channels = transformer width
    K  frames      J  segments      S  frames per segment (no overlap)     E  heads

RE-SepFormer cuts the frame sequence into non-overlapping segments. In each of ``num_blocks``
layers an *intra* transformer (``intra_layers`` pre-LN layers, sinusoidal positions inside the
segment, then layer norm and a skip) models each segment; between layers a *memory* transformer runs
over one summary per segment (the segment's average) and its output is added to every frame of a
segment, as in the public model (``mem_type='av'``).

Causal version (TFACM Table I): intra attention is masked to earlier frames of the same segment; the
memory transformer is masked to earlier segments, over a bounded window of ``memory_window``
segments (so a stream keeps a constant state, docs/design.md#bounded-attention-windows), and segment ``j`` receives the memory
output of segment ``j - 1``: a segment's average is only known once it has ended.

Streaming: ``step`` walks the new frames in runs that stay inside one segment; the intra attention
continues from a key/value cache of the segment so far; when a segment closes, its average takes one
step through the memory transformer, whose output is added to the next segment.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import torch
from torch import nn

from speechsep.blocks import segmentation
from speechsep.blocks.attention import KVCache, WindowedCausalAttention
from speechsep.models.paper_tables import TFACM_TABLE1
from speechsep.models.time_domain import ConvCodecConfig, TimeDomainConfig, TimeDomainMaskingModel
from speechsep.registry import register_model, register_preset

__all__ = ["ReSepFormerConfig", "ReSepFormer", "ReSepFormerCore", "ReSepFormerState", "TransformerStack"]


def _sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal position encoding (Vaswani et al. 2017) of integer ``positions`` ``(n,)`` -> ``(n, dim)``."""
    freq = torch.exp(torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angle = positions.to(torch.float32).unsqueeze(1) * freq
    pe = torch.zeros(positions.shape[0], dim, device=positions.device)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe


class _CausalTransformerLayer(nn.Module):
    """Pre-LN transformer layer on ``(R, n, D)``: windowed causal self-attention, then a ReLU feed-forward."""

    def __init__(self, dim: int, heads: int, ffn: int, window: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm_attn = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attn = WindowedCausalAttention(window)
        self.out = nn.Linear(dim, dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Linear(ffn, dim))

    def init_state(self, rows: int, *, device=None, dtype=torch.float32) -> KVCache:
        head_dim = self.qkv.in_features // self.heads
        return self.attn.init_state(rows * self.heads, head_dim, head_dim, device=device, dtype=dtype)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # (R, n, 3D) -> 3 x (R*E, n, D/E): heads folded into the batch of the attention kernel
        rows, n, dim = x.shape
        return tuple(
            t.reshape(rows, n, self.heads, dim // self.heads).transpose(1, 2).reshape(rows * self.heads, n, -1)
            for t in self.qkv(self.norm_attn(x)).chunk(3, dim=-1)
        )

    def _finish(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        rows, n, dim = x.shape
        a = a.reshape(rows, self.heads, n, dim // self.heads).transpose(1, 2).reshape(rows, n, dim)
        x = x + self.out(a)
        return x + self.ffn(self.norm_ffn(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole sequence from an empty cache (traceable with a run-time length:
        ``WindowedCausalAttention.forward``)."""
        return self._finish(x, self.attn(*self._heads(x)))

    def step(self, x: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        a, cache = self.attn.step(*self._heads(x), cache)
        return self._finish(x, a), cache


class TransformerStack(nn.Module):
    """SepFormer's transformer block with norm and skip: ``x + LN(layers(x + PE(positions)))``."""

    def __init__(self, dim: int, heads: int, ffn: int, num_layers: int, window: int):
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(_CausalTransformerLayer(dim, heads, ffn, window) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def init_state(self, rows: int, *, device=None, dtype=torch.float32) -> tuple[KVCache, ...]:
        """One key/value cache per layer (each bounded by the layer's window)."""
        return tuple(layer.init_state(rows, device=device, dtype=dtype) for layer in self.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole sequence from empty caches (what ``init_state`` starts), positions 0, 1, ..."""
        z = x + _sinusoid(torch.arange(x.shape[1], device=x.device), self.dim).to(x.dtype)
        for layer in self.layers:
            z = layer(z)
        return x + self.norm(z)

    def step(self, x: torch.Tensor, cache: tuple[KVCache, ...]) -> tuple[torch.Tensor, tuple[KVCache, ...]]:
        """The next frames; their positions continue the caches' count (a restarted cache: from 0)."""
        start = int(cache[0].count)
        z = x + _sinusoid(torch.arange(start, start + x.shape[1], device=x.device), self.dim).to(x.dtype)
        new = []
        for layer, layer_cache in zip(self.layers, cache, strict=True):
            z, c = layer.step(z, layer_cache)
            new.append(c)
        return x + self.norm(z), tuple(new)


class ReSepFormerState(NamedTuple):
    """Streaming state of :class:`ReSepFormerCore` (L = blocks).

    intra: per block, the key/value caches of its intra layers inside the current segment.
    memory: per block but the last, the caches of its memory layers over past segments.
    seg_sum: ``(L-1, B, N)`` running sum of each block's intra output over the current segment.
    pending: ``(L-1, B, N)`` memory output of the previous segment, added to the current one.
    frames: 0-d int64, frames consumed so far.
    """

    intra: tuple[tuple[KVCache, ...], ...]
    memory: tuple[tuple[KVCache, ...], ...]
    seg_sum: torch.Tensor
    pending: torch.Tensor
    frames: torch.Tensor


class ReSepFormerCore(nn.Module):
    """Intra-segment and memory transformers on ``(B, K, N)`` (channels last)."""

    def __init__(self, dim: int, heads: int, *, intra_layers: int, intra_ffn: int, memory_layers: int,
                 memory_ffn: int, segment: int, num_blocks: int, memory_window: int):
        super().__init__()
        self.dim, self.segment = dim, segment
        self.intra = nn.ModuleList(TransformerStack(dim, heads, intra_ffn, intra_layers, segment) for _ in range(num_blocks))
        self.memory = nn.ModuleList(
            TransformerStack(dim, heads, memory_ffn, memory_layers, memory_window) for _ in range(num_blocks - 1)
        )

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"ReSepFormerCore expects (B, K, {self.dim}); got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        batch, frames, dim = x.shape
        size = self.segment
        groups = segmentation.segment_count(frames, size)
        # (B, K, N) -> (B, J, S, N), zeros past the end -> (B*J, S, N)
        seg = segmentation.split(x, size, groups).reshape(batch * groups, size, dim)
        for block, intra in enumerate(self.intra):
            seg = intra(seg)
            if block < len(self.memory):
                seg = seg.view(batch, groups, size, dim)
                mem = self.memory[block](seg.mean(2))
                # causal shift: segment j receives the memory of segment j - 1 (segment 0: nothing)
                seg = (seg + nn.functional.pad(mem[:, :-1], (0, 0, 1, 0)).unsqueeze(2)).view(batch * groups, size, dim)
        return seg.reshape(batch, groups * size, dim)[:, :frames]

    def init_state(self, batch_size: int, *, device=None, dtype=torch.float32) -> ReSepFormerState:
        summary = torch.zeros(len(self.memory), batch_size, self.dim, device=device, dtype=dtype)
        return ReSepFormerState(
            tuple(t.init_state(batch_size, device=device, dtype=dtype) for t in self.intra),
            tuple(t.init_state(batch_size, device=device, dtype=dtype) for t in self.memory),
            summary, summary.clone(), torch.zeros((), dtype=torch.long, device=device),
        )

    def step(self, x: torch.Tensor, state: ReSepFormerState) -> tuple[torch.Tensor, ReSepFormerState]:
        self._check(x)
        frames, size = x.shape[1], self.segment
        intra_caches, memory_caches = list(state.intra), list(state.memory)
        seg_sum, pending = state.seg_sum.clone(), state.pending.clone()
        t, pos, outs = int(state.frames), 0, []
        while pos < frames:
            r = t % size
            run = min(size - r, frames - pos)
            if r == 0:  # a new segment: its intra attention starts from an empty cache
                intra_caches = [tuple(layer.attn.restart(c) for layer, c in zip(stack.layers, caches, strict=True))
                                for stack, caches in zip(self.intra, intra_caches, strict=True)]
                seg_sum.zero_()
            z = x[:, pos:pos + run]
            for block, intra in enumerate(self.intra):
                if block > 0:
                    z = z + pending[block - 1].unsqueeze(1)
                z, intra_caches[block] = intra.step(z, intra_caches[block])  # positions r .. r + run - 1
                if block < len(self.memory):
                    seg_sum[block] += z.sum(1)
            if r + run == size:  # the segment closed: one memory step per block, at position t // size (the memory caches' count)
                for block, memory in enumerate(self.memory):
                    mem, memory_caches[block] = memory.step((seg_sum[block] / size).unsqueeze(1), memory_caches[block])
                    pending[block] = mem[:, 0]
            outs.append(z)
            t, pos = t + run, pos + run
        out = torch.cat(outs, dim=1) if outs else x[:, :0]
        return out, ReSepFormerState(tuple(intra_caches), tuple(memory_caches), seg_sum, pending,
                                     state.frames + frames)


@dataclasses.dataclass
class TransformerConfig:
    """A stack of pre-LN transformer layers (SepFormer's block)."""

    num_layers: int = 8
    heads: int = 8
    ffn: int = 1024


@dataclasses.dataclass
class ReSepFormerConfig(TimeDomainConfig):
    """Causal RE-SepFormer. Defaults: the public WSJ0-2mix model (SpeechBrain recipe), made causal:
    128 filters of 16 samples, stride 8, width 128, 2 blocks of 8 intra layers, 8 memory layers."""

    codec: ConvCodecConfig = dataclasses.field(default_factory=lambda: ConvCodecConfig(128, 16, 8))
    bottleneck: int = 128

    intra: TransformerConfig = dataclasses.field(default_factory=TransformerConfig)
    memory: TransformerConfig = dataclasses.field(default_factory=TransformerConfig)
    #: frames per segment (no overlap)
    segment: int = 150
    num_blocks: int = 2
    #: past segments the memory attention sees (bounds the stream state)
    memory_window: int = 64

    def __post_init__(self) -> None:
        if self.intra.heads != self.memory.heads:
            raise ValueError(f"intra and memory heads must match; got {self.intra.heads} and {self.memory.heads}")


@register_model
class ReSepFormer(TimeDomainMaskingModel):
    family = "resepformer"
    config_class = ReSepFormerConfig

    def __init__(self, config: ReSepFormerConfig):
        super().__init__(config)
        self.separator = ReSepFormerCore(
            config.bottleneck, config.intra.heads, intra_layers=config.intra.num_layers, intra_ffn=config.intra.ffn,
            memory_layers=config.memory.num_layers, memory_ffn=config.memory.ffn, segment=config.segment,
            num_blocks=config.num_blocks, memory_window=config.memory_window,
        )


register_preset(
    "resepformer", ReSepFormer.family, ReSepFormerConfig(),
    "Causal RE-SepFormer, TFACM Table I: the public WSJ0-2mix model (encoder 128 x 16 / stride 8, 2 blocks of "
    "8 intra + 8 memory layers, width 128, 8 heads, FFN 1024, segments of 150 frames), masked to the past",
    paper=TFACM_TABLE1["resepformer"], tags=("tfacm-table1", "paper-scale"),
)
register_preset(
    "resepformer-tiny", ReSepFormer.family,
    ReSepFormerConfig(codec=ConvCodecConfig(8, 8, 4), bottleneck=8, intra=TransformerConfig(1, 2, 16),
                      memory=TransformerConfig(1, 2, 16), segment=16, num_blocks=3, memory_window=3),
    "Causal RE-SepFormer at test size (CPU tests)", tags=("tiny",),
)
