#!/usr/bin/env bash
# The seed's 3D-UCaps ablations (issue 12) on the identification benchmark, at a reduced
# wall-clock budget: 3 vs 2 encoder/decoder levels, dilated vs regular feature extractor,
# feature kernels 5 vs 3, training patches 16 / 32 / 64. Every variant is trained, tuned, segmented,
# picked and scored by bench/quality.sh with the same recipe, data and budget; the networks differ
# only by bench/quality/ablation/VARIANT.toml (its [net] section) or the patch.
#
# Usage: bench/ablation.sh [TAG]
# Environment (all optional; the rest is passed on to bench/quality.sh, e.g. DATA, WORK, CAPSID):
#   BUDGET_MIN=6           training budget per run, minutes (2 cores)
#   SEEDS="0 1"            seeds (the outer loop: one whole seed is finished before the next)
#   VARIANTS="base levels2 dilated kernel3 patch16 patch64"
#   RECIPE="..."           training flags shared by every variant (default: the recipe of the
#                          quality table, --class-balanced --class-weights --negative-ratio 0.3)
# Steps per epoch are 20 at patches 16 and 32 and 4 at patch 64 (the budget is checked between
# epochs; a 64³ step costs about eight 32³ steps). Results: bench/quality/results/TAG-VARIANT-ucaps-sSEED.json.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-abl}"
export BUDGET_MIN="${BUDGET_MIN:-6}"
SEEDS="${SEEDS:-0 1}"
VARIANTS="${VARIANTS:-base levels2 dilated kernel3 patch16 patch64}"
RECIPE="${RECIPE:---class-balanced --class-weights --negative-ratio 0.3}"
for seed in $SEEDS; do
  for v in $VARIANTS; do
    case "$v" in
      patch16) cfg=base patch=16 steps=20 ;;
      patch64) cfg=base patch=64 steps=4 ;;
      base | levels2 | dilated | kernel3) cfg="$v" patch=32 steps=20 ;;
      *) echo "bench/ablation.sh: unknown variant '$v'" >&2; exit 2 ;;
    esac
    MODELS=ucaps SEEDS="$seed" PATCH="$patch" STEPS="$steps" \
      TRAIN_FLAGS="--config bench/quality/ablation/$cfg.toml $RECIPE" \
      bash bench/quality.sh "$TAG-$v"
  done
done
