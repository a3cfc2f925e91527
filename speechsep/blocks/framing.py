"""Framing and overlap-add, offline and streaming: the one place where window/hop arithmetic lives.

Both the STFT and the learnable convolutional codec (``encoders.py``) cut the waveform into frames
and glue frames back with overlap-add through :class:`Framing`, so the offline forward and the
streaming ``step`` run the same code.

Axis legend:
    ...  any leading axes (batch, sources)      T  samples          K  frames
    W    window (frame length, samples)          H  hop (samples)

Frame alignment (padded coordinates: ``pad_left`` zeros go before input sample 0):

* causal: ``pad_left = W - H``. Frame ``k`` covers input samples ``[k*H - (W - H), k*H + H)``, so
  it is complete as soon as input sample ``k*H + H - 1`` has arrived: every new hop of input
  completes exactly one frame, and no frame reads a sample later than its own last hop. Offline,
  the signal is framed with every frame that overlaps it, ``K = floor((T + W - 1) / H)``, i.e. the
  right end is padded like a stream flushed with ``W - 1`` zeros (in general ``K = ceil((T +
  pad_left) / H)``: all frames that overlap the signal). Every input sample then lies in every
  frame that can reach it (a steady window-square envelope, no division by a near-zero window
  tail at the end), and offline output equals streamed output exactly.
* centred (``causal=False``): ``pad_left = W // 2``, frame ``k`` centred on input sample ``k*H``:
  the layout of ``torch.stft(center=True, pad_mode="constant")``, whose ``T // H + 1`` frames are our
  first frames. We again keep every frame that overlaps the signal, ``K = ceil((T + W // 2) / H)``:
  torch's count leaves the last samples in the near-zero tail of a single window (when ``H = W / 2``,
  a masked spectrum's error there is amplified up to ``1 / w[W - 1]``, 26,000 times for ``W = 512``).

Streaming latency (:func:`stream_latency`). Assume the processing between analysis and synthesis is
frame-causal (output frame ``k`` uses analysis frames ``<= k``). Output sample ``t`` is final once
the last frame that covers it, ``k_max = floor((t + pad_left) / H)``, is complete, which happens
when input sample ``k_max*H - pad_left + W - 1`` has arrived. Writing ``t + pad_left = q*H + r``
(``0 <= r < H``) the wait is ``(q*H - pad_left + W - 1) - t = W - 1 - r`` samples. With chunks of
any size (one sample included) every ``r`` occurs, so the smallest constant delay that lets a
stream return exactly ``n`` output samples for ``n`` input samples is ``W - 1`` (``r = 0``),
whatever the hop and the alignment. A separator that looks ``a`` frames ahead adds ``a*H``.
This is the TFACM decision of docs/design.md#look-ahead-and-latency: the only look-ahead is the STFT
window itself.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "Framing",
    "Framer",
    "FramerState",
    "OverlapAdder",
    "OverlapAddState",
    "OutputAligner",
    "AlignerState",
    "stream_latency",
    "ms_to_samples",
]

#: envelope values at or below this are treated as "not covered" (the threshold torch.istft uses)
_ENVELOPE_FLOOR = 1e-11


def _check_window_hop(window: int, hop: int) -> None:
    if not (isinstance(window, int) and isinstance(hop, int)):
        raise TypeError(f"window and hop must be ints (samples); got {window!r}, {hop!r}")
    if window < 1 or hop < 1 or hop > window:
        raise ValueError(f"need 1 <= hop <= window; got window={window}, hop={hop}")


def stream_latency(window: int, hop: int, lookahead_frames: int = 0) -> int:
    """Smallest constant delay (samples) of a frame-causal analysis/synthesis stream; see module doc.

    ``W - 1`` for any hop; ``lookahead_frames`` frames of separator look-ahead add ``H`` each.
    """
    _check_window_hop(window, hop)
    if lookahead_frames < 0:
        raise ValueError(f"lookahead_frames must be >= 0; got {lookahead_frames}")
    return window - 1 + lookahead_frames * hop


def ms_to_samples(ms: float, sample_rate: int) -> int:
    """Duration in milliseconds -> samples, rounded to the nearest sample (at least 1)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive; got {sample_rate}")
    samples = round(ms * sample_rate / 1000.0)
    if samples < 1:
        raise ValueError(f"{ms} ms at {sample_rate} Hz is shorter than one sample")
    return int(samples)


