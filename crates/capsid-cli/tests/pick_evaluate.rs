//! `capsid pick` and `capsid evaluate`, run as the binary users run, on small generated maps.

use capsid_core::{Particle, Volume};
use capsid_io::mrc::{write_labels, write_volume, LabelMode, MrcMode};
use capsid_io::particles::{read_particles, write_particles, ReadOptions, WriteOptions};
use ndarray::Array3;
use serde_json::Value;
use std::path::Path;

mod common;
use common::*;

const CLASSES: &str = "[[class]]\nname = \"big\"\nlabel = 1\nradius_vox = 5\n\n[[class]]\nname = \"small\"\nlabel = 2\nradius_vox = 3\n";

/// Balls (centre x, y, z; radius; label) painted into a 40 × 36 × 32 (x, y, z) map.
const BALLS: [([f64; 3], f64, u8); 3] = [
    ([10.0, 10.0, 10.0], 5.0, 1),
    ([28.0, 12.0, 20.0], 5.0, 1),
    ([20.0, 27.0, 12.0], 3.0, 2),
];

/// Label map and occupancy (instance) map: instance id k = ball k (1-based).
fn maps() -> (Volume<u8>, Volume<f32>) {
    let mut labels = Array3::<u8>::zeros((32, 36, 40));
    let mut occ = Array3::<f32>::zeros((32, 36, 40));
    for (k, (c, r, l)) in BALLS.iter().enumerate() {
        for ((z, y, x), v) in labels.indexed_iter_mut() {
            if (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) + (z as f64 - c[2]).powi(2)
                <= r * r
            {
                *v = *l;
                occ[[z, y, x]] = k as f32 + 1.0;
            }
        }
    }
    (Volume::new(labels, 10.0), Volume::new(occ, 10.0))
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("classes.toml"), CLASSES).unwrap();
    let (labels, occ) = maps();
    write_labels(&dir.join("labels.mrc"), &labels, LabelMode::Uint8Mode0).unwrap();
    write_volume(&dir.join("occupancy.mrc"), &occ, MrcMode::Uint16).unwrap();
    // Truth: the three balls plus one "small" particle nowhere in the maps (always missed).
    let mut truth: Vec<Particle> = BALLS
        .iter()
        .map(|(c, _, l)| Particle::new(["big", "small"][*l as usize - 1], c[0], c[1], c[2]))
        .collect();
    truth.push(Particle::new("small", 35.0, 30.0, 28.0));
    write_particles(&dir.join("truth.csv"), &truth, &WriteOptions::default()).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pick_meanshift_then_evaluate_writes_star_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d);
    let star = d.join("picks.star");
    let out = ok(&[
        "pick",
        s(&d.join("labels.mrc")),
        "--classes",
        s(&d.join("classes.toml")),
        "--out",
        s(&star),
    ]);
    assert!(out.contains("3 picks"), "{out}");
    let text = std::fs::read_to_string(&star).unwrap();
    for col in [
        "_rlnCoordinateX",
        "_rlnTomoName",
        "_rlnAutopickFigureOfMerit",
        "_rlnClassNumber",
    ] {
        assert!(text.contains(col), "{col} missing in\n{text}");
    }
    assert!(d.join("picks.star.pick.toml").exists());
    let picks = read_particles(
        &star,
        &ReadOptions {
            classes: None,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(picks.len(), 3);
    for (c, _, l) in BALLS {
        let p = picks
            .iter()
            .find(|p| p.distance_to(c) <= 1.0)
            .expect("pick near each ball");
        assert_eq!(p.class, ["big", "small"][l as usize - 1]);
        assert_eq!(p.tomogram.as_deref(), Some("labels"));
    }

    let eval = d.join("eval");
    let table = ok(&[
        "evaluate",
        "--picks",
        s(&star),
        "--truth",
        s(&d.join("truth.csv")),
        "--classes",
        s(&d.join("classes.toml")),
        "--occupancy",
        s(&d.join("occupancy.mrc")),
        "--labels",
        s(&d.join("labels.mrc")),
        "--truth-labels",
        s(&d.join("labels.mrc")),
        "--out",
        s(&eval),
    ]);
    assert!(
        table.contains("macro") && table.contains("SHREC hitbox"),
        "{table}"
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["classes"][0]["class"], "big");
    assert_eq!(
        (
            v["classes"][0]["tp"].as_u64(),
            v["classes"][0]["fn"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(
        (
            v["classes"][1]["tp"].as_u64(),
            v["classes"][1]["fn"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(v["hitbox"]["hits"].as_u64(), Some(3));
    assert_eq!(v["hitbox"]["never_hit"].as_u64(), Some(1));
    assert_eq!(v["voxel"][0]["dice"].as_f64(), Some(1.0));
    assert!(eval.join("summary.txt").exists() && eval.join("config.toml").exists());
}

#[test]
fn pick_components_and_nms_from_probability_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d);
    // Probability map of "big": 0.9 inside the big balls, 0.1 elsewhere.
    let (labels, _) = maps();
    let prob = labels.with_data(labels.data.mapv(|l| if l == 1 { 0.9f32 } else { 0.1 }));
    write_volume(&d.join("prob_big.mrc"), &prob, MrcMode::Float32).unwrap();
    let arg = format!("big={}", s(&d.join("prob_big.mrc")));
    let csv = d.join("picks.csv");
    for method in ["components", "nms"] {
        ok(&[
            "pick",
            "--classes",
            s(&d.join("classes.toml")),
            "--method",
            method,
            "--prob",
            &arg,
            "--out",
            s(&csv),
            "--force",
        ]);
        let picks = read_particles(&csv, &ReadOptions::default()).unwrap();
        // NMS on a flat plateau keeps one pick per ball only if the radius covers the plateau
        // from its first voxel; with radius 5 a few plateau voxels can survive, so check ≥ 2 and
        // that every pick lies in a big ball.
        assert!(picks.len() >= 2, "{method}: {picks:?}");
        for p in &picks {
            assert_eq!(p.class, "big");
            assert!(
                BALLS[..2].iter().any(|(c, r, _)| p.distance_to(*c) <= *r),
                "{method}: {p:?}"
            );
        }
        if method == "components" {
            assert_eq!(picks.len(), 2);
        }
    }
    let eval = d.join("eval_pr");
    ok(&[
        "evaluate",
        "--picks",
        s(&csv),
        "--truth",
        s(&d.join("truth.csv")),
        "--classes",
        s(&d.join("classes.toml")),
        "--truth-labels",
        s(&d.join("labels.mrc")),
        "--prob",
        &arg,
        "--tolerance",
        "0.5",
        "--out",
        s(&eval),
    ]);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["pr_curves"][0]["auprc"].as_f64(), Some(1.0));
    assert_eq!(v["params"]["tolerance_fraction"].as_f64(), Some(0.5));
}

#[test]
fn bad_inputs_fail_with_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d);
    let float_map = Volume::new(Array3::from_elem((4, 4, 4), 0.5f32), 1.0);
    write_volume(&d.join("float.mrc"), &float_map, MrcMode::Float32).unwrap();
    let err = fails(&[
        "pick",
        s(&d.join("float.mrc")),
        "--classes",
        s(&d.join("classes.toml")),
        "--out",
        s(&d.join("p.star")),
    ]);
    assert!(
        err.contains("float.mrc") && err.contains("not a label map"),
        "{err}"
    );
    assert!(!d.join("p.star").exists());
    let err = fails(&[
        "pick",
        s(&d.join("labels.mrc")),
        "--classes",
        s(&d.join("classes.toml")),
        "--prob",
        "nope=x.mrc",
        "--out",
        s(&d.join("p.star")),
    ]);
    assert!(err.contains("unknown class 'nope'"), "{err}");
    let err = fails(&[
        "evaluate",
        "--picks",
        s(&d.join("missing.star")),
        "--truth",
        s(&d.join("truth.csv")),
        "--classes",
        s(&d.join("classes.toml")),
        "--out",
        s(&d.join("e")),
    ]);
    assert!(err.contains("missing.star"), "{err}");
    assert!(!d.join("e").join("summary.json").exists());
}

/// A model whose tuned settings pick "small" by peaks of its probability map: `capsid pick`
/// without --method finds that map beside the label map (as `capsid segment` writes it) and
/// keeps the particle, not the one-voxel specks that mean shift of the label map would keep.
#[test]
fn tuned_settings_pick_a_class_by_peaks_of_its_probability_map() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d);
    let seg = d.join("seg");
    let run = d.join("run");
    std::fs::create_dir_all(&seg).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    // Label map: the balls, plus specks labelled "small" away from them.
    let (mut labels, _) = maps();
    let specks = [
        [35usize, 3usize, 3usize],
        [3, 30, 28],
        [36, 30, 5],
        [4, 4, 28],
    ];
    for [x, y, z] in specks {
        labels.data[[z, y, x]] = 2;
    }
    write_labels(&seg.join("tomo_labels.mrc"), &labels, LabelMode::Uint8Mode0).unwrap();
    let prob = labels.with_data(labels.data.mapv(|l| if l == 2 { 0.99f32 } else { 0.01 }));
    let prob = {
        let mut p = prob;
        for ((z, y, x), v) in p.data.indexed_iter_mut() {
            let c = BALLS[2].0;
            let d2 =
                (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) + (z as f64 - c[2]).powi(2);
            if d2 <= 9.0 {
                *v = 0.8;
            }
        }
        p
    };
    let prob_path = seg.join("tomo_prob_small.mrc");
    write_volume(&prob_path, &prob, MrcMode::Float32).unwrap();
    std::fs::write(
        seg.join("segment.toml"),
        format!("model = \"{}\"\n", s(&run)),
    )
    .unwrap();
    std::fs::write(
        run.join("pick_settings.toml"),
        "capsid_version = \"x\"\ntuned_on = \"test\"\n\
         [[class]]\nname = \"big\"\nmin_fraction = 0.0\n\
         [[class]]\nname = \"small\"\nmethod = \"peaks\"\nmin_fraction = 0.0\nmin_score = 0.3\n",
    )
    .unwrap();
    let out = d.join("picks.csv");
    let labels_arg = seg.join("tomo_labels.mrc");
    let classes = d.join("classes.toml");
    let pick = |extra: &[&str]| {
        let mut a = vec![
            "pick",
            s(&labels_arg),
            "--classes",
            s(&classes),
            "--out",
            s(&out),
            "--force",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let args = pick(&[]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let picks = read_particles(&out, &ReadOptions::default()).unwrap();
    let small: Vec<&Particle> = picks.iter().filter(|p| p.class == "small").collect();
    assert_eq!(small.len(), 1, "{small:?}");
    assert!(small[0].distance_to(BALLS[2].0) < 1.0, "{small:?}");
    assert_eq!(picks.iter().filter(|p| p.class == "big").count(), 2);
    let record = std::fs::read_to_string(d.join("picks.csv.pick.toml")).unwrap();
    assert!(
        record.contains("[[tuned_peaks]]") && record.contains("tomo_prob_small.mrc"),
        "{record}"
    );
    // Mean shift asked for explicitly: the specks come back as "small" picks.
    let args = pick(&["--method", "meanshift"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let picks = read_particles(&out, &ReadOptions::default()).unwrap();
    assert!(picks.iter().filter(|p| p.class == "small").count() > 1);
    // Without the probability map: one line naming it and saying how to get it.
    std::fs::remove_file(&prob_path).unwrap();
    let args = pick(&[]);
    let o = capsid(&args.iter().map(String::as_str).collect::<Vec<_>>());
    fails_with(&o, &["tomo_prob_small.mrc", "--probs", "peaks"]);
}

/// `capsid evaluate --rule czii` on picks (STAR, rlnTomoName) and truth (CSV, `tomogram` column)
/// spread over two tomograms, against figures computed by hand from the challenge's rule.
#[test]
fn evaluate_czii_rule_over_two_tomograms() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // big: radius 5, tolerance 2.5; small: radius 3, tolerance 1.5 (voxels).
    std::fs::write(d.join("classes.toml"), CLASSES).unwrap();
    std::fs::write(
        d.join("truth.csv"),
        "class,x,y,z,tomogram\n\
         big,10,10,10,T1\nbig,30,10,10,T1\nbig,10,10,10,T2\n\
         small,20,20,10,T1\nsmall,20,20,10,T2\nsmall,5,25,10,T2\n",
    )
    .unwrap();
    let pick = |class: &str, x: f64, y: f64, z: f64, tomo: &str| {
        let mut p = Particle::new(class, x, y, z);
        p.tomogram = Some(tomo.into());
        p
    };
    let picks = [
        pick("big", 11.0, 10.0, 10.0, "T1"), // finds T1's big at (10,10,10), d 1
        pick("big", 10.0, 11.0, 10.0, "T1"), // the same particle again: FP
        pick("big", 30.0, 10.0, 10.0, "T2"), // on T1's big at x 30, but in T2: FP
        pick("big", 10.0, 12.0, 10.0, "T2"), // finds T2's big, d 2 ≤ 2.5
        pick("small", 20.0, 21.0, 10.0, "T1"), // finds T1's small, d 1
        pick("small", 20.0, 20.0, 12.0, "T2"), // d 2 > 1.5: FP
        pick("small", 20.0, 20.0, 10.0, "T3"), // T3 has no truth: left out
    ];
    let star = d.join("picks.star");
    write_particles(&star, &picks, &WriteOptions::default()).unwrap();
    let args = |out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "evaluate",
            "--picks",
            s(&star),
            "--truth",
            s(&d.join("truth.csv")),
            "--classes",
            s(&d.join("classes.toml")),
            "--out",
            s(&d.join(out)),
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |a: Vec<String>| ok(&a.iter().map(String::as_str).collect::<Vec<_>>());

    let v: Value = serde_json::from_str(&run(args(
        "eval_czii",
        &["--rule", "czii", "--weight", "small=2", "--json"],
    )))
    .unwrap();
    assert_eq!(v["params"]["rule"], "czii");
    assert_eq!(v["params"]["tolerance_fraction"].as_f64(), Some(0.5));
    assert_eq!(v["params"]["beta"].as_f64(), Some(4.0));
    let z = &v["czii"];
    assert_eq!(z["runs"], serde_json::json!(["T1", "T2"]));
    assert_eq!(z["picks_left_out"].as_u64(), Some(1));
    let row = |i: usize| {
        let c = &z["classes"][i];
        (
            c["tp"].as_u64().unwrap(),
            c["fp"].as_i64().unwrap(),
            c["fn"].as_u64().unwrap(),
            c["fbeta"].as_f64().unwrap(),
        )
    };
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    // big: T1 (1, 1, 1) + T2 (1, 1, 0) = (2, 2, 1): F4 = 17·2 / (17·2 + 16·1 + 2) = 17/26.
    let (tp, fp, fn_, f) = row(0);
    assert_eq!((tp, fp, fn_), (2, 2, 1));
    close(f, 17.0 / 26.0);
    // small: T1 (1, 0, 0) + T2 (0, 1, 2) = (1, 1, 2): F4 = 17 / (17 + 16·2 + 1) = 17/50.
    let (tp, fp, fn_, f) = row(1);
    assert_eq!((tp, fp, fn_), (1, 1, 2));
    close(f, 17.0 / 50.0);
    // Weighted (big 1, small 2): (17/26 + 2·17/50) / 3 = 289/650.
    close(z["score"].as_f64().unwrap(), 289.0 / 650.0);
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("eval_czii").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary, v);

    // The table names the rule of each section; the default rule has no CZII section.
    let table = run(args("eval_czii_table", &["--rule", "czii"]));
    assert!(
        table.starts_with("Rule czii") && table.contains("CZII score"),
        "{table}"
    );
    assert!(table.contains("For comparison, rule one-to-one"), "{table}");
    let v: Value = serde_json::from_str(&run(args("eval_plain", &["--json"]))).unwrap();
    assert_eq!(v["params"]["rule"], "one-to-one");
    assert_eq!(v["params"]["tolerance_fraction"].as_f64(), Some(1.0));
    assert!(v.get("czii").is_none(), "{v}");
    let table = run(args("eval_plain_table", &[]));
    assert!(table.starts_with("Rule one-to-one"), "{table}");
}

/// Several label maps (arguments and --list) into one list: each pick named by its tomogram,
/// a table per tomogram, one record table per map; --skip-complete leaves a finished list alone;
/// two maps of one tomogram name are refused.
#[test]
fn pick_many_maps_into_one_list() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    setup(d);
    let (labels, _) = maps();
    write_labels(&d.join("tA_labels.mrc"), &labels, LabelMode::Uint8Mode0).unwrap();
    // tB: only the small ball.
    let only_small = labels.data.mapv(|l| if l == 2 { 2 } else { 0 });
    write_labels(
        &d.join("tB_labels.mrc"),
        &Volume::new(only_small, 10.0),
        LabelMode::Uint8Mode0,
    )
    .unwrap();
    std::fs::write(d.join("maps.txt"), "# second map\ntB_labels.mrc\n").unwrap();
    let star = d.join("all.star");
    let (map_a, list, classes) = (
        d.join("tA_labels.mrc"),
        d.join("maps.txt"),
        d.join("classes.toml"),
    );
    let run = |extra: &[&str]| {
        let mut a = vec![
            "pick",
            s(&map_a),
            "--list",
            s(&list),
            "--classes",
            s(&classes),
            "--out",
            s(&star),
        ];
        a.extend_from_slice(extra);
        capsid(&a)
    };
    let out = run(&[]);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tA") && err.contains("tB"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 picks"));
    let picks = read_particles(&star, &ReadOptions::default()).unwrap();
    let in_tomo = |t: &str| {
        picks
            .iter()
            .filter(|p| p.tomogram.as_deref() == Some(t))
            .count()
    };
    assert_eq!((in_tomo("tA"), in_tomo("tB")), (3, 1));
    assert!(picks
        .iter()
        .filter(|p| p.tomogram.as_deref() == Some("tB"))
        .all(|p| p.class == "small"));
    let record = std::fs::read_to_string(d.join("all.star.pick.toml")).unwrap();
    assert_eq!(record.matches("[[tomogram]]").count(), 2, "{record}");
    // A finished list is left alone with --skip-complete, refused without --force.
    let before = std::fs::read(&star).unwrap();
    let out = run(&["--skip-complete"]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("complete; skipped"));
    assert!(!run(&[]).status.success());
    assert_eq!(std::fs::read(&star).unwrap(), before);
    // The same tomogram twice cannot be told apart.
    let twice = d.join("twice.star");
    let err = fails(&[
        "pick",
        s(&map_a),
        s(&map_a),
        "--classes",
        s(&classes),
        "--out",
        s(&twice),
    ]);
    assert!(err.contains("'tA'"), "{err}");
    assert!(!twice.exists());
}

