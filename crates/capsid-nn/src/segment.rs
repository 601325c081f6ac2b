//! Sliding-window segmentation of whole tomograms of any size, slab by slab along z.
//!
//! * [`window_starts`] and [`gaussian_importance`] are the two pure pieces (as in nnU-Net): where
//!   the windows go along one axis, and the weight of each voxel of a window.
//! * [`segment_streaming`] runs a [`PatchPredictor`] over every window of a tomogram, one row of
//!   windows (same z start) at a time: it reads only the z-slab the row needs, sums weighted class
//!   probabilities for that slab, and hands the finished z-slices (probabilities divided by the
//!   summed weights) to a callback before moving on. Memory stays at about one patch-thick slab of
//!   input plus `C + 1` such slabs of sums, whatever the tomogram's depth.
//! * [`NetPredictor`] is the predictor of a trained [`Net`]: softmax probabilities per class.
//!
//! Each window is z-score normalised on its own, as the training patches are
//! ([`crate::data::normalize_patch`]); parts of a window outside a small tomogram are padded.

use crate::data::{crop_padded, inside_box, normalize_patch, Augment};
use crate::model::Net;
use crate::NnError;
use burn::tensor::{activation::softmax, Device, Tensor, TensorData};
use ndarray::{s, Array3, Array4, ArrayView3, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

/// How overlapping windows are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Blend {
    /// Every voxel of a window weighs the same: plain averaging (the seed).
    #[default]
    Uniform,
    /// Gaussian importance weighting centred on the window (nnU-Net, σ = patch / 8).
    Gaussian,
}

/// Sliding-window settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentConfig {
    /// Window side in voxels (a multiple of the network's size multiple). Default 64.
    pub patch: usize,
    /// Overlap of neighbouring windows in voxels. Default 25 (the seed).
    pub overlap: usize,
    /// Blending of overlapping windows.
    pub blend: Blend,
    /// Test-time augmentation: average over the 8 mirror images (flips along z, y, x).
    pub tta: bool,
    /// Windows per forward pass. Default 1 (lowest memory; on CPU not slower than 4).
    pub batch: usize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            patch: 64,
            overlap: 25,
            blend: Blend::Uniform,
            tta: false,
            batch: 1,
        }
    }
}

impl SegmentConfig {
    /// Checks ranges; returns a message naming the setting on failure.
    pub fn validate(&self) -> Result<(), String> {
        if self.patch == 0 {
            return Err("patch must be positive".into());
        }
        if self.overlap >= self.patch {
            return Err(format!(
                "overlap ({}) must be smaller than the patch ({})",
                self.overlap, self.patch
            ));
        }
        if self.batch == 0 {
            return Err("batch must be at least 1".into());
        }
        Ok(())
    }
}

/// Window start positions along an axis of `len` voxels for windows of `patch` voxels that
/// overlap by `overlap` voxels (step `patch - overlap`, at least 1).
///
/// The first window starts at 0, the last ends flush with `len` (so every voxel is covered and no
/// window sticks out), and the steps between windows are at most `patch - overlap`. An axis not
/// longer than the patch gets one window at 0 (it is padded).
pub fn window_starts(len: usize, patch: usize, overlap: usize) -> Vec<usize> {
    if len <= patch || patch == 0 {
        return vec![0];
    }
    let step = patch.saturating_sub(overlap).max(1);
    let last = len - patch;
    let mut starts: Vec<usize> = (0..).map(|i| i * step).take_while(|&s| s < last).collect();
    starts.push(last);
    starts
}

