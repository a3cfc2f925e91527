"""Live sessions: one streaming state per connection, with limits and bounded queues.

Each WebSocket connection gets a :class:`StreamProcessor` (its own model state and its own pair of
soxr streaming resamplers) and three tasks joined by two bounded queues::

    receive --(in queue, N frames)--> compute (thread pool) --(out queue, N frames)--> send

Memory per session is therefore bounded whatever the client does: a client that sends faster than
the model computes loses input frames, a client that reads slower than the server sends loses
output frames; both are dropped and counted (reported in ``stats`` and ``end``), never buffered
without end. The compute task takes every frame waiting in the input queue at once and runs one
``model.step`` on their concatenation: step accepts any chunk length and its output does not depend
on how the stream is cut, so a session that fell behind catches up in one call instead of paying the
per-call overhead once per frame.

The model is shared by all sessions: ``step`` never mutates the module, so concurrent steps from the
pool's threads are safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import time
from concurrent.futures import Executor
from typing import Any

import numpy as np
import soxr
import torch
from starlette.websockets import WebSocket, WebSocketDisconnect

from speechsep.models.base import SeparationModel
from speechsep.serve import protocol
from speechsep.serve.limits import RESAMPLE_QUALITIES, ServeLimits
from speechsep.serve.protocol import ProtocolError

__all__ = ["ServeLimits", "StreamProcessor", "SessionManager", "SessionStats", "run_session", "RESAMPLE_QUALITIES"]

log = logging.getLogger(__name__)

@functools.lru_cache(maxsize=64)
def _soxr_delay(in_rate: int, out_rate: int, quality: str) -> float:
    """A stream resampler's filter delay in output samples (soxr reports it only once it has run)."""
    probe = soxr.ResampleStream(in_rate, out_rate, 1, "float32", quality)
    probe.resample_chunk(np.zeros(in_rate // 10, np.float32))
    return float(probe.delay())


class StreamProcessor:
    """Client-rate audio in, client-rate separated sources out, through one model stream.

    Synchronous and single-threaded per instance (the session calls it from one pool thread at a
    time). Output sample ``i`` aligns with input sample ``i``: soxr's streaming resamplers hold
    back output until their filter delay is covered, so only the model's own latency remains.
    """

    def __init__(self, model: SeparationModel, client_rate: int, *, quality: str = "LQ"):
        if not model.is_causal:
            raise ValueError(f"{type(model).__name__} is not causal; live separation needs a streaming model")
        self.model = model
        self.client_rate = int(client_rate)
        self.model_rate = int(model.sample_rate)
        self.num_sources = int(model.num_sources)
        self.state = model.init_state(1)
        same = self.client_rate == self.model_rate
        self._in = None if same else soxr.ResampleStream(self.client_rate, self.model_rate, 1, "float32", quality)
        self._out = None if same else soxr.ResampleStream(self.model_rate, self.client_rate, self.num_sources, "float32", quality)
        self._quality = quality
        self.samples_in = 0
        self.samples_out = 0
        self.compute_s = 0.0

    @property
    def resampler_delay_ms(self) -> float:
        """The resamplers' filter delay; it is compensated (not added to the output's alignment)
        but output waits for it, so a live listener hears it on top of the model's latency."""
        if self._in is None:
            return 0.0
        return 1000.0 * (_soxr_delay(self.client_rate, self.model_rate, self._quality) / self.model_rate
                         + _soxr_delay(self.model_rate, self.client_rate, self._quality) / self.client_rate)

    def process(self, samples: np.ndarray, *, last: bool = False) -> tuple[np.ndarray, int, float]:
        """``samples (n,)`` float32 at the client rate -> ``(sources (C, m), start, compute_ms)``.

        ``start`` is the index of the first returned sample in the output stream. ``last=True``
        flushes the resamplers (end of stream).
        """
        t0 = time.perf_counter()
        x = np.ascontiguousarray(samples, dtype=np.float32)
        if self._in is not None:
            x = self._in.resample_chunk(x, last=last)
        if x.size:
            # inference_mode rather than no_grad: it also skips version counting and view tracking,
            # a per-op saving that adds up in a model made of many small ops
            with torch.inference_mode():
                out, state = self.model.step(torch.from_numpy(x)[None], self.state)
            self.state = state  # assigned only after a successful step
            y = out[0].numpy()  # (C, n)
        else:
            y = np.zeros((self.num_sources, 0), dtype=np.float32)
        if self._out is not None:
            y = self._out.resample_chunk(np.ascontiguousarray(y.T), last=last).T  # (m, C) -> (C, m)
        if last:
            # the round trip through a lower model rate rounds the length (by up to
            # client_rate / model_rate samples either way): end with zeros, or cut the surplus, so a
            # session returns exactly as many samples as it received
            short = self.samples_in + samples.size - self.samples_out - y.shape[1]
            y = np.pad(y, ((0, 0), (0, short))) if short > 0 else y[:, : max(0, y.shape[1] + short)]
        compute_ms = 1000.0 * (time.perf_counter() - t0)
        start = self.samples_out
        self.samples_in += samples.size
        self.samples_out += y.shape[1]
        self.compute_s += compute_ms / 1000.0
        return np.ascontiguousarray(y, dtype=np.float32), start, compute_ms


@dataclasses.dataclass
class SessionStats:
    id: int
    client_rate: int = 0
    frames_in: int = 0
    frames_out: int = 0
    #: input frames dropped because the compute queue was full (server slower than real time)
    dropped_in: int = 0
    #: output messages dropped because the send queue was full (client reading too slowly)
    dropped_out: int = 0
    #: messages rejected as malformed (each answered with an error)
    rejected: int = 0
    seconds_in: float = 0.0
    compute_s: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (< 1 keeps up)."""
        return self.compute_s / self.seconds_in if self.seconds_in else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "rtf": round(self.rtf, 4)}


class SessionManager:
    """Counts live sessions against ``max_sessions``; all calls happen on the event loop."""

    def __init__(self, limits: ServeLimits):
        self.limits = limits
        self.active: dict[int, SessionStats] = {}
        self._ids = itertools.count(1)
        self.refused = 0
        self.finished = 0

    def try_open(self) -> SessionStats | None:
        if len(self.active) >= self.limits.max_sessions:
            self.refused += 1
            return None
        stats = SessionStats(next(self._ids))
        self.active[stats.id] = stats
        return stats

    def close(self, stats: SessionStats) -> None:
        if self.active.pop(stats.id, None) is not None:
            self.finished += 1


_STOP = object()  # in-queue marker: flush and end
_END = object()  # out-queue marker: send "end" and close


class _Session:
    """The three tasks of one connection (see the module docstring)."""

    STATS_EVERY_S = 1.0

    def __init__(self, ws: WebSocket, model: SeparationModel, model_name: str, limits: ServeLimits,
                 pool: Executor | None, stats: SessionStats):
        self.ws = ws
        self.model = model
        self.model_name = model_name
        self.limits = limits
        self.pool = pool
        self.stats = stats
        self.in_q: asyncio.Queue = asyncio.Queue(limits.queue_frames)
        self.out_q: asyncio.Queue = asyncio.Queue(limits.queue_frames)
        self.closing = False

    def _emit(self, item: Any) -> None:
        """Queue a message for the client; drop and count it when the client is not reading."""
        try:
            self.out_q.put_nowait(item)
        except asyncio.QueueFull:
            self.stats.dropped_out += 1

    def _reject(self, err: ProtocolError) -> None:
        self.stats.rejected += 1
        self._emit(protocol.error_message(err.code, str(err)))
        if self.stats.rejected >= self.limits.max_errors:
            raise ProtocolError("too_many_errors", f"{self.stats.rejected} rejected messages; closing the session")

    async def _receive_start(self) -> protocol.StartRequest:
        msg = await asyncio.wait_for(self.ws.receive(), self.limits.start_timeout_s)
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        if msg.get("text") is None:
            raise ProtocolError("expected_start", "the first message must be the JSON 'start' message, not binary")
        return protocol.parse_start(msg["text"])

    async def run(self) -> None:
        while True:  # a bad start message is answered and the client may try again
            try:
                start = await self._receive_start()
                break
            except ProtocolError as err:
                self._reject(err)
                await self._flush_direct()
        proc = StreamProcessor(self.model, start.sample_rate, quality=self.limits.resample_quality)
        self.stats.client_rate = start.sample_rate
        await self.ws.send_text(protocol.ready_message(
            session=self.stats.id,
            model=self.model_name,
            model_sample_rate=proc.model_rate,
            sample_rate=start.sample_rate,
            format=start.format,
            num_sources=proc.num_sources,
            latency_ms=self.model.latency_ms,
            resampler_delay_ms=round(proc.resampler_delay_ms, 3),
            max_frame_samples=self.limits.max_frame_samples,
            max_session_seconds=self.limits.max_session_seconds,
        ))
        tasks = [
            asyncio.create_task(self._receive(start)),
            asyncio.create_task(self._compute(proc)),
            asyncio.create_task(self._send()),
        ]
        try:
            await _join_failing_fast(tasks, drain_timeout_s=30.0)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _flush_direct(self) -> None:
        """Send what is queued from the calling task (before the sender task exists, or after it died)."""
        while not self.out_q.empty():
            item = self.out_q.get_nowait()
            if isinstance(item, bytes):
                await self.ws.send_bytes(item)
            elif isinstance(item, str):
                await self.ws.send_text(item)

    async def _receive(self, start: protocol.StartRequest) -> None:
        max_in = int(self.limits.max_session_seconds * start.sample_rate)
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(msg.get("code", 1000))
            try:
                if msg.get("bytes") is not None:
                    seq, samples = protocol.decode_audio_frame(msg["bytes"], start.format, self.limits.max_frame_samples)
                    if self.stats.seconds_in * start.sample_rate + samples.size > max_in:
                        self._emit(protocol.error_message(
                            "session_limit", f"session reached its limit of {self.limits.max_session_seconds:g} s"))
                        await self.in_q.put(_STOP)
                        return
                    self.stats.frames_in += 1
                    self.stats.seconds_in += samples.size / start.sample_rate
                    try:
                        self.in_q.put_nowait((seq, samples))
                    except asyncio.QueueFull:
                        self.stats.dropped_in += 1
                elif msg.get("text") is not None:
                    protocol.parse_control(msg["text"])  # only "stop" is valid
                    await self.in_q.put(_STOP)
                    return
            except ProtocolError as err:
                self._reject(err)

    async def _compute(self, proc: StreamProcessor) -> None:
        loop = asyncio.get_running_loop()
        last_stats = time.monotonic()
        seq = 0  # the newest client frame computed so far (the final flush has no frame of its own)
        while True:
            batch = [await self.in_q.get()]
            while not self.in_q.empty() and batch[-1] is not _STOP:
                batch.append(self.in_q.get_nowait())
            last = batch[-1] is _STOP
            frames = [b for b in batch if b is not _STOP]
            samples = np.concatenate([f[1] for f in frames]) if frames else np.zeros(0, np.float32)
            if frames:
                seq = frames[-1][0]
            out, start, compute_ms = await loop.run_in_executor(self.pool, functools.partial(proc.process, samples, last=last))
            self.stats.compute_s = proc.compute_s
            if out.shape[1]:
                self.stats.frames_out += 1
                self._emit(protocol.encode_output_frame(seq, start, out, compute_ms))
            now = time.monotonic()
            if now - last_stats >= self.STATS_EVERY_S:
                last_stats = now
                self._emit(json.dumps({"type": "stats", **self.stats.as_dict()}))
            if last:
                # the end marker must arrive: wait for room rather than drop it
                await self.out_q.put(_END)
                return

    async def _send(self) -> None:
        while True:
            item = await self.out_q.get()
            if item is _END:
                await self.ws.send_text(json.dumps({"type": "end", "stats": self.stats.as_dict()}))
                return
            if isinstance(item, bytes):
                await self.ws.send_bytes(item)
            else:
                await self.ws.send_text(item)


async def _join_failing_fast(tasks: list[asyncio.Task], drain_timeout_s: float) -> None:
    """Wait for all ``tasks``; the first exception cancels the rest and propagates.

    ``tasks[0]`` is the receiver: once it returns (the client said stop or hit a limit), the others
    get ``drain_timeout_s`` to deliver the remaining output, so a client that stops reading cannot
    hold its session open for ever.
    """
    pending = set(tasks)
    deadline = None
    while pending:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise asyncio.TimeoutError("session output not delivered in time")
        for task in done:
            if task.exception() is not None:
                raise task.exception()
        if deadline is None and tasks[0].done():
            deadline = time.monotonic() + drain_timeout_s


async def run_session(ws: WebSocket, model: SeparationModel, model_name: str, manager: SessionManager,
                      pool: Executor | None) -> None:
    """Serve one accepted WebSocket until stop, a limit, an error or the client's disconnect."""
    if not model.is_causal:
        await ws.send_text(protocol.error_message(
            "not_streaming", f"model {model_name!r} is not causal: use POST /api/separate for files"))
        await ws.close(code=1008)
        return
    stats = manager.try_open()
    if stats is None:
        await ws.send_text(protocol.error_message(
            "too_many_sessions", f"the server is at its limit of {manager.limits.max_sessions} sessions"))
        await ws.close(code=1013)  # "try again later"
        return
    session = _Session(ws, model, model_name, manager.limits, pool, stats)
    try:
        await session.run()
        await ws.close(code=1000)
    except (WebSocketDisconnect, OSError):  # uvicorn's ClientDisconnected is an OSError
        log.info("session %d: client disconnected after %.2f s of audio", stats.id, stats.seconds_in)
    except asyncio.TimeoutError:
        with contextlib.suppress(Exception):
            await ws.send_text(protocol.error_message("timeout", "no start message in time, or output not read"))
            await ws.close(code=1008)
    except ProtocolError as err:  # only the session-ending ones propagate
        with contextlib.suppress(Exception):
            await session._flush_direct()
            await ws.send_text(protocol.error_message(err.code, str(err)))
            await ws.close(code=1008)
    except Exception:
        log.exception("session %d failed", stats.id)
        with contextlib.suppress(Exception):
            await ws.send_text(protocol.error_message("internal", "the server failed on this session"))
            await ws.close(code=1011)
    finally:
        manager.close(stats)
