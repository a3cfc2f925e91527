"""Objective assembly for generalized iterative separation (iterative paper, Sec. 2 and Fig. 1).

A generalized iterative model produces many estimates of the same sources: the output of every
iteration (Fig. 1 A), of every SISO layer through the shared mask layer when the objective is
layer-wise (Fig. 1 B/C, Table 2), and of the training-only oracle-bias pass (Table 4). This module
decides which of them the loss sees and with what weight, and turns the choice into the list of
``(estimate (B, C, T), weight, label)`` terms the training engine sums under PIT.

It works on any sequence of labelled estimates with the fields ``estimate``, ``iteration``,
``layer``, ``oracle`` and ``label`` (the iterative model's ``IterativeOutputs.estimates``), so it
does not import the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import torch

from speechsep.losses.pit import PITLoss
from speechsep.losses.snr import pairwise_neg_snr

__all__ = ["ObjectiveConfig", "LabelledEstimate", "assemble_terms", "weighted_pit_loss", "ObjectiveTerm"]

#: what the training engine consumes: estimate (B, C, T), weight, label
ObjectiveTerm = tuple[torch.Tensor, float, str]


class LabelledEstimate(Protocol):
    estimate: torch.Tensor  # (B, C, T)
    iteration: int  # 1-based iteration; for the oracle pass, the iteration whose SIMO it used
    layer: int  # SISO layer 1..K2 (0: the SIMO output itself, when K2 = 0)
    oracle: bool  # produced by the oracle-bias pass

    @property
    def label(self) -> str: ...


@dataclasses.dataclass
class ObjectiveConfig:
    """Which estimates are trained and how they are weighted.

    iterations: ``"all"`` puts a loss on every iteration's output (the paper's setting, Sec. 2.1);
        ``"last"`` only on the last iteration's.
    layers: ``"last"`` uses each iteration's final layer; ``"all"`` every layer the model returned
        (the layer-wise objective; the model returns per-layer estimates only when ``layerwise``).
    normalize: divide the main weights by their count, so models with different numbers of
        iterations or layers train at the same loss scale (and the same effect of gradient
        clipping at norm 5); otherwise every term weighs 1 (a plain sum).
    oracle_weight: weight of the oracle-bias auxiliary term relative to one main term.
    """

    iterations: str = "all"
    layers: str = "all"
    normalize: bool = True
    oracle_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.iterations not in ("all", "last"):
            raise ValueError(f"objective.iterations must be 'all' or 'last'; got {self.iterations!r}")
        if self.layers not in ("all", "last"):
            raise ValueError(f"objective.layers must be 'all' or 'last'; got {self.layers!r}")
        if self.oracle_weight < 0:
            raise ValueError(f"objective.oracle_weight must be >= 0; got {self.oracle_weight}")


def _last_layers(estimates: Sequence[LabelledEstimate]) -> dict[tuple[bool, int], int]:
    """(oracle, iteration) -> its deepest layer index."""
    deepest: dict[tuple[bool, int], int] = {}
    for e in estimates:
        key = (e.oracle, e.iteration)
        deepest[key] = max(deepest.get(key, e.layer), e.layer)
    return deepest


def assemble_terms(estimates: Iterable[LabelledEstimate], config: ObjectiveConfig) -> list[ObjectiveTerm]:
    """Select and weight the estimates the loss sees; returns ``[(estimate, weight, label), ...]``."""
    estimates = list(estimates)
    if not estimates:
        raise ValueError("no estimates to build an objective from")
    main = [e for e in estimates if not e.oracle]
    oracle = [e for e in estimates if e.oracle]
    deepest = _last_layers(estimates)
    last_iteration = max(e.iteration for e in main)

    def keep(e: LabelledEstimate) -> bool:
        if config.layers == "last" and e.layer != deepest[(e.oracle, e.iteration)]:
            return False
        return e.oracle or config.iterations == "all" or e.iteration == last_iteration

    main = [e for e in main if keep(e)]
    oracle = [e for e in oracle if keep(e)] if config.oracle_weight > 0 else []
    unit = 1.0 / len(main) if config.normalize else 1.0
    # The oracle pass may itself return several layers; they share the oracle weight.
    oracle_unit = unit * config.oracle_weight / max(len(oracle), 1)
    terms = [(e.estimate, unit, e.label) for e in main]
    terms += [(e.estimate, oracle_unit, e.label) for e in oracle]
    return terms


def weighted_pit_loss(
    terms: Sequence[ObjectiveTerm],
    targets: torch.Tensor,
    pit: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of the terms' PIT losses: ``(total (B,), {label: loss (B,)})``; each term finds its own permutation.

    The training engine does the same sum; this exists for callers that train without it
    (tests, the experiment runner's sanity checks).
    """
    pit = pit or PITLoss(pairwise_neg_snr)
    total = torch.zeros(targets.shape[0], device=targets.device, dtype=targets.dtype)
    parts: dict[str, torch.Tensor] = {}
    for estimate, weight, label in terms:
        loss, _ = pit(estimate, targets)
        parts[label] = loss
        total = total + weight * loss
    return total, parts
