//! Patch geometry and extraction: [`PatchSpec`] (sample, corner `[z, y, x]` in voxels,
//! augmentation), corners, padded crops, per-patch z-score normalisation and
//! [`extract_patch`].

use super::{Augment, TrainSample};
use ndarray::{s, Array3, ArrayView3};

/// One patch: which sample, its corner `[z, y, x]` in voxels (may lie partly outside the
/// tomogram; the outside is padded) and its augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchSpec {
    pub sample: usize,
    pub corner_zyx: [isize; 3],
    pub augment: Augment,
}

/// The corner of a `patch`-sided patch centred on `center` (voxels, one axis), shifted by
/// `shift`, and moved inside `[0, len - patch]` when the axis is long enough.
pub fn patch_corner(center: f64, shift: isize, patch: usize, len: usize) -> isize {
    let c = center.round() as isize + shift - (patch / 2) as isize;
    if len >= patch {
        c.clamp(0, (len - patch) as isize)
    } else {
        0
    }
}

/// Copies the `size`³ window at `corner_zyx` out of `vol`; voxels outside `vol` are `fill`.
pub fn crop_padded<T: Copy>(
    vol: &ArrayView3<T>,
    corner_zyx: [isize; 3],
    size: [usize; 3],
    fill: T,
) -> Array3<T> {
    let mut out = Array3::from_elem((size[0], size[1], size[2]), fill);
    let shape = vol.shape();
    let mut src = [(0usize, 0usize); 3];
    let mut dst = [(0usize, 0usize); 3];
    for ax in 0..3 {
        let lo = corner_zyx[ax].max(0);
        let hi = (corner_zyx[ax] + size[ax] as isize).min(shape[ax] as isize);
        if hi <= lo {
            return out;
        }
        src[ax] = (lo as usize, hi as usize);
        dst[ax] = (
            (lo - corner_zyx[ax]) as usize,
            (hi - corner_zyx[ax]) as usize,
        );
    }
    out.slice_mut(s![
        dst[0].0..dst[0].1,
        dst[1].0..dst[1].1,
        dst[2].0..dst[2].1
    ])
    .assign(&vol.slice(s![
        src[0].0..src[0].1,
        src[1].0..src[1].1,
        src[2].0..src[2].1
    ]));
    out
}

/// Z-score normalises the voxels of `patch` that lie inside the tomogram (`inside` is the
/// in-bounds box `[lo, hi)` per axis of the patch); padded voxels become 0 (the mean). A constant
/// patch becomes all zeros. Mean and deviation are summed in f64 in a fixed order.
pub fn normalize_patch(patch: &mut Array3<f32>, inside: [(usize, usize); 3]) {
    let view = patch.slice(s![
        inside[0].0..inside[0].1,
        inside[1].0..inside[1].1,
        inside[2].0..inside[2].1
    ]);
    let n = view.len();
    if n == 0 {
        patch.fill(0.0);
        return;
    }
    let mut sum = 0.0f64;
    let mut sum2 = 0.0f64;
    for &v in view.iter() {
        sum += v as f64;
        sum2 += (v as f64) * (v as f64);
    }
    let mean = sum / n as f64;
    let sd = (sum2 / n as f64 - mean * mean).max(0.0).sqrt();
    normalize_patch_with(patch, inside, mean, sd);
}

/// `(v − mean) / sd` for the voxels of `patch` inside the tomogram (`inside` as in
/// [`normalize_patch`]), 0 for padded voxels; all zeros when `sd` is about 0.
pub fn normalize_patch_with(
    patch: &mut Array3<f32>,
    inside: [(usize, usize); 3],
    mean: f64,
    sd: f64,
) {
    let scale = if sd > 1e-12 { 1.0 / sd } else { 0.0 };
    let view = patch.slice(s![
        inside[0].0..inside[0].1,
        inside[1].0..inside[1].1,
        inside[2].0..inside[2].1
    ]);
    let mut out = Array3::<f32>::zeros(patch.raw_dim());
    out.slice_mut(s![
        inside[0].0..inside[0].1,
        inside[1].0..inside[1].1,
        inside[2].0..inside[2].1
    ])
    .assign(&view.mapv(|v| ((v as f64 - mean) * scale) as f32));
    *patch = out;
}

/// The in-bounds box of a window of `size` at `corner` in a volume of `shape`, in patch
/// coordinates.
pub fn inside_box(
    corner_zyx: [isize; 3],
    size: [usize; 3],
    shape: &[usize],
) -> [(usize, usize); 3] {
    let mut b = [(0usize, 0usize); 3];
    for ax in 0..3 {
        let lo = corner_zyx[ax].max(0);
        let hi = (corner_zyx[ax] + size[ax] as isize)
            .min(shape[ax] as isize)
            .max(lo);
        b[ax] = (
            (lo - corner_zyx[ax]) as usize,
            (hi - corner_zyx[ax]) as usize,
        );
    }
    b
}

/// Cuts out a normalised, augmented patch and its labels.
pub fn extract_patch(
    sample: &TrainSample,
    spec: &PatchSpec,
    patch: usize,
) -> (Array3<f32>, Array3<u8>) {
    let size = [patch; 3];
    let tomo = sample.tomogram.data.view();
    let mut x = crop_padded(&tomo, spec.corner_zyx, size, 0.0f32);
    normalize_patch(&mut x, inside_box(spec.corner_zyx, size, tomo.shape()));
    let y = crop_padded(&sample.labels.view(), spec.corner_zyx, size, 0u8);
    (spec.augment.apply(x), spec.augment.apply(y))
}
