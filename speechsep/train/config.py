"""The training configuration: nested dataclasses; a recipe YAML is only their serialised form.

Defaults follow the iterative paper (Sec. 3.2): Adam at 1e-3, gradient-norm clip 5, negative SNR
under utterance-level PIT, LR x0.98 every two epochs, early stop after 10 epochs without a new best.
The TFACM paper (Sec. IV) differs only in the schedule (``schedule.kind: tfacm``). For learning-speed
experiments there is also a per-step schedule (``schedule.kind: warmup_cosine``: linear warm-up, cosine
decay) and a clean-first curriculum for dynamic mixing (``data.clean_first_epochs``).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

from speechsep.config import ConfigError, apply_overrides, from_dict, load_yaml, parse_override
from speechsep.losses.objectives import LEGACY_MODEL_KEYS, ObjectiveConfig, migrate_model_objective
from speechsep.precision import check_precision

__all__ = [
    "ModelSpec",
    "DataConfig",
    "OptimConfig",
    "ScheduleConfig",
    "LossConfig",
    "TrainConfig",
    "load_train_config",
    "SCHEDULE_KINDS",
    "LOSS_NAMES",
    "TARGETS",
]

SCHEDULE_KINDS = ("iterative", "tfacm", "warmup_cosine")
LOSS_NAMES = ("neg_snr", "neg_si_sdr")
TARGETS = ("reverberant", "dry", "anechoic")


@dataclasses.dataclass
class ModelSpec:
    """A registered preset (``speechsep info`` lists them) and config overrides for it."""

    name: str = "tfacm-small"
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DataConfig:
    """Where examples come from and how they are cut.

    ``train``/``valid`` are dataset specs for :func:`speechsep.data.open_dataset` (environment
    variables are expanded, e.g. ``"whamr:${WHAMR_ROOT}"``). Training examples are cropped to
    ``segment_seconds`` at offsets derived from (seed, epoch, index); validation uses whole
    utterances unless ``valid_segment_seconds`` is set. ``target`` records which clean signal the
    recipe trains towards (reverberant or dry); the dataset spec must deliver that one.
    """

    train: str = ""
    valid: str = ""
    segment_seconds: float = 4.0
    valid_segment_seconds: float | None = None
    valid_max_examples: int | None = None
    batch_size: int = 4
    num_workers: int = 0
    target: str = "reverberant"
    #: dynamic mixing only (a demo corpus's train split): fields of
    #: :class:`speechsep.data.mixing.MixingConfig` to override, e.g. ``{speed_range: [0.9, 1.1]}`` to
    #: turn speed perturbation on, ``{noise_weights: {none: 1.0}}`` for noise-free training
    mixing: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: dynamic mixing only: the first this many epochs draw every training mixture noise-free
    #: (``noise_weights: {none: 1.0}``), later epochs the recipe's own mix (a clean-to-noisy curriculum)
    clean_first_epochs: int = 0

    def __post_init__(self) -> None:
        if not _is_int(self.clean_first_epochs) or self.clean_first_epochs < 0:
            raise ValueError(f"data.clean_first_epochs must be an integer >= 0; got {self.clean_first_epochs!r}")
        if self.target not in TARGETS:
            raise ValueError(f"data.target must be one of {TARGETS}; got {self.target!r}")
        if self.batch_size < 1 or self.segment_seconds <= 0:
            raise ValueError(f"data.batch_size must be >= 1 and segment_seconds > 0; got {self.batch_size}, {self.segment_seconds}")


OPTIMIZERS = ("adam", "adamw")


@dataclasses.dataclass
class OptimConfig:
    """``name``: ``adam`` adds ``weight_decay`` x weight to the gradient (an L2 penalty, which Adam's
    per-weight scaling weakens for weights with large gradients); ``adamw`` shrinks every weight by
    ``lr x weight_decay`` per step, apart from the gradient (decoupled decay, Loshchilov & Hutter,
    ICLR 2019), so the decay acts alike on every weight."""

    name: str = "adam"
    lr: float = 1e-3
    clip: float = 5.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optim.name must be one of {OPTIMIZERS}; got {self.name!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"optim.weight_decay must be >= 0; got {self.weight_decay!r}")


@dataclasses.dataclass
class ScheduleConfig:
    """``iterative``: LR x``decay`` every ``every`` epochs, stop after ``stop_patience`` epochs
    without a new best (iterative paper Sec. 3.2: 0.98, 2, 10).
    ``tfacm``: LR x``decay`` after ``patience`` epochs without improvement, stop after
    ``stop_patience`` (TFACM Sec. IV: 0.5, 10, 15). Unset numbers take the kind's paper values.
    ``warmup_cosine``: an LR set before every optimiser step from the global step: linear warm-up
    over ``warmup_steps`` to the peak ``optim.lr``, cosine decay to ``final_lr_ratio * optim.lr`` at
    ``total_steps``, constant after. No early stopping (the run ends at ``max_epochs``/``max_steps``).
    ``total_steps`` unset: the run's planned length, ``max_epochs`` x steps per epoch, fixed when the
    run starts and kept in its checkpoints (``max_steps`` is a cap or pause, not the plan: a run
    budgeted by ``max_steps`` should set ``total_steps`` to it).
    """

    kind: str = "iterative"
    decay: float | None = None
    every: int | None = None
    patience: int | None = None
    stop_patience: int | None = None
    warmup_steps: int = 0
    total_steps: int | None = None
    final_lr_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule.kind must be one of {SCHEDULE_KINDS}; got {self.kind!r}")
        if isinstance(self.final_lr_ratio, str):  # YAML 1.1 reads 5e-2 as a string
            try:
                self.final_lr_ratio = float(self.final_lr_ratio)
            except ValueError as err:
                raise ValueError(f"schedule.final_lr_ratio must be a number; got {self.final_lr_ratio!r}") from err
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        epoch_fields = ("decay", "every", "patience", "stop_patience")
        step_fields = ("warmup_steps", "total_steps", "final_lr_ratio")
        # a field the kind does not read would be silently ignored: refuse it instead
        ignored = [k for k in (step_fields if self.kind != "warmup_cosine" else epoch_fields)
                   if getattr(self, k) != defaults[k]]
        if ignored:
            raise ValueError(f"schedule.kind {self.kind!r} does not use {', '.join(f'schedule.{k}' for k in ignored)}")
        if not _is_int(self.warmup_steps) or self.warmup_steps < 0:
            raise ValueError(f"schedule.warmup_steps must be an integer >= 0; got {self.warmup_steps!r}")
        if self.total_steps is not None and (not _is_int(self.total_steps) or self.total_steps <= self.warmup_steps):
            raise ValueError(f"schedule.total_steps must be an integer > warmup_steps ({self.warmup_steps}) when set; "
                             f"got {self.total_steps!r}")
        if isinstance(self.final_lr_ratio, bool) or not isinstance(self.final_lr_ratio, (int, float)) \
                or not 0.0 <= self.final_lr_ratio <= 1.0:
            raise ValueError(f"schedule.final_lr_ratio must be in [0, 1]; got {self.final_lr_ratio!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass
class LossConfig:
    """The training objective: the criterion (``name``), PIT on or off, and for models with several
    outputs (the iterative model) which outputs are scored with what weight
    (:class:`speechsep.losses.objectives.ObjectiveConfig`, whose fields the rest are).

    The objective fields left ``None`` take the model preset's objective (``Preset.objective``: a
    layer-wise preset trains with ``layers: all``, an oracle preset with ``oracle_bias: true``), else
    ObjectiveConfig's defaults. Recipes written before the objective moved here held it in
    ``model.overrides`` (``layerwise``, ``oracle_bias``, ``objective``): :class:`TrainConfig` moves
    those keys here (:func:`speechsep.losses.objectives.migrate_model_objective`).
    """

    name: str = "neg_snr"
    pit: bool = True
    #: "all": a loss on every iteration's output (the paper); "last": the last iteration's only
    iterations: str | None = None
    #: "last": each iteration's final layer; "all": every SISO layer too (layer-wise, Table 2)
    layers: str | None = None
    #: divide the weights by the number of terms (models of any depth train at one loss scale)
    normalize: bool | None = None
    #: relative weight of each iteration's terms (iteration 1 first); None: equal
    iteration_weights: tuple[float, ...] | None = None
    #: the training-only pass with the clean targets as bias input, its loss added (Table 4)
    oracle_bias: bool | None = None
    #: the oracle pass's weight relative to one main term
    oracle_weight: float | None = None
    #: weight of the deep-clustering term (Chimera++) of a model with an embedding head; 0 or None: off
    deep_clustering_weight: float | None = None

    def __post_init__(self) -> None:
        if self.name not in LOSS_NAMES:
            raise ValueError(f"loss.name must be one of {LOSS_NAMES}; got {self.name!r}")
        self.objective()  # the fields that are set must be valid

    def objective_fields(self) -> dict[str, Any]:
        """The objective fields this config sets (not ``None``)."""
        return {k: getattr(self, k) for k in _OBJECTIVE_FIELDS if getattr(self, k) is not None}

    def objective(self, preset_objective: dict[str, Any] | None = None) -> ObjectiveConfig:
        """The objective to train with: this config's fields, else the preset's, else the defaults."""
        return ObjectiveConfig(**{**(preset_objective or {}), **self.objective_fields()})


_OBJECTIVE_FIELDS = tuple(f.name for f in dataclasses.fields(ObjectiveConfig))


@dataclasses.dataclass
class TrainConfig:
    model: ModelSpec = dataclasses.field(default_factory=ModelSpec)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    max_epochs: int = 100
    #: cap on optimiser steps per epoch (None: the whole training set)
    steps_per_epoch: int | None = None
    #: cap on optimiser steps over the whole run (None: no cap); the run stops there, resumable
    max_steps: int | None = None
    #: also write last.pt every this many steps (None: at epoch ends only)
    checkpoint_every: int | None = None
    #: start a new run from these weights (a checkpoint or a bundled ``model.pt``) instead of a
    #: random initialisation; optimiser and schedule start fresh. Ignored when the run resumes.
    #: This is how a bundled model keeps training in a later session on another machine.
    init_from: str | None = None
    seed: int = 0
    log_every: int = 10
    tensorboard: bool = False
    description: str = ""
    #: arithmetic of forward and backward (:mod:`speechsep.precision`): ``auto`` = bf16 autocast on
    #: CUDA, float32 on CPU; ``bf16`` on any device; ``fp32``. Weights, optimiser and loss stay float32.
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_precision(self.precision)
        self._migrate_model_objective()

    def _migrate_model_objective(self) -> None:
        """Move the training objective's old keys out of ``model.overrides`` into ``loss``.

        The rule (:func:`speechsep.losses.objectives.migrate_model_objective`): ``layerwise`` ->
        ``loss.layers`` (``all``/``last``), ``oracle_bias`` -> ``loss.oracle_bias``, ``objective.X``
        -> ``loss.X``. A ``loss`` field the recipe sets itself wins when it agrees; a disagreement is
        an error, as the recipe would say two things.
        """
        legacy = {k: v for k, v in self.model.overrides.items() if k in LEGACY_MODEL_KEYS}
        if not legacy:
            return
        try:
            moved = migrate_model_objective(legacy)
        except ValueError as err:
            raise ConfigError(f"model.overrides: {err}") from err
        clash = {k: (v, getattr(self.loss, k)) for k, v in moved.items()
                 if getattr(self.loss, k) is not None and getattr(self.loss, k) != v}
        if clash:
            raise ConfigError("model.overrides and loss disagree on the training objective: "
                              + ", ".join(f"loss.{k}: {b!r} vs model.overrides -> {a!r}" for k, (a, b) in clash.items()))
        rest = {k: v for k, v in self.model.overrides.items() if k not in LEGACY_MODEL_KEYS}
        self.model = dataclasses.replace(self.model, overrides=rest)
        self.loss = dataclasses.replace(self.loss, **{k: v for k, v in moved.items() if getattr(self.loss, k) is None})


def load_train_config(path: str | os.PathLike, overrides: list[str] | dict[str, Any] | None = None) -> TrainConfig:
    """Read a recipe YAML and apply ``key=value`` overrides (dotted keys, YAML values)."""
    data = load_yaml(Path(path))
    if isinstance(overrides, list):
        overrides = dict(parse_override(text) for text in overrides)
    overrides = dict(overrides or {})
    model_prefix = "model.overrides."
    if any(k.startswith(model_prefix) for k in overrides) and isinstance(data, dict) \
            and isinstance(data.get("model", {}), dict):
        # merged into the file's model.overrides before the config is built, so that an old objective
        # key given on the command line (model.overrides.layerwise=...) migrates together with the file's
        model = dict(data.get("model") or {})
        model["overrides"] = {**(model.get("overrides") or {}),
                              **{k[len(model_prefix):]: overrides.pop(k) for k in list(overrides)
                                 if k.startswith(model_prefix)}}
        data = {**data, "model": model}
    cfg = from_dict(TrainConfig, data, Path(path).name)
    # model.overrides and data.mixing are free-form dicts (fields of the preset's config, of the
    # mixing config), not dataclasses: merge "model.overrides.X=..." and "data.mixing.X=..." keys
    # into them here rather than through apply_overrides.
    def merged(prefix: str, current: dict[str, Any]) -> dict[str, Any] | None:
        keys = {k[len(prefix):]: overrides.pop(k) for k in list(overrides) if k.startswith(prefix)}
        return {**current, **keys} if keys else None

    if (model_keys := merged("model.overrides.", cfg.model.overrides)) is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, overrides=model_keys))
    if (mixing_keys := merged("data.mixing.", cfg.data.mixing)) is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, mixing=mixing_keys))
    return _floats_from_strings(apply_overrides(cfg, overrides))


def _floats_from_strings(cfg: Any) -> Any:
    """YAML 1.1 reads ``5e-4`` (no dot) as a string; turn such strings in float fields into floats."""
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if dataclasses.is_dataclass(value):
            changes[field.name] = _floats_from_strings(value)
        elif isinstance(value, str) and float in (hints[field.name], *typing.get_args(hints[field.name])):
            try:
                changes[field.name] = float(value)
            except ValueError as err:
                raise ConfigError(f"{type(cfg).__name__}.{field.name} must be a number; got {value!r}") from err
    return dataclasses.replace(cfg, **changes)
