"""A Python client for the live protocol: stream a waveform, collect the separated sources and timings.

Used by the tests and to measure the server (latency on loopback, concurrent clients)::

    result = asyncio.run(stream_to_server("ws://127.0.0.1:8000/ws/separate", wav, 48000, frame_ms=16))
    result.sources          # (C, T) at 48 kHz, aligned with wav (delayed by the model's latency)
    result.sample_latency_ms  # per output frame: received - sent time of the input sample it ends at

Two latencies are recorded per output frame:

* ``frame_latency_ms``: received time minus the send time of the newest input frame it includes
  (network + queueing + compute);
* ``sample_latency_ms``: received time minus the send time of the input frame holding the same
  stream position as the frame's last output sample. It adds the resamplers' buffering. The
  model's algorithmic latency (``ready["latency_ms"]``) comes on top for a listener.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import json
import time
from typing import Any

import numpy as np

from speechsep.serve import protocol

__all__ = ["StreamResult", "stream_to_server", "load_test", "percentile_summary"]


@dataclasses.dataclass
class StreamResult:
    ready: dict[str, Any]
    #: (C, T) separated sources at the client's rate
    sources: np.ndarray
    frame_latency_ms: list[float]
    sample_latency_ms: list[float]
    compute_ms: list[float]
    #: the server's final stats ("end" message), empty when the session did not end cleanly
    end: dict[str, Any]
    errors: list[dict[str, Any]]
    stats: list[dict[str, Any]]
    frames_sent: int


async def stream_to_server(
    url: str,
    wav: np.ndarray,
    sample_rate: int,
    *,
    frame_ms: float = 16.0,
    fmt: str = "f32",
    realtime: bool = True,
    timeout_s: float = 60.0,
) -> StreamResult:
    """Send ``wav (T,)`` in ``frame_ms`` frames (paced in real time unless ``realtime=False``), then
    ``stop``; return everything the server sent back. Bounded by ``timeout_s``."""
    from websockets.asyncio.client import connect

    wav = np.asarray(wav, dtype=np.float32)
    frame = max(1, round(sample_rate * frame_ms / 1000.0))
    bounds = list(range(0, wav.shape[0], frame))
    sent_at: list[float] = []  # per frame seq
    ends: list[int] = []  # cumulative input samples after each frame
    chunks: list[np.ndarray] = []
    frame_lat: list[float] = []
    sample_lat: list[float] = []
    compute: list[float] = []
    errors: list[dict[str, Any]] = []
    stats: list[dict[str, Any]] = []
    end: dict[str, Any] = {}

    async with connect(url, max_size=2**24, open_timeout=timeout_s) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": sample_rate, "format": fmt}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if ready.get("type") != "ready":
            raise RuntimeError(f"server refused the session: {ready}")

        async def receive() -> None:
            async for msg in ws:
                now = time.perf_counter()
                if isinstance(msg, bytes):
                    out = protocol.decode_output_frame(msg)
                    chunks.append(out.sources)
                    compute.append(out.compute_ms)
                    if out.seq < len(sent_at):
                        frame_lat.append(1000.0 * (now - sent_at[out.seq]))
                    last = out.start + out.sources.shape[1] - 1
                    k = bisect.bisect_right(ends, last)  # the frame that holds input sample `last`
                    if k < len(sent_at):
                        sample_lat.append(1000.0 * (now - sent_at[k]))
                    continue
                body = json.loads(msg)
                if body["type"] == "end":
                    end.update(body["stats"])
                    return
                (errors if body["type"] == "error" else stats).append(body)

        receiver = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for seq, start in enumerate(bounds):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + seq * frame / sample_rate - time.perf_counter()))
            piece = wav[start : start + frame]
            sent_at.append(time.perf_counter())
            ends.append(start + piece.shape[0])
            await ws.send(protocol.encode_audio_frame(seq, piece, fmt))
        await ws.send(json.dumps({"type": "stop"}))
        try:
            await asyncio.wait_for(receiver, timeout_s)
        finally:
            receiver.cancel()
    c = int(ready["num_sources"])
    sources = np.concatenate(chunks, axis=1) if chunks else np.zeros((c, 0), np.float32)
    return StreamResult(ready, sources, frame_lat, sample_lat, compute, end, errors, stats, len(bounds))


async def load_test(url: str, wav: np.ndarray, sample_rate: int, clients: int, *, frame_ms: float = 16.0,
                    timeout_s: float = 120.0) -> list[StreamResult]:
    """``clients`` concurrent real-time streams of the same waveform, started 5 ms apart."""

    async def one(i: int) -> StreamResult:
        await asyncio.sleep(0.005 * i)
        return await stream_to_server(url, wav, sample_rate, frame_ms=frame_ms, timeout_s=timeout_s)

    return list(await asyncio.gather(*(one(i) for i in range(clients))))


def percentile_summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values)
    return {"n": int(arr.size), "p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "max": float(arr.max())}
