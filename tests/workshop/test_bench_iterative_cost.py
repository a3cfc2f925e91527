"""The iterative paper's cost table and the CPU-clock switch of the speed comparison."""

import time

from bench.iterative_cost import _clock, cost_markdown
from speechsep.bench import timing


def test_cpu_clock_does_not_count_waiting():
    nap = lambda: time.sleep(0.05)  # noqa: E731
    (wall,) = timing.run_times(nap, 0, 1)
    with _clock("cpu"):
        (cpu,) = timing.run_times(nap, 0, 1)
    assert wall >= 0.05 and cpu < 0.02
    # the helpers are back on the wall clock afterwards
    assert timing.time is time
    with _clock("wall"):
        assert timing.time is time


def test_cost_table_rows():
    row = {"simo": 1, "siso": 2, "iterations": 3, "detach": True, "depth": 9,
           "time": {"params": 1_341_634, "macs_per_second": 14.6e9},
           "freq": {"params": 1_366_913, "macs_per_second": 1.92e9}}
    lines = cost_markdown([row, {**row, "iterations": 1, "detach": None, "depth": 3}]).splitlines()
    assert lines[0].startswith("| SIMO | SISO | Iter. | Depth | Detach | Time params (M) |")
    assert lines[2] == "| 1 | 2 | 3 | 9 | ✓ | 1.342 | 14.60 | 1.367 | 1.92 |"
    assert lines[3].startswith("| 1 | 2 | 1 | 3 | – |")
