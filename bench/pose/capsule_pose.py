#!/usr/bin/env python3
"""Do 3D-UCaps' capsule vectors predict a particle's orientation? (issue 18, item 4)

The seed argues that "capsule layers extract both the existence probability and the
orientation". This measures it: a small regression head is trained on *frozen* encoder features
at particle centres (written by `capsid features`) to predict each particle's rotation, and its
median angular error on a held-out tomogram is compared with

* the same head on one class capsule alone (the particle's own class, 64 atoms: the vector whose
  length is the class's existence probability and whose direction the seed calls its pose),
* the same head on the 3D-UNet's bottleneck features (the seed's baseline network),
* the same head on the particle's voxels themselves (binned 4×; a positive control: if the head
  cannot learn orientation from the raw density either, a negative result says nothing),
* template matching (`capsid orient` at the true positions; its rotations are read back through
  `capsid features`, so every rotation here went through capsid's own Euler conversion),
* chance (uniformly random rotations, the same error function).

Errors are geodesic angles on SO(3) to the nearest symmetry-equivalent true orientation
(R_true · S for S in the class's group): ribosome C1; proteasome D7 with its two-fold axes at
12.86° + k · 25.71° from x (the simulator's barrel: its alternate rings are turned by half a
subunit; checked on the template, correlation 0.996 under that two-fold against 0.881 about x).

The head: features standardised on the training set, projected on their first 64 principal
components, then an MLP (64 → 128 → 6, ReLU, dropout 0.2) whose 6 outputs become a rotation by
Gram–Schmidt (Zhou et al. 2019), trained with Adam on the symmetry-aware loss
min_S ||R_pred − R_true S||²_F; training stops at the epoch with the lowest median error on a
validation fifth of the training particles (chosen by seed; checked every 25 of at most 2,000
epochs), then the head is refitted on all training particles for that many epochs. Two seeds
(`--seeds`); the table gives each seed's median.

Layout read from WORK (written by bench/pose/capsule_pose.sh):
  WORK/manifest.tsv               set<TAB>role (train|test)<TAB>tomogram.mrc
  WORK/features/MODEL/SET.csv     `capsid features --cells 3` output (MODEL: unet, ucaps)
  WORK/tm/CLASS.csv               `capsid features` over `capsid orient`'s STAR (test set)
  WORK/class_table.toml           the UCaps run's class table (which class capsule is whose)

Usage: python3 capsule_pose.py WORK [--classes ribosome,proteasome] [--seeds 0,1]
Needs numpy, torch and mrcfile. Prints a Markdown table, writes WORK/pose_results.json.
"""

import argparse
import csv
import functools
import json
import math
import os
import sys
import tomllib

import mrcfile
import numpy as np
import torch

PCA_DIMS = 64
HIDDEN = 128
MAX_EPOCHS = 2000
RAW_BIN = 4
RAW_HALF = 16  # the raw control's cube: 32 voxels, binned to 8³


def axis_rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = math.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def symmetry_ops(cls):
    """Operators S (template frame) of each class's point group."""
    if cls == "proteasome":
        cyc = [axis_rotation([0, 0, 1], 360.0 * k / 7) for k in range(7)]
        a = math.radians(180.0 / 14)  # 12.86°: the two-fold axis between the rings' phases
        flip = axis_rotation([math.cos(a), math.sin(a), 0], 180.0)
        return np.array(cyc + [flip @ c for c in cyc])
    return np.eye(3)[None]


def angle_errors_deg(pred, true, ops):
    """Geodesic angle (degrees) from pred[i] to the nearest true[i] @ S."""
    best = np.full(len(pred), np.inf)
    for s in ops:
        ts = true @ s
        tr = np.einsum("nij,nij->n", pred, ts)  # trace(pred^T · ts)
        ang = np.degrees(np.arccos(np.clip((tr - 1) / 2, -1, 1)))
        best = np.minimum(best, ang)
    return best


@functools.lru_cache(maxsize=None)
def read_features(path):
    """Rows of a `capsid features` CSV: (classes, positions, rotations, features); read once."""
    pos, rot, feat, cls = [], [], [], []
    with open(path) as f:
        lines = (l for l in f if not l.startswith("#"))
        reader = csv.reader(lines)
        head = next(reader)
        i_r = head.index("r11")
        i_f = head.index("f0") if "f0" in head else len(head)
        for row in reader:
            cls.append(row[1])
            pos.append([float(v) for v in row[2:5]])
            r = row[i_r:i_r + 9]
            rot.append([float(v) for v in r] if all(r) else [math.nan] * 9)
            feat.append([float(v) for v in row[i_f:]])
    return (np.array(cls), np.array(pos), np.array(rot).reshape(-1, 3, 3),
            np.array(feat, dtype=np.float32))


