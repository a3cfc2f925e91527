"""Generalized iterative separation (Luo, Han, Mesgarani: "Empirical analysis of generalized
iterative speech separation networks"), Figure 1 (A)-(D), in the time and the frequency domain.

One iteration: encode the mixture and the C outputs of the previous iteration (zeros for the
first) with the same front-end, stack the C+1 feature maps on the channel axis, bottleneck, then
a SIMO module (K1 DPRNN blocks on the mixture ending in C feature streams) and a SISO module (K2
DPRNN blocks run on every stream with shared weights); one shared mask layer turns a stream into a
ReLU mask on the mixture's encoding, and the decoder (learnable, or the iSTFT with the mixture's
phase) makes the waveform. Iterations reuse the SISO module always and the SIMO module when
``share_simo`` (Table 3 uses iteration-specific SIMO modules). Decisions where the paper is silent
are in docs/design.md#iterative-separation.

Axis legend:
    B  batch            C  sources          T  samples
    F  encoder channels (learnable filters or STFT bins)      K  encoder frames
    N  bottleneck channels      G  DPRNN segments      S  frames within a segment
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from speechsep.blocks.dprnn import DPRNNBlock, group_norm, overlap_add, segment
from speechsep.blocks.encoders import ConvDecoder, ConvEncoder, MagnitudeCodec
from speechsep.blocks.framing import ms_to_samples
from speechsep.losses.objectives import LEGACY_MODEL_KEYS, ObjectiveConfig
from speechsep.losses.pit import apply_permutation, pit_from_pairwise
from speechsep.losses.snr import pairwise_neg_snr
from speechsep.models.base import ModelConfig, SeparationModel, TrainingOutput
from speechsep.registry import register_model
from speechsep.utils import check_waveform_batch

__all__ = [
    "EncoderConfig",
    "DPRNNConfig",
    "IterativeConfig",
    "IterativeSeparator",
    "IterationEstimate",
    "IterativeOutputs",
]

#: paper sizes per domain (Sec. 3.2); ``None`` fields of the configs resolve to these
_DOMAIN_DEFAULTS = {
    # learnable encoder: 2 ms window, stride half the window, 128 filters; DPRNN segments of 100 frames
    "time": {"window_ms": 2.0, "hop_ms": 1.0, "num_filters": 128, "segment_size": 100},
    # STFT: 32 ms window (512 points at 16 kHz, 257 bins); the hop is not stated: 8 ms (a quarter
    # window, the usual choice for a 32 ms STFT); DPRNN segments of 24 frames
    "freq": {"window_ms": 32.0, "hop_ms": 8.0, "num_filters": None, "segment_size": 24},
}


@dataclasses.dataclass
class EncoderConfig:
    """Front-end sizes in milliseconds, so one config works at 8 and 16 kHz. ``None`` = the paper's
    value for the model's domain."""

    window_ms: float | None = None
    hop_ms: float | None = None
    #: learnable filters (time domain only; the STFT has window/2 + 1 bins)
    num_filters: int | None = None


@dataclasses.dataclass
class DPRNNConfig:
    bottleneck: int = 64
    hidden: int = 128
    #: frames per segment; ``None`` = 100 (time) or 24 (freq)
    segment_size: int | None = None
    norm: str = "gln"
    dropout: float = 0.0


@dataclasses.dataclass
class IterativeConfig(ModelConfig):
    """One model of the grid. The defaults are Table 1's 1 SIMO + 2 SISO row, time domain, paper
    sizes; ``iterative_presets`` names every row."""

    sample_rate: int = 16000
    num_sources: int = 2
    #: "time" (learnable encoder/decoder) or "freq" (STFT magnitude, mixture phase for the iSTFT)
    domain: str = "time"
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    dprnn: DPRNNConfig = dataclasses.field(default_factory=DPRNNConfig)
    #: K1: DPRNN blocks in the SIMO module (at least 1)
    simo_layers: int = 1
    #: K2: DPRNN blocks in the SISO module (0: the SIMO outputs are the separation outputs)
    siso_layers: int = 2
    #: iterations during training, and the default at inference (``forward(iterations=k)`` overrides)
    iterations: int = 1
    #: stop the gradient between iterations (Table 1 "output detach")
    detach: bool = True
    #: one SIMO module for all iterations, or one per iteration (Table 3); SISO is always shared
    share_simo: bool = True
    # The training objective (layer-wise loss, Table 2; oracle-bias pass, Table 4; iteration weights)
    # is not the model's: it is the training config's ``loss:`` section (LossConfig). Configs written
    # before held it here as ``layerwise``, ``oracle_bias`` and ``objective``; see ``legacy_keys``.

    @classmethod
    def legacy_keys(cls) -> tuple[str, ...]:
        """Keys of old serialised configs that this config no longer has and that loading drops: the
        training objective's (they change no weight and no output; a training config migrates them
        to ``loss:``, :func:`speechsep.losses.objectives.migrate_model_objective`)."""
        return LEGACY_MODEL_KEYS

    def __post_init__(self) -> None:
        if self.domain not in _DOMAIN_DEFAULTS:
            raise ValueError(f"domain must be 'time' or 'freq'; got {self.domain!r}")
        if self.simo_layers < 1:
            raise ValueError(f"simo_layers must be >= 1; got {self.simo_layers}")
        if self.siso_layers < 0:
            raise ValueError(f"siso_layers must be >= 0; got {self.siso_layers}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1; got {self.iterations}")
        if self.num_sources < 1:
            raise ValueError(f"num_sources must be >= 1; got {self.num_sources}")

    def resolved(self, name: str):
        """A size after the domain defaults are applied (``window_ms``, ``hop_ms``, ``num_filters``,
        ``segment_size``)."""
        own = self.dprnn.segment_size if name == "segment_size" else getattr(self.encoder, name)
        return _DOMAIN_DEFAULTS[self.domain][name] if own is None else own


