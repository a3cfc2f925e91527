"""``speechsep info``: versions, device and the registered models."""

from __future__ import annotations

import argparse

NAME = "info"
HELP = "print the version, torch version, device and registered models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", help="list only presets with this tag (e.g. tfacm-table1)")


def run(args: argparse.Namespace) -> int:
    import torch

    import speechsep
    from speechsep.inference.pretrained import resolve_device
    from speechsep.registry import list_families, list_presets

    auto = resolve_device("auto")  # what --device auto picks
    device = f"{auto} ({torch.cuda.get_device_name(auto)})" if auto.type == "cuda" else "cpu"
    print(f"speechsep {speechsep.__version__}")
    print(f"torch     {torch.__version__} (threads: {torch.get_num_threads()})")
    print(f"device    {device}")
    print(f"families  {', '.join(list_families()) or '(none)'}")
    presets = list_presets(args.tag)
    print(f"presets   ({len(presets)})")
    for p in sorted(presets, key=lambda p: (p.family, p.name)):
        print(f"  {p.name:<40} {p.family:<16} {p.description}")
    return 0
