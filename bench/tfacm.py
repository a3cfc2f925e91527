"""Measure TFACM against the authors' model as a yardstick: size, offline and streaming speed, memory.

    python -m bench tfacm complexity
    python -m bench tfacm floor
    python -m bench tfacm offline --model tfacm-large --seconds 4 --repeats 3
    python -m bench tfacm stream --model tfacm-small --backend onnxruntime --seconds 4
    python -m bench tfacm authors --authors-repo ~/TFACM --path DEPS --seconds 1 4
    python -m bench tfacm kernels --threads 2

Every command prints one JSON line. ``offline`` and ``stream`` also measure the matmul throughput
just before and after (``matmul_gflops``) and give the result as a multiple of the practical floor
measured then (``x_floor``): on a shared machine that ratio is what can be compared. ``offline`` runs in the process it is given and reports that
process's peak RSS (``ru_maxrss``), so run it once per length for a memory figure that belongs to
that length alone. ``authors`` times ``--model`` and the authors' released model in alternating rounds
of one process (``bench.authors_tfacm``) and prints both sizes and the speed-up per length.
``kernels`` times the kernels behind two choices of the streaming step, at tfacm-small's streaming
shapes (16 frames) and tfacm-large's offline ones (2,100 frames): a transposed conv against
``conv_transpose_taps``, and the heavy and small kernels at 1 thread against ``--threads``.
``floor`` measures the matmul throughput that turns MACs into the practical floor
of the real-time factor, ``2 * MACs per second of audio / FLOP/s``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def stream(name: str, backend: str, seconds: float, chunk_ms: float, threads: int, split_threads: bool = False) -> dict:
    from speechsep.blocks.framing import ms_to_samples
    from speechsep.inference.streaming import stream_through_model

    model = build(name).eval()
    chunk = ms_to_samples(chunk_ms, model.sample_rate)
    runner = model
    if backend == "onnxruntime":
        import tempfile

        from speechsep.export.onnx import OnnxStreamer, export_onnx

        tmp = tempfile.mkdtemp()
        runner = OnnxStreamer(export_onnx(model, f"{tmp}/{name}.onnx", chunk_samples=chunk), threads=threads)
    x = 0.1 * torch.randn(1, int(seconds * model.sample_rate))
    split = threads if backend == "torch" and split_threads else None
    stream_through_model(runner, x[:, : 10 * chunk], chunk, align=False, threads=split)  # warm-up
    _, stats = stream_through_model(runner, x, chunk, align=False, threads=split)
    return {"model": name, "backend": backend, "seconds": seconds, "chunk_ms": stats.chunk_ms,
            "rtf": stats.real_time_factor, "p50_ms": stats.percentile_ms(50), "p95_ms": stats.percentile_ms(95),
            "max_ms": stats.max_ms, "latency_ms": stats.latency_ms, "threads": threads,
            "split_threads": split is not None, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")}


def authors(name: str, repo: str, paths: list[str], config: str, lengths: list[float], repeats: int) -> list[dict]:
    from bench.authors_tfacm import load_authors_model, side_by_side
    from speechsep.complexity import complexity

    ours = build(name).eval()
    theirs = load_authors_model(repo, config, ours.sample_rate, tuple(paths))
    sizes = {}
    for who, model in (("ours", ours), ("theirs", theirs)):
        c = complexity(model)
        sizes[who] = {"params_m": round(c.params_m, 3), "gmacs_per_s": round(c.gmacs_per_second, 2)}
    def rounded(value):
        return round(value, 3) if isinstance(value, float) else [round(t, 3) for t in value]

    rows = []
    for seconds in lengths:
        row = side_by_side(ours, theirs, seconds, repeats)
        times = {k: rounded(v) for k, v in row.items() if k not in ("seconds", "repeats")}
        rows.append({"model": name, "authors": theirs.name, **sizes["ours"],
                     **{f"authors_{k}": v for k, v in sizes["theirs"].items()}, "threads": torch.get_num_threads(),
                     "seconds": seconds, "repeats": repeats, **times})
    return rows


def _median_us(fn, calls: int) -> float:
    from speechsep.bench.timing import median_seconds

    return median_seconds(fn, max(3, calls // 10), calls) * 1e6


def kernels(threads: int) -> list[dict]:
    """Median microseconds per call of the kernels behind ``conv_transpose_taps`` and ``split_threads``."""
    from speechsep.blocks.tap_matmul import conv_transpose_taps

    rows = []
    g = torch.Generator().manual_seed(0)
    torch.set_num_threads(1)
    # (what, convolved axis, positions L, rows, kernel, calls): F-Local runs over sub-bands, laid out
    # (L, frames, C); T-Local over frames, laid out (bins, L, C) with the cached frames in front;
    # 16 frames is one 16 ms chunk
    for what, dim, length, rows_, kernel, calls in [("F-Local back, stream (small)", 0, 30, 16, 4, 300),
                                                     ("T-Local back, stream (small)", 1, 19, 33, 4, 300),
                                                     ("F-Local back, offline (large)", 0, 26, 2100, 8, 5),
                                                     ("T-Local back, offline (large)", 1, 2107, 33, 8, 5)]:
        conv = torch.nn.ConvTranspose1d(64, 64, kernel)
        shape = (length, rows_, 64) if dim == 0 else (rows_, length, 64)
        x = torch.randn(*shape, generator=g)  # channels last, the layout the LSTM gives
        first = (1, 2, 0) if dim == 0 else (0, 2, 1)
        with torch.inference_mode():
            before = _median_us(lambda c=conv, x=x, p=first: c(x.permute(*p)), calls)
            after = _median_us(lambda c=conv, x=x, d=dim: conv_transpose_taps(x, c.weight, c.bias, dim=d), calls)
        rows.append({"kernel": what, "conv_transpose1d_us": round(before, 1), "taps_us": round(after, 1),
                     "ratio": round(after / before, 2)})
    lstm = torch.nn.LSTM(256, 64)
    cases = [("attention bmm (4, 16, 1015) x (4, 1015, 528)", torch.bmm,
              (torch.randn(4, 16, 1015, generator=g), torch.randn(4, 1015, 528, generator=g))),
             ("F-Local LSTM, 30 sub-bands x 16 frames", lstm, (torch.randn(30, 16, 256, generator=g),)),
             ("1x1 conv (1, 64, 33, 16)", torch.nn.Conv2d(64, 64, 1), (torch.randn(1, 64, 33, 16, generator=g),)),
             ("add (1, 64, 33, 16)", torch.add, (torch.randn(1, 64, 33, 16, generator=g),) * 2)]
    for what, fn, args in cases:
        timed = {}
        with torch.inference_mode():
            for n in (1, threads):
                torch.set_num_threads(n)
                timed[n] = _median_us(lambda fn=fn, args=args: fn(*args), 300)
        rows.append({"kernel": what, "threads_1_us": round(timed[1], 1), f"threads_{threads}_us": round(timed[threads], 1),
                     "ratio": round(timed[threads] / timed[1], 2),
                     "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["complexity", "floor", "offline", "stream", "authors", "kernels"])
    parser.add_argument("--model", default="tfacm-small")
    parser.add_argument("--seconds", type=float, nargs="+", default=[4.0],
                        help="audio length(s); every command but 'authors' takes one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    parser.add_argument("--chunk-ms", type=float, default=16.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split-threads", action="store_true",
                        help="stream: one thread for the step, --threads for its LSTMs and attention")
    parser.add_argument("--authors-repo", help="authors: a checkout of JusperLee/TFACM")
    parser.add_argument("--authors-config", default="configs/tfacm_causal_wham.yml",
                        help="authors: their model config, relative to the checkout")
    parser.add_argument("--path", action="append", default=[],
                        help="authors: a folder to import their dependencies from (repeatable)")
    args = parser.parse_args(argv)
    if args.what != "authors" and len(args.seconds) != 1:
        parser.error(f"{args.what} takes one --seconds")
    if args.what == "authors" and not args.authors_repo:
        parser.error("authors needs --authors-repo (a checkout of JusperLee/TFACM)")
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
    if args.what == "kernels":
        for row in kernels(args.threads):
            print(json.dumps(row))
        return 0
    if args.what == "authors":
        for row in authors(args.model, args.authors_repo, args.path, args.authors_config, args.seconds, args.repeats):
            print(json.dumps(row))
        return 0
    seconds = args.seconds[0]
    if args.what == "offline":
        print(json.dumps(_with_floor(args.model, lambda: offline(args.model, seconds, args.repeats))))
        return 0
    print(json.dumps(_with_floor(args.model, lambda: stream(args.model, args.backend, seconds, args.chunk_ms,
                                                              args.threads, args.split_threads))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
