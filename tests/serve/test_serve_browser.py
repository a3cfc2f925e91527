"""The page in a real headless Chromium: a fake microphone fed from a wav streams through the server,
and the separated audio that comes back to the page equals the model's offline output.

Chromium is driven through chromedriver's W3C HTTP API with httpx (no Selenium needed). Everything
listens on 127.0.0.1 only. Install the browser with ``scripts/install-browser.sh``.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from serve_testkit import free_port, offline_reference, running_server, two_tone_mixture

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
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def test_microphone_stream_comes_back_separated(model, tmp_path):
    wav_path = tmp_path / "fake-mic.wav"
    sf.write(wav_path, two_tone_mixture(48000, 3.0), 48000, subtype="PCM_16")
    app = create_app(model, model_name="toy-causal", limits=ServeLimits(), compute_threads=2)
    with running_server(app) as base, chromium(wav_path, tmp_path / "profile") as browser:
        browser.get(f"{base}/?autostart=mic&seconds=1.5")
        state = None
        for _ in range(300):  # bounded: 30 s
            state = browser.js("return window.speechsepTest ? window.speechsepTest.state : null")
            if state in ("done", "closed", "error"):
                break
            time.sleep(0.1)
        time.sleep(0.3)  # let the spectrograms draw the last columns for the screenshot
        browser.screenshot(tmp_path / "serve-screenshot.png")
        summary = browser.js("const t = window.speechsepTest; return {state: t.state, errors: t.errors, "
                             "end: t.end, ready: t.ready, sent: t.framesSent, received: t.framesReceived}")
        samples = browser.js("return window.speechsepSamples()")
    assert summary["state"] == "done", summary
    assert summary["errors"] == [] and summary["end"]["dropped_in"] == 0 and summary["end"]["dropped_out"] == 0
    rate = int(samples["sampleRate"])
    sent = _f32(samples["sent"])
    received = np.stack([_f32(r) for r in samples["received"]])
    assert sent.size >= 1.5 * rate and np.sqrt(np.mean(sent**2)) > 0.01  # the fake microphone delivered audio
    ref = offline_reference(model, sent, rate)
    # a rate round trip with a non-integer ratio (44.1 kHz <-> 8 kHz) can end a sample short
    assert received.shape == ref.shape and abs(received.shape[1] - sent.size) <= 1
    assert np.max(np.abs(received - ref)) < 1e-4
    assert (tmp_path / "serve-screenshot.png").stat().st_size > 10_000
    print(f"browser streamed {sent.size / rate:.2f} s at {rate} Hz; max error {np.max(np.abs(received - ref)):.2e}; "
          f"screenshot {tmp_path / 'serve-screenshot.png'}")
