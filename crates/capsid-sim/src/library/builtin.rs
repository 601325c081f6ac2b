//! The built-in classes: target shapes made of pseudo-atoms filling ellipsoids and rings.

use super::ClassModel;
use crate::density::{box_side_for, centre_blobs, render_blobs, Blob};
use crate::error::SimError;
use capsid_core::Rotation;

/// Names of the built-in classes, in library order.
pub const BUILTIN_CLASSES: [&str; 6] = [
    "ribosome",
    "proteasome",
    "tric",
    "rubisco",
    "filament",
    "globule",
];

/// Spacing (Å) of the pseudo-atoms filling the built-in shapes, and their own σ (Å).
const PSEUDO_SPACING_A: f64 = 8.0;
const PSEUDO_SIGMA_A: f64 = 4.0;

/// Pseudo-atoms on a grid of `PSEUDO_SPACING_A` filling an ellipsoid with semi-axes `semi_a`
/// (Å, along its own x, y, z), turned by `rot` and centred at `centre_a`.
fn fill_ellipsoid(centre_a: [f64; 3], semi_a: [f64; 3], rot: &Rotation, out: &mut Vec<Blob>) {
    let s = PSEUDO_SPACING_A;
    let reach = semi_a.map(|a| (a / s).floor() as i64);
    for i in -reach[0]..=reach[0] {
        for j in -reach[1]..=reach[1] {
            for k in -reach[2]..=reach[2] {
                let p = [i as f64 * s, j as f64 * s, k as f64 * s];
                let r = (p[0] / semi_a[0]).powi(2)
                    + (p[1] / semi_a[1]).powi(2)
                    + (p[2] / semi_a[2]).powi(2);
                if r <= 1.0 {
                    let q = rot.apply(p);
                    out.push(Blob {
                        pos_a: [q[0] + centre_a[0], q[1] + centre_a[1], q[2] + centre_a[2]],
                        sigma_a: PSEUDO_SIGMA_A,
                        weight_a3: s * s * s,
                    });
                }
            }
        }
    }
}

/// Subunits of a ring: `n` ellipsoids with semi-axes `[radial, tangential, z]` at `radius_a` from
/// the z axis, at height `z_a`, the first at angle `phase_deg`.
fn ring(n: usize, radius_a: f64, z_a: f64, semi_a: [f64; 3], phase_deg: f64, out: &mut Vec<Blob>) {
    for k in 0..n {
        let a = (phase_deg + 360.0 * k as f64 / n as f64).to_radians();
        let rot = Rotation::rz(a);
        fill_ellipsoid(
            [radius_a * a.cos(), radius_a * a.sin(), z_a],
            semi_a,
            &rot,
            out,
        );
    }
}

/// The pseudo-atoms of a built-in class (centred on their weighted centre), or `None` for an
/// unknown name.
pub fn builtin_blobs(name: &str) -> Option<Vec<Blob>> {
    let mut b = Vec::new();
    let id = Rotation::identity();
    match name {
        "ribosome" => {
            // Large subunit, small subunit on one side, L1 stalk and P stalk on others.
            // Large subunit: a squat body with a central protuberance off-axis.
            fill_ellipsoid([0.0, 0.0, -25.0], [100.0, 88.0, 72.0], &id, &mut b);
            fill_ellipsoid([-15.0, -40.0, 35.0], [36.0, 30.0, 34.0], &id, &mut b);
            // Small subunit, elongated and tilted, offset from the large one's axis.
            fill_ellipsoid(
                [30.0, 25.0, 75.0],
                [95.0, 55.0, 38.0],
                &Rotation::rz(0.5).mul(&Rotation::rx(0.25)),
                &mut b,
            );
            // L1 stalk and P stalk on opposite, unequal sides.
            fill_ellipsoid(
                [-110.0, 40.0, 5.0],
                [38.0, 20.0, 20.0],
                &Rotation::ry(0.5),
                &mut b,
            );
            fill_ellipsoid(
                [80.0, -75.0, -10.0],
                [30.0, 15.0, 15.0],
                &Rotation::rz(-0.7),
                &mut b,
            );
        }
        "proteasome" => {
            for (i, z) in [-57.0, -19.0, 19.0, 57.0].into_iter().enumerate() {
                ring(
                    7,
                    36.0,
                    z,
                    [18.0, 15.0, 17.0],
                    25.7 * (i % 2) as f64,
                    &mut b,
                );
            }
        }
        "tric" => {
            for z in [-36.0, 36.0] {
                ring(8, 52.0, z, [20.0, 17.0, 33.0], 11.25, &mut b);
            }
        }
        "rubisco" => {
            for sx in [-1.0, 1.0] {
                for sy in [-1.0, 1.0] {
                    for sz in [-1.0, 1.0] {
                        fill_ellipsoid(
                            [22.0 * sx, 22.0 * sy, 19.0 * sz],
                            [20.0, 20.0, 18.0],
                            &id,
                            &mut b,
                        );
                    }
                    for z in [-44.0, 44.0] {
                        fill_ellipsoid([17.0 * sx, 17.0 * sy, z], [13.0, 13.0, 9.0], &id, &mut b);
                    }
                }
            }
        }
        "filament" => {
            // Two-start helix: rise 27.5 Å, twist 166.7° per subunit (actin-like).
            for k in 0..9 {
                let a = (166.7 * k as f64).to_radians();
                let z = 27.5 * (k as f64 - 4.0);
                fill_ellipsoid(
                    [18.0 * a.cos(), 18.0 * a.sin(), z],
                    [26.0, 20.0, 19.0],
                    &Rotation::rz(a),
                    &mut b,
                );
            }
        }
        "globule" => {
            fill_ellipsoid(
                [0.0, 0.0, 0.0],
                [22.0, 17.0, 14.0],
                &Rotation::ry(0.3),
                &mut b,
            );
            fill_ellipsoid([14.0, 10.0, 6.0], [11.0, 10.0, 9.0], &id, &mut b);
        }
        _ => return None,
    }
    centre_blobs(&mut b);
    Some(b)
}

