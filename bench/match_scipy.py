#!/usr/bin/env python3
"""The Python side of the template-matching speed comparison (issue 18, item 5).

Does, with numpy and scipy.fft in float32, the correlation `capsid match` does (see
crates/capsid-match/src/search.rs `one_rotation` and template.rs `Template::prepare`), so that
the two can be timed side by side on the same CPU with the same number of threads:

* before the timing, once: the tomogram tile's spectra, and per position the local standard
  deviation of the tomogram under the template's spherical mask (radius b/2 - 1 about voxel b//2,
  capsid's default), from FFT correlations of the tile and its square with the mask; kept as the
  map 1 / (N sigma_local), N = number of mask voxels (0 where the tile is flat under the mask);
* per rotation: turn the template (active rotation about voxel b//2: output voxel p takes the
  input at R^T (p - c) + c, trilinear, zero outside -- scipy.ndimage.affine_transform order=1),
  normalise it under the mask (zero mean, unit variance under the mask, zero outside), zero-pad
  it to the tile, rfftn, multiply the tile's spectrum by its conjugate (a cross-correlation:
  IFFT(F_tomo . conj(F_template))), irfftn, multiply by the 1 / (N sigma_local) map over the
  valid positions (template box inside the tile), update the running maximum and its rotation
  index, and sum the scores and their squares (capsid's noise statistics).

Only the rotation loop is timed, after one warm-up rotation. scipy's FFTs are full transforms,
threaded inside each transform (`workers`); capsid prunes its FFTs and runs rotations in parallel.
Prints one JSON object to stdout:
{"tile", "template", "rotations", "threads", "seconds", "rotations_per_s", "scipy", "numpy",
 "cpu", "max_score"}.

    python bench/match_scipy.py --tile 128 --template 32 --rotations 50 --threads 2
    python bench/match_scipy.py --check   # plants a turned template; checks it is found
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tile", type=int, default=128, help="side N of the random N^3 tile")
    p.add_argument("--template", type=int, default=32, help="side B of the template cube")
    p.add_argument("--rotations", type=int, default=50, help="rotations K timed")
    p.add_argument("--threads", type=int, default=2, help="scipy.fft workers and BLAS/OpenMP threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--check",
        action="store_true",
        help="plant the template turned by one of the rotations in the tile and check that the "
        "search finds it there, with that rotation and a score near 1",
    )
    a = p.parse_args()
    if a.tile < 2 * a.template or a.template < 4 or a.rotations < 1 or a.threads < 1:
        p.error("need --template >= 4, --tile >= 2 * --template, --rotations >= 1, --threads >= 1")
    return a


ARGS = parse_args()
# Before numpy loads: no library thread pool bigger than asked for.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.fft as sfft  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

try:
    from threadpoolctl import threadpool_limits  # noqa: E402
except ImportError:  # optional: the environment variables above do the same
    threadpool_limits = None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def random_blob_template(b, rng):
    """A few Gaussian blobs of random sizes at random places within the mask: asymmetric."""
    c = b // 2
    z, y, x = np.mgrid[0:b, 0:b, 0:b].astype(np.float32) - c
    t = np.zeros((b, b, b), np.float32)
    r_max = b / 2 - 1
    for _ in range(8):
        sigma = rng.uniform(0.06, 0.15) * b
        while True:
            q = rng.uniform(-r_max, r_max, 3)
            if np.linalg.norm(q) < r_max - 2 * sigma:
                break
        t += rng.uniform(0.5, 1.5) * np.exp(
            -((x - q[0]) ** 2 + (y - q[1]) ** 2 + (z - q[2]) ** 2) / (2 * sigma**2)
        ).astype(np.float32)
    return t


def sphere_mask(b):
    c = b // 2
    z, y, x = np.mgrid[0:b, 0:b, 0:b] - c
    r = b // 2 - 1
    return ((x * x + y * y + z * z) <= r * r).astype(np.float32)


def turn(t, rot):
    """`t` ([z, y, x]) in orientation `rot` (active on (x, y, z)) about voxel b//2: voxel p takes
    the input at R^T (p - c) + c. affine_transform maps output to input coordinates in (z, y, x)
    order, hence R^T with both axes reversed."""
    m = rot.as_matrix().T[::-1, ::-1]
    c = np.full(3, t.shape[0] // 2, dtype=np.float64)
    return ndimage.affine_transform(
        t, m, offset=c - m @ c, order=1, mode="grid-constant", cval=0.0, output=np.float32
    )


class Search:
    def __init__(self, tomo, template, mask, workers):
        self.n = tomo.shape[0]
        self.b = template.shape[0]
        self.workers = workers
        self.template = template
        self.mask = mask
        self.valid = self.n - self.b + 1
        n, v = self.n, self.valid
        self.shape = (n, n, n)
        self.f_tomo = sfft.rfftn(tomo.astype(np.float32), workers=workers)
        assert self.f_tomo.dtype == np.complex64
        self.n_mask = float(mask.sum(dtype=np.float64))
        # 1 / (N sigma_local) over the valid positions, once (capsid: radial mask).
        f_mask = sfft.rfftn(self.padded(mask), workers=workers)
        f_tomo2 = sfft.rfftn((tomo * tomo).astype(np.float32), workers=workers)
        s1 = sfft.irfftn(self.f_tomo * f_mask.conj(), s=self.shape, workers=workers)[:v, :v, :v]
        s2 = sfft.irfftn(f_tomo2 * f_mask.conj(), s=self.shape, workers=workers)[:v, :v, :v]
        mean = s1.astype(np.float64) / self.n_mask
        var = s2.astype(np.float64) / self.n_mask - mean * mean
        floor = 1e-6 * max(float(tomo.astype(np.float64).var()), 1e-30)
        inv = np.zeros_like(var)
        ok = var > floor
        inv[ok] = 1.0 / (self.n_mask * np.sqrt(var[ok]))
        self.inv_den = inv.astype(np.float32)
        self.pad = np.zeros(self.shape, np.float32)
        self.reset()

    def reset(self):
        v = self.valid
        self.best = np.full((v, v, v), -np.inf, np.float32)
        self.arg = np.zeros((v, v, v), np.uint32)
        self.better = np.zeros((v, v, v), bool)
        self.sums = []

    def padded(self, box):
        out = np.zeros(self.shape, np.float32)
        b = box.shape[0]
        out[:b, :b, :b] = box
        return out

    def prepare(self, rot):
        """Template::prepare with a radial mask and no filter."""
        t = turn(self.template, rot)
        m = self.mask
        sm = self.n_mask
        mean = float((m * t).sum(dtype=np.float64)) / sm
        var = float((m * t * t).sum(dtype=np.float64)) / sm - mean * mean
        if not var > 0:
            raise SystemExit("the template is flat under its mask")
        return (m * (t - np.float32(mean)) * np.float32(1.0 / np.sqrt(var))).astype(np.float32)

    def one_rotation(self, rot, index):
        b, v, w = self.b, self.valid, self.workers
        self.pad[:b, :b, :b] = self.prepare(rot)  # the rest of pad stays 0
        spec = sfft.rfftn(self.pad, workers=w)
        np.conjugate(spec, out=spec)
        spec *= self.f_tomo
        cc = sfft.irfftn(spec, s=self.shape, workers=w)[:v, :v, :v]
        cc *= self.inv_den
        np.greater(cc, self.best, out=self.better)
        np.copyto(self.best, cc, where=self.better)
        np.copyto(self.arg, np.uint32(index), where=self.better)
        self.sums.append((float(cc.sum(dtype=np.float64)), float(np.vdot(cc, cc))))


def main():
    a = ARGS
    rng = np.random.default_rng(a.seed)
    n, b, k = a.tile, a.template, a.rotations
    tomo = rng.standard_normal((n, n, n), dtype=np.float32)
    template = random_blob_template(b, rng)
    mask = sphere_mask(b)
    rotations = Rotation.random(k, random_state=a.seed + 1)
    planted = None
    if a.check:
        j = k // 2
        corner = rng.integers(0, n - b + 1, 3)
        z, y, x = corner
        tomo[z : z + b, y : y + b, x : x + b] += 5.0 * turn(template, rotations[j]) * mask
        planted = (tuple(int(v) for v in corner), j)

    limits = threadpool_limits(a.threads) if threadpool_limits else None
    try:
        s = Search(tomo, template, mask, a.threads)
        s.one_rotation(rotations[0], 0)  # warm-up (plans, caches), not timed
        s.reset()
        t0 = time.perf_counter()
        for i in range(k):
            s.one_rotation(rotations[i], i)
        seconds = time.perf_counter() - t0
    finally:
        if limits is not None:
            limits.unregister()

    result = {
        "tile": n,
        "template": b,
        "rotations": k,
        "threads": a.threads,
        "seconds": round(seconds, 4),
        "rotations_per_s": round(k / seconds, 3),
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "cpu": cpu_model(),
        "max_score": round(float(s.best.max()), 4),
    }
    print(json.dumps(result))
    if planted is not None:
        where = np.unravel_index(int(np.argmax(s.best)), s.best.shape)
        corner, j = planted
        found = (tuple(int(v) for v in where), int(s.arg[where]))
        score = float(s.best[where])
        print(f"check: planted at corner {corner} rotation {j}; found {found} score {score:.3f}",
              file=sys.stderr)
        if found != (corner, j) or not 0.8 < score <= 1.0001:
            raise SystemExit("check failed")


if __name__ == "__main__":
    main()
