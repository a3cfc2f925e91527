"""Checkpoints that rebuild their model alone, written atomically.

A checkpoint holds: the model family and config, the weights, optionally the optimiser and
scheduler states, the training step/epoch, the RNG states (python, numpy, torch CPU and CUDA) and the
library versions it was written with. ``load_model(path)`` needs nothing but the file.
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

import speechsep
from speechsep.config import to_dict
from speechsep.models.base import SeparationModel
from speechsep.utils import atomic_path

__all__ = ["save_checkpoint", "read_checkpoint", "load_model", "model_from_payload", "rng_state", "set_rng_state", "CheckpointError"]

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable speechsep checkpoint; the message names the file."""


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _versions() -> dict[str, str]:
    return {
        "speechsep": speechsep.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _unwrap(model: torch.nn.Module) -> SeparationModel:
    """DDP and torch.compile wrap the model; the checkpoint stores the bare module."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    model = getattr(model, "_orig_mod", model)
    if not isinstance(model, SeparationModel):
        raise TypeError(f"expected a SeparationModel, got {type(model).__name__}")
    return model


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    step: int = 0,
    epoch: int = 0,
    include_rng: bool = True,
    extra: dict[str, Any] | None = None,
    half_weights: bool = False,
) -> Path:
    """Write a checkpoint atomically: a crash leaves the previous file intact, never half a file.

    ``half_weights`` stores floating-point weights as float16 (bundled models: half the bytes in the
    package; ``load_state_dict`` casts them back to the model's float32 on load). Not for training
    checkpoints, whose resume must be exact.
    """
    bare = _unwrap(model)

    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu()
        return v.half() if half_weights and v.is_floating_point() else v

    payload: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "family": bare.family,
        "config": to_dict(bare.config),
        "state_dict": {k: stored(v) for k, v in bare.state_dict().items()},
        "step": int(step),
        "epoch": int(epoch),
        "versions": _versions(),
        "extra": dict(extra or {}),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    if include_rng:
        payload["rng"] = rng_state()
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        # weights_only=False: the payload holds RNG states (numpy arrays, tuples) we wrote ourselves.
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
    missing = [k for k in ("family", "config", "state_dict") if k not in payload]
    if not isinstance(payload, dict) or missing:
        raise CheckpointError(f"{path}: not a speechsep checkpoint (missing {missing})")
    return payload


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> SeparationModel:
    """Rebuild a model from a checkpoint file alone, in eval mode."""
    return model_from_payload(read_checkpoint(path, map_location), path)


def model_from_payload(payload: dict[str, Any], where: str | os.PathLike) -> SeparationModel:
    """The model a checkpoint already read (:func:`read_checkpoint`) holds, in eval mode; ``where``
    names the checkpoint in errors."""
    from speechsep.registry import build_from_config

    model = build_from_config(payload["family"], payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{where}: weights do not fit the {payload['family']} config stored with them: {err}") from err
    return model.eval()