/// Gaussian importance map of a `patch`³ window, `[z, y, x]`: exp(−d² / 2σ²) with σ =
/// `sigma_scale · patch` and d the distance (voxels) from the window centre `(patch − 1) / 2`,
/// scaled to a maximum of 1. Values are clamped below to the smallest positive value so that no
/// voxel weighs 0 (nnU-Net does the same).
pub fn gaussian_importance(patch: usize, sigma_scale: f64) -> Array3<f32> {
    let sigma = (sigma_scale * patch as f64).max(1e-6);
    let c = (patch as f64 - 1.0) / 2.0;
    let g1: Vec<f64> = (0..patch)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let max = g1
        .iter()
        .cloned()
        .fold(0.0f64, f64::max)
        .powi(3)
        .max(f64::MIN_POSITIVE);
    let mut w = Array3::from_shape_fn((patch, patch, patch), |(z, y, x)| {
        (g1[z] * g1[y] * g1[x] / max) as f32
    });
    let min_pos = w
        .iter()
        .cloned()
        .filter(|&v| v > 0.0)
        .fold(f32::INFINITY, f32::min);
    let floor = if min_pos.is_finite() { min_pos } else { 1.0 };
    w.mapv_inplace(|v| v.max(floor));
    w
}

/// The blending weights of a window for `cfg`.
pub fn window_weights(cfg: &SegmentConfig) -> Array3<f32> {
    match cfg.blend {
        Blend::Uniform => Array3::ones((cfg.patch, cfg.patch, cfg.patch)),
        Blend::Gaussian => gaussian_importance(cfg.patch, 1.0 / 8.0),
    }
}

/// Something that turns normalised patches `[z, y, x]` (all of one size) into class
/// probabilities `[C, z, y, x]`.
pub trait PatchPredictor {
    /// Number of classes C, background included.
    fn num_classes(&self) -> usize;
    /// Class probabilities of each patch, in order.
    fn predict(&mut self, patches: &[Array3<f32>]) -> Result<Vec<Array4<f32>>, NnError>;
}

/// A trained network as a [`PatchPredictor`]: softmax over the logits.
pub struct NetPredictor {
    pub net: Net,
    pub device: Device,
    pub num_classes: usize,
}

