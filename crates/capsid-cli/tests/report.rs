//! `capsid report` on a hand-made small run folder.

use capsid_core::{Particle, Volume};
use capsid_io::mrc::{write_labels, write_volume, LabelMode, MrcMode};
use capsid_io::particles::{write_particles, WriteOptions};
use ndarray::Array3;
use std::path::Path;

mod common;
use common::*;

/// A 16×24×24 (z, y, x) run: one class "ball" of radius 3 voxels, two particles, the prediction
/// finds one and adds a false one; stage timings and an evaluation summary.
fn write_run(dir: &Path) {
    let sim = dir.join("sim");
    std::fs::create_dir_all(&sim).unwrap();
    std::fs::write(
        sim.join("class_table.toml"),
        "[[class]]\nname = \"ball\"\nlabel = 1\nradius_vox = 3.0\n",
    )
    .unwrap();
    let ball = |labels: &mut Array3<u8>, c: [f64; 3]| {
        for ((z, y, x), v) in labels.indexed_iter_mut() {
            let d2 =
                (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) + (z as f64 - c[2]).powi(2);
            if d2 <= 9.0 {
                *v = 1;
            }
        }
    };
    let mut truth = Array3::<u8>::zeros((16, 24, 24));
    ball(&mut truth, [6.0, 12.0, 8.0]);
    ball(&mut truth, [17.0, 12.0, 8.0]);
    let mut pred = Array3::<u8>::zeros((16, 24, 24));
    ball(&mut pred, [6.0, 12.0, 8.0]);
    ball(&mut pred, [12.0, 4.0, 8.0]);
    let tomo = truth.mapv(|l| if l > 0 { -1.0f32 } else { 0.0 })
        + Array3::from_shape_fn((16, 24, 24), |(z, y, x)| {
            ((x * 7 + y * 3 + z) % 5) as f32 * 0.1
        });
    write_volume(
        &sim.join("reconstruction.mrc"),
        &Volume::new(tomo, 10.0),
        MrcMode::Float32,
    )
    .unwrap();
    write_labels(
        &sim.join("class_mask.mrc"),
        &Volume::new(truth, 10.0),
        LabelMode::Uint8Mode0,
    )
    .unwrap();
    let truth_p = vec![
        Particle::new("ball", 6.0, 12.0, 8.0),
        Particle::new("ball", 17.0, 12.0, 8.0),
    ];
    write_particles(
        &sim.join("particle_locations.txt"),
        &truth_p,
        &WriteOptions::default(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("segment")).unwrap();
    write_labels(
        &dir.join("segment/reconstruction_labels.mrc"),
        &Volume::new(pred, 10.0),
        LabelMode::Uint16Mode6,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("pick")).unwrap();
    let picks = vec![
        Particle::new("ball", 6.0, 12.0, 8.0),
        Particle::new("ball", 12.0, 4.0, 8.0),
    ];
    write_particles(
        &dir.join("pick/reconstruction_picks.csv"),
        &picks,
        &WriteOptions::default(),
    )
    .unwrap();
    std::fs::write(
        dir.join("timings.json"),
        r#"{"stages":[{"name":"simulate","seconds":1.5},{"name":"segment","seconds":0.25}]}"#,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("eval")).unwrap();
    // capsid evaluate's summary of these picks against the truth (1 TP, 1 FP, 1 FN).
    let table = capsid_core::ClassTable::from_toml_str(
        "[[class]]\nname = \"ball\"\nlabel = 1\nradius_vox = 3.0\n",
        Path::new("classes.toml"),
    )
    .unwrap();
    let eval = capsid_eval::evaluate_picks(
        &picks,
        &truth_p,
        &table,
        &capsid_eval::EvalParams::default(),
    )
    .unwrap();
    std::fs::write(
        dir.join("eval/summary.json"),
        serde_json::to_string(&eval).unwrap(),
    )
    .unwrap();
}

#[test]
fn report_writes_page_and_figures() {
    let d = tempfile::tempdir().unwrap();
    write_run(d.path());
    let out = capsid(&["report", d.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html_path = d.path().join("report/index.html");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        html_path.display().to_string()
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<td>ball</td>") && html.contains("<td>simulate</td>"));
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        3,
        "overlay and picks figures, and the raw slices behind a click"
    );
    assert!(d.path().join("report/overlay_prediction.png").exists());
    assert!(d.path().join("report/picks_prediction.png").exists());
    // No training metrics: a note on stderr and on the page.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("note: No training metrics"), "{err}");

    // --out and --class.
    let other = d.path().join("elsewhere");
    let out = capsid(&[
        "report",
        d.path().to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
        "--class",
        "ball",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(other.join("index.html"))
        .unwrap()
        .contains("(class ball)"));
}

#[test]
fn report_errors_are_one_line() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("no-such-run");
    let out = capsid(&["report", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ")
            && err.contains("no-such-run")
            && err.trim().lines().count() == 1,
        "{err}"
    );

    write_run(d.path());
    let out = capsid(&["report", d.path().to_str().unwrap(), "--class", "cube"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown class 'cube'"));

    let help = capsid(&["report", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("capsid report demo --class proteasome"));
}
