#!/usr/bin/env python3
"""An identification benchmark made without capsid (issue 12: "acceptance is also measured on an
independent generator of the same principle that the project does not contain").

Same principle as `capsid simulate --preset hard`, built another way, with numpy and mrcfile only
(no capsid code, no capsid file writer):

* three target classes made of Gaussian "domains" (10 Å voxels):
  - `large`   an asymmetric two-subunit complex (a 40-domain body and a 15-domain cap on top),
  - `barrel`  four stacked rings of seven domains (a 20S-proteasome-like cylinder),
  - `tiny`    a two-domain dumbbell about 3 voxels in radius;
* one unlabelled look-alike per target, from the *same domains at the same distances from the
  centre* (so the mass, the bounding radius and the radial density profile are the target's) but
  in another arrangement:
  - `large_alike`   the body mirrored and the cap moved from the pole to the equator,
  - `barrel_alike`  the inner rings kept, the two outer rings laid into the equator (a disc),
  - `tiny_alike`    the dumbbell's mass in three domains on a triangle (a disc, not a rod);
* domain amplitudes make the inner densities of all classes alike (protein is protein: the tiny
  class is not fainter per voxel than the large one);
* crowding: 40 eight-domain cubes (`cube`, radius 6 voxels) per tomogram, unlabelled;
* imaging (not capsid's tilt-series model): dark particles, a Gaussian envelope (B = 500 Å²), a
  ±60° missing wedge about y applied in Fourier space to signal and noise alike, white noise
  scaled to SNR 0.02 (variance of the filtered signal over that of the filtered noise).

Writes DIR/class_table.toml, DIR/decoy_table.toml, DIR/shapes.txt (the mass / radius / radial
profile checks of each pair), DIR/templates/{large,barrel,tiny}.mrc (each target rendered
unrotated, protein positive, without noise, wedge or envelope: what a user makes from a model, for
template matching and `capsid orient`) and for each tomogram DIR/tomo_00N/{reconstruction.mrc,
occupancy_mask.mrc, particle_locations.txt, decoy_locations.txt} (SHREC-style lists: class x y z
in voxels, then three zero angles). bench/quality.sh reads it with DATA=DIR.

    python3 bench/independent/hard_gen.py --out /tmp/indep [--tomograms 4] [--seed 7]
"""

import argparse
import os
import sys

import numpy as np

try:
    import mrcfile
except ImportError:  # pragma: no cover
    sys.exit("hard_gen.py needs mrcfile (pip install mrcfile numpy)")

VOXEL_A = 10.0
SHAPE = (128, 256, 256)  # z, y, x


# ----------------------------------------------------------------------------------------------
# Shapes: arrays of domains (x, y, z, amplitude, sigma), voxels, centred on 0.


def ellipsoid_points(rng, n, semi, centre, min_sep):
    """n points inside an ellipsoid (semi-axes, centre; voxels) at least min_sep apart."""
    pts = []
    while len(pts) < n:
        p = rng.uniform(-1, 1, 3)
        if p @ p > 1:
            continue
        q = centre + p * semi
        if all(np.linalg.norm(q - o) >= min_sep for o in pts):
            pts.append(q)
    return np.array(pts)


def large_pair(rng):
    body = ellipsoid_points(rng, 40, np.array([10.0, 8.5, 7.5]), np.array([0, 0, -2.0]), 2.2)
    cap = ellipsoid_points(rng, 15, np.array([7.5, 5.0, 3.0]), np.array([0, 0, 7.5]), 2.2)
    target = np.vstack([body, cap])
    # Look-alike: the body mirrored (x → -x), the cap's domains moved from the pole to the
    # equator (+x side) at the same distances from the centre.
    body_m = body * np.array([-1, 1, 1])
    cap_d = np.linalg.norm(cap, axis=1)
    cap_dir = cap / cap_d[:, None]
    # Rotate the cap's directions by 90° about y: the pole (+z) goes to +x.
    rot = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=float)
    cap_m = (cap_dir @ rot.T) * cap_d[:, None]
    alike = np.vstack([body_m, cap_m])
    return domains(target, 1.0, 1.6), domains(alike, 1.0, 1.6)


def barrel_pair():
    rings = []
    for z, r, phase in [(-6.0, 4.2, 0.0), (-2.0, 5.0, 0.5), (2.0, 5.0, 0.0), (6.0, 4.2, 0.5)]:
        for k in range(7):
            a = 2 * np.pi * (k + phase) / 7
            rings.append([r * np.cos(a), r * np.sin(a), z])
    target = np.array(rings)
    # Look-alike: inner rings kept; each outer ring's domains go into the equator at their own
    # distance from the centre (a 14-domain belt): a disc instead of a cylinder.
    d_outer = np.hypot(4.2, 6.0)
    belt = [[d_outer * np.cos(2 * np.pi * (k + 0.25) / 14), d_outer * np.sin(2 * np.pi * (k + 0.25) / 14), 0.0]
            for k in range(14)]
    alike = np.vstack([target[7:21], np.array(belt)])
    return domains(target, 3.0, 1.3), domains(alike, 3.0, 1.3)


