#!/usr/bin/env bash
# Create (or update) the throwaway venv the benchmark anchors run in: asteroid and ESPnet, installed
# --no-deps beside the same torch as ours. Never a dependency of speechsep; `speechsep bench` calls the
# same code itself, so running this first is optional (useful to see pip's output).
#   scripts/anchors-venv.sh            # -> ~/.cache/speechsep/anchor-venv (or $SPEECHSEP_CACHE/anchor-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -c '
from bench.anchor_env import ANCHOR_PACKAGES, ensure_anchor_venv
print("anchor venv python:", ensure_anchor_venv(quiet=False))
print("packages (--no-deps):", " ".join(ANCHOR_PACKAGES))
'
