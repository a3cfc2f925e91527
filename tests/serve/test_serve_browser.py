"""The page in a real headless Chromium: a fake microphone fed from a wav streams through the server,
and the separated audio that comes back to the page equals the model's offline output.

Chromium is driven through chromedriver's W3C HTTP API with httpx (no Selenium needed). Everything
listens on 127.0.0.1 only. Install the browser with ``scripts/install-browser.sh``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from serve_testkit import free_port, offline_reference, running_server, streamed_reference, two_tone_mixture

import speechsep
from bench.serve_load import stop_process
from speechsep.serve.app import create_app
from speechsep.serve.sessions import ServeLimits

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: run scripts/install-browser.sh"),
]


class Browser:
    """A minimal W3C WebDriver client over httpx: just what these tests use."""

    def __init__(self, driver_url: str, session: str):
        self.http = httpx.Client(base_url=f"{driver_url}/session/{session}", timeout=60)

    def _call(self, method: str, path: str, body: dict | None = None):
        resp = self.http.request(method, path, json=body)
        value = resp.json().get("value")
        if resp.status_code != 200:
            raise RuntimeError(f"webdriver {method} {path}: {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def js(self, script: str):
        return self._call("POST", "/execute/sync", {"script": script, "args": []})

    def upload(self, css: str, path: Path) -> None:
        """Give ``path`` to the file input matched by ``css`` (as a user picking the file would)."""
        element = self._call("POST", "/element", {"using": "css selector", "value": css})
        element_id = next(iter(element.values()))  # the W3C element reference key
        self._call("POST", f"/element/{element_id}/value", {"text": str(path)})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))


@contextlib.contextmanager
def chromium(fake_audio: Path, user_data: Path):
    port = free_port()
    driver_bin = str(CHROMEDRIVER) if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    if driver_bin is None:
        pytest.skip("chromedriver is absent: run scripts/install-browser.sh")
    proc = subprocess.Popen([driver_bin, f"--port={port}", "--allowed-ips=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # bounded wait for chromedriver
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{driver_url}/status", timeout=1).json()["value"]["ready"]:
                    break
            time.sleep(0.05)
        args = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={user_data}", "--window-size=1280,900",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_audio}", "--autoplay-policy=no-user-gesture-required",
        ]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": str(CHROMIUM), "args": args}}}}
        resp = httpx.post(f"{driver_url}/session", json=caps, timeout=60).json()["value"]
        if "sessionId" not in resp:
            raise RuntimeError(f"chromedriver could not start Chromium: {resp}")
        session = resp["sessionId"]
        try:
            yield Browser(driver_url, session)
        finally:
            with contextlib.suppress(httpx.HTTPError):
                httpx.delete(f"{driver_url}/session/{session}", timeout=30)
    finally:
        stop_process(proc)


def _f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def _fake_microphone_wav(path: Path, rate: int = 48000) -> Path:
    """The bundled example mixture (speechsep/examples/, when shipped) else a two-tone test signal,
    written at a browser's usual rate so Chromium's fake capture device plays it unchanged."""
    example = REPO / "speechsep" / "examples" / "mixture.wav"
    if example.is_file():
        wav, sr = sf.read(example, dtype="float32", always_2d=True)
        wav = soxr.resample(wav.mean(axis=1), sr, rate)
    else:
        wav = two_tone_mixture(rate, 3.0)
    sf.write(path, wav, rate, subtype="PCM_16")
    return path


def _seeded_tfacm_lite():
    """tfacm-lite (the bundled model's architecture) with seeded random weights, so these tests never need
    the trained checkpoint: what is checked is that the page hears exactly the model's own stream."""
    torch.manual_seed(0)
    return speechsep.build("tfacm-lite").eval()


@contextlib.contextmanager
def _page(model, tmp_path: Path):
    """The server around ``model`` and a Chromium whose fake microphone plays the example; yields
    ``(browser, base_url)``."""
    # a queue longer than the whole stream: on a busy machine Chromium can deliver a burst of frames while a
    # step runs, and a dropped frame would (rightly) break the equality checked here; dropping is
    # tested in test_serve_app.py
    limits = ServeLimits(queue_frames=512)
    app = create_app(model, model_name="tfacm-lite (random weights)", limits=limits, compute_threads=2)
    wav_path = _fake_microphone_wav(tmp_path / "fake-mic.wav")
    with running_server(app) as base, chromium(wav_path, tmp_path / "profile") as browser:
        yield browser, base


def _wait_and_collect(browser: Browser, shot: Path, timeout_s: float = 60.0) -> tuple[dict, dict]:
    """Wait for the page's session to end; screenshot; return (summary, recorded samples)."""
    for _ in range(int(timeout_s * 10)):  # bounded
        state = browser.js("return window.speechsepTest ? window.speechsepTest.state : null")
        if state in ("done", "closed", "error"):
            break
        time.sleep(0.1)
    time.sleep(0.3)  # let the spectrograms draw the last columns for the screenshot
    browser.screenshot(shot)
    summary = browser.js("const t = window.speechsepTest; return {state: t.state, errors: t.errors, "
                         "end: t.end, ready: t.ready, sent: t.framesSent, received: t.framesReceived}")
    return summary, browser.js("return window.speechsepSamples()")


def _assert_page_heard_the_model(model, summary: dict, samples: dict, min_seconds: float) -> str:
    """What came back to the page is the model's stream of what the page sent; returns a one-line report."""
    assert summary["state"] == "done", summary
    assert summary["errors"] == [] and summary["end"]["dropped_in"] == 0 and summary["end"]["dropped_out"] == 0, summary
    rate = int(samples["sampleRate"])
    sent = _f32(samples["sent"])
    received = np.stack([_f32(r) for r in samples["received"]])
    assert sent.size >= min_seconds * rate and np.sqrt(np.mean(sent**2)) > 0.01  # real audio went out
    assert received.shape == (model.num_sources, sent.size)  # every sample sent came back, once
    # the same audio through `speechsep stream`'s loop (step in 16 ms chunks), and through the offline
    # forward: the page must have heard exactly that
    streamed = streamed_reference(model, sent, rate)
    offline = offline_reference(model, sent, rate)
    rms = float(np.sqrt(np.mean(offline**2)))
    assert rms > 1e-3  # the model produced signal, so the comparison means something
    assert received.shape == streamed.shape == offline.shape
    err_stream = float(np.max(np.abs(received - streamed)))
    err_offline = float(np.max(np.abs(received - offline)))
    assert err_stream <= 1e-4 * rms and err_offline <= 1e-4 * rms, (err_stream, err_offline, rms)
    return (f"{sent.size / rate:.2f} s at {rate} Hz; max error vs stream {err_stream:.2e}, vs offline "
            f"{err_offline:.2e} (output RMS {rms:.2e})")


def test_microphone_stream_comes_back_separated(tmp_path):
    model = _seeded_tfacm_lite()
    shot = tmp_path / "serve-screenshot.png"
    with _page(model, tmp_path) as (browser, base):
        browser.get(f"{base}/?autostart=mic&seconds=2")
        summary, samples = _wait_and_collect(browser, shot)
    if os.environ.get("SPEECHSEP_SCREENSHOT"):  # keep it (docs/serve-screenshot.png is made this way)
        shutil.copyfile(shot, os.environ["SPEECHSEP_SCREENSHOT"])
    report = _assert_page_heard_the_model(model, summary, samples, min_seconds=2.0)
    assert shot.stat().st_size > 10_000
    print(f"microphone: {report}; screenshot {shot}")


def test_dropped_file_streams_live_and_comes_back_separated(tmp_path):
    """The file path of the page: a file given to its file input is decoded and streamed to its end."""
    model = _seeded_tfacm_lite()
    clip = tmp_path / "clip.wav"
    sf.write(clip, two_tone_mixture(16000, 1.5, seed=2), 16000, subtype="PCM_16")
    with _page(model, tmp_path) as (browser, base):
        browser.get(f"{base}/?record=1")
        for _ in range(100):  # bounded: the page builds its tracks once /api/info answers
            if browser.js("return document.querySelectorAll('.track').length") == 1 + model.num_sources:
                break
            time.sleep(0.1)
        browser.upload("#file", clip)
        summary, samples = _wait_and_collect(browser, tmp_path / "file-screenshot.png")
    # the whole clip was streamed (decoded at the page's rate), then the session stopped by itself
    print(f"file: {_assert_page_heard_the_model(model, summary, samples, min_seconds=1.5)}")
