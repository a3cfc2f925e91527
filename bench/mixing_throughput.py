"""Dynamic-mixing throughput of two mixing setups, interleaved in one process.

    .venv/bin/python -m bench mixing-throughput /work/corpus/demo8k --count 200 --rounds 5
    .venv/bin/python -m bench mixing-throughput ROOT --segment-seconds 2 --arm 'recipe={"speed_range": [0.8, 1.2]}' \\
        --arm 'recipe+voice={"speed_range": [0.8, 1.2], "pitch_shift_semitones": [-4, 4]}'

Each round times ``count`` training mixtures of each arm, alternating, on one thread: what one
loader worker can feed a training step. An arm is a name and the ``data.mixing`` overrides (JSON) it
applies to the corpus's mix; without ``--arm``, the corpus's mix with speed perturbation on (the
default) against off (``speed_range = (1, 1)``). Prints mixtures per second per round, the medians,
and the first arm's median over the second's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from speechsep.data.datasets import DynamicMixing

DEFAULT_ARMS = {"augmented": {}, "plain": {"speed_range": (1.0, 1.0)}}


def _arm(text: str) -> tuple[str, dict]:
    name, sep, overrides = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"an arm is NAME=JSON; got {text!r}")
    try:
        mixing = json.loads(overrides)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"arm {name}: its overrides are not JSON ({e})") from e
    if not isinstance(mixing, dict):
        raise argparse.ArgumentTypeError(f"arm {name}: the overrides must be a JSON object")
    return name, mixing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--segment-seconds", type=float, default=None, help="mixture length (the corpus's by default)")
    parser.add_argument("--arm", type=_arm, action="append", help="NAME=JSON mixing overrides; give two")
    args = parser.parse_args()
    arms = dict(args.arm) if args.arm else DEFAULT_ARMS
    if len(arms) != 2:
        parser.error(f"give two arms with distinct names; got {list(arms)}")
    torch.set_num_threads(1)
    sets = {name: DynamicMixing(args.root, sample_rate=8000, segment_seconds=args.segment_seconds, mixing=mixing)
            for name, mixing in arms.items()}
    rates: dict[str, list[float]] = {k: [] for k in sets}
    for r in range(args.rounds):
        for name, data in sets.items():
            start = time.perf_counter()
            for i in range(r * args.count, (r + 1) * args.count):
                data[i]
            rates[name].append(args.count / (time.perf_counter() - start))
    for name, values in rates.items():
        print(f"{name}: " + " ".join(f"{v:.1f}" for v in values) + f" mixtures/s; median {statistics.median(values):.1f}")
    first, second = rates
    print(f"{first} / {second}: {statistics.median(rates[first]) / statistics.median(rates[second]):.2f}")


if __name__ == "__main__":
    main()
