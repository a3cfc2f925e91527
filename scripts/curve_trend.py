"""How fast a training run is still improving, and how far its trend is from a quality goal.

Fits validation SI-SDRi (the ``valid`` records of a run's ``log.jsonl``) against log2 of the step by
least squares over the later part of the run, which gives "dB per doubling of the training steps",
and extrapolates the straight line to the goal. A log-linear trend is the optimistic reading of a
learning curve (real curves bend down further), so the steps it gives are a lower bound.

    python scripts/curve_trend.py /work/runs/iter-freq --goal 8 --offset 0.61
    python scripts/curve_trend.py /work/runs/tfacm-lite --goal 6 --offset 0.24

``--offset``: test SI-SNRi minus validation SI-SDRi at the bundled step (the goal is on the test
split); ``--from-fraction``: fit only the validation points after this fraction of the run's steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def valid_points(run: Path) -> list[tuple[int, float]]:
    log = run / "log.jsonl"
    if not log.is_file():
        raise SystemExit(f"{log}: no such file (is {run} a training run folder?)")
    points = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "valid":
            points[int(record["step"])] = float(record["si_sdri"])  # a resumed run may repeat a step
    return sorted(points.items())


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares ``a + b * log2(step)``; returns (a, b)."""
    xs = [math.log2(s) for s, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--goal", type=float, required=True, help="goal SI-SNRi on the test split (dB)")
    parser.add_argument("--offset", type=float, default=0.0, help="test minus validation SI-SDRi (dB)")
    parser.add_argument("--from-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)
    points = valid_points(args.run)
    if not points:
        raise SystemExit(f"{args.run}: no validation records yet")
    last = points[-1][0]
    used = [p for p in points if p[0] >= args.from_fraction * last]
    if len(used) < 3:
        raise SystemExit(f"{args.run}: {len(used)} validation points after step {args.from_fraction * last:.0f}; need 3")
    a, b = fit(used)
    now = a + b * math.log2(last)
    print(f"{args.run}: {len(used)} validation points, steps {used[0][0]}-{last}")
    print(f"trend: {b:+.3f} dB validation SI-SDRi per doubling of steps; {now:.2f} dB at step {last} on the line")
    need = args.goal - args.offset
    if b <= 0:
        print(f"no upward trend: the goal {args.goal} dB is not reached by more of the same training")
        return 0
    doublings = (need - now) / b
    steps = last * 2 ** doublings
    print(f"goal {args.goal} dB test = {need:.2f} dB validation: {doublings:.1f} more doublings, "
          f"about {steps:.3g} steps ({steps / last:.3g}x the steps so far) if the line held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
