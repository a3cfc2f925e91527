"""The causal TasNet skeleton the time-domain baselines share: encoder -> masker -> decoder.

DPRNN-TasNet, SkiM and RE-SepFormer (TFACM's Table I) differ only in the separator between the
bottleneck and the mask head; this module holds everything around it and the configs they extend.

Axis legend:
    B  batch           C  sources            T  samples
    N  encoder filters  D  bottleneck channels  K  encoder frames
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from speechsep.blocks.encoders import ConvDecoder, ConvEncoder
from speechsep.blocks.framing import AlignerState, FramerState, OutputAligner, OverlapAddState, stream_latency
from speechsep.models.base import ModelConfig, SeparationModel
from speechsep.utils import check_waveform_batch

__all__ = ["ConvCodecConfig", "TimeDomainConfig", "TimeDomainState", "TimeDomainMaskingModel"]


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
    separator: the separator's own state, a NamedTuple of its class (``DualPathState``, ``SkiMState``,
        ``ReSepFormerState``): typed there, as only the subclass knows which.
    decoder: overlap-add partial sums, batch shape (B, C).
    aligner: output FIFO that returns exactly ``n`` samples per ``n`` input samples.
    """

    encoder: FramerState
    separator: tuple
    decoder: OverlapAddState
    aligner: AlignerState


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

    def _masked(self, feats: torch.Tensor, state: tuple | None) -> tuple[torch.Tensor, tuple | None]:
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

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples: int | None = None
                   ) -> TimeDomainState:
        kw = self.state_placement(device, dtype)
        return TimeDomainState(
            self.encoder.init_state(batch_size),
            self.separator.init_state(batch_size, **kw),
            self.decoder.init_state((batch_size, self.num_sources)),
            self.aligner.init_state((batch_size, self.num_sources), **kw),
        )

    def step(self, chunk: torch.Tensor, state: TimeDomainState) -> tuple[torch.Tensor, TimeDomainState]:
        """(B, n) -> (B, C, n): the offline output delayed by ``latency`` samples."""
        chunk = check_waveform_batch(chunk, "chunk")
        feats, encoder = self.encoder.step(chunk, state.encoder)
        masked, separator = self._masked(feats, state.separator)
        samples, decoder = self.decoder.step(masked, state.decoder)
        out, aligner = self.aligner.step(samples, chunk.shape[-1], state.aligner)
        return out, TimeDomainState(encoder, separator, decoder, aligner)
