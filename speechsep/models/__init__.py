"""Separation models. Importing this package registers every model family and preset.

Each module in this folder registers itself with :mod:`speechsep.registry`; this file only imports
them, so adding a model is adding a file.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")