class IterationEstimate(TrainingOutput):
    """One labelled estimate of the sources (a :class:`TrainingOutput` with the iterative model's labels).

    ``layer``: SISO layer 1..K2; 0 = the SIMO output (only when K2 = 0). ``iteration``: for the oracle
    pass, the iteration whose SIMO module it used.
    """

    __slots__ = ()

    @property
    def label(self) -> str:
        where = "oracle" if self.oracle else f"it{self.iteration}"
        return f"{where}/{'simo' if self.layer == 0 else f'siso{self.layer}'}"


class IterativeOutputs(list):
    """What :meth:`IterativeSeparator.training_outputs` returns: the list of every decoded estimate
    (:class:`IterationEstimate`, in computation order: per iteration its final layer, or every SISO
    layer when the objective is layer-wise; then the oracle pass, if asked for), and for analysis:

    permutations: per iteration, the PIT permutation ``(B, C)`` (``perm[b, j]`` = estimate matched to
        reference j) that ordered the next iteration's bias input.
    final: the last iteration's final output ``(B, C, T)``, what ``forward`` returns.
    """

    def __init__(self, estimates: list[IterationEstimate], permutations: list[torch.Tensor], final: torch.Tensor):
        super().__init__(estimates)
        self.permutations = permutations
        self.final = final

    @property
    def estimates(self) -> list[IterationEstimate]:
        return list(self)

    def iteration_outputs(self) -> list[torch.Tensor]:
        """The final-layer output of each iteration, in order (oracle pass excluded)."""
        deepest: dict[int, IterationEstimate] = {}
        for e in self.estimates:
            if not e.oracle and (e.iteration not in deepest or e.layer >= deepest[e.iteration].layer):
                deepest[e.iteration] = e
        return [deepest[i].estimate for i in sorted(deepest)]


class _LearnableFrontEnd(nn.Module):
    """Time domain: learnable 1-D conv encoder (ReLU, as in TasNet) and transposed-conv decoder."""

    def __init__(self, config: IterativeConfig):
        super().__init__()
        window = ms_to_samples(config.resolved("window_ms"), config.sample_rate)
        hop = ms_to_samples(config.resolved("hop_ms"), config.sample_rate)
        filters = config.resolved("num_filters")
        self.num_channels = filters
        self.encoder = ConvEncoder(filters, window, hop)
        self.decoder = ConvDecoder(filters, window, hop)

    def encode(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B', T) -> (features (B', F, K), what ``decode`` needs: here the features themselves)."""
        feats = torch.relu(self.encoder(wav))
        return feats, feats

    def decode(self, masks: torch.Tensor, context: torch.Tensor, length: int) -> torch.Tensor:
        """masks (B, C, F, K) on the mixture's encoding -> (B, C, T)."""
        return self.decoder(masks * context.unsqueeze(1), length)


