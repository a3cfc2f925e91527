"""Small helpers shared by every layer: atomic file writes and shape checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = ["atomic_path", "check_waveform_batch", "expand_path"]


def expand_path(text: str | os.PathLike) -> Path:
    """A path as a config or command line writes it: ``$VARS`` and ``~`` expanded."""
    return Path(os.path.expandvars(os.fspath(text))).expanduser()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash mid-write leaves the old file (or nothing) in place, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the result the permissions a plain open() would (umask applied)
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_waveform_batch(mixture: torch.Tensor, name: str = "mixture") -> torch.Tensor:
    """Accept ``(batch, time)`` or ``(batch, 1, time)``; return ``(batch, time)``.

    Anything else raises ``ValueError`` printing the shape received.
    """
    if mixture.dim() == 3 and mixture.shape[1] == 1:
        mixture = mixture[:, 0]
    if mixture.dim() != 2:
        raise ValueError(
            f"{name} must be shaped (batch, time) or (batch, 1, time); got {tuple(mixture.shape)}"
        )
    if not torch.is_floating_point(mixture):
        raise ValueError(f"{name} must be a floating-point tensor; got dtype {mixture.dtype}")
    return mixture
