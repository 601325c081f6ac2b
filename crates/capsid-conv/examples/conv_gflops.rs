//! Speed of capsid-conv on the layer shapes of capsid's networks (batch 4) against this machine's
//! GEMM peak (the gemm crate on a large square f32 product, same threads).
//!
//! Run: `cargo run --release -p capsid-conv --example conv_gflops -- [--threads 2] [--filter unet]
//! [--patch 32] [--no-winograd]`. Prints one row per shape: ms (median) and GFLOP/s of forward, backward-data and
//! backward-weight, and each as a percentage of the peak.

/// The capsid binary's allocator: with the system allocator each large output is a fresh
/// mmap, and its unmapping (TLB shootdowns on a VM) can outweigh a kernel's own time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use capsid_conv::*;
use std::time::Instant;

/// A layer shape to time: a convolution or a transposed convolution.
enum Layer {
    Conv(Conv3dGeometry),
    Transposed(ConvTranspose3dGeometry),
}

fn conv(
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: usize,
    k: usize,
    s: usize,
    pad: usize,
) -> Layer {
    Layer::Conv(Conv3dGeometry {
        batch,
        c_in,
        c_out,
        in_dhw: [size; 3],
        kernel: [k; 3],
        stride: [s; 3],
        padding: [pad; 3],
        dilation: [1; 3],
        groups: 1,
    })
}

/// A stride-2 transposed convolution of a `size`³ input: kernel 2 without padding (UCaps' decoder)
/// or kernel 3 with padding 1 and output padding 1 (the UNet's up-step: nearest ×2 upsampling,
/// end padding and a 2×2×2 convolution, as one transposed convolution).
fn tconv(batch: usize, c_in: usize, c_out: usize, size: usize, k: usize) -> Layer {
    let pad = usize::from(k == 3);
    Layer::Transposed(ConvTranspose3dGeometry {
        batch,
        c_in,
        c_out,
        in_dhw: [size; 3],
        kernel: [k; 3],
        stride: [2; 3],
        padding: [pad; 3],
        padding_out: [pad; 3],
        dilation: [1; 3],
        groups: 1,
    })
}

/// capsid's layers at patch `p`, batch 4 (3 classes for the logits layers).
fn layers(p: usize) -> Vec<(String, Layer)> {
    let b = 4;
    let (h, q) = (p / 2, p / 4);
    vec![
        (format!("unet 1→32 k3 {p}³"), conv(b, 1, 32, p, 3, 1, 1)),
        (format!("unet 32→32 k3 {p}³"), conv(b, 32, 32, p, 3, 1, 1)),
        (format!("unet 32→48 k3 {h}³"), conv(b, 32, 48, h, 3, 1, 1)),
        (format!("unet 48→48 k3 {h}³"), conv(b, 48, 48, h, 3, 1, 1)),
        (format!("unet 48→64 k3 {q}³"), conv(b, 48, 64, q, 3, 1, 1)),
        (format!("unet 64→64 k3 {q}³"), conv(b, 64, 64, q, 3, 1, 1)),
        (
            format!("unet up 64→64 k3s2 {q}³→{h}³"),
            tconv(b, 64, 64, q, 3),
        ),
        (format!("unet 112→48 k3 {h}³"), conv(b, 112, 48, h, 3, 1, 1)),
        (
            format!("unet up 48→48 k3s2 {h}³→{p}³"),
            tconv(b, 48, 48, h, 3),
        ),
        (format!("unet 80→32 k3 {p}³"), conv(b, 80, 32, p, 3, 1, 1)),
        (format!("unet out 32→3 k1 {p}³"), conv(b, 32, 3, p, 1, 1, 0)),
        (format!("ucaps 1→16 k5 {p}³"), conv(b, 1, 16, p, 5, 1, 2)),
        (format!("ucaps 16→32 k5 {p}³"), conv(b, 16, 32, p, 5, 1, 2)),
        (format!("ucaps 32→64 k5 {p}³"), conv(b, 32, 64, p, 5, 1, 2)),
        (
            format!("caps primary 64→64 k3 {p}³"),
            conv(b, 64, 64, p, 3, 1, 1),
        ),
        (
            format!("caps B64 4→128 k3 s2 {p}³"),
            conv(b * 16, 4, 128, p, 3, 2, 1),
        ),
        (
            format!("caps B64 8→128 k3 {h}³"),
            conv(b * 16, 8, 128, h, 3, 1, 1),
        ),
        (
            format!("caps B64 8→128 k3 s2 {h}³"),
            conv(b * 16, 8, 128, h, 3, 2, 1),
        ),
        (
            format!("caps B32 16→128 k3 {q}³"),
            conv(b * 8, 16, 128, q, 3, 1, 1),
        ),
        (
            format!("caps B32 16→256 k3 s2 {q}³"),
            conv(b * 8, 16, 256, q, 3, 2, 1),
        ),
        (
            format!("ucaps tconv 192→256 k2s2 {}³", p / 8),
            tconv(b, 192, 256, p / 8, 2),
        ),
        (
            format!("ucaps 384→128 k3 {q}³"),
            conv(b, 384, 128, q, 3, 1, 1),
        ),
        (
            format!("ucaps tconv 128→128 k2s2 {q}³"),
            tconv(b, 128, 128, q, 2),
        ),
        (
            format!("ucaps 256→64 k3 {h}³"),
            conv(b, 256, 64, h, 3, 1, 1),
        ),
        (
            format!("ucaps tconv 64→64 k2s2 {h}³"),
            tconv(b, 64, 64, h, 2),
        ),
        (
            format!("ucaps recon 128→64 k1 {p}³"),
            conv(b, 128, 64, p, 1, 1, 0),
        ),
    ]
}

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

