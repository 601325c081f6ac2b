//! Decoys: look-alikes of a class with its mass, radius and radial profile but another shape.

use crate::density::Blob;
use capsid_core::Rotation;

/// A look-alike of `blobs`: every spherical shell of thickness `shell_a` (Å) about the centre
/// (`floor(|p| / shell_a)`) is turned about the centre by its own uniformly random rotation drawn
/// from `seed`. Each blob keeps its distance from the centre and its weight, so the total mass,
/// the bounding radius and the radial density profile are the original's, while the shape (how
/// the mass is arranged over directions) is not. Deterministic in `seed`.
pub fn scrambled_blobs(blobs: &[Blob], shell_a: f64, seed: u64) -> Vec<Blob> {
    use rand::SeedableRng;
    let shell_a = shell_a.max(1e-6);
    let radius = |p: [f64; 3]| (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
    let max_r = blobs.iter().map(|b| radius(b.pos_a)).fold(0.0, f64::max);
    let shells = (max_r / shell_a).floor() as usize + 1;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let turns: Vec<Rotation> = (0..shells)
        .map(|_| Rotation::random_uniform(&mut rng))
        .collect();
    blobs
        .iter()
        .map(|b| {
            let k = ((radius(b.pos_a) / shell_a).floor() as usize).min(shells - 1);
            Blob {
                pos_a: turns[k].apply(b.pos_a),
                ..*b
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{blob_class, builtin_blobs, ClassModel};
    use ndarray::Array3;

    /// Mean density in shells of one voxel about the template centre.
    fn radial_profile(d: &Array3<f32>) -> Vec<f64> {
        let c = ((d.dim().0 - 1) / 2) as f64;
        let mut sum = vec![0.0f64; d.dim().0];
        let mut n = vec![0usize; d.dim().0];
        for ((z, y, x), &v) in d.indexed_iter() {
            let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2))
                .sqrt()
                .round() as usize;
            if r < sum.len() {
                sum[r] += v as f64;
                n[r] += 1;
            }
        }
        sum.iter()
            .zip(&n)
            .filter(|(_, &k)| k > 0)
            .map(|(s, &k)| s / k as f64)
            .collect()
    }

    /// Principal second moments (voxel², ascending) of the density above the mask threshold
    /// about the template centre: a rotation-invariant description of the shape's extent along
    /// its three principal axes.
    fn principal_moments(m: &ClassModel) -> [f64; 3] {
        let c = m.half() as f64;
        let mut cov = [[0.0f64; 3]; 3];
        let mut total = 0.0;
        for ((z, y, x), &v) in m.density.indexed_iter() {
            if v < m.mask_threshold {
                continue;
            }
            let d = [x as f64 - c, y as f64 - c, z as f64 - c];
            for i in 0..3 {
                for j in 0..3 {
                    cov[i][j] += v as f64 * d[i] * d[j];
                }
            }
            total += v as f64;
        }
        let cov = cov.map(|r| r.map(|v| v / total));
        // Eigenvalues of the symmetric 3×3 matrix (trigonometric closed form).
        let p1 = cov[0][1].powi(2) + cov[0][2].powi(2) + cov[1][2].powi(2);
        let q = (cov[0][0] + cov[1][1] + cov[2][2]) / 3.0;
        let p2 =
            (cov[0][0] - q).powi(2) + (cov[1][1] - q).powi(2) + (cov[2][2] - q).powi(2) + 2.0 * p1;
        let p = (p2 / 6.0).sqrt();
        if p < 1e-12 {
            return [q; 3];
        }
        let bm: Vec<Vec<f64>> = (0..3)
            .map(|i| {
                (0..3)
                    .map(|j| (cov[i][j] - if i == j { q } else { 0.0 }) / p)
                    .collect()
            })
            .collect();
        let det = bm[0][0] * (bm[1][1] * bm[2][2] - bm[1][2] * bm[2][1])
            - bm[0][1] * (bm[1][0] * bm[2][2] - bm[1][2] * bm[2][0])
            + bm[0][2] * (bm[1][0] * bm[2][1] - bm[1][1] * bm[2][0]);
        let phi = (det / 2.0).clamp(-1.0, 1.0).acos() / 3.0;
        let e1 = q + 2.0 * p * phi.cos();
        let e3 = q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos();
        let e2 = 3.0 * q - e1 - e3;
        let mut e = [e1, e2, e3];
        e.sort_by(f64::total_cmp);
        e
    }

    #[test]
    fn scrambled_decoys_keep_mass_radius_and_profile_but_not_shape() {
        for name in ["ribosome", "proteasome", "globule"] {
            let blobs = builtin_blobs(name).unwrap();
            let target = blob_class(name, "t".into(), &blobs, 10.0, 20.0, 0.3);
            let decoy = blob_class(
                "d",
                "d".into(),
                &scrambled_blobs(&blobs, 8.0, 11),
                10.0,
                20.0,
                0.3,
            );
            let mass = |m: &ClassModel| m.density.iter().map(|&v| v as f64).sum::<f64>();
            let dm = (mass(&decoy) - mass(&target)).abs() / mass(&target);
            let dr = (decoy.radius_a() - target.radius_a()).abs() / target.radius_a();
            let (pt, pd) = (
                radial_profile(&target.density),
                radial_profile(&decoy.density),
            );
            let k = pt.len().min(pd.len());
            let profile = crate::metrics::pearson(
                pt[..k].iter().map(|&v| v as f32),
                pd[..k].iter().map(|&v| v as f32),
            );
            let (mt, md) = (principal_moments(&target), principal_moments(&decoy));
            // Anisotropy: largest over smallest principal moment.
            let (at, ad) = (mt[2] / mt[0], md[2] / md[0]);
            eprintln!(
                "{name}: mass {dm:.4} radius {dr:.4} ({:.1} vs {:.1} Å) profile r {profile:.3} \
                 moments {mt:.2?} vs {md:.2?} anisotropy {at:.2} vs {ad:.2}",
                target.radius_a(),
                decoy.radius_a()
            );
            assert!(dm < 0.01, "{name}: mass differs by {dm}");
            assert!(dr <= 0.10, "{name}: radius differs by {dr}");
            assert!(profile > 0.95, "{name}: radial profile r = {profile}");
            assert!(
                (at - ad).abs() / at > 0.15,
                "{name}: the decoy's shape is as anisotropic as the target's ({at} vs {ad})"
            );
        }
    }
}
