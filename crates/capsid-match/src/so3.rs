//! Rotations to search: a uniform sampling of SO(3) at a given angular step, cut to the
//! asymmetric unit of a point group, and local samplings around a rotation for refinement.
//!
//! Every rotation is an active [`Rotation`] taking template coordinates (relative to the template
//! centre, `[x, y, z]`) into the tomogram: a particle matched with `R` is the template turned by
//! `R`, as the simulator places particles and as [`capsid_core::rotation`] documents.

use capsid_core::{Rotation, Symmetry};

/// The golden angle in radians, the azimuth increment of a spherical Fibonacci lattice.
const GOLDEN_ANGLE: f64 = 2.399_963_229_728_653;

/// Directions on the unit sphere about `step_deg` apart: a spherical Fibonacci lattice of
/// `round(4π / step²)` points (each point's share of the sphere is a step × step patch), as
/// `(azimuth, polar)` angles in radians.
pub fn sphere_directions(step_deg: f64) -> Vec<(f64, f64)> {
    let step = step_deg.to_radians();
    let n = ((4.0 * std::f64::consts::PI / (step * step)).round() as usize).max(1);
    (0..n)
        .map(|i| {
            let z = 1.0 - (2.0 * i as f64 + 1.0) / n as f64;
            let polar = z.clamp(-1.0, 1.0).acos();
            let azimuth = (i as f64 * GOLDEN_ANGLE).rem_euclid(std::f64::consts::TAU);
            (azimuth, polar)
        })
        .collect()
}

/// A uniform sampling of SO(3) at `step_deg` degrees: every direction of [`sphere_directions`]
/// for the template's z axis combined with in-plane turns about it every `360 / round(360 /
/// step)` degrees, `R = Rz(azimuth) · Ry(polar) · Rz(in-plane)`. About `8π² / step³` rotations
/// (step in radians): 4,400 at 15°, 36,000 at 7.5°.
pub fn uniform_rotations(step_deg: f64) -> Vec<Rotation> {
    let n_psi = ((360.0 / step_deg).round() as usize).max(1);
    let dirs = sphere_directions(step_deg);
    let mut out = Vec::with_capacity(dirs.len() * n_psi);
    for &(azimuth, polar) in &dirs {
        let a = Rotation::rz(azimuth).mul(&Rotation::ry(polar));
        for k in 0..n_psi {
            let psi = std::f64::consts::TAU * k as f64 / n_psi as f64;
            out.push(a.mul(&Rotation::rz(psi)));
        }
    }
    out
}

/// The rotations of `rotations` that lie in the asymmetric unit of `symmetry`: those at least as
/// close to the identity as any equivalent `R·S` (the Dirichlet domain of the identity; ties
/// within 1e-9 are kept). A uniform sampling keeps its density and shrinks about `|G|`-fold.
pub fn asymmetric_unit(rotations: Vec<Rotation>, symmetry: Symmetry) -> Vec<Rotation> {
    let ops = symmetry.operators();
    if ops.len() <= 1 {
        return rotations;
    }
    let trace = |r: &Rotation| r.m[0][0] + r.m[1][1] + r.m[2][2];
    rotations
        .into_iter()
        .filter(|r| {
            let t = trace(r);
            ops.iter().skip(1).all(|s| trace(&r.mul(s)) <= t + 1e-9)
        })
        .collect()
}

/// The search of `capsid match`: [`uniform_rotations`] at `step_deg` cut to `symmetry`'s
/// asymmetric unit.
pub fn search_rotations(step_deg: f64, symmetry: Symmetry) -> Vec<Rotation> {
    asymmetric_unit(uniform_rotations(step_deg), symmetry)
}

/// The rotation `exp([v]×)` of the rotation vector `v` (axis × angle, radians).
pub fn from_rotation_vector(v: [f64; 3]) -> Rotation {
    let angle = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if angle < 1e-15 {
        return Rotation::identity();
    }
    let h = angle / 2.0;
    let s = h.sin() / angle;
    Rotation::from_quaternion(h.cos(), v[0] * s, v[1] * s, v[2] * s)
}

/// Rotations near `centre`: `centre · exp([v]×)` for rotation vectors `v` on a cubic grid of
/// spacing `step_deg` within a ball of radius `radius_deg` (the identity included), for a local
/// coarse-to-fine search. About `4.2 (radius / step)³` rotations.
pub fn local_rotations(centre: &Rotation, radius_deg: f64, step_deg: f64) -> Vec<Rotation> {
    let k = (radius_deg / step_deg).floor() as i64;
    let step = step_deg.to_radians();
    let r2 = (radius_deg.to_radians() + 1e-12).powi(2);
    let mut out = Vec::new();
    for i in -k..=k {
        for j in -k..=k {
            for l in -k..=k {
                let v = [i as f64 * step, j as f64 * step, l as f64 * step];
                if v[0] * v[0] + v[1] * v[1] + v[2] * v[2] <= r2 {
                    out.push(centre.mul(&from_rotation_vector(v)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::symmetry::symmetric_angle_deg;
    use rand::SeedableRng;

    /// The largest angle from a random rotation to its nearest sample, over `n` draws.
    fn covering_radius(samples: &[Rotation], ops: &[Rotation], n: usize) -> f64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        (0..n)
            .map(|_| {
                let r = Rotation::random_uniform(&mut rng);
                samples
                    .iter()
                    .map(|s| symmetric_angle_deg(s, &r, ops))
                    .fold(f64::INFINITY, f64::min)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn sampling_count_follows_the_volume_of_so3() {
        for step in [30.0f64, 15.0] {
            let n = uniform_rotations(step).len() as f64;
            let expected = 8.0 * std::f64::consts::PI.powi(2) / step.to_radians().powi(3);
            assert!(
                (n / expected - 1.0).abs() < 0.05,
                "{step}: {n} vs {expected}"
            );
        }
    }

    #[test]
    fn every_rotation_is_near_a_sample() {
        // Worst case over random rotations stays within the step (the mean spacing is the step;
        // the covering radius of a good sampling is below it).
        let samples = uniform_rotations(20.0);
        let worst = covering_radius(&samples, &[], 300);
        assert!(worst < 20.0, "covering radius {worst:.1}°");
    }

    #[test]
    fn symmetry_shrinks_the_search_and_still_covers_so3() {
        let full = uniform_rotations(20.0).len();
        for sym in [
            Symmetry::Cyclic(4),
            Symmetry::Dihedral(3),
            Symmetry::Octahedral,
        ] {
            let unit = search_rotations(20.0, sym);
            let ratio = full as f64 / unit.len() as f64;
            let g = sym.order() as f64;
            assert!(
                (ratio / g - 1.0).abs() < 0.2,
                "{sym}: {full} / {}",
                unit.len()
            );
            let ops = sym.operators();
            let worst = covering_radius(&unit, &ops, 200);
            assert!(worst < 20.0, "{sym}: covering radius {worst:.1}°");
        }
    }

    #[test]
    fn local_rotations_surround_the_centre() {
        let c = Rotation::rz(0.3).mul(&Rotation::rx(1.1));
        let local = local_rotations(&c, 10.0, 5.0);
        assert_eq!(local.len(), 33); // the 33 points of Z³ within radius 2
        for r in &local {
            assert!(c.angle_to_deg(r) <= 10.0 + 1e-9);
        }
        assert!(local.iter().any(|r| c.angle_to_deg(r) < 1e-9));
    }
}
