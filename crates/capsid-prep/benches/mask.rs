//! Mask generation speed: spheres of three class radii (6, 8 and 10 voxels, as SHREC's classes)
//! at uniformly random positions (seed 7), label map only and label + instance maps.
//! Sizes: 2,000 particles on 512×512×200 (the target) and 200 particles on 128×128×64.

use capsid_core::{ClassTable, Particle};
use capsid_prep::mask::{sphere_masks, MaskGrid, MaskOptions};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use std::path::Path;

fn classes() -> ClassTable {
    let text = "[[class]]\nname='a'\nlabel=1\nradius_vox=6.0\n\
                [[class]]\nname='b'\nlabel=2\nradius_vox=8.0\n\
                [[class]]\nname='c'\nlabel=3\nradius_vox=10.0\n";
    ClassTable::from_toml_str(text, Path::new("bench")).expect("valid class table")
}

fn particles(n: usize, shape_zyx: [usize; 3]) -> Vec<Particle> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let names = ["a", "b", "c"];
    (0..n)
        .map(|i| {
            Particle::new(
                names[i % 3],
                rng.gen_range(0.0..(shape_zyx[2] - 1) as f64),
                rng.gen_range(0.0..(shape_zyx[1] - 1) as f64),
                rng.gen_range(0.0..(shape_zyx[0] - 1) as f64),
            )
        })
        .collect()
}

fn bench_masks(c: &mut Criterion) {
    let table = classes();
    let mut group = c.benchmark_group("sphere_masks");
    group.sample_size(10);
    for (n, shape) in [(200usize, [64usize, 128, 128]), (2000, [200, 512, 512])] {
        let grid = MaskGrid::new(shape, 10.0);
        let ps = particles(n, shape);
        let id = format!("{n}p_{}x{}x{}", shape[2], shape[1], shape[0]);
        group.bench_with_input(BenchmarkId::new("labels", &id), &ps, |b, ps| {
            b.iter(|| sphere_masks(&grid, ps, &table, &MaskOptions::default()).expect("masks"))
        });
        let opts = MaskOptions {
            instances: true,
            ..MaskOptions::default()
        };
        group.bench_with_input(BenchmarkId::new("labels+instances", &id), &ps, |b, ps| {
            b.iter(|| sphere_masks(&grid, ps, &table, &opts).expect("masks"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_masks);
criterion_main!(benches);
