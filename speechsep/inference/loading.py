"""Find a model by checkpoint path or bundled name."""

from __future__ import annotations

import os
from pathlib import Path

from speechsep.checkpoint import CheckpointError, load_model
from speechsep.models.base import SeparationModel

__all__ = ["load_any", "bundled_models", "PRETRAINED_DIR"]

#: bundled trained models live in the package: speechsep/pretrained/<name>/{model.pt,card.md,card.json}
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def bundled_models() -> dict[str, Path]:
    """Name -> checkpoint path of every model shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(PRETRAINED_DIR.glob("*/model.pt"))}


def load_any(path_or_name: str | os.PathLike, map_location: str = "cpu") -> SeparationModel:
    path = Path(path_or_name)
    if path.is_dir() and (path / "best.pt").is_file():  # a training run folder
        path = path / "best.pt"
    if path.is_file():
        return load_model(path, map_location)
    bundled = bundled_models()
    if str(path_or_name) in bundled:
        return load_model(bundled[str(path_or_name)], map_location)
    raise CheckpointError(
        f"{path_or_name}: neither a checkpoint file, a run folder with best.pt, nor a bundled model "
        f"(bundled: {', '.join(bundled) or 'none'})"
    )
