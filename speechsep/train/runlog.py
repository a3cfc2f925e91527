"""What a run leaves in its folder besides checkpoints: ``log.jsonl``, ``curves.png``, TensorBoard.

Only the main process (rank 0) writes. Records are JSON objects with a ``kind`` (``train`` every
``log_every`` steps, ``valid`` every epoch, ``event`` for start/resume/stop). On resume the log is
cut back to the checkpoint's step, so steps redone after a kill are not logged twice.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from speechsep.utils import atomic_path

__all__ = ["RunLog"]

log = logging.getLogger(__name__)


class RunLog:
    def __init__(self, out_dir: Path, *, enabled: bool = True, tensorboard: bool = False):
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.path = self.out_dir / "log.jsonl"
        self.records: list[dict[str, Any]] = []
        self._tb = None
        self.plot_interval = 60.0
        self._last_plot = -float("inf")
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                # Optional: the JSONL log and curves.png hold the same numbers.
                log.warning("tensorboard: true in the config, but the `tensorboard` package is not installed "
                            "(pip install tensorboard); writing log.jsonl and curves.png only")
            else:
                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))

    def resume(self, step: int) -> None:
        """Keep the records up to ``step`` (the checkpoint's) and rewrite the file with them."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if record.get("step", 0) <= step:
                kept.append(record)
        self.records = kept
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.records.append(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None and record.get("kind") in ("train", "valid"):
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._tb.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def plot(self, force: bool = True) -> Path | None:
        """Training loss against step and validation SI-SDR against epoch, as ``curves.png``.

        Without ``force``, at most once per ``plot_interval`` seconds: drawing costs far more than
        a short epoch of a small model.
        """
        if not self.enabled or (not force and time.monotonic() - self._last_plot < self.plot_interval):
            return None
        self._last_plot = time.monotonic()
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        train = [r for r in self.records if r.get("kind") == "train"]
        valid = [r for r in self.records if r.get("kind") == "valid"]
        fig, (ax_t, ax_v) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax_t.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
        ax_t.set(xlabel="step", ylabel="training loss", title="training")
        ax_v.plot([r["epoch"] for r in valid], [r["si_sdr"] for r in valid], marker="o", lw=1)
        ax_v.set(xlabel="epoch", ylabel="SI-SDR (dB)", title="validation")
        for ax in (ax_t, ax_v):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        path = self.out_dir / "curves.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        return path

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