#[test]
fn evaluate_reports_orientation_errors_modulo_symmetry() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let classes = d.join("classes.toml");
    std::fs::write(
        &classes,
        "[[class]]\nname = \"ribo\"\nlabel = 1\nradius_vox = 5\n\n\
         [[class]]\nname = \"ring\"\nlabel = 2\nradius_vox = 4\nsymmetry = \"C1\"\n",
    )
    .unwrap();
    // Truth: SHREC particle_locations.txt, ZXZ [phi, theta, psi].
    let truth = d.join("particle_locations.txt");
    std::fs::write(
        &truth,
        "ribo 10 10 10 30 50 -20\n\
         ribo 30 10 10 -135 10 170\n\
         ribo 50 10 10 12 160 75\n\
         ring 70 10 10 0 90 0\n\
         ring 90 10 10 45 30 60\n",
    )
    .unwrap();
    // Picks: RELION [rot, tilt, psi] written by hand. ZXZ (φ, θ, ψ) is RELION (90 − ψ, θ, −90 − φ)
    // (Rz(φ)·Rx(θ)·Rz(ψ) = Rz(φ − 90)·Ry(θ)·Rz(ψ + 90) and RELION's active rotation is
    // Rz(−psi)·Ry(−tilt)·Rz(−rot)). The second ribo has rot + 15 (a 15° turn about the template's
    // z); the second ring has rot − 90: a quarter turn about its z axis (the C4 axis).
    let picks = d.join("picks.star");
    std::fs::write(
        &picks,
        "data_particles\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n_rlnCoordinateZ #3\n\
         _rlnAngleRot #4\n_rlnAngleTilt #5\n_rlnAnglePsi #6\n_rlnClassNumber #7\n\
         10.5 10 10 110 50 -120 1\n\
         30 10.5 10 -65 10 45 1\n\
         50 10 10 15 160 -102 1\n\
         70 10 10 90 90 -90 2\n\
         90 10 10 -60 30 -135 2\n",
    )
    .unwrap();
    let evaluate = |out: &Path, more: &[&str]| -> (String, Value) {
        let mut args = vec![
            "evaluate",
            "--picks",
            s(&picks),
            "--truth",
            s(&truth),
            "--classes",
            s(&classes),
            "--out",
            s(out),
        ];
        args.extend_from_slice(more);
        let table = ok(&args);
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        (table, v)
    };
    let close = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap_or(f64::NAN);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    };
    // The class table's C1: the quarter turn of the ring counts 90°.
    let (table, v) = evaluate(&d.join("eval_c1"), &[]);
    assert!(table.contains("Orientation error"), "{table}");
    let ribo = &v["classes"][0]["orientation"];
    assert_eq!(ribo["pairs"], 3);
    assert_eq!(ribo["symmetry"], "C1");
    close(&ribo["median_deg"], 0.0);
    close(&ribo["p90_deg"], 15.0);
    let ring = &v["classes"][1]["orientation"];
    assert_eq!(
        (&ring["pairs"], &ring["symmetry"]),
        (&2.into(), &"C1".into())
    );
    close(&ring["median_deg"], 45.0);
    close(&ring["p90_deg"], 90.0);
    // --symmetry ring=C4 overrides the table: the quarter turn is no error.
    let (_, v) = evaluate(&d.join("eval_c4"), &["--symmetry", "ring=C4"]);
    let ring = &v["classes"][1]["orientation"];
    assert_eq!(
        (&ring["pairs"], &ring["symmetry"]),
        (&2.into(), &"C4".into())
    );
    close(&ring["median_deg"], 0.0);
    close(&ring["p90_deg"], 0.0);
    close(&v["classes"][0]["orientation"]["p90_deg"], 15.0);
    // Bad values: one line naming the flag.
    for (bad, needle) in [
        ("ring=Q5", "unknown symmetry"),
        ("nope=C2", "nope"),
        ("ring", "CLASS=SYM"),
    ] {
        let err = fails(&[
            "evaluate",
            "--picks",
            s(&picks),
            "--truth",
            s(&truth),
            "--classes",
            s(&classes),
            "--symmetry",
            bad,
            "--out",
            s(&d.join("eval_bad")),
        ]);
        assert!(err.contains("--symmetry") && err.contains(needle), "{err}");
    }
    assert!(!d.join("eval_bad").exists());
}
