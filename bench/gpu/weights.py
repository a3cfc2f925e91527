"""A training checkpoint's weights alone (no optimiser, no RNG), small enough to come back from the
device machine (16 MiB a file): float32 when it fits, else float16.

    python -m bench gpu-weights RUN/last.pt OUT/model.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechsep.checkpoint import model_from_payload, read_checkpoint, save_checkpoint

LIMIT_BYTES = 16 * 2**20


def slim(source: Path, dest: Path) -> Path:
    payload = read_checkpoint(source)
    model = model_from_payload(payload, source)
    # the training config stays: bundling reads its init_from to chain this run to the bundle it
    # continued (the card's sessions and hours), and its data spec for the card
    extra = {"slimmed_from": source.name, "log": "see the run's log.jsonl"}
    if "train_config" in (payload.get("extra") or {}):
        extra["train_config"] = payload["extra"]["train_config"]
    for half in (False, True):
        save_checkpoint(dest, model, step=payload.get("step", 0), epoch=payload.get("epoch", 0), include_rng=False,
                        extra=extra, half_weights=half)
        if dest.stat().st_size <= LIMIT_BYTES:
            break
    print(f"{dest}: {dest.stat().st_size / 2**20:.1f} MiB, step {payload.get('step')}, "
          f"{'float16' if half else 'float32'} weights")
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    a = p.parse_args()
    slim(a.checkpoint, a.out)


if __name__ == "__main__":
    main()
