//! Hard negatives: places in the training tomograms that look like particles but carry no target
//! label (unlabelled look-alikes, other complexes, contamination), found without any model.
//!
//! Patches centred on targets (the seed's sampling) rarely centre a look-alike, and uniformly
//! random background patches mostly show empty ice; so a network learns to *detect* dense blobs
//! of the right size and never learns to reject a same-size decoy. The candidates here are local
//! extrema of the tomogram low-passed at the particle scale (a blob detector), with the polarity
//! that the labelled particles have, ranked by strength, keeping those outside every labelled
//! particle. Training then centres a share of its patches on them (see
//! [`crate::data::DataConfig::negative_ratio`]).
//!
//! Units: voxels; volumes `[z, y, x]`; centres `[x, y, z]`.

use ndarray::{Array3, Axis};

/// Settings of [`find_negatives`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegativeSearch {
    /// σ (voxels) of the Gaussian low-pass; about half the smallest target radius.
    pub sigma_vox: f64,
    /// Half side (voxels) of the cube in which a candidate must be the extremum (non-maximum
    /// suppression); about the smallest target radius.
    pub nms_half: usize,
    /// Candidates closer than this (voxels) to a labelled voxel are dropped.
    pub clearance_vox: usize,
    /// At most this many candidates, strongest first.
    pub max_count: usize,
}

/// Gaussian low-pass of `vol` with σ in voxels (capsid-prep's, as `capsid prep` uses).
fn gaussian_lowpass(vol: &Array3<f32>, sigma_vox: f64) -> Array3<f32> {
    capsid_prep::prep::gaussian_lowpass(vol.view(), sigma_vox)
}

/// Separable maximum filter over a cube of half side `half` (edges clamped).
fn max_filter(vol: &Array3<f32>, half: usize) -> Array3<f32> {
    let mut out = vol.clone();
    for axis in 0..3 {
        let src = out.clone();
        let n = src.len_of(Axis(axis));
        for (mut dst_lane, src_lane) in out
            .lanes_mut(Axis(axis))
            .into_iter()
            .zip(src.lanes(Axis(axis)))
        {
            for i in 0..n {
                let lo = i.saturating_sub(half);
                let hi = (i + half).min(n - 1);
                let mut m = f32::MIN;
                for j in lo..=hi {
                    m = m.max(src_lane[j]);
                }
                dst_lane[i] = m;
            }
        }
    }
    out
}

/// +1 when the labelled particles are brighter than the tomogram's mean after the low-pass, −1
/// when darker (cryo-ET reconstructions show protein dark or bright depending on the software);
/// `None` without any labelled voxel.
pub fn particle_polarity(smoothed: &Array3<f32>, labels: &Array3<u8>) -> Option<f32> {
    let (mut sum_in, mut n_in, mut sum_all) = (0.0f64, 0usize, 0.0f64);
    for (&v, &l) in smoothed.iter().zip(labels.iter()) {
        sum_all += v as f64;
        if l != 0 {
            sum_in += v as f64;
            n_in += 1;
        }
    }
    if n_in == 0 {
        return None;
    }
    let mean_all = sum_all / smoothed.len().max(1) as f64;
    Some(if sum_in / n_in as f64 >= mean_all {
        1.0
    } else {
        -1.0
    })
}

/// Centres `[x, y, z]` (voxels) of particle-like blobs in `tomogram` that lie at least
/// `clearance_vox` from every labelled voxel of `labels` (same shape), strongest first. Blobs are
/// strict local extrema (with the labelled particles' polarity) of the low-passed tomogram in a
/// cube of half side `nms_half`, stronger than the volume's mean + 1 standard deviation.
pub fn find_negatives(
    tomogram: &Array3<f32>,
    labels: &Array3<u8>,
    search: &NegativeSearch,
) -> Vec<[f64; 3]> {
    if tomogram.shape() != labels.shape() || tomogram.is_empty() {
        return Vec::new();
    }
    let smoothed = gaussian_lowpass(tomogram, search.sigma_vox);
    let Some(sign) = particle_polarity(&smoothed, labels) else {
        return Vec::new();
    };
    let signed = smoothed.mapv(|v| sign * v);
    let n = signed.len() as f64;
    let mean = signed.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (signed
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let floor = (mean + sd) as f32;
    let peaks = max_filter(&signed, search.nms_half.max(1));
    // Distance to labelled voxels, as a dilation of the label mask by `clearance_vox`.
    let labelled = labels.mapv(|l| if l != 0 { 1.0f32 } else { 0.0 });
    let near_label = max_filter(&labelled, search.clearance_vox);
    let mut found: Vec<(f32, [f64; 3])> = signed
        .indexed_iter()
        .filter(|&((z, y, x), &v)| {
            v > floor && v >= peaks[[z, y, x]] && near_label[[z, y, x]] == 0.0
        })
        .map(|((z, y, x), &v)| (v, [x as f64, y as f64, z as f64]))
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1[2].total_cmp(&b.1[2])));
    found.truncate(search.max_count);
    found.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume with bright balls at `centres` (radius 3) on a flat background.
    fn balls(shape: (usize, usize, usize), centres: &[[usize; 3]]) -> Array3<f32> {
        Array3::from_shape_fn(shape, |(z, y, x)| {
            centres
                .iter()
                .map(|c| {
                    let d2 = (x as f64 - c[0] as f64).powi(2)
                        + (y as f64 - c[1] as f64).powi(2)
                        + (z as f64 - c[2] as f64).powi(2);
                    if d2 <= 9.0 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .sum()
        })
    }

    #[test]
    fn finds_unlabelled_blobs_and_skips_labelled_ones() {
        let shape = (32, 48, 48);
        let labelled = [10usize, 10, 16];
        let unlabelled = [[35usize, 12, 16], [20, 36, 16]];
        let mut all = vec![labelled];
        all.extend(unlabelled);
        let tomo = balls(shape, &all);
        let labels = balls(shape, &[labelled]).mapv(|v| (v > 0.0) as u8);
        let search = NegativeSearch {
            sigma_vox: 1.5,
            nms_half: 3,
            clearance_vox: 3,
            max_count: 10,
        };
        let found = find_negatives(&tomo, &labels, &search);
        assert_eq!(found.len(), 2, "{found:?}");
        for u in unlabelled {
            assert!(
                found
                    .iter()
                    .any(|f| (0..3).all(|i| (f[i] - u[i] as f64).abs() <= 1.0)),
                "{u:?} not in {found:?}"
            );
        }
        // Dark particles: the same with the contrast inverted.
        let found_dark = find_negatives(&tomo.mapv(|v| -v), &labels, &search);
        assert_eq!(found_dark.len(), 2, "{found_dark:?}");
    }

    #[test]
    fn lowpass_keeps_the_mean_and_max_filter_spreads() {
        let mut v = Array3::<f32>::zeros((9, 9, 9));
        v[[4, 4, 4]] = 1.0;
        let s = gaussian_lowpass(&v, 1.0);
        assert!((s.sum() - 1.0).abs() < 1e-4);
        assert!(s[[4, 4, 4]] > s[[4, 4, 5]] && s[[4, 4, 5]] > s[[4, 4, 6]]);
        let m = max_filter(&v, 2);
        assert_eq!(m[[2, 6, 4]], 1.0);
        assert_eq!(m[[1, 4, 4]], 0.0);
    }
}
