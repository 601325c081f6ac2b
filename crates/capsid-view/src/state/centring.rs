//! Auto-centring: the density extremum of the low-passed tomogram near a click.

use super::Viewer;

impl Viewer {
    /// The density extremum near a click: the minimum (`dark`) or maximum of the tomogram
    /// low-passed with σ = r/2 (1..8 voxels), searched within `r` voxels (≤ 24) of (x, y, z).
    pub fn auto_centre(&self, x: f64, y: f64, z: f64, r: f64, dark: bool) -> [f64; 3] {
        let v = &self.tomo;
        let rs = r.clamp(1.0, 24.0);
        let sigma = (r / 2.0).clamp(1.0, 8.0);
        let pad = rs + (3.0 * sigma).ceil();
        let c = [x, y, z];
        let n = [v.nx, v.ny, v.nz];
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        for a in 0..3 {
            lo[a] = (c[a] - pad).floor().max(0.0) as usize;
            hi[a] = ((c[a] + pad).ceil() as usize + 1).min(n[a]);
            if lo[a] >= hi[a] {
                return c;
            }
        }
        let (bx, by, bz) = (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
        let mut b = vec![0f32; bx * by * bz];
        for zz in 0..bz {
            for yy in 0..by {
                let o = (zz * by + yy) * bx;
                v.read_row(lo[2] + zz, lo[1] + yy, lo[0], &mut b[o..o + bx]);
            }
        }
        blur3d(&mut b, [bx, by, bz], sigma as f32);
        let sign = if dark { 1.0 } else { -1.0 };
        let mut best = (f32::INFINITY, c);
        for zz in 0..bz {
            for yy in 0..by {
                for xx in 0..bx {
                    let p = [
                        (lo[0] + xx) as f64,
                        (lo[1] + yy) as f64,
                        (lo[2] + zz) as f64,
                    ];
                    let d2 = (p[0] - x).powi(2) + (p[1] - y).powi(2) + (p[2] - z).powi(2);
                    if d2 > rs * rs {
                        continue;
                    }
                    let val = sign * b[(zz * by + yy) * bx + xx];
                    if val.is_finite() && val < best.0 {
                        best = (val, p);
                    }
                }
            }
        }
        best.1
    }
}

/// Separable 3D Gaussian low-pass of a block `[z][y][x]` of `dims` = `[nx, ny, nz]` (edges clamped).
fn blur3d(b: &mut [f32], dims: [usize; 3], sigma: f32) {
    let (k, r) = crate::render::gaussian_kernel(sigma);
    let [nx, ny, nz] = dims;
    let strides = [1, nx, nx * ny];
    let mut tmp = vec![0f32; b.len()];
    for a in 0..3 {
        let n = dims[a] as isize;
        let st = strides[a];
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let i = (z * ny + y) * nx + x;
                    let pos = [x, y, z][a] as isize;
                    let mut acc = 0.0;
                    for (j, kv) in k.iter().enumerate() {
                        let q = (pos + j as isize - r).clamp(0, n - 1);
                        let idx = (i as isize + (q - pos) * st as isize) as usize;
                        acc += kv * b[idx];
                    }
                    tmp[i] = acc;
                }
            }
        }
        b.copy_from_slice(&tmp);
    }
}
