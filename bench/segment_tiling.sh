#!/usr/bin/env bash
# Accuracy cost of faster tilings (issue 16): segments one tomogram with a trained model under
# several sliding-window settings, and compares each label map and its picks with a reference
# tiling (the seed's: patch 64, overlap 25, uniform averaging). Prints one JSON line per tiling:
# windows, wall seconds, peak memory (max RSS), label-map agreement with the reference (share of
# voxels with the same label, and of the reference's foreground voxels), and strict pick F1 per
# class against the truth (picks by the model's tuned settings, `capsid pick` defaults).
#
#   bash bench/segment_tiling.sh RUN TOMO.mrc TRUTH [WORKDIR]
#
# Environment: TILINGS="PATCH/OVERLAP/BLEND ..." (default below), NORMALIZE=window|tomogram
# (`capsid segment --normalize`, for the reference and every tiling), THREADS=2,
# CAPSID=target/release/capsid.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1
tomo=$2
truth=$3
work=${4:-target/bench-tiling}
threads=${THREADS:-2}
capsid=${CAPSID:-target/release/capsid}
tilings=${TILINGS:-"64/25/uniform 64/16/crop 96/16/crop 128/16/crop 128/32/crop 128/16/uniform 128/16/gaussian"}
mkdir -p "$work"
voxel=$(python3 -c 'import mrcfile, sys; print(float(mrcfile.open(sys.argv[1], header_only=True).voxel_size.x))' "$tomo")
name=$(basename "$(dirname "$tomo")")
[ "$(basename "$tomo")" = reconstruction.mrc ] || name=$(basename "$tomo" .mrc)

segment() { # tag patch overlap blend
  local out="$work/$1"
  rm -rf "$out"
  /usr/bin/time -v "$capsid" segment "$run" "$tomo" --out "$out" --patch "$2" --overlap "$3" \
    --blend "$4" --normalize "${NORMALIZE:-window}" --threads "$threads" --json > "$out.json" 2> "$out.time"
  "$capsid" pick "$out/${name}_labels.mrc" --classes "$run/class_table.toml" \
    --out "$out/picks.star" --force > /dev/null 2> "$out.pick.log"
  "$capsid" evaluate --picks "$out/picks.star" --truth "$truth" --classes "$run/class_table.toml" \
    --voxel-size "$voxel" --tolerance 0.5 --out "$out/eval" --force --json > "$out.eval.json"
}

ref="ref-64-25-uniform"
[ -f "$work/$ref.eval.json" ] && [ -s "$work/$ref.eval.json" ] || segment "$ref" 64 25 uniform
for t in $tilings; do
  IFS=/ read -r patch overlap blend <<< "$t"
  tag="t-$patch-$overlap-$blend"
  segment "$tag" "$patch" "$overlap" "$blend"
  python3 - "$work" "$ref" "$tag" "$name" "$t" <<'EOF'
import json, re, sys, os
import numpy as np
import mrcfile
work, ref, tag, name, tiling = sys.argv[1:]
def labels(t):
    with mrcfile.open(os.path.join(work, t, f"{name}_labels.mrc"), permissive=True) as m:
        return np.asarray(m.data)
a, b = labels(ref), labels(tag)
fg = a != 0
def f1s(t):
    s = json.load(open(os.path.join(work, t + ".eval.json")))
    return {c["class"]: round(c["f1"], 3) for c in s["classes"]}
def usage(t):
    txt = open(os.path.join(work, t + ".time")).read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.*)", txt).group(1)
    parts = [float(p) for p in wall.split(":")]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", txt).group(1)) / 1024
    return round(secs, 1), round(rss)
seg = json.load(open(os.path.join(work, tag + ".json")))
windows = seg[0]["windows"]
print(json.dumps({
    "tiling": tiling, "windows": windows,
    "wall_s": usage(tag)[0], "max_rss_mb": usage(tag)[1],
    "ref_wall_s": usage(ref)[0], "ref_max_rss_mb": usage(ref)[1],
    "agreement": round(float((a == b).mean()), 5),
    "agreement_fg": round(float((a[fg] == b[fg]).mean()), 5) if fg.any() else None,
    "f1": f1s(tag), "ref_f1": f1s(ref),
}))
EOF
done
