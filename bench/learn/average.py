"""The mean of several checkpoints' weights (checkpoint averaging, as in stochastic weight averaging),
written as a checkpoint that ``speechsep eval`` and ``speechsep bundle`` read.

    python -m bench average-weights OUT.pt RUN_A/last.pt RUN_B/best.pt [...]

Every input must hold the same family and model config (the average of two architectures means
nothing); integer buffers (counters) are taken from the first. The output keeps the first input's
step and training config, and names its inputs in ``extra["averaged_from"]``. Measured on the bundled
models (BENCHMARKS.md, "learn"): no gain on held-out voices, so it stays a workshop tool.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechsep.checkpoint import CheckpointError, model_from_payload, read_checkpoint, save_checkpoint


def average(paths: list[Path], out: Path) -> Path:
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two checkpoints, got {len(paths)}")
    payloads = [read_checkpoint(p) for p in paths]
    first = payloads[0]
    for path, payload in zip(paths[1:], payloads[1:], strict=True):
        if payload["family"] != first["family"] or payload["config"] != first["config"]:
            raise CheckpointError(f"{path}: another model ({payload['family']}) or config than {paths[0]}; "
                                  "only checkpoints of one architecture can be averaged")
    model = model_from_payload(first, paths[0])
    mean = {}
    for name, tensor in first["state_dict"].items():
        if tensor.is_floating_point():  # summed in float64 so the order of the inputs does not matter
            total = sum(p["state_dict"][name].double() for p in payloads)
            mean[name] = (total / len(payloads)).to(tensor.dtype)
        else:
            mean[name] = tensor
    model.load_state_dict(mean)
    extra = {"averaged_from": [str(p) for p in paths], "steps": [int(p.get("step", 0)) for p in payloads]}
    if "train_config" in (first.get("extra") or {}):
        extra["train_config"] = first["extra"]["train_config"]
    return save_checkpoint(out, model, step=first.get("step", 0), epoch=first.get("epoch", 0), include_rng=False,
                           extra=extra)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("checkpoints", type=Path, nargs="+")
    a = p.parse_args()
    path = average(a.checkpoints, a.out)
    print(f"{path}: the mean of {len(a.checkpoints)} checkpoints' weights")


if __name__ == "__main__":
    main()
