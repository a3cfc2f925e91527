"""``speechsep serve``: the live separation server (WebSocket streaming, file upload, browser page)."""

from __future__ import annotations

import argparse
import logging
import os

NAME = "serve"
HELP = "serve live separation over WebSocket with a browser page (and file upload) on 127.0.0.1"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speechsep.serve.limits import RESAMPLE_QUALITIES, ServeLimits

    d = ServeLimits()
    parser.add_argument("--model", metavar="NAME|PATH", help="checkpoint, run folder, bundled model, or a preset "
                        "name (random weights: timing only); default: the bundled causal model (tfacm-lite)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-sessions", type=int, default=d.max_sessions, help=f"concurrent live sessions (default {d.max_sessions})")
    parser.add_argument("--max-frame-samples", type=int, default=d.max_frame_samples,
                        help=f"samples per client frame (default {d.max_frame_samples})")
    parser.add_argument("--max-session-seconds", type=float, default=d.max_session_seconds,
                        help=f"audio seconds per live session (default {d.max_session_seconds:g})")
    parser.add_argument("--max-upload-mb", type=float, default=d.max_upload_bytes / 2**20,
                        help=f"upload size limit in MiB (default {d.max_upload_bytes / 2**20:g})")
    parser.add_argument("--queue-frames", type=int, default=d.queue_frames,
                        help=f"frames queued per session and direction before dropping (default {d.queue_frames})")
    parser.add_argument("--resample-quality", choices=RESAMPLE_QUALITIES, default=d.resample_quality,
                        help="soxr quality of the live resamplers (default %(default)s: low delay)")
    parser.add_argument("--compute-threads", type=int, default=os.cpu_count() or 1,
                        help="threads running model steps (default: the CPU count)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads per step (default 1: sessions run in parallel instead)")


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from speechsep.serve.app import create_app
    from speechsep.serve.sessions import ServeLimits

    limits = ServeLimits(
        max_sessions=args.max_sessions,
        max_frame_samples=args.max_frame_samples,
        max_session_seconds=args.max_session_seconds,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        queue_frames=args.queue_frames,
        resample_quality=args.resample_quality,
    )
    from speechsep.inference.pretrained import default_causal_name, resolve

    torch.set_num_threads(args.torch_threads)
    name = args.model or default_causal_name()
    model = resolve(name, device="cpu", presets=True)
    if not model.is_causal:
        log.warning("%s is not causal: live streaming is refused, only file upload (POST /api/separate) works",
                    name)
    app = create_app(model, model_name=name, limits=limits, compute_threads=args.compute_threads)
    print(f"speechsep serve: {name} ({model.num_sources} sources, {model.sample_rate} Hz, "
          f"latency {model.latency_ms:.1f} ms) on http://{args.host}:{args.port}/")
    # A frame is at most max_frame_samples float32 plus its header: refuse larger messages before
    # they are buffered. Audio does not compress, so per-message deflate would only cost CPU.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", ws_per_message_deflate=False,
                ws_max_size=4 * args.max_frame_samples + 64)
    return 0
