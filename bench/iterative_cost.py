"""What the iterative paper's configurations cost, and how fast ours runs against asteroid's DPRNNTasNet.

    python -m bench iterative cost  --json OUT.json   # Table 1: params, MACs/s
    python -m bench iterative speed --json OUT.json   # ours vs asteroid, same size

``cost``: every Table 1 row in both domains at paper scale (16 kHz), parameters and ptflops MACs per
second of audio (:func:`speechsep.complexity.complexity`, the counter the TFACM paper used). The
paper's point (Sec. 2.1, Table 1) is that iterations buy effective depth without parameters: the
1 SIMO + 2 SISO rows with 1, 2 and 3 iterations share one parameter count while their MACs grow with
the iteration count.

``speed``: the paper-size time-domain model with the same DPRNN blocks on one stream as a plain
DPRNN-TasNet (``iter-time-simo3-siso0-it1``) against asteroid ``DPRNNTasNet`` built at that size
(:mod:`bench.anchors`), run in the anchor venv (:mod:`bench.anchor_env`; asteroid
is never a dependency). Both sides run the same measuring code (:mod:`bench.anchor_child`):
the median offline forward on one mixture, and the median training step (forward, negative SNR,
backward, Adam) on one fixed batch. Ours is timed before and after the anchor and the two medians
averaged, so a load change on a shared machine falls on both sides; by default both read the process
CPU clock (``--clock cpu``, one thread), which a busy machine does not inflate the way it does wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["table1_cost", "cost_markdown", "speed_against_asteroid", "main"]

#: the paper-size time-domain preset with the shape of a plain DPRNN-TasNet (3 blocks, one stream)
SPEED_PRESET = "iter-time-simo3-siso0-it1"


def table1_cost(seconds: float = 1.0) -> list[dict[str, Any]]:
    """Params and MACs per second of audio of every Table 1 row, both domains, paper scale."""
    from speechsep.complexity import complexity
    from speechsep.models.iterative_presets import DOMAINS, TABLES, preset_name
    from speechsep.registry import build

    rows = []
    for row in TABLES[1]:
        entry: dict[str, Any] = {"simo": row.simo, "siso": row.siso, "iterations": row.iterations,
                                 "detach": row.detach, "depth": row.depth}
        for domain in DOMAINS:
            name = preset_name(row, domain, "paper")
            torch.manual_seed(0)
            cost = complexity(build(name), seconds=seconds)
            entry[domain] = {"preset": name, "params": cost.params, "macs_per_second": cost.macs_per_second}
        rows.append(entry)
    return rows


def cost_markdown(rows: list[dict[str, Any]]) -> str:
    header = ["SIMO", "SISO", "Iter.", "Depth", "Detach", "Time params (M)", "Time GMAC/s", "Freq params (M)",
              "Freq GMAC/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        detach = "–" if r["detach"] is None else ("✓" if r["detach"] else "✗")
        cells = [str(r["simo"]), str(r["siso"]), str(r["iterations"]), str(r["depth"]), detach]
        for domain in ("time", "freq"):
            cells += [f"{r[domain]['params'] / 1e6:.3f}", f"{r[domain]['macs_per_second'] / 1e9:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _clock(kind: str) -> Iterator[None]:
    """``cpu``: the shared timing helpers read the process CPU clock instead of the wall clock.

    On a machine shared with other jobs a single-threaded run's wall time mostly measures how long
    the scheduler kept it waiting; its CPU time is the work itself, so two models timed at different
    moments stay comparable. ``wall`` leaves the helpers as they are.
    """
    from speechsep.bench import timing

    if kind == "wall":
        yield
        return
    saved = timing.time
    timing.time = types.SimpleNamespace(perf_counter=time.process_time)
    try:
        yield
    finally:
        timing.time = saved


def _time_ours(model: torch.nn.Module, sample_rate: int, args: argparse.Namespace) -> dict[str, Any]:
    from bench.anchor_child import forward_seconds, train_step_seconds

    with _clock(args.clock):
        return {
            "forward_seconds": forward_seconds(model, sample_rate, [args.forward_seconds], args.warmup,
                                               args.repeats),
            "step_seconds": train_step_seconds(model, sample_rate, model.num_sources, args.batch,
                                               args.train_seconds, args.warmup, args.repeats),
        }


def _run_anchor_on_clock(python: Path, spec, args: argparse.Namespace, **job: Any) -> dict[str, Any]:
    """:func:`bench.anchors.run_anchor`, with the child's timing helpers on ``args.clock``."""
    from bench.anchor_child import child_source
    from bench.anchors import AnchorFailed, run_anchor

    if args.clock == "wall":
        return run_anchor(python, spec, job.pop("measures"), timeout=args.timeout, threads=args.threads, **job)
    from speechsep.bench import timing

    # the child pastes speechsep.bench.timing's source in front of its own: switch the clock in that copy
    # only (the same helpers ours runs through :func:`_clock`)
    source, helpers = child_source(), timing.embeddable_source()
    if source.count(helpers) != 1 or "time.perf_counter()" not in helpers:
        raise AnchorFailed("the anchor child no longer pastes the timing helpers: cannot switch it to the CPU clock")
    source = source.replace(helpers, helpers.replace("time.perf_counter()", "time.process_time()"))
    payload = dict(job, anchor=spec.anchor, kwargs=spec.kwargs, threads=args.threads)
    proc = subprocess.run([str(python), "-c", source, json.dumps(payload)], capture_output=True, text=True,
                          timeout=args.timeout)
    if proc.returncode != 0:
        raise AnchorFailed(f"{spec.name}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def speed_against_asteroid(args: argparse.Namespace) -> dict[str, Any]:
    from bench.anchor_env import ensure_anchor_venv
    from bench.anchors import anchor_specs
    from speechsep.complexity import count_parameters
    from speechsep.registry import build

    torch.set_num_threads(args.threads)
    (spec,) = anchor_specs([SPEED_PRESET])
    python = ensure_anchor_venv(args.venv)
    torch.manual_seed(0)
    ours = build(SPEED_PRESET)
    sr = ours.sample_rate
    key = str(args.forward_seconds)
    first = _time_ours(ours, sr, args)
    theirs = _run_anchor_on_clock(python, spec, args, measures=["forward", "train_step"],
                                  lengths=[args.forward_seconds], warmup=args.warmup, repeats=args.repeats,
                                  num_sources=ours.num_sources, batch=args.batch, seconds=args.train_seconds,
                                  train_warmup=args.warmup, train_repeats=args.repeats)
    second = _time_ours(ours, sr, args)
    ours_forward = (first["forward_seconds"][key] + second["forward_seconds"][key]) / 2
    ours_step = (first["step_seconds"] + second["step_seconds"]) / 2
    return {
        "ours": {"preset": SPEED_PRESET, "params": count_parameters(ours), "forward_seconds": ours_forward,
                 "step_seconds": ours_step, "runs": [first, second]},
        "asteroid": {"kwargs": spec.kwargs, "forward_seconds":
                     theirs["forward_seconds"][key], "step_seconds": theirs["step_seconds"]},
        "forward_speedup": theirs["forward_seconds"][key] / ours_forward,
        "step_speedup": theirs["step_seconds"] / ours_step,
        "note": spec.note,
        "settings": {"clock": args.clock, "threads": args.threads, "forward_audio_seconds": args.forward_seconds, "batch": args.batch,
                     "train_audio_seconds": args.train_seconds, "warmup": args.warmup, "repeats": args.repeats,
                     "sample_rate": sr, "torch": torch.__version__},
        "unix_time": int(time.time()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench iterative",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cost = sub.add_parser("cost", help="params and MACs/s of every Table 1 row, both domains, paper scale")
    cost.add_argument("--seconds", type=float, default=1.0, help="audio the MACs are counted on")
    speed = sub.add_parser("speed", help="forward and training-step time against asteroid DPRNNTasNet")
    speed.add_argument("--threads", type=int, default=1)
    speed.add_argument("--forward-seconds", type=float, default=4.0, help="audio per forward call")
    speed.add_argument("--batch", type=int, default=2)
    speed.add_argument("--train-seconds", type=float, default=2.0, help="audio per training example")
    speed.add_argument("--warmup", type=int, default=1)
    speed.add_argument("--repeats", type=int, default=5)
    speed.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                       help="cpu: process CPU time (right on a shared machine, needs --threads 1); wall: wall clock")
    speed.add_argument("--timeout", type=float, default=900.0, help="seconds the anchor child may run")
    speed.add_argument("--venv", type=Path, help="anchor venv (default: bench.anchor_env's)")
    for p in (cost, speed):
        p.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.what == "cost":
        rows = table1_cost(args.seconds)
        print(cost_markdown(rows))
        result: Any = {"rows": rows, "seconds": args.seconds, "torch": torch.__version__}
    else:
        if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
            parser.error("--repeats and --threads must be >= 1 and --warmup >= 0")
        if args.clock == "cpu" and args.threads != 1:
            parser.error("--clock cpu sums the CPU time of every thread: use it with --threads 1")
        if args.venv is None:
            from bench.anchor_env import ANCHOR_VENV

            args.venv = ANCHOR_VENV
        result = speed_against_asteroid(args)
        print(json.dumps({k: result[k] for k in ("forward_speedup", "step_speedup")}, indent=2))
    if args.json:
        from speechsep.utils import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
