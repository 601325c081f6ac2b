//! Densities from pseudo-atoms: Gaussian blobs integrated over voxels, and template boxes.
//!
//! Density unit: **1.0 = a voxel filled with protein** (≈ 0.81 Da/Å³ including hydrogens). A blob's
//! `weight_a3` is the volume of packed protein (Å³) it stands for, so a region filled with blobs of
//! weight `spacing³` on a grid of that spacing renders to ≈ 1.0 inside.

use ndarray::Array3;

/// σ of the Gaussian that stands for a resolution `resolution_a` (Å): `0.225 · resolution`
/// (the `1 / (π √2)` factor of Chimera's `molmap`).
pub fn sigma_for_resolution_a(resolution_a: f64) -> f64 {
    resolution_a / (std::f64::consts::PI * std::f64::consts::SQRT_2)
}

/// A pseudo-atom: an isotropic Gaussian blob of density.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blob {
    /// Centre `[x, y, z]` in Å, relative to the model's centre.
    pub pos_a: [f64; 3],
    /// Intrinsic size σ in Å (0 for a point atom; the rendering resolution is added in quadrature).
    pub sigma_a: f64,
    /// Integrated density: the volume of packed protein it stands for, in Å³.
    pub weight_a3: f64,
}

/// The fraction of a 1D Gaussian `N(centre, sigma²)` lying in each unit cell `[i-0.5, i+0.5)` for
/// `i` in `first..first+len` (voxel units). Exact integral via erf, so mass is conserved however
/// small σ is compared with a voxel.
fn gaussian_cell_weights(centre: f64, sigma: f64, first: i64, len: usize) -> Vec<f64> {
    let s = sigma * std::f64::consts::SQRT_2;
    let cdf = |x: f64| 0.5 * libm::erf((x - centre) / s);
    (0..len)
        .map(|k| {
            let i = (first + k as i64) as f64;
            cdf(i + 0.5) - cdf(i - 0.5)
        })
        .collect()
}

/// Renders `blobs` into a cubic box of `n` voxels per side (`[z, y, x]`), the model centre at voxel
/// `(n-1)/2`, with voxel size `voxel_size_a` and each blob widened by the σ of `resolution_a`.
/// Blob weight (Å³ of protein) is spread over voxels so that values are in protein-fill units.
pub fn render_blobs(blobs: &[Blob], n: usize, voxel_size_a: f64, resolution_a: f64) -> Array3<f32> {
    let mut out = Array3::<f64>::zeros((n, n, n));
    let sig_res = sigma_for_resolution_a(resolution_a);
    let c = (n as f64 - 1.0) / 2.0;
    let voxel_volume = voxel_size_a.powi(3);
    for b in blobs {
        let sigma = (b.sigma_a * b.sigma_a + sig_res * sig_res).sqrt().max(1e-6) / voxel_size_a;
        let centre = b.pos_a.map(|p| p / voxel_size_a + c);
        let reach = (4.0 * sigma).ceil() as i64 + 1;
        let mut ranges = [(0i64, 0usize); 3];
        let mut skip = false;
        for (axis, r) in ranges.iter_mut().enumerate() {
            let lo = ((centre[axis].round() as i64) - reach).max(0);
            let hi = ((centre[axis].round() as i64) + reach).min(n as i64 - 1);
            if hi < lo {
                skip = true;
                break;
            }
            *r = (lo, (hi - lo + 1) as usize);
        }
        if skip {
            continue;
        }
        let w: Vec<Vec<f64>> = (0..3)
            .map(|a| gaussian_cell_weights(centre[a], sigma, ranges[a].0, ranges[a].1))
            .collect();
        let scale = b.weight_a3 / voxel_volume;
        for (kz, wz) in w[2].iter().enumerate() {
            let z = (ranges[2].0 as usize) + kz;
            for (ky, wy) in w[1].iter().enumerate() {
                let y = (ranges[1].0 as usize) + ky;
                let wzy = scale * wz * wy;
                if wzy == 0.0 {
                    continue;
                }
                for (kx, wx) in w[0].iter().enumerate() {
                    out[[z, y, ranges[0].0 as usize + kx]] += wzy * wx;
                }
            }
        }
    }
    out.mapv(|v| v as f32)
}

