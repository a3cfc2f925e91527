"""Paired SI-SNRi differences between two ``speechsep eval --out`` CSVs of the same mixtures, with a
bootstrap 95 % interval: how two models compare mixture by mixture, which is several times tighter
than comparing their two means.

    python -m bench paired-diff NEW.csv OLD.csv [NEW2.csv OLD2.csv ...]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
from pathlib import Path

RESAMPLES = 2000


def read_scores(path: Path) -> dict[str, float]:
    """Mixture id -> SI-SNRi (dB) of one eval CSV."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such eval CSV (write one with `speechsep eval CKPT --data SPEC --out {path}`)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "si_sdri" not in rows[0]:
        raise ValueError(f"{path}: not a `speechsep eval --out` CSV (no si_sdri column)")
    key = "id" if "id" in rows[0] else next(iter(rows[0]))
    return {row[key]: float(row["si_sdri"]) for row in rows}


def paired(new: dict[str, float], old: dict[str, float], *, seed: int = 0) -> dict[str, float]:
    """Means over the shared mixtures and the mean difference with its bootstrap interval."""
    keys = sorted(set(new) & set(old))
    if len(keys) < 2:
        raise ValueError(f"the two CSVs share {len(keys)} mixtures; a paired comparison needs the same ones")
    diffs = [new[k] - old[k] for k in keys]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(RESAMPLES))
    return {"n": len(keys), "new": statistics.fmean(new[k] for k in keys), "old": statistics.fmean(old[k] for k in keys),
            "diff": statistics.fmean(diffs), "low": means[int(0.025 * RESAMPLES)],
            "high": means[int(0.975 * RESAMPLES) - 1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csvs", type=Path, nargs="+", help="pairs: NEW.csv OLD.csv ...")
    a = p.parse_args()
    if len(a.csvs) % 2:
        p.error("give the CSVs in pairs: NEW OLD [NEW OLD ...]")
    for new, old in zip(a.csvs[::2], a.csvs[1::2], strict=True):
        try:
            r = paired(read_scores(new), read_scores(old))
        except ValueError as err:
            p.exit(2, f"python -m bench paired-diff: {err}\n")
        print(f"{new.name} - {old.name}: n={r['n']} new {r['new']:.2f} old {r['old']:.2f} dB, "
              f"diff {r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]")


if __name__ == "__main__":
    main()
