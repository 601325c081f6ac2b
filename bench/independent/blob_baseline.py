#!/usr/bin/env python3
"""A picker that learns nothing but sizes (issue 12's "no-learning blob detector"), to show what
the look-alikes of a benchmark cost a detector and what a trained network must beat.

For each class of the class table (radius r in voxels) the tomogram's dark blobs of that size
are enhanced by a difference of Gaussians (σ = r/2 against σ = r, computed by FFT), standardised
by its own spread; its local maxima are suppressed greedily (a weaker peak within 0.8 × r of a
stronger one goes). Classes are detected independently (a pick of one class may sit on a
particle of another: the evaluation counts it). The one number
per class it may choose, the score threshold, is set for the best strict F1 (0.5 × radius) on a
tuning tomogram, then applied to the test tomogram. numpy and mrcfile only (no capsid code).

    python3 bench/independent/blob_baseline.py --data DIR --tune tomo_002 --test tomo_003 \
        --out picks.csv
Then score it like any picker:
    capsid evaluate --picks picks.csv --truth DIR/tomo_003/particle_locations.txt \
        --classes DIR/class_table.toml --tolerance 0.5 --decoys DIR/tomo_003/decoy_locations.txt \
        --decoy-classes DIR/decoy_table.toml --out eval
"""

import argparse
import os
import re
import sys

import numpy as np

try:
    import mrcfile
except ImportError:  # pragma: no cover
    sys.exit("blob_baseline.py needs mrcfile (pip install mrcfile numpy)")


def read_classes(path, voxel_a):
    """(name, radius in voxels) of each [[class]] of a capsid class table (radius_a or radius_vox)."""
    text = open(path).read()
    out = []
    for block in text.split("[[class]]")[1:]:
        name = re.search(r'name\s*=\s*"([^"]+)"', block).group(1)
        ra = re.search(r"radius_a\s*=\s*([0-9.eE+-]+)", block)
        rv = re.search(r"radius_vox\s*=\s*([0-9.eE+-]+)", block)
        out.append((name, float(ra.group(1)) / voxel_a if ra else float(rv.group(1))))
    return out


def read_truth(path):
    """Particles (class, x, y, z) of a SHREC-style or CSV list (class first, then x y z)."""
    rows = []
    for line in open(path):
        f = re.split(r"[,\s]+", line.strip())
        if len(f) < 4:
            continue
        try:
            rows.append((f[0], float(f[1]), float(f[2]), float(f[3])))
        except ValueError:
            continue  # a header
    return rows


def gauss_ft(shape, sigma):
    kz = np.fft.fftfreq(shape[0])[:, None, None]
    ky = np.fft.fftfreq(shape[1])[None, :, None]
    kx = np.fft.rfftfreq(shape[2])[None, None, :]
    return np.exp(-2 * np.pi ** 2 * sigma ** 2 * (kx ** 2 + ky ** 2 + kz ** 2))


def local_maxima(v, border):
    """(z, y, x) of voxels larger than their 26 neighbours, away from the border."""
    core = v[1:-1, 1:-1, 1:-1]
    is_max = np.ones(core.shape, bool)
    for dz in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dz or dy or dx:
                    is_max &= core > v[1 + dz:v.shape[0] - 1 + dz, 1 + dy:v.shape[1] - 1 + dy,
                                       1 + dx:v.shape[2] - 1 + dx]
    z, y, x = np.nonzero(is_max)
    z, y, x = z + 1, y + 1, x + 1
    b = border
    keep = (z >= b) & (y >= b) & (x >= b) & (z < v.shape[0] - b) & (y < v.shape[1] - b) & (x < v.shape[2] - b)
    return z[keep], y[keep], x[keep]


def detect(tomo, classes):
    """Peaks of every class, each class on its own: list of (class, x, y, z, score)."""
    ft = np.fft.rfftn(-tomo.astype(np.float32), axes=(0, 1, 2))
    out = []
    for name, r in classes:
        s1, s2 = max(r / 2, 0.7), max(r, 1.2)
        dog = np.fft.irfftn(ft * (gauss_ft(tomo.shape, s1) - gauss_ft(tomo.shape, s2)), s=tomo.shape,
                            axes=(0, 1, 2))
        dog = (dog - np.median(dog)) / dog.std()
        z, y, x = local_maxima(dog, 1)
        order = np.argsort(-dog[z, y, x])
        kept = []
        grid = {}
        cell = 0.8 * r + 1
        for i in order:
            xx, yy, zz = float(x[i]), float(y[i]), float(z[i])
            key = (int(xx // cell), int(yy // cell), int(zz // cell))
            near = [grid.get((key[0] + a, key[1] + b, key[2] + c), [])
                    for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
            if any((xx - k[0]) ** 2 + (yy - k[1]) ** 2 + (zz - k[2]) ** 2 < (0.8 * r) ** 2
                   for lst in near for k in lst):
                continue
            grid.setdefault(key, []).append((xx, yy, zz))
            kept.append((name, xx, yy, zz, float(dog[z[i], y[i], x[i]])))
            if len(kept) >= 5000:
                break
        out.extend(kept)
    return out


def f1_at(picks, truth, r):
    """Strict F1 (0.5 × r) of one class's picks against its truth; greedy by score."""
    used = np.zeros(len(truth), bool)
    tp = 0
    t = np.array([[x, y, z] for _, x, y, z in truth]) if truth else np.zeros((0, 3))
    for _, x, y, z, _ in picks:
        if len(t) == 0:
            break
        d = np.sqrt(((t - [x, y, z]) ** 2).sum(1))
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= 0.5 * r:
            used[j] = True
            tp += 1
    fp, fn = len(picks) - tp, len(truth) - tp
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--tune", default="tomo_002")
    ap.add_argument("--test", default="tomo_003")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    def load(name):
        with mrcfile.open(os.path.join(a.data, name, "reconstruction.mrc"), permissive=True) as m:
            return m.data.astype(np.float32), float(m.voxel_size.x)

    tune, voxel = load(a.tune)
    classes = read_classes(os.path.join(a.data, "class_table.toml"), voxel)
    truth = read_truth(os.path.join(a.data, a.tune, "particle_locations.txt"))
    peaks = detect(tune, classes)
    thresholds = {}
    for name, r in classes:
        mine = [p for p in peaks if p[0] == name]
        t = [p for p in truth if p[0] == name]
        best = (-1.0, np.inf)
        for th in sorted({round(p[4], 2) for p in mine}):
            f = f1_at([p for p in mine if p[4] >= th], t, r)
            if f > best[0]:
                best = (f, th)
        thresholds[name] = best[1]
        print(f"{name}: threshold {best[1]:.2f} (tuning F1 {best[0]:.3f} on {a.tune})")
    test, _ = load(a.test)
    picks = [p for p in detect(test, classes) if p[4] >= thresholds[p[0]]]
    tmp = a.out + ".part"
    with open(tmp, "w") as f:
        f.write("class,x,y,z,score\n")
        for n, x, y, z, s in picks:
            f.write(f"{n},{x:.1f},{y:.1f},{z:.1f},{s:.3f}\n")
    os.replace(tmp, a.out)
    print(f"{len(picks)} picks → {a.out}")


if __name__ == "__main__":
    main()
