"""Find a model by checkpoint path, bundled name or registry preset."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from speechsep.checkpoint import CheckpointError, load_model
from speechsep.models.base import SeparationModel

__all__ = ["load_any", "bundled_models", "default_bundled", "set_default_bundled", "resolve_model",
           "default_causal_model_name", "PRETRAINED_DIR", "DEFAULT_CAUSAL_MODEL"]

log = logging.getLogger(__name__)

#: bundled trained models live in the package: speechsep/pretrained/<name>/{model.pt,card.md,card.json}
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"

#: the bundled model live separation uses when none is named (trained by recipes/bundled/tfacm-lite.yaml)
DEFAULT_CAUSAL_MODEL = "tfacm-lite"


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


def default_causal_model_name() -> str:
    """The bundled model live separation uses: ``DEFAULT_CAUSAL_MODEL`` when shipped (causal by
    construction), else the default bundled model (``pretrained/DEFAULT``) if it can stream, else the
    first bundled model that can. Raises :class:`CheckpointError` naming the missing file."""
    bundled = bundled_models()
    if DEFAULT_CAUSAL_MODEL in bundled:
        return DEFAULT_CAUSAL_MODEL
    first = default_bundled()
    for name in sorted(bundled, key=lambda n: n != first):  # the default first, then by name
        if load_model(bundled[name]).is_causal:
            return name
    expected = PRETRAINED_DIR / DEFAULT_CAUSAL_MODEL / "model.pt"
    shipped = f"bundled: {', '.join(bundled)}; none of them causal" if bundled else "nothing is bundled"
    raise CheckpointError(
        f"no bundled causal model: {expected} is missing ({shipped}). Pass --model with a causal checkpoint or training run folder, or a preset name such as "
        f"{DEFAULT_CAUSAL_MODEL} (random weights: timing only)"
    )


def resolve_model(name_or_path: str | os.PathLike | None, *, map_location: str = "cpu") -> SeparationModel:
    """The model a command line names, in eval mode.

    In order: ``None`` -> the bundled causal model (:func:`default_causal_model_name`); a checkpoint
    file, run folder or bundled name -> trained weights; a registry preset name -> that architecture
    with random weights (seeded by the caller's torch RNG; a warning says the audio will not be
    separated, only timed).
    """
    from speechsep.registry import build, get_preset

    spec = default_causal_model_name() if name_or_path is None else str(name_or_path)
    if Path(spec).exists() or spec in bundled_models():
        return load_any(spec, map_location).eval()
    try:
        get_preset(spec)
    except KeyError:
        raise CheckpointError(
            f"{spec}: not a checkpoint file, a run folder with best.pt, a bundled model "
            f"(bundled: {', '.join(bundled_models()) or 'none'}) or a registry preset"
        ) from None
    log.warning("%s is an untrained registry preset: its weights are random (timing only, no separation)", spec)
    return build(spec).to(map_location).eval()


def default_bundled() -> str | None:
    """The bundled model named in ``pretrained/DEFAULT`` if it exists, else the first bundled, else None."""
    bundled = bundled_models()
    marker = PRETRAINED_DIR / "DEFAULT"
    if marker.is_file() and marker.read_text().strip() in bundled:
        return marker.read_text().strip()
    return next(iter(bundled), None)


def set_default_bundled(name: str) -> None:
    """Make ``name`` the model ``speechsep separate`` and ``make demo`` use without ``--model``."""
    if name not in bundled_models():
        raise ValueError(f"{name}: not a bundled model (bundled: {', '.join(bundled_models()) or 'none'})")
    (PRETRAINED_DIR / "DEFAULT").write_text(name + "\n")
