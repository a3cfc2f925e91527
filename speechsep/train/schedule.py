"""Epoch-level learning-rate schedules and early stopping, driven by the validation SI-SDR.

* ``iterative`` (iterative paper, Sec. 3.2): "decayed by 0.98 for every two epochs ... early
  stopping is applied when no best validation model is found for 10 consecutive epochs".
* ``tfacm`` (TFACM paper, Sec. IV): "if no improvement was observed in 10 consecutive epochs, the
  learning rate was halved. Training stopped after 15 epochs without validation improvement."

The scheduler is called once per finished epoch with the validation score (higher is better) and
holds all its state in :meth:`state_dict`, so a resumed run continues the same schedule.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from speechsep.train.config import ScheduleConfig

__all__ = ["ScheduleRules", "rules_for", "EpochScheduler"]


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
