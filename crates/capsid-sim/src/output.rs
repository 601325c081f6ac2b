//! Writing a simulated tomogram in the SHREC'19 layout (plus capsid's extras).
//!
//! Per tomogram folder: `reconstruction.mrc` (float32), `grandmodel.mrc` (noise-free density,
//! float32), `class_mask.mrc` (label per voxel, mode 0 with IMOD's unsigned flag),
//! `occupancy_mask.mrc` (particle id per voxel, mode 6 uint16), `particle_locations.txt`
//! (`class x y z phi theta psi`, voxels and ZXZ degrees), `particles.star` (RELION), and optionally
//! `tiltseries.mrc` + `tiltseries.tlt` and `preview_xy.png` / `preview_xz.png`.

use crate::error::SimError;
use crate::library::ClassModel;
use crate::sample::PlacedParticle;
use capsid_core::{EulerConvention, Particle};
use std::fmt::Write as _;
use std::path::Path;

/// The particles as capsid [`Particle`]s (ZXZ angles, tomogram name set).
pub fn to_particles(
    placed: &[PlacedParticle],
    classes: &[ClassModel],
    tomogram: &str,
) -> Vec<Particle> {
    placed
        .iter()
        .map(|p| {
            let [x, y, z] = p.center_xyz;
            let mut q = Particle::new(
                classes[p.class_index].name.clone(),
                x as f64,
                y as f64,
                z as f64,
            );
            q.angles = Some(p.angles);
            q.tomogram = Some(tomogram.to_string());
            q
        })
        .collect()
}

/// SHREC `particle_locations.txt` text: one line per particle in id order,
/// `class x y z phi theta psi` (voxels; ZXZ Euler angles in degrees, 3 decimals).
pub fn shrec_text(placed: &[PlacedParticle], classes: &[ClassModel]) -> String {
    let mut s = String::new();
    for p in placed {
        let [x, y, z] = p.center_xyz;
        let [a, b, c] = p.angles.angles_deg;
        let _ = writeln!(
            s,
            "{} {x} {y} {z} {a:.3} {b:.3} {c:.3}",
            classes[p.class_index].name
        );
    }
    s
}

/// RELION STAR text (`data_particles`): tomogram name, coordinates in voxels, RELION ZYZ angles
/// (converted from the ZXZ angles), `rlnClassNumber` (label) and `capsidClassName`.
pub fn star_text(placed: &[PlacedParticle], classes: &[ClassModel], tomogram: &str) -> String {
    let mut s = String::from(
        "\n# written by capsid simulate\n\ndata_particles\n\nloop_\n_rlnTomoName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n_rlnCoordinateZ #4\n_rlnAngleRot #5\n_rlnAngleTilt #6\n_rlnAnglePsi #7\n_rlnClassNumber #8\n_capsidClassName #9\n",
    );
    for p in placed {
        let [x, y, z] = p.center_xyz;
        let [rot, tilt, psi] = p
            .angles
            .to_convention(EulerConvention::RelionZyz)
            .angles_deg;
        let clean = |v: f64| if v.abs() < 5e-7 { 0.0 } else { v };
        let _ = writeln!(
            s,
            "{tomogram} {x}.000000 {y}.000000 {z}.000000 {:.6} {:.6} {:.6} {} {}",
            clean(rot),
            clean(tilt),
            clean(psi),
            p.class_index + 1,
            classes[p.class_index].name
        );
    }
    s
}

/// IMOD `.tlt` text: one tilt angle (degrees) per line.
pub fn tlt_text(angles_deg: &[f64]) -> String {
    angles_deg.iter().map(|a| format!("{a:.2}\n")).collect()
}

/// Writes `text` to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), SimError> {
    capsid_core::write_atomically(path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::EulerAngles;
    use ndarray::Array3;

    #[test]
    fn text_formats() {
        let classes = vec![ClassModel::new(
            "ribosome",
            "t".into(),
            Array3::ones((3, 3, 3)),
            10.0,
            0.5,
        )];
        let placed = vec![PlacedParticle {
            id: 1,
            class_index: 0,
            center_xyz: [10, 20, 30],
            angles: EulerAngles::zxz(10.0, 20.0, 30.0),
            mask_voxels: 27,
        }];
        assert_eq!(
            shrec_text(&placed, &classes),
            "ribosome 10 20 30 10.000 20.000 30.000\n"
        );
        let star = star_text(&placed, &classes, "tomo_000");
        let line = star.lines().last().unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0], "tomo_000");
        assert_eq!(f[7], "1");
        let rel = EulerAngles::relion(
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
            f[6].parse().unwrap(),
        );
        assert!(rel.rotation().angle_to_deg(&placed[0].angles.rotation()) < 1e-3);
        assert_eq!(tlt_text(&[-3.0, 0.0, 3.0]), "-3.00\n0.00\n3.00\n");
    }
}
