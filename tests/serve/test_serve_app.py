"""The app through its real transports: HTTP and WebSocket, with the limits enforced."""

import asyncio
import io
import json
import socket

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from serve_testkit import GainSeparator, offline_reference, two_tone_mixture

from speechsep.inference.separate import separate_waveform
from speechsep.models.base import ModelConfig
from speechsep.serve import protocol
from speechsep.serve.app import create_app
from speechsep.serve.client import load_test, stream_to_server
from speechsep.serve.sessions import ServeLimits

RATE = 16000


def _client(model, **limits) -> TestClient:
    return TestClient(create_app(model, model_name="toy", limits=ServeLimits(**limits), compute_threads=1))


def _start(ws, rate=RATE, fmt="f32") -> dict:
    ws.send_text(json.dumps({"type": "start", "sample_rate": rate, "format": fmt}))
    ready = json.loads(ws.receive_text())
    assert ready["type"] == "ready", ready
    return ready


def _finish(ws) -> tuple[np.ndarray, dict, list]:
    """Send stop; collect output frames until "end"; return (sources, end stats, errors)."""
    ws.send_text(json.dumps({"type": "stop"}))
    chunks, errors = [], []
    for _ in range(10_000):  # bounded
        msg = ws.receive()
        if msg.get("bytes") is not None:
            chunks.append(protocol.decode_output_frame(msg["bytes"]).sources)
            continue
        body = json.loads(msg["text"])
        if body["type"] == "end":
            return np.concatenate(chunks, axis=1), body["stats"], errors
        if body["type"] == "error":
            errors.append(body)
    raise AssertionError("no end message")


