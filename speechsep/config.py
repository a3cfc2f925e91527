"""Typed configuration: nested dataclasses, with YAML only as their serialised form.

YAML never constructs objects: a file is read into plain dicts, then :func:`from_dict` checks every
key against the dataclass it is meant for, so a typo in a recipe is an error, not a silent default.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from speechsep.utils import atomic_path

__all__ = ["to_dict", "from_dict", "apply_overrides", "parse_override", "dotted_keys", "save_yaml", "load_yaml",
           "ConfigError"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key or value that does not fit its dataclass."""


def to_dict(cfg: Any) -> Any:
    """Dataclass (possibly nested) -> plain dict/list/scalars, safe for YAML and checkpoints."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass type inside ``tp`` (``X``, ``X | None``, ``Optional[X]``), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    if value is None:
        return None
    sub = _dataclass_in(tp)
    if sub is not None and isinstance(value, dict):
        return from_dict(sub, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Plain dict -> dataclass ``cls``, recursing into nested dataclass fields. Unknown keys raise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {sorted(unknown)}; {cls.__name__} accepts {sorted(names)}"
        )
    kwargs = {k: _coerce(v, hints.get(k), f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """Return a copy of ``cfg`` with ``overrides`` applied.

    Keys may be dotted (``"encoder.window_ms"``) or values may be dicts for nested dataclasses.
    """
    if not overrides:
        return cfg
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes: dict[str, Any] = {}
    for key in set(flat) | set(nested):
        if key not in fields:
            raise ConfigError(f"{type(cfg).__name__} has no field {key!r}; fields: {sorted(fields)}")
        current = getattr(cfg, key)
        value = flat.get(key, current)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = apply_overrides(current, value)
        elif key in flat:
            value = _coerce(value, hints.get(key), key)
        if key in nested:
            if not dataclasses.is_dataclass(value):
                raise ConfigError(f"{type(cfg).__name__}.{key} is not a nested config; cannot set {nested[key]}")
            value = apply_overrides(value, nested[key])
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` from the command line -> ``(key, value)``, the value parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    return key.strip(), yaml.safe_load(raw)


def dotted_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}``: the keys ``--set`` takes, down to every leaf
    (an empty dict is a leaf)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(dotted_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def save_yaml(data: Any, path: str | os.PathLike) -> Path:
    """Write a dataclass or dict as YAML, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(data), sort_keys=False))
    return Path(path)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data
