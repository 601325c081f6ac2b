//! Encoder features at particle centres: what a trained network's encoder holds about each
//! particle, for measurements such as the capsule-pose experiment (do 3D-UCaps' class capsules
//! encode a particle's orientation, as the seed argues?).
//!
//! For each particle, a cube of `patch` voxels centred on it is cut out of the tomogram (voxels
//! outside the tomogram padded), z-scored as the network's training patches are
//! ([`crate::data::normalize_patch`]), and passed through the encoder
//! ([`Net::encoder_features`]). The patch is an odd number of encoder cells wide
//! (`patch = m · (2k + 1)` with `m` the encoder's downsampling, [`feature_patch`]), so the
//! particle's centre voxel `patch / 2` lies in the middle of cell `k`: the feature vector of that
//! cell (and of its neighbours, for `cells > 1`) describes the particle and nothing is
//! interpolated.
//!
//! Rows are ordered channel-major: value `((ch · cells + z) · cells + y) · cells + x` is channel
//! `ch` of cell `(z, y, x)` of the `cells³` block around the centre.

use crate::data::{crop_padded, inside_box, normalize_patch};
use crate::model::{Net, NetConfig};
use crate::NnError;
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array3, ArrayView3};

/// Patches per forward pass.
const BATCH: usize = 4;

/// The smallest patch (voxels) of an odd number of encoder cells (`downsampling` voxels each)
/// that is at least `min_patch` wide and holds `cells` cells (odd) around the centre with at
/// least one more on each side.
pub fn feature_patch(downsampling: usize, cells: usize, min_patch: usize) -> usize {
    let m = downsampling.max(1);
    let mut n = min_patch.div_ceil(m).max(cells + 2);
    if n.is_multiple_of(2) {
        n += 1;
    }
    n * m
}

/// The encoder features at each particle centre.
#[derive(Debug, Clone, PartialEq)]
pub struct CentreFeatures {
    /// Side of the patch cut around each centre (voxels).
    pub patch: usize,
    /// Voxels per encoder cell along each axis.
    pub downsampling: usize,
    /// Side of the block of cells kept around the centre (odd).
    pub cells: usize,
    /// Channels per cell.
    pub channels: usize,
    /// One row per centre, `channels · cells³` values (see the module doc for the order).
    pub rows: Vec<Vec<f32>>,
}

