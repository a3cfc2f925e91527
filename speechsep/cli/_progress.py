"""Progress bars for long commands: tqdm on stderr, only when stderr is a terminal (logs and pipes stay clean)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def progress_bar(description: str, unit: str) -> Callable[[int, int], None] | None:
    """A ``(done, total)`` callback drawing a tqdm bar, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=description, unit=unit, file=sys.stderr, leave=False,
                            dynamic_ncols=True))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return update
