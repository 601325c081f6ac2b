//! A small synthetic run folder for tests and the `synthetic_report` example: a 40×64×72 (z, y, x)
//! tomogram with spherical particles of two classes, ground truth, and the predictions of two
//! "models" (one under-segments, one over-segments), with picks, learning curves, an evaluation
//! summary and stage timings. Deterministic (hash noise, no random generator).

#![allow(dead_code)]

use capsid_core::{Particle, Volume};
use capsid_io::mrc::{write_labels, write_volume, LabelMode, MrcMode};
use capsid_io::particles::{write_particles, WriteOptions};
use ndarray::Array3;
use std::path::Path;

pub const SHAPE_ZYX: [usize; 3] = [40, 64, 72];
pub const VOXEL_A: f32 = 10.0;

pub const CLASS_TABLE: &str = "[[class]]\nname = \"ribosome\"\nlabel = 1\nradius_a = 60.0\n\n[[class]]\nname = \"proteasome\"\nlabel = 2\nradius_vox = 4.0\n";

/// Ground-truth particles: (class, label, radius in voxels, x, y, z).
pub fn truth() -> Vec<(&'static str, u8, f64, f64, f64, f64)> {
    vec![
        ("ribosome", 1, 6.0, 14.0, 16.0, 20.0),
        ("ribosome", 1, 6.0, 40.0, 30.0, 18.0),
        ("ribosome", 1, 6.0, 58.0, 48.0, 22.0),
        ("ribosome", 1, 6.0, 20.0, 46.0, 12.0),
        ("proteasome", 2, 4.0, 30.0, 12.0, 21.0),
        ("proteasome", 2, 4.0, 52.0, 14.0, 19.0),
        ("proteasome", 2, 4.0, 34.0, 52.0, 20.0),
        ("proteasome", 2, 4.0, 62.0, 32.0, 30.0),
    ]
}

fn noise(i: usize) -> f32 {
    // SplitMix64 of the index, mapped to [-1, 1).
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

fn paint(labels: &mut Array3<u8>, label: u8, r: f64, c: [f64; 3]) {
    let [nz, ny, nx] = SHAPE_ZYX;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let d2 = (x as f64 - c[0]).powi(2)
                    + (y as f64 - c[1]).powi(2)
                    + (z as f64 - c[2]).powi(2);
                if d2 <= r * r {
                    labels[[z, y, x]] = label;
                }
            }
        }
    }
}

fn label_volume(data: Array3<u8>) -> Volume<u8> {
    Volume::new(data, VOXEL_A)
}

