"""What a live server lets a client consume (``ServeLimits``), apart from the server itself so the
CLI can describe its options without the serve extra (FastAPI, Starlette) installed."""

from __future__ import annotations

import dataclasses

__all__ = ["ServeLimits", "RESAMPLE_QUALITIES"]

#: soxr quality names. Measured here (48 kHz <-> 8 kHz, 16 ms frames): "HQ" emits output in bursts
#: about 9 frames (144 ms) apart each way; "LQ" every 2-3 frames (~40 ms); "QQ" (cubic, no
#: anti-alias filter) every frame. "LQ" is the live default: a real filter at a tolerable delay.
RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")


@dataclasses.dataclass
class ServeLimits:
    """Everything a client can consume is capped here (all configurable from ``speechsep serve``)."""

    #: concurrent live sessions; one more is refused with ``too_many_sessions``
    max_sessions: int = 8
    #: samples in one client frame, at the client's rate (16384 is 340 ms at 48 kHz)
    max_frame_samples: int = 16384
    #: audio seconds one session may stream before it is ended with ``session_limit``
    max_session_seconds: float = 3600.0
    #: bytes of an uploaded file for ``POST /api/separate``
    max_upload_bytes: int = 50 * 1024 * 1024
    #: frames held in each of a session's two queues before new ones are dropped
    queue_frames: int = 32
    #: rejected messages after which a session is closed (a client that only sends garbage)
    max_errors: int = 100
    #: seconds a new connection has to send its ``start`` message
    start_timeout_s: float = 10.0
    #: soxr quality of the live resamplers (see RESAMPLE_QUALITIES)
    resample_quality: str = "LQ"

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_frame_samples", "max_upload_bytes", "queue_frames", "max_errors"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServeLimits.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_session_seconds <= 0 or self.start_timeout_s <= 0:
            raise ValueError("ServeLimits.max_session_seconds and start_timeout_s must be positive")
        if self.resample_quality not in RESAMPLE_QUALITIES:
            raise ValueError(f"resample_quality must be one of {RESAMPLE_QUALITIES}, got {self.resample_quality!r}")
