//! Turning planes into pictures: Gaussian low-pass, percentile contrast, 8-bit PNG.

/// The normalised 1D Gaussian kernel of standard deviation `sigma` (pixels or voxels), with its
/// radius `r = ⌈3σ⌉`: `2r + 1` taps summing to 1.
pub(crate) fn gaussian_kernel(sigma: f32) -> (Vec<f32>, isize) {
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    (k, r)
}

/// Separable Gaussian low-pass of a `w × h` plane with standard deviation `sigma` pixels (edges
/// clamped). `sigma <= 0` leaves the plane as it is.
pub fn gaussian_blur(w: usize, h: usize, data: &mut [f32], sigma: f32) {
    if sigma <= 0.0 || w == 0 || h == 0 {
        return;
    }
    let (k, r) = gaussian_kernel(sigma);
    let mut tmp = vec![0f32; w * h];
    // Along x.
    for y in 0..h {
        let row = &data[y * w..(y + 1) * w];
        let out = &mut tmp[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (j, kv) in k.iter().enumerate() {
                let xx = (x as isize + j as isize - r).clamp(0, w as isize - 1) as usize;
                acc += kv * row[xx];
            }
            *o = acc;
        }
    }
    // Along y: accumulate whole rows (cache friendly).
    data.iter_mut().for_each(|v| *v = 0.0);
    for y in 0..h {
        let out = &mut data[y * w..(y + 1) * w];
        for (j, kv) in k.iter().enumerate() {
            let yy = (y as isize + j as isize - r).clamp(0, h as isize - 1) as usize;
            let src = &tmp[yy * w..(yy + 1) * w];
            for (o, s) in out.iter_mut().zip(src) {
                *o += kv * s;
            }
        }
    }
}

/// The `lo` and `hi` percentiles (0..100) of the finite values in `values` (reordered).
pub fn percentiles(values: &mut Vec<f32>, lo: f32, hi: f32) -> (f32, f32) {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let n = values.len();
    let at = |p: f32| (((p / 100.0).clamp(0.0, 1.0) * (n - 1) as f32).round() as usize).min(n - 1);
    let (il, ih) = (at(lo), at(hi));
    let vl = *values.select_nth_unstable_by(il, f32::total_cmp).1;
    let vh = *values.select_nth_unstable_by(ih, f32::total_cmp).1;
    if vh > vl {
        (vl, vh)
    } else {
        (vl, vl + 1e-6_f32.max(vl.abs() * 1e-6))
    }
}

/// Maps values linearly from `[lo, hi]` to 0..=255 (clipped; NaN → 0), inverted if `invert`.
pub fn to_u8(values: &[f32], lo: f32, hi: f32, invert: bool) -> Vec<u8> {
    let scale = 255.0 / (hi - lo);
    values
        .iter()
        .map(|v| {
            let t = ((v - lo) * scale).clamp(0.0, 255.0);
            let t = if t.is_nan() { 0.0 } else { t };
            let b = (t + 0.5) as u8;
            if invert {
                255 - b
            } else {
                b
            }
        })
        .collect()
}

/// Encodes an 8-bit grayscale `w × h` image as PNG (fast compression: slices change often).
pub fn encode_png_gray(w: usize, h: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() / 2 + 1024);
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        // Writing into a Vec cannot fail for valid dimensions; an empty result is reported upstream.
        if let Ok(mut w) = enc.write_header() {
            let _ = w.write_image_data(pixels);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_the_mean_and_spreads_a_peak() {
        let (w, h) = (21, 15);
        let mut d = vec![0f32; w * h];
        d[7 * w + 10] = 1.0;
        gaussian_blur(w, h, &mut d, 1.5);
        let s: f32 = d.iter().sum();
        assert!((s - 1.0).abs() < 1e-4);
        let peak = d
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(peak, 7 * w + 10);
        assert!(d[7 * w + 11] > 0.0 && d[7 * w + 11] < d[7 * w + 10]);
    }

    #[test]
    fn percentiles_and_bytes() {
        let mut v: Vec<f32> = (0..101).map(|i| i as f32).collect();
        let (lo, hi) = percentiles(&mut v, 1.0, 99.0);
        assert_eq!((lo, hi), (1.0, 99.0));
        assert_eq!(
            to_u8(&[1.0, 99.0, 50.0, -5.0], 1.0, 99.0, false),
            vec![0, 255, 128, 0]
        );
        assert_eq!(to_u8(&[1.0], 1.0, 99.0, true), vec![255]);
        let png = encode_png_gray(3, 2, &[0, 1, 2, 3, 4, 5]);
        assert_eq!(&png[1..4], b"PNG");
    }
}
