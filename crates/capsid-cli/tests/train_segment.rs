//! CLI tests of `capsid train` and `capsid segment` on a tiny SHREC-layout folder made here.

use capsid_core::Volume;
use capsid_io::mrc::{self, MrcMode};
use ndarray::Array3;
use std::path::Path;

mod common;
use common::*;

/// DIR/class_table.toml and DIR/tomo_00k/{reconstruction.mrc, particle_locations.txt}: bright
/// balls (radius 3 voxels) of class `ball` and dim ones of class `dud` on noise, 24 × 40 × 40.
fn shrec_folder(dir: &Path) {
    std::fs::write(
        dir.join("class_table.toml"),
        "[[class]]\nname = \"ball\"\nlabel = 1\nradius_vox = 3.0\n\n[[class]]\nname = \"dud\"\nlabel = 2\nradius_vox = 2.0\n",
    )
    .unwrap();
    for k in 0..2u64 {
        let t = dir.join(format!("tomo_{k:03}"));
        std::fs::create_dir_all(&t).unwrap();
        let mut lines = String::new();
        let mut centres = Vec::new();
        for i in 0..10usize {
            let c = [
                5 + (i * 11 + k as usize) % 30,
                5 + (i * 17) % 30,
                5 + (i * 5) % 14,
            ];
            let class = if i % 4 == 3 { "dud" } else { "ball" };
            lines.push_str(&format!("{class} {} {} {} 0 0 0\n", c[0], c[1], c[2]));
            centres.push((c, class));
        }
        std::fs::write(t.join("particle_locations.txt"), lines).unwrap();
        let data = Array3::from_shape_fn((24, 40, 40), |(z, y, x)| {
            let mut v = noise(k, z, y, x);
            for (c, class) in &centres {
                let d2 = (x as f64 - c[0] as f64).powi(2)
                    + (y as f64 - c[1] as f64).powi(2)
                    + (z as f64 - c[2] as f64).powi(2);
                if d2 <= 9.0 {
                    v += if *class == "ball" { 2.0 } else { 0.5 };
                }
            }
            v
        });
        let mut vol = Volume::new(data, 10.0);
        vol.origin_a = [5.0, 6.0, 7.0];
        mrc::write_volume(&t.join("reconstruction.mrc"), &vol, MrcMode::Float32).unwrap();
    }
}

