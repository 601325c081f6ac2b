//! `capsid match` and `capsid orient` end to end on a simulated tomogram: template matching with
//! the class's own template finds the ribosomes (strict tolerance) with orientations within the
//! angular step, also from a template at another voxel size; `orient` refines them below it;
//! bad inputs fail with one line.
//!
//! The simulator's truth carries ZXZ angles, the picks RELION ZYZ ones: `evaluate` compares
//! rotations, so a convention mistake on either side shows as large angular errors (the angle
//! conventions themselves are checked against scipy in capsid-match's rotation_interop test).

mod common;
use common::{fails, ok};

const SIM_CONFIG: &str = r#"
preset = "tiny"
shape_zyx = [48, 96, 96]
slab_thickness_vox = 44
tomograms = 1
seed = 4

[noise]
snr = 0.3

[[class]]
name = "ribosome"
builtin = "ribosome"
count = 6

[[class]]
name = "proteasome"
builtin = "proteasome"
count = 6
"#;

fn ribosome(summary: &serde_json::Value) -> serde_json::Value {
    summary["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "ribosome")
        .cloned()
        .unwrap()
}

#[test]
fn match_finds_and_orients_ribosomes_and_orient_refines_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s).display().to_string();
    std::fs::write(d.join("sim.toml"), SIM_CONFIG).unwrap();
    ok(&["simulate", "--config", &p("sim.toml"), "--out", &p("sim")]);
    let vs = ok(&["info", &p("sim/reconstruction.mrc")]);
    assert!(vs.contains("voxel_size_a_xyz"), "{vs}");
    let step = "30";
    ok(&[
        "match",
        &p("sim/reconstruction.mrc"),
        "--template",
        &p("sim/templates/ribosome.mrc"),
        "--classes",
        &p("sim/class_table.toml"),
        "--class",
        "ribosome",
        "--angular-step",
        step,
        "--tilt-range=-60,60",
        "--out",
        &p("tm"),
    ]);
    for f in [
        "sim_scores.mrc",
        "sim_angles.mrc",
        "sim_particles.star",
        "rotations.csv",
        "match.json",
        "match.toml",
    ] {
        assert!(d.join("tm").join(f).is_file(), "{f}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("tm/match.json")).unwrap()).unwrap();
    let n_rot = m["rotations"].as_u64().unwrap();
    assert!((500..=620).contains(&n_rot), "{n_rot} rotations at 30°");
    let record = std::fs::read_to_string(d.join("tm/match.toml")).unwrap();
    assert!(
        record.contains("angular_step_deg = 30") && record.contains("rotations = "),
        "{record}"
    );
    let csv = std::fs::read_to_string(d.join("tm/rotations.csv")).unwrap();
    assert_eq!(csv.lines().count() as u64, n_rot + 1);
    // Outputs are never replaced without --force.
    fails(&[
        "match",
        &p("sim/reconstruction.mrc"),
        "--template",
        &p("sim/templates/ribosome.mrc"),
        "--angular-step",
        step,
        "--out",
        &p("tm"),
    ]);

    let evaluate = |picks: &str, out: &str| -> serde_json::Value {
        ok(&[
            "evaluate",
            "--picks",
            picks,
            "--truth",
            &p("sim/particle_locations.txt"),
            "--classes",
            &p("sim/class_table.toml"),
            "--tolerance",
            "0.5",
            "--voxel-size",
            "10",
            "--out",
            out,
        ]);
        let text = std::fs::read_to_string(d.join(out).join("summary.json")).unwrap();
        ribosome(&serde_json::from_str(&text).unwrap())
    };
    let r = evaluate(&p("tm/sim_particles.star"), &p("ev_match"));
    eprintln!("match: {r}");
    assert!(r["recall"].as_f64().unwrap() >= 5.0 / 6.0, "{r}");
    assert!(r["precision"].as_f64().unwrap() >= 0.7, "{r}");
    let median = r["orientation"]["median_deg"].as_f64().unwrap();
    assert!(
        median <= 30.0,
        "match: median angular error {median}° > the 30° step"
    );

    // A template at another voxel size (5 Å, as a finer map would come) is resampled to the
    // tomogram's 10 Å and finds the same particles.
    let t10 = capsid_io::mrc::read_volume(&d.join("sim/templates/ribosome.mrc")).unwrap();
    let fine = capsid_sim::library::resample_to_cube(&t10.data, 10.0, 5.0);
    capsid_io::mrc::write_volume(
        &d.join("ribosome_5A.mrc"),
        &capsid_core::Volume::new(fine, 5.0),
        capsid_io::mrc::MrcMode::Float32,
    )
    .unwrap();
    let out = common::capsid(&[
        "match",
        &p("sim/reconstruction.mrc"),
        "--template",
        &p("ribosome_5A.mrc"),
        "--classes",
        &p("sim/class_table.toml"),
        "--class",
        "ribosome",
        "--angular-step",
        step,
        "--tilt-range=-60,60",
        "--out",
        &p("tm5"),
    ]);
    common::assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resampled from 5 Å"), "{err}");
    let r5 = evaluate(&p("tm5/sim_particles.star"), &p("ev_match5"));
    assert!(r5["recall"].as_f64().unwrap() >= 5.0 / 6.0, "{r5}");

    ok(&[
        "orient",
        &p("tm/sim_particles.star"),
        "--tomogram",
        &p("sim/reconstruction.mrc"),
        "--template",
        &p("sim/templates/ribosome.mrc"),
        "--tilt-range=-60,60",
        "--coarse-step",
        "30",
        "--fine-step",
        "3",
        "--out",
        &p("oriented.star"),
    ]);
    let record = std::fs::read_to_string(d.join("oriented.star.orient.toml")).unwrap();
    assert!(record.contains("fine_step_deg = 3"), "{record}");
    let o = evaluate(&p("oriented.star"), &p("ev_orient"));
    eprintln!("orient: {o}");
    let refined = o["orientation"]["median_deg"].as_f64().unwrap();
    assert!(refined <= 10.0, "orient: median angular error {refined}°");
    assert!(
        refined < median,
        "orient did not refine: {refined}° vs {median}°"
    );
}

#[test]
fn bad_templates_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s).display().to_string();
    ok(&[
        "simulate",
        "--preset",
        "tiny",
        "--seed",
        "2",
        "--out",
        &p("sim"),
    ]);
    let tomo = p("sim/tomo_000/reconstruction.mrc");
    let tomo = if std::path::Path::new(&tomo).is_file() {
        tomo
    } else {
        p("sim/reconstruction.mrc")
    };
    // Not a cube.
    let vs = capsid_io::mrc::read_header(std::path::Path::new(&tomo))
        .unwrap()
        .voxel_size_a[0];
    let t = capsid_core::Volume::new(
        ndarray::Array3::from_shape_fn((9, 10, 9), |(z, y, x)| (x + y + z) as f32),
        vs,
    );
    capsid_io::mrc::write_volume(&d.join("t.mrc"), &t, capsid_io::mrc::MrcMode::Float32).unwrap();
    let err = fails(&["match", &tomo, "--template", &p("t.mrc"), "--out", &p("b")]);
    assert!(err.contains("t.mrc") && err.contains("cube"), "{err}");
    // A flat template has nothing to match.
    let t = capsid_core::Volume::new(ndarray::Array3::<f32>::ones((9, 9, 9)), vs);
    capsid_io::mrc::write_volume(&d.join("flat.mrc"), &t, capsid_io::mrc::MrcMode::Float32)
        .unwrap();
    let err = fails(&[
        "match",
        &tomo,
        "--template",
        &p("flat.mrc"),
        "--out",
        &p("c"),
    ]);
    assert!(err.contains("flat"), "{err}");
    // A reversed tilt range is refused by the argument parser.
    let out = common::capsid(&[
        "match",
        &tomo,
        "--template",
        &p("flat.mrc"),
        "--tilt-range",
        "60,-60",
        "--out",
        &p("d"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tilt range"), "{err}");
    for o in ["b", "c", "d"] {
        assert!(!d.join(o).exists(), "{o} was created");
    }
}
