#!/usr/bin/env bash
# Template matching (issue 18): speed against scipy.fft on the same CPU, and accuracy and time on
# a simulated tomogram, in one run.
#
#   PY=/path/to/python bash bench/match.sh [OUT]      # PY: a Python with mrcfile, numpy, scipy
#
# 1. Speed pair, ROUNDS times alternately: `capsid match` over a random 97³ tomogram with a 32³
#    template (extended by the template to one 128³ FFT tile, 97³ positions) against
#    bench/match_scipy.py on a 128³ tile with a 32³ template (97³ valid positions), both with
#    THREADS threads; rotations per second of each (capsid's from match.json: the whole search
#    including the tile's preparation; scipy's: the rotation loop only).
# 2. Accuracy and time: a simulated 256×256×128 tomogram (10 Å, SNR 0.1, ribosomes among
#    proteasomes, TRiC and RuBisCO), `capsid match` at STEP degrees with the ribosome's own
#    template and the tomogram's missing wedge, under /usr/bin/time -v; `capsid evaluate` at the
#    strict tolerance (0.5 × radius) with orientation errors; `capsid orient` on the picks
#    (20° → 2°) and its orientation errors.
# Results: OUT/summary.txt (and every command's own JSON under OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/capsid-match-bench}
CAPSID=${CAPSID:-target/release/capsid}
PY=${PY:-python3}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
STEP=${STEP:-15}
SPEED_STEP=${SPEED_STEP:-30}
export RAYON_NUM_THREADS=$THREADS
[ -x "$CAPSID" ] || cargo build --release -p capsid-cli
mkdir -p "$OUT/speed"
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "CPU: $CPU, $THREADS threads" | tee "$OUT/summary.txt"

# --- 1. speed pair ---------------------------------------------------------------------------
"$PY" - "$OUT/speed" <<'EOF'
import sys, numpy as np, mrcfile
out = sys.argv[1]
rng = np.random.default_rng(0)
with mrcfile.new(f"{out}/tomo97.mrc", overwrite=True) as m:
    m.set_data(rng.standard_normal((97, 97, 97)).astype(np.float32))
    m.voxel_size = 10.0
b = 32
z, y, x = np.mgrid[0:b, 0:b, 0:b] - b // 2
t = np.zeros((b, b, b), np.float32)
for (cx, cy, cz, s) in [(4, 0, 0, 3.0), (-3, 5, 1, 2.0), (0, -2, 6, 1.5)]:
    t += np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * s * s)).astype(np.float32)
with mrcfile.new(f"{out}/template32.mrc", overwrite=True) as m:
    m.set_data(t)
    m.voxel_size = 10.0
EOF
for r in $(seq 1 "$ROUNDS"); do
  "$CAPSID" match "$OUT/speed/tomo97.mrc" --template "$OUT/speed/template32.mrc" \
    --angular-step "$SPEED_STEP" --tile 128 --min-score 2 --out "$OUT/speed/capsid_r$r" --force 2>/dev/null
  c=$("$PY" -c "import json;d=json.load(open('$OUT/speed/capsid_r$r/match.json'));print(f\"{d['rotations_per_s']:.1f} {d['rotations']} {d['fft_shape_zyx']}\")")
  s=$("$PY" bench/match_scipy.py --tile 128 --template 32 --rotations 100 --threads "$THREADS" \
    | "$PY" -c "import json,sys;d=json.load(sys.stdin);print(f\"{d['rotations_per_s']:.1f}\")")
  echo "round $r: capsid $c rotations/s (rotations, FFT shape); scipy.fft $s rotations/s" | tee -a "$OUT/summary.txt"
done

# --- 2. accuracy and time ----------------------------------------------------------------------
cat > "$OUT/sim.toml" <<'EOF'
preset = "tiny"
shape_zyx = [128, 256, 256]
voxel_size_a = 10.0
slab_thickness_vox = 100
tomograms = 1
seed = 11

[noise]
snr = 0.1

[[class]]
name = "ribosome"
builtin = "ribosome"
count = 40

[[class]]
name = "proteasome"
builtin = "proteasome"
count = 30

[[class]]
name = "tric"
builtin = "tric"
count = 30

[[class]]
name = "rubisco"
builtin = "rubisco"
count = 30
EOF
SIM="$OUT/sim"
[ -f "$SIM/reconstruction.mrc" ] || "$CAPSID" simulate --config "$OUT/sim.toml" --out "$SIM" >/dev/null
TILTS=$(sed -n '/^\[tilt\]/,/^\[/p' "$SIM/simulate_config.toml" | awk -F' = ' '/^min_deg/{a=$2} /^max_deg/{b=$2} END{print a","b}')
/usr/bin/time -v "$CAPSID" match "$SIM/reconstruction.mrc" --template "$SIM/templates/ribosome.mrc" \
  --classes "$SIM/class_table.toml" --class ribosome --angular-step "$STEP" --tilt-range="$TILTS" \
  --out "$OUT/tm" --force 2> "$OUT/tm.time"
grep -E "Elapsed|Maximum resident" "$OUT/tm.time" | sed 's/^\s*//' | tee -a "$OUT/summary.txt"
PICKS=$(ls "$OUT"/tm/*_particles.star)
"$PY" -c "import json;d=json.load(open('$OUT/tm/match.json'));print(f\"match: {d['rotations']} rotations at {d['angular_step_deg']} deg, {d['tiles']} tile(s) {d['fft_shape_zyx']}, {d['seconds']:.0f} s, {d['peaks']} peaks\")" | tee -a "$OUT/summary.txt"
# Truth of the ribosome class only: the other classes are what the template must not pick.
"$CAPSID" evaluate --picks "$PICKS" --truth "$SIM/particle_locations.txt" \
  --classes "$SIM/class_table.toml" --tolerance 0.5 --voxel-size 10 --out "$OUT/eval_match" --force \
  > "$OUT/eval_match.txt"
/usr/bin/time -v "$CAPSID" orient "$PICKS" --tomogram "$SIM/reconstruction.mrc" \
  --template "$SIM/templates/ribosome.mrc" --tilt-range="$TILTS" --out "$OUT/oriented.star" --force 2> "$OUT/orient.time"
grep -E "Elapsed" "$OUT/orient.time" | sed 's/^\s*/orient: /' | tee -a "$OUT/summary.txt"
"$CAPSID" evaluate --picks "$OUT/oriented.star" --truth "$SIM/particle_locations.txt" \
  --classes "$SIM/class_table.toml" --tolerance 0.5 --voxel-size 10 --out "$OUT/eval_orient" --force \
  > "$OUT/eval_orient.txt"
"$PY" - "$OUT" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys
out = sys.argv[1]
for what in ["match", "orient"]:
    d = json.load(open(f"{out}/eval_{what}/summary.json"))
    for c in d["classes"]:
        if c["class"] != "ribosome":
            continue
        o = c.get("orientation") or {}
        print(f"{what}: ribosome P {c['precision']:.3f} R {c['recall']:.3f} F1 {c['f1']:.3f} "
              f"(TP {c['tp']}, FP {c['fp']}, FN {c['fn']}); angular error median "
              f"{o.get('median_deg', float('nan')):.1f} deg, p90 {o.get('p90_deg', float('nan')):.1f} deg "
              f"({o.get('pairs', 0)} pairs)")
EOF
