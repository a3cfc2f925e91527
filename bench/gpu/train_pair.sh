#!/bin/bash
# Two (or more) models at once on one lent GPU (bench/gpu/README.md): the wheels and the corpus are set up
# once (setup.sh), then the MODELS train side by side, WORKERS data workers each on the machine's 16 cores,
# for TRAIN_SECONDS each. A bundled model (speechsep/pretrained/NAME) continues from its bundled weights
# with its own recipe; any other preset starts from scratch on NEW_RECIPE with model.name=NAME (SuDoRM-RF
# learns about 8x more per training example than the tf-mask LSTMs on the CPU: BENCHMARKS.md, screen 5);
# a race candidate's name (bench/learn/candidates.yaml) starts from scratch on its own recipe and overrides.
#   OUT=$OUT TRAIN_SECONDS=400 bash bench/gpu/train_pair.sh                                # the two bundled
#   OUT=$OUT TRAIN_SECONDS=400 MODELS="tf-mask-blstm sudormrf-0.5x" bash bench/gpu/train_pair.sh
#   OUT=$OUT TRAIN_SECONDS=400 MODELS="tf-mask-blstm now-sudormrf-lite" bash bench/gpu/train_pair.sh
# Each comes back in its own folder: $OUT/tf-mask-blstm/{model.pt,log.jsonl,config.yaml,train.log}, ...
set -euo pipefail
: "${TRAIN_SECONDS:=400}" "${OUT:=/tmp/out}" "${PYTHON:=python3}" "${NO_WHEELS:=}" "${DEVICE:=cuda}"
: "${WORKERS:=7}" "${BATCH:=32}" "${LR:=0.001}" "${MODELS:=tf-mask-blstm tf-mask-lstm}"
: "${NEW_RECIPE:=bundled/tf-mask-blstm}"
bash bench/gpu/setup.sh
# Validation on dynamically mixed training speakers (the held-out sets stay on the CPU machine); the
# plateau rule halves the LR after 3 epochs without a better score and never stops early. An epoch is
# one pass over the packed lines when that is shorter than 1,000 steps (9,150 lines: 281 steps at batch 32).
common=(--set 'data.valid=demo:${SPEECHSEP_DEMO_ROOT}:train:clean' --set data.valid_max_examples=128
        --set data.valid_segment_seconds=4 --set "data.batch_size=$BATCH" --set "data.num_workers=$WORKERS"
        --set steps_per_epoch=1000 --set max_epochs=100000 --set schedule.patience=3
        --set schedule.stop_patience=100000 --set checkpoint_every=250 --set precision=fp32 --set "optim.lr=$LR")
for name in $MODELS; do
    if [ -f "speechsep/pretrained/$name/model.pt" ]; then
        recipe=bundled/$name init=speechsep/pretrained/$name/model.pt model=()
    else
        # A race candidate's name gives its recipe and overrides; exit status 3 means "no such candidate"
        # (a preset name, trained on NEW_RECIPE); any other failure is a broken candidates file: stop on it.
        status=0
        lines=$($PYTHON -m bench learn-candidate "$name" 2>/tmp/learn-candidate.err) || status=$?
        if [ "$status" = 0 ]; then
            mapfile -t lines <<< "$lines"
            recipe=${lines[0]} init= model=()
            for override in "${lines[@]:1}"; do model+=(--set "$override"); done
        elif [ "$status" = 3 ]; then
            recipe=$NEW_RECIPE init= model=(--set "model.name=$name")
        else
            cat /tmp/learn-candidate.err >&2
            exit 1
        fi
    fi
    PREPARED=1 RUN_DIR=/tmp/run-$name OUT=$OUT/$name INIT=$init \
        bash bench/gpu/train.sh "$recipe" "${common[@]}" "${model[@]}" &
done
wait
