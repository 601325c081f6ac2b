//! Unit tests of the preprocessing steps, whole-array and streamed.

use super::*;
use capsid_core::volume::Volume;
use ndarray::{s, Array3};
use rand::{Rng, SeedableRng};

fn random(shape: (usize, usize, usize), seed: u64) -> Array3<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Array3::from_shape_simple_fn(shape, || rng.gen_range(-1.0f32..1.0))
}

fn max_abs_diff(a: &Array3<f32>, b: &Array3<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn binning_a_constant_stays_constant() {
    let a = Array3::<f32>::from_elem((9, 10, 13), 3.5);
    for f in [2, 3] {
        let m = bin_mean(a.view(), f);
        assert_eq!(m.dim(), (9 / f, 10 / f, 13 / f));
        assert!(m.iter().all(|&v| (v - 3.5).abs() < 1e-6));
        let fo = bin_fourier(a.view(), f);
        assert_eq!(fo.dim(), m.dim());
        assert!(fo.iter().all(|&v| (v - 3.5).abs() < 1e-5), "{fo:?}");
    }
}

#[test]
fn mean_binning_of_known_array() {
    // values = x + 10 y + 100 z on 4×4×4; 2×2×2 block means = (2x'+0.5) + 10(2y'+0.5) + 100(2z'+0.5).
    let a = Array3::from_shape_fn((4, 4, 5), |(z, y, x)| (x + 10 * y + 100 * z) as f32);
    let m = bin_mean(a.view(), 2);
    assert_eq!(m.dim(), (2, 2, 2));
    for ((z, y, x), &v) in m.indexed_iter() {
        let want =
            (2 * x) as f32 + 0.5 + 10.0 * ((2 * y) as f32 + 0.5) + 100.0 * ((2 * z) as f32 + 0.5);
        assert!((v - want).abs() < 1e-4, "{z} {y} {x}: {v} vs {want}");
    }
}

#[test]
fn fourier_binning_keeps_a_smooth_sinusoid() {
    // A periodic sinusoid of 2 cycles along x and 1 along z on 32×16×48: after binning by 2 it
    // must equal the same function sampled at old positions 2i.
    let (nz, ny, nx) = (32usize, 16usize, 48usize);
    let g = |z: f64, y: f64, x: f64| {
        (2.0 * std::f64::consts::PI * 2.0 * x / nx as f64).sin()
            * (2.0 * std::f64::consts::PI * z / nz as f64).cos()
            + 0.3 * (2.0 * std::f64::consts::PI * 3.0 * y / ny as f64).cos()
    };
    let a = Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        g(z as f64, y as f64, x as f64) as f32
    });
    let b = bin_fourier(a.view(), 2);
    let want = Array3::from_shape_fn((nz / 2, ny / 2, nx / 2), |(z, y, x)| {
        g(2.0 * z as f64, 2.0 * y as f64, 2.0 * x as f64) as f32
    });
    assert!(
        max_abs_diff(&b, &want) < 1e-5,
        "{}",
        max_abs_diff(&b, &want)
    );
    // Mean binning of the same signal is off by a measurable amount (it is not a resampling at
    // 2i), which shows the test can tell them apart.
    assert!(max_abs_diff(&bin_mean(a.view(), 2), &want) > 1e-2);
    // A frequency above the new Nyquist is removed.
    let hf = Array3::from_shape_fn((4, 4, 32), |(_, _, x)| {
        (2.0 * std::f32::consts::PI * 12.0 * x as f32 / 32.0).cos()
    });
    assert!(bin_fourier(hf.view(), 2).iter().all(|v| v.abs() < 1e-5));
}

#[test]
fn lowpass_removes_high_and_keeps_low_frequencies() {
    // cut-off 40 Å at 10 Å/voxel: σ ≈ 0.75 voxel. Period 2 voxels (20 Å) is gone; period 64
    // voxels (640 Å) stays (Gaussian gain exp(-2π²σ²/64²) ≈ 0.997).
    let sigma = lowpass_sigma_vox(40.0, 10.0);
    assert!(
        (sigma - 40.0 * (2.0 * 2f64.ln()).sqrt() / (2.0 * std::f64::consts::PI) / 10.0).abs()
            < 1e-12
    );
    let hi = Array3::from_shape_fn(
        (6, 8, 16),
        |(_, _, x)| if x % 2 == 0 { 1.0f32 } else { -1.0 },
    );
    let out = gaussian_lowpass(hi.view(), sigma);
    // Continuous gain at 0.5 / voxel is exp(-2π²σ²/4) ≈ 0.062; sampling folds the mirror
    // frequency onto it, so the discrete gain is about twice that.
    // (Interior only: the mirror boundary breaks the alternation at the x edges.)
    let peak = out
        .slice(s![.., .., 4..12])
        .iter()
        .fold(0f32, |a, b| a.max(b.abs()));
    assert!(peak < 0.15, "high frequency kept at {peak}");
    let lo = Array3::from_shape_fn((6, 8, 64), |(_, _, x)| {
        (2.0 * std::f32::consts::PI * x as f32 / 64.0).cos()
    });
    let out = gaussian_lowpass(lo.view(), sigma);
    // Away from the mirror edges the low frequency keeps ≥ 99 % of its amplitude.
    for x in 8..56 {
        assert!((out[[3, 4, x]] - lo[[3, 4, x]]).abs() < 0.01, "x={x}");
    }
    // Amplitude 0.5 at the cut-off frequency (1/40 Å⁻¹ = 0.25 voxel⁻¹, period 4 voxels).
    let c = Array3::from_shape_fn((1, 1, 64), |(_, _, x)| {
        (2.0 * std::f32::consts::PI * x as f32 / 4.0).cos()
    });
    let out = gaussian_lowpass(c.view(), sigma);
    assert!((out[[0, 0, 32]] - 0.5).abs() < 0.02, "{}", out[[0, 0, 32]]);
}

