#!/bin/bash
# Both bundled models at once on one lent GPU (bench/gpu/README.md): the wheels and the corpus are set up
# once (setup.sh), then tf-mask-blstm (the default) and tf-mask-lstm (the causal default) train side by side from
# their bundled weights, 7 data workers each on the machine's 16 cores, for TRAIN_SECONDS each.
#   OUT=$OUT TRAIN_SECONDS=400 bash bench/gpu/train_pair.sh
# Each comes back in its own folder: $OUT/tf-mask-blstm/{model.pt,log.jsonl,config.yaml,train.log}, ...
set -euo pipefail
: "${TRAIN_SECONDS:=400}" "${OUT:=/tmp/out}" "${PYTHON:=python3}" "${NO_WHEELS:=}" "${DEVICE:=cuda}"
: "${WORKERS:=7}" "${BATCH:=32}" "${LR:=0.001}"
bash bench/gpu/setup.sh
# Validation on dynamically mixed training speakers (the held-out sets stay on the CPU machine); the
# plateau rule halves the LR after 3 epochs without a better score and never stops early. An epoch is
# one pass over the packed lines when that is shorter than 1,000 steps (9,150 lines: 281 steps at batch 32).
common=(--set 'data.valid=demo:${SPEECHSEP_DEMO_ROOT}:train:clean' --set data.valid_max_examples=128
        --set data.valid_segment_seconds=4 --set "data.batch_size=$BATCH" --set "data.num_workers=$WORKERS"
        --set steps_per_epoch=1000 --set max_epochs=100000 --set schedule.patience=3
        --set schedule.stop_patience=100000 --set checkpoint_every=250 --set precision=fp32 --set "optim.lr=$LR")
for name in tf-mask-blstm tf-mask-lstm; do
    PREPARED=1 RUN_DIR=/tmp/run-$name OUT=$OUT/$name INIT=speechsep/pretrained/$name/model.pt \
        bash bench/gpu/train.sh bundled/$name "${common[@]}" &
done
wait
