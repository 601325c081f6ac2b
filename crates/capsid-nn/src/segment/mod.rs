//! Sliding-window segmentation of whole tomograms of any size, slab by slab along z.
//!
//! * [`window_starts`] and [`gaussian_importance`] are the two pure pieces (as in nnU-Net): where
//!   the windows go along one axis, and the weight of each voxel of a window.
//! * [`segment_streaming`] runs a [`PatchPredictor`] over every window of a tomogram, one row of
//!   windows (same z start) at a time: it reads only the patch-sized band of input each line of
//!   windows needs, sums weighted foreground-class probabilities for the row's slab, and hands the
//!   finished z-slices (probabilities divided by the summed weights) to a callback before moving
//!   on. Memory stays at about `C − 1` patch-thick slabs of sums, whatever the tomogram's depth.
//! * [`NetPredictor`] is the predictor of a trained [`Net`]: softmax probabilities per class.
//!
//! * [`Segmenter`] ([`stage`]) is the stage on files: a run folder in, label and probability
//!   maps out.
//!
//! Each window is z-score normalised on its own, as the training patches are
//! ([`crate::data::normalize_patch`]); parts of a window outside a small tomogram are padded.

pub mod stage;
pub use stage::{ProbPrecision, SegmentRequest, SegmentedTomogram, Segmenter};

use crate::data::{crop_padded, inside_box, normalize_patch, normalize_patch_with, Augment};
use crate::model::Net;
use crate::NnError;
use burn::tensor::{activation::softmax, Device, Tensor, TensorData};
use ndarray::{s, Array3, Array4, ArrayView3, ArrayView4, ArrayViewMut3, Axis};
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
    /// Valid-region stitching: each voxel is taken from the one window whose centre region
    /// holds it (the overlap is split at its middle), so window borders, where the network saw
    /// zero padding instead of the tomogram, are discarded rather than averaged in. Borders at
    /// the tomogram's edges are kept.
    Crop,
}

/// How windows are normalised before the network sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Each window z-scored by its own mean and deviation, as training patches are (the seed's).
    /// The network's input, and so its output, then depends on where the windows fall.
    #[default]
    Window,
    /// Every window z-scored by the whole tomogram's mean and deviation (one extra pass over
    /// the tomogram): the input no longer depends on the tiling.
    Tomogram,
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
    /// Windows per forward pass (at most one line of windows along x). Default 1 (lowest memory;
    /// on CPU not slower than 4).
    pub batch: usize,
    /// Window normalisation.
    pub normalize: Normalize,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            patch: 64,
            overlap: Self::DEFAULT_OVERLAP,
            blend: Blend::Uniform,
            tta: false,
            batch: 1,
            normalize: Normalize::Window,
        }
    }
}

