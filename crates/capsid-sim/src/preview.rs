//! PNG previews of a tomogram: the central XY and XZ slices, contrast stretched between the 1st
//! and 99th percentiles.

use crate::error::SimError;
use image::ImageEncoder;
use ndarray::{s, Array2, Array3, ArrayView2};
use std::path::Path;

/// An 8-bit grey image of `slice` (`[rows, cols]`), black at the 1st percentile, white at the 99th.
pub fn to_grey(slice: ArrayView2<f32>) -> Array2<u8> {
    let mut v: Vec<f32> = slice.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Array2::zeros(slice.dim());
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.99));
    let span = if hi > lo { hi - lo } else { 1.0 };
    slice.mapv(|x| (((x - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// Writes `grey` (`[rows, cols]`) as an 8-bit greyscale PNG, atomically.
pub fn write_png(path: &Path, grey: &Array2<u8>) -> Result<(), SimError> {
    let (h, w) = grey.dim();
    let data: Vec<u8> = grey.iter().copied().collect();
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(&data, w as u32, h as u32, image::ExtendedColorType::L8)
        .map_err(|e| SimError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    capsid_core::write_atomically(path, |f| std::io::Write::write_all(f, &buf))?;
    Ok(())
}

/// Writes `<stem>_xy.png` (central z section, y down) and `<stem>_xz.png` (central y section, z
/// down: the missing wedge shows here) of `volume` (`[z, y, x]`) into `dir`.
pub fn write_previews(dir: &Path, stem: &str, volume: &Array3<f32>) -> Result<(), SimError> {
    let (nz, ny, _) = volume.dim();
    write_png(
        &dir.join(format!("{stem}_xy.png")),
        &to_grey(volume.slice(s![nz / 2, .., ..])),
    )?;
    write_png(
        &dir.join(format!("{stem}_xz.png")),
        &to_grey(volume.slice(s![.., ny / 2, ..])),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_stretch_and_png_round_trip() {
        let a = Array2::from_shape_fn((10, 20), |(r, c)| (r * 20 + c) as f32);
        let g = to_grey(a.view());
        assert_eq!(g[[0, 0]], 0);
        assert_eq!(g[[9, 19]], 255);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.png");
        write_png(&p, &g).unwrap();
        let img = image::open(&p).unwrap().to_luma8();
        assert_eq!((img.width(), img.height()), (20, 10));
        assert_eq!(img.get_pixel(19, 9)[0], 255);
    }
}