def raw_features(mrc_path, pos):
    """The particle's voxels: a 32³ cube around each position, binned 4× (8³ = 512 values),
    z-scored per cube (as capsid's patches)."""
    with mrcfile.open(mrc_path, permissive=True) as m:
        vol = np.asarray(m.data, dtype=np.float32)
    out = []
    for x, y, z in np.rint(pos).astype(int):
        cube = np.zeros((2 * RAW_HALF,) * 3, np.float32)
        lo = np.array([z, y, x]) - RAW_HALF
        src = [slice(max(l, 0), min(l + 2 * RAW_HALF, s)) for l, s in zip(lo, vol.shape)]
        dst = [slice(s.start - l, s.stop - l) for s, l in zip(src, lo)]
        cube[tuple(dst)] = vol[tuple(src)]
        cube = (cube - cube.mean()) / (cube.std() + 1e-6)
        b = 2 * RAW_HALF // RAW_BIN
        out.append(cube.reshape(b, RAW_BIN, b, RAW_BIN, b, RAW_BIN).mean(axis=(1, 3, 5)).ravel())
    return np.array(out, dtype=np.float32)


def six_d_to_matrix(v):
    a, b = v[:, :3], v[:, 3:]
    e1 = torch.nn.functional.normalize(a, dim=1)
    b = b - (e1 * b).sum(1, keepdim=True) * e1
    e2 = torch.nn.functional.normalize(b, dim=1)
    e3 = torch.cross(e1, e2, dim=1)
    return torch.stack([e1, e2, e3], dim=2)  # columns


