"""SkiM, skipping-memory LSTM (Li, Yang, Wang and Qian, ICASSP 2022), causal: TFACM Table I's second row.

Axis legend:
    B  batch       C  sources       T  samples       N  encoder channels
    K  frames      J  segments      S  frames per segment (no overlap)     H  LSTM hidden units

The frame sequence is cut into non-overlapping segments of ``S`` frames. Layer ``l`` runs a one-way
SegLSTM inside every segment, starting from an initial ``(h, c)``; layer 0 starts from zeros. The
SegLSTMs' final states of layer ``l`` go through MemLSTMs (one over the ``h`` of all segments, one over
the ``c``), and the result for segment ``j - 1`` is the initial state of segment ``j`` in layer
``l + 1``. That one-segment shift is what makes SkiM causal: a segment never receives memory from
itself or a later segment.

Streaming: ``step`` walks the new frames in runs that stay inside one segment; each run continues
every layer's SegLSTM state; when a segment closes, the MemLSTMs take one step and their outputs
become the next segment's initial states.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from speechsep.blocks import segmentation
from speechsep.blocks.dprnn import ResidualLSTM
from speechsep.blocks.recurrent import LSTMState
from speechsep.models.paper_tables import TFACM_TABLE1
from speechsep.models.time_domain import ConvCodecConfig, TimeDomainConfig, TimeDomainMaskingModel
from speechsep.registry import register_model, register_preset

__all__ = ["SkiMConfig", "SkiM", "SkiMCore", "SkiMState"]


class SkiMState(NamedTuple):
    """Streaming state of :class:`SkiMCore` (L = layers).

    seg_h, seg_c: ``(L, 1, B, H)`` every layer's SegLSTM state inside the current segment.
    mem_h, mem_c: ``(L-1, 2, 1, B, H)`` state of the MemLSTM over ``h`` (index 0) and over ``c`` (1).
    frames: 0-d int64, frames consumed so far.
    """

    seg_h: torch.Tensor
    seg_c: torch.Tensor
    mem_h: torch.Tensor
    mem_c: torch.Tensor
    frames: torch.Tensor


class SkiMCore(nn.Module):
    """SegLSTM / MemLSTM stack on ``(B, K, N)`` (channels last)."""

    def __init__(self, channels: int, hidden: int, segment: int, num_layers: int):
        super().__init__()
        if segment < 1 or num_layers < 1:
            raise ValueError(f"SkiM needs segment >= 1 and num_layers >= 1; got {segment}, {num_layers}")
        self.channels, self.hidden, self.segment = channels, hidden, segment
        self.seg = nn.ModuleList(ResidualLSTM(channels, hidden) for _ in range(num_layers))
        # per memory layer: [over h, over c]
        self.mem = nn.ModuleList(
            nn.ModuleList([ResidualLSTM(hidden, hidden), ResidualLSTM(hidden, hidden)]) for _ in range(num_layers - 1)
        )

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.channels:
            raise ValueError(f"SkiMCore expects (B, K, {self.channels}); got {tuple(x.shape)}")

    def _memory(self, layer: int, last: LSTMState, state: LSTMState | None) -> tuple[LSTMState, LSTMState, LSTMState]:
        """MemLSTMs of ``layer`` on final seg states ``(1, B, J, H)`` -> (output states, new h-mem, new c-mem)."""
        mem_h, mem_c = self.mem[layer]
        _, batch, groups, hidden = last.h.shape
        if state is None:  # the offline pass: every segment at once, from zero memory states
            state = (mem_h.init_state(batch, device=last.h.device, dtype=last.h.dtype),
                     mem_c.init_state(batch, device=last.c.device, dtype=last.c.dtype))
        h, sh = mem_h.step(last.h.view(batch, groups, hidden), state[0])
        c, sc = mem_c.step(last.c.view(batch, groups, hidden), state[1])
        return LSTMState(h, c), sh, sc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        batch, frames, dim = x.shape
        size, hidden = self.segment, self.hidden
        groups = segmentation.segment_count(frames, size)
        # (B, K, N) -> (B, J, S, N), zeros past the end -> (B*J, S, N)
        seg = segmentation.split(x, size, groups).reshape(batch * groups, size, dim)
        init = self.seg[0].init_state(batch * groups, device=x.device, dtype=x.dtype)  # the first layer's segments start from zeros
        for layer, seg_lstm in enumerate(self.seg):
            seg, last = seg_lstm.step(seg, init)
            if layer < len(self.mem):
                last = LSTMState(last.h.view(1, batch, groups, hidden), last.c.view(1, batch, groups, hidden))
                mem, _, _ = self._memory(layer, last, None)
                # causal shift: segment j starts from the memory of segment j - 1 (segment 0 from zeros)
                h = nn.functional.pad(mem.h[:, :-1], (0, 0, 1, 0)).reshape(1, batch * groups, hidden)
                c = nn.functional.pad(mem.c[:, :-1], (0, 0, 1, 0)).reshape(1, batch * groups, hidden)
                init = LSTMState(h.contiguous(), c.contiguous())
        return seg.reshape(batch, groups * size, dim)[:, :frames]

    def init_state(self, batch_size: int, *, device=None, dtype=torch.float32) -> SkiMState:
        layers = len(self.seg)
        seg = torch.zeros(layers, 1, batch_size, self.hidden, device=device, dtype=dtype)
        mem = torch.zeros(layers - 1, 2, 1, batch_size, self.hidden, device=device, dtype=dtype)
        return SkiMState(seg, seg.clone(), mem, mem.clone(), torch.zeros((), dtype=torch.long, device=device))

    def step(self, x: torch.Tensor, state: SkiMState) -> tuple[torch.Tensor, SkiMState]:
        self._check(x)
        batch, frames, _ = x.shape
        size, hidden = self.segment, self.hidden
        sh, sc, mh, mc = (t.clone() for t in state[:4])
        t, pos, outs = int(state.frames), 0, []
        while pos < frames:
            r = t % size
            run = min(size - r, frames - pos)
            z = x[:, pos:pos + run]
            for layer, seg_lstm in enumerate(self.seg):
                z, st = seg_lstm.step(z, LSTMState(sh[layer], sc[layer]))
                sh[layer], sc[layer] = st.h, st.c
            if r + run == size:  # the segment closed: memory step, next segment's initial states
                # top-down, so a layer's final state is read before the layer below overwrites it
                for layer in reversed(range(len(self.mem))):
                    last = LSTMState(sh[layer].view(1, batch, 1, hidden), sc[layer].view(1, batch, 1, hidden))
                    prev = (LSTMState(mh[layer, 0], mc[layer, 0]), LSTMState(mh[layer, 1], mc[layer, 1]))
                    mem, nh, nc = self._memory(layer, last, prev)
                    mh[layer, 0], mc[layer, 0], mh[layer, 1], mc[layer, 1] = nh.h, nh.c, nc.h, nc.c
                    sh[layer + 1], sc[layer + 1] = mem.h.view(1, batch, hidden), mem.c.view(1, batch, hidden)
                sh[0], sc[0] = 0.0, 0.0
            outs.append(z)
            t, pos = t + run, pos + run
        out = torch.cat(outs, dim=1) if outs else x[:, :0]
        return out, SkiMState(sh, sc, mh, mc, state.frames + frames)


@dataclasses.dataclass
class SkiMConfig(TimeDomainConfig):
    """Causal SkiM. Defaults: the Table I size (docs/design.md#baseline-sizes): 128 filters of 2 samples, stride 1."""

    codec: ConvCodecConfig = dataclasses.field(default_factory=lambda: ConvCodecConfig(128, 2, 1))
    bottleneck: int = 128

    #: LSTM hidden units (SegLSTM and MemLSTM, one direction)
    hidden: int = 256
    #: frames per segment (no overlap)
    segment: int = 50
    num_layers: int = 3


@register_model
class SkiM(TimeDomainMaskingModel):
    family = "skim"
    config_class = SkiMConfig

    def __init__(self, config: SkiMConfig):
        super().__init__(config)
        self.separator = SkiMCore(config.bottleneck, config.hidden, config.segment, config.num_layers)


register_preset(
    "skim", SkiM.family, SkiMConfig(),
    "Causal SkiM, TFACM Table I: encoder 128 x 2 samples / stride 1, 3 layers of 256-unit one-way LSTMs, "
    "segments of 50 frames without overlap, memory on h and c",
    paper=TFACM_TABLE1["skim"], tags=("tfacm-table1", "paper-scale"),
)
register_preset(
    "skim-tiny", SkiM.family,
    SkiMConfig(codec=ConvCodecConfig(8, 8, 4), bottleneck=8, hidden=8, segment=16, num_layers=3),
    "Causal SkiM at test size (CPU tests)", tags=("tiny",),
)
