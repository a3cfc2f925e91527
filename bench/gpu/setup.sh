#!/bin/bash
# A lent GPU machine's set-up, once per call (bench/gpu/README.md): the wheels its Python lacks
# (soundfile and soxr, carried in .whl/) into /tmp/site, and the packed corpus unpacked into /tmp/corpus.
# train.sh runs it unless PREPARED is set; train_pair.sh runs it once for both of its runs.
# env: PYTHON (python3), NO_WHEELS (set: use the Python's own packages; a rehearsal on the CPU machine)
set -euo pipefail
: "${PYTHON:=python3}" "${NO_WHEELS:=}"
site=
if [ -z "$NO_WHEELS" ]; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    site=/tmp/site:
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
t0=$(date +%s)
PYTHONPATH=$site$PWD $PYTHON -m bench gpu-unpack .gpu/corpus /tmp/corpus
echo "unpacked in $(( $(date +%s) - t0 )) s"