class _MagnitudeFrontEnd(nn.Module):
    """Frequency domain: STFT magnitude in, masked magnitude with the mixture's phase out (Sec. 3.2)."""

    def __init__(self, config: IterativeConfig):
        super().__init__()
        window = ms_to_samples(config.resolved("window_ms"), config.sample_rate)
        hop = ms_to_samples(config.resolved("hop_ms"), config.sample_rate)
        self.codec = MagnitudeCodec(window, hop)
        self.num_channels = self.codec.num_bins

    def encode(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.codec.encode(wav)

    def decode(self, masks: torch.Tensor, context: torch.Tensor, length: int) -> torch.Tensor:
        magnitude = context.abs()
        return self.codec.decode(masks * magnitude.unsqueeze(1), context, length)


class _SIMO(nn.Module):
    """Bottleneck + K1 DPRNN blocks on the (mixture, bias) features, ending in C streams."""

    def __init__(self, in_channels: int, config: IterativeConfig):
        super().__init__()
        d = config.dprnn
        n = d.bottleneck
        self.num_sources = config.num_sources
        self.segment_size = config.resolved("segment_size")
        # per-input gLN: each of the C+1 stacked maps is normalised on its own, so the (often
        # all-zero) bias maps of iteration 1 do not rescale the mixture's features
        self.norm = nn.GroupNorm(config.num_sources + 1, in_channels, eps=1e-8)
        self.bottleneck = nn.Conv1d(in_channels, n, 1)
        self.blocks = nn.ModuleList(
            DPRNNBlock(n, d.hidden, norm=d.norm, dropout=d.dropout) for _ in range(config.simo_layers)
        )
        # the split into C streams (as DPRNN-TasNet's output layer: PReLU then a 1x1 map to C*N)
        self.split = nn.Sequential(nn.PReLU(), nn.Linear(n, n * config.num_sources))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, (C+1)F, K) -> streams (B*C, G, S, N)."""
        y = segment(self.bottleneck(group_norm(self.norm, x)), self.segment_size)  # (B, G, S, N)
        for block in self.blocks:
            y = block(y)
        b, g, s, n = y.shape
        y = self.split(y).reshape(b, g, s, self.num_sources, n)
        # (B, G, S, C, N) -> (B*C, G, S, N): the SISO module sees each stream as its own example
        return y.permute(0, 3, 1, 2, 4).reshape(b * self.num_sources, g, s, n)


class _MaskHead(nn.Module):
    """The shared mask-estimation layer: a stream's features -> a ReLU mask on the encoder output."""

    def __init__(self, config: IterativeConfig, out_channels: int):
        super().__init__()
        self.num_sources = config.num_sources
        self.out = nn.Sequential(nn.PReLU(), nn.Conv1d(config.dprnn.bottleneck, out_channels, 1), nn.ReLU())

    def forward(self, streams: torch.Tensor, frames: int) -> torch.Tensor:
        """(B*C, G, S, N) -> masks (B, C, F, K)."""
        masks = self.out(overlap_add(streams, frames))  # (B*C, F, K)
        return masks.reshape(-1, self.num_sources, *masks.shape[1:])


