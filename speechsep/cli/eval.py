"""``speechsep eval``: score a trained model on a dataset; per-utterance CSV and a JSON summary."""

from __future__ import annotations

import argparse
import sys

NAME = "eval"
HELP = "evaluate a model on a dataset: SI-SDR(i), SDR(i), PESQ, STOI per utterance and summarised"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speechsep.cli.separate import add_segment_arguments

    parser.add_argument("model", metavar="MODEL|RUN", help="checkpoint file, training run folder or bundled name")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="dataset spec, e.g. demo:ROOT:test (every condition: clean, noisy, mixed), "
                             "demo:ROOT:test:clean, wham:ROOT:tt, folder:MIX:S1,S2 (see speechsep.data.spec)")
    parser.add_argument("--out", required=True, metavar="results.csv",
                        help="per-utterance CSV; the summary JSON is written beside it (results.json)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N utterances")
    parser.add_argument("--no-pesq", action="store_true", help="skip PESQ and STOI (the slow metrics)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="score utterances in N worker processes while the model separates the next ones "
                             "(default 1: in this process)")
    add_segment_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from speechsep.data.spec import condition_specs
    from speechsep.inference.evaluate import evaluate_spec, format_summary

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    # A held-out split of a corpus with conditions (clean, noisy, mixed) is reported per condition,
    # each in its own CSV beside --out (results_clean.csv, ...).
    specs = condition_specs(args.data)
    out = Path(args.out)
    for condition, spec in specs:
        if condition:
            print(f"== {condition}: {spec}")
        result, csv_path, json_path = evaluate_spec(
            args.model,
            spec,
            out.with_name(f"{out.stem}_{condition}{out.suffix}") if condition else out,
            device=args.device,
            limit=args.limit,
            pesq_stoi=not args.no_pesq,
            segment_seconds=args.segment_seconds or None,
            overlap_seconds=args.overlap_seconds,
            batch_segments=args.batch_segments,
            precision=args.precision,
            jobs=args.jobs,
            progress=progress,
        )
        print(format_summary(result))
        print(f"wrote {csv_path} and {json_path}")
    return 0