def _frames_of(buffer: torch.Tensor, window: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., L) -> complete frames (..., k, W) and the unconsumed rest (..., L - k*H).

    ``k = floor((L - W) / H) + 1`` (0 when ``L < W``); the rest is what the next frame starts with.
    """
    length = buffer.shape[-1]
    count = (length - window) // hop + 1 if length >= window else 0
    if count == 0:
        frames = buffer.new_zeros(*buffer.shape[:-1], 0, window)
    else:
        frames = buffer.unfold(-1, window, hop)  # (..., k, W), a view
    return frames, buffer[..., count * hop :]


def _overlap_sum(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Plain overlap-add: (..., k, W) -> (..., k*H + W - H) (``W - H`` zeros when ``k == 0``).

    Each frame is split into ``R = ceil(W / H)`` hop-long pieces; output hop ``j`` is
    ``sum_r frames[j - r, piece r]``. Zero-padding ``R - 1`` frames on both sides turns that sum into
    one strided view summed over ``r`` (two ops whatever ``k`` is, which keeps streaming cheap).
    """
    *lead, count, window = frames.shape
    pieces = -(-window // hop)
    padded = F.pad(frames, (0, pieces * hop - window, pieces - 1, pieces - 1)).contiguous()
    outputs = count + pieces - 1
    span = pieces * hop  # distance between consecutive padded frames
    # view[..., j, s, :] = padded[..., j + s, piece R - 1 - s, :]  (input frame j + s - (R - 1))
    view = padded.as_strided(
        (*lead, outputs, pieces, hop),
        (*padded.stride()[:-2], span, span - hop, 1),
        padded.storage_offset() + (pieces - 1) * hop,
    )
    return view.sum(dim=-2).reshape(*lead, outputs * hop)[..., : count * hop + window - hop]


class _OverlapAdd(torch.autograd.Function):
    """Overlap-add whose backward is framing (its adjoint): one ``unfold`` instead of the generic
    ``as_strided`` backward, which on CPU made an iSTFT's backward about 2x slower than torch.istft's."""

    @staticmethod
    def forward(ctx, frames: torch.Tensor, hop: int) -> torch.Tensor:
        ctx.hop, ctx.window = hop, frames.shape[-1]
        return _overlap_sum(frames, hop)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        # output sample k*H + n received frame k's sample n, so frame k's gradient is grad[kH : kH + W]
        return grad.unfold(-1, ctx.window, ctx.hop), None


def _overlap(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Plain overlap-add (see :func:`_overlap_sum`), with a fast backward when gradients are needed."""
    if frames.requires_grad and frames.shape[-2] > 0:
        return _OverlapAdd.apply(frames, hop)
    return _overlap_sum(frames, hop)


def _apply_gain(samples: torch.Tensor, gain: torch.Tensor | None, position: int) -> torch.Tensor:
    """Multiply the samples at padded positions ``position ..`` that ``gain`` covers (the offline and
    the streaming overlap-add share it)."""
    if gain is None or position >= gain.shape[-1]:
        return samples
    part = gain[position : position + samples.shape[-1]].to(samples.dtype)
    head = samples[..., : part.shape[-1]] * part
    return torch.cat([head, samples[..., part.shape[-1] :]], dim=-1)


class FramerState(NamedTuple):
    """Streaming framer state.

    buffer: (..., L) with ``L < W``: the samples (initially the ``pad_left`` zeros) from which the
        next, not yet complete, frame starts.
    """

    buffer: torch.Tensor


class OverlapAddState(NamedTuple):
    """Streaming overlap-add state.

    pending: (..., W - H) partial sums of the samples that later frames still add to.
    position: padded samples made final so far (the first ``pad_left`` of them are dropped).
    """

    pending: torch.Tensor
    position: int


@dataclasses.dataclass(frozen=True)
class Framing:
    """Frame layout for window ``W`` and hop ``H``; causal or centred (see the module doc)."""

    window: int
    hop: int
    causal: bool = True

    def __post_init__(self) -> None:
        _check_window_hop(self.window, self.hop)

    @property
    def pad_left(self) -> int:
        return self.window - self.hop if self.causal else self.window // 2

    @property
    def latency(self) -> int:
        return stream_latency(self.window, self.hop)

    # ---------------------------------------------------------------- lengths
    def num_frames(self, num_samples: int) -> int:
        """Frames the offline :meth:`frame` makes of ``num_samples`` samples: all that overlap them."""
        if num_samples < 0:
            raise ValueError(f"num_samples must be >= 0; got {num_samples}")
        # frame k starts at input sample k*H - pad_left; it overlaps [0, T) iff that is < T
        return -(-(num_samples + self.pad_left) // self.hop) if num_samples else 0

    def default_length(self, num_frames: int) -> int:
        """Signal length assumed by :meth:`overlap_add` when none is given: the largest multiple of
        the hop that :meth:`num_frames` maps to at most ``num_frames`` (so a signal whose length is
        a multiple of the hop comes back whole)."""
        return max(num_frames + (-self.pad_left // self.hop), 0) * self.hop

    def _pad_right(self, num_samples: int) -> int:
        # >= W - H by the ceiling in num_frames: the last sample sits in a full set of frames
        return (self.num_frames(num_samples) - 1) * self.hop + self.window - self.pad_left - num_samples

    # ---------------------------------------------------------------- analysis
    def frame(self, x: torch.Tensor) -> torch.Tensor:
        """Offline framing: (..., T) -> (..., K, W) with ``K = num_frames(T)`` (a strided view)."""
        if x.dim() < 1:
            raise ValueError(f"frame expects (..., time); got {tuple(x.shape)}")
        num_samples = x.shape[-1]
        if self.num_frames(num_samples) == 0:
            return x.new_zeros(*x.shape[:-1], 0, self.window)
        padded = F.pad(x, (self.pad_left, self._pad_right(num_samples)))
        frames, _ = _frames_of(padded, self.window, self.hop)
        return frames

    @property
    def framer(self) -> Framer:
        """This layout's streaming analysis: ``init_state``/``step`` (samples in, completed frames out)."""
        return Framer(self)

    # ---------------------------------------------------------------- synthesis
    def window_envelope(self, window_fn: torch.Tensor, count: int) -> torch.Tensor:
        """Overlap-added squared window of ``count`` frames, (count*H + W - H,) in padded coordinates."""
        return _overlap(window_fn.square().expand(count, self.window), self.hop)

    def steady_envelope(self, window_fn: torch.Tensor) -> torch.Tensor:
        """(H,) the squared-window sum at padded sample ``s`` once every frame reaching it exists.

        Frame ``j`` holds padded sample ``s`` at position ``s - j*H``, which is ``s`` mod ``H``: the sum
        is ``E[s mod H] = sum_m w[s mod H + m*H]^2`` (periodic). Zero somewhere = the NOLA condition
        fails and ``torch.istft`` could not invert either.
        """
        pieces = -(-self.window // self.hop)
        squares = F.pad(window_fn.square(), (0, pieces * self.hop - self.window))
        return squares.reshape(pieces, self.hop).sum(dim=0)

    def synthesis_window(self, window_fn: torch.Tensor) -> torch.Tensor:
        """(W,) ``w[n] / E[n mod H]``: overlap-adding frames weighted by it equals weighting by ``w``
        and dividing by the squared-window envelope (the least-squares iSTFT, as ``torch.istft``),
        wherever every frame reaching a sample exists, without a per-sample division."""
        envelope = self.steady_envelope(window_fn)
        if float(envelope.min()) <= _ENVELOPE_FLOOR:
            raise ValueError(f"window of {self.window} with hop {self.hop} violates the NOLA condition")
        return window_fn / envelope.repeat(-(-self.window // self.hop))[: self.window]

    def envelope_gain(self, window_fn: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """Per-sample correction, in padded coordinates, where fewer frames than in steady state exist.

        ``E[s mod H] / envelope(s)`` (0 where nothing covers ``s``). With ``num_frames=None``: the
        first ``W - H`` padded samples of an endless stream (the only ones frames ``< 0`` would
        reach; for causal framing all of them are padding). With ``num_frames=K``: all
        ``K*H + W - H`` samples of ``K`` frames; only the first ``W - H`` and the samples from
        ``K*H`` on (past :meth:`default_length`) differ from 1.
        """
        count = -(-self.window // self.hop) if num_frames is None else num_frames
        envelope = self.window_envelope(window_fn, count)
        if num_frames is None:
            envelope = envelope[: self.window - self.hop]
        steady = self.steady_envelope(window_fn)
        steady = steady.repeat(-(-envelope.shape[-1] // self.hop))[: envelope.shape[-1]]
        covered = envelope > _ENVELOPE_FLOOR
        return torch.where(covered, steady / envelope.clamp_min(_ENVELOPE_FLOOR), torch.zeros_like(envelope))

    def overlap_add(
        self, frames: torch.Tensor, length: int | None = None, *, gain: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Offline overlap-add: (..., K, W) -> (..., length); samples beyond the frames are zeros.

        ``gain`` (G,) multiplies padded samples ``0 .. G-1`` (see :meth:`envelope_gain`).
        """
        if frames.dim() < 2 or frames.shape[-1] != self.window:
            raise ValueError(f"overlap_add expects (..., frames, {self.window}); got {tuple(frames.shape)}")
        if length is None:
            length = self.default_length(frames.shape[-2])
        out = _apply_gain(_overlap(frames, self.hop), gain, 0)
        out = out[..., self.pad_left : self.pad_left + length]
        if out.shape[-1] < length:
            out = F.pad(out, (0, length - out.shape[-1]))
        return out

    @property
    def overlap_adder(self) -> OverlapAdder:
        """This layout's streaming synthesis: ``init_state``/``step`` (frames in, final samples out)."""
        return OverlapAdder(self)


@dataclasses.dataclass(frozen=True)
class Framer:
    """Streaming analysis of a :class:`Framing`: any number of new samples in, the frames they
    complete out (the offline :meth:`Framing.frame`, a chunk at a time)."""

    framing: Framing

    def init_state(self, batch_shape: tuple[int, ...], *, device=None, dtype: torch.dtype = torch.float32
                   ) -> FramerState:
        return FramerState(torch.zeros(*batch_shape, self.framing.pad_left, dtype=dtype, device=device))

    def step(self, x: torch.Tensor, state: FramerState) -> tuple[torch.Tensor, FramerState]:
        """(..., n) new samples -> the frames completed (..., k, W)."""
        if x.shape[:-1] != state.buffer.shape[:-1] or x.dim() != state.buffer.dim():
            raise ValueError(
                f"chunk must be shaped {tuple(state.buffer.shape[:-1])} + (n,) like the state; got {tuple(x.shape)}"
            )
        buffer = torch.cat([state.buffer, x.to(state.buffer.dtype)], dim=-1)
        frames, rest = _frames_of(buffer, self.framing.window, self.framing.hop)
        # clone the (small) rest so the state does not keep the whole buffer alive through a view
        return frames, FramerState(rest.clone())


@dataclasses.dataclass(frozen=True)
class OverlapAdder:
    """Streaming synthesis of a :class:`Framing`: any number of new frames in, the samples they make
    final out (the offline :meth:`Framing.overlap_add`, a chunk at a time)."""

    framing: Framing

    def init_state(self, batch_shape: tuple[int, ...], *, device=None, dtype: torch.dtype = torch.float32
                   ) -> OverlapAddState:
        pending = torch.zeros(*batch_shape, self.framing.window - self.framing.hop, dtype=dtype, device=device)
        return OverlapAddState(pending, 0)

    def step(self, frames: torch.Tensor, state: OverlapAddState, *, gain: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, OverlapAddState]:
        """(..., k, W) new frames -> the samples now final.

        After ``k`` more frames, ``k*H`` more padded samples are final (no later frame reaches
        them); the first ``pad_left`` padded samples of the stream are dropped. ``gain``: as in
        :meth:`Framing.overlap_add`.
        """
        window, hop = self.framing.window, self.framing.hop
        if frames.dim() < 2 or frames.shape[-1] != window:
            raise ValueError(f"overlap-add step expects (..., frames, {window}); got {tuple(frames.shape)}")
        pending = state.pending
        if frames.shape[:-2] != pending.shape[:-1]:
            raise ValueError(
                f"frames must be shaped {tuple(pending.shape[:-1])} + (k, {window}); got {tuple(frames.shape)}"
            )
        done = frames.shape[-2] * hop
        summed = _overlap(frames.to(pending.dtype), hop)
        # the previous call's partial sums go onto the first W - H samples
        tail = pending.shape[-1]
        summed = torch.cat([summed[..., :tail] + pending, summed[..., tail:]], dim=-1)
        out = _apply_gain(summed[..., :done], gain, state.position)
        drop = min(max(self.framing.pad_left - state.position, 0), done)
        return out[..., drop:], OverlapAddState(summed[..., done:], state.position + done)


class AlignerState(NamedTuple):
    """Output aligner state.

    fifo: (..., m) samples produced but not yet returned, or ``None`` before the first step when no
        batch shape was given.
    silence: how many of the ``latency`` leading zeros are still to be returned.
    """

    fifo: torch.Tensor | None
    silence: int


@dataclasses.dataclass(frozen=True)
class OutputAligner:
    """FIFO that turns "whatever samples are final" into exactly ``n`` samples per ``n`` input samples.

    The output starts with ``latency`` zeros, then the produced samples in order: the offline output
    delayed by ``latency``. With ``latency = stream_latency(W, H)`` the FIFO never runs dry (see the
    module doc), and it never holds more than ``latency + H`` samples.
    """

    latency: int

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError(f"latency must be >= 0; got {self.latency}")

    def init_state(
        self, batch_shape: tuple[int, ...] | None = None, *, dtype: torch.dtype = torch.float32, device=None
    ) -> AlignerState:
        """With ``batch_shape`` the first step's samples are checked against it; without, any shape."""
        fifo = None if batch_shape is None else torch.zeros(*batch_shape, 0, dtype=dtype, device=device)
        return AlignerState(fifo, self.latency)

    def step(self, samples: torch.Tensor, num_samples: int, state: AlignerState) -> tuple[torch.Tensor, AlignerState]:
        """Push ``samples`` (..., m); pop exactly ``num_samples`` (..., n)."""
        fifo = state.fifo
        if fifo is None:
            fifo = samples
        elif samples.shape[:-1] != fifo.shape[:-1] or samples.dim() != fifo.dim():
            raise ValueError(
                f"samples must be shaped {tuple(fifo.shape[:-1])} + (m,) like the state; got {tuple(samples.shape)}"
            )
        else:
            fifo = torch.cat([fifo, samples.to(fifo.dtype)], dim=-1)
        silent = min(state.silence, num_samples)
        take = num_samples - silent
        if fifo.shape[-1] < take:
            raise RuntimeError(
                f"aligner ran dry: {num_samples} samples asked, {fifo.shape[-1] + silent} available; "
                f"latency {self.latency} is too small for this stream"
            )
        out = fifo[..., :take]
        if silent:
            out = torch.cat([fifo.new_zeros(*fifo.shape[:-1], silent), out], dim=-1)
        return out, AlignerState(fifo[..., take:].clone(), state.silence - silent)