def tiny_pair():
    target = np.array([[-1.3, 0, 0], [1.3, 0, 0]])
    tri = np.array([[1.3 * np.cos(a), 1.3 * np.sin(a), 0] for a in (0, 2 * np.pi / 3, 4 * np.pi / 3)])
    t = domains(target, 4.0, 1.0)
    a = domains(tri, 8.0 / 3.0, 1.0)
    return t, a


def cube():
    c = np.array([[x, y, z] for x in (-3, 3) for y in (-3, 3) for z in (-3, 3)], dtype=float)
    return domains(c, 3.0, 1.5)


def domains(pos, amp, sigma):
    d = np.zeros((len(pos), 5))
    d[:, :3] = pos
    d[:, 3] = amp
    d[:, 4] = sigma
    return d


def mass(d):
    """Integrated density (Gaussian integrals)."""
    return float(np.sum(d[:, 3] * (2 * np.pi) ** 1.5 * d[:, 4] ** 3))


def radius(d):
    """Bounding radius in voxels: farthest domain centre plus one sigma."""
    return float(np.max(np.linalg.norm(d[:, :3], axis=1) + d[:, 4]))


def render_local(d, size):
    """The shape rendered in a cube of `size` voxels centred on 0 (z, y, x)."""
    c = (size - 1) / 2
    zz, yy, xx = np.mgrid[0:size, 0:size, 0:size].astype(np.float32) - c
    out = np.zeros((size, size, size), np.float32)
    for x, y, z, a, s in d:
        out += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2) / (2 * s * s))
    return out


def radial_profile(v):
    size = v.shape[0]
    c = (size - 1) / 2
    zz, yy, xx = np.mgrid[0:size, 0:size, 0:size] - c
    r = np.sqrt(xx ** 2 + yy ** 2 + zz ** 2).astype(int)
    return np.bincount(r.ravel(), v.ravel()) / np.maximum(np.bincount(r.ravel()), 1)


def anisotropy(v):
    """Largest over smallest principal moment of the density (1 = sphere)."""
    size = v.shape[0]
    c = (size - 1) / 2
    g = np.mgrid[0:size, 0:size, 0:size].reshape(3, -1).astype(float) - c
    w = v.ravel()
    m = (g * w) @ g.T / w.sum()
    e = np.linalg.eigvalsh(m)
    return float(e[-1] / e[0])


# ----------------------------------------------------------------------------------------------
# Placement and imaging


def random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def place(rng, kinds, counts):
    """Non-overlapping centres (x, y, z voxels) for counts[i] copies of kinds[i] (largest first)."""
    placed = []  # (kind index, centre, radius)
    for i in sorted(range(len(kinds)), key=lambda i: -kinds[i]["radius"]):
        r = kinds[i]["radius"]
        done = 0
        tries = 0
        while done < counts[i]:
            tries += 1
            if tries > 200000:
                sys.exit(f"hard_gen.py: could not place {counts[i]} × {kinds[i]['name']}")
            c = np.array([rng.uniform(r, SHAPE[2] - 1 - r), rng.uniform(r, SHAPE[1] - 1 - r),
                          rng.uniform(r, SHAPE[0] - 1 - r)])
            if all(np.linalg.norm(c - o) >= r + ro for _, o, ro in placed):
                placed.append((i, c, r))
                done += 1
    return placed


def splat(vol, d, centre, rot):
    """Adds the domains of shape d, rotated by rot and centred at centre (x, y, z), to vol (z, y, x)."""
    pos = d[:, :3] @ rot.T + centre
    for (x, y, z), a, s in zip(pos, d[:, 3], d[:, 4]):
        h = int(np.ceil(3.5 * s))
        x0, y0, z0 = int(round(x)) - h, int(round(y)) - h, int(round(z)) - h
        zs, ys, xs = [slice(max(o, 0), min(o + 2 * h + 1, n)) for o, n in zip((z0, y0, x0), SHAPE)]
        zz, yy, xx = np.mgrid[zs, ys, xs].astype(np.float32)
        vol[zs, ys, xs] += a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2) / (2 * s * s))


def image(rng, density, snr):
    """Dark particles seen through an envelope and a ±60° wedge about y, with noise at `snr`."""
    kz = np.fft.fftfreq(SHAPE[0])[:, None, None]
    ky = np.fft.fftfreq(SHAPE[1])[None, :, None]
    kx = np.fft.rfftfreq(SHAPE[2])[None, None, :]
    k2 = (kx ** 2 + ky ** 2 + kz ** 2) / VOXEL_A ** 2  # 1/Å²
    envelope = np.exp(-500.0 * k2 / 4)
    # Tilts of ±60° about y sample the central planes through k_y tilted up to 60° from k_z = 0:
    # the directions |kz| ≤ |kx|·tan 60° are seen, a 60° wedge about k_z is missing.
    seen = np.abs(kz) <= np.abs(kx) * np.tan(np.radians(60)) + 1e-12
    filt = (envelope * seen).astype(np.float32)
    signal = np.fft.irfftn(np.fft.rfftn(-density) * filt, s=SHAPE, axes=(0, 1, 2)).astype(np.float32)
    noise = np.fft.irfftn(np.fft.rfftn(rng.normal(size=SHAPE).astype(np.float32)) * seen, s=SHAPE, axes=(0, 1, 2))
    noise = noise.astype(np.float32)
    noise *= np.sqrt(signal.var() / snr / noise.var())
    return signal + noise


