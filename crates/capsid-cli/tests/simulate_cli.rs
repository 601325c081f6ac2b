//! `capsid simulate` end to end through the binary.

use std::process::Command;

mod common;

fn capsid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_capsid"))
}

#[test]
fn tiny_preset_writes_the_shrec_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let st = capsid()
        .args([
            "simulate", "--preset", "tiny", "--seed", "3", "--json", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // --json: per tomogram, particles placed per class, on stdout.
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let placed = v["tomograms"][0]["placed"]["ribosome"].as_u64().unwrap();
    assert!(v["particles"].as_u64().unwrap() >= placed, "{v}");
    for f in [
        "reconstruction.mrc",
        "grandmodel.mrc",
        "class_mask.mrc",
        "occupancy_mask.mrc",
        "particle_locations.txt",
        "particles.star",
        "class_table.toml",
        "simulate_config.toml",
        "simulate_summary.toml",
        "templates/ribosome.mrc",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let locs = std::fs::read_to_string(out.join("particle_locations.txt")).unwrap();
    let ribosomes = locs.lines().filter(|l| l.starts_with("ribosome ")).count();
    assert!(ribosomes >= 20, "{ribosomes} ribosomes");
    assert_eq!(ribosomes as u64, placed);
    let cfg = std::fs::read_to_string(out.join("simulate_config.toml")).unwrap();
    assert!(
        cfg.contains("seed = 3") && cfg.contains("preset = \"tiny\""),
        "{cfg}"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    for args in [
        vec!["--preset", "tiny", "--count", "nope=3"],
        vec!["--preset", "huge"],
        vec![
            "--preset",
            "tiny",
            "--class-from-model",
            "/no/such/file.cif:x",
        ],
        vec!["--preset", "tiny", "--slab", "0"],
    ] {
        let st = capsid()
            .arg("simulate")
            .args(&args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(st.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&st.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(!out.join("reconstruction.mrc").exists());
    }
}

/// `--copick DIR`: the simulation as a copick project — configuration with every class as a
/// pickable object, each tomogram as an OME-Zarr run at its voxel spacing equal to its MRC, and
/// the true particles as picks of user `curation` (Å) that read back to the SHREC positions;
/// copick itself opens it with CAPSID_COPICK_PYTHON (a Python with copick and mrcfile; skipped
/// without it, a failure under CAPSID_REQUIRE_INTEROP).
#[test]
fn copick_project_of_a_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let cp = dir.path().join("project");
    let st = capsid()
        .args([
            "simulate",
            "--preset",
            "tiny",
            "--seed",
            "4",
            "--tomograms",
            "2",
            "--out",
        ])
        .arg(&out)
        .arg("--copick")
        .arg(&cp)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cp.join("copick_config.json")).unwrap())
            .unwrap();
    let objects: Vec<&str> = config["pickable_objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(objects.contains(&"ribosome"), "{config}");
    let table = capsid_core::ClassTable::load(&out.join("class_table.toml")).unwrap();
    for run in ["tomo_000", "tomo_001"] {
        let mrc = out.join(run).join("reconstruction.mrc");
        let zarr = cp.join(format!("ExperimentRuns/{run}/VoxelSpacing20.000/wbp.zarr"));
        let a = capsid_io::mrc::read_volume(&mrc).unwrap();
        let b = capsid_io::mrc::read_volume(&zarr).unwrap();
        assert_eq!(a.data, b.data, "{run}");
        assert_eq!(b.voxel_size_a, [20.0; 3]);
        let ropts = capsid_io::particles::ReadOptions {
            classes: Some(table.clone()),
            ..Default::default()
        };
        let truth = capsid_io::particles::read_particles(
            &out.join(run).join("particle_locations.txt"),
            &ropts,
        )
        .unwrap();
        let picks = cp.join(format!(
            "ExperimentRuns/{run}/Picks/curation_0_ribosome.json"
        ));
        let got = capsid_io::particles::read_particles(&picks, &ropts).unwrap();
        let want: Vec<_> = truth.iter().filter(|p| p.class == "ribosome").collect();
        assert_eq!(got.len(), want.len(), "{run}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g.x - w.x).abs() < 1e-6 && (g.z - w.z).abs() < 1e-6,
                "{run}"
            );
            assert_eq!(g.tomogram.as_deref(), Some(run));
        }
    }
    // capsid's picks back into the project: one file per run and class, user capsid, session 1.
    let mut picks = Vec::new();
    let mut expected = serde_json::Map::new();
    for (k, run) in ["tomo_000", "tomo_001"].iter().enumerate() {
        let mut p = capsid_core::Particle::new("ribosome", 10.0 + k as f64, 20.0, 5.5);
        p.tomogram = Some(run.to_string());
        p.score = Some(0.9);
        picks.push(p);
        expected.insert(
            run.to_string(),
            serde_json::json!({"ribosome": [[(10.0 + k as f64) * 20.0, 400.0, 110.0]]}),
        );
    }
    let star = dir.path().join("picks.star");
    capsid_io::particles::write_particles(&star, &picks, &Default::default()).unwrap();
    let template = cp.join("ExperimentRuns/{tomo}/Picks/capsid_1_{class}.json");
    let st = capsid()
        .arg("convert")
        .arg(&star)
        .arg(&template)
        .args([
            "--voxel-size",
            "20",
            "--user-id",
            "capsid",
            "--session-id",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let written = cp.join("ExperimentRuns/tomo_001/Picks/capsid_1_ribosome.json");
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(
        text.contains("\"user_id\": \"capsid\"") && text.contains("\"session_id\": \"1\""),
        "{text}"
    );
    let expected_path = dir.path().join("expected.json");
    std::fs::write(
        &expected_path,
        serde_json::Value::Object(expected).to_string(),
    )
    .unwrap();

    // copick's own reading (copick pins zarr 2, so it has a Python of its own).
    let Some(python) = common::interop_python("CAPSID_COPICK_PYTHON") else {
        return;
    };
    let config = cp.join("copick_config.json");
    let interop =
        |args: &[&std::ffi::OsStr]| common::run_interop(&python, "copick_interop.py", args);
    interop(&[
        "check".as_ref(),
        config.as_os_str(),
        out.as_os_str(),
        "20".as_ref(),
    ]);
    interop(&[
        "picks".as_ref(),
        config.as_os_str(),
        "capsid".as_ref(),
        "1".as_ref(),
        expected_path.as_os_str(),
    ]);
}
