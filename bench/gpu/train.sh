#!/bin/bash
# The one command a lent GPU machine runs (bench/gpu/README.md): set-up (setup.sh), one
# training run for TRAIN_SECONDS, its weights and log out. Arguments after the recipe are --set pairs.
#   bash bench/gpu/train.sh RECIPE [--set KEY=VALUE ...]
# env: TRAIN_SECONDS (420), OUT (/tmp/out), INIT (weights to start from), DEVICE (cuda), PYTHON (python3),
#      NO_WHEELS (set: use the Python's own packages; for a rehearsal on the CPU machine),
#      RUN_DIR (/tmp/run), PREPARED (set: setup.sh has run, as train_pair.sh does once for its two runs)
set -euo pipefail
recipe=$1; shift
: "${TRAIN_SECONDS:=420}" "${OUT:=/tmp/out}" "${INIT:=}" "${DEVICE:=cuda}" "${PYTHON:=python3}" "${NO_WHEELS:=}"
: "${RUN_DIR:=/tmp/run}" "${PREPARED:=}"
mkdir -p "$OUT"
[ -n "$PREPARED" ] || bash bench/gpu/setup.sh
# the device's Python lacks soundfile and soxr: setup.sh installed them into /tmp/site
[ -n "$NO_WHEELS" ] || export PYTHONPATH=/tmp/site
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
init=()
[ -n "$INIT" ] && init=(--set "init_from=$INIT")
# timeout ends the run; checkpoints are atomic, so last.pt is whole whenever it stops
SPEECHSEP_DEMO_ROOT=/tmp/corpus timeout --signal=INT "$TRAIN_SECONDS" \
    $PYTHON -m speechsep train "$recipe" --out "$RUN_DIR" --device "$DEVICE" --no-progress "${init[@]}" "$@" \
    > "$OUT/train.log" 2>&1 || echo "training ended with status $? (124: the time budget)"
tail -n 5 "$OUT/train.log"
$PYTHON -m bench gpu-weights "$RUN_DIR/last.pt" "$OUT/model.pt"
cp "$RUN_DIR/log.jsonl" "$RUN_DIR/config.yaml" "$OUT/"
