"""The throwaway virtual environment the anchors (asteroid, ESPnet) run in.

Anchors are what a user would pick instead of us; they are never dependencies of the package. They
live in a plain venv outside the repository (``~/.cache/speechsep/anchor-venv``, or
``$SPEECHSEP_CACHE/anchor-venv``) that holds the same torch version as ours, installed first so no
other package can pull a different torch, then the anchors with ``--no-deps`` and only the small
pure-Python packages their model and loss modules need to import. The child scripts import those
modules alone (see :mod:`bench.anchor_child`), never the packages' heavy ``__init__``.

    scripts/anchors-venv.sh          # the same, from a shell
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import torch

__all__ = ["ANCHOR_VENV", "ANCHOR_PACKAGES", "AnchorUnavailable", "ensure_anchor_venv", "venv_python"]

ANCHOR_VENV = Path(os.environ.get("SPEECHSEP_CACHE", Path.home() / ".cache" / "speechsep")) / "anchor-venv"

#: installed with ``--no-deps`` after torch; the versions are pinned so a rerun compares the same code
ANCHOR_PACKAGES = (
    "asteroid==0.7.0",
    "asteroid-filterbanks==0.4.0",
    "espnet==202511",
    "torch-complex==0.4.4",
    "ptflops==0.7.5",
    "numpy",
    "scipy",
    "packaging",
    "typeguard",
    "typing_extensions",
)


class AnchorUnavailable(RuntimeError):
    """The anchor venv could not be made (offline, a package missing); the message says which step failed."""


def venv_python(path: Path) -> Path:
    return path / ("Scripts" if os.name == "nt" else "bin") / "python"


def _torch_pin() -> str:
    return f"torch=={torch.__version__.split('+')[0]}"


def ensure_anchor_venv(path: Path = ANCHOR_VENV, quiet: bool = True) -> Path:
    """Create (once) the anchor venv; return its python. A marker file records what was installed, so a
    second call with the same package list does nothing; a changed list installs into the same venv."""
    python = venv_python(path)
    marker = path / ".speechsep-anchor-ready"
    wanted = " ".join((_torch_pin(),) + ANCHOR_PACKAGES)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    pip = [str(python), "-m", "pip", "install"] + (["-q"] if quiet else [])
    for step in ([_torch_pin()], ["--no-deps", *ANCHOR_PACKAGES]):
        proc = subprocess.run(pip + step, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AnchorUnavailable(f"pip install {' '.join(step)} into {path} failed: "
                                    f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    marker.write_text(wanted)
    return python
