"""Frame formats: round trips, and every malformed frame rejected with its own code."""

import json

import numpy as np
import pytest

from speechsep.serve import protocol
from speechsep.serve.protocol import ProtocolError


def test_audio_frame_round_trip_f32_and_s16():
    x = np.array([0.0, 0.5, -0.25, 0.999], dtype=np.float32)
    seq, y = protocol.decode_audio_frame(protocol.encode_audio_frame(7, x, "f32"), "f32", 16)
    assert seq == 7 and np.array_equal(x, y)
    seq, y = protocol.decode_audio_frame(protocol.encode_audio_frame(9, x, "s16"), "s16", 16)
    assert seq == 9 and np.max(np.abs(x - y)) <= 1 / 32768


def test_output_frame_round_trip():
    src = np.arange(6, dtype=np.float32).reshape(2, 3)
    frame = protocol.decode_output_frame(protocol.encode_output_frame(3, 100, src, 1.5))
    assert (frame.seq, frame.start, frame.compute_ms) == (3, 100, 1.5)
    assert np.array_equal(frame.sources, src)


@pytest.mark.parametrize(
    "data, fmt, code",
    [
        (b"\x00\x00", "f32", "bad_frame"),  # shorter than the header
        (b"\x00\x00\x00\x00", "f32", "bad_frame"),  # header, no samples
        (b"\x00" * 4 + b"\x00" * 6, "f32", "bad_frame"),  # 6 bytes is not whole float32 samples
        (b"\x00" * 4 + b"\x00" * 3, "s16", "bad_frame"),
        (b"\x00" * 4 + np.full(3, np.nan, np.float32).tobytes(), "f32", "bad_samples"),
        (b"\x00" * 4 + np.zeros(17, np.float32).tobytes(), "f32", "frame_too_large"),
    ],
)
def test_malformed_audio_frames(data, fmt, code):
    with pytest.raises(ProtocolError) as info:
        protocol.decode_audio_frame(data, fmt, max_samples=16)
    assert info.value.code == code


@pytest.mark.parametrize(
    "text, code",
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_message"),
        (json.dumps({"type": "stop"}), "expected_start"),
        (json.dumps({"type": "start", "sample_rate": 100}), "bad_sample_rate"),
        (json.dumps({"type": "start", "sample_rate": True}), "bad_sample_rate"),
        (json.dumps({"type": "start", "sample_rate": 16000, "format": "mp3"}), "bad_format"),
    ],
)
def test_bad_start_messages(text, code):
    with pytest.raises(ProtocolError) as info:
        protocol.parse_start(text)
    assert info.value.code == code


def test_good_start_defaults_to_float32():
    req = protocol.parse_start(json.dumps({"type": "start", "sample_rate": 44100}))
    assert req == protocol.StartRequest(44100, "f32")
