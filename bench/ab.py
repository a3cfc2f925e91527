"""A/B of one setting in fresh processes: transparent huge pages, or bf16 autocast for training.

``huge-pages``: PyTorch's CPU allocator puts every allocation of 2 MB or more on transparent huge
pages when ``THP_MEM_ALLOC_ENABLE=1`` is set before its first allocation (2 MB-aligned,
``madvise(MADV_HUGEPAGE)``). Offline forwards and training steps allocate and free activations of
tens of MB; with 4 KB pages every fresh buffer costs one page fault per 4 KB on first touch. The
Makefile exports the variable; this measures what it buys and what it costs in memory.

``bf16``: a training step (forward, PIT negative SNR, backward, clip, Adam) in float32 against the
same step under bf16 autocast, what ``speechsep train --set precision=bf16`` runs (on CPUs with
AVX512-BF16 or AMX, oneDNN's LSTM, matmul and convolution kernels have bf16 paths).

    .venv/bin/python -m bench ab huge-pages --rounds 3 --threads 1
    .venv/bin/python -m bench ab bf16 --rounds 3 --threads 1

Each job runs once per round in a fresh process with the setting off and once with it on, the
order alternating between rounds, so a load change on a shared machine hits both sides alike.
Every process: one warm-up call, then the median of 3 (forward, training step) or one 2 s stream.
Printed: one JSON line per measurement, then a table of medians, the on/off time ratio and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

#: (label, kind, preset, seconds of audio, batch) per experiment
JOBS = {"huge-pages": [
    ("tfacm-large forward 4 s", "forward", "tfacm-large", 4.0, 1),
    ("iter-time-simo3-siso0-it1 forward 4 s (16 kHz)", "forward", "iter-time-simo3-siso0-it1", 4.0, 1),
    ("tfacm-lite train step 4 x 2 s (bundled recipe)", "train", "tfacm-lite", 2.0, 4),
    ("iter-freq-simo1-siso2-it2-detach train step 4 x 4 s (bundled recipe)", "train",
     "iter-freq-simo1-siso2-it2-detach", 4.0, 4),
    ("tfacm-small stream, 16 ms chunks, 2 s", "stream", "tfacm-small", 2.0, 1),
], "bf16": [
    ("tfacm-lite train step 4 x 2 s (bundled recipe)", "train", "tfacm-lite", 2.0, 4),
    ("iter-freq-simo1-siso2-it2-detach train step 4 x 4 s (bundled recipe)", "train",
     "iter-freq-simo1-siso2-it2-detach", 4.0, 4),
    ("tfacm-small train step 1 x 2 s", "train", "tfacm-small", 2.0, 1),
    ("iter-time-simo1-siso2-it1 train step 1 x 2 s (16 kHz)", "train", "iter-time-simo1-siso2-it1", 2.0, 1),
]}


def child(job: dict) -> dict:
    """One measurement in this process (the parent set THP_MEM_ALLOC_ENABLE before torch loaded)."""
    import resource

    import torch

    from bench.anchor_child import forward_seconds, train_step_seconds
    from bench.tfacm import stream
    from speechsep.precision import autocast
    from speechsep.registry import build

    torch.set_num_threads(job["threads"])
    if job["kind"] == "stream":
        seconds = stream(job["preset"], "torch", job["seconds"], 16.0, job["threads"])["rtf"] * job["seconds"]
    else:
        model = build(job["preset"])
        rate = model.sample_rate
        if job["kind"] == "forward":
            seconds = forward_seconds(model, rate, [job["seconds"]], 1, 3)[str(job["seconds"])]
        else:
            # the whole step under the engine's precision rule (the engine also leaves the loss in
            # float32 inside it: a negligible part of a step)
            with autocast("cpu", "bf16" if job.get("bf16") else "fp32"):
                seconds = train_step_seconds(model, rate, model.num_sources, job["batch"], job["seconds"], 1, 3)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak_mb}


def measure(job: dict, experiment: str, on: bool) -> dict:
    env = dict(os.environ)
    if experiment == "huge-pages":
        env["THP_MEM_ALLOC_ENABLE"] = "1" if on else "0"
    else:
        job = {**job, "bf16": on}
    # the child imports this workshop package: put the checkout holding it on the child's path
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", choices=sorted(JOBS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", help="run only jobs whose label contains this text")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    if args.experiment is None:
        parser.error("name the experiment: " + ", ".join(sorted(JOBS)))
    with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
        print(f"# transparent_hugepage/enabled: {f.read().strip()}; load average {os.getloadavg()}", flush=True)
    rows = []
    print(f"# {args.experiment}: THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')} "
          "unless that is the setting measured", flush=True)
    for label, kind, preset, seconds, batch in JOBS[args.experiment]:
        if args.only and args.only not in label:
            continue
        job = {"kind": kind, "preset": preset, "seconds": seconds, "batch": batch, "threads": args.threads}
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for r in range(args.rounds):
            for on in ((False, True) if r % 2 == 0 else (True, False)):
                result = measure(job, args.experiment, on)
                runs[on].append(result)
                print(json.dumps({"job": label, "round": r, args.experiment: on, **result}), flush=True)
        off = statistics.median(x["seconds"] for x in runs[False])
        on = statistics.median(x["seconds"] for x in runs[True])
        rows.append((label, off, on, [b["seconds"] / a["seconds"] for a, b in zip(runs[False], runs[True], strict=True)],
                     max(x["peak_rss_mb"] for x in runs[False]), max(x["peak_rss_mb"] for x in runs[True])))
    print(f"\n# load average at the end {os.getloadavg()}")
    print("| job | off (s) | on (s) | on / off | per-round on / off | peak RSS off / on (MB) |")
    print("|---|---|---|---|---|---|")
    for label, off, on, ratios, rss_off, rss_on in rows:
        print(f"| {label} | {off:.3f} | {on:.3f} | **{on / off:.2f}** | {', '.join(f'{x:.2f}' for x in ratios)} "
              f"| {rss_off:.0f} / {rss_on:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
