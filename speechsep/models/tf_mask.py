"""uPIT-(B)LSTM time-frequency masking: STFT -> LSTM stack over frames -> C masks -> iSTFT.

Axis legend:
    B  batch          C  sources            T  samples          n  samples in a streamed chunk
    F  frequency bins K  frames             H  LSTM hidden units (per direction)
    D  LSTM stack width (H, or 2 H when bidirectional)

The cheapest well-tested separator per second of audio (Kolbaek, Yu, Tan and Jensen, "Multi-talker
speech separation with utterance-level permutation invariant training of deep recurrent neural
networks", IEEE/ACM TASLP 2017; Sec. III-IV: log-magnitude input, stacked BLSTM, one ratio mask per
talker applied to the mixture magnitude with the mixture phase, utterance-level PIT). Here the loss
is whatever the trainer uses on the waveforms (negative SNR with uPIT by default), since the masks
are applied and inverted inside the model.

Pipeline: STFT with a coarse hop (32 ms sqrt-Hann window, 8 ms hop at any rate) -> log power (or
power-law compressed magnitude) -> per-bin normalisation (:class:`BinNorm`) -> ``num_layers`` LSTM
layers over frames, residual from the second layer on -> linear head to C masks per bin (sigmoid,
softplus or ReLU ratio masks, or unbounded complex masks) -> masks times the mixture STFT -> iSTFT
with overlap-add, cut to the input length. Optionally (``embedding_dim > 0``) an embedding head beside
the mask head, trained with a deep-clustering term and used only in training (Chimera++).

Causality (``causal=True``): framing without centre padding, one-way LSTMs, a cumulative per-bin
normalisation, nothing else reads another frame. Output frame ``k`` then depends on analysis frames
``<= k`` and the stream is the offline output delayed by the STFT window (``latency = W - 1``,
:func:`speechsep.blocks.framing.stream_latency`). ``forward`` and ``step`` both call
:meth:`TFMask._masks` with an explicit state; offline is one call from the initial state.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from speechsep.blocks.encoders import ISTFT, STFT
from speechsep.blocks.framing import AlignerState, FramerState, OutputAligner, OverlapAddState, ms_to_samples
from speechsep.blocks.recurrent import CausalLSTM, LSTMState
from speechsep.losses.deep_clustering import active_bin_weights, deep_clustering_loss, dominant_source_labels
from speechsep.losses.objectives import ObjectiveConfig
from speechsep.models.base import ModelConfig, SeparationModel, StreamingNotSupported, TrainingOutput
from speechsep.registry import register_model, register_preset
from speechsep.threads import heavy_kernel
from speechsep.utils import check_waveform_batch

__all__ = ["TFMaskConfig", "TFMask", "BinNorm", "BinNormState", "TFMaskState", "MASKS", "FEATURES", "NORMS"]

MASKS = ("sigmoid", "softplus", "relu", "complex")
FEATURES = ("log", "power")
NORMS = ("auto", "utterance", "cumulative", "none")


@dataclasses.dataclass
class TFMaskConfig(ModelConfig):
    """STFT-mask LSTM separator. Defaults: the non-causal BLSTM (``tf-mask-blstm``, 4.1 M parameters)."""

    window_ms: float = 32.0  #: STFT window W (256 samples at 8 kHz, 129 bins)
    hop_ms: float = 8.0  #: STFT hop H (125 frames a second)
    n_fft: int | None = None  #: FFT size (default: the window)
    window_fn: str = "sqrt_hann"  #: analysis and synthesis window (speechsep.blocks.encoders.make_window)
    causal: bool = False  #: one-way LSTMs, causal framing and normalisation; streams
    hidden_size: int = 256  #: H per direction
    num_layers: int = 3
    residual: bool = True  #: x + LSTM(x) for every layer whose input is as wide as its output
    dropout: float = 0.0  #: between LSTM layers, training only
    feature: str = "log"  #: "log": log(|X|^2 + eps); "power": |X|^compress
    compress: float = 0.3  #: exponent of the "power" feature
    #: per-bin normalisation of the features: "utterance" (mean/var over all frames, not causal),
    #: "cumulative" (over frames 0..k, causal), "none"; "auto": cumulative if causal else utterance
    norm: str = "auto"
    #: "sigmoid" / "softplus" / "relu": real ratio masks on the mixture STFT (the mixture phase);
    #: "complex": unbounded complex masks (real and imaginary part from the head)
    mask: str = "sigmoid"
    eps: float = 1e-8  #: floor of the log power
    #: Chimera++ deep-clustering head (Wang et al., ICASSP 2018): a unit embedding of this size for every
    #: bin, from the last LSTM layer beside the mask head, trained by ``loss.deep_clustering_weight`` and
    #: never used at inference; 0: no head
    embedding_dim: int = 0
    #: the deep-clustering term on every n-th frame only: the embedding head's cost (a D x F E product a
    #: frame, a third of the BLSTM's at E = 20) over n, and the term, a mean over pairs of bins, is
    #: estimated from a regular subset of them
    embedding_stride: int = 1

    def __post_init__(self) -> None:
        for name, value, allowed in (("mask", self.mask, MASKS), ("feature", self.feature, FEATURES),
                                     ("norm", self.norm, NORMS)):
            if value not in allowed:
                raise ValueError(f"tf-mask {name} must be one of {allowed}; got {value!r}")
        if self.causal and self.norm == "utterance":
            raise ValueError("tf-mask norm='utterance' reads the whole utterance: not allowed with causal=True")
        if self.embedding_stride < 1:
            raise ValueError(f"tf-mask embedding_stride must be >= 1 (1: every frame); got {self.embedding_stride}")
        if self.embedding_dim < 0:
            raise ValueError(f"tf-mask embedding_dim must be >= 0 (0: no deep-clustering head); got {self.embedding_dim}")
        if self.num_layers < 1 or self.hidden_size < 1:
            raise ValueError(f"need num_layers >= 1 and hidden_size >= 1; got {self.num_layers}, {self.hidden_size}")

    @property
    def norm_mode(self) -> str:
        if self.norm == "auto":
            return "cumulative" if self.causal else "utterance"
        return self.norm


class BinNormState(NamedTuple):
    """Running sums of the cumulative :class:`BinNorm`: frame count ``(B, 1)``, per-bin sum and sum of
    squares ``(B, F)``, all float64 (an hour of frames would lose precision in float32)."""

    count: torch.Tensor
    total: torch.Tensor
    total_sq: torch.Tensor


class BinNorm(nn.Module):
    """Mean and variance normalisation of every bin over frames, then a learnt per-bin gain and bias.

    ``(B, K, F) -> (B, K, F)``. Mean-variance normalisation of the log spectrum per bin is the
    uPIT input normalisation (TASLP 2017 Sec. IV-A, there with training-set statistics); here the
    statistics are the utterance's own (``"utterance"``) or those of frames ``0..k``
    (``"cumulative"``, causal, the per-bin analogue of Conv-TasNet's cLN). On log features the mean
    removes the input gain; on power-law features the variance does.
    """

    def __init__(self, num_bins: int, mode: str, eps: float = 1e-5):
        super().__init__()
        if mode not in ("utterance", "cumulative", "none"):
            raise ValueError(f"BinNorm mode must be utterance, cumulative or none; got {mode!r}")
        self.num_bins, self.mode, self.eps = num_bins, mode, eps
        self.weight = nn.Parameter(torch.ones(num_bins))
        self.bias = nn.Parameter(torch.zeros(num_bins))

    def init_state(self, batch_size: int, *, device=None) -> BinNormState:
        count = torch.zeros(batch_size, 1, dtype=torch.float64, device=device)
        zeros = torch.zeros(batch_size, self.num_bins, dtype=torch.float64, device=device)
        return BinNormState(count, zeros, zeros.clone())

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.num_bins:
            raise ValueError(f"BinNorm expects (B, K, {self.num_bins}); got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A whole utterance; ``"cumulative"`` is :meth:`step` from :meth:`init_state`."""
        self._check(x)
        if self.mode == "utterance":
            mean = x.mean(dim=1, keepdim=True)
            var = (x - mean).pow(2).mean(dim=1, keepdim=True)
            return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        if self.mode == "cumulative":
            return self.step(x, self.init_state(x.shape[0], device=x.device))[0]
        return x * self.weight + self.bias

    def step(self, x: torch.Tensor, state: BinNormState) -> tuple[torch.Tensor, BinNormState]:
        """The next frames of a stream (``"cumulative"`` or ``"none"``: an utterance's statistics read the future)."""
        self._check(x)
        if self.mode == "utterance":
            raise ValueError("BinNorm mode 'utterance' normalises by the whole utterance and cannot stream")
        if self.mode == "none":
            return x * self.weight + self.bias, state
        x64 = x.double()
        count = state.count + torch.arange(1, x.shape[1] + 1, device=x.device)  # (B, K)
        total = state.total.unsqueeze(1) + x64.cumsum(1)  # (B, K, F)
        total_sq = state.total_sq.unsqueeze(1) + x64.pow(2).cumsum(1)
        mean = total / count.unsqueeze(-1)
        var = (total_sq / count.unsqueeze(-1) - mean.pow(2)).clamp_min(0.0)
        y = (x - mean.to(x.dtype)) * torch.rsqrt(var.to(x.dtype) + self.eps)
        if x.shape[1]:
            state = BinNormState(count[:, -1:], total[:, -1], total_sq[:, -1])
        return y * self.weight + self.bias, state

    def extra_repr(self) -> str:
        return f"{self.num_bins}, mode={self.mode!r}, eps={self.eps}"


class _Layer(nn.Module):
    """One LSTM layer over frames, ``(B, K, D_in) -> (B, K, D)``, with an optional residual."""

    def __init__(self, input_size: int, hidden: int, causal: bool, residual: bool):
        super().__init__()
        self.causal = causal
        if causal:
            self.rnn = CausalLSTM(input_size, hidden)
        else:
            self.rnn = nn.LSTM(input_size, hidden, batch_first=True, bidirectional=True)
        self.output_size = hidden if causal else 2 * hidden
        self.residual = residual and input_size == self.output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A whole utterance (a causal layer: :meth:`step` from a zero state)."""
        if self.causal:
            return self.step(x, self.rnn.init_state(x.shape[0], device=x.device, dtype=x.dtype))[0]
        with heavy_kernel:
            y, _ = self.rnn(x)
        return x + y if self.residual else y

    def step(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        if not self.causal:
            raise ValueError("a bidirectional LSTM layer reads the future and cannot stream")
        y, state = self.rnn.step(x, state)
        return (x + y if self.residual else y), state


class TFMaskState(NamedTuple):
    """Streaming state of :class:`TFMask`. Sizes never depend on how long the stream has run.

    analysis: STFT framer (mixture samples of the frame not yet complete), ``(B, < W)``.
    norm: the cumulative per-bin statistics (:class:`BinNormState`).
    lstm: per layer, the one-way LSTM's ``(h, c)``, each ``(1, B, H)``.
    synthesis: iSTFT overlap-add partial sums, ``(B, C, W - H)``.
    aligner: output FIFO that returns exactly ``n`` samples per ``n`` input samples.
    """

    analysis: FramerState
    norm: BinNormState
    lstm: list[LSTMState]
    synthesis: OverlapAddState
    aligner: AlignerState


@register_model
class TFMask(SeparationModel):
    """``(B, T)`` or ``(B, 1, T)`` -> ``(B, C, T)``; see the module doc."""

    family = "tf-mask"
    config_class = TFMaskConfig
    config: TFMaskConfig
    training_only_modules = ("embedding_head",)

    def __init__(self, config: TFMaskConfig):
        super().__init__(config)
        sr = config.sample_rate
        window, hop = ms_to_samples(config.window_ms, sr), ms_to_samples(config.hop_ms, sr)
        self.stft = STFT(window, hop, config.n_fft, causal=config.causal, window_fn=config.window_fn)
        self.istft = ISTFT(window, hop, config.n_fft, causal=config.causal, window_fn=config.window_fn)
        bins = self.stft.num_bins
        self.norm = BinNorm(bins, config.norm_mode)
        layers, width = [], bins
        for _ in range(config.num_layers):
            layers.append(_Layer(width, config.hidden_size, config.causal, config.residual))
            width = layers[-1].output_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(config.dropout)
        self.parts = 2 if config.mask == "complex" else 1
        self.head = nn.Linear(width, config.num_sources * self.parts * bins)
        self.embedding_head = nn.Linear(width, bins * config.embedding_dim) if config.embedding_dim else None
        self._aligner = OutputAligner(self.latency)

    @property
    def is_causal(self) -> bool:
        return bool(self.config.causal)

    @property
    def latency(self) -> int:
        return self.stft.latency if self.config.causal else 0

    @property
    def num_bins(self) -> int:
        return self.stft.num_bins

    def _features(self, spec: torch.Tensor) -> torch.Tensor:
        """complex (B, F, K) -> real (B, K, F)."""
        mag = spec.abs().transpose(1, 2)
        if self.config.feature == "log":
            return torch.log(mag.square() + self.config.eps)
        return mag.clamp_min(self.config.eps).pow(self.config.compress)

    def _masks(
        self, spec: torch.Tensor, state: tuple[BinNormState, list[LSTMState]] | None
    ) -> tuple[torch.Tensor, tuple[BinNormState, list[LSTMState]] | None]:
        """Mixture STFT (B, F, K) -> masked source spectra (B, C, F, K); offline when ``state`` is None."""
        if state is None:
            return self._apply_masks(self._encode(spec), spec), None
        x = self._features(spec)  # (B, K, F)
        norm_state, lstm_states = state
        x, norm_state = self.norm.step(x, norm_state)
        new_states = []
        for i, (layer, h) in enumerate(zip(self.layers, lstm_states, strict=True)):
            x, h = layer.step(self.dropout(x) if i else x, h)
            new_states.append(h)
        return self._apply_masks(x, spec), (norm_state, new_states)

    def _encode(self, spec: torch.Tensor) -> torch.Tensor:
        """Mixture STFT (B, F, K) -> the last LSTM layer's output (B, K, D), offline."""
        x = self.norm(self._features(spec))
        for i, layer in enumerate(self.layers):
            x = layer(self.dropout(x) if i else x)
        return x

    def _apply_masks(self, x: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """The last layer's output (B, K, D) -> the masked source spectra (B, C, F, K)."""
        b, f, k = spec.shape
        # (B, K, C * parts * F) -> (B, K, C, parts, F) -> (B, C, parts, F, K); the STFT's real dtype
        # (float32 under bf16 autocast) for the complex product
        m = self.head(x).view(b, k, self.num_sources, self.parts, f).permute(0, 2, 3, 4, 1)
        m = m.to(spec.real.dtype)
        mask = self.config.mask
        if mask == "complex":
            m = torch.complex(m[:, :, 0], m[:, :, 1])
        elif mask == "sigmoid":
            m = torch.sigmoid(m[:, :, 0])
        elif mask == "softplus":
            m = F.softplus(m[:, :, 0])
        else:
            m = torch.relu(m[:, :, 0])
        return m * spec.unsqueeze(1)  # (B, C, F, K)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        mixture = check_waveform_batch(mixture)
        spec = self.stft(mixture)  # complex (B, F, K)
        masked, _ = self._masks(spec, None)  # a causal model's modules: their steps from initial states
        return self.istft(masked, mixture.shape[-1])

    def training_outputs(
        self, mixture: torch.Tensor, targets: torch.Tensor, objective: ObjectiveConfig | None = None
    ) -> list[TrainingOutput]:
        """The output, with the deep-clustering term of the embedding head when the objective weighs it.

        Chimera++ (Wang, Le Roux and Hershey, ICASSP 2018, Sec. 3): one BLSTM stack, a mask head and an
        embedding head; the embeddings are trained to the ideal binary partition of the targets' STFT
        (:mod:`speechsep.losses.deep_clustering`) on the bins within 40 dB of the mixture's peak.
        """
        if self.embedding_head is None or objective is None or objective.deep_clustering_weight <= 0:
            return super().training_outputs(mixture, targets, objective)
        mixture = check_waveform_batch(mixture)
        spec = self.stft(mixture)  # complex (B, F, K)
        x = self._encode(spec)  # (B, K, D)
        estimate = self.istft(self._apply_masks(x, spec), mixture.shape[-1])
        stride = self.config.embedding_stride
        x, mix_magnitude = x[:, ::stride], spec.abs()[..., ::stride]
        b, f, k = mix_magnitude.shape
        # (B, K, F * E) -> (B, F, K, E) -> (B, F * K, E): bins frequency-major, as the labels
        embeddings = self.embedding_head(x).view(b, k, f, -1).transpose(1, 2).reshape(b, f * k, -1)
        embeddings = F.normalize(embeddings.float(), dim=-1)
        source_magnitudes = self.stft(targets.reshape(-1, targets.shape[-1])).abs()[..., ::stride].view(b, -1, f, k)
        term = deep_clustering_loss(embeddings, dominant_source_labels(source_magnitudes),
                                    active_bin_weights(mix_magnitude))
        return [TrainingOutput(estimate, deep_clustering=term)]

    def _check_streamable(self) -> None:
        if not self.is_causal:
            raise StreamingNotSupported("tf-mask with causal=False (bidirectional LSTMs) reads the future")

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples: int | None = None
                   ) -> TFMaskState:
        self._check_streamable()
        kw = self.state_placement(device, dtype)
        return TFMaskState(
            analysis=self.stft.init_state(batch_size),
            norm=self.norm.init_state(batch_size, device=kw["device"]),
            lstm=[layer.rnn.init_state(batch_size, **kw) for layer in self.layers],
            synthesis=self.istft.init_state((batch_size, self.num_sources)),
            aligner=self._aligner.init_state((batch_size, self.num_sources), **kw),
        )

    def step(self, chunk: torch.Tensor, state: TFMaskState) -> tuple[torch.Tensor, TFMaskState]:
        """(B, n) -> (B, C, n): the offline output delayed by ``latency`` samples."""
        self._check_streamable()
        chunk = check_waveform_batch(chunk, "chunk")
        spec, analysis = self.stft.step(chunk, state.analysis)  # the frames this chunk completes
        masked, (norm, lstm) = self._masks(spec, (state.norm, state.lstm))
        samples, synthesis = self.istft.step(masked, state.synthesis)
        out, aligner = self._aligner.step(samples, chunk.shape[-1], state.aligner)
        return out, TFMaskState(analysis, norm, lstm, synthesis, aligner)


register_preset("tf-mask-blstm", "tf-mask", TFMaskConfig(),
                "uPIT-BLSTM: 3 x 256 BLSTM on 32/8 ms STFT log power, sigmoid masks (non-causal)")
register_preset("tf-mask-lstm", "tf-mask", TFMaskConfig(causal=True, hidden_size=384),
                "causal uPIT-LSTM: 3 x 384 LSTM, cumulative per-bin normalisation, streams (31.9 ms latency)")
register_preset("tf-mask-tiny", "tf-mask", TFMaskConfig(causal=True, hidden_size=16, num_layers=2),
                "tiny causal tf-mask for tests")
