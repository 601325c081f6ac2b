//! OME-Zarr against MRC reading, warm cache on both sides, on the same 630 × 630 × 184 float32
//! tomogram (the CZII challenge's size; 279 MiB of noise-like values, which compress about as
//! badly as a real tomogram's): the whole volume, and the band reads `capsid segment` makes (64
//! sections × 64 rows × every column, every 39 voxels: patch 64, overlap 25). Two Zarr layouts:
//! the CZ cryoET Data Portal's (Zarr v2, 256³ chunks, blosc-lz4 level 5 with byte shuffle:
//! ome-zarr-py's `write_multiscale` with the portal's chunks and zarr's default compressor) and
//! what `capsid segment --zarr` writes (the same with 64³ chunks). Goal (issue 15): the portal's
//! layout ≤ 1.5 × MRC.
//!
//! Both sides allocate with mimalloc, the `capsid` binary's global allocator (with the system
//! allocator every decoded chunk and output came back as fresh pages that the kernel zeroes).
//!
//! Run: `cargo bench -p capsid-io --bench zarr` (add `-- --sample-size 10` for a quick run).

use capsid_core::Volume;
use capsid_io::mrc::{read_volume, write_volume, MrcMode};
use capsid_io::zarr::{write_ome_zarr, MapKind, OmeZarrOptions};
use capsid_io::VolumeSource;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array3;
use std::hint::black_box;
use std::path::Path;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Noise-like voxel values (a hash of the position), mean 0.
fn tomogram() -> Volume<f32> {
    let data = Array3::from_shape_fn((184, 630, 630), |(z, y, x)| {
        let mut h = (z as u64 * 630 + y as u64) * 630 + x as u64;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h % 10_000) as f32 * 1e-4 - 0.5
    });
    Volume::new(data, 10.0)
}

/// Every band segment reads at patch 64, overlap 25; returns the sum of the first voxels (so
/// nothing is optimised away).
fn segment_bands(source: &VolumeSource) -> f32 {
    let [nz, ny, _] = source.header().shape_zyx();
    let starts = |n: usize| {
        let mut s: Vec<usize> = (0..n.saturating_sub(64)).step_by(39).collect();
        s.push(n - 64);
        s
    };
    let mut acc = 0.0;
    for z0 in starts(nz) {
        for y0 in starts(ny) {
            acc += source.read_block(z0, 64, y0, 64).expect("band").data[[0, 0, 0]];
        }
    }
    acc
}

fn bench_zarr(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mrc = dir.path().join("tomo.mrc");
    write_volume(&mrc, &tomogram(), MrcMode::Float32).expect("write");
    let src = VolumeSource::open(&mrc).expect("open");
    let bytes = std::fs::metadata(&mrc).expect("stat").len();
    let mut stores = Vec::new();
    for (name, chunk) in [("portal", 256), ("capsid", 64)] {
        let zarr = dir.path().join(format!("{name}.zarr"));
        let opts = OmeZarrOptions {
            chunk,
            max_levels: 1,
            ..OmeZarrOptions::default()
        };
        write_ome_zarr(&src, &mrc, &zarr, &MapKind::Values, &opts).expect("zarr");
        eprintln!(
            "MRC {:.0} MiB, OME-Zarr ({name}: {chunk}³ chunks, blosc-lz4) {:.0} MiB",
            bytes as f64 / 1048576.0,
            folder_bytes(&zarr.join("0")) as f64 / 1048576.0
        );
        stores.push((name, zarr));
    }
    let mut g = c.benchmark_group("tomogram_630x630x184_f32");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("mrc_read_volume", |b| {
        b.iter(|| black_box(read_volume(&mrc).expect("read")))
    });
    for (name, zarr) in &stores {
        g.bench_function(format!("zarr_{name}_read_volume"), |b| {
            b.iter(|| black_box(read_volume(zarr).expect("read")))
        });
    }
    let mrc_src = VolumeSource::open(&mrc).expect("open");
    g.bench_function("mrc_segment_bands", |b| {
        b.iter(|| black_box(segment_bands(&mrc_src)))
    });
    for (name, zarr) in &stores {
        let source = VolumeSource::open(zarr).expect("open");
        g.bench_function(format!("zarr_{name}_segment_bands"), |b| {
            b.iter(|| black_box(segment_bands(&source)))
        });
    }
    g.finish();
}

/// Bytes of the files under `dir`.
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                folder_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

criterion_group!(benches, bench_zarr);
criterion_main!(benches);