/// The odd box side (voxels) that holds blobs reaching `extent_a` Å from the centre plus four σ
/// of blur: `2·ceil(reach / voxel) + 3`.
pub fn box_side_for(blobs: &[Blob], voxel_size_a: f64, resolution_a: f64) -> usize {
    let sig_res = sigma_for_resolution_a(resolution_a);
    let reach = blobs
        .iter()
        .map(|b| {
            let r = (b.pos_a[0].powi(2) + b.pos_a[1].powi(2) + b.pos_a[2].powi(2)).sqrt();
            r + 3.0 * (b.sigma_a * b.sigma_a + sig_res * sig_res).sqrt()
        })
        .fold(0.0f64, f64::max);
    2 * (reach / voxel_size_a).ceil() as usize + 3
}

/// Moves blobs so that their weighted centre is the origin.
pub fn centre_blobs(blobs: &mut [Blob]) {
    let total: f64 = blobs.iter().map(|b| b.weight_a3).sum();
    if total <= 0.0 {
        return;
    }
    let mut c = [0.0; 3];
    for b in blobs.iter() {
        for (ci, p) in c.iter_mut().zip(b.pos_a) {
            *ci += p * b.weight_a3 / total;
        }
    }
    for b in blobs.iter_mut() {
        for (p, ci) in b.pos_a.iter_mut().zip(c) {
            *p -= ci;
        }
    }
}

/// Trilinear sample of `data` (`[z, y, x]`) at `(x, y, z)` in voxel units; 0 outside
/// ([`capsid_core::volume::trilinear`]).
#[inline]
pub fn trilinear(data: &Array3<f32>, x: f64, y: f64, z: f64) -> f32 {
    let (nz, ny, nx) = data.dim();
    match data.as_slice() {
        Some(s) => capsid_core::volume::trilinear(s, [nz, ny, nx], x, y, z),
        None => {
            let owned = data.as_standard_layout();
            let s = owned.as_slice().unwrap_or_default();
            capsid_core::volume::trilinear(s, [nz, ny, nx], x, y, z)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_conserves_mass_for_small_and_large_sigma() {
        for (sigma, res) in [(0.0, 5.0), (10.0, 20.0)] {
            let blobs = vec![Blob {
                pos_a: [3.3, -7.1, 12.0],
                sigma_a: sigma,
                weight_a3: 5000.0,
            }];
            let n = box_side_for(&blobs, 10.0, res);
            let d = render_blobs(&blobs, n, 10.0, res);
            let sum: f64 = d.iter().map(|&v| v as f64).sum();
            assert!(
                (sum - 5.0).abs() < 1e-3,
                "sum {sum} (5000 Å³ / 1000 Å³ per voxel)"
            );
        }
    }

    #[test]
    fn filled_grid_renders_to_unit_density() {
        // A 60 Å cube filled with blobs on an 8 Å grid: the centre must read ≈ 1.
        let mut blobs = Vec::new();
        for i in -4..=4 {
            for j in -4..=4 {
                for k in -4..=4 {
                    blobs.push(Blob {
                        pos_a: [8.0 * i as f64, 8.0 * j as f64, 8.0 * k as f64],
                        sigma_a: 4.0,
                        weight_a3: 512.0,
                    });
                }
            }
        }
        let n = box_side_for(&blobs, 5.0, 10.0);
        let d = render_blobs(&blobs, n, 5.0, 10.0);
        let c = n / 2;
        assert!((d[[c, c, c]] - 1.0).abs() < 0.05, "centre {}", d[[c, c, c]]);
        assert!(d[[0, 0, 0]].abs() < 1e-3);
    }

    #[test]
    fn trilinear_interpolates_and_is_zero_outside() {
        let mut a = Array3::<f32>::zeros((2, 2, 2));
        a[[0, 0, 1]] = 2.0;
        assert!((trilinear(&a, 0.5, 0.0, 0.0) - 1.0).abs() < 1e-6);
        assert_eq!(trilinear(&a, 1.0, 0.0, 0.0), 2.0);
        assert_eq!(trilinear(&a, 5.0, 0.0, 0.0), 0.0);
        assert!(
            (trilinear(&a, 1.5, 0.0, 0.0) - 1.0).abs() < 1e-6,
            "fades to 0 beyond the edge"
        );
    }
}