def _wav_bytes(wav, rate, subtype="PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wav, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def test_info_and_page(model):
    with _client(model, max_sessions=3) as client:
        info = client.get("/api/info").json()
        assert info["num_sources"] == 2 and info["limits"]["max_sessions"] == 3 and info["sessions"]["active"] == 0
        page = client.get("/")
        assert page.status_code == 200 and "speechsep" in page.text and "app.js" in page.text
        assert client.get("/static/app.js").status_code == 200


def test_malformed_frames_leave_the_stream_consistent(model):
    """Garbage between good frames is answered with errors; the output equals a clean stream's."""
    wav = two_tone_mixture(RATE, 0.5)
    frames = np.array_split(wav, 25)
    with _client(model, max_frame_samples=2000) as client, client.websocket_connect("/ws/separate") as ws:
        _start(ws)
        bad = [b"\x01\x02", b"\x00" * 4 + b"\x00" * 7, protocol.encode_audio_frame(0, np.full(4, np.inf)),
               protocol.encode_audio_frame(0, np.zeros(2001)), "not json", json.dumps({"type": "pause"})]
        for i, frame in enumerate(frames):
            ws.send_bytes(protocol.encode_audio_frame(i, frame))
            if i < len(bad):
                junk = bad[i]
                ws.send_text(junk) if isinstance(junk, str) else ws.send_bytes(junk)
        got, stats, errors = _finish(ws)
    codes = [e["code"] for e in errors]
    assert codes == ["bad_frame", "bad_frame", "bad_samples", "frame_too_large", "bad_json", "bad_message"]
    assert stats["rejected"] == 6 and stats["frames_in"] == 25 and stats["dropped_in"] == 0
    ref = offline_reference(model, wav, RATE)
    assert got.shape == ref.shape and np.max(np.abs(got - ref)) < 1e-5


def test_pcm16_frames_and_binary_before_start(model):
    wav = two_tone_mixture(RATE, 0.3)
    with _client(model) as client, client.websocket_connect("/ws/separate") as ws:
        ws.send_bytes(protocol.encode_audio_frame(0, wav[:100]))  # audio before "start"
        assert json.loads(ws.receive_text())["code"] == "expected_start"
        _start(ws, fmt="s16")
        for i, frame in enumerate(np.array_split(wav, 10)):
            ws.send_bytes(protocol.encode_audio_frame(i, frame, "s16"))
        got, stats, _ = _finish(ws)
    ref = offline_reference(model, np.round(wav * 32768) / 32768, RATE)
    assert np.max(np.abs(got - ref)) < 1e-5 and stats["rejected"] == 1


def test_session_length_limit_ends_the_session(model):
    with _client(model, max_session_seconds=0.1) as client, client.websocket_connect("/ws/separate") as ws:
        _start(ws)
        frame = protocol.encode_audio_frame(0, np.zeros(int(RATE * 0.04), np.float32))
        msgs = []
        for _ in range(4):  # the third frame crosses 0.1 s
            ws.send_bytes(frame)
        for _ in range(100):
            msg = ws.receive()
            if msg["type"] == "websocket.close":
                break
            if msg.get("text"):
                msgs.append(json.loads(msg["text"]))
        assert [m["code"] for m in msgs if m["type"] == "error"] == ["session_limit"]
        end = [m for m in msgs if m["type"] == "end"]
        assert end and end[0]["stats"]["frames_in"] == 2


def test_session_count_limit_and_slot_freed_on_disconnect(serve):
    base = serve(max_sessions=1)
    url = base.replace("http", "ws") + "/ws/separate"
    start = json.dumps({"type": "start", "sample_rate": 8000})

    async def scenario():
        from websockets.asyncio.client import connect

        async with httpx.AsyncClient(base_url=base) as http:
            ws1 = await connect(url)
            await ws1.send(start)
            assert json.loads(await ws1.recv())["type"] == "ready"
            await ws1.send(protocol.encode_audio_frame(0, np.zeros(160, np.float32)))
            async with connect(url) as ws2:
                refused = json.loads(await ws2.recv())
            # ws1 leaves mid-stream, without "stop", by dropping its TCP connection
            ws1.transport.abort()
            for _ in range(500):  # bounded wait for the server to notice
                info = (await http.get("/api/info")).json()["sessions"]
                if info["active"] == 0:
                    break
                await asyncio.sleep(0.01)
            async with connect(url) as ws3:  # the slot is free again and a new stream works
                await ws3.send(start)
                assert json.loads(await ws3.recv())["type"] == "ready"
                await ws3.send(protocol.encode_audio_frame(0, np.full(160, 0.1, np.float32)))
                await ws3.send(json.dumps({"type": "stop"}))
                frames = [m async for m in ws3 if isinstance(m, bytes)]
        return refused, info, frames

    refused, info, frames = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert refused["code"] == "too_many_sessions"
    assert info["active"] == 0 and info["refused"] == 1
    assert sum(protocol.decode_output_frame(f).sources.shape[1] for f in frames) == 160


def test_upload_separates_the_whole_file(model):
    wav = two_tone_mixture(RATE, 0.7)
    with _client(model) as client:
        resp = client.post("/api/separate", content=_wav_bytes(wav, RATE, "FLOAT"))
        assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
        out, sr = sf.read(io.BytesIO(resp.content), dtype="float32", always_2d=True)
    assert sr == RATE and out.shape == (wav.size, 2)
    assert np.max(np.abs(out.T - separate_waveform(model, wav, RATE))) < 1e-6
    # and it is the model's separation, not a copy of the input
    assert np.max(np.abs(out[:, 0] - wav)) > 1e-2


def test_upload_limits_and_bad_files(model):
    wav = two_tone_mixture(RATE, 0.5)
    data = _wav_bytes(wav, RATE)
    with _client(model, max_upload_bytes=len(data) - 1) as client:
        assert client.post("/api/separate", content=data).status_code == 413

        def chunks():  # no content-length: the limit holds while streaming
            yield data[:1000]
            yield data[1000:]

        assert client.post("/api/separate", content=chunks()).status_code == 413
        bad = client.post("/api/separate", content=b"RIFF not really a wav")
        assert bad.status_code == 422 and "cannot be decoded" in bad.json()["detail"]
        # the message names the upload, not the repr of an in-memory buffer
        assert "the upload" in bad.json()["detail"] and "BytesIO" not in bad.json()["detail"]
        assert client.post("/api/separate", content=b"").status_code == 422


def test_concurrent_clients_get_their_own_streams(model, serve):
    base = serve(max_sessions=4)
    url = base.replace("http", "ws") + "/ws/separate"
    rate = 48000
    wavs = [two_tone_mixture(rate, 0.5, seed=s) for s in range(3)]

    async def run_all():
        return await asyncio.gather(*(stream_to_server(url, w, rate, frame_ms=16, realtime=False) for w in wavs))

    results = asyncio.run(asyncio.wait_for(run_all(), 60))
    for wav, res in zip(wavs, results, strict=True):
        ref = offline_reference(model, wav, rate)
        assert res.end["dropped_in"] == 0 and res.end["dropped_out"] == 0
        assert res.sources.shape == ref.shape and np.max(np.abs(res.sources - ref)) < 1e-5
    # three different inputs, three different outputs: no state leaked between sessions
    assert np.max(np.abs(results[0].sources - results[1].sources)) > 1e-2


def test_real_time_client_latency_is_recorded(model, serve):
    base = serve()
    url = base.replace("http", "ws") + "/ws/separate"
    wav = two_tone_mixture(8000, 0.4)
    (res,) = asyncio.run(asyncio.wait_for(load_test(url, wav, 8000, 1), 30))
    # same rate: an output frame per computed step, and a late step covers every frame waiting for it
    assert 0 < len(res.frame_latency_ms) <= res.frames_sent and res.sources.shape == (2, wav.size)
    assert 0 < np.median(res.frame_latency_ms) < 1000
    assert res.ready["latency_ms"] == pytest.approx(1000 * model.latency / 8000)


def _flood(base: str, frame: bytes, field: str, max_queue: int | None, pause_s: float = 0.0) -> dict | None:
    """Send ``frame`` repeatedly (``pause_s`` apart), never reading; return the live stats once ``field`` > 0."""

    async def run():
        from websockets.asyncio.client import connect

        # a small receive buffer, set before connecting, so a stalled reader backs up quickly
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        async with connect(base.replace("http", "ws") + "/ws/separate", sock=sock, max_queue=max_queue,
                           max_size=2**24, close_timeout=0.5) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 8000}))
            await ws.recv()
            async with httpx.AsyncClient(base_url=base) as http:
                for i in range(2000):  # bounded
                    await ws.send(frame)
                    await asyncio.sleep(pause_s)
                    if i % 10 == 0:
                        live = (await http.get("/api/info")).json()["sessions"]["live"]
                        if live and live[0][field] > 0:
                            return live[0]
        return None

    return asyncio.run(asyncio.wait_for(run(), 60))