/// Encoder features of `net` (built from `cfg`, on `device`) at `centres_xyz` (voxels, x, y, z)
/// of `tomogram` (z, y, x), keeping the `cells`³ cells (odd, ≥ 1) around each centre; patches
/// are at least `min_patch` voxels wide (the training patch, so the encoder sees as much context
/// as it was trained with).
pub fn centre_features(
    net: &Net,
    cfg: &NetConfig,
    tomogram: ArrayView3<f32>,
    centres_xyz: &[[f64; 3]],
    cells: usize,
    min_patch: usize,
    device: &Device,
) -> Result<CentreFeatures, NnError> {
    if cells == 0 || cells.is_multiple_of(2) {
        return Err(NnError::Config(format!(
            "cells = {cells}: expected an odd number (1, 3, …)"
        )));
    }
    let m = cfg.size_multiple();
    let patch = feature_patch(m, cells, min_patch);
    let grid = patch / m;
    let lo = grid / 2 - cells / 2;
    let shape = tomogram.shape().to_vec();
    let mut rows = Vec::with_capacity(centres_xyz.len());
    let mut channels = 0;
    for chunk in centres_xyz.chunks(BATCH) {
        let mut buf: Vec<f32> = Vec::with_capacity(chunk.len() * patch.pow(3));
        for c in chunk {
            let corner = [c[2], c[1], c[0]].map(|v| v.round() as isize - (patch / 2) as isize);
            let mut x: Array3<f32> = crop_padded(&tomogram, corner, [patch; 3], 0.0);
            normalize_patch(&mut x, inside_box(corner, [patch; 3], &shape));
            buf.extend(x.iter());
        }
        let x = Tensor::<5>::from_data(
            TensorData::new(buf, [chunk.len(), 1, patch, patch, patch]),
            device,
        );
        let f = net.encoder_features(x);
        let [b, ch, ..] = f.dims();
        channels = ch;
        let block = f
            .slice([0..b, 0..ch, lo..lo + cells, lo..lo + cells, lo..lo + cells])
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| NnError::Shape {
                shape: vec![b, ch, cells, cells, cells],
                reason: format!("encoder features: {e:?}"),
            })?;
        let per_row = ch * cells.pow(3);
        rows.extend(block.chunks(per_row).map(<[f32]>::to_vec));
    }
    Ok(CentreFeatures {
        patch,
        downsampling: m,
        cells,
        channels,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UNetConfig;

    #[test]
    fn patches_hold_an_odd_number_of_cells_with_the_centre_in_the_middle_one() {
        assert_eq!(feature_patch(4, 1, 32), 36); // 9 cells of 4
        assert_eq!(feature_patch(8, 1, 32), 40); // 5 cells of 8
        assert_eq!(feature_patch(8, 3, 16), 40); // 3 cells need 5
        assert_eq!(feature_patch(8, 1, 40), 40);
        for (m, cells, min) in [(4, 1, 32), (8, 1, 32), (8, 3, 8), (2, 5, 20)] {
            let p = feature_patch(m, cells, min);
            let n = p / m;
            assert!(
                p >= min && n % 2 == 1 && n >= cells + 2,
                "{m} {cells} {min}"
            );
            // The centre voxel lies in the middle cell.
            assert_eq!((p / 2) / m, n / 2);
        }
    }

    #[test]
    fn features_follow_the_particle_not_the_tomogram() {
        // A blob at two places of a tomogram gives the same centre features at both (the patch
        // is cut around the centre), and other features where there is no blob; the order of
        // the centres does not matter and batching does not change a row.
        let device = Device::flex();
        let cfg = NetConfig::Unet(UNetConfig { num_classes: 3 });
        let net = Net::init_seeded(&cfg, &device, 1);
        let mut tomo = Array3::<f32>::zeros((48, 64, 96));
        let noise = |i: usize| ((i * 7919 % 104_729) as f32 / 104_729.0) - 0.5;
        for (i, v) in tomo.iter_mut().enumerate() {
            *v = 0.05 * noise(i);
        }
        let blob = |t: &mut Array3<f32>, c: [usize; 3]| {
            for dz in -4i32..=4 {
                for dy in -4i32..=4 {
                    for dx in -4i32..=4 {
                        let r2 = (dx * dx + 2 * dy * dy + 3 * dz * dz) as f32;
                        let p = [c[0] as i32 + dz, c[1] as i32 + dy, c[2] as i32 + dx];
                        t[[p[0] as usize, p[1] as usize, p[2] as usize]] += (-r2 / 8.0).exp();
                    }
                }
            }
        };
        blob(&mut tomo, [24, 32, 24]);
        blob(&mut tomo, [24, 32, 70]);
        let centres = [[24.0, 32.0, 24.0], [70.0, 32.0, 24.0], [47.0, 20.0, 10.0]];
        let f = centre_features(&net, &cfg, tomo.view(), &centres, 1, 32, &device).unwrap();
        assert_eq!(
            (f.patch, f.downsampling, f.cells, f.channels),
            (36, 4, 1, 64)
        );
        assert_eq!(f.rows.len(), 3);
        let dist = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(p, q)| (p - q).powi(2))
                .sum::<f32>()
                .sqrt()
        };
        let same = dist(&f.rows[0], &f.rows[1]);
        let other = dist(&f.rows[0], &f.rows[2]);
        assert!(
            other > 0.0 && same < 0.2 * other,
            "same {same}, other {other}"
        );
        let one = centre_features(&net, &cfg, tomo.view(), &centres[2..], 3, 32, &device).unwrap();
        assert_eq!(one.rows[0].len(), 64 * 27);
        // The middle cell of the 3³ block is the single cell (channel-major order).
        for ch in 0..64 {
            let v = one.rows[0][ch * 27 + 13];
            assert!((v - f.rows[2][ch]).abs() < 1e-5, "channel {ch}");
        }
        assert!(centre_features(&net, &cfg, tomo.view(), &centres, 2, 32, &device).is_err());
    }
}
