"""Wall-clock timing shared by our side and the anchor child (this file imports nothing from speechsep:
its source is prepended to the child script that runs in the anchor venv)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["run_times", "median_seconds", "embeddable_source"]


def run_times(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed (allocator, kernel selection), then ``repeats`` times timed."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    return statistics.median(run_times(fn, warmup, repeats))


def embeddable_source() -> str:
    """This module's source without its ``__future__`` import, to paste into a child script after the
    child's own imports (a ``__future__`` import must open a file)."""
    import inspect
    import sys

    return inspect.getsource(sys.modules[__name__]).replace("from __future__ import annotations\n", "")
