//! Speed of `capsid simulate` stages at 256×256×128 voxels of 10 Å with SHREC-like crowding
//! (33 particles of each of the six built-in classes, the `default` preset).
//!
//! Run: `cargo bench -p capsid-sim --bench simulate`. The 512×512×200 figure is measured on the
//! binary instead (see the crate's README section in lib.rs docs / the report):
//! `/usr/bin/time -v capsid simulate --preset shrec-like --seed 1 --out /tmp/shrec`.

use capsid_sim::{build_classes, simulate_tomogram, SimConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench_default_preset(c: &mut Criterion) {
    let cfg = SimConfig::preset("default").expect("preset");
    let classes = build_classes(&cfg).expect("classes");
    let mut g = c.benchmark_group("simulate_256x256x128");
    g.sample_size(10);
    g.bench_function("whole_tomogram_in_memory", |b| {
        b.iter(|| simulate_tomogram(&cfg, &classes, 0, &mut |_| {}))
    });
    g.bench_function("build_classes", |b| {
        b.iter(|| build_classes(&cfg).expect("classes"))
    });
    g.finish();
}

criterion_group!(benches, bench_default_preset);
criterion_main!(benches);
