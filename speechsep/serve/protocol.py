"""The live-separation WebSocket protocol: message formats and their validation.

A session is one WebSocket connection to ``/ws/separate``. All integers are little-endian.

1. The client opens with a JSON text message::

       {"type": "start", "sample_rate": 48000, "format": "f32"}

   ``sample_rate`` is the rate of the audio the client sends and wants back (any integer in
   [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]); ``format`` is ``"f32"`` (float32 in [-1, 1]) or ``"s16"``
   (signed 16-bit PCM). The audio is mono.
2. The server answers ``{"type": "ready", ...}`` with the model's name, rate, number of sources,
   algorithmic latency and the session limits (see :func:`ready_message`).
3. The client sends **audio frames** as binary messages::

       offset 0  uint32  seq      the client's frame counter (echoed back, for latency measurement)
       offset 4  samples          n samples in the declared format (4 bytes each for f32, 2 for s16)

   ``n`` may be anything from 1 to the session's ``max_frame_samples``; frames need not be equal.
4. The server sends **separated frames** as binary messages, as soon as they are computed::

       offset 0   uint32   seq         seq of the newest client frame this output includes
       offset 4   uint32   start       index of this frame's first sample in the output stream
       offset 8   uint16   sources     C
       offset 10  uint16   flags       0 (reserved)
       offset 12  float32  compute_ms  model + resampling time spent on this frame on the server
       offset 16  float32 samples, source-major: C rows of m samples at the client's rate

   Output sample ``i`` of every source lines up with input sample ``i``: the resamplers compensate
   their own delay, so the only lag is the model's ``latency`` (announced in ``ready``). ``m`` varies
   (the resamplers emit in blocks; a frame may yield nothing). In all, a session returns exactly as
   many samples as it received: when the round trip through the model's rate rounds the length
   (44.1 kHz <-> 8 kHz, or odd lengths), the last frame is cut or ends with a few zeros to match.
5. The client may send ``{"type": "stop"}``: the server flushes the resamplers, sends the remaining
   separated samples, then ``{"type": "end", "stats": {...}}`` and closes.

Errors are JSON ``{"type": "error", "code": ..., "message": ...}``. A malformed frame (bad length,
non-finite samples, too long, audio before ``start``) is rejected *before* it touches the session's
streaming state, so the session goes on as if the frame had never been sent; codes that end the
session (``session_limit``, ``too_many_sessions``, ``too_many_errors``) are followed by a close.
The server also sends ``{"type": "stats", ...}`` about once a second (frames received, dropped,
rejected, real-time factor).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

import numpy as np

__all__ = [
    "ProtocolError",
    "StartRequest",
    "parse_start",
    "parse_control",
    "decode_audio_frame",
    "encode_audio_frame",
    "encode_output_frame",
    "decode_output_frame",
    "OutputFrame",
    "error_message",
    "ready_message",
    "IN_HEADER",
    "OUT_HEADER",
    "FORMATS",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
]

#: client -> server frame header: seq
IN_HEADER = struct.Struct("<I")
#: server -> client frame header: seq, start, sources, flags, compute_ms
OUT_HEADER = struct.Struct("<IIHHf")
#: sample format name -> numpy dtype of the wire samples
FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000


class ProtocolError(ValueError):
    """A message that breaks the protocol; ``code`` is sent to the client with the message."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class StartRequest:
    sample_rate: int
    format: str


def _load_json(text: str) -> dict[str, Any]:
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProtocolError("bad_json", f"text message is not JSON: {err}") from err
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", "a text message must be a JSON object with a string 'type'")
    return msg


