//! `capsid convert` and `capsid info`, run as the binary users run.

use capsid_core::{EulerAngles, Particle, Volume};
use capsid_io::particles::{read_particles, write_particles, ReadOptions, WriteOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::*;

const CLASSES: &str = "[[class]]\nname = \"ribosome\"\nlabel = 1\nradius_a = 120.0\n\n[[class]]\nname = \"4b4t\"\nlabel = 2\nradius_vox = 10\n";

fn particles() -> Vec<Particle> {
    vec![
        Particle {
            class: "ribosome".into(),
            x: 10.25,
            y: 20.5,
            z: 3.0,
            angles: Some(EulerAngles::zxz(10.0, 40.0, -70.0)),
            score: Some(0.9),
            tomogram: Some("TS_01".into()),
        },
        Particle {
            class: "4b4t".into(),
            x: 60.0,
            y: 1.5,
            z: 30.0,
            angles: Some(EulerAngles::zxz(-120.0, 179.0, 33.0)),
            score: Some(0.4),
            tomogram: Some("TS_01".into()),
        },
        Particle {
            class: "ribosome".into(),
            x: 0.0,
            y: 63.0,
            z: 12.5,
            angles: Some(EulerAngles::zxz(0.0, 90.0, 0.0)),
            score: Some(0.7),
            tomogram: Some("TS_01".into()),
        },
    ]
}

fn setup() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes.toml");
    std::fs::write(&classes, CLASSES).unwrap();
    let csv = dir.path().join("in.csv");
    write_particles(&csv, &particles(), &WriteOptions::default()).unwrap();
    (dir, csv, classes.display().to_string())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn assert_same(a: &[Particle], b: &[Particle], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (p, q) in a.iter().zip(b) {
        assert_eq!(p.class, q.class, "{what}");
        let d = p.distance_to(q.position_xyz());
        assert!(d <= tol, "{what}: {p:?} vs {q:?}");
        let r = p
            .angles
            .unwrap()
            .rotation()
            .angle_to_deg(&q.angles.unwrap().rotation());
        assert!(r < 1e-5, "{what}: rotation differs by {r}°");
    }
}

#[test]
fn convert_chains_through_every_format_and_back() {
    let (dir, csv, classes) = setup();
    let d = dir.path();
    let steps = [
        (csv.clone(), d.join("a.star")),
        (d.join("a.star"), d.join("b.txt")),
        (d.join("b.txt"), d.join("c.xml")),
        (d.join("c.xml"), d.join("d.star")),
        (d.join("d.star"), d.join("e.csv")),
    ];
    for (from, to) in &steps {
        ok(&[
            "convert",
            &s(from),
            &s(to),
            "--classes",
            &classes,
            "--tomo-name",
            "TS_01",
        ]);
    }
    let back = read_particles(&d.join("e.csv"), &ReadOptions::default()).unwrap();
    assert_same(&particles(), &back, 0.0, "csv→star→txt→xml→star→csv");
    // copick: one file per class with {class}, then each back to CSV.
    let pattern = d.join("copick/{class}.json");
    ok(&["convert", &s(&csv), &s(&pattern), "--voxel-size", "7.5"]);
    for class in ["ribosome", "4b4t"] {
        let json = d.join(format!("copick/{class}.json"));
        let out = d.join(format!("{class}.csv"));
        ok(&["convert", &s(&json), &s(&out)]);
        let want: Vec<Particle> = particles()
            .into_iter()
            .filter(|p| p.class == class)
            .collect();
        let got = read_particles(&out, &ReadOptions::default()).unwrap();
        assert_same(&want, &got, 1e-9, class);
        assert_eq!(got[0].tomogram.as_deref(), Some("TS_01"));
    }
    // RELION 5 with the geometry taken from an MRC header.
    let mrc = d.join("tomo.mrc");
    let vol = Volume::new(ndarray::Array3::<f32>::zeros((40, 70, 64)), 7.5);
    capsid_io::mrc::write_volume(&mrc, &vol, capsid_io::mrc::MrcMode::Float32).unwrap();
    ok(&[
        "convert",
        &s(&csv),
        &s(&d.join("r5.star")),
        "--relion5",
        "--like",
        &s(&mrc),
    ]);
    let text = std::fs::read_to_string(d.join("r5.star")).unwrap();
    assert!(text.contains("_rlnCenteredCoordinateXAngst"), "{text}");
    ok(&[
        "convert",
        &s(&d.join("r5.star")),
        &s(&d.join("r5.csv")),
        "--like",
        &s(&mrc),
    ]);
    let back = read_particles(&d.join("r5.csv"), &ReadOptions::default()).unwrap();
    assert_same(&particles(), &back, 1e-9, "relion5");
}

#[test]
fn convert_errors_are_one_line_and_write_nothing() {
    let (dir, csv, classes) = setup();
    let d = dir.path();
    let bad = d.join("bad.csv");
    std::fs::write(&bad, "class,x,y,z\nribosome,1,2,3\nribosome,1,oops,3\n").unwrap();
    let out = d.join("out.star");
    let e = fails(&["convert", &s(&bad), &s(&out)]);
    assert!(
        e.contains("bad.csv") && e.contains("line 3") && e.contains("'oops'"),
        "{e}"
    );
    assert!(!out.exists());
    // Several classes into one copick file.
    let e = fails(&[
        "convert",
        &s(&csv),
        &s(&d.join("p.json")),
        "--voxel-size",
        "10",
    ]);
    assert!(e.contains("{class}") || e.contains("own file"), "{e}");
    // Unknown class against a table.
    std::fs::write(&bad, "class,x,y,z\nproteasome,1,2,3\n").unwrap();
    let e = fails(&["convert", &s(&bad), &s(&out), "--classes", &classes]);
    assert!(e.contains("unknown class 'proteasome'"), "{e}");
    // Outside the tomogram.
    let e = fails(&["convert", &s(&csv), &s(&out), "--tomo-shape", "64,64,16"]);
    assert!(
        e.contains("outside the tomogram") && e.contains("z = 30"),
        "{e}"
    );
    // Empty input.
    std::fs::write(&bad, "class,x,y,z\n").unwrap();
    let e = fails(&["convert", &s(&bad), &s(&out)]);
    assert!(e.contains("empty"), "{e}");
    // Bad flags and overwriting the input.
    let e = fails(&["convert", &s(&csv), &s(&csv)]);
    assert!(e.contains("overwrite the input"), "{e}");
    let out2 = capsid(&["convert", &s(&csv), &s(&out), "--tomo-shape", "1,2"]);
    assert_ne!(out2.status.code(), Some(0));
    let e = fails(&["convert", &s(&csv), &s(&d.join("x.dat"))]);
    assert!(
        e.contains("x.dat") && e.contains("unknown particle-list format"),
        "{e}"
    );
    assert!(!out.exists());
    // The input is untouched.
    let again = read_particles(&csv, &ReadOptions::default()).unwrap();
    assert_eq!(again.len(), 3);
}

#[test]
fn info_summarises_particle_lists() {
    let (dir, csv, _) = setup();
    let text = ok(&["info", &s(&csv)]);
    assert!(text.contains("particles: 3"), "{text}");
    assert!(
        text.contains("ribosome: 2") && text.contains("4b4t: 1"),
        "{text}"
    );
    let v: Value = serde_json::from_str(&ok(&["info", &s(&csv), "--json"])).unwrap();
    assert_eq!(v["particles"], 3);
    assert_eq!(v["classes"]["ribosome"], 2);
    assert_eq!(v["tomograms"]["TS_01"], 3);
    assert_eq!(v["x_range_vox"], serde_json::json!([0.0, 60.0]));
    assert_eq!(v["with_angles"], 3);
    assert_eq!(v["score_range"], serde_json::json!([0.4, 0.9]));
    // A STAR file without class column is summarised as unclassified.
    let star = dir.path().join("p.star");
    std::fs::write(
        &star,
        "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n1 2 3\n4 5 6\n",
    )
    .unwrap();
    let v: Value = serde_json::from_str(&ok(&["info", &s(&star), "--json"])).unwrap();
    assert_eq!(v["classes"]["unclassified"], 2);
    assert_eq!(v["with_angles"], 0);
    let e = fails(&["info", &s(&dir.path().join("none.star"))]);
    assert!(e.contains("none.star"), "{e}");
}

#[test]
fn info_reads_volume_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mrc = dir.path().join("v.mrc");
    let mut data = ndarray::Array3::<f32>::zeros((4, 5, 6));
    data[[1, 2, 3]] = 8.0;
    let vol = Volume::new(data, 2.5);
    capsid_io::mrc::write_volume(&mrc, &vol, capsid_io::mrc::MrcMode::Float32).unwrap();
    let v: Value = serde_json::from_str(&ok(&["info", &s(&mrc), "--json", "--stats"])).unwrap();
    assert_eq!(v["shape_xyz"], serde_json::json!([6, 5, 4]));
    assert_eq!(v["mode"], 2);
    assert_eq!(v["voxel_size_a_xyz"], serde_json::json!([2.5, 2.5, 2.5]));
    assert_eq!(v["data_stats"]["max"], 8.0);
    assert!((v["data_stats"]["mean"].as_f64().unwrap() - 8.0 / 120.0).abs() < 1e-9);
    let text = ok(&["info", &s(&mrc)]);
    assert!(text.contains("shape_xyz: [6,5,4]"), "{text}");
    // A real EMDB map with a symmetry extended header, when the shared data is there.
    let emd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mrc/EMD-3001.map");
    if emd.exists() {
        let v: Value = serde_json::from_str(&ok(&["info", &s(&emd), "--json"])).unwrap();
        assert_eq!(v["ext_header_bytes"], 160);
        assert_eq!(v["space_group"], 4);
    } else {
        eprintln!("SKIP: {} is absent", emd.display());
    }
    let bad = dir.path().join("bad.mrc");
    std::fs::write(&bad, b"short").unwrap();
    let e = fails(&["info", &s(&bad)]);
    assert!(e.contains("bad.mrc"), "{e}");
}

#[test]
fn help_shows_examples() {
    for cmd in ["convert", "info"] {
        let text = ok(&[cmd, "--help"]);
        assert!(
            text.contains("Examples:") && text.contains(&format!("capsid {cmd} ")),
            "{text}"
        );
    }
}
