"""Reference rotations for capsid-match's rotation_interop test, made with scipy only.

    python rotation_interop.py DENSITY.mrc OUTDIR CONV:A,B,C [CONV:A,B,C ...]

CONV is `relion` (RELION's rlnAngleRot, rlnAngleTilt, rlnAnglePsi) or `zxz` (SHREC's and capsid's
simulator's truth angles rotation_Z1, rotation_X, rotation_Z2), angles in degrees. For case i the
script writes OUTDIR/case_<i>.mrc (the density turned by that orientation, float32) and one line
of OUTDIR/matrices.txt (the active rotation's 3 x 3 matrix acting on (x, y, z) column vectors,
row by row, 9 numbers).

Nothing here comes from capsid: the conventions are spelt with scipy.spatial.transform.Rotation
(upper-case axes = intrinsic rotations, lower-case = extrinsic), the resampling is
scipy.ndimage.affine_transform. "Turned by R" means: the particle in orientation R, R active
(template -> tomogram), about the cube's centre voxel b // 2 on every axis; a feature at template
position p (x, y, z, relative to the centre) appears at R p.
"""

import sys
from pathlib import Path

import mrcfile
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation


def active_rotation(convention, angles):
    if convention == "relion":
        # RELION's Euler_angles2matrix(rot, tilt, psi) is the matrix A = Rz(psi)' Ry(tilt)' Rz(rot)'
        # (each factor a *passive*/coordinate rotation), which maps the reference's coordinates
        # into the particle's; as an active rotation of the reference onto the particle it is
        # (Rz(rot) Ry(tilt) Rz(psi))^T. In scipy: intrinsic ZYZ is Rz(rot) Ry(tilt) Rz(psi), and
        # its inverse is the active rotation -- the reading copick, teamtomo and RELION's own
        # Python tools use.
        return Rotation.from_euler("ZYZ", angles, degrees=True).inv()
    if convention == "zxz":
        # SHREC's particle_locations.txt (rotation_Z1, rotation_X, rotation_Z2) and capsid's
        # simulator give [phi, theta, psi]: turn about z by phi, then about the *new* (body) x
        # axis by theta, then about the new z by psi -- a chain of intrinsic rotations, which
        # scipy spells with upper-case axes. Intrinsic "ZXZ" [phi, theta, psi] is the product
        # Rz(phi) Rx(theta) Rz(psi) (equivalently extrinsic "zxz" with the angles reversed),
        # taken as the active rotation that places the particle -- the reading of SHREC's angles
        # that capsid documents (capsid-core's rotation.rs) and its simulator writes as truth.
        # The common slip, extrinsic "zxz" [phi, theta, psi] = Rz(psi) Rx(theta) Rz(phi), is a
        # different rotation, which the Rust side checks to be clearly wrong.
        return Rotation.from_euler("ZXZ", angles, degrees=True)
    raise SystemExit(f"unknown convention {convention!r}")


def turn(data, rot):
    """The cube `data` ([z, y, x]) with the particle in orientation `rot` (active, on (x, y, z)).

    Output voxel p takes the input value at R^T (p - c) + c. affine_transform maps OUTPUT
    coordinates to INPUT coordinates (input[M o + offset]) and indexes arrays in (z, y, x) order,
    so M is R^T with both axes reversed ((x, y, z) -> (z, y, x) on each side) and
    offset = c - M c. order=1 is trilinear; "grid-constant" interpolates towards 0 beyond the
    faces (zero padding), as capsid does.
    """
    r_t = rot.as_matrix().T
    m = r_t[::-1, ::-1]
    c = np.full(3, data.shape[0] // 2, dtype=np.float64)
    offset = c - m @ c
    return ndimage.affine_transform(
        data.astype(np.float64),
        m,
        offset=offset,
        order=1,
        mode="grid-constant",
        cval=0.0,
        output=np.float64,
    )


def self_check():
    """The resampling above is an active rotation of (x, y, z): a lone voxel at template
    position p must land at round(R p), for a generic R, and Rz(+90 deg) must take +x to +y."""
    b = 21
    c = b // 2
    p = np.array([5.0, -2.0, 3.0])  # x, y, z
    cube = np.zeros((b, b, b))
    cube[int(c + p[2]), int(c + p[1]), int(c + p[0])] = 1.0
    for rot in [
        Rotation.from_euler("z", 90, degrees=True),
        Rotation.from_euler("ZYZ", [37, 61, -112], degrees=True),
    ]:
        out = turn(cube, rot)
        z, y, x = np.unravel_index(np.argmax(out), out.shape)
        expect = np.rint(rot.as_matrix() @ p + c).astype(int)
        assert (x, y, z) == tuple(expect), ((x, y, z), expect)
    quarter = turn(cube, Rotation.from_euler("z", 90, degrees=True))
    z, y, x = np.unravel_index(np.argmax(quarter), quarter.shape)
    # (5, -2, 3) -> (2, 5, 3) under a counter-clockwise quarter turn about z.
    assert (x - c, y - c, z - c) == (2, 5, 3), (x - c, y - c, z - c)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    self_check()
    density_path, outdir = Path(sys.argv[1]), Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    with mrcfile.open(density_path, permissive=False) as f:
        data = np.asarray(f.data, dtype=np.float32)  # [z, y, x], x fastest
    nz, ny, nx = data.shape
    assert nz == ny == nx, data.shape
    lines = []
    for i, spec in enumerate(sys.argv[3:]):
        convention, angles = spec.split(":")
        angles = [float(a) for a in angles.split(",")]
        rot = active_rotation(convention, angles)
        out = turn(data, rot).astype(np.float32)
        with mrcfile.new(outdir / f"case_{i}.mrc", overwrite=True) as f:
            f.set_data(out)
            f.voxel_size = 1.0
        lines.append(" ".join(repr(float(v)) for v in rot.as_matrix().ravel()))
        print(f"case {i}: {convention} {angles}")
    (outdir / "matrices.txt").write_text("\n".join(lines) + "\n")
    import scipy

    print(f"scipy {scipy.__version__}, numpy {np.__version__}, mrcfile {mrcfile.__version__}")


if __name__ == "__main__":
    main()
