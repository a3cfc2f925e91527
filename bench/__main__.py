"""The workshop's one entry point: ``python -m bench TOOL [ARGS...]``; ``python -m bench`` lists the tools.

Each tool keeps its own arguments (``python -m bench TOOL --help``). The ``speechsep bench`` suite and
the learning benchmark are not here: they are the user's command, ``speechsep bench [learn]``.
"""

from __future__ import annotations

import importlib
import sys

#: tool name -> (module whose ``main()`` reads ``sys.argv``, what it measures)
TOOLS: dict[str, tuple[str, str]] = {
    "tfacm": ("bench.tfacm", "TFACM against the authors' model: size, offline/streaming speed, kernels"),
    "iterative": ("bench.iterative_cost", "iterative paper Table 1 cost, and our speed against asteroid's"),
    "pit": ("bench.pit_compare", "our PIT loss against asteroid's PITLossWrapper"),
    "serve-load": ("bench.serve_load", "a live server under concurrent streaming clients"),
    "train-step": ("bench.train_step", "training steps per second of one preset through the trainer"),
    "train-step-vs-asteroid": ("bench.train_step_vs_asteroid",
                               "training step of our models against asteroid's DPRNNTasNet (anchor venv)"),
    "ab": ("bench.ab", "A/B of one setting in fresh processes (huge pages, bf16)"),
    "eval-metric-speed": ("bench.eval_metric_speed", "SDR/SDRi computation: ours against fast_bss_eval"),
    "mixing-throughput": ("bench.mixing_throughput", "dynamic-mixing throughput with and without augmentation"),
    "learn-diagnose": ("bench.learn.diagnose", "why a separator plateaus: ceiling, voices, capacity"),
    "average-weights": ("bench.learn.average", "the mean of several checkpoints' weights (checkpoint averaging)"),
    "learn-candidate": ("bench.learn.candidates", "a race candidate's recipe and overrides, a line each (for train_pair.sh)"),
    "paired-diff": ("bench.learn.paired", "two models' eval CSVs compared mixture by mixture (bootstrap interval)"),
    "pitch-gap": ("bench.learn.pitch_gap", "eval CSVs' SI-SNRi by the pitch distance of each mixture's two voices"),
    "post-process": ("bench.learn.post_process", "test-time post-processing (consistency, Wiener, shifts, ensembles) vs the plain output"),
    "recipes": ("bench.recipes", "regenerate the shipped training recipes from their tables (not a measurement)"),
    "gpu-pack": ("bench.gpu.pack", "a demo corpus's training half, small enough to travel to a GPU machine"),
    "gpu-unpack": ("bench.gpu.unpack", "unpack it there into a corpus the trainer reads"),
    "gpu-weights": ("bench.gpu.weights", "a checkpoint's weights alone, small enough to come back"),
}


def _usage() -> str:
    width = max(map(len, TOOLS))
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in TOOLS.items()]
    return "usage: python -m bench TOOL [ARGS...]\n\ntools:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in TOOLS:
        print(f"python -m bench: unknown tool {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(TOOLS[name][0])
    # every tool parses sys.argv itself, some with no argv parameter: hand it the rest as its own
    sys.argv = [f"python -m bench {name}", *rest]
    return module.main() or 0


if __name__ == "__main__":
    sys.exit(main())
