"""Model registry: families (a model class + its config dataclass) and named presets.

A *family* is a model class (``"iterative"``, ``"tfacm"``, ...). A *preset* is a named config of a
family (``"tfacm-small"``, ``"iter-t1-simo1-siso2-it3-detach"``, ...), optionally carrying the
numbers the paper reports for it, so benchmarks and experiment tables can print ours beside theirs.
Every family is also a preset of itself with its default config.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from speechsep.config import ConfigError, apply_overrides, from_dict
from speechsep.models.base import ModelConfig, SeparationModel

__all__ = ["register_model", "register_preset", "build", "build_from_config", "get_preset", "list_presets",
           "list_families", "Preset", "model_class"]

_FAMILIES: dict[str, type[SeparationModel]] = {}
_PRESETS: dict[str, Preset] = {}
_loaded = False


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    family: str
    config: ModelConfig
    description: str = ""
    #: what the paper reports for this configuration, e.g. {"params_m": 1.0, "macs_g": 36.5, "si_sdr_time": 9.2}
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: grouping tags, e.g. ("tfacm-table1",) or ("iterative-table1", "paper-scale")
    tags: tuple[str, ...] = ()
    #: the training objective this configuration is trained with: fields of the training config's
    #: ``loss:`` (e.g. ``{"layers": "all"}`` for a layer-wise row); a recipe's own ``loss:`` values win
    objective: dict[str, Any] = dataclasses.field(default_factory=dict)


def register_model(cls: type[SeparationModel]) -> type[SeparationModel]:
    """Class decorator: register a model family under ``cls.family`` with its default config."""
    if not cls.family:
        raise ValueError(f"{cls.__name__} must set the class attribute `family`")
    if cls.family in _FAMILIES and _FAMILIES[cls.family] is not cls:
        raise ValueError(f"model family {cls.family!r} registered twice")
    _FAMILIES[cls.family] = cls
    if cls.family not in _PRESETS:
        _PRESETS[cls.family] = Preset(cls.family, cls.family, cls.config_class(), f"{cls.__name__} default config")
    return cls


def register_preset(
    name: str,
    family: str,
    config: ModelConfig,
    description: str = "",
    *,
    paper: dict[str, Any] | None = None,
    tags: tuple[str, ...] = (),
    objective: dict[str, Any] | None = None,
) -> Preset:
    if name in _PRESETS and _PRESETS[name].family != family:
        raise ValueError(f"preset {name!r} already registered for family {_PRESETS[name].family!r}")
    preset = Preset(name, family, config, description, dict(paper or {}), tuple(tags), dict(objective or {}))
    _PRESETS[name] = preset
    return preset


def _ensure_loaded() -> None:
    """Import every model module once, so their decorators fill the registry."""
    global _loaded
    if not _loaded:
        importlib.import_module("speechsep.models").register_all()
        _loaded = True


def list_families() -> list[str]:
    _ensure_loaded()
    return sorted(_FAMILIES)


def list_presets(tag: str | None = None) -> list[Preset]:
    _ensure_loaded()
    return [p for p in _PRESETS.values() if tag is None or tag in p.tags]


def get_preset(name: str) -> Preset:
    _ensure_loaded()
    if name not in _PRESETS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]


def model_class(family: str) -> type[SeparationModel]:
    _ensure_loaded()
    if family not in _FAMILIES:
        raise KeyError(f"unknown model family {family!r}; known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[family]


def build(name: str, **overrides: Any) -> SeparationModel:
    """Build a model from a preset or family name; keyword overrides replace config fields.

    Nested fields can be given as dicts (``encoder={"window_ms": 4}``) or dotted strings through
    :func:`speechsep.config.apply_overrides`.
    """
    preset = get_preset(name)
    moved = sorted(set(overrides) & set(_legacy_keys(model_class(preset.family))))
    if moved:
        raise ConfigError(
            f"{name}: {moved} are no longer model settings: the training objective lives in the training "
            "config's loss: section (layerwise -> loss.layers: all, oracle_bias -> loss.oracle_bias, "
            "objective.X -> loss.X); a recipe's model.overrides still holding them is migrated there"
        )
    config = apply_overrides(preset.config, overrides)
    return model_class(preset.family)(config)


def _legacy_keys(cls: type[SeparationModel]) -> tuple[str, ...]:
    """Keys old serialised configs of this family may hold and loading drops (``legacy_keys()``)."""
    keys = getattr(cls.config_class, "legacy_keys", None)
    return tuple(keys()) if keys is not None else ()


def build_from_config(family: str, config: dict[str, Any] | ModelConfig) -> SeparationModel:
    """Rebuild a model from its family and (serialised) config, as a checkpoint does."""
    cls = model_class(family)
    if isinstance(config, dict):
        # a checkpoint written before the training objective left the model config: drop its keys
        # (they change neither the weights nor the output; see ModelConfig classes' legacy_keys)
        config = from_dict(cls.config_class, {k: v for k, v in config.items() if k not in _legacy_keys(cls)}, family)
    return cls(config)
