"""PIT + SI-SDR speed: ours against asteroid's ``PITLossWrapper(pairwise_neg_sisdr)``.

    python -m bench pit --json bench/pit_compare.json

Both losses run forward + backward on the same batch (default 16 x 2 x 32000, float32, 2 threads);
we report the median of ``--repeats`` runs after ``--warmup`` runs. Asteroid is not a dependency: it
runs in a throwaway virtual environment (cached under ``~/.cache/speechsep/anchor-venv``) holding
the same torch version and asteroid installed with ``--no-deps`` (:mod:`bench.anchor_env`). Importing the ``asteroid`` package
would pull in its models, lightning and hub code, so the child process registers empty parent
packages and imports only the two loss modules being timed (``asteroid/losses/pit_wrapper.py`` and
``asteroid/losses/sdr.py``, unmodified); those need torch and scipy alone.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.anchor_env import ANCHOR_VENV, ensure_anchor_venv
from speechsep.bench import timing
from speechsep.bench.timing import run_times
from speechsep.losses import PITLoss, pairwise_neg_si_sdr

__all__ = ["make_inputs", "time_ours", "time_asteroid", "main"]

ASTEROID_VERSION = "0.7.0"


def make_inputs(batch: int, sources: int, samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark batch; the child process runs this same source, so both sides get identical tensors."""
    gen = torch.Generator().manual_seed(seed)
    ref = torch.randn(batch, sources, samples, generator=gen)
    est = (ref.flip(1) + 0.5 * torch.randn(batch, sources, samples, generator=gen)).requires_grad_(True)
    return est, ref


_CHILD = (
    """
from __future__ import annotations
import json, sys, sysconfig, time, types
from collections.abc import Callable
from pathlib import Path
import torch
"""
    + inspect.getsource(make_inputs)
    + timing.embeddable_source()
    + """
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
root = Path(sysconfig.get_paths()["purelib"]) / "asteroid"
for name, folder in (("asteroid", root), ("asteroid.losses", root / "losses")):
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(folder)]
    sys.modules[name] = pkg
from asteroid.losses.pit_wrapper import PITLossWrapper
from asteroid.losses.sdr import pairwise_neg_sisdr

est, ref = make_inputs(args["batch"], args["sources"], args["samples"], args["seed"])
loss_fn = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")
value = float(loss_fn(est, ref).detach())

def step():
    est.grad = None
    loss_fn(est, ref).backward()

times = run_times(step, args["warmup"], args["repeats"])
print(json.dumps({"times": times, "loss": value, "torch": torch.__version__}))
"""
)


def time_ours(batch: int, sources: int, samples: int, *, seed: int, warmup: int, repeats: int) -> dict[str, Any]:
    est, ref = make_inputs(batch, sources, samples, seed)
    loss_fn = PITLoss(pairwise_neg_si_sdr)
    value = float(loss_fn(est, ref)[0].mean().detach())

    def step() -> None:
        est.grad = None
        loss_fn(est, ref)[0].mean().backward()

    return {"times": run_times(step, warmup, repeats), "loss": value}


def time_asteroid(
    python: Path, batch: int, sources: int, samples: int, *, seed: int, warmup: int, repeats: int, threads: int
) -> dict[str, Any]:
    args = dict(batch=batch, sources=sources, samples=samples, seed=seed, warmup=warmup, repeats=repeats, threads=threads)
    proc = subprocess.run([str(python), "-c", _CHILD, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"asteroid timing failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench pit", description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--samples", type=int, default=32000)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--venv", type=Path, default=ANCHOR_VENV)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    torch.set_num_threads(args.threads)
    shape = dict(batch=args.batch, sources=args.sources, samples=args.samples)
    common = dict(seed=args.seed, warmup=args.warmup, repeats=args.repeats)
    python = ensure_anchor_venv(args.venv)
    # Ours before and after asteroid, pooled, so a load change on a shared machine hits both sides.
    ours_a = time_ours(**shape, **common)
    theirs = time_asteroid(python, **shape, **common, threads=args.threads)
    ours_b = time_ours(**shape, **common)
    ours_times = ours_a["times"] + ours_b["times"]
    ours_ms = 1000 * statistics.median(ours_times)
    theirs_ms = 1000 * statistics.median(theirs["times"])
    result = {
        "benchmark": "PIT + SI-SDR, forward + backward",
        "shape": [args.batch, args.sources, args.samples],
        "threads": args.threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "asteroid": ASTEROID_VERSION,
        "ours_median_ms": round(ours_ms, 3),
        "asteroid_median_ms": round(theirs_ms, 3),
        "speedup": round(theirs_ms / ours_ms, 3),
        "ours_loss": ours_a["loss"],
        "asteroid_loss": theirs["loss"],
        "loss_abs_diff": abs(ours_a["loss"] - theirs["loss"]),
        "ours_no_slower": ours_ms <= theirs_ms,
        "unix_time": int(time.time()),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        from speechsep.utils import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