/// Writes the whole synthetic run into `dir`.
pub fn write_run(dir: &Path) {
    let sim = dir.join("sim/model_0");
    std::fs::create_dir_all(&sim).unwrap();
    std::fs::write(dir.join("sim/class_table.toml"), CLASS_TABLE).unwrap();
    std::fs::write(
        dir.join("run.toml"),
        "seed = 7\n[simulate]\nshape_zyx = [40, 64, 72]\n",
    )
    .unwrap();
    let [nz, ny, nx] = SHAPE_ZYX;
    let mut truth_labels = Array3::<u8>::zeros((nz, ny, nx));
    for (_, l, r, x, y, z) in truth() {
        paint(&mut truth_labels, l, r, [x, y, z]);
    }
    let mut tomo = Array3::<f32>::zeros((nz, ny, nx));
    for (i, v) in tomo.iter_mut().enumerate() {
        *v = 0.8 * noise(i);
    }
    for ((z, y, x), v) in tomo.indexed_iter_mut() {
        if truth_labels[[z, y, x]] > 0 {
            *v -= 1.2; // particles are dense: dark in a cryo-ET reconstruction
        }
    }
    write_volume(
        &sim.join("reconstruction.mrc"),
        &Volume::new(tomo, VOXEL_A),
        MrcMode::Float32,
    )
    .unwrap();
    write_labels(
        &sim.join("class_mask.mrc"),
        &label_volume(truth_labels),
        LabelMode::Uint8Mode0,
    )
    .unwrap();
    let truth_particles: Vec<Particle> = truth()
        .iter()
        .map(|&(c, _, _, x, y, z)| Particle::new(c, x, y, z))
        .collect();
    write_particles(
        &sim.join("particle_locations.txt"),
        &truth_particles,
        &WriteOptions::default(),
    )
    .unwrap();

    // Two models: "ucaps" under-segments (radius - 1), "unet" over-segments (radius + 1). Both miss
    // the last ribosome, shift particles by one voxel in x, add one false particle, and "unet"
    // calls one proteasome a ribosome.
    for (model, dr, wrong) in [("ucaps", -1.0, false), ("unet", 1.0, true)] {
        let mut pred = Array3::<u8>::zeros((nz, ny, nx));
        let mut picks = Vec::new();
        for (i, &(c, l, r, x, y, z)) in truth().iter().enumerate() {
            if i == 3 {
                continue;
            }
            let (c, l) = if wrong && i == 6 {
                ("ribosome", 1)
            } else {
                (c, l)
            };
            paint(&mut pred, l, r + dr, [x + 1.0, y, z]);
            let mut p = Particle::new(c, x + 1.0, y, z);
            p.score = Some(0.9 - 0.05 * i as f64);
            picks.push(p);
        }
        paint(&mut pred, 1, 5.0, [64.0, 8.0, 20.0]);
        let mut fp = Particle::new("ribosome", 64.0, 8.0, 20.0);
        fp.score = Some(0.3);
        picks.push(fp);
        let seg = dir.join("segment").join(model);
        let pick = dir.join("pick").join(model);
        std::fs::create_dir_all(&seg).unwrap();
        std::fs::create_dir_all(&pick).unwrap();
        write_labels(
            &seg.join("model_0_labels.mrc"),
            &label_volume(pred),
            LabelMode::Uint16Mode6,
        )
        .unwrap();
        write_particles(
            &pick.join("model_0_picks.csv"),
            &picks,
            &WriteOptions::default(),
        )
        .unwrap();

        let train = dir.join("train").join(model);
        std::fs::create_dir_all(&train).unwrap();
        let k = if model == "ucaps" { 0.25 } else { 0.3 };
        let rows = (1..=20)
            .map(|e| {
                let t = e as f64;
                let f1 = [
                    0.9 * (1.0 - (-0.3 * t).exp()),
                    0.7 * (1.0 - (-0.2 * t).exp()),
                ];
                capsid_core::run_metrics::EpochRecord {
                    epoch: e,
                    step: 60 * e as u64,
                    lr: 1e-3,
                    train_loss: 1.2 * (-k * t).exp() + 0.1,
                    val_loss: 1.3 * (-k * 0.8 * t).exp() + 0.18,
                    precision: f1.to_vec(),
                    recall: f1.to_vec(),
                    f1: f1.to_vec(),
                    elapsed_s: 12.5 * t,
                }
            })
            .collect();
        capsid_core::run_metrics::RunMetrics {
            classes: vec!["ribosome".into(), "proteasome".into()],
            rows,
        }
        .write(&train.join("metrics.csv"))
        .unwrap();
        std::fs::write(
            train.join("config.toml"),
            format!("model = \"{model}\"\nepochs = 20\nlearning_rate = 0.001\n"),
        )
        .unwrap();

        let eval = dir.join("eval").join(model);
        std::fs::create_dir_all(&eval).unwrap();
        // The shape capsid-eval writes (EvaluationReport), numbers made up to match the picks.
        let pr = |ap: f64, k: f64, drop: f64| {
            let points: Vec<serde_json::Value> = (0..=20)
                .map(|i| {
                    let t = 1.0 - i as f64 / 20.0;
                    let recall = 1.0 - t.powf(k);
                    serde_json::json!({"threshold": t, "precision": 1.0 - drop * recall.powi(3), "recall": recall})
                })
                .collect();
            (ap, points)
        };
        let (r_ap, r_pts) = pr(
            if wrong { 0.81 } else { 0.86 },
            if wrong { 1.5 } else { 2.0 },
            0.5,
        );
        let (p_ap, p_pts) = pr(
            if wrong { 0.70 } else { 0.78 },
            if wrong { 1.2 } else { 1.6 },
            0.75,
        );
        let (r_fp, p_tp, p_fn) = if wrong { (2, 3, 1) } else { (1, 4, 0) };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let f1 = |p: f64, r: f64| {
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        };
        let (rp, rr) = (ratio(3.0, 3.0 + r_fp as f64), 0.75);
        let (pp, prr) = (1.0, ratio(p_tp as f64, 4.0));
        let json = serde_json::json!({
            "capsid_version": "0.1.0",
            "inputs": {"picks": format!("pick/{model}/model_0_picks.csv"), "truth": "sim/model_0/particle_locations.txt"},
            "params": {"tolerance_fraction": 1.0, "beta": 4.0, "class_weights": {}, "voxel_size_a": 10.0, "shape_xyz": [72, 64, 40]},
            "n_picks": 3 + r_fp + p_tp, "n_truth": 8, "truth_ignored": 0, "picks_outside": 0,
            "classes": [
                {"class": "ribosome", "label": 1, "radius_vox": 6.0, "tolerance_vox": 6.0, "weight": 1.0, "n_truth": 4,
                 "n_picks": 3 + r_fp, "picks_outside": 0, "tp": 3, "fp": r_fp, "fn": 1, "precision": rp, "recall": rr,
                 "f1": f1(rp, rr), "fbeta": 0.74, "mean_distance_vox": 1.0},
                {"class": "proteasome", "label": 2, "radius_vox": 4.0, "tolerance_vox": 4.0, "weight": 1.0, "n_truth": 4,
                 "n_picks": p_tp, "picks_outside": 0, "tp": p_tp, "fp": 0, "fn": p_fn, "precision": pp, "recall": prr,
                 "f1": f1(pp, prr), "fbeta": prr, "mean_distance_vox": 1.0}
            ],
            "pooled": {"tp": 3 + p_tp, "fp": r_fp, "fn": 1 + p_fn},
            "pooled_precision": ratio((3 + p_tp) as f64, (3 + p_tp + r_fp) as f64),
            "pooled_recall": ratio((3 + p_tp) as f64, 8.0),
            "pooled_f1": f1(ratio((3 + p_tp) as f64, (3 + p_tp + r_fp) as f64), ratio((3 + p_tp) as f64, 8.0)),
            "macro_avg": {"n_classes": 2, "precision": (rp + pp) / 2.0, "recall": (rr + prr) / 2.0,
                          "f1": (f1(rp, rr) + f1(pp, prr)) / 2.0, "fbeta": (0.74 + prr) / 2.0, "fbeta_weighted": (0.74 + prr) / 2.0},
            "confusion": {"true_classes": ["ribosome", "proteasome", "background"],
                          "picked_classes": ["ribosome", "proteasome", "missed"],
                          "counts": [[3, 0, 1], [if wrong { 1 } else { 0 }, p_tp, p_fn],
                                     [r_fp - if wrong { 1 } else { 0 }, 0, 0]]},
            "hitbox": null,
            "voxel": [
                {"class": "ribosome", "label": 1, "tp": 2000, "fp": if wrong { 900 } else { 150 }, "fn": if wrong { 300 } else { 700 },
                 "dice": if wrong { 0.77 } else { 0.82 }, "iou": if wrong { 0.63 } else { 0.70 },
                 "precision": if wrong { 0.69 } else { 0.93 }, "recall": if wrong { 0.87 } else { 0.74 }}
            ],
            "pr_curves": [
                {"class": "ribosome", "n_positive": 2700, "n_voxels": 184320, "auprc": r_ap, "best_f1": 0.85,
                 "threshold_at_best_f1": 0.45, "dice_at_half": 0.82, "points": r_pts},
                {"class": "proteasome", "n_positive": 1100, "n_voxels": 184320, "auprc": p_ap, "best_f1": 0.74,
                 "threshold_at_best_f1": 0.4, "dice_at_half": 0.7, "points": p_pts}
            ]
        })
        .to_string();
        std::fs::write(eval.join("summary.json"), json).unwrap();
    }
    std::fs::write(
        dir.join("timings.json"),
        r#"{"stages": [{"name": "simulate", "seconds": 41.3}, {"name": "train ucaps", "seconds": 7325.0, "device": "cpu"},
{"name": "train unet", "seconds": 3610.5, "device": "cpu"}, {"name": "segment", "seconds": 95.2}, {"name": "pick", "seconds": 2.1},
{"name": "evaluate", "seconds": 0.4}]}"#,
    )
    .unwrap();
}
