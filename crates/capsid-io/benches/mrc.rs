//! MRC read/write speed on a 512 × 512 × 200 float32 tomogram (200 MiB), against a plain
//! `std::fs::read` of the same file as the ceiling for reading.
//!
//! Run: `cargo bench -p capsid-io --bench mrc` (add `-- --sample-size 10` for a quick run).

use capsid_core::Volume;
use capsid_io::mrc::{read_slab, read_volume, write_volume, MrcMode};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array3;
use std::hint::black_box;

fn tomogram() -> Volume<f32> {
    let data = Array3::from_shape_fn((200, 512, 512), |(z, y, x)| {
        ((x * 7 + y * 13 + z * 31) % 1000) as f32 * 0.01 - 5.0
    });
    Volume::new(data, 10.0)
}

fn bench_mrc(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tomo.mrc");
    let vol = tomogram();
    write_volume(&path, &vol, MrcMode::Float32).expect("write");
    let bytes = std::fs::metadata(&path).expect("stat").len();

    let mut g = c.benchmark_group("mrc_512x512x200_f32");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("std_fs_read_ceiling", |b| {
        b.iter(|| black_box(std::fs::read(&path).expect("read")))
    });
    g.bench_function("read_volume", |b| {
        b.iter(|| black_box(read_volume(&path).expect("read")))
    });
    g.bench_function("read_slab_32", |b| {
        b.iter(|| black_box(read_slab(&path, 84, 32).expect("slab")))
    });
    let out = dir.path().join("out.mrc");
    g.bench_function("write_volume_f32", |b| {
        b.iter(|| write_volume(&out, &vol, MrcMode::Float32).expect("write"))
    });
    let out16 = dir.path().join("out16.mrc");
    g.bench_function("write_volume_f16", |b| {
        b.iter(|| write_volume(&out16, &vol, MrcMode::Float16).expect("write"))
    });
    g.finish();
}

criterion_group!(benches, bench_mrc);
criterion_main!(benches);
