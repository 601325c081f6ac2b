//! Classes from density maps (MRC): resampled to the simulation's voxel size.

use super::ClassModel;
use crate::density::trilinear;
use crate::error::SimError;
use ndarray::Array3;
use std::path::Path;

/// Resamples a map `src` (`[z, y, x]`, voxel `src_voxel_a`) to a cube of odd side at `dst_voxel_a`
/// about the map's centre. When coarsening, each output voxel averages a k³ sub-grid of trilinear
/// samples spanning it (k = ceil(ratio)), which integrates instead of aliasing. Density outside the
/// inscribed sphere is cut so that the template can be turned without losing corners.
pub fn resample_to_cube(src: &Array3<f32>, src_voxel_a: f64, dst_voxel_a: f64) -> Array3<f32> {
    let (nz, ny, nx) = src.dim();
    let ratio = dst_voxel_a / src_voxel_a;
    let longest = nx.max(ny).max(nz) as f64;
    let half = ((longest / ratio) / 2.0).ceil() as usize + 1;
    let n = 2 * half + 1;
    let k = ratio.ceil().max(1.0) as usize;
    let cs = [
        (nx as f64 - 1.0) / 2.0,
        (ny as f64 - 1.0) / 2.0,
        (nz as f64 - 1.0) / 2.0,
    ];
    let h = half as f64;
    Array3::from_shape_fn((n, n, n), |(z, y, x)| {
        let d = [x as f64 - h, y as f64 - h, z as f64 - h];
        if d[0] * d[0] + d[1] * d[1] + d[2] * d[2] > h * h {
            return 0.0;
        }
        let mut acc = 0.0f64;
        for a in 0..k {
            for b in 0..k {
                for c in 0..k {
                    let off = |s: usize| ((s as f64 + 0.5) / k as f64 - 0.5) * ratio;
                    let sx = d[0] * ratio + cs[0] + off(c);
                    let sy = d[1] * ratio + cs[1] + off(b);
                    let sz = d[2] * ratio + cs[2] + off(a);
                    acc += trilinear(src, sx, sy, sz) as f64;
                }
            }
        }
        (acc / (k * k * k) as f64) as f32
    })
}

/// A class from a density map (MRC, any mode capsid-io reads), resampled to `voxel_size_a` and
/// scaled to a maximum of 1. The map's voxel size comes from its header; `fallback_voxel_a` is
/// used when the header says 0.
pub fn map_class(
    class_name: &str,
    path: &Path,
    voxel_size_a: f64,
    fallback_voxel_a: Option<f64>,
    mask_fraction: f64,
) -> Result<ClassModel, SimError> {
    let err = |message: String| SimError::Map {
        path: path.to_path_buf(),
        message,
    };
    let vol = capsid_io::mrc::read_volume(path)?;
    let mut src_voxel = vol.voxel_size_a[0] as f64;
    if !(src_voxel > 0.0 && src_voxel.is_finite()) {
        src_voxel = fallback_voxel_a.ok_or_else(|| {
            err("the header gives no voxel size; say it with map_voxel_size_a".into())
        })?;
    }
    if vol.data.iter().any(|v| !v.is_finite()) {
        return Err(err("the map holds NaN or infinite values".into()));
    }
    let mut density = resample_to_cube(&vol.data, src_voxel, voxel_size_a);
    let max = density.iter().cloned().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return Err(err("the map has no positive density".into()));
    }
    density.mapv_inplace(|v| (v / max).max(0.0));
    if density.dim().0 < 3 {
        return Err(err(format!(
            "the map is smaller than one voxel of {voxel_size_a} Å"
        )));
    }
    Ok(ClassModel::new(
        class_name,
        format!("map:{}", path.display()),
        density,
        voxel_size_a,
        mask_fraction,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_a_centred_sphere_centred() {
        let n = 41;
        let c = 20.0;
        let src = Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let r2 = (x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2);
            if r2 <= 100.0 {
                1.0
            } else {
                0.0
            }
        });
        let dst = resample_to_cube(&src, 2.0, 5.0);
        let m = dst.dim().0;
        let h = (m - 1) / 2;
        assert!(dst[[h, h, h]] > 0.95);
        // Radius 10 voxels × 2 Å = 20 Å = 4 voxels of 5 Å.
        assert!(
            dst[[h, h, h + 3]] > 0.7 && dst[[h, h, h + 5]] < 0.05,
            "{:?}",
            dst.slice(ndarray::s![h, h, ..])
        );
        let mass_src: f64 = src.iter().map(|&v| v as f64 * 8.0).sum();
        let mass_dst: f64 = dst.iter().map(|&v| v as f64 * 125.0).sum();
        assert!(
            (mass_src - mass_dst).abs() / mass_src < 0.03,
            "{mass_src} {mass_dst}"
        );
    }
}