def test_fast_sender_gets_input_dropped_not_queued(serve):
    """Audio arriving faster than the model computes: the input queue stays bounded, drops count."""
    base = serve(queue_frames=2, max_frame_samples=16000)
    stats = _flood(base, protocol.encode_audio_frame(0, np.full(16000, 0.1, np.float32)), "dropped_in", None)
    assert stats is not None and stats["dropped_in"] > 0 and stats["frames_in"] > stats["frames_out"]


def test_slow_reader_gets_output_dropped_not_buffered(serve):
    """A client that never reads: once the socket buffers are full the server drops and counts output."""
    base = serve(GainSeparator(ModelConfig()), queue_frames=2, max_frame_samples=16000)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)  # incompressible
    stats = _flood(base, protocol.encode_audio_frame(0, noise), "dropped_out", 1, 0.001)
    assert stats is not None and stats["dropped_out"] > 0


def test_loadtest_reports_a_held_round(model, serve):
    """The measuring script end to end against a live server (its numbers go in bench/fragments/serve.md)."""
    from bench.serve_load import summarize_round

    base = serve()
    wav = two_tone_mixture(8000, 0.5)
    results = asyncio.run(asyncio.wait_for(load_test(base.replace("http", "ws") + "/ws/separate", wav, 8000, 2), 30))
    held = summarize_round(results, hold_ms=1000.0)
    assert held.clients == 2 and held.dropped == 0 and held.held
    assert 0 < held.frame_p50_ms <= held.frame_p95_ms < 1000
    assert not summarize_round(results, hold_ms=0.0).held  # an impossible bound fails the round
    results[0].end["dropped_in"] = 1
    assert not summarize_round(results, hold_ms=1000.0).held  # so does a single dropped frame


def test_output_seq_never_goes_back_even_for_the_final_flush(serve):
    """The resamplers' flush after "stop" belongs to the last frame sent: its seq must say so, or a
    client would time it against the first frame (a latency as long as the whole session)."""
    base = serve()
    wav = two_tone_mixture(48000, 0.3)
    frames = np.array_split(wav, 18)

    async def scenario():
        from websockets.asyncio.client import connect

        seqs, total, flushed = [], 0, None
        async with connect(base.replace("http", "ws") + "/ws/separate") as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 48000}))
            assert json.loads(await ws.recv())["type"] == "ready"
            for i, frame in enumerate(frames):
                await ws.send(protocol.encode_audio_frame(i, frame))
            while True:
                try:
                    # quiet for a second: every frame is computed, so "stop" makes a flush of its own
                    msg = await asyncio.wait_for(ws.recv(), 1.0 if flushed is None else 30.0)
                except asyncio.TimeoutError:
                    assert flushed is None, "no end after stop"
                    flushed = total
                    await ws.send(json.dumps({"type": "stop"}))
                    continue
                if isinstance(msg, bytes):
                    out = protocol.decode_output_frame(msg)
                    seqs.append(out.seq)
                    total += out.sources.shape[1]
                elif json.loads(msg)["type"] == "end":
                    return seqs, total, flushed

    seqs, total, flushed = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert wav.size > flushed > 0  # the resamplers still held samples when "stop" came
    assert total == wav.size and seqs == sorted(seqs) and seqs[-1] == len(frames) - 1
