"""Data layer: corpus building from Debian packages, benchmark readers, room and mixture
simulation, datasets and loaders.

Public entry points: :func:`open_dataset` (the spec grammar is in :mod:`speechsep.data.spec`) and
:func:`collate`. They are imported lazily so that corpus-building worker processes need not
import torch.
"""

from __future__ import annotations

__all__ = ["open_dataset", "collate", "make_loader"]


def __getattr__(name: str):
    if name == "open_dataset":
        from speechsep.data.spec import open_dataset

        return open_dataset
    if name in ("collate", "make_loader"):
        from speechsep.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'speechsep.data' has no attribute {name!r}")
