"""Intra-op threads for a streaming step: one for its many small operators, several for its few heavy kernels.

A 16 ms step of TFACM is about 400 operators, most on tensors of a few ten thousand elements.
Given 2 threads, PyTorch splits every element-wise operator above 32,768 elements and oneDNN every
convolution, and on tensors that small the hand-off costs more than it saves (a (1, 64, 33, 16)
1x1 conv takes 1.5x the time on 2 threads); the same 2 threads make the two kernels that carry most
of the arithmetic faster: the attention's batched matmuls over the 1 s window (0.43x the time) and
the LSTMs (0.65x) (``python -m bench tfacm kernels``). So :func:`split_threads` runs
a step on one thread, and the code that blocks mark with :data:`heavy_kernel` on ``heavy`` threads
(BENCHMARKS.md, "TFACM": streaming real-time factors).

Switching costs well under a microsecond (``torch.set_num_threads``). The setting is process-wide, as torch's
thread count is: one stream per process at a time (``speechsep stream`` and the benches; the server
keeps its sessions on plain thread counts). The wait policy matters: with ``OMP_WAIT_POLICY=PASSIVE``
(the Makefile's default for shared machines) the second thread sleeps between heavy kernels and
every wake-up costs more than the split saves; OpenMP's default (spin a while, then sleep) is right.
"""

from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["split_threads", "heavy_kernel", "passive_wait_warning"]

#: threads for the marked kernels while :func:`split_threads` is active; 0 when it is not
_heavy_threads = 0


@contextlib.contextmanager
def split_threads(heavy: int):
    """Run the enclosed code on one intra-op thread and the kernels marked by :data:`heavy_kernel` on
    ``heavy`` threads; the previous thread count comes back afterwards."""
    global _heavy_threads
    if heavy < 1:
        raise ValueError(f"split_threads needs at least 1 thread for the heavy kernels; got {heavy}")
    saved = torch.get_num_threads(), _heavy_threads
    torch.set_num_threads(1)
    _heavy_threads = heavy
    try:
        yield
    finally:
        _heavy_threads = saved[1]
        torch.set_num_threads(saved[0])


class _HeavyKernel:
    """``with heavy_kernel:`` around a kernel worth several threads; a no-op outside :func:`split_threads`.
    A plain class, not a generator: it is entered a dozen times per streaming step."""

    __slots__ = ()

    def __enter__(self) -> None:
        if _heavy_threads > 1:
            torch.set_num_threads(_heavy_threads)

    def __exit__(self, *exc) -> None:
        if _heavy_threads > 1:
            torch.set_num_threads(1)


heavy_kernel = _HeavyKernel()


def passive_wait_warning(threads: int) -> str | None:
    """A note for the user when ``OMP_WAIT_POLICY=PASSIVE`` would make ``threads`` > 1 slower."""
    if threads > 1 and os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        return (f"OMP_WAIT_POLICY=PASSIVE: the {threads} threads sleep between kernels and a streaming step "
                "pays a wake-up each time (slower than 1 thread); unset it for real-time streaming")
    return None