@register_model
class IterativeSeparator(SeparationModel):
    """SIMO/SISO DPRNN separator run for one or more iterations (Fig. 1 D).

    ``forward(mixture)`` -> (B, C, T) with ``config.iterations`` iterations;
    ``forward(mixture, iterations=k)`` runs k (any k >= 1, independent of training);
    ``training_outputs(mixture, targets, objective)`` -> :class:`IterativeOutputs`, every estimate the
    objective needs; PIT orders each iteration's outputs before they feed the next one.
    """

    family = "iterative"
    config_class = IterativeConfig

    def __init__(self, config: IterativeConfig):
        super().__init__(config)
        self.front = _LearnableFrontEnd(config) if config.domain == "time" else _MagnitudeFrontEnd(config)
        channels = self.front.num_channels
        n_simo = 1 if config.share_simo else config.iterations
        self.simo = nn.ModuleList(_SIMO(channels * (config.num_sources + 1), config) for _ in range(n_simo))
        d = config.dprnn
        self.siso = nn.ModuleList(
            DPRNNBlock(d.bottleneck, d.hidden, norm=d.norm, dropout=d.dropout) for _ in range(config.siso_layers)
        )
        self.mask = _MaskHead(config, channels)

    # -- one iteration -------------------------------------------------------------------------
    def _simo_for(self, iteration: int) -> _SIMO:
        """Iteration-specific SIMO modules beyond the trained count reuse the last one."""
        return self.simo[min(iteration, len(self.simo)) - 1]

    def _iterate(
        self,
        simo: _SIMO,
        mix_feats: torch.Tensor,
        context: torch.Tensor,
        bias: torch.Tensor | None,
        length: int,
        all_layers: bool,
    ) -> list[tuple[int, torch.Tensor]]:
        """One pass of Fig. 1 (D); returns [(layer, estimate (B, C, T)), ...] (the last is final)."""
        b, f, k = mix_feats.shape
        c = self.num_sources
        if bias is None:
            # the first iteration's bias is silence; both front-ends map silence to zero features
            bias_feats = mix_feats.new_zeros(b, c * f, k)
        else:
            bias_feats, _ = self.front.encode(bias.reshape(b * c, -1))  # (B*C, F, K)
            bias_feats = bias_feats.reshape(b, c * f, k)
        streams = simo(torch.cat([mix_feats, bias_feats], dim=1))  # (B*C, G, S, N)
        layers = [(0, streams)]
        for index, block in enumerate(self.siso, start=1):
            streams = block(streams)
            layers.append((index, streams))
        # layer-wise (Table 2): every SISO layer through the shared mask layer; otherwise the last
        # layer only (with K2 = 0 that is the SIMO output)
        chosen = layers[1:] if all_layers and len(layers) > 1 else layers[-1:]
        return [(layer, self.front.decode(self.mask(s, k), context, length)) for layer, s in chosen]

    # -- the pipeline ----------------------------------------------------------------------------
    def forward(self, mixture: torch.Tensor, *, iterations: int | None = None) -> torch.Tensor:
        """Separate ``mixture`` (B, T) or (B, 1, T) -> (B, C, T); ``iterations``: how many to run
        (default: as trained)."""
        return self._run(mixture, None, iterations, all_layers=False, oracle=False).final

    def training_outputs(
        self,
        mixture: torch.Tensor,
        targets: torch.Tensor,
        objective: ObjectiveConfig | None = None,
        *,
        iterations: int | None = None,
        align: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> IterativeOutputs:
        """Every estimate ``objective`` needs (``None``: the default objective), with ``targets`` (B, C, T).

        PIT (negative SNR, or ``align(est, ref) -> perm``) orders each iteration's outputs before they
        become the next iteration's bias input. ``objective.layers == "all"`` decodes every SISO layer;
        ``objective.oracle_bias`` adds the oracle pass, in training mode only.
        """
        objective = objective or ObjectiveConfig()
        return self._run(mixture, targets, iterations, all_layers=objective.layers == "all",
                         oracle=objective.oracle_bias and self.training, align=align)

    def _run(
        self,
        mixture: torch.Tensor,
        targets: torch.Tensor | None,
        iterations: int | None,
        *,
        all_layers: bool,
        oracle: bool,
        align: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> IterativeOutputs:
        mix = check_waveform_batch(mixture)
        num_iterations = self.config.iterations if iterations is None else int(iterations)
        if num_iterations < 1:
            raise ValueError(f"iterations must be >= 1; got {iterations}")
        if targets is not None:
            if targets.dim() != 3 or targets.shape[0] != mix.shape[0] or targets.shape[1] != self.num_sources \
                    or targets.shape[2] != mix.shape[1]:
                raise ValueError(
                    f"targets must be shaped (batch, {self.num_sources}, time) matching the mixture "
                    f"{tuple(mix.shape)}; got {tuple(targets.shape)}"
                )
            align = align or _pit_permutation
        length = mix.shape[-1]
        mix_feats, context = self.front.encode(mix)

        estimates: list[IterationEstimate] = []
        permutations: list[torch.Tensor] = []
        bias: torch.Tensor | None = None
        final = mix.new_zeros(0)
        for i in range(1, num_iterations + 1):
            outs = self._iterate(self._simo_for(i), mix_feats, context, bias, length, all_layers)
            estimates += [IterationEstimate(est, i, layer) for layer, est in outs]
            final = outs[-1][1]
            if i == num_iterations:
                break
            bias = final
            if targets is not None:
                # Sec. 2.1: the output permutation at iteration i is the input permutation at i+1
                perm = align(final.detach(), targets)
                permutations.append(perm)
                bias = apply_permutation(bias, perm)
            if self.config.detach:
                bias = bias.detach()
        if targets is not None:
            # the last iteration's own PIT order, so there is one permutation per iteration
            permutations.append(align(final.detach(), targets))

        if targets is not None and oracle:
            # Table 4: the clean targets (reference order = PIT order) as the bias input; the SIMO
            # module that normally receives a bias (iteration 2's, or the only one when shared)
            oracle_iteration = min(2, len(self.simo))
            outs = self._iterate(
                self._simo_for(oracle_iteration), mix_feats, context, targets.detach(), length, all_layers
            )
            estimates += [IterationEstimate(est, oracle_iteration, layer, oracle=True) for layer, est in outs]
        return IterativeOutputs(estimates, permutations, final)


def _pit_permutation(estimate: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The permutation uPIT with negative SNR (the training objective, Sec. 3.3) chooses."""
    return pit_from_pairwise(pairwise_neg_snr(estimate, targets))[1]
