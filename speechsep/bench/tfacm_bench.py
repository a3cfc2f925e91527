"""Measure TFACM against the authors' yardstick (issue 5): size, offline and streaming speed, memory.

    python -m speechsep.bench.tfacm_bench complexity
    python -m speechsep.bench.tfacm_bench floor
    python -m speechsep.bench.tfacm_bench offline --model tfacm-large --seconds 4 --repeats 3
    python -m speechsep.bench.tfacm_bench stream --model tfacm-small --backend onnxruntime --seconds 4

Every command prints one JSON line. ``offline`` and ``stream`` also measure the matmul throughput
just before and after (``matmul_gflops``) and give the result as a multiple of the practical floor
measured then (``x_floor``): on a shared machine that ratio is what can be compared. ``offline`` runs in the process it is given and reports that
process's peak RSS (``ru_maxrss``), so run it once per length for a memory figure that belongs to
that length alone. ``floor`` measures the matmul throughput that turns MACs into the practical floor
of the real-time factor, ``2 * MACs per second of audio / FLOP/s``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from speechsep.registry import build


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def complexity_rows(names: list[str]) -> list[dict]:
    from speechsep.complexity import complexity
    from speechsep.registry import get_preset

    rows = []
    for name in names:
        c = complexity(build(name))
        paper = get_preset(name).paper or {}
        rows.append({"model": name, "params_m": round(c.params_m, 3), "gmacs_per_s": round(c.gmacs_per_second, 2),
                     "paper_params_m": paper.get("params_m"), "paper_gmacs": paper.get("macs_g")})
    return rows


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e9


def _with_floor(name: str, measure) -> dict:
    """Run ``measure()`` (returns a dict with ``rtf``) between two matmul-throughput probes."""
    from speechsep.complexity import complexity

    gmacs = complexity(build(name)).gmacs_per_second
    before = matmul_gflops(repeats=10)
    row = measure()
    after = matmul_gflops(repeats=10)
    gflops = (before + after) / 2
    floor = 2 * gmacs / gflops
    row.update({"gmacs_per_s": round(gmacs, 2), "matmul_gflops": [round(before, 1), round(after, 1)],
                "floor_rtf": round(floor, 3), "x_floor": round(row["rtf"] / floor, 2)})
    return row


def offline(name: str, seconds: float, repeats: int) -> dict:
    model = build(name).eval()
    x = 0.1 * torch.randn(1, int(seconds * model.sample_rate))
    base = _rss_mb()
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return {"model": name, "seconds": seconds, "repeats": repeats, "rtf": statistics.median(times) / seconds,
            "rtf_all": [t / seconds for t in times], "peak_rss_mb": _rss_mb(), "rss_before_mb": base}


def stream(name: str, backend: str, seconds: float, chunk_ms: float, threads: int) -> dict:
    from speechsep.blocks.framing import ms_to_samples
    from speechsep.inference.streaming import stream_waveform

    model = build(name).eval()
    chunk = ms_to_samples(chunk_ms, model.sample_rate)
    runner = model
    if backend == "onnxruntime":
        import tempfile

        from speechsep.export.onnx import OnnxStreamer, export_onnx

        tmp = tempfile.mkdtemp()
        runner = OnnxStreamer(export_onnx(model, f"{tmp}/{name}.onnx", chunk_samples=chunk), threads=threads)
    x = 0.1 * torch.randn(1, int(seconds * model.sample_rate))
    stream_waveform(runner, x[:, : 10 * chunk], chunk, align=False)  # warm-up
    _, stats = stream_waveform(runner, x, chunk, align=False)
    return {"model": name, "backend": backend, "seconds": seconds, "chunk_ms": stats.chunk_ms,
            "rtf": stats.real_time_factor, "p50_ms": stats.percentile_ms(50), "p95_ms": stats.percentile_ms(95),
            "max_ms": stats.max_ms, "latency_ms": stats.latency_ms, "threads": threads}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["complexity", "floor", "offline", "stream"])
    parser.add_argument("--model", default="tfacm-small")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    parser.add_argument("--chunk-ms", type=float, default=16.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.what == "complexity":
        for row in complexity_rows(["tfacm-large", "tfacm-small", "tfacm-lite"]):
            print(json.dumps(row))
        return 0
    if args.what == "floor":
        gflops = matmul_gflops()
        rows = complexity_rows(["tfacm-large", "tfacm-small", "tfacm-lite"])
        print(json.dumps({"matmul_gflops": gflops, "threads": args.threads,
                          "floor_rtf": {r["model"]: 2 * r["gmacs_per_s"] / gflops for r in rows}}))
        return 0
    if args.what == "offline":
        print(json.dumps(_with_floor(args.model, lambda: offline(args.model, args.seconds, args.repeats))))
        return 0
    print(json.dumps(_with_floor(args.model, lambda: stream(args.model, args.backend, args.seconds, args.chunk_ms,
                                                              args.threads))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
