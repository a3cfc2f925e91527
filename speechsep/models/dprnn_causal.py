"""Causal DPRNN-TasNet (Luo, Chen and Yoshioka, ICASSP 2020), the first baseline of TFACM's Table I.

Axis legend:
    B  batch           C  sources            T  samples
    N  encoder filters  D  bottleneck channels  K  encoder frames
    J  segments        S  frames per segment (2 P, 50 % overlap)   P  segment hop
    H  LSTM hidden units

Causality. The published DPRNN keeps its intra-segment LSTM bidirectional even in the causal
setting, so it reads up to a whole segment ahead (NOTES.md). Here both LSTMs run one way, norms
are per frame, and segments are cut without front padding: segment ``j`` holds frames
``[j P, j P + S)``. Output frame ``k`` of segment ``j`` then depends only on frames ``<= k`` of
segments ``<= j``, so the separator adds no latency; the model's only look-ahead is the encoder
window (``latency``).

``speechsep.blocks.dprnn`` implements the same dual-path block, but its paths take no recurrent state
in or out and its segmentation pads a hop of zeros in front, so it cannot continue a stream; the
paths here carry explicit ``(h, c)`` and are shared by ``forward`` and ``step``.

Streaming. Every frame lies in two segments: the *newer* one (it starts at most ``P - 1`` frames
before) and the *older* one (started ``P`` frames earlier). ``step`` walks the new frames in runs
that stay inside one hop, pushes each run through both segment tracks of every block (the intra
LSTM continues each track's state; the inter LSTM continues the state of each position from the
previous segment), and sums the two tracks, which is the offline overlap-add.

This module also holds what the time-domain baselines share (SkiM and RE-SepFormer import it):
:class:`TimeDomainMaskingModel`, the causal TasNet skeleton around a separator, its configs, the
:class:`ResidualLSTM` path, and ``TABLE1``, the paper's numbers for the four baselines.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import torch
from torch import nn

from speechsep.blocks.encoders import ConvDecoder, ConvEncoder
from speechsep.blocks.framing import OutputAligner, stream_latency
from speechsep.blocks.recurrent import CausalLSTM, LSTMState
from speechsep.models.base import ModelConfig, SeparationModel
from speechsep.registry import register_model, register_preset
from speechsep.utils import check_waveform_batch

__all__ = ["DPRNNCausalConfig", "DPRNNCausal", "DualPathState", "ResidualLSTM", "CausalDualPath",
           "TimeDomainMaskingModel", "TABLE1"]

#: TFACM Table I (8 kHz; MACs per second of audio). Keys shared by the four baselines.
TABLE1: dict[str, dict[str, float]] = {
    "dprnn-causal": {"wham_sdri": 11.0, "wham_si_snri": 10.6, "whamr_sdri": 7.8, "whamr_si_snri": 7.2,
                     "librimix_sdri": 9.6, "librimix_si_snri": 9.0, "params_m": 1.3, "macs_g": 11.2,
                     "gpu_time_ms": 33.42},
    "skim": {"wham_sdri": 10.8, "wham_si_snri": 10.4, "whamr_sdri": 7.7, "whamr_si_snri": 7.0,
             "librimix_sdri": 9.9, "librimix_si_snri": 9.2, "params_m": 3.6, "macs_g": 11.1, "gpu_time_ms": 39.01},
    "resepformer": {"wham_sdri": 11.7, "wham_si_snri": 11.3, "whamr_sdri": 7.6, "whamr_si_snri": 6.9,
                    "librimix_sdri": 4.1, "librimix_si_snri": 3.3, "params_m": 8.0, "macs_g": 6.3,
                    "gpu_time_ms": 47.46},
    "tfgridnet-causal": {"wham_sdri": 13.8, "wham_si_snri": 13.5, "whamr_sdri": 9.9, "whamr_si_snri": 9.2,
                         "librimix_sdri": 11.5, "librimix_si_snri": 10.8, "params_m": 11.4, "macs_g": 179.2,
                         "gpu_time_ms": 84.59},
}


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

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        if state is None:
            state = self.rnn.init_state(x.shape[0], device=x.device, dtype=x.dtype)
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
        groups = max(1, math.ceil(frames / hop))
        # (B, K, D) -> (B, (J+1) P, D) -> (B, J, D, S) -> (B, J, S, D)
        padded = nn.functional.pad(x, (0, 0, 0, (groups + 1) * hop - frames))
        seg = padded.unfold(1, size, hop).permute(0, 1, 3, 2)
        for intra, inter in zip(self.intra, self.inter, strict=True):
            seg = intra(seg.reshape(batch * groups, size, dim))[0].view(batch, groups, size, dim)
            # (B, J, S, D) -> (B*S, J, D): the inter LSTM runs across segments at each position
            across = seg.transpose(1, 2).reshape(batch * size, groups, dim)
            seg = inter(across)[0].view(batch, size, groups, dim).transpose(1, 2)
        # 50 % overlap-add: first halves land on [jP, jP+P), second halves on [(j+1)P, (j+2)P)
        first = seg[:, :, :hop].reshape(batch, groups * hop, dim)
        second = seg[:, :, hop:].reshape(batch, groups * hop, dim)
        out = nn.functional.pad(first, (0, 0, 0, hop)) + nn.functional.pad(second, (0, 0, hop, 0))
        return out[:, :frames]

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
                z, st = intra(z.reshape(batch * nt, run, dim), st)
                ih[b, :, tracks], ic[b, :, tracks] = st.h.view(batch, nt, hidden), st.c.view(batch, nt, hidden)
                # one inter step per (track, position), each continuing its position's own state
                st = LSTMState(eh[b][:, index].reshape(1, batch * nt * run, hidden),
                               ec[b][:, index].reshape(1, batch * nt * run, hidden))
                z, st = inter(z.reshape(batch * nt * run, 1, dim), st)
                eh[b][:, index], ec[b][:, index] = st.h.view(batch, nt * run, hidden), st.c.view(batch, nt * run, hidden)
            outs.append(z.view(batch, nt, run, dim).sum(1))
            t, pos = t + run, pos + run
        out = torch.cat(outs, dim=1) if outs else x.new_zeros(batch, 0, dim)
        return out, DualPathState(ih, ic, eh, ec, state.frames + frames)


# ----------------------------------------------------------------------------- time-domain masking model
@dataclasses.dataclass
class ConvCodecConfig:
    """Learnable encoder/decoder (TasNet): ``num_filters`` filters of ``window`` samples, stride ``hop``."""

    num_filters: int = 64
    window: int = 4
    hop: int = 2


@dataclasses.dataclass
class TimeDomainConfig(ModelConfig):
    """What every TasNet-style baseline here shares: the codec and the bottleneck width."""

    codec: ConvCodecConfig = dataclasses.field(default_factory=ConvCodecConfig)
    #: channels the separator works on (1x1 convolution after a per-frame layer norm)
    bottleneck: int = 64


class TimeDomainState(NamedTuple):
    """Streaming state of a :class:`TimeDomainMaskingModel`.

    encoder: samples waiting for the next complete frame.
    separator: the separator's own state (see its class).
    decoder: overlap-add partial sums, batch shape (B, C).
    aligner: output FIFO that returns exactly ``n`` samples per ``n`` input samples.
    """

    encoder: Any
    separator: Any
    decoder: Any
    aligner: Any


class TimeDomainMaskingModel(SeparationModel):
    """Causal TasNet skeleton: encoder -> ReLU -> LN + bottleneck -> separator -> mask head -> decoder.

    Subclasses build ``self.separator``: a module on channels-last ``(B, K, D)`` with ``forward``,
    ``init_state(B, device=, dtype=)`` and ``step(x, state) -> (y, state)``, where ``step`` over any
    split of the frames equals ``forward`` and no output frame reads a later input frame. The model
    then looks ahead only by its encoder window: ``latency = window - 1`` samples
    (:func:`speechsep.blocks.framing.stream_latency`).
    """

    config: TimeDomainConfig

    def __init__(self, config: TimeDomainConfig):
        super().__init__(config)
        codec = config.codec
        self.encoder = ConvEncoder(codec.num_filters, codec.window, codec.hop, causal=True)
        self.decoder = ConvDecoder(codec.num_filters, codec.window, codec.hop, causal=True)
        self.aligner = OutputAligner(stream_latency(codec.window, codec.hop))
        self.norm = nn.LayerNorm(codec.num_filters, eps=1e-8)
        self.bottleneck = nn.Linear(codec.num_filters, config.bottleneck)
        # mask head (Conv-TasNet / DPRNN): PReLU, 1x1 convolution to C x N, ReLU masks
        self.head = nn.Sequential(nn.PReLU(), nn.Linear(config.bottleneck, config.num_sources * codec.num_filters),
                                  nn.ReLU())
        self.separator: nn.Module

    @property
    def is_causal(self) -> bool:
        return True

    @property
    def latency(self) -> int:
        return self.aligner.latency

    def _masked(self, feats: torch.Tensor, state: Any | None) -> tuple[torch.Tensor, Any]:
        """(B, N, K) encoder output -> (B, C, N, K) masked features; offline when ``state`` is None."""
        batch, filters, frames = feats.shape
        w = torch.relu(feats)
        x = self.bottleneck(self.norm(w.transpose(1, 2)))  # (B, K, D)
        if state is None:
            y = self.separator(x)
        else:
            y, state = self.separator.step(x, state)
        masks = self.head(y).view(batch, frames, self.num_sources, filters).permute(0, 2, 3, 1)
        return masks * w.unsqueeze(1), state

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """(B, T) or (B, 1, T) -> (B, C, T)."""
        mixture = check_waveform_batch(mixture)
        masked, _ = self._masked(self.encoder(mixture), None)
        return self.decoder(masked, mixture.shape[-1])

    def init_state(self, batch_size: int = 1) -> TimeDomainState:
        weight = self.bottleneck.weight
        return TimeDomainState(
            self.encoder.init_state(batch_size),
            self.separator.init_state(batch_size, device=weight.device, dtype=weight.dtype),
            self.decoder.init_state((batch_size, self.num_sources)),
            self.aligner.init_state((batch_size, self.num_sources), dtype=weight.dtype, device=weight.device),
        )

    def step(self, chunk: torch.Tensor, state: TimeDomainState) -> tuple[torch.Tensor, TimeDomainState]:
        """(B, n) -> (B, C, n): the offline output delayed by ``latency`` samples."""
        chunk = check_waveform_batch(chunk, "chunk")
        feats, encoder = self.encoder.step(chunk, state.encoder)
        masked, separator = self._masked(feats, state.separator)
        samples, decoder = self.decoder.step(masked, state.decoder)
        out, aligner = self.aligner.step(samples, chunk.shape[-1], state.aligner)
        return out, TimeDomainState(encoder, separator, decoder, aligner)


# ----------------------------------------------------------------------------- DPRNN
@dataclasses.dataclass
class DPRNNCausalConfig(TimeDomainConfig):
    """Causal DPRNN-TasNet. Defaults: the Table I size (see the preset)."""

    #: LSTM hidden units of both paths (one direction); 168 lands on Table I's 1.3 M / 11.2 G
    #: with one-way intra LSTMs (the NOTES.md 128 assumed a two-way intra LSTM)
    hidden: int = 168
    #: frames per segment S (hop S / 2)
    segment: int = 100
    num_blocks: int = 4


@register_model
class DPRNNCausal(TimeDomainMaskingModel):
    family = "dprnn-causal"
    config_class = DPRNNCausalConfig

    def __init__(self, config: DPRNNCausalConfig):
        super().__init__(config)
        self.separator = CausalDualPath(config.bottleneck, config.hidden, config.segment, config.num_blocks)


register_preset(
    "dprnn-causal", DPRNNCausal.family, DPRNNCausalConfig(),
    "Causal DPRNN-TasNet, TFACM Table I: encoder 64 x 4 samples / stride 2, bottleneck 64, 4 blocks, "
    "segments of 100 frames with 50 % overlap, one-way intra and inter LSTMs of 168 units",
    paper=TABLE1["dprnn-causal"], tags=("tfacm-table1", "paper-scale"),
)
register_preset(
    "dprnn-causal-tiny", DPRNNCausal.family,
    DPRNNCausalConfig(codec=ConvCodecConfig(8, 8, 4), bottleneck=8, hidden=8, segment=20, num_blocks=2),
    "Causal DPRNN at test size (CPU tests)", tags=("tiny",),
)
