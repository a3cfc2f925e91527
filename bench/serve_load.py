"""Measure a live server on loopback: frame latency with one client, and how many real-time clients it holds.

    python -m bench serve-load --model tfacm-lite --rate 8000 --clients 1,2,3,4 --seconds 10

Without ``--url`` it starts ``speechsep serve`` in a child process on a free 127.0.0.1 port (so the
clients, in this process, do not share the server's interpreter), waits for it, runs one round per
client count, prints a markdown table and stops the server. Each client streams ``--seconds`` of
audio paced in real time in ``--frame-ms`` frames (speechsep.serve.client.load_test).

Per round, over all its clients:

* frame latency: an output frame's arrival minus the send time of the newest input frame it
  includes (loopback + queueing + resampling + one ``model.step``);
* sample latency: arrival minus the send time of the input frame holding the same stream position
  as the frame's last sample; it adds the resamplers' buffering at rates other than the model's;
* real time held: no frame dropped in either direction, and the frame latency p95 over the last
  quarter of every stream stays under ``--hold-ms``. A server slower than real time builds a
  backlog that only grows, so within a few seconds it crosses any fixed bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np

from speechsep.serve.client import StreamResult, load_test, percentile_summary

__all__ = ["RoundResult", "summarize_round", "spawn_server", "free_port", "stop_process", "main"]


@dataclasses.dataclass(frozen=True)
class RoundResult:
    clients: int
    frame_p50_ms: float
    frame_p95_ms: float
    sample_p50_ms: float
    sample_p95_ms: float
    tail_p95_ms: float
    dropped: int
    server_rtf: float
    held: bool
    #: 1-minute load average of this machine at the round's start and end (the machine may be shared)
    load_avg: tuple[float, float] = (float("nan"), float("nan"))

    def row(self) -> str:
        return (f"| {self.clients} | {self.frame_p50_ms:.1f} | {self.frame_p95_ms:.1f} | {self.sample_p50_ms:.1f} | "
                f"{self.sample_p95_ms:.1f} | {self.tail_p95_ms:.1f} | {self.dropped} | {self.server_rtf:.3f} | "
                f"{'yes' if self.held else 'no'} | {self.load_avg[0]:.1f} -> {self.load_avg[1]:.1f} |")


TABLE_HEADER = ("| clients | frame p50 (ms) | frame p95 (ms) | sample p50 (ms) | sample p95 (ms) | last-quarter p95 (ms) "
                "| dropped | server RTF (mean per session) | real time held | load avg (1 min) |\n"
                "|---|---|---|---|---|---|---|---|---|---|")


def summarize_round(results: list[StreamResult], hold_ms: float) -> RoundResult:
    """Pool the clients' latencies; a round holds real time when nothing dropped and no stream's tail lags."""
    if not results:
        raise ValueError("summarize_round needs at least one client result")
    frame = [v for r in results for v in r.frame_latency_ms]
    sample = [v for r in results for v in r.sample_latency_ms]
    tails = [v for r in results for v in r.frame_latency_ms[3 * len(r.frame_latency_ms) // 4:]]
    dropped = sum(int(r.end.get("dropped_in", 0)) + int(r.end.get("dropped_out", 0)) for r in results)
    ended = all(r.end for r in results)  # a session that never sent "end" did not finish its stream
    f, s, t = percentile_summary(frame), percentile_summary(sample), percentile_summary(tails)
    nan = float("nan")
    tail_p95 = t.get("p95", nan)
    return RoundResult(
        clients=len(results), frame_p50_ms=f.get("p50", nan), frame_p95_ms=f.get("p95", nan),
        sample_p50_ms=s.get("p50", nan), sample_p95_ms=s.get("p95", nan), tail_p95_ms=tail_p95,
        dropped=dropped, server_rtf=float(np.mean([r.end.get("rtf", nan) for r in results])),
        held=ended and dropped == 0 and bool(tail_p95 <= hold_ms),
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Ask a child process to end (SIGTERM), and kill it if it has not within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def spawn_server(model: str, max_sessions: int, extra: list[str] | None = None,
                 start_timeout_s: float = 120.0) -> Iterator[str]:
    """``speechsep serve`` in a child process on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "speechsep", "serve", "--model", model, "--port", str(port),
           "--max-sessions", str(max_sessions), *(extra or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"speechsep serve exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/api/info", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"speechsep serve did not answer on {base} within {start_timeout_s:g} s")
            time.sleep(0.2)
        yield base
    finally:
        stop_process(proc)


def _signal(path: str | None, rate: int, seconds: float) -> np.ndarray:
    """The streamed audio: a file (mono, resampled to ``rate``, looped or cut to ``seconds``), or seeded noise.
    Latency does not depend on the content; the file option is there to listen to the result."""
    n = int(rate * seconds)
    if path is None:
        return (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    from speechsep.audio import read_audio

    wav, _ = read_audio(path, rate, channel="mixdown")
    return np.resize(np.asarray(wav, dtype=np.float32), n)


def _parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--clients must be comma-separated integers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--clients needs positive counts, got {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench serve-load", description=__doc__.split("\n")[0])
    p.add_argument("--url", help="an already running server (http://HOST:PORT); default: start one")
    p.add_argument("--model", default="tfacm-lite", help="model for the server it starts (default %(default)s)")
    p.add_argument("--rate", type=int, default=8000, help="client sample rate (default %(default)s)")
    p.add_argument("--frame-ms", type=float, default=16.0, help="client frame length (default %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per client per round (default %(default)s)")
    p.add_argument("--clients", type=_parse_counts, default=[1], help="client counts, e.g. 1,2,4 (default 1)")
    p.add_argument("--hold-ms", type=float, default=100.0,
                   help="last-quarter frame latency p95 under which a round holds real time (default %(default)s)")
    p.add_argument("--input", help="audio file to stream (default: seeded noise)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument for the server it starts (repeat), e.g. --server-arg=--compute-threads=2")
    p.add_argument("--json", help="also write every round's numbers to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wav = _signal(args.input, args.rate, args.seconds)
    with contextlib.ExitStack() as stack:
        base = args.url or stack.enter_context(spawn_server(args.model, max(args.clients), args.server_arg))
        info = httpx.get(f"{base}/api/info", timeout=10).json()
        url = base.replace("http", "ws", 1) + "/ws/separate"
        rounds = []
        for n in args.clients:
            load_before = os.getloadavg()[0]
            results = asyncio.run(load_test(url, wav, args.rate, n, frame_ms=args.frame_ms,
                                            timeout_s=60.0 + 2 * args.seconds))
            summary = summarize_round(results, args.hold_ms)
            rounds.append(dataclasses.replace(summary, load_avg=(load_before, os.getloadavg()[0])))
            print(f"{n} client(s): {rounds[-1]}", file=sys.stderr, flush=True)
    goal = args.frame_ms + info["latency_ms"] + 10.0
    print(f"model {info['model']} ({info['family']}, {info['sample_rate']} Hz, latency {info['latency_ms']:.2f} ms); "
          f"client {args.rate} Hz, {args.frame_ms:g} ms frames, {args.seconds:g} s per client; "
          f"{os.cpu_count()} CPUs; goal p95 <= frame + model latency + 10 ms = {goal:.1f} ms")
    print(TABLE_HEADER)
    for r in rounds:
        print(r.row())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "args": {k: v for k, v in vars(args).items() if k != "json"},
                       "goal_ms": goal, "rounds": [dataclasses.asdict(r) for r in rounds]}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