def train_head(x, r, ops, epochs, seed, check=None):
    """The head trained on rows `x` (PCA scores) for rotations `r`, full batch, for `epochs`
    epochs; `check(epoch, net)` is called every 25 epochs."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(HIDDEN, 6))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-3)
    xt = torch.from_numpy(x)
    targets = torch.from_numpy(np.stack([r @ s for s in ops], 1).astype(np.float32))  # [n, S, 3, 3]
    for epoch in range(1, epochs + 1):
        net.train()
        pred = six_d_to_matrix(net(xt))
        loss = ((pred[:, None] - targets) ** 2).sum((2, 3)).min(1).values.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if check is not None and epoch % 25 == 0:
            check(epoch, net)
    return net


def predict(net, x):
    net.eval()
    with torch.no_grad():
        return six_d_to_matrix(net(torch.from_numpy(x))).numpy().astype(float)


def fit_predict(xtr, rtr, xte, ops, seed):
    """Standardise + PCA on the training rows, choose the epochs on a validation fifth, refit on
    all training rows, predict the test rows."""
    mean, sd = xtr.mean(0), xtr.std(0) + 1e-6
    z = (xtr - mean) / sd
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    k = min(PCA_DIMS, vt.shape[0])
    proj = vt[:k].T.astype(np.float32)
    ptr = (z @ proj).astype(np.float32)
    pte = (((xte - mean) / sd) @ proj).astype(np.float32)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(ptr))
    nval = max(1, len(ptr) // 5)
    val, fit = idx[:nval], idx[nval:]
    # Epoch choice: train once on the fit rows, checking the validation median every 25 epochs.
    best = [math.inf, 25]

    def check(epoch, net):
        med = float(np.median(angle_errors_deg(predict(net, ptr[val]), rtr[val], ops)))
        if med < best[0]:
            best[:] = [med, epoch]

    train_head(ptr[fit], rtr[fit], ops, MAX_EPOCHS, seed, check)
    final = train_head(ptr, rtr, ops, best[1], seed)
    return predict(final, pte), tuple(best)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work")
    ap.add_argument("--classes", default="ribosome,proteasome")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--networks", default="", help="recorded in the JSON: which runs were used")
    args = ap.parse_args()
    classes = args.classes.split(",")
    # Output labels of the classes (the UCaps run's class table: label k is class capsule k).
    labels = {}
    with open(os.path.join(args.work, "class_table.toml"), "rb") as f:
        for entry in tomllib.load(f)["class"]:
            labels[entry["name"]] = int(entry["label"])
    seeds = [int(s) for s in args.seeds.split(",")]
    manifest = []
    with open(os.path.join(args.work, "manifest.tsv")) as f:
        for line in f:
            if line.strip():
                manifest.append(line.rstrip("\n").split("\t"))
    models = sorted(os.listdir(os.path.join(args.work, "features")))
    # Each model's features are written for the 3³ cells around the centre (channel-major);
    # the centre cell alone is value 13 of each channel's 27.
    kinds = [f"{m}, centre cell" for m in models] + [f"{m}, 3³ cells" for m in models]
    if "ucaps" in models:
        kinds.insert(0, "ucaps, its class capsule")
    results = {"networks": args.networks, "classes": {}, "kinds": kinds, "seeds": seeds,
               "head": {"pca": PCA_DIMS, "hidden": HIDDEN, "max_epochs": MAX_EPOCHS}}
    rows = []
    for cls in classes:
        ops = symmetry_ops(cls)
        data = {}
        for kind in kinds + ["raw"]:
            parts = {"train": [], "test": []}
            for name, role, mrc in manifest:
                model = kind.split(",")[0] if kind != "raw" else models[0]
                c, pos, rot, feat = read_features(
                    os.path.join(args.work, "features", model, name + ".csv"))
                keep = c == cls
                if kind == "raw":
                    feat = raw_features(mrc, pos[keep]) if keep.any() else feat[:0]
                elif kind == "ucaps, its class capsule":
                    # Class capsule `label` of the centre cell: channels label·64 … label·64 + 63.
                    lab = labels[cls]
                    feat = feat[keep][:, 13::27][:, lab * 64:(lab + 1) * 64]
                elif kind.endswith("centre cell"):
                    feat = feat[keep][:, 13::27]
                else:
                    feat = feat[keep]
                parts[role].append((pos[keep], rot[keep], feat))
            data[kind] = {role: tuple(np.concatenate(v) for v in zip(*parts[role]))
                          for role in parts}
        pos_te, rot_te, _ = data[kinds[0]]["test"]
        ntr = len(data[kinds[0]]["train"][0])
        entry = {"train_particles": ntr, "test_particles": len(pos_te),
                 "symmetry_order": len(ops), "methods": {}}
        rng = np.random.default_rng(0)
        chance = []
        for _ in range(200):
            q = rng.normal(size=(len(rot_te), 4))
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            w, x, y, z = q.T
            rr = np.stack([
                1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], 1)
            chance.append(np.median(angle_errors_deg(rr.reshape(-1, 3, 3), rot_te, ops)))
        entry["methods"]["chance (random rotations)"] = {"median_deg": [float(np.median(chance))]}
        for kind in kinds + ["raw"]:
            _, rtr, xtr = data[kind]["train"]
            _, _, xte = data[kind]["test"]
            meds, epochs = [], []
            for seed in seeds:
                pred, (val_med, ep) = fit_predict(xtr, rtr, xte, ops, seed)
                meds.append(float(np.median(angle_errors_deg(pred, rot_te, ops))))
                epochs.append(ep)
            label = "voxels (binned 4×, control)" if kind == "raw" else kind
            entry["methods"][label] = {"median_deg": meds, "epochs": epochs,
                                       "features": int(xtr.shape[1])}
            print(f"{cls}: {label}: median {meds} (epochs {epochs})", file=sys.stderr)
        tm_path = os.path.join(args.work, "tm", cls + ".csv")
        if os.path.exists(tm_path):
            _, tpos, trot, _ = read_features(tm_path)
            # Match TM rows to the test particles by position (orient keeps positions).
            key = {tuple(np.round(p, 3)): i for i, p in enumerate(tpos)}
            idx = [key.get(tuple(np.round(p, 3))) for p in pos_te]
            ok = [i for i, j in enumerate(idx) if j is not None and np.isfinite(trot[j]).all()]
            err = angle_errors_deg(trot[[idx[i] for i in ok]], rot_te[ok], ops)
            entry["methods"]["template matching (capsid orient)"] = {
                "median_deg": [float(np.median(err))], "oriented": len(ok)}
        results["classes"][cls] = entry
        for label, m in entry["methods"].items():
            med = m["median_deg"]
            rows.append((cls, label, m.get("features", ""), med))
    with open(os.path.join(args.work, "pose_results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| class | orientation from | features | median angular error, per seed (°) |")
    print("|---|---|---|---|")
    for cls, label, nf, med in rows:
        print(f"| {cls} | {label} | {nf} | {' / '.join(f'{m:.1f}' for m in med)} |")


if __name__ == "__main__":
    main()
