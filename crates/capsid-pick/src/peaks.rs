//! Peaks of a smoothed probability map: centre finding for particles the network sees only
//! faintly.
//!
//! A network's probability map at low SNR is speckled: a tiny particle lights up a few voxels,
//! and so does noise. A single voxel's probability (plain [`crate::nms()`]) or a cluster's size
//! in the label map (mean shift) ranks a one-voxel speck like a particle. Averaging the
//! probability over a particle-sized neighbourhood first (a Gaussian of σ = `sigma_fraction` ×
//! the class radius) ranks a place by how much of a particle the network sees there, and its
//! local maxima are particle centres (the peak extraction of centre heat maps, as the CZII
//! challenge's winners and DeepETPicker do). One [`Particle`] per peak, `score` = the smoothed
//! probability at the peak (0 to 1), suppression within the class radius.

use crate::PickError;
use capsid_core::{Particle, Volume};

/// Default Gaussian σ of [`peaks`], as a fraction of the class radius.
pub const PEAK_SIGMA_FRACTION: f64 = 0.5;

/// Picks particles of `class` at the local maxima of `prob_map` (`[z, y, x]`, probabilities of
/// the class) smoothed by a Gaussian of σ = `sigma_fraction × radius_vox` voxels, keeping peaks
/// whose smoothed probability is ≥ `min_score`, strongest first, each suppressing later peaks
/// within `radius_vox` voxels. Positions are in voxels of the map; NaN voxels count as 0.
pub fn peaks(
    prob_map: &Volume<f32>,
    class: &str,
    radius_vox: f64,
    sigma_fraction: f64,
    min_score: f32,
) -> Result<Vec<Particle>, PickError> {
    if !(sigma_fraction >= 0.0 && sigma_fraction.is_finite()) {
        return Err(PickError::Invalid(format!(
            "peak smoothing σ must be a fraction ≥ 0 of the radius, got {sigma_fraction}"
        )));
    }
    if !(radius_vox > 0.0 && radius_vox.is_finite()) {
        return Err(PickError::Invalid(format!(
            "peak radius must be positive, got {radius_vox}"
        )));
    }
    let sigma = sigma_fraction * radius_vox;
    // Non-finite probabilities (a damaged map) count as 0; a clean map is not copied.
    let smooth = if prob_map.data.iter().all(|v| v.is_finite()) {
        capsid_prep::prep::gaussian_lowpass(prob_map.data.view(), sigma)
    } else {
        let clean = prob_map.data.mapv(|v| if v.is_finite() { v } else { 0.0 });
        capsid_prep::prep::gaussian_lowpass(clean.view(), sigma)
    };
    crate::nms(&prob_map.with_data(smooth), class, radius_vox, min_score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use rand::{Rng, SeedableRng};

    /// A ball of probability 0.8 (radius 3) and, elsewhere, isolated voxels at 0.99: the specks
    /// win plain NMS, the ball wins after smoothing.
    #[test]
    fn a_particle_outranks_specks_after_smoothing() {
        let mut m = Array3::<f32>::zeros((32, 32, 32));
        for ((z, y, x), v) in m.indexed_iter_mut() {
            let d2 =
                (x as f64 - 10.0).powi(2) + (y as f64 - 12.0).powi(2) + (z as f64 - 14.0).powi(2);
            if d2 <= 9.0 {
                *v = 0.8;
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let (z, y, x) = (
                rng.gen_range(22..31),
                rng.gen_range(1..31),
                rng.gen_range(1..31),
            );
            m[[z, y, x]] = 0.99;
        }
        let vol = Volume::new(m, 1.0);
        let plain = crate::nms(&vol, "a", 3.0, 0.5).unwrap();
        assert!(
            plain[0].z > 20.0,
            "plain NMS ranks a speck first: {:?}",
            plain[0]
        );
        let found = peaks(&vol, "a", 3.0, PEAK_SIGMA_FRACTION, 0.0).unwrap();
        let top = &found[0];
        assert_eq!((top.x, top.y, top.z), (10.0, 12.0, 14.0));
        assert!(top.score.unwrap() > 0.3 && top.score.unwrap() < 0.8);
        // Every speck scores far below the ball once smoothed, so a threshold separates them.
        assert!(found[1..]
            .iter()
            .all(|p| p.score.unwrap() < 0.5 * top.score.unwrap()));
        let kept = peaks(&vol, "a", 3.0, PEAK_SIGMA_FRACTION, 0.3).unwrap();
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let vol = Volume::new(Array3::<f32>::zeros((4, 4, 4)), 1.0);
        assert!(peaks(&vol, "a", 0.0, 0.5, 0.1).is_err());
        assert!(peaks(&vol, "a", 2.0, -1.0, 0.1).is_err());
        assert!(peaks(&vol, "a", 2.0, f64::NAN, 0.1).is_err());
    }
}
