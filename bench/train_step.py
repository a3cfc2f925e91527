"""Time the real training loop on synthetic data: step time and the fraction spent waiting for data.

    python -m bench train-step --preset dprnn-causal --batch 4 --seconds 4 --steps 8

Runs :func:`speechsep.train.train` for ``--steps`` optimiser steps on random mixtures held in memory
(or ``--data SPEC``, a dataset spec, to include real loading) and reads the per-step records of
``log.jsonl``: the median step time (data wait + forward + backward + clip + Adam) and the median
fraction of it spent waiting for the next batch. The first step (allocator and kernel warm-up) is
left out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from speechsep.train.config import DataConfig, ModelSpec, TrainConfig
from speechsep.train.engine import train

__all__ = ["RandomMixtures", "measure", "main"]


class RandomMixtures(torch.utils.data.Dataset):
    """``count`` mixtures of ``sources`` white-noise sources, ``length`` samples each."""

    def __init__(self, count: int, sources: int, length: int, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.sources = torch.randn(count, sources, length, generator=gen)

    def __len__(self) -> int:
        return self.sources.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sources[index].sum(0), self.sources[index]


def measure(preset: str, *, batch: int, seconds: float, steps: int, device: str = "auto", num_workers: int = 0,
            data: str | None = None, overrides: dict | None = None) -> dict:
    from speechsep.registry import build

    probe = build(preset, **(overrides or {}))
    sr, sources = probe.sample_rate, probe.num_sources
    del probe
    cfg = TrainConfig(
        model=ModelSpec(preset, dict(overrides or {})),
        data=DataConfig(train=data or "", valid=data or "", segment_seconds=seconds, valid_segment_seconds=seconds,
                        valid_max_examples=batch, batch_size=batch, num_workers=num_workers),
        max_epochs=1, steps_per_epoch=steps, log_every=1,
    )
    synthetic = None if data else RandomMixtures(batch * steps, sources, round(seconds * sr))
    with tempfile.TemporaryDirectory() as tmp:
        train(cfg, Path(tmp) / "run", device=device, train_data=synthetic, valid_data=synthetic, progress=False)
        records = [json.loads(line) for line in (Path(tmp) / "run" / "log.jsonl").read_text().splitlines()]
    per_step = [r for r in records if r["kind"] == "train"][1:]
    if not per_step:
        raise ValueError("need --steps >= 2 (the first step is warm-up)")
    return {
        "preset": preset,
        "batch": batch,
        "seconds": seconds,
        "sample_rate": sr,
        "steps_timed": len(per_step),
        "device": device,
        "threads": torch.get_num_threads(),
        "num_workers": num_workers,
        "step_seconds_median": statistics.median(r["step_seconds"] for r in per_step),
        "data_wait_fraction_median": statistics.median(r["data_wait_fraction"] for r in per_step),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench train-step", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tfacm-small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--data", help="a dataset spec instead of in-memory random mixtures")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(measure(args.preset, batch=args.batch, seconds=args.seconds, steps=args.steps,
                             device=args.device, num_workers=args.num_workers, data=args.data), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
