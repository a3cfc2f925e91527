"""Run audio through a causal model's ``step`` exactly as a live input would, and time it.

The input is cut into fixed chunks of ``chunk_samples`` (the last one shorter); each chunk goes
through ``model.step`` alone, with the state from the previous chunk, and the wall-clock time of
every call is recorded. A live stream cannot do better than this loop, so its numbers are the ones
to quote: per-chunk compute time (p50, p95, max), the real-time factor (compute time / audio time;
below 1 keeps up), and the latency (the model's algorithmic latency, plus one chunk of buffering
and the compute time of that chunk for a live device).

``stream_through_model(..., align=True)`` also flushes the stream with ``latency`` zeros and drops the
first ``latency`` output samples, so the result lines up with the input and equals the offline
forward; the flush calls are not timed (a live stream never ends).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from speechsep.audio import read_audio, resample, write_audio
from speechsep.models.base import Streamer, StreamingNotSupported
from speechsep.threads import split_threads
from speechsep.utils import check_waveform_batch

__all__ = ["StreamStats", "StreamedFile", "stream_through_model", "stream_file"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StreamStats:
    sample_rate: int
    chunk_samples: int
    #: model.latency: how far the stream output lags the input (samples)
    latency_samples: int
    #: seconds of audio streamed (the input, without the flush)
    seconds: float
    #: wall-clock seconds of each timed ``step`` call, in order
    chunk_seconds: tuple[float, ...]
    threads: int
    #: the steps ran on one thread and only their heavy kernels on ``threads`` (speechsep.threads)
    split_threads: bool = False

    @property
    def num_chunks(self) -> int:
        return len(self.chunk_seconds)

    @property
    def chunk_ms(self) -> float:
        return 1000.0 * self.chunk_samples / self.sample_rate

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    def percentile_ms(self, q: float) -> float:
        return 1000.0 * float(np.percentile(self.chunk_seconds, q)) if self.chunk_seconds else 0.0

    @property
    def max_ms(self) -> float:
        return 1000.0 * max(self.chunk_seconds, default=0.0)

    @property
    def real_time_factor(self) -> float:
        """Total compute time / audio time (< 1: faster than real time)."""
        return sum(self.chunk_seconds) / self.seconds if self.seconds else float("nan")

    @property
    def live_latency_ms(self) -> float:
        """Input sample to output sample on a live device: buffering one chunk, the model's algorithmic
        latency, and computing the chunk (its p95 time)."""
        return self.chunk_ms + self.latency_ms + self.percentile_ms(95)

    def _threads_text(self) -> str:
        if self.split_threads:
            return f"{self.threads} threads (each step on 1, its LSTMs and attention on {self.threads})"
        return f"{self.threads} thread(s)"

    def advice(self) -> list[str]:
        """What to change when the stream is too slow (empty when it keeps up)."""
        if self.real_time_factor < 1:
            return []
        tips = []
        if self.threads > 1 and os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
            tips.append("unset OMP_WAIT_POLICY (PASSIVE makes the threads sleep between kernels) or use --threads 1")
        elif self.threads > 1:
            tips.append("try --threads 1: on a machine whose cores are busy, extra threads wait on each other")
        else:
            tips.append("try --threads 2 on a quiet machine with a free core (each step on one thread, its "
                        "LSTMs and attention on two: faster for tfacm-small and larger)")
        tips.append(f"a longer chunk, e.g. --chunk-ms {2 * self.chunk_ms:g} (fewer, larger steps; adds "
                    f"{self.chunk_ms:g} ms of latency)")
        tips.append("a smaller model (--model tfacm-lite), --backend onnxruntime, or fewer other jobs on the cores")
        return tips

    def summary(self) -> str:
        tips = "".join(f"\n  to keep up: {tip}" for tip in self.advice())
        return (
            f"{self.num_chunks} chunks of {self.chunk_ms:g} ms ({self.chunk_samples} samples at {self.sample_rate} Hz), "
            f"{self.seconds:.2f} s of audio, {self._threads_text()}\n"
            f"compute per chunk: p50 {self.percentile_ms(50):.2f} ms, p95 {self.percentile_ms(95):.2f} ms, "
            f"max {self.max_ms:.2f} ms\n"
            f"real-time factor: {self.real_time_factor:.3f} ({'keeps up' if self.real_time_factor < 1 else 'too slow'}){tips}\n"
            f"latency: algorithmic {self.latency_ms:.2f} ms ({self.latency_samples} samples); live "
            f"{self.live_latency_ms:.2f} ms (chunk + algorithmic + p95 compute)"
        )


def stream_through_model(
    model: Streamer,
    wav: torch.Tensor,
    chunk_samples: int,
    *,
    align: bool = True,
    threads: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, StreamStats]:
    """Stream ``wav`` ``(B, T)`` through ``model.step`` in chunks; return ``(B, C, T)`` and the timings.

    ``threads`` (a PyTorch model on the CPU): run each step on one thread and its heavy kernels
    (LSTMs, attention) on ``threads`` (:func:`speechsep.threads.split_threads`); default: torch's
    current thread count for everything.

    ``progress(done, total)`` is called after each timed chunk (outside the timing).

    ``align=False`` returns the raw stream output (delayed by ``model.latency``, its first
    ``latency`` samples silent); ``align=True`` returns it flushed and shifted back onto the input.

    ``model`` may be any :class:`~speechsep.models.base.Streamer`, also a runtime with a fixed step
    size (an :class:`~speechsep.export.onnx.OnnxStreamer`: ``step_samples`` > 1): ``chunk_samples``
    must then be a multiple of it, and the last, shorter chunk is padded with zeros (as the flush
    would be).
    """
    if not model.is_causal:
        raise StreamingNotSupported(f"{type(model).__name__} is not causal and cannot stream")
    if chunk_samples < 1:
        raise ValueError(f"chunk_samples must be at least 1; got {chunk_samples}")
    fixed = model.step_samples
    if chunk_samples % fixed:
        raise ValueError(f"this runtime steps {fixed} samples at a time: chunk_samples must be a multiple of "
                         f"{fixed}; got {chunk_samples}")
    wav = check_waveform_batch(wav, "wav")
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else torch.device("cpu")
    wav = wav.to(device)
    total, latency = wav.shape[-1], model.latency
    outs, times, produced = [], [], 0

    def run(chunk: torch.Tensor, state):
        if chunk.shape[-1] % fixed:  # only the stream's last chunk: zeros, like the flush
            chunk = torch.nn.functional.pad(chunk, (0, fixed - chunk.shape[-1] % fixed))
        return model.step(chunk, state)

    split = threads is not None and isinstance(model, torch.nn.Module) and device.type == "cpu"
    with torch.inference_mode(), split_threads(threads) if split else contextlib.nullcontext():
        state = model.init_state(wav.shape[0])
        num_chunks = -(-total // chunk_samples)
        for start in range(0, total, chunk_samples):
            chunk = wav[:, start : start + chunk_samples]
            t0 = clock()
            out, state = run(chunk, state)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(clock() - t0)
            outs.append(out)
            produced += out.shape[-1]
            if progress is not None:
                progress(len(times), num_chunks)
        if align:  # flush with silence until the last input sample has come out (not timed)
            silence = wav.new_zeros(wav.shape[0], chunk_samples)
            while produced < total + latency:
                out, state = run(silence[:, : min(chunk_samples, total + latency - produced)], state)
                outs.append(out)
                produced += out.shape[-1]
    out = torch.cat(outs, dim=-1) if outs else wav.new_zeros(wav.shape[0], model.num_sources, 0)
    out = out[..., latency : latency + total] if align else out[..., :total]
    stats = StreamStats(model.sample_rate, chunk_samples, latency, total / model.sample_rate,
                        tuple(times), (threads if split else None) or model.threads
                        or torch.get_num_threads(), split_threads=split)
    return out, stats


@dataclasses.dataclass(frozen=True)
class StreamedFile:
    input: Path
    sources: list[Path]
    stats: StreamStats
    #: the rate the sources are written at (the input's)
    sample_rate: int = 0
    notes: tuple[str, ...] = ()


def stream_file(
    model: Streamer,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    chunk_ms: float = 16.0,
    channel: int | str = 0,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StreamedFile:
    """Stream one audio file (resampled to the model's rate) and write ``OUTDIR/STEM_s1.wav ...`` at the
    input's rate and length, lined up with the input, as ``speechsep separate`` does."""
    from speechsep.blocks.framing import ms_to_samples
    from speechsep.inference.separate import (
        band_limit_note,
        check_out_dir,
        fit_length,
        limit_peak,
        output_paths,
    )

    path = Path(path)
    check_out_dir(out_dir)
    wav, sr = read_audio(path, channel=channel)
    at_model_rate = resample(wav, sr, model.sample_rate)
    est, stats = stream_through_model(model, torch.from_numpy(at_model_rate)[None],
                                 ms_to_samples(chunk_ms, model.sample_rate), threads=threads, progress=progress)
    est = fit_length(resample(est[0].cpu().numpy(), model.sample_rate, sr), wav.shape[0])
    est = limit_peak(est, str(path))
    sources, _ = output_paths(out_dir, path.stem, est.shape[0])
    for target, source in zip(sources, est, strict=True):
        write_audio(target, source, sr)
    note = band_limit_note(sr, model.sample_rate)
    return StreamedFile(path, sources, stats, sr, (note,) if note else ())