/// Deterministic pseudo-random noise in [-1, 1) (a hash of the voxel; no rand dependency here).
fn noise(k: u64, z: usize, y: usize, x: usize) -> f32 {
    let mut h =
        k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((z as u64) << 40 | (y as u64) << 20 | x as u64);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

fn csv_rows(p: &Path) -> usize {
    std::fs::read_to_string(p).unwrap().lines().count() - 1
}

#[test]
fn train_resume_and_segment_a_shrec_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sim");
    std::fs::create_dir_all(&data).unwrap();
    shrec_folder(&data);
    let run = tmp.path().join("runs/x");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    assert_ok(&capsid(&[
        "train",
        "--model",
        "unet",
        "--data",
        d,
        "--targets",
        "ball",
        "--patch",
        "16",
        "--batch",
        "2",
        "--epochs",
        "2",
        "--steps",
        "3",
        "--folds",
        "3",
        "--seed",
        "1",
        "--threads",
        "2",
        "--out",
        r,
    ]));
    for f in [
        "config.toml",
        "class_table.toml",
        "net.toml",
        "weights.bpk",
        "metrics.csv",
        "learning_curve.png",
        "last/train_state.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert_eq!(csv_rows(&run.join("metrics.csv")), 2);
    // The learning curve is the report's figure (loss and score panels with axes and legends,
    // 1120 × 380), redrawn after each epoch from metrics.csv.
    let png = std::fs::read(run.join("learning_curve.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1120, 380));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("capsid_version") && config.contains("reconstruction.mrc"),
        "{config}"
    );
    let table = std::fs::read_to_string(run.join("class_table.toml")).unwrap();
    assert!(table.contains("ball") && !table.contains("dud"), "{table}");
    // Resume with one more epoch: no data flags needed.
    let resumed = capsid(&[
        "train",
        "--resume",
        "--out",
        r,
        "--epochs",
        "3",
        "--threads",
        "2",
        "--json",
    ]);
    assert_ok(&resumed);
    assert_eq!(csv_rows(&run.join("metrics.csv")), 3);
    // --json: the summary on stdout, machine-readable.
    let v: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(v["epochs"], 3, "{v}");
    assert_eq!(v["classes"][0], "ball", "{v}");
    assert!(
        v["best"]["f1"].as_array().is_some_and(|f| f.len() == 1),
        "{v}"
    );

    // `capsid features`: the encoder's features at each particle centre, with the rotation of
    // its angles; a particle at the border is padded, not refused.
    let feats = tmp.path().join("features.csv");
    let list = tmp.path().join("angled.txt");
    std::fs::write(
        &list,
        "ball 5 5 5 30 40 50\nball 20 20 12 0 0 0\ndud 39 0 23 90 0 0\n",
    )
    .unwrap();
    let t0s = data.join("tomo_000/reconstruction.mrc");
    let features = |extra: &[&str]| {
        let mut a = vec![
            "features",
            r,
            "--tomogram",
            t0s.to_str().unwrap(),
            "--particles",
            list.to_str().unwrap(),
            "--out",
            feats.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        capsid(&a)
    };
    assert_ok(&features(&["--cells", "3"]));
    let text = std::fs::read_to_string(&feats).unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .contains("patch 20, cell 4 voxels, cells 3, channels 64"));
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(head[..6], ["tomogram", "class", "x", "y", "z", "r11"]);
    assert_eq!(head.len(), 14 + 64 * 27);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][..5], ["reconstruction", "dud", "39", "0", "23"]);
    for row in &rows {
        assert_eq!(row.len(), head.len());
        let m: Vec<f64> = row[5..14].iter().map(|v| v.parse().unwrap()).collect();
        // Orthonormal with determinant 1.
        for i in 0..3 {
            for j in 0..3 {
                let dot: f64 = (0..3).map(|k| m[i * 3 + k] * m[j * 3 + k]).sum();
                assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-9, "{row:?}");
            }
        }
        assert!(row[14..]
            .iter()
            .all(|v| v.parse::<f32>().unwrap().is_finite()));
    }
    assert_eq!(
        rows[1][5..14],
        ["1", "0", "0", "0", "1", "0", "0", "0", "1"]
    );
    assert_ne!(rows[0][14..], rows[1][14..]);
    // One class; an existing output is kept without --force; even --cells is refused.
    fails_with(&features(&["--class", "dud"]), &["already exists"]);
    assert_ok(&features(&["--class", "dud", "--force"]));
    // The settings line, the header and the one `dud`.
    assert_eq!(std::fs::read_to_string(&feats).unwrap().lines().count(), 3);
    fails_with(&features(&["--cells", "2", "--force"]), &["--cells"]);
    fails_with(
        &features(&["--class", "nope", "--force"]),
        &["no particle of class nope"],
    );

    // Segment both tomograms with the run folder alone.
    let seg = tmp.path().join("seg");
    let t0 = data.join("tomo_000/reconstruction.mrc");
    let t1 = data.join("tomo_001/reconstruction.mrc");
    let segmented = capsid(&[
        "segment",
        r,
        t0.to_str().unwrap(),
        t1.to_str().unwrap(),
        "--out",
        seg.to_str().unwrap(),
        "--overlap",
        "4",
        "--probs",
        "f16",
        "--blend",
        "gaussian",
        "--threads",
        "2",
        "--json",
    ]);
    assert_ok(&segmented);
    let v: serde_json::Value = serde_json::from_slice(&segmented.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    // The counts are those of the label maps written.
    for row in rows {
        let map = mrc::read_volume(Path::new(row["label_map"].as_str().unwrap())).unwrap();
        let balls = map.data.iter().filter(|&&l| l == 1.0).count() as u64;
        assert_eq!(row["voxels_per_class"]["ball"].as_u64(), Some(balls), "{v}");
        assert_eq!(row["windows"].as_u64(), Some(18), "{v}");
    }
    for name in ["tomo_000", "tomo_001"] {
        let lp = seg.join(format!("{name}_labels.mrc"));
        let h = mrc::read_header(&lp).unwrap();
        assert_eq!(h.shape_zyx(), [24, 40, 40]);
        assert_eq!(h.origin_a, [5.0, 6.0, 7.0]);
        assert_eq!(h.voxel_size_a, [10.0, 10.0, 10.0]);
        let labels = mrc::read_volume(&lp).unwrap();
        assert!(labels.data.iter().all(|&v| v == 0.0 || v == 1.0));
        let probs = mrc::read_volume(&seg.join(format!("{name}_prob_ball.mrc"))).unwrap();
        assert_eq!(probs.shape_zyx(), [24, 40, 40]);
        assert!(probs.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
        // The label is 1 exactly where the probability of `ball` wins (2 classes: p > 0.5),
        // up to float16 rounding near 0.5.
        for (l, p) in labels.data.iter().zip(probs.data.iter()) {
            if (p - 0.5).abs() > 2e-3 {
                assert_eq!(*l == 1.0, *p > 0.5);
            }
        }
    }

    // The same tomogram as OME-Zarr (written by capsid from the MRC) segments to the same label
    // map, and --zarr writes every map as an OME-Zarr image too.
    let zt = tmp.path().join("tomo_000.zarr");
    capsid_io::zarr::write_ome_zarr(
        &capsid_io::VolumeSource::open(&t0).unwrap(),
        &t0,
        &zt,
        &capsid_io::zarr::MapKind::Values,
        &capsid_io::zarr::OmeZarrOptions::default(),
    )
    .unwrap();
    let seg2 = tmp.path().join("seg_zarr");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "segment",
            r,
            zt.to_str().unwrap(),
            "--out",
            seg2.to_str().unwrap(),
            "--overlap",
            "4",
            "--probs",
            "f16",
            "--blend",
            "gaussian",
            "--zarr",
        ];
        a.extend_from_slice(extra);
        capsid(&a)
    };
    assert_ok(&run(&[]));
    let from_mrc = mrc::read_volume(&seg.join("tomo_000_labels.mrc")).unwrap();
    let from_zarr = mrc::read_volume(&seg2.join("tomo_000_labels.mrc")).unwrap();
    assert_eq!(from_zarr.data, from_mrc.data);
    assert_eq!(from_zarr.origin_a, [5.0, 6.0, 7.0]);
    let image = mrc::read_volume(&seg2.join("tomo_000_labels.zarr")).unwrap();
    assert_eq!(image.data, from_mrc.data);
    assert_eq!(image.origin_a, [5.0, 6.0, 7.0]);
    let probs = mrc::read_volume(&seg2.join("tomo_000_prob_ball.zarr")).unwrap();
    let probs_mrc = mrc::read_volume(&seg2.join("tomo_000_prob_ball.mrc")).unwrap();
    assert_eq!(probs.data, probs_mrc.data);
    // An existing image is not replaced without --force; --skip-complete skips the tomogram.
    let again = run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_ok(&run(&["--skip-complete"]));
    assert_ok(&run(&["--force"]));
    // A voxel size the image has no level of is refused, naming the levels there are.
    let e = run(&["--force", "--voxel-size", "20"]);
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        msg.contains("no level at 20 Å") && msg.contains("0 (10 Å)"),
        "{msg}"
    );
    assert_ok(&run(&["--force", "--voxel-size", "10"]));

    // Many tomograms from a list file: a missing one fails alone, the others are segmented, the
    // table says so and the exit status is non-zero; rerun with --skip-complete after fixing the
    // list does nothing more.
    let list = tmp.path().join("tomos.txt");
    std::fs::write(
        &list,
        format!(
            "# test tomograms\n{}\nmissing/tomo_009.mrc\n{} particles.txt\n",
            t0.display(),
            t1.display()
        ),
    )
    .unwrap();
    let seg3 = tmp.path().join("seg_list");
    let many = |extra: &[&str]| {
        let mut a = vec![
            "segment",
            r,
            "--list",
            list.to_str().unwrap(),
            "--out",
            seg3.to_str().unwrap(),
            "--overlap",
            "4",
        ];
        a.extend_from_slice(extra);
        capsid(&a)
    };
    let out = many(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 3 tomograms failed"), "{err}");
    assert!(
        err.contains("3 tomograms: 2 done, 0 skipped, 1 failed"),
        "{err}"
    );
    assert!(err.contains("tomo_009.mrc"), "{err}");
    for name in ["tomo_000", "tomo_001"] {
        assert!(seg3.join(format!("{name}_labels.mrc")).is_file());
    }
    std::fs::write(&list, format!("{}\n{}\n", t0.display(), t1.display())).unwrap();
    let out = many(&["--skip-complete"]);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 tomograms: 0 done, 2 skipped, 0 failed"),
        "{err}"
    );

    // A copick project: every run's tomogram (or --runs), outputs named by run, equal to the
    // MRC tomograms' label maps.
    use capsid_io::copick_project as cp;
    let proj = tmp.path().join("copick");
    for (run, tomo) in [("TS_a", &t0), ("TS_b", &t1)] {
        let zarr = cp::tomogram_path(&proj, run, 10.0, "wbp");
        std::fs::create_dir_all(zarr.parent().unwrap()).unwrap();
        capsid_io::zarr::write_ome_zarr(
            &capsid_io::VolumeSource::open(tomo).unwrap(),
            tomo,
            &zarr,
            &capsid_io::zarr::MapKind::Values,
            &capsid_io::zarr::OmeZarrOptions::default(),
        )
        .unwrap();
    }
    let config = cp::write_config(&proj, "test", "test", &[], &proj).unwrap();
    let seg4 = tmp.path().join("seg_copick");
    let copick = |extra: &[&str]| {
        let mut a = vec![
            "segment",
            r,
            "--copick",
            config.to_str().unwrap(),
            "--out",
            seg4.to_str().unwrap(),
            "--overlap",
            "4",
        ];
        a.extend_from_slice(extra);
        capsid(&a)
    };
    assert_ok(&copick(&["--runs", "TS_b"]));
    assert!(!seg4.join("TS_a_labels.mrc").exists());
    let out = copick(&["--skip-complete"]);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 tomograms: 1 done, 1 skipped, 0 failed"),
        "{err}"
    );
    for (run, name) in [("TS_a", "tomo_000"), ("TS_b", "tomo_001")] {
        let a = mrc::read_volume(&seg4.join(format!("{run}_labels.mrc"))).unwrap();
        let b = mrc::read_volume(&seg3.join(format!("{name}_labels.mrc"))).unwrap();
        assert_eq!(a.data, b.data, "{run}");
    }
    let e = copick(&["--runs", "TS_c"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("no run 'TS_c'"));
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sim");
    std::fs::create_dir_all(&data).unwrap();
    shrec_folder(&data);
    let d = data.to_str().unwrap();
    let out = tmp.path().join("r");
    let o = out.to_str().unwrap();
    fails_with(
        &capsid(&["train", "--data", d, "--targets", "nope", "--out", o]),
        &["nope"],
    );
    fails_with(&capsid(&["train", "--out", o]), &["class table"]);
    fails_with(
        &capsid(&["train", "--data", d, "--patch", "20", "--out", o]),
        &["patch"],
    );
    fails_with(
        &capsid(&["train", "--resume", "--out", o]),
        &["config.toml"],
    );
    let missing = tmp.path().join("no_model");
    fails_with(
        &capsid(&["segment", missing.to_str().unwrap(), "x.mrc", "--out", o]),
        &["no_model"],
    );
    fails_with(
        &capsid(&[
            "train",
            "--data",
            tmp.path().join("none").to_str().unwrap(),
            "--out",
            o,
        ]),
        &["none"],
    );
}