def write_mrc(path, data):
    tmp = path + ".part"
    with mrcfile.new(tmp, overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = VOXEL_A
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tomograms", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snr", type=float, default=0.02)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    large, large_alike = large_pair(rng)
    barrel, barrel_alike = barrel_pair()
    tiny, tiny_alike = tiny_pair()
    kinds = [
        dict(name="large", d=large, target=True, n=30),
        dict(name="barrel", d=barrel, target=True, n=60),
        dict(name="tiny", d=tiny, target=True, n=120),
        dict(name="large_alike", d=large_alike, target=False, n=30),
        dict(name="barrel_alike", d=barrel_alike, target=False, n=60),
        dict(name="tiny_alike", d=tiny_alike, target=False, n=120),
        dict(name="cube", d=cube(), target=False, n=40),
    ]
    for k in kinds:
        k["radius"] = radius(k["d"])
    os.makedirs(a.out, exist_ok=True)

    lines = ["pair              mass ratio  radius ratio  radial profile r  anisotropy target → look-alike"]
    for t, l in [(0, 3), (1, 4), (2, 5)]:
        T, L = kinds[t], kinds[l]
        size = 2 * int(np.ceil(max(T["radius"], L["radius"]) + 4)) + 1
        vt, vl = render_local(T["d"], size), render_local(L["d"], size)
        pt, pl = radial_profile(vt), radial_profile(vl)
        n = int(max(T["radius"], L["radius"])) + 1
        r = float(np.corrcoef(pt[:n], pl[:n])[0, 1])
        lines.append(f"{T['name']:<8}/{L['name']:<14} {mass(L['d']) / mass(T['d']):.3f}  "
                     f"{L['radius'] / T['radius']:.3f}  {r:.3f}  {anisotropy(vt):.2f} → {anisotropy(vl):.2f}")
        assert abs(mass(L["d"]) / mass(T["d"]) - 1) <= 0.1 and abs(L["radius"] / T["radius"] - 1) <= 0.1
    # Templates of the targets (what a user would make from a PDB model): the shape rendered
    # unrotated, protein positive, no noise, wedge or envelope; no random numbers are drawn.
    os.makedirs(os.path.join(a.out, "templates"), exist_ok=True)
    for k in kinds[:3]:
        size = 2 * int(np.ceil(k["radius"] + 4)) + 1
        write_mrc(os.path.join(a.out, "templates", f"{k['name']}.mrc"), render_local(k["d"], size))
    with open(os.path.join(a.out, "shapes.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    def table(targets):
        rows = [k for k in kinds if k["target"] == targets]
        return "".join(f"[[class]]\nname = \"{k['name']}\"\nlabel = {i + 1}\nradius_a = {k['radius'] * VOXEL_A:.1f}\n\n"
                       for i, k in enumerate(rows))

    with open(os.path.join(a.out, "class_table.toml"), "w") as f:
        f.write(table(True))
    with open(os.path.join(a.out, "decoy_table.toml"), "w") as f:
        f.write(table(False))

    for t in range(a.tomograms):
        d = os.path.join(a.out, f"tomo_{t:03d}")
        os.makedirs(d, exist_ok=True)
        placed = place(rng, kinds, [k["n"] for k in kinds])
        density = np.zeros(SHAPE, np.float32)
        occupancy = np.zeros(SHAPE, np.float32)
        truth, decoys = [], []
        for i, c, r in placed:
            k = kinds[i]
            splat(density, k["d"], c, random_rotation(rng))
            row = f"{k['name']} {c[0]:.2f} {c[1]:.2f} {c[2]:.2f} 0 0 0"
            if k["target"]:
                truth.append(row)
                # Hitbox: the particle's sphere at 0.8 × its radius carries its 1-based index.
                h = int(np.ceil(r))
                lo = [max(int(c[j]) - h, 0) for j in range(3)]
                hi = [min(int(c[j]) + h + 1, SHAPE[2 - j]) for j in range(3)]
                zz, yy, xx = np.mgrid[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
                inside = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2 <= (0.8 * r) ** 2
                occupancy[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]][inside] = len(truth)
            else:
                decoys.append(row)
        write_mrc(os.path.join(d, "reconstruction.mrc"), image(rng, density, a.snr))
        write_mrc(os.path.join(d, "occupancy_mask.mrc"), occupancy)
        with open(os.path.join(d, "particle_locations.txt"), "w") as f:
            f.write("\n".join(truth) + "\n")
        with open(os.path.join(d, "decoy_locations.txt"), "w") as f:
            f.write("\n".join(decoys) + "\n")
        print(f"{d}: {len(truth)} targets, {len(decoys)} look-alikes and crowders")


if __name__ == "__main__":
    main()
