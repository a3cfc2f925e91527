"""The layout of ``bench/results.json``; :func:`validate_results` names the first thing missing or mistyped.

The renderer and the plot read only what is listed here, so a results file that validates renders.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA_VERSION", "validate_results", "BenchSchemaError"]

SCHEMA_VERSION = 1

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))

_TOP = {"schema": int, "command": str, "date": str, "quick": bool, "plan": dict, "machine": dict,
        "floor": dict, "models": list, "anchors": list, "skipped_models": list, "duration_seconds": _NUM}
_MACHINE = {"cpu": str, "cores": int, "threads": int, "torch": str}
_FLOOR = {"matmul_gflops": list, "matmul_gflops_median": _NUM}
_MODEL = {"name": str, "family": str, "sample_rate": int, "causal": bool, "params": int,
          "macs_per_second": _NUM, "paper": dict, "offline": dict, "memory": dict, "streaming": dict,
          "train_step_seconds": _OPT_NUM, "floor_rtf": _NUM, "floor_distance": _OPT_NUM, "skipped": list}
_ANCHOR = {"name": str, "anchor": str, "pairs_with": str, "note": str, "error": (str, type(None)),
           "offline": dict, "memory": dict, "train_step_seconds": _OPT_NUM, "skipped": list}
_OFFLINE_ROW = {"seconds": _NUM, "rtf": _NUM}
_STREAM_ROW = {"rtf": _NUM, "p50_ms": _NUM, "p95_ms": _NUM, "max_ms": _NUM}
_PIT = {"ours_ms": _NUM, "asteroid_ms": _OPT_NUM, "ratio": _OPT_NUM, "error": (str, type(None))}


class BenchSchemaError(ValueError):
    pass


def _check(obj: Any, fields: dict[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise BenchSchemaError(f"{where}: expected an object, got {type(obj).__name__}")
    for key, kind in fields.items():
        if key not in obj:
            raise BenchSchemaError(f"{where}: missing field {key!r}")
        value = obj[key]
        if isinstance(value, bool) and kind in (_NUM, _OPT_NUM, int):
            raise BenchSchemaError(f"{where}.{key}: expected a number, got a boolean")
        if not isinstance(value, kind):
            raise BenchSchemaError(f"{where}.{key}: expected {kind}, got {type(value).__name__} ({value!r:.60})")


def _check_rows(table: dict, fields: dict[str, Any] | None, where: str) -> None:
    for key, row in table.items():
        try:
            float(key)
        except ValueError:
            raise BenchSchemaError(f"{where}: key {key!r} is not a number of seconds/ms") from None
        if fields is None:
            if not isinstance(row, _NUM) or isinstance(row, bool):
                raise BenchSchemaError(f"{where}[{key}]: expected a number, got {row!r:.60}")
        else:
            _check(row, fields, f"{where}[{key}]")


def validate_results(results: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`BenchSchemaError` naming the first bad field; return ``results`` unchanged."""
    _check(results, _TOP, "results")
    if results["schema"] != SCHEMA_VERSION:
        raise BenchSchemaError(f"results.schema: version {results['schema']}, this code reads {SCHEMA_VERSION}")
    _check(results["machine"], _MACHINE, "results.machine")
    _check(results["floor"], _FLOOR, "results.floor")
    for i, model in enumerate(results["models"]):
        where = f"results.models[{i}]"
        _check(model, _MODEL, where)
        _check_rows(model["offline"], _OFFLINE_ROW, f"{where}.offline")
        _check_rows(model["memory"], None, f"{where}.memory")
        _check_rows(model["streaming"], _STREAM_ROW, f"{where}.streaming")
    for i, anchor in enumerate(results["anchors"]):
        where = f"results.anchors[{i}]"
        _check(anchor, _ANCHOR, where)
        _check_rows(anchor["offline"], _OFFLINE_ROW, f"{where}.offline")
        _check_rows(anchor["memory"], None, f"{where}.memory")
        if anchor.get("streaming") is not None:  # only anchors with a streaming interface of their own
            _check(anchor["streaming"], _STREAM_ROW, f"{where}.streaming")
    if "pit" in results:
        _check(results["pit"], _PIT, "results.pit")
    return results
