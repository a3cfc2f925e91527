"""A candidate's record in ``speechsep bench learn``: charged time per step, points, and how it is
kept consistent with the trainer's ``last.pt`` (see :mod:`bench.learn.run` for what is charged)."""

from __future__ import annotations

import dataclasses
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from speechsep.utils import atomic_path

__all__ = ["Progress", "Clock", "Pause", "load_progress", "save_progress", "reconcile", "finished", "children_cpu",
           "STATE_FILE", "CURVE_FILE", "TRAIN_SET"]

STATE_FILE = "bench_state.json"
CURVE_FILE = "curve.jsonl"
#: the name under which the sample of training examples is scored
TRAIN_SET = "train"


class Pause(KeyboardInterrupt):
    """Raised by the step hook: the trainer saves ``last.pt`` as for Ctrl-C and re-raises it."""


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclasses.dataclass
class Progress:
    """A candidate's bench state: what ``bench_state.json`` holds."""

    settings: dict[str, Any]
    meta: dict[str, Any]
    #: per step 1..N: [charged wall ms, charged process CPU ms, loss]
    steps: list[list[float]] = dataclasses.field(default_factory=list)
    epoch: int = 0
    estimated_steps: int = 0
    worker_cpu_s: float = 0.0
    #: wall seconds inside training sessions that were not charged (set-up, trainer validation)
    overhead_s: float = 0.0
    eval_s: float = 0.0
    points: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: the trainer's own stop reason (early_stop, max_epochs, max_steps), if it stopped
    stopped: str | None = None
    error: str | None = None

    @property
    def step(self) -> int:
        return len(self.steps)

    @property
    def train_s(self) -> float:
        return sum(s[0] for s in self.steps) / 1000.0

    def median(self, column: int) -> float:
        return statistics.median(s[column] for s in self.steps) if self.steps else 0.0


def load_progress(path: Path) -> Progress | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Progress(**{f.name: data[f.name] for f in dataclasses.fields(Progress) if f.name in data})


def save_progress(progress: Progress, run_dir: Path) -> None:
    with atomic_path(run_dir / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(dataclasses.asdict(progress)) + "\n")
    with atomic_path(run_dir / CURVE_FILE) as tmp:
        tmp.write_text("".join(json.dumps(p) + "\n" for p in progress.points))


def _checkpoint_step(run_dir: Path) -> int:
    from speechsep.checkpoint import read_checkpoint

    last = run_dir / "last.pt"
    return int(read_checkpoint(last)["step"]) if last.exists() else 0


def reconcile(progress: Progress, run_dir: Path) -> None:
    """Match the record to ``last.pt``, the step the trainer will resume from."""
    n = _checkpoint_step(run_dir)
    if n == 0:
        progress.steps, progress.points, progress.worker_cpu_s, progress.overhead_s = [], [], 0.0, 0.0
        progress.estimated_steps, progress.stopped, progress.epoch = 0, None, 0
    elif progress.step > n:
        del progress.steps[n:]
        progress.points = [p for p in progress.points if p["step"] <= n]
    elif progress.step < n:  # the trainer checkpointed steps the record missed (killed hard)
        missing = n - progress.step
        fill = [progress.median(0), progress.median(1), None]
        progress.steps.extend([list(fill) for _ in range(missing)])
        progress.estimated_steps += missing


class Clock:
    """The step hook: charges each step its wall and CPU time and pauses the trainer at ``target_s``."""

    def __init__(self, progress: Progress, target_s: float):
        self.progress, self.target_s = progress, target_s
        self.total_s = progress.train_s
        self.charged_s = 0.0  # in this session
        self.mark = (time.perf_counter(), _self_cpu())  # the end of the last hook (or the session's start)
        self.epoch: int | None = None  # of the last hook; None before the session's first step
        self.pending: list[int] = []  # steps charged their raw interval until a clean one is measured

    def __call__(self, info) -> None:
        wall, cpu = time.perf_counter(), _self_cpu()
        steps = self.progress.steps
        raw = [round((wall - self.mark[0]) * 1000.0, 3), round((cpu - self.mark[1]) * 1000.0, 3)]
        clean = self.epoch is not None and self.epoch == info.epoch
        if clean:
            for i in self.pending:  # the candidate's first step, with the first set-up in its interval
                self._recharge(i, raw)
        self.pending = []  # replaced by a clean interval, or kept as measured when there is none
        if clean:
            entry = [*raw, info.loss]
        elif steps:
            # the interval holds the trainer's set-up or its end-of-epoch validation: charge the median
            entry = [self.progress.median(0), self.progress.median(1), info.loss]
        else:  # no step measured yet: charge the interval, and correct it at the next clean one
            entry = [*raw, info.loss]
            self.pending.append(len(steps))
        steps.append(entry)  # one append: an interrupt leaves the step recorded or not, never half
        self.progress.epoch = info.epoch
        self.total_s += entry[0] / 1000.0
        self.charged_s += entry[0] / 1000.0
        self.epoch = info.epoch
        self.mark = (time.perf_counter(), _self_cpu())
        if self.total_s >= self.target_s and not self.pending:  # a pending step may still shrink
            raise Pause

    def _recharge(self, index: int, raw: list[float]) -> None:
        old = self.progress.steps[index]
        self.progress.steps[index] = [*raw, old[2]]
        self.total_s += (raw[0] - old[0]) / 1000.0
        self.charged_s += (raw[0] - old[0]) / 1000.0


def finished(progress: Progress, budget_minutes: float) -> bool:
    """Evaluated at its last step, and at (or past) the budget or stopped by the trainer."""
    if not progress.points or progress.points[-1]["step"] != progress.step:
        return False
    return progress.stopped is not None or progress.points[-1]["train_minutes"] >= budget_minutes - 1e-9


