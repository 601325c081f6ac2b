//! Criterion bench of capsid-conv on a few of capsid's main layer shapes (batch 4). The thread
//! count is rayon's default (set RAYON_NUM_THREADS=2 to match capsid's runs).

use capsid_conv::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn geometry(c_in: usize, c_out: usize, size: usize, k: usize, s: usize) -> Conv3dGeometry {
    Conv3dGeometry {
        batch: 4,
        c_in,
        c_out,
        in_dhw: [size; 3],
        kernel: [k; 3],
        stride: [s; 3],
        padding: [k / 2; 3],
        dilation: [1; 3],
        groups: 1,
    }
}

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn bench_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv3d");
    group.sample_size(10);
    for (name, g) in [
        ("unet_32to32_k3_32c", geometry(32, 32, 32, 3, 1)),
        ("unet_64to64_k3_16c", geometry(64, 64, 16, 3, 1)),
        ("ucaps_1to16_k5_32c", geometry(1, 16, 32, 5, 1)),
        ("caps_vote_64to64_k3_32c", geometry(64, 64, 32, 3, 1)),
        (
            "caps_vote_4to128_k3_s2_32c",
            Conv3dGeometry {
                batch: 64,
                ..geometry(4, 128, 32, 3, 2)
            },
        ),
    ] {
        let x = data(g.input_len());
        let w = data(g.weight_len());
        let dy = data(g.output_len());
        group.throughput(Throughput::Elements(g.flops() as u64));
        group.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| conv3d_forward(&g, &x, &w, None))
        });
        group.bench_function(format!("{name}/backward_data"), |b| {
            b.iter(|| conv3d_backward_data(&g, &dy, &w))
        });
        group.bench_function(format!("{name}/backward_weight"), |b| {
            b.iter(|| conv3d_backward_weight(&g, &x, &dy))
        });
    }
    let t = ConvTranspose3dGeometry {
        batch: 4,
        c_in: 64,
        c_out: 64,
        in_dhw: [16; 3],
        kernel: [2; 3],
        stride: [2; 3],
        padding: [0; 3],
        padding_out: [0; 3],
        dilation: [1; 3],
        groups: 1,
    };
    let x = data(t.input_len());
    let w = data(t.weight_len());
    let dy = data(t.output_len());
    group.throughput(Throughput::Elements(t.flops() as u64));
    group.bench_function("tconv_64to64_k2s2_16c/forward", |b| {
        b.iter(|| conv_transpose3d_forward(&t, &x, &w, None))
    });
    group.bench_function("tconv_64to64_k2s2_16c/backward_data", |b| {
        b.iter(|| conv_transpose3d_backward_data(&t, &dy, &w))
    });
    group.bench_function("tconv_64to64_k2s2_16c/backward_weight", |b| {
        b.iter(|| conv_transpose3d_backward_weight(&t, &x, &dy))
    });
    group.finish();
}

criterion_group!(benches, bench_conv);
criterion_main!(benches);
