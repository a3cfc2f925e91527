"""Dynamic-mixing throughput with and without augmentation, interleaved in one process.

    .venv/bin/python -m bench mixing-throughput /work/corpus/demo8k --count 200 --rounds 5

Each round times ``count`` 4 s training mixtures of the corpus's mix with speed perturbation on
(the default) and off (``speed_range = (1, 1)``), alternating, on one thread: what one loader
worker can feed a training step. Prints mixtures per second per round and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from speechsep.data.datasets import DynamicMixing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sets = {"augmented": DynamicMixing(args.root, sample_rate=8000),
            "plain": DynamicMixing(args.root, sample_rate=8000, mixing={"speed_range": (1.0, 1.0)})}
    rates: dict[str, list[float]] = {k: [] for k in sets}
    for r in range(args.rounds):
        for name, data in sets.items():
            start = time.perf_counter()
            for i in range(r * args.count, (r + 1) * args.count):
                data[i]
            rates[name].append(args.count / (time.perf_counter() - start))
    for name, values in rates.items():
        print(f"{name}: " + " ".join(f"{v:.1f}" for v in values) + f" mixtures/s; median {statistics.median(values):.1f}")
    print(f"augmented / plain: {statistics.median(rates['augmented']) / statistics.median(rates['plain']):.2f}")


if __name__ == "__main__":
    main()
