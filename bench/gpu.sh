#!/usr/bin/env bash
# GPU comparison: `capsid bench` on Burn's wgpu backend (Vulkan) beside the PyTorch reference networks
# on CUDA (bench/torch_gpu.py), same model, patch and batch, one machine, one run.
#
#   bash bench/gpu.sh CAPSID_BINARY TORCH_REFERENCE_PY [OUTDIR]
#
# CAPSID_BINARY is a capsid built with `--features wgpu` (e.g.
# `cargo build --release -p capsid-cli --features wgpu`); TORCH_REFERENCE_PY is
# shared/bench/torch_reference.py. Each capsid run is bounded by CAPSID_GPU_TIMEOUT seconds (default
# 90: Burn compiles and autotunes its kernels in the warm-up runs). Prints JSON lines; OUTDIR gets a
# copy of everything printed.
#
# On a lent GPU machine without Rust, build here and carry the binary: the stripped wgpu build is
# ~100 MB, so `strip -o .devbin/capsid target/release/capsid && xz -T2 .devbin/capsid` (~20 MB), copy
# shared/bench/torch_reference.py to .devbin/, and on the machine unpack the Vulkan loader (libvulkan1)
# and run `xz -dc .devbin/capsid.xz > /tmp/capsid; chmod +x /tmp/capsid; bash bench/gpu.sh /tmp/capsid
# .devbin/torch_reference.py`. (The `cuda` feature needs an LLVM bundle that its build script
# downloads from GitHub, which this project's machines cannot reach.)
set -uo pipefail
cd "$(dirname "$0")/.."
capsid=${1:?capsid binary}
reference=${2:?torch_reference.py}
out=${3:-target/bench-gpu}
limit=${CAPSID_GPU_TIMEOUT:-90}
mkdir -p "$out"
log="$out/gpu.log"
: > "$log"
say() { echo "$@" | tee -a "$log"; }

say "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
for model in unet ucaps; do
  for patch in 32 64; do
    for tf32 in "" "--no-tf32"; do
      say "torch $model $patch ${tf32:-tf32}: $(python3 bench/torch_gpu.py --reference "$reference" \
        --model "$model" --patch "$patch" --batch 4 $tf32 2>&1 | tail -1)"
    done
    say "capsid wgpu $model $patch: $(timeout "$limit" "$capsid" bench --device wgpu --model "$model" \
      --patch "$patch" --batch 4 --threads 4 --warmup 2 --iters 5 2>&1 | tail -1)"
  done
done
