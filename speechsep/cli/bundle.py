"""``speechsep bundle RUN --name NAME --data SPEC``: ship a trained run inside the package with its card."""

from __future__ import annotations

import argparse

NAME = "bundle"
HELP = "evaluate a training run and install it as a bundled model (speechsep/pretrained/NAME) with a model card"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="training run folder (best.pt, log.jsonl, config.yaml)")
    parser.add_argument("--name", required=True, help="bundled model name (folder under speechsep/pretrained/)")
    parser.add_argument("--data", required=True, help="test data spec for the card, e.g. demo:ROOT:test:reverb")
    parser.add_argument("--recipe", help="the recipe the run was trained with, for the card's command "
                        "(e.g. bundled/tfacm-lite)")
    parser.add_argument("--checkpoint", help="which checkpoint of the run to ship, a file name in its folder "
                        "(default: last.pt for a run that finished a warmup_cosine decay, else best.pt)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N test utterances")
    parser.add_argument("--notes", default="", help="free text for the card (e.g. why training stopped)")
    parser.add_argument("--default", action="store_true", help="make it the model `speechsep separate` uses by default")
    parser.add_argument("--default-causal", action="store_true",
                        help="make it the model live separation (`stream`, `serve`) uses by default (causal models)")


def run(args: argparse.Namespace) -> int:
    from speechsep.inference.bundling import bundle_run
    from speechsep.inference.pretrained import set_default_name

    out = bundle_run(args.run, args.name, args.data, limit=args.limit, notes=args.notes, recipe=args.recipe,
                     checkpoint=args.checkpoint,
                     progress=lambda done, total: print(f"\r  eval {done}/{total}", end="", flush=True))
    print()
    if args.default:
        set_default_name(args.name)
    if args.default_causal:
        set_default_name(args.name, causal=True)
    print(f"bundled {args.name} in {out}: see {out / 'card.md'}")
    return 0
