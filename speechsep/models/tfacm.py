"""TFACM: time-frequency attention cache memory model for real-time separation (Chen, Li, Yang and Hu).

Axis legend:
    B  batch          C  sources        T  samples        N  embedding channels
    F  frequency bins K  frames         H  LSTM hidden    W2 T-Local segment frames

Pipeline (Sec. II, Fig. 1-2): causal STFT (8 ms Hann window, 1 ms hop) -> (B, 2, F, K) real/imag ->
CConv2d + layer norm -> B blocks of [F-Local, T-Local with cache memory, CAR] -> CDeconv2d to 2C
channels -> complex mapping (or mask) -> iSTFT. Everything is causal (docs/design.md#tfacm): non-overlapping
T-Local segments, the cache memory shifted one segment (eq. 2), attention over a bounded window of
past frames, causal input/output convolutions. The only look-ahead is the STFT window, reported as
``latency``.

Streaming is one ``step`` over a chunk with an explicit state of fixed-size tensors, and it is also
what the streaming ONNX export traces (no separate traceable step). The separator's parts are the
same modules offline and streaming; only T-Local differs in form: streaming finds segment starts
with tensor masks (a trace runs it frame by frame), while the offline ``forward`` keeps, for training speed, whole
segments batched (:meth:`TFACMSeparator.forward_block`, over blocks of ``offline_block_frames``
frames from the initial state: bounded memory on long inputs). The streaming contract tests check
that the two agree. A trace of the offline forward (the offline ONNX export) takes
:meth:`TFACMSeparator.forward`: the same modules in one pass over all frames, the T-Local segments in
parallel, sizes that follow the input length.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from speechsep.blocks import segmentation
from speechsep.blocks.causal_conv import CausalConv2d, CausalConvTranspose2d
from speechsep.blocks.encoders import ComplexCodec
from speechsep.blocks.framing import ms_to_samples, stream_latency
from speechsep.blocks.norm import ChannelLayerNorm
from speechsep.blocks.recurrent import LSTMState, select_state
from speechsep.models.base import ModelConfig, SeparationModel, StreamingNotSupported
from speechsep.models.paper_tables import TFACM_TABLE1, TFACM_TABLE2
from speechsep.models.tfacm_modules import (
    CAR,
    CacheMemory,
    CARState,
    FLocal,
    MemoryState,
    SegmentStates,
    TLocal,
    segment_pieces,
)
from speechsep.registry import register_model, register_preset
from speechsep.utils import check_waveform_batch

__all__ = ["TFACMConfig", "TFACM", "TFACMSeparator", "SeparatorState", "TFACMState"]


@dataclasses.dataclass
class TFACMConfig(ModelConfig):
    """TFACM hyper-parameters; sizes in ms so that 16 kHz works (defaults: the released large model)."""

    window_ms: float = 8.0  #: STFT Hann window (64 samples at 8 kHz -> 33 bins)
    hop_ms: float = 1.0  #: STFT hop (1,000 frames a second)
    embed_dim: int = 64  #: N
    num_blocks: int = 3  #: B
    hidden_size: int = 64  #: H, every LSTM
    subband_width: int = 8  #: W1 (F-Local unfold width)
    subband_stride: int = 1  #: S1
    segment_ms: float = 70.0  #: W2 = segment_ms / hop_ms frames (T-Local, non-overlapping)
    tlocal_kernel: int = 8  #: frames of the T-Local causal transposed conv (the released emb_ks)
    num_heads: int = 2
    qk_dim: int = 128  #: approximate query/key size per head over all bins: E = ceil(qk_dim / F) channels
    attention_window_ms: float = 1000.0  #: CAR attends to this much past (bounded: constant stream state)
    gate_kernel: int = 1  #: depth-wise conv kernel (frames) of the gated convolution (1 as released)
    input_kernel: int = 3  #: input CConv2d kernel (frames and bins)
    output_kernel: int = 3  #: output CDeconv2d kernel (frames and bins)
    output: str = "mapping"  #: "mapping" (released: the 2C channels are the sources' spectra) or "mask"
    cache_memory: bool = True  #: False: Table II ablation, identity and unaligned (NOT causal)
    car: bool = True  #: False: Table II ablation, the gated convolution after attention removed
    eps: float = 1e-5


class _RealDFT(nn.Module):
    """The codec's rfft and irfft + overlap-add as real convolutions, for :meth:`TFACM.step` (which ONNX
    export traces: the exporter has no complex tensors, no FFT and no ``as_strided``). Buffers are derived, not saved: the
    state dict is unchanged.

    analyse: ``(B, L)`` samples -> ``(B, 2, F, K)`` real/imag channels of the K = (L - W) / H + 1 frames
    they hold, as ``ComplexCodec`` lays them out;
    synthesise: ``(B, C, 2, F, K)`` -> ``(B, C, (K - 1) H + W)``: every frame's irfft times the synthesis
    window, overlap-added. Eagerly, one matrix product with the inverse DFT basis and R = ceil(W / H)
    shifted sums of whole hops (a transposed convolution is several times slower in PyTorch on CPU for
    these shapes); in a trace, that one transposed convolution, which onnxruntime runs faster than the
    R pads and sums (BENCHMARKS.md, tfacm: "One streaming step for every model").
    """

    def __init__(self, codec: ComplexCodec):
        super().__init__()
        n_fft, self.window, self.hop = codec.stft.n_fft, codec.window, codec.hop
        window = self.window
        t = torch.arange(n_fft, dtype=torch.float64)
        f = torch.arange(codec.num_bins, dtype=torch.float64)
        angle = 2 * math.pi * f[:, None] * t[None, :window] / n_fft  # (F, W): the n_fft - W padding is zeros
        taper = codec.stft.taper.double()
        # analysis: X_f = sum_n w[n] x[n] e^{-2 pi i f n / N}, a strided convolution over the samples
        analysis = torch.cat([taper * torch.cos(angle), -taper * torch.sin(angle)])
        # kept in float64 and cast where used: a float64 model (the streaming contract tests) then matches
        # the FFT to float64 rounding
        self.register_buffer("analysis", analysis[:, None, :], persistent=False)  # (2F, 1, W)
        # synthesis (irfft): x[n] = (1/N) sum_f a_f (Re X_f cos - Im X_f sin), a_f = 2 but 1 at DC and at
        # N/2; like irfft, the imaginary parts of those two bins are ignored (their sine is zero)
        weight = torch.full((codec.num_bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * weight.repeat(2, 1) / n_fft
        # zero columns pad the frame to R whole hops
        self.hops_per_frame = -(-window // self.hop)  # R
        synthesis = F.pad(basis * codec.istft.synthesis.double(), (0, self.hops_per_frame * self.hop - window))
        self.register_buffer("synthesis", synthesis, persistent=False)  # (2F, R H)

    def analyse(self, samples: torch.Tensor) -> torch.Tensor:
        spec = F.conv1d(samples[:, None], self.analysis.to(samples.dtype), stride=self.hop)  # (B, 2F, K)
        return spec.reshape(samples.shape[0], 2, -1, spec.shape[-1])

    def synthesise(self, ri: torch.Tensor) -> torch.Tensor:
        b, c, _, f, k = ri.shape
        if torch.jit.is_tracing():  # onnxruntime runs the one ConvTranspose faster than R pads and sums
            weight = self.synthesis.to(ri.dtype).reshape(2 * f, 1, -1)
            out = F.conv_transpose1d(ri.reshape(b * c, 2 * f, k), weight, stride=self.hop)
            return out.reshape(b, c, -1)[..., : (k - 1) * self.hop + self.window]
        frames = torch.matmul(ri.reshape(b, c, 2 * f, k).transpose(-1, -2), self.synthesis.to(ri.dtype))
        hops, r = frames.reshape(b, c, k, self.hops_per_frame, self.hop), self.hops_per_frame
        # hop i of frame j lands on output hop j + i: R sums of (K H)-sample runs, each shifted by i hops
        out = sum(F.pad(hops[:, :, :, i].reshape(b, c, k * self.hop), (i * self.hop, (r - 1 - i) * self.hop))
                  for i in range(r))
        return out[..., : (k - 1) * self.hop + self.window]


def _frames(ms: float, hop_ms: float, what: str) -> int:
    n = int(round(ms / hop_ms))
    if n < 1:
        raise ValueError(f"{what} of {ms} ms is less than one {hop_ms} ms hop")
    return n


@dataclasses.dataclass
class SeparatorState:
    """Streaming state of the separator. Sizes never depend on how long the stream has run.

    frames: frames processed so far (fixes where T-Local segments start), a 0-d int64 tensor;
    input_conv / output_conv: the last frames the causal 2-D convs need, (B, 2, F, k-1) / (B, N, F, k-1);
    carries: per block, LSTM-T's (h, c) to continue from (at a segment start: the cache memory's output);
    tlocal_convs: per block, the T-Local transposed-conv cache (B*F, kernel-1, N);
    cars: per block, the CAR attention key/value cache and gated-conv caches;
    memory: per block boundary (B-1), the cache memory LSTMs' states over the segment sequence.
    """

    frames: torch.Tensor
    input_conv: torch.Tensor
    carries: list[LSTMState]
    tlocal_convs: list[torch.Tensor]
    cars: list[CARState]
    memory: list[MemoryState]
    output_conv: torch.Tensor


class _Block(nn.Module):
    def __init__(self, cfg: TFACMConfig, num_bins: int, segment: int, window: int, qk_channels: int):
        super().__init__()
        n, h = cfg.embed_dim, cfg.hidden_size
        self.flocal = FLocal(n, h, num_bins, cfg.subband_width, cfg.subband_stride, cfg.eps)
        self.tlocal = TLocal(n, h, segment, cfg.tlocal_kernel, cfg.eps)
        self.car = CAR(n, num_bins, heads=cfg.num_heads, qk_channels=qk_channels, window=window,
                       gate_kernel=cfg.gate_kernel, gated=cfg.car, eps=cfg.eps)


class TFACMSeparator(nn.Module):
    """``(B, 2, F, K)`` real/imag STFT -> ``(B, C, 2, F, K)``, one chunk of frames at a time."""

    def __init__(self, cfg: TFACMConfig, num_bins: int):
        super().__init__()
        self.cfg, self.num_bins = cfg, num_bins
        self.segment = _frames(cfg.segment_ms, cfg.hop_ms, "segment_ms")
        window = _frames(cfg.attention_window_ms, cfg.hop_ms, "attention_window_ms")
        qk_channels = math.ceil(cfg.qk_dim / num_bins)
        n = cfg.embed_dim
        self.input_conv = CausalConv2d(2, n, time_kernel=cfg.input_kernel, freq_kernel=cfg.input_kernel)
        self.input_norm = ChannelLayerNorm(n, cfg.eps)
        self.blocks = nn.ModuleList(_Block(cfg, num_bins, self.segment, window, qk_channels)
                                    for _ in range(cfg.num_blocks))
        # eq. 1: one cache memory shared by all blocks; nothing consumes it after the last block
        self.memory = CacheMemory(cfg.hidden_size, cfg.eps) if cfg.cache_memory and cfg.num_blocks > 1 else None
        self.output_conv = CausalConvTranspose2d(n, 2 * cfg.num_sources, time_kernel=cfg.output_kernel,
                                                 freq_kernel=cfg.output_kernel)

    def init_state(self, batch_size: int, *, device=None, dtype=torch.float32, sliding: bool = False
                   ) -> SeparatorState:
        """``sliding``: attention caches of a fixed window, for a traced step (:meth:`TFACM.init_state`)."""
        bf = batch_size * self.num_bins
        blocks = list(self.blocks)
        kw = {"device": device, "dtype": dtype}
        return SeparatorState(
            frames=torch.zeros((), dtype=torch.long, device=device),
            input_conv=self.input_conv.init_state(batch_size, self.num_bins, **kw),
            carries=[b.tlocal.lstm.init_state(bf, **kw) for b in blocks],
            tlocal_convs=[b.tlocal.back.init_state(bf, **kw) for b in blocks],
            cars=[b.car.init_state(batch_size, sliding=sliding, **kw) for b in blocks],
            memory=[self.memory.init_state(bf, **kw) for _ in blocks[1:]] if self.memory is not None else [],
            output_conv=self.output_conv.init_state(batch_size, self.num_bins, **kw),
        )

    def step(self, spec: torch.Tensor, state: SeparatorState) -> tuple[torch.Tensor, SeparatorState]:
        """The streaming step: ``(B, 2, F, K)`` -> ``(B, C, 2, F, K)`` from ``state``, for any K.

        Tensor positions and fixed-size state only, so that a trace of it holds at every stream
        position (ONNX export traces this step). The chunk goes in pieces of at most W2 frames, so
        that at most one T-Local segment finishes in each (eq. 1-2: the cache memory then runs once
        per piece, its state kept unless a segment finished).
        """
        if not self.cfg.cache_memory:
            raise StreamingNotSupported("TFACM with cache_memory=False (the unaligned ablation) reads the future")
        b, _, f, k = spec.shape
        if k == 0:
            return spec.new_zeros(b, self.cfg.num_sources, 2, f, 0), state
        outs = []
        for s in range(0, k, self.segment):
            out, state = self._step_segment(spec[..., s : s + self.segment], state)
            outs.append(out)
        return (torch.cat(outs, dim=-1) if len(outs) != 1 else outs[0]), state

    def _step_segment(self, spec: torch.Tensor, state: SeparatorState) -> tuple[torch.Tensor, SeparatorState]:
        """:meth:`step` on 1 to W2 frames: T-Local restarts where a mask marks a segment start."""
        b, _, f, k = spec.shape
        index = state.frames + torch.arange(k, device=spec.device)
        starts, ends = index % self.segment == 0, (index + 1) % self.segment == 0
        finished, ends_chunk = ends.any(), ends[-1]
        x, input_cache = self.input_conv.step(spec, state.input_conv)
        x = self.input_norm(x)
        zeros = spec.new_zeros(1, b * f, self.cfg.hidden_size)
        init = LSTMState(zeros, zeros)  # eq. 2: block 0's segments start from zeros
        carries, convs, cars, memory = [], [], [], []
        for i, block in enumerate(self.blocks):
            x = block.flocal(x)
            x, last, done, conv_cache = block.tlocal.step(x, starts, ends, state.carries[i], init,
                                                          state.tlocal_convs[i])
            x, car_state = block.car.step(x, state.cars[i])
            convs.append(conv_cache)
            cars.append(car_state)
            carries.append(select_state(ends_chunk, init, last))
            if i + 1 == len(self.blocks):
                break
            # eq. 1-2: the segment that finished in block i starts the next segment of block i+1. A trace runs
            # the memory on every piece and keeps its result where one finished; eagerly, a piece in which
            # none did (most of them) skips it: the result would be thrown away.
            old = state.memory[i]
            if torch.jit.is_tracing() or bool(finished):
                inits, mem = self.memory.step(SegmentStates(done.h, done.c), old)
                memory.append(MemoryState(select_state(finished, mem.h_net, old.h_net),
                                          select_state(finished, mem.c_net, old.c_net)))
                init = inits.lstm_state(0)
            else:
                memory.append(old)
        y, output_cache = self.output_conv.step(x, state.output_conv)
        new_state = SeparatorState(state.frames + k, input_cache, carries, convs, cars, memory, output_cache)
        return y.reshape(b, self.cfg.num_sources, 2, f, k), new_state

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """The whole utterance from :meth:`init_state` in one pass, ``(B, 2, F, K)`` -> ``(B, C, 2, F, K)``:
        what :meth:`step` computes on all K frames, with all T-Local segments of a block in one LSTM call and
        every size following K at run time, so a trace of it holds for any length (offline ONNX export).
        Its memory grows with K; :meth:`TFACM.forward` runs :meth:`forward_block` over blocks of frames instead.
        """
        if not self.cfg.cache_memory:
            # (one line, short: the ONNX export quotes it as the reason)
            raise NotImplementedError(
                "the unaligned cache-memory ablation (cache_memory=False) starts the last, partial T-Local segment "
                "from a state after a run-time number of frames, which no one-pass graph holds")
        b, _, f, k = spec.shape
        hidden = self.cfg.hidden_size
        x = self.input_norm(self.input_conv(spec))
        # eq. 2: block 0's segments (and the first segment of every block) start from zeros
        zeros = spec.new_zeros(segmentation.segment_count(k, self.segment), b * f, hidden)
        inits = SegmentStates(zeros, zeros)
        for i, block in enumerate(self.blocks):
            x, finals = block.tlocal(block.flocal(x), inits)
            x = block.car(x)
            if i + 1 == len(self.blocks):
                break
            # eq. 1-2: segment l + 1 of block i + 1 starts from the re-encoded final state of segment l of
            # block i (the memory runs over all segments; the output of the last one is never used)
            mem, _ = self.memory.step(finals, self.memory.init_state(b * f, device=spec.device, dtype=spec.dtype))
            inits = SegmentStates(F.pad(mem.h[:-1], (0, 0, 0, 0, 1, 0)), F.pad(mem.c[:-1], (0, 0, 0, 0, 1, 0)))
        return self.output_conv(x).reshape(b, self.cfg.num_sources, 2, f, k)

    def forward_block(self, spec: torch.Tensor, state: SeparatorState) -> tuple[torch.Tensor, SeparatorState]:
        """:meth:`step`'s output and state, with T-Local's whole segments batched
        (:meth:`TLocal.forward_block`): the offline forward's path, kept for training speed, and the
        only one the unaligned ablation (``cache_memory=False``) has. Not traceable (python-int
        positions); the streaming contract tests check it against :meth:`step`.
        """
        b, _, f, k = spec.shape
        c = self.cfg.num_sources
        if k == 0:
            return spec.new_zeros(b, c, 2, f, 0), state
        pos, seg, hidden = int(state.frames), self.segment, self.cfg.hidden_size
        pieces = segment_pieces(pos, k, seg)
        ends_on_boundary = (pos + k) % seg == 0
        completed = len(pieces) - 1 + int(ends_on_boundary)
        aligned = self.cfg.cache_memory
        if not aligned and pos % seg:
            raise StreamingNotSupported("TFACM with cache_memory=False (unaligned) needs segment-aligned chunks")

        x, input_cache = self.input_conv.step(spec, state.input_conv)
        x = self.input_norm(x)
        # eq. 2: block 0's segments (and the first segment of every block) start from zeros
        zeros = spec.new_zeros(completed, b * f, hidden)
        inits, head_init = SegmentStates(zeros, zeros), None
        carries, convs, cars, memory = [], [], [], []
        for i, block in enumerate(self.blocks):
            x = block.flocal(x)
            carry = state.carries[i] if head_init is None else head_init
            x, finals, conv_cache = block.tlocal.forward_block(x, pos, carry, inits, state.tlocal_convs[i])
            x, car_state = block.car.step(x, state.cars[i])
            convs.append(conv_cache)
            cars.append(car_state)
            # where this block's LSTM-T continues from at the next chunk
            if ends_on_boundary and (aligned or i == 0):
                carries.append(inits.lstm_state(completed - 1))
            else:
                carries.append(finals.lstm_state(len(pieces) - 1))
            if i + 1 == len(self.blocks):
                break
            if aligned:
                # eq. 1-2: segment l of block i+1 starts from the re-encoded final state of segment l-1
                # of block i; only segments completed so far are encoded, one memory step each.
                inits, mem = self.memory.step(finals.take(0, completed), state.memory[i])
                memory.append(mem)
            else:
                # Table II ablation: identity, unaligned: segment l of block i+1 starts from the final
                # state of segment l of block i, which has read up to W2 - 1 frames ahead.
                head_init, inits = finals.lstm_state(0), finals.take(1)
        y, output_cache = self.output_conv.step(x, state.output_conv)
        new_state = SeparatorState(state.frames + k, input_cache, carries, convs, cars, memory, output_cache)
        return y.reshape(b, c, 2, f, k), new_state


@dataclasses.dataclass
class TFACMState:
    """Streaming state of the whole model: tensors only, sizes fixed (:meth:`TFACM.step`).

    samples: 0-d int64, input samples so far (their count modulo the hop is the STFT phase);
    analysis: the last W - 1 input samples, (B, W - 1) (zeros before the stream: the causal framing's
        W - H padding and more);
    pending: the iSTFT overlap-add's partial sums, (B, C, W - H);
    fifo: final output samples not yet returned, right-aligned, (B, C, H - 1) (the stream delay W - 1
        is W - H of framing plus these H - 1);
    separator: the separator's state.
    """

    samples: torch.Tensor
    analysis: torch.Tensor
    pending: torch.Tensor
    fifo: torch.Tensor
    separator: SeparatorState


@register_model
class TFACM(SeparationModel):
    family = "tfacm"
    config_class = TFACMConfig
    #: frames per offline separator call: bounds memory on long inputs; any value gives the same output
    #: (the unaligned ablation rounds it up to whole segments)
    offline_block_frames: int = 2100

    def __init__(self, config: TFACMConfig):
        super().__init__(config)
        if config.output not in ("mapping", "mask"):
            raise ValueError(f"TFACM output must be 'mapping' or 'mask'; got {config.output!r}")
        sr = config.sample_rate
        self.codec = ComplexCodec(ms_to_samples(config.window_ms, sr), ms_to_samples(config.hop_ms, sr), causal=True)
        self.separator = TFACMSeparator(config, self.codec.num_bins)
        self._dft = _RealDFT(self.codec)

    @property
    def is_causal(self) -> bool:
        return bool(self.config.cache_memory)

    @property
    def latency(self) -> int:
        return int(stream_latency(self.codec.window, self.codec.hop))

    def _estimate(self, out: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """Separator output (B, C, 2, F, K) -> source spectra as real/imag (B, C, 2, F, K)."""
        if self.config.output == "mapping":
            return out
        # complex mask times the mixture spectrum, (a + ib)(c + id), in real arithmetic
        mr, mi = out[:, :, 0], out[:, :, 1]
        yr, yi = mix[:, None, 0], mix[:, None, 1]
        return torch.stack([mr * yr - mi * yi, mr * yi + mi * yr], dim=2)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        mixture = check_waveform_batch(mixture)
        feats = self.codec.encode(mixture)  # (B, 2, F, K)
        if torch.jit.is_tracing():
            # the block loop below would be frozen at the traced length: one pass whose sizes follow K
            out = self.separator(feats)
        else:
            state = self.separator.init_state(mixture.shape[0], device=mixture.device, dtype=mixture.dtype)
            block = self.offline_block_frames
            if not self.config.cache_memory:  # the unaligned ablation needs chunks that start segments
                block = -(-block // self.separator.segment) * self.separator.segment
            outs = []
            for s in range(0, feats.shape[-1], block):
                out, state = self.separator.forward_block(feats[..., s : s + block], state)
                outs.append(out)
            out = torch.cat(outs, dim=-1) if len(outs) != 1 else outs[0]
        return self.codec.decode(self._estimate(out, feats), mixture.shape[-1])

    def _check_streamable(self) -> None:
        if not self.is_causal:
            raise StreamingNotSupported("TFACM with cache_memory=False (the unaligned ablation) reads the future")

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples: int | None = None
                   ) -> TFACMState:
        """``chunk_samples``: the fixed chunk a traced :meth:`step` (ONNX export) will take, checked here:
        a multiple of the hop, at most one T-Local segment (the trace unrolls T-Local frame by frame).
        Given, the attention caches slide (a fixed window copied on each step, which a graph runs
        faster than the eager stream's epoch buffers; both layouts give the same output)."""
        self._check_streamable()
        if chunk_samples is not None:
            hop, most = self.codec.hop, self.codec.hop * self.separator.segment
            if chunk_samples % hop or not hop <= chunk_samples <= most:
                raise ValueError(f"an exported TFACM step takes a multiple of the {hop}-sample hop, at most one "
                                 f"T-Local segment ({most} samples); got {chunk_samples}")
        kw = self.state_placement(device, dtype)
        w, hop = self.codec.window, self.codec.hop
        return TFACMState(
            samples=torch.zeros((), dtype=torch.long, device=kw["device"]),
            analysis=torch.zeros(batch_size, w - 1, **kw),
            pending=torch.zeros(batch_size, self.num_sources, w - hop, **kw),
            fifo=torch.zeros(batch_size, self.num_sources, hop - 1, **kw),
            separator=self.separator.init_state(batch_size, sliding=chunk_samples is not None, **kw),
        )

    def step(self, chunk: torch.Tensor, state: TFACMState) -> tuple[torch.Tensor, TFACMState]:
        """``(B, n)`` -> ``(B, C, n)`` for any n, in fixed-size tensors: ONNX export traces this step.

        The STFT and iSTFT are :class:`_RealDFT`'s convolutions (ONNX has no complex tensors) around
        the last W - 1 input samples and the overlap-add's partial sums. With p = samples mod H, the
        chunk completes m = (p + n) // H frames, the first starting H - 1 - p samples into
        ``[analysis, chunk]``, and makes m H padded samples final; the FIFO returns n of them. In a
        trace the chunk is a whole number of hops (``init_state(chunk_samples=...)`` checks), so p is
        always 0 and every size is fixed. The stream's head needs no counter of its own: the padded
        samples before the framing's W - H padding ends are zeroed (in a causal codec the head gain
        only touches those), which with the FIFO's H - 1 zeros is the W - 1 samples of latency.
        """
        self._check_streamable()
        chunk = check_waveform_batch(chunk, "chunk")
        n, hop, window = chunk.shape[-1], self.codec.hop, self.codec.window
        phase = 0 if torch.jit.is_tracing() else int(state.samples) % hop
        frames = (phase + n) // hop
        buffer = torch.cat([state.analysis, chunk], dim=-1)
        separator, pending = state.separator, state.pending
        if frames:
            start = hop - 1 - phase
            feats = self._dft.analyse(buffer[:, start : start + (frames - 1) * hop + window])  # (B, 2, F, m)
            out, separator = self.separator.step(feats, separator)
            summed = self._dft.synthesise(self._estimate(out, feats))  # (B, C, (m - 1) H + W)
            # the previous frames' partial sums go onto the first W - H samples; m hops are now final
            tail, done = pending.shape[-1], frames * hop
            summed = torch.cat([summed[..., :tail] + pending, summed[..., tail:]], dim=-1)
            final, pending = summed[..., :done], summed[..., done:]
            index = state.separator.frames * hop + torch.arange(done, device=final.device)  # padded positions
            final = final * (index >= self.codec.framing.pad_left).to(final.dtype)
        else:
            final = pending.new_zeros(*pending.shape[:-1], 0)
        joined = torch.cat([state.fifo, final], dim=-1)
        fifo = joined[..., joined.shape[-1] - (hop - 1) :]
        return joined[..., phase : phase + n], TFACMState(state.samples + n, buffer[:, buffer.shape[-1] - (window - 1) :],
                                                          pending, fifo, separator)


def _preset(name: str, description: str, paper: dict | None = None, tags: tuple[str, ...] = (), **fields):
    register_preset(name, TFACM.family, TFACMConfig(**fields), description, paper=paper, tags=tags)


_preset(
    "tfacm-large",
    "TFACM (Large), Table I: the released configuration (N=64, B=3, H=64, 2 heads)",
    paper=TFACM_TABLE1["tfacm-large"],
    tags=("tfacm-table1",),
)
_preset(
    "tfacm-small",
    "TFACM (Small), Table I: N=64, B=2, H=64, 4 heads; sub-band width 4 (not given in the paper)",
    paper=TFACM_TABLE1["tfacm-small"],
    tags=("tfacm-table1",),
    num_blocks=2, num_heads=4, subband_width=4, tlocal_kernel=4,
)
_preset(
    "tfacm-large-n128",
    "TFACM (Large) with the paper text's N=128 (the released model and the parameter count use 64)",
    embed_dim=128,
)
_preset(
    "tfacm-large-no-cm",
    "Table II ablation: cache memory replaced by an unaligned identity (not causal: cannot stream)",
    paper=TFACM_TABLE2["tfacm-large-no-cm"], tags=("tfacm-table2",), cache_memory=False,
)
_preset(
    "tfacm-large-no-car",
    "Table II ablation: the gated convolution after the CAR attention removed",
    paper=TFACM_TABLE2["tfacm-large-no-car"], tags=("tfacm-table2",), car=False,
)
_preset(
    "tfacm-tiny",
    "tiny TFACM for CPU tests and smoke training (N=8, B=2, H=8, 2 heads, 40 ms segments)",
    embed_dim=8, num_blocks=2, hidden_size=8, subband_width=4, segment_ms=40.0, tlocal_kernel=3,
    qk_dim=16, attention_window_ms=200.0, gate_kernel=2,
)
_preset(
    "tfacm-lite",
    "lighter TFACM trained for the bundled causal model on 2 CPU cores: 16 ms window / 8 ms hop (65 bins, "
    "125 frames a second instead of 1,000), N=32, B=2, H=32, 4 heads, 64 ms segments, 1 s attention window",
    tags=("bundled",),
    window_ms=16.0, hop_ms=8.0, embed_dim=32, num_blocks=2, hidden_size=32, num_heads=4, subband_width=4,
    segment_ms=64.0, tlocal_kernel=4,
)
