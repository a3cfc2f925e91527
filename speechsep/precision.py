"""Arithmetic precision of forward (and backward) passes: float32 or bf16 autocast.

One rule for training (``TrainConfig.precision``) and inference (``--precision``):

* ``fp32``: float32 everywhere;
* ``bf16``: ``torch.autocast`` to bf16 on any device; weights stay float32 and autocast keeps
  reductions, norms and the losses' logs in float32. On a CPU with bf16 instructions (AVX512-BF16,
  AMX) oneDNN's LSTM, matmul and convolution kernels use them: here the iterative models train 1.7x
  and separate 1.5x faster; TFACM trains 1.4x faster but the small bundled one separates 1.3x slower,
  its small tensors paying more for the casts than they save (BENCHMARKS.md). Without such
  instructions bf16 is emulated and slower;
* ``auto``: bf16 on CUDA, float32 elsewhere, so that a recipe's arithmetic does not depend on which
  CPU it lands on unless asked.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "autocast", "check_precision"]

PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    return precision


def autocast(device: torch.device | str, precision: str = "auto"):
    """The context manager that runs ``precision`` on ``device`` (see the module doc)."""
    device_type = torch.device(device).type
    if check_precision(precision) == "bf16" or (precision == "auto" and device_type == "cuda"):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
