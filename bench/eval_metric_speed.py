"""Seconds per utterance of the SDR/SDRi computation: ours (speechsep.metrics.bss_sdr) against the
fast_bss_eval calls evaluate_example made before (its numpy path, once for the estimates and once
for the mixture), interleaved utterance by utterance in one process, on real demo-corpus utterances.

    .venv/bin/python -m bench eval-metric-speed --data demo:/work/corpus/demo8k:test:reverb --count 10

The estimate is the reference with a little of the other source and of noise mixed in (what a
decent separator gives); the timings do not depend on it. Prints medians and the largest difference
between the two SDR values (they compute the same quantity).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from speechsep.data import open_dataset
from speechsep.metrics import bss_sdr


def fast_bss_eval_sdr(est: np.ndarray, ref: np.ndarray, mix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import fast_bss_eval

    values, _, _, _ = fast_bss_eval.bss_eval_sources(ref, est, compute_permutation=True)
    mix_values, _, _, _ = fast_bss_eval.bss_eval_sources(ref, np.repeat(mix[None], len(ref), 0),
                                                         compute_permutation=True)
    return values, mix_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = open_dataset(args.data, sample_rate=8000)
    rng = np.random.default_rng(0)
    ours, theirs, diffs, seconds = [], [], [], []
    for index in range(min(args.count, len(dataset))):
        mix, ref = (np.asarray(x, dtype=np.float64) for x in dataset[index][:2])
        est = ref + 0.2 * ref[::-1] + 0.05 * rng.standard_normal(ref.shape) * ref.std()
        t0 = time.perf_counter()
        values, _, mix_values = bss_sdr(torch.from_numpy(est), torch.from_numpy(ref), torch.from_numpy(mix))
        t1 = time.perf_counter()
        want, want_mix = fast_bss_eval_sdr(est, ref, mix)
        t2 = time.perf_counter()
        ours.append(t1 - t0)
        theirs.append(t2 - t1)
        seconds.append(mix.shape[-1] / 8000)
        diffs.append(max(np.abs(values.numpy() - want).max(), np.abs(mix_values.numpy() - want_mix).max()))
    print(json.dumps({
        "utterances": len(ours),
        "audio_seconds_median": statistics.median(seconds),
        "ours_seconds_median": statistics.median(ours),
        "fast_bss_eval_seconds_median": statistics.median(theirs),
        "speedup_median": statistics.median(t / o for t, o in zip(theirs, ours, strict=True)),
        "max_abs_difference_db": float(max(diffs)),
        "torch_threads": torch.get_num_threads(),
    }, indent=2))


if __name__ == "__main__":
    main()
