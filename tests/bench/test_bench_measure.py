"""The library's own measuring pieces: the peak-memory probe and the machine floor."""

import pytest

from speechsep.bench import memory
from speechsep.bench.machine import floor_rtf, matmul_gflops


def test_peak_rss_grows_with_the_allocation():
    small = memory.peak_rss("x = bytearray(1)")
    big = memory.peak_rss("x = bytearray(400 * 2**20)\nx[::4096] = b'1' * len(x[::4096])")
    assert big - small > 300 * 2**20


def test_peak_rss_reports_a_failing_probe():
    with pytest.raises(memory.MemoryProbeError, match="ZeroDivisionError"):
        memory.peak_rss("1 / 0")


def test_floor_and_matmul():
    assert floor_rtf(36.5e9, 73.0) == pytest.approx(1.0)
    assert matmul_gflops(size=64, warmup=0, repeats=2) > 0
    with pytest.raises(ValueError, match="positive"):
        floor_rtf(1e9, 0.0)
