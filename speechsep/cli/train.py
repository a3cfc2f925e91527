"""``speechsep train CONFIG --out RUN``: train from a recipe; rerunning on RUN resumes."""

from __future__ import annotations

import argparse
import math
import os

NAME = "train"
HELP = "train a model from a recipe YAML (or a shipped recipe such as demo/tfacm-small); reruns resume"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Several processes (DistributedDataParallel; NCCL on GPUs, gloo on CPU): "
        "torchrun --nproc-per-node N -m speechsep train CONFIG --out RUN. Only rank 0 writes RUN; "
        "data.batch_size is per process."
    )
    parser.add_argument("config", help="recipe YAML path, or a shipped recipe name CORPUS/PRESET")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, curves.png")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set optim.lr=5e-4 --set model.overrides.num_blocks=2")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    parser.add_argument("--list", action="store_true", help="list the shipped recipes and exit")


def run(args: argparse.Namespace) -> int:
    from speechsep.train import load_train_config, train
    from speechsep.train.recipes import list_recipes, resolve_recipe

    if args.list:
        print("\n".join(list_recipes()))
        return 0
    config = load_train_config(resolve_recipe(args.config), args.overrides)
    result = train(config, args.out, device=args.device, progress=not args.no_progress)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary line, not one per process
        best = f"{result.best_si_sdr:.2f} dB" if math.isfinite(result.best_si_sdr) else "none yet (no epoch finished)"
        print(f"{result.out_dir}: {result.stopped} after {result.epoch} epochs, {result.step} steps; "
              f"best valid SI-SDR {best}")
    return 0
