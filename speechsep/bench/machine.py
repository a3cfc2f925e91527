"""What machine the numbers came from, and the practical floor: how fast it multiplies matrices.

The floor: a model of M multiply-accumulates per second of audio cannot run faster than
``2 M / F`` seconds per second of audio on a machine whose dense float32 matmul throughput is ``F``
FLOP/s (one MAC is two FLOPs, and a large matmul is the best case for every op a model runs). That
ratio is the floor real-time factor; a model's distance to the floor is its measured real-time factor
divided by it.
"""

from __future__ import annotations

import os
import platform
import statistics

import torch

from speechsep.bench.timing import run_times

__all__ = ["machine_info", "matmul_gflops", "floor_rtf"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        # big tensors on transparent huge pages (the Makefile sets it; bench/ab.py measures it)
        "thp_mem_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE", "unset"),
    }


def matmul_gflops(size: int = 1024, warmup: int = 2, repeats: int = 10) -> float:
    """Median float32 ``size x size`` matmul throughput in GFLOP/s with the current thread count."""
    if size < 1:
        raise ValueError(f"matmul size must be positive; got {size}")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen)
    b = torch.randn(size, size, generator=gen)
    out = torch.empty(size, size)
    seconds = statistics.median(run_times(lambda: torch.mm(a, b, out=out), warmup, repeats))
    return 2.0 * size**3 / seconds / 1e9


def floor_rtf(macs_per_second: float, gflops: float) -> float:
    """Seconds of compute per second of audio at the machine's matmul throughput."""
    if gflops <= 0:
        raise ValueError(f"matmul throughput must be positive; got {gflops} GFLOP/s")
    return 2.0 * macs_per_second / (gflops * 1e9)
