//! Particles from a score map: the false-alarm threshold and non-maximum suppression, with the
//! best rotation of each peak as its orientation.

use crate::search::MatchMaps;
use crate::MatchError;
use capsid_core::{EulerConvention, Particle, Rotation, Volume};

/// The inverse of the complementary error function on (0, 2), by bisection on `libm::erfc`
/// (to 1e-12).
pub fn erfc_inv(y: f64) -> f64 {
    if y <= 0.0 {
        return f64::INFINITY;
    }
    if y >= 2.0 {
        return f64::NEG_INFINITY;
    }
    let (mut lo, mut hi) = (-10.0f64, 10.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        // erfc decreases: a value above y means the root lies further right.
        if libm::erfc(mid) > y {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The score above which `false_alarms` peaks are expected from noise alone when `searched`
/// scores (positions × rotations) are drawn from a Gaussian of standard deviation `std` about
/// `mean`: `mean + √2 · erfc⁻¹(2 · false_alarms / searched) · std` (Rickgauer et al. 2017, as
/// pytom-match-pick uses it).
pub fn false_alarm_threshold(false_alarms: f64, searched: f64, mean: f64, std: f64) -> f64 {
    let p = (2.0 * false_alarms / searched).clamp(f64::MIN_POSITIVE, 2.0);
    mean + std::f64::consts::SQRT_2 * erfc_inv(p) * std
}

/// Peaks of `maps` at or above `threshold`, strongest first, each suppressing later peaks within
/// `radius_vox` voxels; at most `max_peaks` (0 = no limit). Each becomes a particle of `class`
/// at the peak voxel (x, y, z voxels), `score` = the local correlation, angles = the peak's best
/// rotation in RELION's ZYZ convention.
pub fn extract_peaks(
    maps: &MatchMaps,
    rotations: &[Rotation],
    voxel_size_a: f32,
    class: &str,
    radius_vox: f64,
    threshold: f32,
    max_peaks: usize,
) -> Result<Vec<Particle>, MatchError> {
    let vol = Volume::new(maps.scores.clone(), voxel_size_a);
    let mut picks = capsid_pick::nms(&vol, class, radius_vox, threshold)
        .map_err(|e| MatchError::Invalid(e.to_string()))?;
    if max_peaks > 0 {
        picks.truncate(max_peaks);
    }
    for p in &mut picks {
        let idx = maps.best[[p.z as usize, p.y as usize, p.x as usize]] as usize;
        let r = rotations
            .get(idx)
            .ok_or_else(|| MatchError::Invalid(format!("rotation index {idx} out of range")))?;
        p.angles = Some(r.to_euler(EulerConvention::RelionZyz));
    }
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_inv_inverts() {
        for x in [-1.5, -0.3, 0.0, 0.7, 2.5, 4.0] {
            let y = libm::erfc(x);
            assert!((erfc_inv(y) - x).abs() < 1e-9, "{x}");
        }
    }

    #[test]
    fn threshold_grows_with_the_search() {
        // One false alarm among 1e6 Gaussian draws sits at 4.75 σ (one-sided tail 1e-6).
        let t = false_alarm_threshold(1.0, 1e6, 0.0, 1.0);
        assert!((t - 4.753).abs() < 1e-3, "{t}");
        assert!(false_alarm_threshold(1.0, 1e9, 0.0, 1.0) > t);
    }
}
