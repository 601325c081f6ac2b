//! Writing a simulated tomogram in the SHREC'19 layout (plus capsid's extras).
//!
//! Per tomogram folder: `reconstruction.mrc` (float32), `grandmodel.mrc` (noise-free density,
//! float32), `class_mask.mrc` (label per voxel, mode 0 with IMOD's unsigned flag),
//! `occupancy_mask.mrc` (particle id per voxel, mode 6 uint16), `particle_locations.txt`
//! (`class x y z phi theta psi`, voxels and ZXZ degrees) and `particles.star` (RELION), both written
//! by `capsid_io::particles`, and optionally
//! `tiltseries.mrc` + `tiltseries.tlt` and `preview_xy.png` / `preview_xz.png`.

use crate::error::SimError;
use crate::library::ClassModel;
use crate::sample::PlacedParticle;
use capsid_core::Particle;
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
    fn particles_and_tilt_angles() {
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
        let particles = to_particles(&placed, &classes, "tomo_000");
        assert_eq!(particles.len(), 1);
        let p = &particles[0];
        assert_eq!(
            (p.class.as_str(), p.x, p.y, p.z),
            ("ribosome", 10.0, 20.0, 30.0)
        );
        assert_eq!(p.tomogram.as_deref(), Some("tomo_000"));
        assert_eq!(p.angles, Some(EulerAngles::zxz(10.0, 20.0, 30.0)));
        assert_eq!(tlt_text(&[-3.0, 0.0, 3.0]), "-3.00\n0.00\n3.00\n");
    }
}
