#!/bin/sh
# The live server's numbers in bench/fragments/serve.md: loopback latency with one client (16 ms frames,
# at the model's rate and at a browser's 48 kHz) and the number of real-time clients, plus the model's
# own step time as the anchor (speechsep stream, same audio, same thread count). Random weights are
# fine for timing. Usage: scripts/bench-serve.sh [OUTDIR] (default /tmp/serve-bench)
set -eu
OUT=${1:-/tmp/serve-bench}
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-tfacm-lite}
IN=${IN:-speechsep/examples/mixture.wav}
mkdir -p "$OUT"
{ date -u; uptime; nproc; } > "$OUT/conditions.txt"
$PY -m speechsep stream "$IN" -o "$OUT/stream" --model "$MODEL" --chunk-ms 16 --threads 1 > "$OUT/anchor-step.txt"
$PY -m bench serve-load --model "$MODEL" --input "$IN" --rate 8000 --seconds 20 --clients 1 \
    --json "$OUT/one-8k.json" > "$OUT/one-8k.md"
$PY -m bench serve-load --model "$MODEL" --input "$IN" --rate 48000 --seconds 20 --clients 1 \
    --json "$OUT/one-48k.json" > "$OUT/one-48k.md"
$PY -m bench serve-load --model "$MODEL" --input "$IN" --rate 8000 --seconds 10 --clients 1,2,3,4 \
    --json "$OUT/clients-8k.json" > "$OUT/clients-8k.md"
$PY -m speechsep stream "$IN" -o "$OUT/stream" --model "$MODEL" --chunk-ms 16 --threads 1 > "$OUT/anchor-step-after.txt"
uptime >> "$OUT/conditions.txt"
cat "$OUT"/anchor-step.txt "$OUT"/one-8k.md "$OUT"/one-48k.md "$OUT"/clients-8k.md "$OUT"/anchor-step-after.txt
