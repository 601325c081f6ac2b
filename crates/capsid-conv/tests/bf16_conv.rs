//! Convolutions with bf16 products (`ConvSettings::precision`), against the plain-loop references.
//! A test binary of its own: the precision is a process-wide setting, and the crate's other tests
//! expect f32.
//!
//! Where the kernel multiplies the inputs themselves (im2col and implicit GEMM paths) its result
//! must equal the reference computed on bf16-rounded inputs to f32 rounding; on the Winograd path
//! the transformed tiles are rounded instead, so it must be within bf16 precision of the exact
//! result. On a CPU without AVX512-BF16 the setting falls back to f32 and these tests say so.

use capsid_conv::bf16::{available, round_bf16};
use capsid_conv::{naive, Conv3dGeometry, ConvSettings, Precision};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn geometry(c: [usize; 2], in_dhw: [usize; 3], stride: usize, batch: usize) -> Conv3dGeometry {
    Conv3dGeometry {
        batch,
        c_in: c[0],
        c_out: c[1],
        in_dhw,
        kernel: [3; 3],
        stride: [stride; 3],
        padding: [1; 3],
        dilation: [1; 3],
        groups: 1,
    }
}

/// max |a − b| / (1 + max |b|).
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = 1.0 + b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()))
        / scale
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn rounded(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| round_bf16(x)).collect()
}

#[test]
fn bf16_products_in_every_pass() {
    capsid_conv::set_settings(ConvSettings {
        precision: Precision::Bf16,
        ..ConvSettings::default()
    });
    if !available() {
        assert_eq!(Precision::Bf16.in_use(), Precision::F32);
        eprintln!(
            "no AVX512-BF16 on this CPU: bf16 convolutions fall back to f32, not tested here"
        );
        return;
    }
    assert_eq!(capsid_conv::settings().precision, Precision::Bf16);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Stride 2 and few channels: im2col / implicit GEMM on the inputs themselves.
    for g in [
        geometry([3, 5], [7, 6, 9], 2, 2),
        geometry([8, 12], [6, 7, 10], 1, 1),
    ] {
        let x = random(&mut rng, g.input_len());
        let w = random(&mut rng, g.weight_len());
        let dy = random(&mut rng, g.output_len());
        let (xr, wr, dyr) = (rounded(&x), rounded(&w), rounded(&dy));
        let checks = [
            (
                "forward",
                capsid_conv::conv3d_forward(&g, &x, &w, None),
                naive::conv3d_forward(&g, &xr, &wr, None),
                naive::conv3d_forward(&g, &x, &w, None),
            ),
            (
                "backward data",
                capsid_conv::conv3d_backward_data(&g, &dy, &w),
                naive::conv3d_backward_data(&g, &dyr, &wr),
                naive::conv3d_backward_data(&g, &dy, &w),
            ),
            (
                "backward weight",
                capsid_conv::conv3d_backward_weight(&g, &x, &dy),
                naive::conv3d_backward_weight(&g, &xr, &dyr),
                naive::conv3d_backward_weight(&g, &x, &dy),
            ),
        ];
        for (pass, got, want_rounded, exact) in checks {
            let d = rel_diff(&got, &want_rounded);
            assert!(
                d < 2e-5,
                "{pass} {g:?}: {d} from the bf16-rounded reference"
            );
            // And the products really were bf16: the exact f32 result differs.
            let e = rel_diff(&got, &exact);
            assert!(e > 1e-5, "{pass} {g:?}: {e} from f32, bf16 not in use?");
        }
    }
    // Winograd (stride 1, 3×3×3, ≥ 16 channels, wide rows).
    let g = geometry([16, 24], [5, 7, 17], 1, 2);
    let x = random(&mut rng, g.input_len());
    let w = random(&mut rng, g.weight_len());
    let got = capsid_conv::conv3d_forward(&g, &x, &w, None);
    let exact = naive::conv3d_forward(&g, &x, &w, None);
    let d = rel_diff(&got, &exact);
    assert!(d < 1e-2 && d > 1e-5, "winograd forward: {d} from f32");
}

#[test]
fn bf16_results_do_not_depend_on_thread_count() {
    capsid_conv::set_settings(ConvSettings {
        precision: Precision::Bf16,
        ..ConvSettings::default()
    });
    if !available() {
        eprintln!("no AVX512-BF16 on this CPU: not tested here");
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    // One batch item and a large layer: few tasks, so the products themselves split rows.
    let g = geometry([20, 24], [6, 9, 40], 1, 1);
    let x = random(&mut rng, g.input_len());
    let w = random(&mut rng, g.weight_len());
    let dy = random(&mut rng, g.output_len());
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            (
                capsid_conv::conv3d_forward(&g, &x, &w, None),
                capsid_conv::conv3d_backward_data(&g, &dy, &w),
                capsid_conv::conv3d_backward_weight(&g, &x, &dy),
            )
        })
    };
    assert!(
        run(1) == run(3),
        "bf16 results differ between 1 and 3 threads"
    );
}