impl PatchPredictor for NetPredictor {
    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn predict(&mut self, patches: &[Array3<f32>]) -> Result<Vec<Array4<f32>>, NnError> {
        if patches.is_empty() {
            return Ok(vec![]);
        }
        let sh = patches[0].shape();
        let (d, h, w) = (sh[0], sh[1], sh[2]);
        let mut buf: Vec<f32> = Vec::with_capacity(patches.len() * d * h * w);
        for p in patches {
            buf.extend(p.iter());
        }
        let x = Tensor::<5>::from_data(
            TensorData::new(buf, [patches.len(), 1, d, h, w]),
            &self.device,
        );
        let probs = softmax(self.net.forward(x).logits, 1);
        let c = probs.dims()[1];
        let data = probs
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| NnError::Shape {
                shape: vec![patches.len(), c, d, h, w],
                reason: format!("{e:?}"),
            })?;
        let n = c * d * h * w;
        data.chunks(n)
            .map(|chunk| {
                Array4::from_shape_vec((c, d, h, w), chunk.to_vec()).map_err(|e| NnError::Shape {
                    shape: vec![c, d, h, w],
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}

/// Applies the flips of `aug` to every class of a `[C, z, y, x]` array (flips are their own
/// inverse).
fn flip_classes(mut a: Array4<f32>, aug: &Augment) -> Array4<f32> {
    if aug.flip_z {
        a.invert_axis(Axis(1));
    }
    if aug.flip_y {
        a.invert_axis(Axis(2));
    }
    if aug.flip_x {
        a.invert_axis(Axis(3));
    }
    a.as_standard_layout().into_owned()
}

/// Predicts a batch, averaging over the 8 mirror images when `tta`.
fn predict_batch(
    predictor: &mut dyn PatchPredictor,
    patches: &[Array3<f32>],
    tta: bool,
) -> Result<Vec<Array4<f32>>, NnError> {
    if !tta {
        return predictor.predict(patches);
    }
    let mut sum: Option<Vec<Array4<f32>>> = None;
    for k in 0..8u8 {
        let aug = Augment {
            flip_z: k & 1 != 0,
            flip_y: k & 2 != 0,
            flip_x: k & 4 != 0,
            rot90_z: 0,
        };
        let flipped: Vec<Array3<f32>> = patches.iter().map(|p| aug.apply(p.clone())).collect();
        let out: Vec<Array4<f32>> = predictor
            .predict(&flipped)?
            .into_iter()
            .map(|o| flip_classes(o, &aug))
            .collect();
        sum = Some(match sum {
            None => out,
            Some(mut s) => {
                for (a, b) in s.iter_mut().zip(out) {
                    *a += &b;
                }
                s
            }
        });
    }
    let mut s = sum.unwrap_or_default();
    for a in &mut s {
        a.mapv_inplace(|v| v / 8.0);
    }
    Ok(s)
}

/// Number of windows [`segment_streaming`] runs for a tomogram of `shape_zyx` (for progress
/// bars).
pub fn window_count(shape_zyx: [usize; 3], cfg: &SegmentConfig) -> usize {
    shape_zyx
        .iter()
        .map(|&n| window_starts(n, cfg.patch, cfg.overlap).len())
        .product()
}

/// Sliding-window segmentation of a tomogram of `shape_zyx`, streamed along z.
///
/// * `read_slab(z0, nz)` returns tomogram slices `z0..z0 + nz` as `[nz, y, x]`.
/// * `emit(z0, probs)` receives finished class probabilities `[C, nz, y, x]` for slices
///   `z0..z0 + nz`; slabs come in z order, cover every slice once, and each voxel's
///   probabilities are the weighted mean over the windows containing it.
/// * `on_windows(n)` is called after each batch with the number of windows done in it.
///
/// `cfg` must be valid ([`SegmentConfig::validate`]).
pub fn segment_streaming<E: From<NnError>>(
    shape_zyx: [usize; 3],
    cfg: &SegmentConfig,
    predictor: &mut dyn PatchPredictor,
    read_slab: &mut dyn FnMut(usize, usize) -> Result<Array3<f32>, E>,
    emit: &mut dyn FnMut(usize, ArrayView4<f32>) -> Result<(), E>,
    on_windows: &mut dyn FnMut(u64),
) -> Result<(), E> {
    let [nz, ny, nx] = shape_zyx;
    let c = predictor.num_classes();
    let p = cfg.patch.max(1);
    let ext = [nz.min(p), ny.min(p), nx.min(p)];
    let zs = window_starts(nz, p, cfg.overlap);
    let ys = window_starts(ny, p, cfg.overlap);
    let xs = window_starts(nx, p, cfg.overlap);
    let weights = window_weights(cfg);
    let wcrop = weights.slice(s![..ext[0], ..ext[1], ..ext[2]]);
    // Sums for slices z0 .. z0 + ext[0], where z0 is the current row's start.
    let mut acc = Array4::<f32>::zeros((c, ext[0], ny, nx));
    let mut wsum = Array3::<f32>::zeros((ext[0], ny, nx));
    let corners: Vec<(usize, usize)> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
        .collect();
    for (row, &z0) in zs.iter().enumerate() {
        let slab = read_slab(z0, ext[0])?;
        let slab_view = slab.view();
        for chunk in corners.chunks(cfg.batch.max(1)) {
            let patches: Vec<Array3<f32>> = chunk
                .iter()
                .map(|&(y0, x0)| {
                    let corner = [0isize, y0 as isize, x0 as isize];
                    let mut w = crop_padded(&slab_view, corner, [p, p, p], 0.0f32);
                    normalize_patch(&mut w, inside_box(corner, [p, p, p], slab_view.shape()));
                    w
                })
                .collect();
            let probs = predict_batch(predictor, &patches, cfg.tta)?;
            if probs.len() != chunk.len() {
                return Err(NnError::Shape {
                    shape: vec![chunk.len()],
                    reason: format!(
                        "the predictor returned {} outputs for {} patches",
                        probs.len(),
                        chunk.len()
                    ),
                }
                .into());
            }
            for (&(y0, x0), pr) in chunk.iter().zip(probs) {
                if pr.shape() != [c, p, p, p] {
                    return Err(NnError::Shape {
                        shape: pr.shape().to_vec(),
                        reason: format!("expected predictor output [{c}, {p}, {p}, {p}]"),
                    }
                    .into());
                }
                let pr = pr.slice(s![.., ..ext[0], ..ext[1], ..ext[2]]);
                let mut acc_win = acc.slice_mut(s![.., .., y0..y0 + ext[1], x0..x0 + ext[2]]);
                for ci in 0..c {
                    let mut a = acc_win.index_axis_mut(Axis(0), ci);
                    ndarray::Zip::from(&mut a)
                        .and(&pr.index_axis(Axis(0), ci))
                        .and(&wcrop)
                        .for_each(|a, &v, &w| *a += v * w);
                }
                let mut ws = wsum.slice_mut(s![.., y0..y0 + ext[1], x0..x0 + ext[2]]);
                ws += &wcrop;
            }
            on_windows(chunk.len() as u64);
        }
        // Slices z0 .. next start are finished; the last row finishes everything.
        let done = match zs.get(row + 1) {
            Some(&next) => next - z0,
            None => ext[0],
        };
        // Divide in place and hand the finished slices over (no copy of the slab).
        {
            let (mut finished, _) = acc.view_mut().split_at(Axis(1), done);
            let wdone = wsum.slice(s![..done, .., ..]);
            for ci in 0..c {
                let mut o = finished.index_axis_mut(Axis(0), ci);
                ndarray::Zip::from(&mut o)
                    .and(&wdone)
                    .for_each(|o, &w| *o = if w > 0.0 { *o / w } else { 0.0 });
            }
        }
        emit(z0, acc.slice(s![.., ..done, .., ..]))?;
        // Shift the unfinished slices to the front, one slice at a time (in place), and clear
        // the rest.
        let keep = ext[0] - done;
        for k in 0..keep {
            let (mut front, back) = acc.view_mut().split_at(Axis(1), k + done);
            front
                .index_axis_mut(Axis(1), k)
                .assign(&back.index_axis(Axis(1), 0));
            let (mut wfront, wback) = wsum.view_mut().split_at(Axis(0), k + done);
            wfront
                .index_axis_mut(Axis(0), k)
                .assign(&wback.index_axis(Axis(0), 0));
        }
        acc.slice_mut(s![.., keep.., .., ..]).fill(0.0);
        wsum.slice_mut(s![keep.., .., ..]).fill(0.0);
    }
    Ok(())
}

/// Segments an in-memory tomogram `[z, y, x]`: class probabilities `[C, z, y, x]`.
pub fn segment_volume(
    tomogram: &ArrayView3<f32>,
    cfg: &SegmentConfig,
    predictor: &mut dyn PatchPredictor,
) -> Result<Array4<f32>, NnError> {
    let sh = tomogram.shape();
    let shape = [sh[0], sh[1], sh[2]];
    let mut out = Array4::<f32>::zeros((predictor.num_classes(), shape[0], shape[1], shape[2]));
    segment_streaming::<NnError>(
        shape,
        cfg,
        predictor,
        &mut |z0, nz| Ok(tomogram.slice(s![z0..z0 + nz, .., ..]).to_owned()),
        &mut |z0, probs| {
            let nz = probs.shape()[1];
            out.slice_mut(s![.., z0..z0 + nz, .., ..]).assign(&probs);
            Ok(())
        },
        &mut |_| {},
    )?;
    Ok(out)
}

/// The most probable class of each voxel, `[z, y, x]` from probabilities `[C, z, y, x]` (ties go
/// to the lower label).
pub fn argmax_labels(probs: &ArrayView4<f32>) -> Array3<u8> {
    let sh = probs.shape();
    let mut best = Array3::<f32>::from_elem((sh[1], sh[2], sh[3]), f32::NEG_INFINITY);
    let mut label = Array3::<u8>::zeros((sh[1], sh[2], sh[3]));
    for ci in 0..sh[0] {
        ndarray::Zip::from(&mut best)
            .and(&mut label)
            .and(&probs.index_axis(Axis(0), ci))
            .for_each(|b, l, &v| {
                if v > *b {
                    *b = v;
                    *l = ci as u8;
                }
            });
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_cover_every_voxel_and_end_flush() {
        for len in [1usize, 10, 16, 17, 40, 63, 64, 65, 100, 129, 200, 512] {
            for (patch, overlap) in [(16, 0), (16, 5), (64, 25), (32, 31), (24, 8)] {
                let st = window_starts(len, patch, overlap);
                let mut covered = vec![0u32; len];
                for &s in &st {
                    for c in covered.iter_mut().skip(s).take(patch) {
                        *c += 1;
                    }
                }
                assert!(
                    covered.iter().all(|&c| c > 0),
                    "len {len} patch {patch} overlap {overlap}"
                );
                assert_eq!(st[0], 0);
                if len >= patch {
                    assert_eq!(*st.last().unwrap() + patch, len);
                }
                for w in st.windows(2) {
                    assert!(w[1] > w[0] && w[1] - w[0] <= patch - overlap, "{st:?}");
                }
            }
        }
        assert_eq!(window_starts(100, 64, 25), vec![0, 36]);
        assert_eq!(window_starts(64, 64, 25), vec![0]);
    }

    #[test]
    fn gaussian_peaks_in_centre_and_is_symmetric() {
        let g = gaussian_importance(16, 0.125);
        assert!((g[[7, 7, 7]] - g[[8, 8, 8]]).abs() < 1e-6);
        assert!((g[[7, 7, 7]] - 1.0).abs() < 0.05);
        assert!(g[[0, 0, 0]] > 0.0);
        assert!(g[[0, 0, 0]] < g[[4, 4, 4]]);
        assert_eq!(g[[0, 3, 5]], g[[15, 12, 10]]);
    }

    /// Every voxel gets the same constant probabilities: a weighted mean of constants.
    struct Constant(Vec<f32>);
    impl PatchPredictor for Constant {
        fn num_classes(&self) -> usize {
            self.0.len()
        }
        fn predict(&mut self, patches: &[Array3<f32>]) -> Result<Vec<Array4<f32>>, NnError> {
            Ok(patches
                .iter()
                .map(|p| {
                    let s = p.shape();
                    Array4::from_shape_fn((self.0.len(), s[0], s[1], s[2]), |(c, _, _, _)| {
                        self.0[c]
                    })
                })
                .collect())
        }
    }

    #[test]
    fn constant_predictor_gives_constant_probabilities() {
        let vol = Array3::from_shape_fn((37, 21, 30), |(z, y, x)| (z + 2 * y + 3 * x) as f32);
        for blend in [Blend::Uniform, Blend::Gaussian] {
            for tta in [false, true] {
                let cfg = SegmentConfig {
                    patch: 16,
                    overlap: 5,
                    blend,
                    tta,
                    batch: 3,
                };
                let out =
                    segment_volume(&vol.view(), &cfg, &mut Constant(vec![0.25, 0.75])).unwrap();
                assert_eq!(out.shape(), &[2, 37, 21, 30]);
                for (i, v) in out.index_axis(Axis(0), 1).iter().enumerate() {
                    assert!((v - 0.75).abs() < 1e-5, "voxel {i}: {v}");
                }
            }
        }
    }

    /// Gives the k-th window it sees the constant value k.
    struct WindowIndex(f32);
    impl PatchPredictor for WindowIndex {
        fn num_classes(&self) -> usize {
            1
        }
        fn predict(&mut self, patches: &[Array3<f32>]) -> Result<Vec<Array4<f32>>, NnError> {
            Ok(patches
                .iter()
                .map(|p| {
                    let v = self.0;
                    self.0 += 1.0;
                    p.mapv(|_| v).insert_axis(Axis(0))
                })
                .collect())
        }
    }

    #[test]
    fn weights_sum_right_at_borders_size_not_multiple_of_step() {
        // Size not a multiple of the step, and y shorter than the patch (padded).
        let shape = [45usize, 10, 53];
        let vol = Array3::<f32>::from_shape_fn((45, 10, 53), |(z, y, x)| {
            ((z * 7 + y * 3 + x) % 11) as f32
        });
        for blend in [Blend::Uniform, Blend::Gaussian] {
            let cfg = SegmentConfig {
                patch: 16,
                overlap: 4,
                blend,
                tta: false,
                batch: 5,
            };
            let out = segment_volume(&vol.view(), &cfg, &mut WindowIndex(0.0)).unwrap();
            // Brute force: weighted mean of window indices over the windows containing a voxel.
            let w = window_weights(&cfg);
            let mut num = Array3::<f64>::zeros((45, 10, 53));
            let mut den = Array3::<f64>::zeros((45, 10, 53));
            let mut k = 0.0f64;
            for &z0 in &window_starts(shape[0], 16, 4) {
                for &y0 in &window_starts(shape[1], 16, 4) {
                    for &x0 in &window_starts(shape[2], 16, 4) {
                        for z in z0..(z0 + 16).min(shape[0]) {
                            for y in y0..(y0 + 16).min(shape[1]) {
                                for x in x0..(x0 + 16).min(shape[2]) {
                                    let wv = w[[z - z0, y - y0, x - x0]] as f64;
                                    num[[z, y, x]] += wv * k;
                                    den[[z, y, x]] += wv;
                                }
                            }
                        }
                        k += 1.0;
                    }
                }
            }
            for ((i, v), (n, d)) in out
                .index_axis(Axis(0), 0)
                .indexed_iter()
                .zip(num.iter().zip(den.iter()))
            {
                assert!(*d > 0.0, "voxel {i:?} not covered");
                assert!(
                    (*v as f64 - n / d).abs() < 1e-3,
                    "{blend:?} voxel {i:?}: {v} vs {}",
                    n / d
                );
            }
        }
    }

    #[test]
    fn streaming_emits_every_slice_once_in_order() {
        let cfg = SegmentConfig {
            patch: 16,
            overlap: 6,
            blend: Blend::Uniform,
            tta: false,
            batch: 2,
        };
        let mut next = 0usize;
        let mut windows = 0u64;
        segment_streaming::<NnError>(
            [50, 20, 20],
            &cfg,
            &mut Constant(vec![1.0]),
            &mut |z0, nz| {
                assert!(z0 + nz <= 50);
                Ok(Array3::zeros((nz, 20, 20)))
            },
            &mut |z0, p| {
                assert_eq!(z0, next);
                next += p.shape()[1];
                Ok(())
            },
            &mut |n| windows += n,
        )
        .unwrap();
        assert_eq!(next, 50);
        assert_eq!(windows as usize, window_count([50, 20, 20], &cfg));
    }

    #[test]
    fn argmax_picks_highest_class() {
        let mut p = Array4::<f32>::zeros((3, 1, 1, 2));
        p[[1, 0, 0, 0]] = 0.6;
        p[[0, 0, 0, 0]] = 0.4;
        p[[2, 0, 0, 1]] = 0.9;
        let l = argmax_labels(&p.view());
        assert_eq!(l[[0, 0, 0]], 1);
        assert_eq!(l[[0, 0, 1]], 2);
    }
}
