"""speechsep: speech separation with generalized iterative separation and TFACM real-time causal models.

The public entry points::

    import speechsep
    model = speechsep.build("tfacm-small", sample_rate=8000, num_sources=2)
    model = speechsep.load("path/to/checkpoint.pt")      # or a bundled model's name
    speechsep.complexity(model, seconds=1.0)             # params and MACs per second of audio
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build", "load", "complexity", "Complexity"]

# Imported eagerly: the submodule `speechsep.complexity` would otherwise shadow the function of the
# same name on the package once anything imports the submodule.
from speechsep.complexity import Complexity, complexity  # noqa: E402

if TYPE_CHECKING:
    from speechsep.models.base import SeparationModel


def build(name: str, **overrides: Any) -> SeparationModel:
    """Build a registered model (a preset or family name) with config overrides."""
    from speechsep.registry import build as _build

    return _build(name, **overrides)


def load(path_or_name: str, map_location: str = "cpu") -> SeparationModel:
    """Load a model from a checkpoint path, or a bundled trained model by name."""
    from speechsep.inference.loading import load_any

    return load_any(path_or_name, map_location=map_location)