#[test]
fn zscore_and_clip() {
    let a = random((7, 9, 11), 1).mapv(|v| 5.0 + 3.0 * v);
    let z = zscore(a.view()).unwrap();
    let st = capsid_core::volume::stats(z.iter().map(|&v| v as f64));
    assert!(
        st.mean.abs() < 1e-6 && (st.rms - 1.0).abs() < 1e-5,
        "{st:?}"
    );
    let c = percentile_clip(a.view(), 1.0, 99.0).unwrap();
    let mut sorted: Vec<f32> = a.iter().copied().collect();
    sorted.sort_by(|x, y| x.total_cmp(y));
    let n = sorted.len() as f64;
    let frac_zero = c.iter().filter(|&&v| v == 0.0).count() as f64 / n;
    let frac_one = c.iter().filter(|&&v| v == 1.0).count() as f64 / n;
    assert!(
        (frac_zero - 0.01).abs() < 2.0 / n + 1e-9 && (frac_one - 0.01).abs() < 2.0 / n + 1e-9,
        "{frac_zero} {frac_one}"
    );
    assert!(c.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let h = {
        let mut h = Histogram::new(sorted[0], *sorted.last().unwrap());
        h.add(a.view());
        h
    };
    let exact = sorted[(0.5 * n) as usize];
    assert!(
        (h.percentile(50.0) - exact).abs() < 1e-3,
        "{} vs {exact}",
        h.percentile(50.0)
    );
    let mut bad = a.clone();
    bad[[1, 1, 1]] = f32::NAN;
    assert!(zscore(bad.view()).is_err());
}

#[test]
fn streamed_equals_whole_volume() {
    let a = random((23, 12, 14), 2);
    let vol = Volume {
        data: a.clone(),
        voxel_size_a: [5.0; 3],
        origin_a: [1.0, 2.0, 3.0],
    };
    for (method, bin) in [
        (BinMethod::Mean, 2),
        (BinMethod::Fourier, 2),
        (BinMethod::Mean, 1),
        (BinMethod::Fourier, 3),
    ] {
        for normalize in [
            Normalize::None,
            Normalize::Zscore,
            Normalize::Clip {
                low_pct: 0.5,
                high_pct: 99.5,
            },
        ] {
            let base = PrepConfig {
                bin,
                bin_method: method,
                lowpass_a: Some(30.0),
                normalize,
                slab: 1,
            };
            // Whole-array reference built from the pure functions.
            let binned = match (bin, method) {
                (1, _) => a.clone(),
                (_, BinMethod::Mean) => bin_mean(a.view(), bin),
                (_, BinMethod::Fourier) => bin_fourier(a.view(), bin),
            };
            let low = gaussian_lowpass(binned.view(), lowpass_sigma_vox(30.0, 5.0 * bin as f64));
            let want = match normalize {
                Normalize::None => low,
                Normalize::Zscore => zscore(low.view()).unwrap(),
                Normalize::Clip { low_pct, high_pct } => {
                    percentile_clip(low.view(), low_pct, high_pct).unwrap()
                }
            };
            for slab in [1, 3, 7, 100] {
                let got = prep_volume(&vol, &PrepConfig { slab, ..base }).unwrap();
                assert_eq!(
                    got.data, want,
                    "{method:?} bin {bin} {normalize:?} slab {slab}"
                );
                assert_eq!(got.voxel_size_a, [5.0 * bin as f32; 3]);
            }
        }
    }
}

#[test]
fn plan_updates_grid_and_rejects_bad_settings() {
    let cfg = PrepConfig {
        bin: 2,
        bin_method: BinMethod::Mean,
        ..Default::default()
    };
    let p = plan([10, 20, 31], [4.0; 3], [100.0, 0.0, -8.0], &cfg).unwrap();
    assert_eq!(p.shape_zyx, [5, 10, 15]);
    assert_eq!(p.voxel_size_a, [8.0; 3]);
    assert_eq!(p.origin_a, [102.0, 2.0, -6.0]);
    let p = plan(
        [10, 20, 31],
        [4.0; 3],
        [100.0, 0.0, -8.0],
        &PrepConfig {
            bin: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.origin_a, [100.0, 0.0, -8.0]);
    assert!(plan([1, 20, 31], [4.0; 3], [0.0; 3], &cfg)
        .unwrap_err()
        .to_string()
        .contains("smaller than the bin"));
    let no_vs = PrepConfig {
        lowpass_a: Some(40.0),
        ..Default::default()
    };
    assert!(plan([4, 4, 4], [0.0; 3], [0.0; 3], &no_vs)
        .unwrap_err()
        .to_string()
        .contains("voxel size"));
    for bad in [
        PrepConfig {
            bin: 0,
            ..Default::default()
        },
        PrepConfig {
            slab: 0,
            ..Default::default()
        },
        PrepConfig {
            lowpass_a: Some(-1.0),
            ..Default::default()
        },
        PrepConfig {
            normalize: Normalize::Clip {
                low_pct: 99.0,
                high_pct: 1.0,
            },
            ..Default::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}
