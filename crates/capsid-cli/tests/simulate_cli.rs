//! `capsid simulate` end to end through the binary.

use std::process::Command;

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
