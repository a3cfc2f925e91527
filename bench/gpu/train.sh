#!/bin/bash
# The one command a lent GPU machine runs (bench/gpu/README.md): wheels in, corpus unpacked, one
# training run for TRAIN_SECONDS, its weights and log out. Arguments after the recipe are --set pairs.
#   bash bench/gpu/train.sh RECIPE [--set KEY=VALUE ...]
# env: TRAIN_SECONDS (420), OUT (/tmp/out), INIT (weights to start from), DEVICE (cuda), PYTHON (python3),
#      NO_WHEELS (set: use the Python's own packages; for a rehearsal on the CPU machine),
#      RUN_DIR (/tmp/run), PREPARED (set: wheels and corpus are already in place, as train_pair.sh leaves them)
set -euo pipefail
recipe=$1; shift
: "${TRAIN_SECONDS:=420}" "${OUT:=/tmp/out}" "${INIT:=}" "${DEVICE:=cuda}" "${PYTHON:=python3}" "${NO_WHEELS:=}"
: "${RUN_DIR:=/tmp/run}" "${PREPARED:=}"
mkdir -p "$OUT"
if [ -z "$NO_WHEELS" ]; then  # the device's Python lacks soundfile and soxr: wheels carried in .whl/
    [ -n "$PREPARED" ] || $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
if [ -z "$PREPARED" ]; then
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    t0=$(date +%s)
    $PYTHON -m bench gpu-unpack .gpu/corpus /tmp/corpus
    echo "unpacked in $(( $(date +%s) - t0 )) s"
fi
init=()
[ -n "$INIT" ] && init=(--set "init_from=$INIT")
# timeout ends the run; checkpoints are atomic, so last.pt is whole whenever it stops
SPEECHSEP_DEMO_ROOT=/tmp/corpus timeout --signal=INT "$TRAIN_SECONDS" \
    $PYTHON -m speechsep train "$recipe" --out "$RUN_DIR" --device "$DEVICE" --no-progress "${init[@]}" "$@" \
    > "$OUT/train.log" 2>&1 || echo "training ended with status $? (124: the time budget)"
tail -n 5 "$OUT/train.log"
$PYTHON -m bench gpu-weights "$RUN_DIR/last.pt" "$OUT/model.pt"
cp "$RUN_DIR/log.jsonl" "$RUN_DIR/config.yaml" "$OUT/"
