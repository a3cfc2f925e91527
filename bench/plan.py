"""What a benchmark run measures: the models, lengths, repeats and time budgets of ``--quick`` and full.

Every measurement that would take longer than its budget (estimated from the model's measured 1 s
forward time) is skipped and recorded with the reason, so a slow model never blows the run's time
and a missing number is never silent.
"""

from __future__ import annotations

import dataclasses

from bench.anchors import ANCHORED
from speechsep.registry import get_preset, list_presets

__all__ = ["BenchPlan", "make_plan", "default_models", "QUICK_SKIP"]

#: the iterative rows a quick run keeps: the time-domain row the asteroid anchor pairs with, and 1 and 3
#: iterations of the same blocks, which show the paper's point (iterations add depth, not parameters)
QUICK_ITERATIVE = ("iter-time-simo3-siso0-it1", "iter-freq-simo1-siso2-it1", "iter-freq-simo1-siso2-it3-detach")
#: the slowest presets, left out of a quick run (each would take minutes per measurement here)
QUICK_SKIP = ("tfgridnet-causal",)


@dataclasses.dataclass(frozen=True)
class BenchPlan:
    quick: bool
    models: tuple[str, ...]
    #: models given by name but left out, with the reason
    skipped_models: tuple[tuple[str, str], ...]
    offline_seconds: tuple[float, ...]
    memory_seconds: tuple[float, ...]
    chunk_ms: tuple[float, ...]
    stream_seconds: float
    warmup: int
    repeats: int
    train_batch: int
    train_seconds: float
    train_warmup: int
    train_repeats: int
    threads: int
    #: a single measurement estimated to take longer than this is skipped (seconds)
    budget_seconds: float
    #: measurements that would end later than this after the start are skipped (seconds)
    deadline_seconds: float
    anchors: bool
    pit: bool

    def runs(self) -> int:
        """How many (model, measurement) cells the plan asks for, before budget skipping."""
        per_model = len(self.offline_seconds) + len(self.memory_seconds) + len(self.chunk_ms) + 2
        return per_model * len(self.models)


def default_models() -> list[str]:
    """TFACM Table I (ours and the four baselines), the bundled lite preset, the iterative Table 1 rows at
    paper size."""
    names = [p.name for p in list_presets("tfacm-table1")]
    names.append("tfacm-lite")
    names += [p.name for p in list_presets("iterative-table1") if "paper-scale" in p.tags]
    return list(dict.fromkeys(names))


def make_plan(*, quick: bool, models: list[str] | None = None, threads: int = 2, anchors: bool = True,
              pit: bool = True) -> BenchPlan:
    """``models=None`` picks :func:`default_models` (a quick run keeps a subset); named models are all kept."""
    skipped: list[tuple[str, str]] = []
    if models is None:
        chosen = default_models()
        if quick:
            keep = []
            for name in chosen:
                if name in QUICK_SKIP:
                    skipped.append((name, "--quick leaves out the slowest presets"))
                elif name.startswith("iter-") and name not in QUICK_ITERATIVE:
                    skipped.append((name, "--quick keeps 1- and 3-iteration rows only"))
                else:
                    keep.append(name)
            chosen = keep
        # rows with an anchor first: if the deadline cuts the run short, it cuts unpaired rows
        chosen = sorted(chosen, key=lambda n: n not in ANCHORED)
    else:
        if not models:
            raise ValueError("--models needs at least one preset name")
        for name in models:
            get_preset(name)  # KeyError naming the known presets
        chosen = list(dict.fromkeys(models))
    if threads < 1:
        raise ValueError(f"threads must be at least 1; got {threads}")
    if quick:
        return BenchPlan(True, tuple(chosen), tuple(skipped), offline_seconds=(1.0, 4.0), memory_seconds=(4.0,),
                         chunk_ms=(16.0, 64.0), stream_seconds=1.0, warmup=1, repeats=2, train_batch=1,
                         train_seconds=1.0, train_warmup=1, train_repeats=2, threads=threads, budget_seconds=20.0,
                         deadline_seconds=540.0,
                         anchors=anchors, pit=pit)
    return BenchPlan(False, tuple(chosen), tuple(skipped), offline_seconds=(1.0, 4.0, 30.0),
                     memory_seconds=(4.0, 30.0, 120.0), chunk_ms=(16.0, 64.0), stream_seconds=4.0, warmup=1,
                     repeats=5, train_batch=4, train_seconds=4.0, train_warmup=1, train_repeats=3, threads=threads,
                     budget_seconds=120.0, deadline_seconds=3300.0, anchors=anchors, pit=pit)
