"""Objective assembly for generalized iterative separation (iterative paper, Sec. 2 and Fig. 1).

A generalized iterative model produces many estimates of the same sources: the output of every
iteration (Fig. 1 A), of every SISO layer through the shared mask layer when the objective is
layer-wise (Fig. 1 B/C, Table 2), and of the training-only oracle-bias pass (Table 4). This module
decides which of them the loss sees and with what weight, turns the choice into the list of
``(estimate (B, C, T), weight, label)`` terms, and sums those terms' losses (:func:`weighted_pit_loss`,
the only place the training loss is summed: the training engine's ``ModelWithLoss`` calls it).

The objective is a training setting, not part of a model: the training config's ``loss:`` section
holds it (:class:`speechsep.train.config.LossConfig`), a model only computes the estimates it asks
for (:meth:`speechsep.models.base.SeparationModel.training_outputs`). Model configs written before
the objective moved held it as ``layerwise``, ``oracle_bias`` and ``objective``;
:func:`migrate_model_objective` turns those keys into the ``loss:`` fields they meant.

It works on any sequence of labelled estimates with the fields ``estimate``, ``iteration``,
``layer``, ``oracle`` and ``label`` (the iterative model's ``IterativeOutputs.estimates``), so it
does not import the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import torch

from speechsep.losses.pit import PITLoss
from speechsep.losses.snr import pairwise_neg_snr

__all__ = [
    "ObjectiveConfig",
    "LabelledEstimate",
    "assemble_terms",
    "weighted_pit_loss",
    "ObjectiveTerm",
    "LEGACY_MODEL_KEYS",
    "migrate_model_objective",
]

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
    """Which estimates are trained and how they are weighted (for a one-output model: its output, weight 1).

    iterations: ``"all"`` puts a loss on every iteration's output (the paper's setting, Sec. 2.1);
        ``"last"`` only on the last iteration's.
    layers: ``"last"`` uses each iteration's final layer; ``"all"`` every SISO layer through the
        shared mask layer (the layer-wise objective, Table 2; the model decodes them only then).
    normalize: divide the main weights by their count, so models with different numbers of
        iterations or layers train at the same loss scale (and the same effect of gradient
        clipping at norm 5); otherwise every term weighs 1 (a plain sum).
    iteration_weights: relative weight of iteration i's terms (index i - 1), before ``normalize``;
        ``None``: every iteration weighs the same.
    oracle_bias: add the training-only pass with the clean targets as the bias input (Table 4).
    oracle_weight: weight of the oracle-bias auxiliary term relative to one main term.
    deep_clustering_weight: weight of the deep-clustering term of a mask model's embedding head
        (Chimera++, :mod:`speechsep.losses.deep_clustering`), added to the summed main terms; 0: off.
    """

    iterations: str = "all"
    layers: str = "last"
    normalize: bool = True
    iteration_weights: tuple[float, ...] | None = None
    oracle_bias: bool = False
    oracle_weight: float = 1.0
    deep_clustering_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.iterations not in ("all", "last"):
            raise ValueError(f"objective.iterations must be 'all' or 'last'; got {self.iterations!r}")
        if self.layers not in ("all", "last"):
            raise ValueError(f"objective.layers must be 'all' or 'last'; got {self.layers!r}")
        if self.oracle_weight < 0:
            raise ValueError(f"objective.oracle_weight must be >= 0; got {self.oracle_weight}")
        if self.deep_clustering_weight < 0:
            raise ValueError(f"objective.deep_clustering_weight must be >= 0; got {self.deep_clustering_weight}")
        if self.iteration_weights is not None:
            self.iteration_weights = tuple(float(w) for w in self.iteration_weights)
            if not self.iteration_weights or any(w < 0 for w in self.iteration_weights):
                raise ValueError(f"objective.iteration_weights must be weights >= 0; got {self.iteration_weights}")


#: the objective's keys in iterative model configs (and ``model.overrides``) written before it moved
LEGACY_MODEL_KEYS = ("layerwise", "oracle_bias", "objective")


def migrate_model_objective(legacy: dict[str, Any]) -> dict[str, Any]:
    """The ``loss:`` fields that old model-config keys (:data:`LEGACY_MODEL_KEYS`) meant.

    ``layerwise: true`` -> ``layers: all`` (unless the old ``objective.layers`` was ``last``), and
    ``layerwise: false`` -> ``layers: last``; ``oracle_bias`` -> ``oracle_bias``; the old
    ``objective.{iterations, normalize, oracle_weight}`` -> the same names; an old ``objective.layers:
    last`` alone -> ``layers: last`` (``all`` alone said nothing: it applied only to layer-wise models).
    Keys not given stay unset, so the preset's objective still applies to them.
    """
    unknown = set(legacy) - set(LEGACY_MODEL_KEYS)
    if unknown:
        raise ValueError(f"not old objective keys: {sorted(unknown)}")
    old = dict(legacy.get("objective") or {})
    bad = set(old) - {"iterations", "layers", "normalize", "oracle_weight"}
    if bad:
        raise ValueError(f"objective: unknown key(s) {sorted(bad)}")
    fields: dict[str, Any] = {k: old[k] for k in ("iterations", "normalize", "oracle_weight") if k in old}
    if "layerwise" in legacy:
        fields["layers"] = "all" if legacy["layerwise"] and old.get("layers", "all") == "all" else "last"
    elif old.get("layers") == "last":
        fields["layers"] = "last"
    if "oracle_bias" in legacy:
        fields["oracle_bias"] = bool(legacy["oracle_bias"])
    ObjectiveConfig(**fields)  # the values must be valid
    return fields


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
    weights = config.iteration_weights
    if weights is not None and last_iteration > len(weights):
        raise ValueError(f"objective.iteration_weights has {len(weights)} weights for {last_iteration} iterations")
    terms = [(e.estimate, unit * (1.0 if weights is None else weights[e.iteration - 1]), e.label) for e in main]
    terms += [(e.estimate, oracle_unit, e.label) for e in oracle]
    return terms


def weighted_pit_loss(
    terms: Sequence[ObjectiveTerm],
    targets: torch.Tensor,
    pit: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of the terms' PIT losses: ``(total (B,), {label: loss (B,)})``; each term finds its own permutation.

    The one place the training loss is summed: the training engine calls it with its criterion
    (``pit``: any ``(estimate, targets) -> (loss (B,), anything)``, PIT or not).
    """
    pit = pit or PITLoss(pairwise_neg_snr)
    total = torch.zeros(targets.shape[0], device=targets.device, dtype=torch.promote_types(targets.dtype, torch.float32))
    parts: dict[str, torch.Tensor] = {}
    for estimate, weight, label in terms:
        loss, _ = pit(estimate, targets)
        parts[label] = loss
        total = total + weight * loss
    return total, parts
