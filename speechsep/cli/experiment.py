"""``speechsep experiment iterative``: train and evaluate the iterative paper's Tables 1-4 and write them."""

from __future__ import annotations

import argparse

NAME = "experiment"
HELP = "reproduce a paper's experiment grid (train every row, evaluate, write the tables)"


def _tables(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--tables takes numbers like 1,2,3,4; got {text!r}") from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    sub.required = True
    p = sub.add_parser("iterative", help="Tables 1-4 of the generalized iterative separation paper",
                       description="Train every row of the requested tables (one run folder per trained model, "
                                   "resumable: rerun the same command to continue), evaluate on the test split and "
                                   "write OUT/tables/tableN.md with our SI-SDR beside the paper's. Several processes "
                                   "may run the same command on one OUT: they share out the rows.")
    p.add_argument("--tables", type=_tables, default=(1, 2, 3, 4), help="comma-separated tables (default 1,2,3,4)")
    p.add_argument("--scale", choices=("tiny", "paper"), default="tiny",
                   help="tiny: narrow models at 8 kHz and a short budget (CPU); paper: Sec. 3 sizes, 16 kHz, 100 epochs")
    p.add_argument("--data", required=True,
                   help="one dataset spec (speechsep.data.spec grammar) whose train/valid/test splits are used: "
                        "KIND:ROOT (demo:CORPUS), any one split named (demo:CORPUS:test:reverb, "
                        "whamr:/data/whamr:tt:8k), or {split} marked (folder:/d/{split}/mix:/d/{split}/s1,/d/{split}/s2)")
    p.add_argument("--out", required=True, help="output folder (runs/, tables/, results.json)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--epochs", type=int, help="override the scale's max_epochs")
    p.add_argument("--steps-per-epoch", type=int, help="override the scale's steps per epoch")
    p.add_argument("--eval-limit", type=int, help="evaluate on at most this many test mixtures")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="training-config override (dotted key, YAML value), e.g. --set data.batch_size=8")
    p.add_argument("--plan", action="store_true", help="list the models the tables need and exit")
    p.add_argument("--threads", type=int, help="torch intra-op threads (1 is often fastest for --scale tiny)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from speechsep.config import parse_override
    from speechsep.experiments.iterative_grid import GridSettings, plan, run_grid

    overrides = dict(parse_override(text) for text in args.set)
    if args.epochs is not None:
        overrides["max_epochs"] = args.epochs
    if args.steps_per_epoch is not None:
        overrides["steps_per_epoch"] = args.steps_per_epoch
    settings = GridSettings(scale=args.scale, tables=args.tables, data=args.data, device=args.device,
                            train_overrides=overrides, eval_limit=args.eval_limit, progress=not args.no_progress,
                            threads=args.threads)
    jobs = plan(settings.tables, settings.scale)
    if args.plan:
        for job in jobs:
            print(f"{job.preset:<52} inference iterations {','.join(map(str, job.eval_iterations))}")
        print(f"{len(jobs)} models")
        return 0
    results = run_grid(settings, args.out)
    print(f"tables written to {args.out}/tables/ ({len(results['rows'])} of {len(jobs)} models done)")
    for preset in results["running_elsewhere"]:
        print(f"still running in another process: {preset}")
    for preset, why in results["failed"].items():
        print(f"FAILED {preset}: {why} (see {args.out}/runs/{preset}/error.txt)")
    return 1 if results["failed"] else 0