/// A built-in class rendered at `voxel_size_a` and `resolution_a`.
pub fn builtin_class(
    class_name: &str,
    builtin: &str,
    voxel_size_a: f64,
    resolution_a: f64,
    mask_fraction: f64,
) -> Result<ClassModel, SimError> {
    let blobs = builtin_blobs(builtin).ok_or_else(|| {
        SimError::Config(format!(
            "unknown built-in class '{builtin}' (known: {})",
            BUILTIN_CLASSES.join(", ")
        ))
    })?;
    let n = box_side_for(&blobs, voxel_size_a, resolution_a);
    let density = render_blobs(&blobs, n, voxel_size_a, resolution_a);
    Ok(ClassModel::new(
        class_name,
        format!("builtin:{builtin}"),
        density,
        voxel_size_a,
        mask_fraction,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent_nm(m: &ClassModel) -> f64 {
        2.0 * m.radius_a() / 10.0
    }

    #[test]
    fn builtin_sizes_span_tiny_to_large() {
        let mut sizes = Vec::new();
        for name in BUILTIN_CLASSES {
            let m = builtin_class(name, name, 10.0, 20.0, 0.3).unwrap();
            assert!(m.mask_voxels() > 10, "{name}");
            sizes.push((name, extent_nm(&m)));
        }
        let get = |n: &str| sizes.iter().find(|s| s.0 == n).unwrap().1;
        assert!((3.5..8.0).contains(&get("globule")), "{sizes:?}");
        assert!((21.0..31.0).contains(&get("ribosome")), "{sizes:?}");
        assert!((9.0..14.0).contains(&get("rubisco")), "{sizes:?}");
        assert!(
            get("globule") < get("rubisco") && get("rubisco") < get("proteasome"),
            "{sizes:?}"
        );
    }

    #[test]
    fn ribosome_is_asymmetric() {
        // Turning it 180° about any axis must change the density a lot (correlation over the
        // voxels inside either mask, so the empty box does not count).
        let m = builtin_class("ribosome", "ribosome", 10.0, 20.0, 0.3).unwrap();
        let t = m.mask_threshold;
        for rot in [
            Rotation::rx(std::f64::consts::PI),
            Rotation::ry(std::f64::consts::PI),
            Rotation::rz(std::f64::consts::PI),
        ] {
            let r = m.rotated(&rot);
            let (a, b): (Vec<f32>, Vec<f32>) = m
                .density
                .iter()
                .zip(r.iter())
                .filter(|(a, b)| **a >= t || **b >= t)
                .map(|(a, b)| (*a, *b))
                .unzip();
            let c = crate::metrics::pearson(a, b);
            assert!(c < 0.6, "correlation {c} after 180°");
        }
    }

    #[test]
    fn unknown_builtin_is_a_clear_error() {
        let e = builtin_class("x", "nope", 10.0, 20.0, 0.3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown built-in class 'nope'") && e.contains("ribosome"),
            "{e}"
        );
    }
}
