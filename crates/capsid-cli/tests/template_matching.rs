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

const DECOY_CONFIG: &str = r#"
preset = "tiny"
shape_zyx = [48, 96, 96]
slab_thickness_vox = 44
tomograms = 2
seed = 6

[noise]
snr = 0.3

[[class]]
name = "ribosome"
builtin = "ribosome"
count = 8

[[class]]
name = "ribosome_decoy"
scrambled_from = "ribosome"
decoy = true
count = 8

[[class]]
name = "proteasome"
builtin = "proteasome"
count = 4
"#;

/// Picks of "a detector that finds every blob of the ribosome's size": the true particles of
/// `tomo` (positions only) and its ribosome look-alikes, all called ribosomes, with a score.
fn blob_picks(d: &std::path::Path, tomo: &str) -> std::path::PathBuf {
    let mut text = String::from("class,x,y,z,score\n");
    for (file, rename) in [
        ("particle_locations.txt", false),
        ("decoy_locations.txt", true),
    ] {
        let body = std::fs::read_to_string(d.join("sim").join(tomo).join(file)).unwrap();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let class = if rename { "ribosome" } else { f[0] };
            text.push_str(&format!("{class},{},{},{},1\n", f[1], f[2], f[3]));
        }
    }
    let out = d.join(format!("blobs_{tomo}.csv"));
    std::fs::write(&out, text).unwrap();
    out
}

#[test]
fn orient_rejects_look_alikes_with_a_threshold_tuned_on_labelled_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s).display().to_string();
    std::fs::write(d.join("sim.toml"), DECOY_CONFIG).unwrap();
    ok(&["simulate", "--config", &p("sim.toml"), "--out", &p("sim")]);
    let orient = |tomo: &str, extra: &[&str], out: &str| {
        let picks = blob_picks(d, tomo).display().to_string();
        let mut args = vec![
            "orient".to_string(),
            picks,
            "--tomogram".into(),
            p(&format!("sim/{tomo}/reconstruction.mrc")),
            "--template".into(),
            p("sim/templates/ribosome.mrc"),
            "--classes".into(),
            p("sim/class_table.toml"),
            "--class".into(),
            "ribosome".into(),
            "--tilt-range=-60,60".into(),
            "--coarse-step".into(),
            "30".into(),
            "--fine-step".into(),
            "10".into(),
            "--keep-other-classes".into(),
            "--score".into(),
            "shape".into(),
            "--out".into(),
            p(out),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&refs)
    };
    // Tune on tomo_000, whose particles are known.
    let truth0 = p("sim/tomo_000/particle_locations.txt");
    let said = orient("tomo_000", &["--tune-with", &truth0], "v0.star");
    assert!(said.contains("chosen --min-score"), "{said}");
    let record = std::fs::read_to_string(d.join("v0.star.orient.toml")).unwrap();
    let min_score: f64 = record
        .lines()
        .find_map(|l| l.strip_prefix("min_score = "))
        .unwrap_or_else(|| panic!("no min_score in {record}"))
        .parse()
        .unwrap();
    assert!(record.contains("[tuned"), "{record}");
    let written = std::fs::read_to_string(d.join("v0.star")).unwrap();
    assert!(
        written.contains("proteasome"),
        "other classes kept: {written}"
    );

    // Apply it to tomo_001 (never seen) and count the look-alikes still picked.
    orient(
        "tomo_001",
        &["--min-score", &min_score.to_string()],
        "v1.star",
    );
    ok(&[
        "evaluate",
        "--picks",
        &p("v1.star"),
        "--truth",
        &p("sim/tomo_001/particle_locations.txt"),
        "--classes",
        &p("sim/class_table.toml"),
        "--tolerance",
        "0.5",
        "--voxel-size",
        "20",
        "--decoys",
        &p("sim/tomo_001/decoy_locations.txt"),
        "--decoy-classes",
        &p("sim/decoy_table.toml"),
        "--out",
        &p("ev1"),
    ]);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ev1/summary.json")).unwrap())
            .unwrap();
    let r = ribosome(&s);
    let decoys = s["decoys"]["decoys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["decoy_class"] == "ribosome_decoy")
        .unwrap()
        .clone();
    let n = decoys["n"].as_u64().unwrap();
    let on_decoys = s["decoys"]["false_picks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "ribosome")
        .map(|c| c["on_decoys"].as_u64().unwrap())
        .unwrap();
    eprintln!(
        "verified tomo_001: min score {min_score}, {r}, false ribosome picks on look-alikes \
         {on_decoys} of {n} look-alikes"
    );
    // Before verification every look-alike is a false ribosome pick and precision is 0.5. By
    // their correlation alone, the best threshold on tomo_000 kept 5 of 8 look-alikes of
    // tomo_001 and lost half its ribosomes; the shape score kept none and lost none.
    assert!(n >= 6, "{decoys}");
    assert!(on_decoys * 4 <= n, "{on_decoys} of {n} look-alikes kept");
    assert!(r["recall"].as_f64().unwrap() >= 0.75, "{r}");
    assert!(r["precision"].as_f64().unwrap() >= 0.8, "{r}");
    // --min-score and --tune-with exclude each other; a non-finite score is refused.
    let err = fails(&[
        "orient",
        &p("blobs_tomo_001.csv"),
        "--tomogram",
        &p("sim/tomo_001/reconstruction.mrc"),
        "--template",
        &p("sim/templates/ribosome.mrc"),
        "--min-score",
        "nan",
        "--out",
        &p("bad.star"),
    ]);
    assert!(err.contains("--min-score"), "{err}");
    assert!(!d.join("bad.star").exists());
}
