import dataclasses

import pytest

from speechsep.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_yaml,
    parse_override,
    save_yaml,
    to_dict,
)


@dataclasses.dataclass
class Inner:
    window_ms: float = 2.0
    filters: int = 64


@dataclasses.dataclass
class Outer:
    name: str = "x"
    layers: int = 3
    inner: Inner = dataclasses.field(default_factory=Inner)
    sizes: tuple[int, ...] = (1, 2)


def test_roundtrip_through_yaml(tmp_path):
    cfg = Outer(name="y", layers=5, inner=Inner(window_ms=4.0, filters=128), sizes=(3, 4))
    path = save_yaml(cfg, tmp_path / "c.yaml")
    back = from_dict(Outer, load_yaml(path))
    assert back == cfg


def test_unknown_keys_are_errors():
    with pytest.raises(ConfigError, match=r"inner: unknown key\(s\) \['filterz'\]"):
        from_dict(Outer, {"inner": {"filterz": 3}})


def test_overrides_nested_and_dotted():
    cfg = Outer()
    new = apply_overrides(cfg, {"layers": 7, "inner.filters": 32})
    assert new.layers == 7 and new.inner.filters == 32 and new.inner.window_ms == 2.0
    assert cfg.layers == 3  # original untouched
    new2 = apply_overrides(cfg, {"inner": {"window_ms": 8}})
    assert new2.inner.window_ms == 8.0 and isinstance(new2.inner.window_ms, float)
    with pytest.raises(ConfigError, match="no field 'nope'"):
        apply_overrides(cfg, {"nope": 1})


def test_parse_override():
    assert parse_override("optim.lr=0.001") == ("optim.lr", 0.001)
    assert parse_override("detach=true") == ("detach", True)
    with pytest.raises(ConfigError):
        parse_override("no-equals-sign")
    assert to_dict(Outer())["inner"] == {"window_ms": 2.0, "filters": 64}
