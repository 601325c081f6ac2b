//! End to end: `capsid demo` on the `tiny` preset (simulate → train the UNet → segment → pick →
//! evaluate → report), scored on a second tomogram simulated with another seed, so the network is
//! judged on particles it never saw. The ribosome (the large, easy class) must be found.
//!
//! A few minutes on 2 cores. Bound: strict F1 (CZII tolerance, 0.5 × class radius) of the ribosome
//! ≥ 0.7 after 100 training steps; `demo` defaults run longer and reach more (README).

use std::process::Command;

/// Minimum ribosome F1 on the held-out tomogram. Measured runs reach it with a margin (see the
/// closing note of issue 5); an untrained or broken network scores 0.
const MIN_RIBOSOME_F1: f64 = 0.7;

#[test]
fn demo_on_tiny_preset_finds_ribosomes_in_an_unseen_tomogram() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let run = Command::new(env!("CARGO_BIN_EXE_capsid"))
        .args([
            "demo", "--preset", "tiny", "--epochs", "4", "--steps", "25", "--seed", "1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run capsid demo");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "capsid demo failed:\n{stderr}");

    // The held-out tomogram was simulated separately and is the one evaluated.
    assert!(out.join("sim_test/reconstruction.mrc").is_file());
    let text = std::fs::read_to_string(out.join("eval/unet/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        summary["inputs"]["truth"].as_str().unwrap(),
        out.join("sim_test/particle_locations.txt")
            .display()
            .to_string()
    );
    let classes = summary["classes"].as_array().unwrap();
    let ribosome = classes
        .iter()
        .find(|c| c["class"] == "ribosome")
        .expect("ribosome row");
    let f1 = ribosome["f1"].as_f64().unwrap();
    eprintln!("ribosome: {ribosome}");
    assert!(
        f1 >= MIN_RIBOSOME_F1,
        "ribosome F1 {f1:.3} < {MIN_RIBOSOME_F1} on the held-out tomogram"
    );

    // Every stage left its output; the report page names each stage's wall time.
    for p in [
        "train/unet/weights.bpk",
        "segment/unet/sim_test_labels.mrc",
        "pick/unet/sim_test_picks.star",
        "timings.json",
        "report/index.html",
    ] {
        assert!(out.join(p).is_file(), "{p} missing");
    }
    let html = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    for stage in [
        "simulate",
        "train unet",
        "segment unet",
        "pick unet",
        "evaluate unet",
    ] {
        assert!(html.contains(stage), "report lacks stage '{stage}'");
    }
}
