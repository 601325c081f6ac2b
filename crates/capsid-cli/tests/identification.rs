//! Identification end to end (issue 12): a small tomogram where every ribosome has a look-alike
//! of the same mass, bounding radius and radial profile but another shape (an unlabelled decoy).
//! Train the UNet on one tomogram with the identification recipe (hard negatives, flips), then
//! segment, pick (with the run's tuned settings) and evaluate a second tomogram with decoys
//! counted. A network that detects every blob of the right size picks the decoys (share ≈ 1); one
//! that picks nothing has recall 0: both fail.
//!
//! About three minutes on 2 cores. Measured (Intel Xeon, 2 cores, release build): ribosome recall
//! 7/12 = 0.58 with 2 background false picks and 0 of 12 look-alikes picked; the bounds leave a
//! margin for other CPUs' rounding. At this SNR (0.3) the same run without hard negatives also
//! picked no look-alike (recall 8/12): the test guards against a network that detects every blob
//! or picks nothing, not for the recipe's gain, which bench/quality.sh measures at SNR 0.02.

mod common;
use common::ok;

/// Recall floor for the ribosomes of the held-out tomogram (strict tolerance, 0.5 × radius).
const MIN_RECALL: f64 = 0.4;
/// Bound on the share of ribosome look-alikes picked as ribosomes.
const MAX_DECOYS_PICKED: f64 = 0.35;

const SIM_CONFIG: &str = r#"
preset = "tiny"
shape_zyx = [48, 96, 96]
slab_thickness_vox = 40
tomograms = 2
seed = 5

[noise]
snr = 0.3

[[class]]
name = "ribosome"
builtin = "ribosome"
count = 12

[[class]]
name = "ribosome_decoy"
scrambled_from = "ribosome"
decoy = true
count = 12
"#;

#[test]
fn trained_network_rejects_same_size_look_alikes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |s: &str| d.join(s).display().to_string();
    std::fs::write(d.join("sim.toml"), SIM_CONFIG).unwrap();
    ok(&["simulate", "--config", &p("sim.toml"), "--out", &p("sim")]);
    ok(&[
        "train",
        "--model",
        "unet",
        "--classes",
        &p("sim/class_table.toml"),
        "--tomogram",
        &p("sim/tomo_000/reconstruction.mrc"),
        "--particles",
        &p("sim/tomo_000/particle_locations.txt"),
        "--patch",
        "32",
        "--batch",
        "4",
        "--epochs",
        "8",
        "--steps",
        "20",
        "--lr",
        "1e-3",
        "--negative-ratio",
        "0.3",
        "--augment",
        "--seed",
        "1",
        "--out",
        &p("run"),
    ]);
    assert!(d.join("run/pick_settings.toml").is_file());
    ok(&[
        "segment",
        &p("run"),
        &p("sim/tomo_001/reconstruction.mrc"),
        "--out",
        &p("seg"),
    ]);
    // No --min-fraction: pick finds the run's tuned settings through seg/segment.toml.
    ok(&[
        "pick",
        &p("seg/tomo_001_labels.mrc"),
        "--classes",
        &p("run/class_table.toml"),
        "--out",
        &p("picks.star"),
    ]);
    let record = std::fs::read_to_string(d.join("picks.star.pick.toml")).unwrap();
    assert!(record.contains("pick_settings.toml"), "{record}");
    ok(&[
        "evaluate",
        "--picks",
        &p("picks.star"),
        "--truth",
        &p("sim/tomo_001/particle_locations.txt"),
        "--classes",
        &p("sim/class_table.toml"),
        "--decoys",
        &p("sim/tomo_001/decoys.star"),
        "--tolerance",
        "0.5",
        "--voxel-size",
        "20",
        "--out",
        &p("eval"),
    ]);
    let text = std::fs::read_to_string(d.join("eval/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ribosome = &summary["classes"][0];
    let decoys = &summary["decoys"];
    eprintln!("ribosome: {ribosome}\ndecoys: {decoys}");
    let recall = ribosome["recall"].as_f64().unwrap();
    let share = decoys["share_decoys_picked"].as_f64().unwrap();
    assert!(decoys["n_decoys"].as_u64().unwrap() >= 5, "{decoys}");
    assert!(
        recall >= MIN_RECALL,
        "ribosome recall {recall:.3} < {MIN_RECALL}"
    );
    assert!(
        share <= MAX_DECOYS_PICKED,
        "{:.0} % of the look-alikes were picked as ribosomes (bound {:.0} %)",
        100.0 * share,
        100.0 * MAX_DECOYS_PICKED
    );
}
