"""Learning-rate schedules and early stopping: the papers' epoch-level ones, driven by the
validation SI-SDR, and a per-step warm-up and cosine decay.

* ``iterative`` (iterative paper, Sec. 3.2): "decayed by 0.98 for every two epochs ... early
  stopping is applied when no best validation model is found for 10 consecutive epochs".
* ``tfacm`` (TFACM paper, Sec. IV): "if no improvement was observed in 10 consecutive epochs, the
  learning rate was halved. Training stopped after 15 epochs without validation improvement."

* ``warmup_cosine`` (for learning-speed comparisons): linear warm-up to the peak LR, then a cosine
  decay to ``final_lr_ratio`` of it (:func:`warmup_cosine_lr`). The LR is a function of the global
  step alone, set before every optimiser step, so a resumed run gets exactly the uninterrupted LRs.
  It never stops a run early; validation only picks the best checkpoint.

Both schedulers are called once per finished epoch with the validation score (higher is better),
``at_step(step)`` before every optimiser step, and hold all their state in :meth:`state_dict`, so a
resumed run continues the same schedule. :func:`make_scheduler` builds the configured one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from speechsep.train.config import ScheduleConfig

__all__ = ["ScheduleRules", "rules_for", "EpochScheduler", "WarmupCosineScheduler", "warmup_cosine_lr",
           "make_scheduler"]


@dataclasses.dataclass(frozen=True)
class ScheduleRules:
    decay: float
    #: decay every this many epochs regardless of the score (None: not used)
    every: int | None
    #: decay after this many epochs without improvement (None: not used)
    patience: int | None
    stop_patience: int


_PAPER = {
    "iterative": ScheduleRules(decay=0.98, every=2, patience=None, stop_patience=10),
    "tfacm": ScheduleRules(decay=0.5, every=None, patience=10, stop_patience=15),
}


def rules_for(config: ScheduleConfig) -> ScheduleRules:
    base = _PAPER[config.kind]
    return ScheduleRules(
        decay=base.decay if config.decay is None else config.decay,
        every=base.every if config.every is None else config.every,
        patience=base.patience if config.patience is None else config.patience,
        stop_patience=base.stop_patience if config.stop_patience is None else config.stop_patience,
    )


class EpochScheduler:
    """``step(score) -> should_stop``; multiplies every param group's LR by ``decay`` when due."""

    def __init__(self, optimizer: torch.optim.Optimizer, rules: ScheduleRules):
        self.optimizer = optimizer
        self.rules = rules
        self.epochs = 0
        self.best = -math.inf
        self.best_epoch = 0
        self.since_best = 0
        #: epochs without improvement since the last plateau decay (tfacm)
        self.plateau = 0

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def at_step(self, step: int) -> None:
        """Epoch schedules change the LR only in :meth:`step`."""

    def _decay(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = group["lr"] * self.rules.decay

    def step(self, score: float) -> bool:
        """Record one finished epoch's validation score; returns True when training should stop."""
        self.epochs += 1
        improved = score > self.best
        if improved:
            self.best, self.best_epoch, self.since_best, self.plateau = score, self.epochs, 0, 0
        else:
            self.since_best += 1
            self.plateau += 1
        if self.rules.every is not None and self.epochs % self.rules.every == 0:
            self._decay()
        if self.rules.patience is not None and self.plateau >= self.rules.patience:
            self._decay()
            self.plateau = 0
        return self.since_best >= self.rules.stop_patience

    def is_best(self) -> bool:
        """Whether the epoch just recorded set a new best."""
        return self.epochs > 0 and self.best_epoch == self.epochs

    def state_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "since_best": self.since_best,
            "plateau": self.plateau,
            "rules": dataclasses.asdict(self.rules),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = int(state["epochs"])
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.since_best = int(state["since_best"])
        self.plateau = int(state["plateau"])


def warmup_cosine_lr(step: int, *, peak: float, warmup_steps: int, total_steps: int, final_lr_ratio: float) -> float:
    """The LR of optimiser step ``step`` (0-based: the number of steps already taken).

    Warm-up ``peak * (step + 1) / (warmup_steps + 1)`` for ``step < warmup_steps`` (never exactly 0, so
    no step is wasted; it reaches ``peak`` at ``warmup_steps``), then
    ``final + (peak - final) * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps))) / 2``
    with ``final = final_lr_ratio * peak``, and ``final`` from ``total_steps`` on.
    """
    if step < warmup_steps:
        return peak * (step + 1) / (warmup_steps + 1)
    final = final_lr_ratio * peak
    if step >= total_steps:
        return final
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineScheduler:
    """Sets every param group's LR from the global step (:func:`warmup_cosine_lr`, each group's peak
    being its LR when the scheduler is built); ``step(score)`` only tracks the best and never stops."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int,
                 final_lr_ratio: float, planned: bool = False):
        """``planned``: ``total_steps`` is the run's planned length rather than a configured number;
        a resumed run then keeps the length its checkpoint was planned with."""
        if total_steps <= warmup_steps:
            raise ValueError(f"warmup_cosine: total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        self.optimizer = optimizer
        self.peaks = [float(group["lr"]) for group in optimizer.param_groups]
        self.warmup_steps, self.total_steps, self.final_lr_ratio = warmup_steps, total_steps, final_lr_ratio
        self.planned = planned
        self.epochs = 0
        self.best = -math.inf
        self.best_epoch = 0
        self.at_step(0)  # the first update's LR, also what a run that has not stepped reports

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def lr_at(self, step: int) -> list[float]:
        return [warmup_cosine_lr(step, peak=peak, warmup_steps=self.warmup_steps, total_steps=self.total_steps,
                                 final_lr_ratio=self.final_lr_ratio) for peak in self.peaks]

    def at_step(self, step: int) -> None:
        """Set the LR of the update that follows ``step`` finished steps."""
        for group, lr in zip(self.optimizer.param_groups, self.lr_at(step), strict=True):
            group["lr"] = lr

    def step(self, score: float) -> bool:
        """Record one finished epoch's validation score; never asks to stop."""
        self.epochs += 1
        if score > self.best:
            self.best, self.best_epoch = score, self.epochs
        return False

    def is_best(self) -> bool:
        return self.epochs > 0 and self.best_epoch == self.epochs

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best": self.best, "best_epoch": self.best_epoch, "peaks": self.peaks,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "final_lr_ratio": self.final_lr_ratio, "planned": self.planned}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = int(state["epochs"])
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        # The numbers come from the config (a resume that changes them is warned about), except a
        # planned length: the run keeps the one it started with, even if max_steps or max_epochs
        # are raised to continue it.
        if self.planned and state.get("planned"):
            self.total_steps = int(state["total_steps"])


def make_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig, *, run_steps: int | None = None
                   ) -> EpochScheduler | WarmupCosineScheduler:
    """The scheduler ``config`` names; ``run_steps`` (the run's planned number of optimiser steps) is
    the ``warmup_cosine`` decay length when ``config.total_steps`` is unset."""
    if config.kind != "warmup_cosine":
        return EpochScheduler(optimizer, rules_for(config))
    planned = config.total_steps is None
    total = run_steps if planned else config.total_steps
    if total is None:
        raise ValueError("schedule.kind warmup_cosine needs schedule.total_steps (or the run's length)")
    if total <= config.warmup_steps:
        raise ValueError(f"schedule.warmup_steps ({config.warmup_steps}) must be shorter than the run "
                         f"({total} steps); set schedule.total_steps or lengthen the run")
    return WarmupCosineScheduler(optimizer, warmup_steps=config.warmup_steps, total_steps=total,
                                 final_lr_ratio=config.final_lr_ratio, planned=planned)
