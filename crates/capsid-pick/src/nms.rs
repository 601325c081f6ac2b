//! Non-maximum suppression on a probability map.
//!
//! Candidates are the voxels whose probability is ≥ `threshold` and ≥ each of their 26 neighbours
//! (NaN counts as lower than anything). They are taken strongest first (ties: memory order), and
//! each accepted candidate suppresses every later candidate within `radius_vox` (inclusive). One
//! [`Particle`] per accepted candidate at the voxel's position, `score` = its probability.

use crate::grid::PointGrid;
use crate::PickError;
use capsid_core::{Particle, Volume};
use ndarray::Axis;
use rayon::prelude::*;

/// Picks particles of class `class` from a probability map (`[z, y, x]`) by non-maximum
/// suppression with radius `radius_vox` (voxels; usually the class radius) above `threshold`.
/// Returns picks by decreasing probability.
pub fn nms(
    prob_map: &Volume<f32>,
    class: &str,
    radius_vox: f64,
    threshold: f32,
) -> Result<Vec<Particle>, PickError> {
    if !(radius_vox > 0.0 && radius_vox.is_finite()) {
        return Err(PickError::Invalid(format!(
            "NMS radius must be positive, got {radius_vox}"
        )));
    }
    if !threshold.is_finite() {
        return Err(PickError::Invalid(format!(
            "threshold must be finite, got {threshold}"
        )));
    }
    let data = prob_map.data.as_standard_layout();
    let (nz, ny, nx) = data.dim();
    // Local maxima, slice by slice in parallel, collected in z order.
    let mut candidates: Vec<(f32, [u32; 3])> = (0..nz)
        .into_par_iter()
        .flat_map_iter(|z| {
            let mut found = Vec::new();
            let plane = data.index_axis(Axis(0), z);
            for ((y, x), &p) in plane.indexed_iter() {
                // NaN is below any threshold.
                if p.is_nan() || p < threshold {
                    continue;
                }
                let mut is_max = true;
                'n: for zz in z.saturating_sub(1)..=(z + 1).min(nz - 1) {
                    for yy in y.saturating_sub(1)..=(y + 1).min(ny - 1) {
                        for xx in x.saturating_sub(1)..=(x + 1).min(nx - 1) {
                            if data[[zz, yy, xx]] > p {
                                is_max = false;
                                break 'n;
                            }
                        }
                    }
                }
                if is_max {
                    found.push((p, [x as u32, y as u32, z as u32]));
                }
            }
            found
        })
        .collect();
    // Strongest first; ties in memory order (z, y, x).
    candidates.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then((a.1[2], a.1[1], a.1[0]).cmp(&(b.1[2], b.1[1], b.1[0])))
    });
    let pos = |c: &(f32, [u32; 3])| [c.1[0] as f64, c.1[1] as f64, c.1[2] as f64];
    let grid = PointGrid::new(candidates.iter().map(pos).collect(), radius_vox);
    let mut suppressed = vec![false; candidates.len()];
    let mut out = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        for j in grid.within(pos(c), radius_vox) {
            suppressed[j] = true;
        }
        let [x, y, z] = pos(c);
        let mut p = Particle::new(class, x, y, z);
        p.score = Some(c.0 as f64);
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn gaussian_peaks(peaks: &[([f64; 3], f64, f64)]) -> Volume<f32> {
        let mut m = Array3::<f32>::zeros((32, 32, 48));
        for ((z, y, x), v) in m.indexed_iter_mut() {
            let mut s = 0.0;
            for (c, amp, sigma) in peaks {
                let d2 = (x as f64 - c[0]).powi(2)
                    + (y as f64 - c[1]).powi(2)
                    + (z as f64 - c[2]).powi(2);
                s += amp * (-d2 / (2.0 * sigma * sigma)).exp();
            }
            *v = s as f32;
        }
        Volume::new(m, 1.0)
    }

    #[test]
    fn two_gaussian_peaks_give_two_picks_strongest_first() {
        let vol = gaussian_peaks(&[
            ([12.0, 15.0, 16.0], 0.8, 3.0),
            ([33.0, 16.0, 14.0], 0.95, 3.0),
        ]);
        let p = nms(&vol, "a", 6.0, 0.5).unwrap();
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].position_xyz(), [33.0, 16.0, 14.0]);
        assert_eq!(p[1].position_xyz(), [12.0, 15.0, 16.0]);
        assert!((p[0].score.unwrap() - 0.95).abs() < 1e-6);
        // Above the weaker peak's height only the stronger remains.
        assert_eq!(nms(&vol, "a", 6.0, 0.9).unwrap().len(), 1);
    }

    #[test]
    fn a_radius_spanning_both_peaks_keeps_one() {
        // Two close peaks (distance 5): both are local maxima, the radius decides.
        let vol = gaussian_peaks(&[
            ([20.0, 16.0, 16.0], 0.9, 1.0),
            ([25.0, 16.0, 16.0], 0.8, 1.0),
        ]);
        assert_eq!(nms(&vol, "a", 3.0, 0.5).unwrap().len(), 2);
        let one = nms(&vol, "a", 5.0, 0.5).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].x, 20.0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let vol = gaussian_peaks(&[]);
        assert!(nms(&vol, "a", 0.0, 0.5).is_err());
        assert!(nms(&vol, "a", 3.0, f32::NAN).is_err());
        assert!(nms(&vol, "a", 3.0, 0.5).unwrap().is_empty());
    }
}