/// Median wall time in ms of `f`, over at least 3 runs and about 1.5 s (after one warm-up).
fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed().as_secs_f64() < 1.5 && times.len() < 50) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

/// GFLOP/s of the gemm crate on an n×n×n f32 product with `threads` threads.
fn gemm_peak(n: usize, threads: usize) -> f64 {
    let a = data(n * n);
    let b = data(n * n);
    let mut c = vec![0.0f32; n * n];
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: a, b and c are n × n, row-major, and c is not aliased.
    let ms = median_ms(|| unsafe {
        gemm::gemm(
            n,
            n,
            n,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            n as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    });
    2.0 * (n * n * n) as f64 / ms / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads: usize = opt("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let patch: usize = opt("--patch").and_then(|s| s.parse().ok()).unwrap_or(32);
    if args.iter().any(|a| a == "--no-winograd") {
        capsid_conv::set_settings(capsid_conv::ConvSettings {
            winograd: false,
            ..capsid_conv::settings()
        });
    }
    let filter = opt("--filter").unwrap_or_default();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    let peak = gemm_peak(2048, threads);
    println!("threads {threads}, patch {patch}, batch 4; gemm peak (2048³ f32): {peak:.1} GFLOP/s");
    println!(
        "{:<32} {:>8} {:>8} {:>5} | {:>8} {:>8} {:>5} | {:>8} {:>8} {:>5}",
        "layer",
        "fwd ms",
        "GFLOP/s",
        "%pk",
        "bwdD ms",
        "GFLOP/s",
        "%pk",
        "bwdW ms",
        "GFLOP/s",
        "%pk"
    );
    for (name, layer) in layers(patch) {
        if !name.contains(&filter) {
            continue;
        }
        let (flops, times) = match &layer {
            Layer::Conv(g) => {
                let (x, w, dy) = (
                    data(g.input_len()),
                    data(g.weight_len()),
                    data(g.output_len()),
                );
                (
                    g.flops(),
                    [
                        median_ms(|| drop(conv3d_forward(g, &x, &w, None))),
                        median_ms(|| drop(conv3d_backward_data(g, &dy, &w))),
                        median_ms(|| drop(conv3d_backward_weight(g, &x, &dy))),
                    ],
                )
            }
            Layer::Transposed(g) => {
                let (x, w, dy) = (
                    data(g.input_len()),
                    data(g.weight_len()),
                    data(g.output_len()),
                );
                (
                    g.flops(),
                    [
                        median_ms(|| drop(conv_transpose3d_forward(g, &x, &w, None))),
                        median_ms(|| drop(conv_transpose3d_backward_data(g, &dy, &w))),
                        median_ms(|| drop(conv_transpose3d_backward_weight(g, &x, &dy))),
                    ],
                )
            }
        };
        print!("{name:<32}");
        for ms in times {
            let gf = flops / ms / 1e6;
            print!(" {ms:>8.2} {gf:>8.1} {:>4.0}% |", 100.0 * gf / peak);
        }
        println!();
    }
}
