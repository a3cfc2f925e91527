"""``speechsep demo``: separate the bundled real example with the default bundled model."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "separate the bundled real two-speaker example with the default bundled model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", default="demo-output", help="folder for the separated wavs and the PNG")


def run(args: argparse.Namespace) -> int:
    from speechsep.inference.pretrained import bundled_models

    if not bundled_models():
        print(
            "speechsep demo: no trained model is bundled in speechsep/pretrained/ "
            "(train one: see README, Bundled models)."
        )
        return 1
    from speechsep.inference.example import run_demo

    return run_demo(args.out)