/// The CZII workflow on a local copick project (issue 15): `simulate --copick` makes the project
/// (OME-Zarr tomograms, the true particles as picks of user `curation` in Å); `train --copick`
/// learns from those picks (read back to the right particle count) with the pick-F1 monitor on
/// a held-out run; `pick --copick` writes picks into the project as user `capsid`, one file per
/// run and class; `evaluate --copick` scores them against `curation` with the CZII rule. Picks
/// made from the true label maps must score F1 ≥ 0.9, which checks the Å ↔ voxel conversions
/// both ways; an existing user's picks are not replaced without --force.
#[test]
fn czii_workflow_on_a_copick_project() {
    let tmp = tempfile::tempdir().unwrap();
    let sim = tmp.path().join("sim");
    let proj = tmp.path().join("proj");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = capsid(&[
        "simulate",
        "--preset",
        "tiny",
        "--seed",
        "5",
        "--tomograms",
        "2",
        "--out",
        &s(&sim),
        "--copick",
        &s(&proj),
    ]);
    assert_ok(&out);
    let config = s(&proj.join("copick_config.json"));
    let truth_of = |run: &str| {
        capsid_io::particles::read_particles(
            &sim.join(run).join("particle_locations.txt"),
            &capsid_io::particles::ReadOptions::default(),
        )
        .unwrap()
    };
    let count = |class: &str| -> usize {
        ["tomo_000", "tomo_001"]
            .iter()
            .map(|r| truth_of(r).iter().filter(|p| p.class == class).count())
            .sum()
    };
    let (ribosomes, rubiscos) = (count("ribosome"), count("rubisco"));

    // Training targets: the curation picks of one object (rubisco: its object label, 2, is not
    // its output label, 1), from the zarr tomograms.
    let run = tmp.path().join("run");
    let out = capsid(&[
        "train",
        "--model",
        "unet",
        "--copick",
        &config,
        "--targets",
        "rubisco",
        "--patch",
        "16",
        "--batch",
        "2",
        "--epochs",
        "2",
        "--steps",
        "2",
        "--split-by",
        "tomogram",
        "--folds",
        "2",
        "--monitor",
        "val-pick-f1",
        "--val-pick-every",
        "1",
        "--out",
        &s(&run),
    ]);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "on 2 tomogram(s), {rubiscos} target particle(s) of rubisco"
        )),
        "{err}"
    );
    assert!(err.contains("(the validation tomogram)"), "{err}");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("user_id = \"curation\"") && cfg.contains("monitor = \"val_pick_f1\""),
        "{cfg}"
    );
    let evaluations = std::fs::read_to_string(run.join("val_picks.csv")).unwrap();
    assert_eq!(evaluations.lines().count(), 3, "{evaluations}");
    assert!(run.join("pick_settings.toml").is_file());
    // The label maps into the project as copick multilabel segmentations, in object labels.
    let seg = tmp.path().join("seg");
    let out = capsid(&[
        "segment",
        &s(&run),
        "--copick",
        &config,
        "--out",
        &s(&seg),
        "--copick-segmentation",
        "predictions",
        "--patch",
        "32",
    ]);
    assert_ok(&out);
    for run_name in ["tomo_000", "tomo_001"] {
        let store = proj.join(format!(
            "ExperimentRuns/{run_name}/Segmentations/20.000_capsid_0_predictions-multilabel.zarr"
        ));
        let labels = seg.join(format!("{run_name}_labels.mrc"));
        let stored = capsid_io::mrc::read_volume(&store).unwrap();
        let ours = mrc::read_volume(&labels).unwrap();
        assert_eq!(
            stored.data,
            ours.data.mapv(|v| if v == 1.0 { 2.0 } else { 0.0 })
        );
        if let Some(python) = interop_python("CAPSID_COPICK_PYTHON") {
            copick_reads_segmentation(&python, &config, run_name, &labels, "1:2");
        }
    }
    // A segmentation is not replaced without --force.
    let again = capsid(&[
        "segment",
        &s(&run),
        "--copick",
        &config,
        "--out",
        &s(&tmp.path().join("seg_again")),
        "--copick-segmentation",
        "predictions",
        "--patch",
        "32",
        "--runs",
        "tomo_000",
    ]);
    fails_with(&again, &["predictions-multilabel.zarr", "--force"]);

    // Another user's picks: none in the project, and the error says whose there are.
    let e = capsid(&[
        "train",
        "--model",
        "unet",
        "--copick",
        &config,
        "--user-id",
        "nobody",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--out",
        &s(&tmp.path().join("run2")),
    ]);
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        msg.contains("no picks of user 'nobody'") && msg.contains("curation/0"),
        "{msg}"
    );

    // Picks from the true label maps, written into the project as user capsid.
    for run_name in ["tomo_000", "tomo_001"] {
        let picks = tmp.path().join(format!("{run_name}.star"));
        let pick = |extra: &[&str]| {
            let mut a = vec![
                "pick".to_string(),
                s(&sim.join(run_name).join("class_mask.mrc")),
                "--classes".into(),
                s(&sim.join("class_table.toml")),
                "--tomo-name".into(),
                run_name.into(),
                "--out".into(),
                s(&picks),
                "--copick".into(),
                config.clone(),
            ];
            a.extend(extra.iter().map(|x| x.to_string()));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            capsid(&a)
        };
        assert_ok(&pick(&[]));
        let written = proj.join(format!(
            "ExperimentRuns/{run_name}/Picks/capsid_0_ribosome.json"
        ));
        assert!(written.is_file(), "{}", written.display());
        // The project's picks and the STAR list agree (Å there, voxels here).
        let star = capsid_io::particles::read_particles(
            &picks,
            &capsid_io::particles::ReadOptions::default(),
        )
        .unwrap();
        let json = capsid_io::particles::read_particles(
            &written,
            &capsid_io::particles::ReadOptions::default(),
        )
        .unwrap();
        let star_ribo: Vec<_> = star.iter().filter(|p| p.class == "ribosome").collect();
        assert_eq!(json.len(), star_ribo.len());
        for (a, b) in json.iter().zip(&star_ribo) {
            assert!(a.distance_to([b.x, b.y, b.z]) < 1e-3, "{a:?} {b:?}");
        }
        // Existing picks of that user and session are kept without --force, and nothing is
        // written then (not even a new STAR list).
        let other = tmp.path().join(format!("{run_name}_again.star"));
        let again = capsid(&[
            "pick",
            &s(&sim.join(run_name).join("class_mask.mrc")),
            "--classes",
            &s(&sim.join("class_table.toml")),
            "--tomo-name",
            run_name,
            "--out",
            &s(&other),
            "--copick",
            &config,
        ]);
        fails_with(&again, &["capsid_0_", "--force"]);
        assert!(!other.exists());
        assert_ok(&pick(&["--force"]));
    }
    let refused = capsid(&[
        "pick",
        &s(&sim.join("tomo_000").join("class_mask.mrc")),
        "--classes",
        &s(&sim.join("class_table.toml")),
        "--tomo-name",
        "TS_99",
        "--out",
        &s(&tmp.path().join("x.star")),
        "--copick",
        &config,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no run of the project"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // CZII scoring of user capsid against user curation, both read from the project.
    let out = capsid(&[
        "evaluate",
        "--copick",
        &config,
        "--picks-user",
        "capsid",
        "--truth-user",
        "curation",
        "--rule",
        "czii",
        "--out",
        &s(&tmp.path().join("eval")),
        "--json",
    ]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let classes = v["classes"].as_array().unwrap();
    let ribo = classes.iter().find(|c| c["class"] == "ribosome").unwrap();
    assert_eq!(ribo["n_truth"].as_u64().unwrap() as usize, ribosomes, "{v}");
    assert!(ribo["f1"].as_f64().unwrap() >= 0.9, "{ribo}");
    assert!(
        v["inputs"]["truth"]
            .as_str()
            .unwrap()
            .contains("copick user curation, session 0, runs tomo_000, tomo_001"),
        "{}",
        v["inputs"]
    );
}

/// A project that copick itself made (issue 15 item 5; needs CAPSID_COPICK_PYTHON, a failure
/// without it under CAPSID_REQUIRE_INTEROP): copick writes the tomograms (its own OME-Zarr
/// pyramid and chunking) and the true particles as picks of `curation`; capsid trains on them for
/// a few steps, segments every run into the project, picks and writes the picks back; copick
/// reads the segmentation equal to capsid's label map and the picks at the STAR list's
/// positions (Å, within 1e-3).
#[test]
fn copick_made_project_round_trip() {
    let Some(python) = interop_python("CAPSID_COPICK_PYTHON") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let sim = tmp.path().join("sim");
    let proj = tmp.path().join("proj");
    assert_ok(&capsid(&[
        "simulate",
        "--preset",
        "tiny",
        "--seed",
        "6",
        "--tomograms",
        "2",
        "--out",
        &s(&sim),
    ]));
    run_interop(
        &python,
        "copick_interop.py",
        &[
            "create".as_ref(),
            proj.as_os_str(),
            sim.as_os_str(),
            "20".as_ref(),
        ],
    );
    let config = s(&proj.join("copick_config.json"));
    let run = tmp.path().join("run");
    assert_ok(&capsid(&[
        "train",
        "--model",
        "unet",
        "--copick",
        &config,
        "--patch",
        "16",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--steps",
        "2",
        "--out",
        &s(&run),
    ]));
    let seg = tmp.path().join("seg");
    assert_ok(&capsid(&[
        "segment",
        &s(&run),
        "--copick",
        &config,
        "--out",
        &s(&seg),
        "--patch",
        "32",
        "--copick-segmentation",
        "predictions",
    ]));
    let picks = tmp.path().join("picks.star");
    assert_ok(&capsid(&[
        "pick",
        &s(&seg.join("tomo_000_labels.mrc")),
        &s(&seg.join("tomo_001_labels.mrc")),
        "--classes",
        &s(&run.join("class_table.toml")),
        "--out",
        &s(&picks),
        "--copick",
        &config,
    ]));
    // What copick must read: the STAR list's picks in Å, by run and object.
    let list = capsid_io::particles::read_particles(
        &picks,
        &capsid_io::particles::ReadOptions {
            allow_empty: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!list.is_empty(), "no picks to write back");
    let mut expected = serde_json::Map::new();
    for p in &list {
        let run = expected
            .entry(p.tomogram.clone().unwrap())
            .or_insert_with(|| serde_json::json!({}));
        let pts = run
            .as_object_mut()
            .unwrap()
            .entry(p.class.clone())
            .or_insert_with(|| serde_json::json!([]));
        pts.as_array_mut()
            .unwrap()
            .push(serde_json::json!([p.x * 20.0, p.y * 20.0, p.z * 20.0]));
    }
    let expected_path = tmp.path().join("expected.json");
    std::fs::write(
        &expected_path,
        serde_json::Value::Object(expected).to_string(),
    )
    .unwrap();
    run_interop(
        &python,
        "copick_interop.py",
        &[
            "picks".as_ref(),
            config.as_ref(),
            "capsid".as_ref(),
            "0".as_ref(),
            expected_path.as_os_str(),
        ],
    );
    for run_name in ["tomo_000", "tomo_001"] {
        let labels = seg.join(format!("{run_name}_labels.mrc"));
        copick_reads_segmentation(&python, &config, run_name, &labels, "1:1,2:2,3:3");
    }
}

/// copick (through `python`) finds run `run`'s multilabel segmentation `predictions` of user
/// `capsid`, session `0`, equal to capsid's label map `labels` with labels replaced per
/// `mapping` (`k:v,…`).
fn copick_reads_segmentation(python: &str, config: &str, run: &str, labels: &Path, mapping: &str) {
    run_interop(
        python,
        "copick_interop.py",
        &[
            "segmentation".as_ref(),
            config.as_ref(),
            run.as_ref(),
            "capsid".as_ref(),
            "0".as_ref(),
            "predictions".as_ref(),
            labels.as_os_str(),
            mapping.as_ref(),
        ],
    );
}
