"""Peak memory of a piece of work, measured in a fresh process (peak resident set size).

A process's peak RSS covers everything it ever held, so each measurement gets its own interpreter:
measuring in the benchmark process would report the largest model seen so far.
"""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["MemoryProbeError", "peak_rss", "model_forward_code"]

_MARK = "SPEECHSEP_PEAK_RSS_BYTES"
# Linux: VmHWM, the high-water mark of this process image. Not ru_maxrss: getrusage keeps the value
# across execve, so a child forked from a 2 GB parent would report at least 2 GB whatever it did.
# Elsewhere ru_maxrss (bytes on macOS, kilobytes on the BSDs).
_REPORT = f"""
def _speechsep_peak():
    import resource, sys
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == 'darwin' else 1024)
print('{_MARK}', _speechsep_peak())
"""


class MemoryProbeError(RuntimeError):
    """The probed code failed or ran past its time limit; the message holds the end of its stderr."""


def peak_rss(code: str, *, python: str | os.PathLike = sys.executable, args: list[str] = (),
             timeout: float = 600.0) -> int:
    """Run ``code`` (with ``sys.argv[1:] = args``) in a new ``python`` process; return its peak RSS in bytes."""
    try:
        proc = subprocess.run([str(python), "-c", code + _REPORT, *args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise MemoryProbeError(f"memory probe ran past {timeout:.0f} s") from err
    if proc.returncode != 0:
        raise MemoryProbeError(f"memory probe failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            return int(line.split()[1])
    raise MemoryProbeError(f"memory probe printed no {_MARK} line: {proc.stdout[-500:]!r}")


def model_forward_code(preset: str, seconds: float, threads: int) -> str:
    """Source that builds ``preset`` and runs one offline forward on ``seconds`` of audio."""
    return (
        "import torch\n"
        f"torch.set_num_threads({int(threads)})\n"
        "from speechsep.registry import build\n"
        f"model = build({preset!r}).eval()\n"
        "with torch.inference_mode():\n"
        f"    model(torch.randn(1, round({float(seconds)!r} * model.sample_rate)))\n"
    )
