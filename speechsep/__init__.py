"""speechsep: speech separation with generalized iterative separation and TFACM real-time causal models.

The public entry points::

    import speechsep
    sources, rate = speechsep.separate_file("meeting.wav")       # (sources, time) at the file's rate
    sources = speechsep.separate(waveform, sample_rate)          # (time,) -> (sources, time)
    model = speechsep.load("tfacm-lite")                         # a bundled model, checkpoint or run folder
    model = speechsep.build("tfacm-small", sample_rate=8000, num_sources=2)
    speechsep.complexity(model, seconds=1.0)                     # params and MACs per second of audio

Everything is imported on first use: ``import speechsep`` does not load torch, so the ``speechsep``
program can choose its OpenMP settings before torch starts (:mod:`speechsep.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build", "load", "separate", "separate_file", "complexity", "Complexity"]

if TYPE_CHECKING:
    import os

    import numpy as np

    from speechsep.complexity import Complexity
    from speechsep.models.base import SeparationModel


def build(name: str, **overrides: Any) -> SeparationModel:
    """Build a registered model (a preset or family name) with config overrides."""
    from speechsep.registry import build as _build

    return _build(name, **overrides)


def load(path_or_name: str | os.PathLike, map_location: str = "cpu") -> SeparationModel:
    """Load a model from a checkpoint path, a training run folder, or a bundled model by name
    (``speechsep.load("tfacm-lite")``), in eval mode on ``map_location`` (``"cpu"``, ``"auto"``,
    ``"cuda"``, ``"cuda:N"``: :func:`speechsep.inference.pretrained.resolve_device`)."""
    from speechsep.inference.pretrained import resolve

    return resolve(path_or_name, device=map_location)


def separate(waveform: Any, sample_rate: int, *, model: str | SeparationModel | None = None,
             **options: Any) -> Any:
    """Separate a mono ``waveform (time,)`` at ``sample_rate`` into ``(sources, time)`` at the same rate.

    ``waveform`` is a numpy array or a torch tensor (the result is of the same kind). ``model``: a
    bundled name, checkpoint, run folder or a loaded model (default: the default bundled model).
    ``options`` go to :func:`speechsep.inference.separate.separate_waveform` (``segment_seconds``, ...).
    """
    from speechsep.inference.api import separate as _separate

    return _separate(waveform, sample_rate, model=model, **options)


def separate_file(path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                  model: str | SeparationModel | None = None, **options: Any) -> tuple[np.ndarray, int]:
    """Separate an audio file: ``(sources (C, time), sample_rate)`` at the file's rate; with ``out_dir``
    also writes ``OUTDIR/NAME_s1.wav ...``. ``options``: ``channel`` and those of :func:`separate`."""
    from speechsep.inference.api import separate_file as _separate_file

    return _separate_file(path, out_dir, model=model, **options)


def __getattr__(name: str) -> Any:
    # ``complexity`` is the submodule; it is callable (speechsep/complexity.py), so
    # ``speechsep.complexity(model)`` works however it was first imported.
    if name in ("complexity", "Complexity"):
        import importlib

        module = importlib.import_module("speechsep.complexity")
        return module if name == "complexity" else module.Complexity
    raise AttributeError(f"module 'speechsep' has no attribute {name!r}")