impl SegmentConfig {
    /// The seed's overlap of neighbouring windows, voxels.
    pub const DEFAULT_OVERLAP: usize = 25;

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

/// Gaussian importance profile along one axis of a window of `patch` voxels: exp(−d² / 2σ²) with
/// σ = `sigma_scale · patch` and d the distance (voxels) from the window centre `(patch − 1) / 2`,
/// scaled to a maximum of 1 and clamped below so that the product of three profiles never
/// reaches 0.
pub fn gaussian_profile(patch: usize, sigma_scale: f64) -> Vec<f32> {
    let sigma = (sigma_scale * patch as f64).max(1e-6);
    let c = (patch as f64 - 1.0) / 2.0;
    let g: Vec<f64> = (0..patch)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let max = g
        .iter()
        .cloned()
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    // The cube root of f32's smallest normal value: three factors multiply to a normal f32.
    let floor = (f32::MIN_POSITIVE as f64).cbrt() * 2.0;
    g.iter().map(|v| (v / max).max(floor) as f32).collect()
}

/// Weight of each voxel along one axis of a window of `cfg.patch` voxels for the blends whose
/// windows all weigh alike (uniform, Gaussian); the window's weight at `[z, y, x]` is
/// `p[z] · p[y] · p[x]`. [`Blend::Crop`]'s weights depend on the window's place
/// ([`axis_profiles`]); here they are 1.
pub fn window_profile(cfg: &SegmentConfig) -> Vec<f32> {
    match cfg.blend {
        Blend::Uniform | Blend::Crop => vec![1.0; cfg.patch],
        Blend::Gaussian => gaussian_profile(cfg.patch, 1.0 / 8.0),
    }
}

/// The weight profile of every window along one axis of `len` voxels, for windows of
/// `cfg.patch` voxels starting at `starts` (as [`window_starts`] gives them): [`window_profile`]
/// for each, or for [`Blend::Crop`] 1 on the voxels the window owns and 0 elsewhere. A window
/// owns the voxels nearer its own centre region than its neighbours': the overlap with the next
/// window is split at its middle, `(start_next + start + patch) / 2`; the first window owns the
/// axis from 0, the last to the end.
pub fn axis_profiles(len: usize, starts: &[usize], cfg: &SegmentConfig) -> Vec<Vec<f32>> {
    let p = cfg.patch;
    if cfg.blend != Blend::Crop {
        return vec![window_profile(cfg); starts.len()];
    }
    let n = starts.len();
    let split = |k: usize| (starts[k + 1] + starts[k] + p) / 2;
    starts
        .iter()
        .enumerate()
        .map(|(k, &s0)| {
            let lo = if k == 0 { 0 } else { split(k - 1) };
            let hi = if k + 1 == n {
                len.max(s0 + p)
            } else {
                split(k)
            };
            (0..p)
                .map(|i| f32::from(u8::from((lo..hi).contains(&(s0 + i)))))
                .collect()
        })
        .collect()
}

/// Gaussian importance map of a `patch`³ window, `[z, y, x]` (nnU-Net's, σ = `sigma_scale ·
/// patch`): the product of three [`gaussian_profile`]s, maximum 1, no voxel 0.
pub fn gaussian_importance(patch: usize, sigma_scale: f64) -> Array3<f32> {
    separable_cube(&gaussian_profile(patch, sigma_scale))
}

/// The blending weights of a window for `cfg`, `[z, y, x]`.
pub fn window_weights(cfg: &SegmentConfig) -> Array3<f32> {
    separable_cube(&window_profile(cfg))
}

/// The cube `[z, y, x] ↦ p[z] · p[y] · p[x]` of a per-axis profile.
fn separable_cube(p: &[f32]) -> Array3<f32> {
    let n = p.len();
    Array3::from_shape_fn((n, n, n), |(z, y, x)| p[z] * p[y] * p[x])
}

/// Summed window weights at each voxel of an axis of `len` voxels covered by windows starting at
/// `starts` with the per-axis `profiles` (one per window, [`axis_profiles`]; windows are cut at
/// the end of the axis). The weights are separable, so a voxel's total weight over all windows
/// is the product of its three axis sums.
pub fn axis_weight_sums(len: usize, starts: &[usize], profiles: &[Vec<f32>]) -> Vec<f32> {
    let mut sums = vec![0.0f32; len];
    for (&s, profile) in starts.iter().zip(profiles) {
        for (i, &w) in profile.iter().enumerate() {
            if let Some(v) = sums.get_mut(s + i) {
                *v += w;
            }
        }
    }
    sums
}

/// Something that turns normalised patches `[z, y, x]` (all of one size) into class
/// probabilities `[C, z, y, x]` that sum to 1 over the classes at every voxel (class 0, the
/// background, is not accumulated by [`segment_streaming`]: it is 1 − the sum of the others).
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

/// Reads a band of a tomogram: `(z0, nz, y0, ny)` → slices `z0..z0 + nz`, rows `y0..y0 + ny`,
/// every x, as `[nz, ny, x]` (see [`segment_streaming`]).
pub type BandReader<'a, E> = dyn FnMut(usize, usize, usize, usize) -> Result<Array3<f32>, E> + 'a;

/// Receives finished foreground probabilities: `(z0, [C − 1, nz, y, x])` (see
/// [`segment_streaming`]).
pub type SlabSink<'a, E> = dyn FnMut(usize, ArrayView4<f32>) -> Result<(), E> + 'a;

/// Sliding-window segmentation of a tomogram of `shape_zyx`, streamed along z.
///
/// * `read_band(z0, nz, y0, ny)` returns rows `y0..y0 + ny` of tomogram slices `z0..z0 + nz`
///   as `[nz, ny, x]` (one band per row of windows).
/// * `emit(z0, fg)` receives finished probabilities of the foreground classes 1..C, `[C − 1, nz,
///   y, x]` for slices `z0..z0 + nz` (the background's is 1 − their sum; see
///   [`argmax_labels_fg`]); slabs come in z order, cover every slice once, and each voxel's
///   probabilities are the weighted mean over the windows containing it.
/// * `on_windows(n)` is called after each batch with the number of windows done in it.
///
/// Memory: one patch-sized band of input and C − 1 patch-thick slabs of sums (the weights are
/// separable, so their per-voxel totals are three short per-axis vectors).
///
/// `cfg` must be valid ([`SegmentConfig::validate`]).
pub fn segment_streaming<E: From<NnError>>(
    shape_zyx: [usize; 3],
    cfg: &SegmentConfig,
    predictor: &mut dyn PatchPredictor,
    read_band: &mut BandReader<'_, E>,
    emit: &mut SlabSink<'_, E>,
    on_windows: &mut dyn FnMut(u64),
) -> Result<(), E> {
    let [nz, ny, nx] = shape_zyx;
    let c = predictor.num_classes();
    let fg = c.saturating_sub(1);
    let p = cfg.patch.max(1);
    let ext = [nz.min(p), ny.min(p), nx.min(p)];
    let zs = window_starts(nz, p, cfg.overlap);
    let ys = window_starts(ny, p, cfg.overlap);
    let xs = window_starts(nx, p, cfg.overlap);
    let (pz, py, px) = (
        axis_profiles(nz, &zs, cfg),
        axis_profiles(ny, &ys, cfg),
        axis_profiles(nx, &xs, cfg),
    );
    let wz = axis_weight_sums(nz, &zs, &pz);
    let wy = axis_weight_sums(ny, &ys, &py);
    let wx = axis_weight_sums(nx, &xs, &px);
    let stats = match cfg.normalize {
        Normalize::Window => None,
        Normalize::Tomogram => Some(tomogram_stats(shape_zyx, ext, read_band)?),
    };
    // Sums of the foreground classes for slices z0 .. z0 + ext[0], z0 the current row's start.
    let mut acc = Array4::<f32>::zeros((fg, ext[0], ny, nx));
    for (row, &z0) in zs.iter().enumerate() {
        for (yi, &y0) in ys.iter().enumerate() {
            let band = read_band(z0, ext[0], y0, ext[1])?;
            let band_view = band.view();
            for (ci0, chunk) in xs.chunks(cfg.batch.max(1)).enumerate() {
                let patches: Vec<Array3<f32>> = chunk
                    .iter()
                    .map(|&x0| {
                        let corner = [0isize, 0, x0 as isize];
                        let mut w = crop_padded(&band_view, corner, [p, p, p], 0.0f32);
                        let inside = inside_box(corner, [p, p, p], band_view.shape());
                        match stats {
                            None => normalize_patch(&mut w, inside),
                            Some((mean, sd)) => normalize_patch_with(&mut w, inside, mean, sd),
                        }
                        w
                    })
                    .collect();
                let probs = predict_batch(predictor, &patches, cfg.tta)?;
                drop(patches);
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
                for (k, (&x0, pr)) in chunk.iter().zip(probs).enumerate() {
                    if pr.shape() != [c, p, p, p] {
                        return Err(NnError::Shape {
                            shape: pr.shape().to_vec(),
                            reason: format!("expected predictor output [{c}, {p}, {p}, {p}]"),
                        }
                        .into());
                    }
                    let pr = pr.slice(s![.., ..ext[0], ..ext[1], ..ext[2]]);
                    let mut acc_win = acc.slice_mut(s![.., .., y0..y0 + ext[1], x0..x0 + ext[2]]);
                    let xi = ci0 * cfg.batch.max(1) + k;
                    for ci in 0..fg {
                        accumulate(
                            acc_win.index_axis_mut(Axis(0), ci),
                            pr.index_axis(Axis(0), ci + 1),
                            [&pz[row], &py[yi], &px[xi]],
                        );
                    }
                }
                on_windows(chunk.len() as u64);
            }
        }
        // Slices z0 .. next start are finished; the last row finishes everything.
        let done = match zs.get(row + 1) {
            Some(&next) => next - z0,
            None => ext[0],
        };
        // Divide in place by the summed weights and hand the finished slices over (no copy).
        {
            let (mut finished, _) = acc.view_mut().split_at(Axis(1), done);
            for ci in 0..fg {
                let mut o = finished.index_axis_mut(Axis(0), ci);
                for (k, mut plane) in o.outer_iter_mut().enumerate() {
                    let fz = wz[z0 + k];
                    for (mut line, &fy) in plane.outer_iter_mut().zip(&wy) {
                        for (v, &fx) in line.iter_mut().zip(&wx) {
                            let w = fz * fy * fx;
                            *v = if w > 0.0 { *v / w } else { 0.0 };
                        }
                    }
                }
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
        }
        acc.slice_mut(s![.., keep.., .., ..]).fill(0.0);
    }
    Ok(())
}

/// Mean and standard deviation of a tomogram of `shape_zyx`, read band by band (`[ext_z, ext_y,
/// x]`, as [`segment_streaming`] reads it), summed in f64 in a fixed order.
fn tomogram_stats<E>(
    shape_zyx: [usize; 3],
    ext: [usize; 3],
    read_band: &mut BandReader<'_, E>,
) -> Result<(f64, f64), E> {
    let [nz, ny, _] = shape_zyx;
    let (mut n, mut sum, mut sum2) = (0u64, 0.0f64, 0.0f64);
    for z0 in (0..nz).step_by(ext[0].max(1)) {
        for y0 in (0..ny).step_by(ext[1].max(1)) {
            let band = read_band(z0, ext[0].min(nz - z0), y0, ext[1].min(ny - y0))?;
            for &v in band.iter() {
                sum += v as f64;
                sum2 += (v as f64) * (v as f64);
            }
            n += band.len() as u64;
        }
    }
    let mean = sum / n.max(1) as f64;
    Ok((mean, (sum2 / n.max(1) as f64 - mean * mean).max(0.0).sqrt()))
}

/// `acc += v · w` over a window, `w[z, y, x] = pz[z] · py[y] · px[x]` from the window's axis
/// profiles `[pz, py, px]`; lines of zero weight are skipped.
fn accumulate(mut acc: ArrayViewMut3<f32>, v: ArrayView3<f32>, [pz, py, px]: [&[f32]; 3]) {
    for ((mut a_plane, v_plane), &wz) in acc.outer_iter_mut().zip(v.outer_iter()).zip(pz) {
        if wz == 0.0 {
            continue;
        }
        for ((mut a_line, v_line), &wy) in
            a_plane.outer_iter_mut().zip(v_plane.outer_iter()).zip(py)
        {
            let wzy = wz * wy;
            if wzy == 0.0 {
                continue;
            }
            for ((a, &v), &wx) in a_line.iter_mut().zip(v_line.iter()).zip(px) {
                *a += v * (wzy * wx);
            }
        }
    }
}

/// Segments an in-memory tomogram `[z, y, x]`: class probabilities `[C, z, y, x]`, background
/// (class 0) included.
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
        &mut |z0, nz, y0, ny| Ok(tomogram.slice(s![z0..z0 + nz, y0..y0 + ny, ..]).to_owned()),
        &mut |z0, fg| {
            let nz = fg.shape()[1];
            let mut block = out.slice_mut(s![.., z0..z0 + nz, .., ..]);
            let (mut bg, mut rest) = block.view_mut().split_at(Axis(0), 1);
            rest.assign(&fg);
            let mut bg = bg.index_axis_mut(Axis(0), 0);
            bg.fill(1.0);
            for k in 0..fg.shape()[0] {
                bg -= &fg.index_axis(Axis(0), k);
            }
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

/// The most probable class of each voxel, `[z, y, x]`, from the foreground probabilities
/// `[C − 1, z, y, x]` of classes 1..C (the background's is 1 − their sum); ties go to the lower
/// label. Works one z-slice at a time (memory: one slice of f32 besides the labels).
pub fn argmax_labels_fg(fg: &ArrayView4<f32>) -> Array3<u8> {
    let sh = fg.shape();
    let mut label = Array3::<u8>::zeros((sh[1], sh[2], sh[3]));
    let mut best = ndarray::Array2::<f32>::zeros((sh[2], sh[3]));
    let mut bg = ndarray::Array2::<f32>::zeros((sh[2], sh[3]));
    for (z, mut lz) in label.outer_iter_mut().enumerate() {
        bg.fill(1.0);
        for k in 0..sh[0] {
            bg -= &fg.slice(s![k, z, .., ..]);
        }
        best.assign(&bg);
        for k in 0..sh[0] {
            ndarray::Zip::from(&mut best)
                .and(&mut lz)
                .and(&fg.slice(s![k, z, .., ..]))
                .for_each(|b, l, &v| {
                    if v > *b {
                        *b = v;
                        *l = (k + 1) as u8;
                    }
                });
        }
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
        for blend in [Blend::Uniform, Blend::Gaussian, Blend::Crop] {
            for tta in [false, true] {
                let cfg = SegmentConfig {
                    patch: 16,
                    overlap: 5,
                    blend,
                    tta,
                    batch: 3,
                    ..SegmentConfig::default()
                };
                let out =
                    segment_volume(&vol.view(), &cfg, &mut Constant(vec![0.25, 0.75])).unwrap();
                assert_eq!(out.shape(), &[2, 37, 21, 30]);
                for (i, v) in out.index_axis(Axis(0), 1).iter().enumerate() {
                    assert!((v - 0.75).abs() < 1e-5, "voxel {i}: {v}");
                }
                for (i, v) in out.index_axis(Axis(0), 0).iter().enumerate() {
                    assert!((v - 0.25).abs() < 1e-5, "background voxel {i}: {v}");
                }
            }
        }
    }

    /// Gives the k-th window it sees the value k for class 1 (and 1 − k for the background, so
    /// that the two sum to 1).
    struct WindowIndex(f32);
    impl PatchPredictor for WindowIndex {
        fn num_classes(&self) -> usize {
            2
        }
        fn predict(&mut self, patches: &[Array3<f32>]) -> Result<Vec<Array4<f32>>, NnError> {
            Ok(patches
                .iter()
                .map(|p| {
                    let v = self.0;
                    self.0 += 1.0;
                    let s = p.shape();
                    Array4::from_shape_fn(
                        (2, s[0], s[1], s[2]),
                        |(c, _, _, _)| {
                            if c == 1 {
                                v
                            } else {
                                1.0 - v
                            }
                        },
                    )
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
        for blend in [Blend::Uniform, Blend::Gaussian, Blend::Crop] {
            let cfg = SegmentConfig {
                patch: 16,
                overlap: 4,
                blend,
                tta: false,
                batch: 5,
                ..SegmentConfig::default()
            };
            let out = segment_volume(&vol.view(), &cfg, &mut WindowIndex(0.0)).unwrap();
            // Brute force: weighted mean of window indices over the windows containing a voxel,
            // each window weighted by the product of its three axis profiles.
            let starts: Vec<Vec<usize>> = shape.iter().map(|&n| window_starts(n, 16, 4)).collect();
            let prof: Vec<Vec<Vec<f32>>> = (0..3)
                .map(|a| axis_profiles(shape[a], &starts[a], &cfg))
                .collect();
            let mut num = Array3::<f64>::zeros((45, 10, 53));
            let mut den = Array3::<f64>::zeros((45, 10, 53));
            let mut k = 0.0f64;
            for (iz, &z0) in starts[0].iter().enumerate() {
                for (iy, &y0) in starts[1].iter().enumerate() {
                    for (ix, &x0) in starts[2].iter().enumerate() {
                        for z in z0..(z0 + 16).min(shape[0]) {
                            for y in y0..(y0 + 16).min(shape[1]) {
                                for x in x0..(x0 + 16).min(shape[2]) {
                                    let wv = prof[0][iz][z - z0] as f64
                                        * prof[1][iy][y - y0] as f64
                                        * prof[2][ix][x - x0] as f64;
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
                .index_axis(Axis(0), 1)
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
    fn crop_takes_each_voxel_from_one_window_away_from_its_borders() {
        for (len, patch, overlap) in [
            (53usize, 16usize, 4usize),
            (40, 16, 8),
            (16, 16, 4),
            (9, 16, 4),
            (100, 32, 13),
        ] {
            let cfg = SegmentConfig {
                patch,
                overlap,
                blend: Blend::Crop,
                tta: false,
                batch: 1,
                ..SegmentConfig::default()
            };
            let starts = window_starts(len, patch, overlap);
            let prof = axis_profiles(len, &starts, &cfg);
            for t in 0..len {
                let owners: Vec<usize> = (0..starts.len())
                    .filter(|&k| {
                        t >= starts[k] && t < starts[k] + patch && prof[k][t - starts[k]] == 1.0
                    })
                    .collect();
                assert_eq!(owners.len(), 1, "voxel {t} of {len}: owners {owners:?}");
                // At least half the overlap from the owner's inner borders.
                let k = owners[0];
                let (s0, margin) = (starts[k], overlap / 2);
                if k > 0 {
                    assert!(t >= s0 + margin, "voxel {t}: window at {s0}");
                }
                if k + 1 < starts.len() {
                    assert!(t + margin < s0 + patch, "voxel {t}: window at {s0}");
                }
            }
            assert_eq!(axis_weight_sums(len, &starts, &prof), vec![1.0; len]);
        }
    }

    /// Class 1's probability is the logistic of the (normalised) input voxel: a network whose
    /// output depends on nothing but the voxel, so only normalisation can make tilings differ.
    struct Pointwise;
    impl PatchPredictor for Pointwise {
        fn num_classes(&self) -> usize {
            2
        }
        fn predict(&mut self, patches: &[Array3<f32>]) -> Result<Vec<Array4<f32>>, NnError> {
            Ok(patches
                .iter()
                .map(|p| {
                    let s = p.shape();
                    Array4::from_shape_fn((2, s[0], s[1], s[2]), |(c, z, y, x)| {
                        let q = 1.0 / (1.0 + (-p[[z, y, x]]).exp());
                        if c == 1 {
                            q
                        } else {
                            1.0 - q
                        }
                    })
                })
                .collect())
        }
    }

    #[test]
    fn tomogram_normalisation_makes_the_output_independent_of_the_tiling() {
        let vol = Array3::from_shape_fn((30, 26, 41), |(z, y, x)| {
            ((z * 13 + y * 7 + x * 3) % 17) as f32 * 0.5 + (z as f32) * 0.2
        });
        let run = |patch, overlap, blend, normalize| {
            let cfg = SegmentConfig {
                patch,
                overlap,
                blend,
                normalize,
                ..SegmentConfig::default()
            };
            segment_volume(&vol.view(), &cfg, &mut Pointwise).unwrap()
        };
        let reference = run(16, 6, Blend::Uniform, Normalize::Tomogram);
        // The tomogram-wide z-score, voxel by voxel.
        let n = vol.len() as f64;
        let mean = vol.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sd = (vol.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        for ((z, y, x), &v) in vol.indexed_iter() {
            let q = 1.0 / (1.0 + (-((v as f64 - mean) / sd)).exp());
            assert!((reference[[1, z, y, x]] as f64 - q).abs() < 1e-5);
        }
        for (patch, overlap, blend) in [
            (24, 4, Blend::Crop),
            (32, 8, Blend::Gaussian),
            (8, 2, Blend::Uniform),
        ] {
            let other = run(patch, overlap, blend, Normalize::Tomogram);
            let diff = (&other - &reference)
                .mapv(f32::abs)
                .fold(0.0f32, |a, &b| a.max(b));
            assert!(diff < 1e-5, "{patch}/{overlap}/{blend:?}: {diff}");
        }
        // Per-window z-scores differ between tilings.
        let a = run(16, 6, Blend::Uniform, Normalize::Window);
        let b = run(24, 4, Blend::Crop, Normalize::Window);
        assert!((&a - &b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v)) > 1e-3);
    }

    #[test]
    fn streaming_emits_every_slice_once_in_order() {
        let cfg = SegmentConfig {
            patch: 16,
            overlap: 6,
            blend: Blend::Uniform,
            tta: false,
            batch: 2,
            ..SegmentConfig::default()
        };
        let mut next = 0usize;
        let mut windows = 0u64;
        segment_streaming::<NnError>(
            [50, 20, 20],
            &cfg,
            &mut Constant(vec![1.0]),
            &mut |z0, nz, y0, ny| {
                assert!(z0 + nz <= 50 && y0 + ny <= 20);
                Ok(Array3::zeros((nz, ny, 20)))
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
    fn foreground_argmax_agrees_with_full_argmax() {
        // Random probabilities over 4 classes (normalised), some voxels with background highest.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32) / (1u64 << 31) as f32
        };
        let mut p = Array4::<f32>::from_shape_fn((4, 3, 5, 7), |_| next());
        for z in 0..3 {
            for y in 0..5 {
                for x in 0..7 {
                    let sum: f32 = (0..4).map(|c| p[[c, z, y, x]]).sum();
                    for c in 0..4 {
                        p[[c, z, y, x]] /= sum;
                    }
                }
            }
        }
        let full = argmax_labels(&p.view());
        let fg = argmax_labels_fg(&p.slice(s![1.., .., .., ..]));
        assert_eq!(full, fg);
        assert!(full.iter().any(|&l| l == 0) && full.iter().any(|&l| l == 3));
    }

    #[test]
    fn separable_weight_sums_match_window_sums() {
        for blend in [Blend::Uniform, Blend::Gaussian] {
            let cfg = SegmentConfig {
                patch: 12,
                overlap: 5,
                blend,
                tta: false,
                batch: 1,
                ..SegmentConfig::default()
            };
            let prof = window_profile(&cfg);
            let w = window_weights(&cfg);
            let (lz, ly) = (30usize, 9usize);
            let zs = window_starts(lz, 12, 5);
            let ys = window_starts(ly, 12, 5);
            let sz = axis_weight_sums(lz, &zs, &axis_profiles(lz, &zs, &cfg));
            let sy = axis_weight_sums(ly, &ys, &axis_profiles(ly, &ys, &cfg));
            // Brute force over a z-y plane at x = 3 (one window along x of length 12).
            for z in 0..lz {
                for y in 0..ly {
                    let mut total = 0.0f64;
                    for &z0 in &zs {
                        for &y0 in &ys {
                            if (z0..z0 + 12).contains(&z) && (y0..y0 + 12).contains(&y) {
                                total += w[[z - z0, y - y0, 3]] as f64;
                            }
                        }
                    }
                    let sep = (sz[z] * sy[y] * prof[3]) as f64;
                    assert!((sep - total).abs() < 1e-5 * total.max(1.0), "{z} {y}");
                }
            }
        }
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
