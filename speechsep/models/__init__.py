"""Separation models. :func:`register_all` imports every module here, and each registers its model
families and presets with :mod:`speechsep.registry`, so adding a model is adding a file.

Importing this package does not import the models: ``speechsep.registry`` imports
``speechsep.models.base``, which runs this file first, and the model modules import the registry,
so an eager import here would close a cycle through a half-initialised registry.
"""

import importlib
import pkgutil

__all__ = ["register_all"]


def register_all() -> None:
    """Import every model module (each registers itself on import; a second call does nothing)."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