def parse_start(text: str) -> StartRequest:
    """The first message of a session; raises :class:`ProtocolError` naming what is wrong."""
    msg = _load_json(text)
    if msg["type"] != "start":
        raise ProtocolError("expected_start", f"the first message must be type 'start', got {msg['type']!r}")
    rate = msg.get("sample_rate")
    # bool is an int subclass; True is not a sample rate
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ProtocolError(
            "bad_sample_rate", f"sample_rate must be an integer in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}], got {rate!r}"
        )
    fmt = msg.get("format", "f32")
    if fmt not in FORMATS:
        raise ProtocolError("bad_format", f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    return StartRequest(sample_rate=rate, format=fmt)


def parse_control(text: str) -> str:
    """A text message after ``start``: returns its type (only ``stop`` is defined)."""
    msg = _load_json(text)
    if msg["type"] != "stop":
        raise ProtocolError("bad_message", f"unknown message type {msg['type']!r} (expected 'stop')")
    return msg["type"]


def decode_audio_frame(data: bytes, fmt: str, max_samples: int) -> tuple[int, np.ndarray]:
    """``(seq, samples float32 (n,))`` from a client frame, or :class:`ProtocolError`.

    Every check happens here, before the samples reach any streaming state.
    """
    dtype = FORMATS[fmt]
    payload = len(data) - IN_HEADER.size
    if payload <= 0:
        raise ProtocolError("bad_frame", f"frame of {len(data)} bytes has no samples after the {IN_HEADER.size}-byte header")
    if payload % dtype.itemsize:
        raise ProtocolError(
            "bad_frame", f"{payload} payload bytes is not a whole number of {fmt} samples ({dtype.itemsize} bytes each)"
        )
    n = payload // dtype.itemsize
    if n > max_samples:
        raise ProtocolError("frame_too_large", f"frame has {n} samples; this server accepts at most {max_samples}")
    (seq,) = IN_HEADER.unpack_from(data)
    samples = np.frombuffer(data, dtype=dtype, offset=IN_HEADER.size)
    if fmt == "s16":
        samples = samples.astype(np.float32) / 32768.0
    else:
        samples = samples.astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise ProtocolError("bad_samples", "frame contains NaN or Inf samples")
    return seq, samples


def encode_audio_frame(seq: int, samples: np.ndarray, fmt: str = "f32") -> bytes:
    """Client side of :func:`decode_audio_frame` (used by the Python client and the tests)."""
    samples = np.asarray(samples, dtype=np.float32)
    if fmt == "s16":
        wire = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(FORMATS["s16"])
    else:
        wire = samples.astype(FORMATS["f32"])
    return IN_HEADER.pack(seq & 0xFFFFFFFF) + wire.tobytes()


@dataclasses.dataclass(frozen=True)
class OutputFrame:
    seq: int
    start: int
    compute_ms: float
    #: (C, m) float32
    sources: np.ndarray


def encode_output_frame(seq: int, start: int, sources: np.ndarray, compute_ms: float) -> bytes:
    """``sources (C, m)`` -> one server frame (see the module docstring)."""
    if sources.ndim != 2:
        raise ValueError(f"sources must be (C, m), got shape {sources.shape}")
    header = OUT_HEADER.pack(seq & 0xFFFFFFFF, start & 0xFFFFFFFF, sources.shape[0], 0, float(compute_ms))
    return header + np.ascontiguousarray(sources, dtype=FORMATS["f32"]).tobytes()


def decode_output_frame(data: bytes) -> OutputFrame:
    if len(data) < OUT_HEADER.size:
        raise ProtocolError("bad_frame", f"server frame of {len(data)} bytes is shorter than its header")
    seq, start, c, _flags, compute_ms = OUT_HEADER.unpack_from(data)
    samples = np.frombuffer(data, dtype=FORMATS["f32"], offset=OUT_HEADER.size)
    if c == 0 or samples.size % c:
        raise ProtocolError("bad_frame", f"{samples.size} samples do not split into {c} sources")
    return OutputFrame(seq, start, compute_ms, samples.reshape(c, -1).astype(np.float32))


def error_message(code: str, message: str) -> str:
    return json.dumps({"type": "error", "code": code, "message": message})


def ready_message(**fields: Any) -> str:
    """``{"type": "ready", ...}``: model, model_sample_rate, sample_rate, num_sources, latency_ms,
    resampler_delay_ms, max_frame_samples, max_session_seconds, session id."""
    return json.dumps({"type": "ready", **fields})
