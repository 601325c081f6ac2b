#!/usr/bin/env bash
# f32 and bf16 products, capsid against PyTorch on the same CPU (issue 19): for each network and
# patch, ROUNDS rounds of four runs one after the other — capsid f32, capsid bf16, PyTorch f32
# (../shared/bench/torch_reference.py), PyTorch bf16 autocast (bench/torch_bf16.py) — each
# printing one JSON line (medians of ITERS after WARMUP). Prints the CPU first; run it on a quiet
# machine.
#
# Usage: bench/precision.sh
# Environment (all optional):
#   TORCH_PY=/tmp/torch-venv/bin/python   a Python with torch (pip install torch)
#   CASES="unet:32 ucaps:32"              network:patch pairs
#   ROUNDS=2 ITERS=5 WARMUP=2 THREADS=2 BATCH=4
#   CAPSID=target/release/capsid           the binary (built if absent)
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PY="${TORCH_PY:-/tmp/torch-venv/bin/python}"
CASES="${CASES:-unet:32 ucaps:32}"
ROUNDS="${ROUNDS:-2}"
ITERS="${ITERS:-5}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
BATCH="${BATCH:-4}"
CAPSID="${CAPSID:-target/release/capsid}"
[ -x "$CAPSID" ] || cargo build --release -p capsid-cli
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
for case in $CASES; do
  model="${case%%:*}"
  patch="${case##*:}"
  common=(--model "$model" --patch "$patch" --batch "$BATCH" --threads "$THREADS"
    --iters "$ITERS" --warmup "$WARMUP")
  for round in $(seq 1 "$ROUNDS"); do
    "$CAPSID" bench "${common[@]}" --precision f32 2>/dev/null
    "$CAPSID" bench "${common[@]}" --precision bf16 2>/dev/null
    "$TORCH_PY" ../shared/bench/torch_reference.py "${common[@]}" 2>/dev/null
    "$TORCH_PY" bench/torch_bf16.py "${common[@]}" 2>/dev/null
    echo "# round $round of $model patch $patch done" >&2
  done
done
