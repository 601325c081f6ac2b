#!/usr/bin/env bash
# The capsule-pose experiment (issue 18, item 4): do 3D-UCaps' capsule vectors predict a
# particle's orientation better than the UNet's bottleneck, the voxels themselves, or template
# matching? bench/pose/capsule_pose.py says what is measured and how.
#
# Usage (from the repository root):
#   UNET=RUN UCAPS=RUN DATA=DIR bash bench/pose/capsule_pose.sh
#
#   UNET, UCAPS     trained run folders (`capsid train`) of the two networks, both trained on
#                   DATA's tomo_000–tomo_002 (e.g. by bench/quality.sh on the hard preset)
#   DATA            the hard preset (`capsid simulate --preset hard`); tomo_003 is the test set
#   WORK=DIR        outputs (default /tmp/capsid-pose)
#   EXTRA_SEEDS     more hard-preset simulations for the heads' training particles (they train
#                   on frozen features; the networks never see these): default "101 102 103 104"
#   CLASSES         default "ribosome proteasome"
#   THREADS         default 2
#   CAPSID, PYTHON  the binary (default target/release/capsid) and a Python with numpy, torch
#                   and mrcfile (default python3)
# Writes WORK/pose_results.json and prints the table.
set -euo pipefail

: "${UNET:?UNET=RUN folder of a trained 3D-UNet}"
: "${UCAPS:?UCAPS=RUN folder of a trained 3D-UCaps}"
: "${DATA:?DATA=the hard preset folder}"
WORK="${WORK:-/tmp/capsid-pose}"
EXTRA_SEEDS="${EXTRA_SEEDS:-101 102 103 104}"
CLASSES="${CLASSES:-ribosome proteasome}"
THREADS="${THREADS:-2}"
CAPSID="${CAPSID:-target/release/capsid}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"

mkdir -p "$WORK/features/unet" "$WORK/features/ucaps" "$WORK/tm"
cp "$UCAPS/class_table.toml" "$WORK/class_table.toml"
manifest="$WORK/manifest.tsv"
: > "$manifest.tmp"
for t in 000 001 002; do
  printf 'hard_%s\ttrain\t%s\n' "$t" "$DATA/tomo_$t/reconstruction.mrc" >> "$manifest.tmp"
done
for s in $EXTRA_SEEDS; do
  dir="$WORK/extra$s"
  if [ ! -f "$dir/tomo_003/particle_locations.txt" ]; then
    "$CAPSID" simulate --preset hard --seed "$s" --out "$dir" --force > "$WORK/extra$s.log"
  fi
  for t in 000 001 002 003; do
    printf 'extra%s_%s\ttrain\t%s\n' "$s" "$t" "$dir/tomo_$t/reconstruction.mrc" >> "$manifest.tmp"
  done
done
printf 'hard_003\ttest\t%s\n' "$DATA/tomo_003/reconstruction.mrc" >> "$manifest.tmp"
mv "$manifest.tmp" "$manifest"

class_flags=()
for c in $CLASSES; do class_flags+=(--class "$c"); done
while IFS=$'\t' read -r name _ mrc; do
  truth="$(dirname "$mrc")/particle_locations.txt"
  for model in unet ucaps; do
    run=$UNET; [ "$model" = ucaps ] && run=$UCAPS
    out="$WORK/features/$model/$name.csv"
    [ -f "$out" ] && continue
    echo "== features $model $name" >&2
    "$CAPSID" features "$run" --tomogram "$mrc" --particles "$truth" "${class_flags[@]}" \
      --cells 3 --threads "$THREADS" --out "$out"
  done
done < "$manifest"

# Template matching at the true positions of the test tomogram (the proteasome searched over
# C7's asymmetric unit: capsid's D7 puts a two-fold axis on x, the simulated barrel's lies at
# 12.86°; the error is measured modulo the right D7 in Python).
for c in $CLASSES; do
  star="$WORK/tm/$c.star"
  if [ ! -f "$star" ]; then
    sym=C1; [ "$c" = proteasome ] && sym=C7
    echo "== orient $c" >&2
    RAYON_NUM_THREADS="$THREADS" "$CAPSID" orient "$DATA/tomo_003/particle_locations.txt" \
      --tomogram "$DATA/tomo_003/reconstruction.mrc" --template "$DATA/templates/$c.mrc" \
      --classes "$DATA/class_table.toml" --class "$c" --symmetry "$sym" --tilt-range=-60,60 \
      --coarse-step 20 --fine-step 2 --out "$star" --force > "$WORK/tm/$c.log"
  fi
  # Its rotations through capsid's own Euler conversion (the features are not used).
  "$CAPSID" features "$UNET" --tomogram "$DATA/tomo_003/reconstruction.mrc" --particles "$star" \
    --classes "$DATA/class_table.toml" --threads "$THREADS" --out "$WORK/tm/$c.csv" --force
done

"$PYTHON" "$HERE/capsule_pose.py" "$WORK" --classes "$(echo "$CLASSES" | tr ' ' ',')" \
  --networks "UNET=$UNET UCAPS=$UCAPS DATA=$DATA EXTRA_SEEDS=$EXTRA_SEEDS cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
