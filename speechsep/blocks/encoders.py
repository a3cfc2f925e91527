"""Signal front-ends with one interface: learnable 1-D convolution, STFT magnitude, STFT complex.

Every encoder/decoder here frames and overlap-adds through :class:`~speechsep.blocks.framing.Framing`,
and its offline ``forward`` and streaming ``step`` call the same frame -> feature (or feature ->
frame) method, so the arithmetic exists once. ``causal=True`` uses causal framing (no centre
padding; frame ``k`` ends at input sample ``k*H + H - 1``); ``causal=False`` centres frames like
``torch.stft(center=True)``. Streaming works for both alignments; the codecs' ``latency`` is the
smallest constant delay of a frame-causal stream (:func:`~speechsep.blocks.framing.stream_latency`).

Axis legend:
    B  batch     C  sources     T  samples     n  samples in a streamed chunk
    N  learned filters          F  frequency bins (n_fft // 2 + 1)          K  frames
    W  window (samples)         H  hop (samples)

Uses: the iterative-separation paper (Sec. 3) takes either a learnable encoder/decoder (2 ms window,
128 filters, stride half the window) or STFT magnitude with the mixture phase for the inverse (32 ms
window, 257 bins); TFACM (Sec. II) takes the complex STFT as two real channels (Sec. III: 8 ms Hann, 1 ms hop)
and an iSTFT decoder.

Speed (TFACM's case: window 64, hop 8 at 8 kHz, 1,000 frames/s; 4 s, one CPU thread, best of
round-robin runs): the DFT is ``torch.fft.rfft``/``irfft`` on the frames. ``rfft`` on the framing
view costs about what ``torch.stft`` does and under half a DFT-matrix ``matmul``; ``irfft`` frames
take about half the time of the ``matmul`` inverse, and the whole iSTFT (with the strided
overlap-add and its framing backward) is on par with ``torch.istft`` forward and faster forward +
backward.

Export (:func:`export_friendly`): TorchScript's ONNX exporter has no rfft, complex dtype or
dynamic-length ``unfold``. Inside ``with export_friendly():`` the offline ``STFT.forward`` and
``ISTFT.forward`` switch to real-only arithmetic: framing and the windowed real DFT in one strided
``conv1d`` whose kernels are the ``w[n] cos``/``-w[n] sin`` bases, the inverse DFT and synthesis
window in one ``conv_transpose1d`` (which is the overlap-add), and the spectrum carried as a
:class:`ReIm` pair. Outside it nothing changes; streaming ``step`` never switches.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_waveform_batch
from .framing import FramerState, Framing, OverlapAddState, ms_to_samples, stream_latency

__all__ = [
    "FramedFrontEnd",
    "ConvEncoder",
    "ConvDecoder",
    "STFT",
    "ISTFT",
    "MagnitudeCodec",
    "ComplexCodec",
    "CodecEncoder",
    "CodecDecoder",
    "make_window",
    "export_friendly",
    "is_export_friendly",
    "ReIm",
    "stream_latency",
    "ms_to_samples",
]


def make_window(name: str, length: int) -> torch.Tensor:
    """Analysis/synthesis window: ``hann`` (periodic, as torch.hann_window), ``sqrt_hann``,
    ``hamming`` (periodic) or ``rect``."""
    if name == "hann":
        return torch.hann_window(length, periodic=True, dtype=torch.float64).float()
    if name == "sqrt_hann":
        return torch.hann_window(length, periodic=True, dtype=torch.float64).sqrt().float()
    if name == "hamming":
        return torch.hamming_window(length, periodic=True, dtype=torch.float64).float()
    if name in ("rect", "boxcar"):
        return torch.ones(length)
    raise ValueError(f"unknown window_fn {name!r}; choose hann, sqrt_hann, hamming or rect")


#: per thread (and task): an export on one thread leaves inference on the others on the FFT path
_EXPORT_FRIENDLY: contextvars.ContextVar[bool] = contextvars.ContextVar("speechsep_export_friendly", default=False)


@contextlib.contextmanager
def export_friendly() -> Iterator[None]:
    """While active, offline STFT/ISTFT use real-only ops that TorchScript's ONNX exporter can trace
    with a dynamic time axis (see the module doc); numerics equal the FFT path to float32 rounding."""
    token = _EXPORT_FRIENDLY.set(True)
    try:
        yield
    finally:
        _EXPORT_FRIENDLY.reset(token)


def is_export_friendly() -> bool:
    return _EXPORT_FRIENDLY.get()


class ReIm:
    """A complex spectrum as two real tensors, for :func:`export_friendly` graphs (no complex dtype).

    Supports what the STFT-mask models do with a spectrum: ``shape``, ``real``/``imag``, ``abs()``,
    ``unsqueeze``, multiplication by a real tensor (a ratio mask) and :meth:`with_magnitude` (a
    magnitude with this spectrum's phase). Anything else fails with an ``AttributeError``/``TypeError``.
    """

    def __init__(self, real: torch.Tensor, imag: torch.Tensor):
        self.real, self.imag = real, imag

    @property
    def shape(self) -> torch.Size:
        return self.real.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.real.dtype

    def dim(self) -> int:
        return self.real.dim()

    def is_complex(self) -> bool:
        return True

    def abs(self) -> torch.Tensor:
        return torch.sqrt(self.real.square() + self.imag.square())

    def unsqueeze(self, dim: int) -> ReIm:
        return ReIm(self.real.unsqueeze(dim), self.imag.unsqueeze(dim))

    def __mul__(self, other: torch.Tensor) -> ReIm:
        if isinstance(other, ReIm) or torch.is_tensor(other) and other.is_complex():
            raise TypeError("export-friendly spectra multiply only by real tensors (complex masks are not supported)")
        return ReIm(self.real * other, self.imag * other)

    __rmul__ = __mul__

    def with_magnitude(self, magnitude: torch.Tensor) -> ReIm:
        """``magnitude`` (B, C, F, K) with this (B, F, K) spectrum's phase; a zero bin has phase 0, as ``angle``."""
        mag = self.abs().unsqueeze(1)
        nonzero = mag > 0
        safe = torch.where(nonzero, mag, torch.ones_like(mag))
        cos = torch.where(nonzero, self.real.unsqueeze(1) / safe, torch.ones_like(mag))
        sin = torch.where(nonzero, self.imag.unsqueeze(1) / safe, torch.zeros_like(mag))
        return ReIm(magnitude * cos, magnitude * sin)


def _constant(values: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``values`` as a tensor a tracer records as one constant (not as the ops that computed it)."""
    return torch.from_numpy(values.detach().cpu().numpy()).to(dtype=dtype, device=device)


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _batch_shape(batch_shape: int | tuple[int, ...]) -> tuple[int, ...]:
    return (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)


def _check_features(x: torch.Tensor, channels: int, what: str, name: str) -> None:
    if x.dim() < 2 or x.shape[-2] != channels:
        raise ValueError(f"{name} must be shaped (..., {channels}, frames) ({what}); got {tuple(x.shape)}")


class FramedFrontEnd(nn.Module):
    """What every front-end exposes about its frame layout (held in ``self.framing``)."""

    framing: Framing

    @property
    def window(self) -> int:
        return self.framing.window

    @property
    def hop(self) -> int:
        return self.framing.hop

    @property
    def causal(self) -> bool:
        return self.framing.causal

    @property
    def latency(self) -> int:
        """Smallest constant delay (samples) of a frame-causal stream through this front-end."""
        return stream_latency(self.window, self.hop)

    def num_frames(self, num_samples: int) -> int:
        return self.framing.num_frames(num_samples)


# ----------------------------------------------------------------------------- learnable conv codec
class ConvEncoder(FramedFrontEnd):
    """Learnable 1-D convolution analysis (Conv-TasNet/DPRNN style): ``N`` filters of ``W`` taps,
    stride ``H`` (default ``W // 2``). No ReLU: the caller decides."""

    def __init__(self, num_filters: int, window: int, hop: int | None = None, *, causal: bool = False, bias: bool = False):
        super().__init__()
        self.framing = Framing(window, window // 2 if hop is None else hop, causal)
        self.num_filters = num_filters
        # a strided Conv1d written as a linear map on frames, so forward and step share it
        self.basis = nn.Linear(window, num_filters, bias=bias)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, K, W) -> (B, N, K)."""
        return self.basis(frames).transpose(-1, -2).contiguous()

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, N, K)."""
        wav = check_waveform_batch(wav, "wav")
        if is_export_friendly():
            # the same linear map as a strided conv1d; static pads give K frames (see STFT._export_forward)
            padded = F.pad(wav.unsqueeze(1), (self.framing.pad_left, self.window - 1))  # (B, 1, T')
            return F.conv1d(padded, self.basis.weight.unsqueeze(1), self.basis.bias, stride=self.hop)
        return self.features(self.framing.frame(wav))

    def init_state(self, batch_size: int) -> FramerState:
        w = self.basis.weight
        return self.framing.framer.init_state((batch_size,), dtype=w.dtype, device=w.device)

    def step(self, chunk: torch.Tensor, state: FramerState) -> tuple[torch.Tensor, FramerState]:
        """(B, n) -> (B, N, k): the frames completed by this chunk."""
        frames, state = self.framing.framer.step(check_waveform_batch(chunk, "chunk"), state)
        return self.features(frames), state

    def extra_repr(self) -> str:
        return f"num_filters={self.num_filters}, window={self.window}, hop={self.hop}, causal={self.causal}"


class ConvDecoder(FramedFrontEnd):
    """Transposed-convolution synthesis: each frame's ``N`` features -> ``W`` samples, overlap-added."""

    def __init__(self, num_filters: int, window: int, hop: int | None = None, *, causal: bool = False, bias: bool = False):
        super().__init__()
        self.framing = Framing(window, window // 2 if hop is None else hop, causal)
        self.num_filters = num_filters
        self.basis = nn.Linear(num_filters, window, bias=False)
        # like ConvTranspose1d with one output channel: one offset added to every output sample
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def frames(self, feats: torch.Tensor) -> torch.Tensor:
        """(..., N, K) -> (..., K, W)."""
        _check_features(feats, self.num_filters, "N = num_filters", "feats")
        return self.basis(feats.transpose(-1, -2))

    def _offset(self, samples: torch.Tensor) -> torch.Tensor:
        return samples if self.bias is None else samples + self.bias

    def forward(self, feats: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """(..., N, K) -> (..., T); ``length`` defaults to ``Framing.default_length(K)``."""
        if is_export_friendly():
            return self._offset(self._export_forward(feats, length))
        return self._offset(self.framing.overlap_add(self.frames(feats), length))

    def _export_forward(self, feats: torch.Tensor, length: int | None) -> torch.Tensor:
        """Frames and overlap-add as one ``conv_transpose1d`` (stride H) with the basis as kernel.

        ``length`` must not exceed the frames' reach (``K*H - pad_left``, true of the analysed length).
        """
        _check_features(feats, self.num_filters, "N = num_filters", "feats")
        lead, count = feats.shape[:-2], feats.shape[-1]
        if length is None:  # Framing.default_length without the max(), for K >= ceil(pad_left / H)
            length = (count + (-self.framing.pad_left // self.hop)) * self.hop
        x = feats.reshape(-1, self.num_filters, count)  # (L, N, K), L = prod(...)
        summed = F.conv_transpose1d(x, self.basis.weight.t().unsqueeze(1), stride=self.hop)  # (L, 1, (K-1)H + W)
        return summed.narrow(-1, self.framing.pad_left, length).reshape(*lead, length)

    def init_state(self, batch_shape: int | tuple[int, ...]) -> OverlapAddState:
        w = self.basis.weight
        return self.framing.overlap_adder.init_state(_batch_shape(batch_shape), dtype=w.dtype, device=w.device)

    def step(self, feats: torch.Tensor, state: OverlapAddState) -> tuple[torch.Tensor, OverlapAddState]:
        """(..., N, k) -> (..., m): the samples made final by these frames (``k*H`` in steady state)."""
        samples, state = self.framing.overlap_adder.step(self.frames(feats), state)
        return self._offset(samples), state

    def extra_repr(self) -> str:
        return f"num_filters={self.num_filters}, window={self.window}, hop={self.hop}, causal={self.causal}"


# ----------------------------------------------------------------------------- STFT
class _Fourier(FramedFrontEnd):
    """Shared constructor of STFT and ISTFT (window, hop, n_fft, alignment, window function)."""

    def __init__(self, window: int, hop: int, n_fft: int | None = None, *, causal: bool = False, window_fn: str = "hann"):
        super().__init__()
        self.framing = Framing(window, hop, causal)
        self.n_fft = window if n_fft is None else n_fft
        if self.n_fft < window:
            raise ValueError(f"n_fft must be >= window; got n_fft={self.n_fft}, window={window}")
        self.window_fn = window_fn
        # derived from the config, so not part of the state dict
        self.register_buffer("taper", make_window(window_fn, window), persistent=False)

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def extra_repr(self) -> str:
        return (
            f"window={self.window}, hop={self.hop}, n_fft={self.n_fft}, causal={self.causal}, "
            f"window_fn={self.window_fn!r}"
        )


class STFT(_Fourier):
    """Short-time Fourier transform: (B, T) -> complex (B, F, K).

    With ``n_fft > window`` each ``W``-sample frame is zero-padded at its end (``torch.stft``
    centres a shorter window inside ``n_fft`` instead: same magnitudes, phases differ by a linear
    term), so a frame's samples are the same whatever ``n_fft`` is.
    """

    def spectrum(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., K, W) -> complex (..., F, K)."""
        if frames.shape[-2] == 0:  # a stream chunk that completed no frame (MKL rejects empty FFTs)
            return torch.zeros(*frames.shape[:-2], self.num_bins, 0, dtype=_complex_of(frames.dtype), device=frames.device)
        spec = torch.fft.rfft(frames * self.taper.to(frames.dtype), n=self.n_fft, dim=-1)
        return spec.transpose(-1, -2).contiguous()

    def forward(self, wav: torch.Tensor) -> torch.Tensor | ReIm:
        wav = check_waveform_batch(wav, "wav")
        if is_export_friendly():
            return self._export_forward(wav)
        return self.spectrum(self.framing.frame(wav))

    def _analysis_basis(self, dtype: torch.dtype) -> torch.Tensor:
        """(2F, 1, W): rows ``w[n] cos(2 pi f n / N)`` then ``-w[n] sin(2 pi f n / N)`` (rfft of the
        windowed frame zero-padded to N = n_fft at its end)."""
        n = torch.arange(self.window, dtype=torch.float64)
        f = torch.arange(self.num_bins, dtype=torch.float64)
        angle = 2 * math.pi * torch.outer(f, n).remainder(self.n_fft) / self.n_fft  # exact phase for large f*n
        taper = self.taper.double()
        basis = torch.cat([taper * torch.cos(angle), -taper * torch.sin(angle)])
        return _constant(basis, dtype, self.taper.device).unsqueeze(1)

    def _export_forward(self, wav: torch.Tensor) -> ReIm:
        """(B, T) -> ReIm (B, F, K), the frames of :meth:`Framing.frame` by a strided convolution.

        Static pads only: ``pad_left`` zeros before, ``W - 1`` after, gives ``floor((T + pad_left - 1)
        / H) + 1 = ceil((T + pad_left) / H) = K`` frames, as ``Framing.num_frames`` (T >= 1).
        """
        padded = F.pad(wav.unsqueeze(1), (self.framing.pad_left, self.window - 1))  # (B, 1, T')
        spec = F.conv1d(padded, self._analysis_basis(wav.dtype), stride=self.hop)  # (B, 2F, K)
        return ReIm(spec[:, : self.num_bins], spec[:, self.num_bins :])

    def init_state(self, batch_size: int) -> FramerState:
        return self.framing.framer.init_state((batch_size,), dtype=self.taper.dtype, device=self.taper.device)

    def step(self, chunk: torch.Tensor, state: FramerState) -> tuple[torch.Tensor, FramerState]:
        """(B, n) -> complex (B, F, k): spectra of the frames completed by this chunk."""
        frames, state = self.framing.framer.step(check_waveform_batch(chunk, "chunk"), state)
        return self.spectrum(frames), state


class ISTFT(_Fourier):
    """Inverse STFT, least-squares (window-square normalised, as torch.istft): complex (..., F, K) -> (..., T).

    The normalisation is folded into the synthesis window (:meth:`Framing.synthesis_window`), so
    the streaming step is a plain overlap-add; :meth:`Framing.envelope_gain` corrects the few
    samples that fewer frames reach (the start of a centred layout, past the end offline).
    """

    def __init__(self, window: int, hop: int, n_fft: int | None = None, *, causal: bool = False, window_fn: str = "hann"):
        super().__init__(window, hop, n_fft, causal=causal, window_fn=window_fn)
        # float32 copies for the common case; other dtypes recompute them from the taper (a float32
        # quotient cast to float64 would cap float64 reconstruction at float32 accuracy)
        taper = self.taper.double()
        self.register_buffer("synthesis", self.framing.synthesis_window(taper).float(), persistent=False)
        self.register_buffer("head_gain", self.framing.envelope_gain(taper).float(), persistent=False)

    def _windows(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(synthesis window, stream head gain) in ``dtype``."""
        if dtype == self.synthesis.dtype == torch.float32:
            return self.synthesis, self.head_gain
        taper = self.taper.to(dtype)
        return self.framing.synthesis_window(taper), self.framing.envelope_gain(taper)

    def frames(self, spec: torch.Tensor) -> torch.Tensor:
        """complex (..., F, K) -> synthesis-windowed frames (..., K, W)."""
        if not spec.is_complex():
            raise ValueError(f"spec must be complex (..., {self.num_bins}, frames); got dtype {spec.dtype}")
        _check_features(spec, self.num_bins, "F = n_fft // 2 + 1", "spec")
        if spec.shape[-1] == 0:
            return torch.zeros(*spec.shape[:-2], 0, self.window, dtype=spec.real.dtype, device=spec.device)
        frames = torch.fft.irfft(spec.transpose(-1, -2), n=self.n_fft, dim=-1)[..., : self.window]
        return frames * self._windows(frames.dtype)[0]

    def forward(self, spec: torch.Tensor | ReIm, length: int | None = None) -> torch.Tensor:
        if is_export_friendly():
            return self._export_forward(spec, length)
        frames = self.frames(spec)
        count = frames.shape[-2]
        if length is None:
            length = self.framing.default_length(count)
        if self.framing.pad_left + length <= count * self.hop:
            # the usual case: only the head lacks frames (samples from K*H on are not asked for)
            gain = self._windows(frames.dtype)[1]
        else:
            gain = self.framing.envelope_gain(self.taper.to(frames.dtype), count)
        return self.framing.overlap_add(frames, length, gain=gain)

    def _synthesis_basis(self, dtype: torch.dtype) -> torch.Tensor:
        """(2F, 1, W): ``irfft(., n=N)[:W]`` times the synthesis window, as a linear map of [real; imag].

        ``x[n] = (1/N) sum_f c_f (Re_f cos(2 pi f n / N) - Im_f sin(2 pi f n / N))``, ``c_f = 2`` except
        1 at DC and at Nyquist (N even); irfft ignores Im there, and so does sin (zero there).
        """
        n = torch.arange(self.window, dtype=torch.float64)
        f = torch.arange(self.num_bins, dtype=torch.float64)
        angle = 2 * math.pi * torch.outer(f, n).remainder(self.n_fft) / self.n_fft
        nyquist = self.n_fft % 2 == 0
        weight = [1.0] + [2.0] * (self.num_bins - 2) + [1.0 if nyquist else 2.0]
        weight = torch.tensor(weight[: self.num_bins], dtype=torch.float64).unsqueeze(1)  # (F, 1)
        synthesis = self.framing.synthesis_window(self.taper.double())
        basis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)]) * synthesis / self.n_fft
        return _constant(basis, dtype, self.taper.device).unsqueeze(1)

    def _export_forward(self, spec: ReIm, length: int | None) -> torch.Tensor:
        """ReIm (..., F, K) -> (..., length): inverse DFT, synthesis window and overlap-add in one
        ``conv_transpose1d`` (stride H), then the head gain and the cut of :meth:`Framing.overlap_add`.

        ``length`` must come from the analysed signal (``K = num_frames(length)``, so every output
        sample has all its frames and only the head needs a gain: the usual case of :meth:`forward`).
        """
        if not isinstance(spec, ReIm):
            raise TypeError(f"under export_friendly() the iSTFT takes the STFT's ReIm pair; got {type(spec).__name__}")
        if length is None:
            raise ValueError("under export_friendly() the iSTFT needs the signal length")
        _check_features(spec.real, self.num_bins, "F = n_fft // 2 + 1", "spec")
        lead = spec.real.shape[:-2]
        # (..., F, K) x 2 -> (L, 2F, K), L = prod(...)
        ri = torch.cat([spec.real, spec.imag], dim=-2).reshape(-1, 2 * self.num_bins, spec.real.shape[-1])
        summed = F.conv_transpose1d(ri, self._synthesis_basis(ri.dtype), stride=self.hop)  # (L, 1, (K-1)H + W)
        head = self.window - self.hop  # padded samples that frames < 0 would reach
        gain = self._windows(summed.dtype)[1]
        summed = torch.cat([summed[..., :head] * gain, summed[..., head:]], dim=-1)
        return summed.narrow(-1, self.framing.pad_left, length).reshape(*lead, length)  # (..., T)

    def init_state(self, batch_shape: int | tuple[int, ...]) -> OverlapAddState:
        return self.framing.overlap_adder.init_state(_batch_shape(batch_shape), dtype=self.taper.dtype, device=self.taper.device)

    def step(self, spec: torch.Tensor, state: OverlapAddState) -> tuple[torch.Tensor, OverlapAddState]:
        """complex (..., F, k) -> (..., m): samples made final by these frames."""
        frames = self.frames(spec)
        return self.framing.overlap_adder.step(frames, state, gain=self._windows(frames.dtype)[1])


# ----------------------------------------------------------------------------- codecs
#: a codec's features: the real/imag channels (ComplexCodec), or the magnitude and the complex spectrum
#: the decoder takes the phase from (MagnitudeCodec)
Features = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@dataclasses.dataclass(frozen=True, eq=False)
class CodecEncoder:
    """A codec's streaming analysis (``codec.encoder``): samples in, the codec's features of the frames
    they complete out, as its offline ``encode`` makes them."""

    codec: _Codec

    def init_state(self, batch_size: int) -> FramerState:
        return self.codec.stft.init_state(batch_size)

    def step(self, chunk: torch.Tensor, state: FramerState) -> tuple[Features, FramerState]:
        spec, state = self.codec.stft.step(chunk, state)
        return self.codec.features(spec), state


@dataclasses.dataclass(frozen=True, eq=False)
class CodecDecoder:
    """A codec's streaming synthesis (``codec.decoder``): the features of new frames in (plus what the
    codec's ``decode`` takes besides them, as keywords), the samples they make final out."""

    codec: _Codec

    def init_state(self, batch_shape: int | tuple[int, ...]) -> OverlapAddState:
        return self.codec.istft.init_state(batch_shape)

    def step(self, feats: torch.Tensor, state: OverlapAddState, **context: torch.Tensor
             ) -> tuple[torch.Tensor, OverlapAddState]:
        return self.codec.istft.step(self.codec.spectrum(feats, **context), state)


class _Codec(FramedFrontEnd):
    """An STFT/iSTFT pair with one frame layout."""

    def __init__(self, window: int, hop: int, n_fft: int | None = None, *, causal: bool = False, window_fn: str = "hann"):
        super().__init__()
        self.stft = STFT(window, hop, n_fft, causal=causal, window_fn=window_fn)
        self.istft = ISTFT(window, hop, n_fft, causal=causal, window_fn=window_fn)
        self.framing = self.stft.framing

    @property
    def num_bins(self) -> int:
        return self.stft.num_bins

    @property
    def encoder(self) -> CodecEncoder:
        """Streaming analysis: ``init_state(B)``, ``step(chunk, state)``."""
        return CodecEncoder(self)

    @property
    def decoder(self) -> CodecDecoder:
        """Streaming synthesis: ``init_state((B, C))``, ``step(feats, state, ...)``."""
        return CodecDecoder(self)

    def features(self, spec: torch.Tensor) -> Features:
        """The codec's features of a complex spectrum ``(B, F, K)`` (what ``encode`` returns)."""
        raise NotImplementedError

    def spectrum(self, feats: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        """The complex spectra ``(B, C, F, K)`` that ``decode`` inverts."""
        raise NotImplementedError


def _with_phase(magnitude: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """Magnitude (B, C, F, K) with the phase of spec (B, F, K) -> complex (B, C, F, K)."""
    if isinstance(spec, ReIm):  # export_friendly(): no angle() of a complex tensor
        return spec.with_magnitude(magnitude)
    # angle() of an exact zero is 0, so a zero mixture bin still carries a given magnitude
    phase = torch.angle(spec).unsqueeze(1)
    return torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))


class MagnitudeCodec(_Codec):
    """STFT magnitude front-end; the decoder applies a masked magnitude with the mixture's phase
    (iterative-separation paper, Sec. 3)."""

    def features(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return spec.abs(), spec

    def spectrum(self, masked_magnitude: torch.Tensor, *, mixture_spec: torch.Tensor) -> torch.Tensor:
        self._check(masked_magnitude, mixture_spec)
        return _with_phase(masked_magnitude, mixture_spec)

    def encode(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> magnitude (B, F, K) and the complex mixture spectrum (B, F, K) for decoding."""
        return self.features(self.stft(wav))

    def _check(self, masked: torch.Tensor, spec: torch.Tensor) -> None:
        if masked.dim() != 4 or masked.shape[2] != self.num_bins:
            raise ValueError(
                f"masked magnitude must be (batch, sources, {self.num_bins}, frames); got {tuple(masked.shape)}"
            )
        if spec.dim() != 3 or (spec.shape[0], spec.shape[1:]) != (masked.shape[0], masked.shape[2:]):
            raise ValueError(
                f"mixture spectrum must be (batch, freq, frames) = {(masked.shape[0], *masked.shape[2:])}; "
                f"got {tuple(spec.shape)}"
            )

    def decode(self, masked_magnitude: torch.Tensor, mixture_spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """(B, C, F, K) magnitudes + mixture (B, F, K) -> (B, C, T)."""
        return self.istft(self.spectrum(masked_magnitude, mixture_spec=mixture_spec), length)


class ComplexCodec(_Codec):
    """Complex STFT as two real channels [real, imag] (TFACM, Sec. II: E in R^{2 x F x T})."""

    @staticmethod
    def _to_channels(spec: torch.Tensor | ReIm) -> torch.Tensor:
        if isinstance(spec, ReIm):  # export_friendly(): (B, F, K) x 2 -> (B, 2, F, K)
            return torch.stack([spec.real, spec.imag], dim=1)
        # (B, F, K) complex -> (B, F, K, 2) -> (B, 2, F, K)
        return torch.view_as_real(spec).movedim(-1, 1).contiguous()

    def _from_channels(self, ri: torch.Tensor) -> torch.Tensor:
        if ri.dim() != 5 or ri.shape[2] != 2 or ri.shape[3] != self.num_bins:
            raise ValueError(
                f"ri must be (batch, sources, 2, {self.num_bins}, frames); got {tuple(ri.shape)}"
            )
        # the iSTFT runs in float32 at least, whatever the separator ran in (bf16 under autocast: no complex
        # bf16); a float64 model keeps float64 (so that its stream, whose iSTFT is real arithmetic, can be
        # compared with it to float64 rounding)
        if ri.dtype != torch.float64:
            ri = ri.float()
        if is_export_friendly():
            return ReIm(ri[:, :, 0], ri[:, :, 1])
        return torch.complex(ri[:, :, 0], ri[:, :, 1])

    def features(self, spec: torch.Tensor) -> torch.Tensor:
        return self._to_channels(spec)

    def spectrum(self, ri: torch.Tensor) -> torch.Tensor:
        return self._from_channels(ri)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, 2, F, K) real."""
        return self.features(self.stft(wav))

    def decode(self, ri: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """(B, C, 2, F, K) -> (B, C, T)."""
        return self.istft(self.spectrum(ri), length)
