"""TF-GridNet-Causal (Wang et al., ICASSP 2023, made causal as in TFACM Sec. II-B): Table I's fourth row.

Axis legend:
    B  batch      C  sources      T  samples      F  frequency bins      K  frames
    D  embedding channels per T-F unit      I  unfold kernel      H  LSTM hidden units
    E  query/key channels per head per bin  L  attention heads

TF-GridNet maps the complex STFT (real and imaginary parts as two channels) to a D-channel embedding
per T-F unit with a 3x3 convolution, runs ``num_blocks`` grid blocks, and maps back to 2 C channels
(the sources' real and imaginary parts) with a 3x3 transposed convolution, then an inverse STFT.
Each block has
1. an *intra-frame* module: channel layer norm, unfold ``I`` neighbouring bins, a bidirectional LSTM
   across the bins of one frame, a transposed convolution back to the bins, a residual;
2. a *sub-band temporal* module: the same along frames at each bin, with the unfold window ending at
   the current frame, a one-way LSTM and a causal transposed convolution (TFACM Sec. II-B);
3. a *full-band attention* module: per head, query/key (E x F) and value (D/L x F) from 1x1
   convolutions, PReLU and a per-frame layer norm; attention over earlier frames only.

Causality (TFACM Sec. II-B): the input/output convolutions are causal in time (CConv2d/CDeconv2d),
the temporal LSTM is one-way, attention is masked to the past. The frequency LSTM stays
bidirectional: it reads only the current frame. Attention keeps a bounded window of past frames
(``attention_window``, docs/design.md#bounded-attention-windows) so that a stream's state is constant; the offline forward uses the same
window. The model's only look-ahead is the STFT window (``latency``). The public TF-GridNet divides
the mixture by its standard deviation over the whole utterance; that reads the future, so it is left
out here.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from speechsep.blocks import segmentation
from speechsep.blocks.attention import KVCache, WindowedCausalAttention
from speechsep.blocks.causal_conv import CausalConv2d, CausalConvTranspose1d, CausalConvTranspose2d
from speechsep.blocks.encoders import ComplexCodec
from speechsep.blocks.framing import AlignerState, FramerState, OutputAligner, OverlapAddState
from speechsep.blocks.norm import ChannelLayerNorm, FrameLayerNorm
from speechsep.blocks.recurrent import CausalLSTM, LSTMState
from speechsep.models.base import ModelConfig, SeparationModel
from speechsep.models.paper_tables import TFACM_TABLE1
from speechsep.registry import register_model, register_preset
from speechsep.utils import check_waveform_batch

__all__ = ["TFGridNetCausalConfig", "TFGridNetCausal", "TFGridNetCore", "TFGridNetState", "TemporalState"]


class _IntraFrame(nn.Module):
    """Full-band spectral module on ``(B, D, F, K)``: every frame on its own, so it needs no state."""

    def __init__(self, channels: int, kernel: int, hidden: int):
        super().__init__()
        self.kernel = kernel
        self.norm = ChannelLayerNorm(channels)
        self.lstm = nn.LSTM(channels * kernel, hidden, batch_first=True, bidirectional=True)
        self.deconv = nn.ConvTranspose1d(2 * hidden, channels, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, bins, frames = x.shape
        # (B, D, F, K) -> (B*K, D, F) -> (B*K, D, F-I+1, I) -> (B*K, F-I+1, D*I)
        z = self.norm(x).permute(0, 3, 1, 2).reshape(batch * frames, channels, bins)
        z = segmentation.sliding(z, self.kernel).permute(0, 2, 1, 3).flatten(2)
        z = self.deconv(self.lstm(z)[0].transpose(1, 2))  # (B*K, D, F)
        return x + z.view(batch, frames, channels, bins).permute(0, 2, 3, 1)


class TemporalState(NamedTuple):
    """State of one sub-band temporal module.

    frames: ``(B, D, F, I-1)`` last normalised input frames (the unfold window's past).
    lstm: the one-way LSTM's ``(h, c)``, each ``(1, B*F, H)``.
    deconv: ``(B*F, I-1, H)`` cache of the causal transposed convolution (channels last).
    """

    frames: torch.Tensor
    lstm: LSTMState
    deconv: torch.Tensor


class _SubbandTemporal(nn.Module):
    """Sub-band temporal module on ``(B, D, F, K)``: one-way LSTM over frames at every bin."""

    def __init__(self, channels: int, kernel: int, hidden: int):
        super().__init__()
        self.kernel = kernel
        self.norm = ChannelLayerNorm(channels)
        self.lstm = CausalLSTM(channels * kernel, hidden)
        # channels-last: it runs on the LSTM's output as it is, one matmul per tap (blocks/tap_matmul.py)
        self.deconv = CausalConvTranspose1d(hidden, channels, kernel, channels_last=True)

    def init_state(self, batch: int, bins: int, *, device=None, dtype=torch.float32) -> TemporalState:
        channels = self.norm.num_channels
        frames = torch.zeros(batch, channels, bins, self.kernel - 1, device=device, dtype=dtype)
        return TemporalState(frames, self.lstm.init_state(batch * bins, device=device, dtype=dtype),
                             self.deconv.init_state(batch * bins, device=device, dtype=dtype))

    def step(self, x: torch.Tensor, state: TemporalState) -> tuple[torch.Tensor, TemporalState]:
        batch, channels, bins, frames = x.shape
        # the unfold window of frame k covers frames k-I+1 .. k: the past I-1 come from the state
        full = torch.cat([state.frames, self.norm(x)], dim=-1)
        # (B, D, F, K, I) -> (B*F, K, D*I)
        windows = segmentation.sliding(full, self.kernel).permute(0, 2, 3, 1, 4).reshape(batch * bins, frames, -1)
        y, lstm_state = self.lstm.step(windows, state.lstm)
        y, deconv_state = self.deconv.step(y, state.deconv)  # (B*F, K, D)
        y = y.view(batch, bins, frames, channels).permute(0, 3, 1, 2)
        new = TemporalState(full[..., full.shape[-1] - (self.kernel - 1):], lstm_state, deconv_state)
        return x + y, new


class _FullBandAttention(nn.Module):
    """Causal full-band self-attention over frames on ``(B, D, F, K)``, heads folded into the batch."""

    def __init__(self, channels: int, bins: int, heads: int, qk_channels: int, window: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"embedding {channels} is not divisible by {heads} heads")
        self.heads, self.bins = heads, bins

        def branch(out: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(channels, out, 1), nn.PReLU(), FrameLayerNorm(out, bins))

        self.query = nn.ModuleList(branch(qk_channels) for _ in range(heads))
        self.key = nn.ModuleList(branch(qk_channels) for _ in range(heads))
        self.value = nn.ModuleList(branch(channels // heads) for _ in range(heads))
        self.proj = branch(channels)
        self.attn = WindowedCausalAttention(window)

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> KVCache:
        qk = self.query[0][0].out_channels * self.bins
        v = self.value[0][0].out_channels * self.bins
        return self.attn.init_state(batch * self.heads, qk, v, device=device, dtype=dtype)

    @staticmethod
    def _flat(parts: list[torch.Tensor]) -> torch.Tensor:
        # L x (B, X, F, K) -> (B*L, K, X*F)
        z = torch.stack(parts, dim=1)
        batch, heads, ch, bins, frames = z.shape
        return z.permute(0, 1, 4, 2, 3).reshape(batch * heads, frames, ch * bins)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self._flat([f(x) for f in self.query]), self._flat([f(x) for f in self.key]),
                self._flat([f(x) for f in self.value]))

    def _out(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        # (B*L, K, D/L*F) -> (B, L, K, D/L, F) -> (B, D, F, K)
        batch, channels, bins, frames = x.shape
        out = out.view(batch, self.heads, frames, channels // self.heads, bins).permute(0, 1, 3, 4, 2)
        return x + self.proj(out.reshape(batch, channels, bins, frames))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole sequence from an empty cache (block-parallel while traced)."""
        return self._out(x, self.attn(*self._qkv(x)))

    def step(self, x: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        out, cache = self.attn.step(*self._qkv(x), cache)
        return self._out(x, out), cache


class TFGridNetState(NamedTuple):
    """Streaming state of :class:`TFGridNetCore`.

    conv_in: ``(B, 2, F, 2)`` cache of the causal 3x3 input convolution.
    temporal: per block, a :class:`TemporalState`.
    attention: per block, the key/value cache of the attention window.
    conv_out: ``(B, D, F, 2)`` cache of the causal 3x3 output transposed convolution.
    """

    conv_in: torch.Tensor
    temporal: tuple[TemporalState, ...]
    attention: tuple[KVCache, ...]
    conv_out: torch.Tensor


class TFGridNetCore(nn.Module):
    """``(B, 2, F, K)`` mixture spectrum (real, imaginary) -> ``(B, C, 2, F, K)`` source spectra."""

    def __init__(self, *, bins: int, num_sources: int, channels: int, kernel: int, hidden: int, num_blocks: int,
                 heads: int, qk_channels: int, attention_window: int):
        super().__init__()
        self.bins, self.num_sources = bins, num_sources
        self.conv_in = CausalConv2d(2, channels, time_kernel=3, freq_kernel=3)
        self.norm_in = ChannelLayerNorm(channels)
        self.intra = nn.ModuleList(_IntraFrame(channels, kernel, hidden) for _ in range(num_blocks))
        self.temporal = nn.ModuleList(_SubbandTemporal(channels, kernel, hidden) for _ in range(num_blocks))
        self.attention = nn.ModuleList(
            _FullBandAttention(channels, bins, heads, qk_channels, attention_window) for _ in range(num_blocks)
        )
        self.conv_out = CausalConvTranspose2d(channels, 2 * num_sources, time_kernel=3, freq_kernel=3)

    def init_state(self, batch: int, *, device=None, dtype=torch.float32) -> TFGridNetState:
        return TFGridNetState(
            self.conv_in.init_state(batch, self.bins, device=device, dtype=dtype),
            tuple(t.init_state(batch, self.bins, device=device, dtype=dtype) for t in self.temporal),
            tuple(a.init_state(batch, device=device, dtype=dtype) for a in self.attention),
            self.conv_out.init_state(batch, self.bins, device=device, dtype=dtype),
        )

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """The whole utterance: :meth:`step` from the initial state, except while traced (the offline ONNX
        export), where each attention runs in one block-parallel pass over a run-time number of frames."""
        state = self.init_state(spec.shape[0], device=spec.device, dtype=spec.dtype)
        return self._run(spec, state, whole=torch.jit.is_tracing())[0]

    def step(self, spec: torch.Tensor, state: TFGridNetState) -> tuple[torch.Tensor, TFGridNetState]:
        return self._run(spec, state, whole=False)

    def _run(self, spec: torch.Tensor, state: TFGridNetState, *, whole: bool) -> tuple[torch.Tensor, TFGridNetState]:
        """``whole``: the attentions run block-parallel (:meth:`_FullBandAttention.forward`) and their
        entries of the returned state are None."""
        if spec.dim() != 4 or spec.shape[1:3] != (2, self.bins):
            raise ValueError(f"TFGridNetCore expects (B, 2, {self.bins}, K); got {tuple(spec.shape)}")
        batch, frames = spec.shape[0], spec.shape[-1]
        if frames == 0:
            return spec.new_zeros(batch, self.num_sources, 2, self.bins, 0), state
        x, conv_in = self.conv_in.step(spec, state.conv_in)
        x = self.norm_in(x)
        temporal, attention = [], []
        for intra, tmp, att, t_state, a_state in zip(self.intra, self.temporal, self.attention, state.temporal,
                                                     state.attention, strict=True):
            x, t_state = tmp.step(intra(x), t_state)
            x, a_state = (att(x), None) if whole else att.step(x, a_state)
            temporal.append(t_state)
            attention.append(a_state)
        y, conv_out = self.conv_out.step(x, state.conv_out)
        y = y.view(batch, self.num_sources, 2, self.bins, frames)
        return y, TFGridNetState(conv_in, tuple(temporal), tuple(attention), conv_out)


@dataclasses.dataclass
class STFTConfig:
    """Causal STFT front end, in samples. ``n_fft`` defaults to the window."""

    window: int = 64
    hop: int = 16
    n_fft: int | None = None
    window_fn: str = "hann"


@dataclasses.dataclass
class TFGridNetCausalConfig(ModelConfig):
    """TF-GridNet-Causal. Defaults: the size that lands on TFACM Table I (11.4 M, 179.2 G MAC/s).

    The ESPnet WSJ0-2mix recipe (D 48, H 192, I 4, 6 blocks, 16/8 ms STFT) is 8.2 M / 64.5 G offline;
    with a one-way temporal LSTM it would shrink, so Table I's row needs a wider model and more
    frames: D 64, H 256 and an 8 ms window with a 2 ms hop (latency 8 ms, as TFACM's own STFT).
    """

    stft: STFTConfig = dataclasses.field(default_factory=STFTConfig)
    #: D, embedding channels per T-F unit
    channels: int = 64
    #: I, bins (intra-frame) or frames (temporal) unfolded into one LSTM input
    kernel: int = 4
    #: H, LSTM hidden units per direction
    hidden: int = 256
    num_blocks: int = 6
    #: L, attention heads
    heads: int = 4
    #: E, query/key channels per head and bin (ESPnet: about 512 / F)
    qk_channels: int = 16
    #: frames each frame attends to (itself included); bounds the stream state (docs/design.md#bounded-attention-windows)
    attention_window: int = 500


class TFGridNetCausalState(NamedTuple):
    """Streaming state: the STFT framer (``analysis``), the separator (``core``), the iSTFT overlap-add
    (``synthesis``), the output FIFO (``aligner``)."""

    analysis: FramerState
    core: TFGridNetState
    synthesis: OverlapAddState
    aligner: AlignerState


@register_model
class TFGridNetCausal(SeparationModel):
    family = "tfgridnet-causal"
    config_class = TFGridNetCausalConfig
    config: TFGridNetCausalConfig

    def __init__(self, config: TFGridNetCausalConfig):
        super().__init__(config)
        s = config.stft
        self.codec = ComplexCodec(s.window, s.hop, s.n_fft, causal=True, window_fn=s.window_fn)
        self.aligner = OutputAligner(self.codec.latency)
        self.core = TFGridNetCore(
            bins=self.codec.num_bins, num_sources=config.num_sources, channels=config.channels,
            kernel=config.kernel, hidden=config.hidden, num_blocks=config.num_blocks, heads=config.heads,
            qk_channels=config.qk_channels, attention_window=config.attention_window,
        )

    @property
    def is_causal(self) -> bool:
        return True

    @property
    def latency(self) -> int:
        return self.aligner.latency

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        """(B, T) or (B, 1, T) -> (B, C, T)."""
        mixture = check_waveform_batch(mixture)
        spectra = self.core(self.codec.encode(mixture))
        return self.codec.decode(spectra, mixture.shape[-1])

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples: int | None = None
                   ) -> TFGridNetCausalState:
        kw = self.state_placement(device, dtype)
        return TFGridNetCausalState(
            self.codec.encoder.init_state(batch_size),
            self.core.init_state(batch_size, **kw),
            self.codec.decoder.init_state((batch_size, self.num_sources)),
            self.aligner.init_state((batch_size, self.num_sources), **kw),
        )

    def step(self, chunk: torch.Tensor, state: TFGridNetCausalState) -> tuple[torch.Tensor, TFGridNetCausalState]:
        """(B, n) -> (B, C, n): the offline output delayed by ``latency`` samples."""
        chunk = check_waveform_batch(chunk, "chunk")
        spec, analysis = self.codec.encoder.step(chunk, state.analysis)
        spectra, core = self.core.step(spec, state.core)
        samples, synthesis = self.codec.decoder.step(spectra, state.synthesis)
        out, aligner = self.aligner.step(samples, chunk.shape[-1], state.aligner)
        return out, TFGridNetCausalState(analysis, core, synthesis, aligner)


register_preset(
    "tfgridnet-causal", TFGridNetCausal.family, TFGridNetCausalConfig(),
    "TF-GridNet-Causal, TFACM Table I: STFT 64 / hop 16 samples (8 ms / 2 ms), D 64, I 4, H 256, 6 blocks, "
    "4 heads, E 16, attention over the last 500 frames (1 s)",
    paper=TFACM_TABLE1["tfgridnet-causal"], tags=("tfacm-table1", "paper-scale"),
)
register_preset(
    "tfgridnet-causal-tiny", TFGridNetCausal.family,
    TFGridNetCausalConfig(stft=STFTConfig(16, 4), channels=4, kernel=3, hidden=6, num_blocks=2, heads=2,
                          qk_channels=2, attention_window=9),
    "TF-GridNet-Causal at test size (CPU tests)", tags=("tiny",),
)
