//! Picking speed on a SHREC-size label map: 512 × 512 × 200 voxels (x, y, z) with ~2,500
//! non-overlapping spheres of radius 4–10 voxels in four classes (radius 4, 6, 8, 10), placed at
//! random from a fixed seed. Target (issue 5): mean shift ≤ 10 s on 2 cores.
//!
//! Run: `cargo bench -p capsid-pick --bench pick` (set RAYON_NUM_THREADS to pin the thread count).

use capsid_core::{ClassDef, ClassTable, Volume};
use capsid_pick::{connected_components, mean_shift, ComponentParams, MeanShiftParams};
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array3;
use rand::{Rng, SeedableRng};

const SHAPE_ZYX: [usize; 3] = [200, 512, 512];
const RADII: [f64; 4] = [4.0, 6.0, 8.0, 10.0];
const N_PARTICLES: usize = 2500;

fn classes() -> ClassTable {
    ClassTable {
        classes: RADII
            .iter()
            .enumerate()
            .map(|(i, r)| ClassDef {
                name: format!("r{r}"),
                label: i as u8 + 1,
                radius_a: None,
                radius_vox: Some(*r),
                template: None,
                symmetry: None,
            })
            .collect(),
    }
}

/// The synthetic label map and the number of spheres placed.
fn label_map(seed: u64) -> (Volume<u8>, usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut m = Array3::<u8>::zeros(SHAPE_ZYX);
    let mut placed: Vec<([f64; 3], f64)> = Vec::new();
    let mut tries = 0;
    while placed.len() < N_PARTICLES && tries < 200_000 {
        tries += 1;
        let class = rng.gen_range(0..RADII.len());
        let r = RADII[class];
        let c = [
            rng.gen_range(r..SHAPE_ZYX[2] as f64 - 1.0 - r),
            rng.gen_range(r..SHAPE_ZYX[1] as f64 - 1.0 - r),
            rng.gen_range(r..SHAPE_ZYX[0] as f64 - 1.0 - r),
        ];
        // One voxel of gap so spheres never touch.
        let free = placed.iter().all(|(q, s)| {
            let d2 = (c[0] - q[0]).powi(2) + (c[1] - q[1]).powi(2) + (c[2] - q[2]).powi(2);
            d2 > (r + s + 1.0).powi(2)
        });
        if !free {
            continue;
        }
        placed.push((c, r));
        let ri = r.ceil() as isize;
        for dz in -ri..=ri {
            for dy in -ri..=ri {
                for dx in -ri..=ri {
                    let (x, y, z) = (
                        c[0].round() as isize + dx,
                        c[1].round() as isize + dy,
                        c[2].round() as isize + dz,
                    );
                    let d2 = (x as f64 - c[0]).powi(2)
                        + (y as f64 - c[1]).powi(2)
                        + (z as f64 - c[2]).powi(2);
                    if d2 <= r * r {
                        m[[z as usize, y as usize, x as usize]] = class as u8 + 1;
                    }
                }
            }
        }
    }
    (Volume::new(m, 10.0), placed.len())
}

fn bench(c: &mut Criterion) {
    let (vol, n) = label_map(42);
    let t = classes();
    let picks = mean_shift(&vol, &t, &MeanShiftParams::default()).expect("mean shift");
    let picks2 = mean_shift(
        &vol,
        &t,
        &MeanShiftParams {
            bin: 2,
            ..Default::default()
        },
    )
    .expect("mean shift bin 2");
    let comps = connected_components(&vol, &t, &ComponentParams::default()).expect("components");
    eprintln!(
        "label map 512x512x200, {n} spheres placed; picks: mean shift {}, mean shift bin 2 {}, components {}; threads {}",
        picks.len(),
        picks2.len(),
        comps.len(),
        rayon::current_num_threads()
    );
    let mut g = c.benchmark_group("pick_512x512x200");
    g.sample_size(10);
    g.bench_function("mean_shift", |b| {
        b.iter(|| mean_shift(&vol, &t, &MeanShiftParams::default()).map(|p| p.len()))
    });
    g.bench_function("mean_shift_bin2", |b| {
        b.iter(|| {
            mean_shift(
                &vol,
                &t,
                &MeanShiftParams {
                    bin: 2,
                    ..Default::default()
                },
            )
            .map(|p| p.len())
        })
    });
    g.bench_function("connected_components", |b| {
        b.iter(|| connected_components(&vol, &t, &ComponentParams::default()).map(|p| p.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
