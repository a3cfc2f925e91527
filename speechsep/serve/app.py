"""The live-separation ASGI app: WebSocket streaming, file upload and the browser page.

Routes:
    GET  /                 the page (static/index.html)
    GET  /static/...       its script and style
    GET  /api/info         model, limits and live session counts (JSON)
    WS   /ws/separate      live streaming separation (protocol in :mod:`speechsep.serve.protocol`)
    POST /api/separate     body: an audio file (wav/flac/ogg); answer: a float32 WAV with one channel
                           per separated source, at the file's sample rate. The same code path as
                           ``speechsep separate``: speechsep.inference.separate.separate_waveform

Model compute runs in a thread pool, never on the event loop, so one client's step cannot stall
another client's frames (torch releases the GIL inside its kernels).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from speechsep.audio import AudioError, validate_waveform
from speechsep.inference.separate import limit_peak, separate_waveform
from speechsep.models.base import SeparationModel
from speechsep.serve.sessions import ServeLimits, SessionManager, run_session

__all__ = ["create_app", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes without buffering past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
    return bytes(body)


def _decode_upload(data: bytes) -> tuple[np.ndarray, int]:
    if not data:
        raise AudioError("upload", "empty body: send the audio file as the request body")
    buffer = io.BytesIO(data)
    try:
        wav, sr = sf.read(buffer, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types; all mean "cannot decode"
        # libsndfile names its source, here the repr of the in-memory buffer: name the upload instead
        problem = str(err).replace(repr(buffer), "the upload")
        raise AudioError("upload", f"cannot be decoded as wav/flac/ogg ({type(err).__name__}: {problem})") from err
    wav = validate_waveform(wav.T, "upload")  # (channels, T)
    return wav.mean(axis=0), int(sr)


def create_app(
    model: SeparationModel,
    *,
    model_name: str = "",
    limits: ServeLimits | None = None,
    compute_threads: int | None = None,
) -> FastAPI:
    """Build the app around one loaded model (shared by every session; ``step`` never mutates it).

    ``compute_threads`` sizes the thread pool that runs the model (default: the CPU count).
    """
    limits = limits or ServeLimits()
    model.eval()
    manager = SessionManager(limits)
    pool = ThreadPoolExecutor(max_workers=compute_threads or os.cpu_count() or 1, thread_name_prefix="speechsep-compute")
    name = model_name or model.family

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="speechsep live separation", lifespan=lifespan)
    app.state.manager = manager
    app.state.model = model
    app.state.pool = pool

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/info")
    async def info() -> JSONResponse:
        return JSONResponse({
            "model": name,
            "family": model.family,
            "sample_rate": model.sample_rate,
            "num_sources": model.num_sources,
            "is_causal": model.is_causal,
            "latency_ms": model.latency_ms,
            "limits": {
                "max_sessions": limits.max_sessions,
                "max_frame_samples": limits.max_frame_samples,
                "max_session_seconds": limits.max_session_seconds,
                "max_upload_bytes": limits.max_upload_bytes,
                "queue_frames": limits.queue_frames,
                "resample_quality": limits.resample_quality,
            },
            "sessions": {
                "active": len(manager.active),
                "refused": manager.refused,
                "finished": manager.finished,
                "live": [s.as_dict() for s in manager.active.values()],
            },
        })

    @app.websocket("/ws/separate")
    async def ws_separate(ws: WebSocket) -> None:
        await ws.accept()
        await run_session(ws, model, name, manager, pool)

    @app.post("/api/separate")
    async def separate_upload(request: Request) -> Response:
        data = await _read_limited(request, limits.max_upload_bytes)
        try:
            wav, sr = _decode_upload(data)
        except AudioError as err:
            raise HTTPException(422, str(err)) from err
        loop = asyncio.get_running_loop()
        sources = limit_peak(await loop.run_in_executor(pool, separate_waveform, model, wav, sr), "upload")
        out = io.BytesIO()
        sf.write(out, sources.T, sr, subtype="FLOAT", format="WAV")
        return Response(out.getvalue(), media_type="audio/wav",
                        headers={"X-Num-Sources": str(sources.shape[0]), "X-Sample-Rate": str(sr)})

    return app
