#!/usr/bin/env bash
# Segmentation benchmark: wall time and peak memory (max RSS) of `capsid segment` with the UNet on
# simulated 256×256×128 and 512×512×200 tomograms, next to each tomogram's file size (the issue's
# bound: peak memory ≤ 3 × file size). Time and memory do not depend on the weights, so the model is
# trained for one step only.
#
#   bash bench/segment.sh [WORKDIR] [PATCH] [THREADS]     (defaults: target/bench-segment 64 2)
#
# Prints one JSON line per tomogram: shape, file_mb, windows, wall_s, max_rss_mb, rss_over_file.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/bench-segment}
patch=${2:-64}
threads=${3:-2}
cargo build --release -q -p capsid-cli
capsid=target/release/capsid
mkdir -p "$work"
if [ ! -f "$work/model/weights.bpk" ]; then
  "$capsid" simulate --preset tiny --seed 1 --out "$work/train-sim" > /dev/null
  "$capsid" train --model unet --data "$work/train-sim" --classes "$work/train-sim/class_table.toml" \
    --patch "$patch" --batch 1 --epochs 1 --steps 1 --threads "$threads" --out "$work/model" > /dev/null 2>&1
fi
for shape in "128 256 256" "200 512 512"; do
  set -- $shape
  name="t${3}x${2}x${1}"
  if [ ! -f "$work/$name/reconstruction.mrc" ]; then
    printf 'preset = "default"\nshape_zyx = [%s, %s, %s]\nslab_thickness_vox = %s\ntomograms = 1\n' \
      "$1" "$2" "$3" "$(( $1 * 4 / 5 ))" > "$work/$name.toml"
    "$capsid" simulate --config "$work/$name.toml" --seed 2 --out "$work/$name" > /dev/null
  fi
  tomo="$work/$name/reconstruction.mrc"
  /usr/bin/time -v "$capsid" segment "$work/model" "$tomo" --out "$work/seg-$name" \
    --patch "$patch" --threads "$threads" 2> "$work/$name.time" > /dev/null
  wall=$(grep "Elapsed (wall clock)" "$work/$name.time" | awk '{print $NF}')
  rss_kb=$(grep "Maximum resident set size" "$work/$name.time" | awk '{print $NF}')
  windows=$(grep -o '[0-9]* windows' "$work/$name.time" | awk '{print $1}')
  size=$(stat -c %s "$tomo")
  python3 - "$shape" "$size" "$wall" "$rss_kb" "$windows" "$patch" "$threads" <<'PY'
import json, sys
shape, size, wall, rss_kb, windows, patch, threads = sys.argv[1:]
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
z, y, x = (int(v) for v in shape.split())
file_mb = int(size) / 2**20
rss_mb = int(rss_kb) / 1024
print(json.dumps({"shape_xyz": [x, y, z], "patch": int(patch), "threads": int(threads),
                  "file_mb": round(file_mb, 1), "windows": int(windows or 0), "wall_s": round(secs, 1),
                  "max_rss_mb": round(rss_mb, 1), "rss_over_file": round(rss_mb / file_mb, 2)}))
PY
done
