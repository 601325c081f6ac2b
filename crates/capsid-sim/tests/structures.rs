//! Classes from real atomic models in ../shared/data/structures (skipped with a message when the
//! folder is absent, as in a user's checkout).

use capsid_sim::library::model_class;
use std::path::PathBuf;
use std::time::Instant;

fn structure(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/structures")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} not found (shared test data absent)",
            p.display()
        );
        None
    }
}

/// Mean density in spherical shells 5 Å wide about the template centre.
fn radial_profile(d: &ndarray::Array3<f32>, voxel_a: f64) -> Vec<f64> {
    let c = ((d.dim().0 - 1) / 2) as f64;
    let mut sum = vec![0.0; 60];
    let mut n = vec![0.0; 60];
    for ((z, y, x), &v) in d.indexed_iter() {
        let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2)).sqrt()
            * voxel_a;
        let k = (r / 5.0) as usize;
        if k < 60 {
            sum[k] += v as f64;
            n[k] += 1.0;
        }
    }
    sum.iter()
        .zip(&n)
        .map(|(s, n)| if *n > 0.0 { s / n } else { 0.0 })
        .collect()
}

#[test]
fn apoferritin_pdb_renders_as_a_hollow_shell() {
    let Some(p) = structure("6z6u.pdb") else {
        return;
    };
    let m = model_class("apoferritin", &p, 5.0, 10.0, 0.3).unwrap();
    let prof = radial_profile(&m.density, 5.0);
    let peak_shell = (0..prof.len())
        .max_by(|&a, &b| prof[a].total_cmp(&prof[b]))
        .unwrap();
    let peak_r = peak_shell as f64 * 5.0 + 2.5;
    // Apoferritin: outer diameter ≈ 12 nm, cavity ≈ 8 nm: the protein shell lies at 40–60 Å.
    assert!(
        (40.0..=62.5).contains(&peak_r),
        "densest shell at {peak_r} Å: {prof:?}"
    );
    let centre = prof[..4].iter().sum::<f64>() / 4.0; // r < 20 Å
    assert!(
        centre < 0.1 * prof[peak_shell],
        "cavity {centre} vs shell {}",
        prof[peak_shell]
    );
    assert!(
        prof[16] < 0.1 * prof[peak_shell],
        "nothing beyond 80 Å: {}",
        prof[16]
    );
    let r = m.radius_a();
    assert!((55.0..80.0).contains(&r), "radius {r} Å");
}

#[test]
fn ribosome_mmcif_parses_and_has_ribosome_size() {
    let Some(p) = structure("4v5d.cif") else {
        return;
    };
    let t = Instant::now();
    let m = model_class("ribosome70s", &p, 10.0, 20.0, 0.3).unwrap();
    eprintln!("4v5d.cif → template in {:.1} s", t.elapsed().as_secs_f64());
    let r = m.radius_a();
    // The 70S ribosome is ≈ 25 nm across (two copies in the asymmetric unit would be far larger).
    assert!((110.0..170.0).contains(&r), "radius {r} Å");
    let mass: f64 = m.density.iter().map(|&v| v as f64).sum::<f64>() * 1000.0 * 0.81 / 1e6;
    eprintln!("≈ {mass:.2} MDa equivalent");
}
