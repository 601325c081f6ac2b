//! Training runs end to end on a tiny synthetic tomogram: learning, run folder, resume, segment.

use burn::tensor::Device;
use capsid_core::{ClassDef, ClassTable, Particle, Volume};
use capsid_nn::data::{make_sample, TrainSample};
use capsid_nn::metrics::read_metrics_csv;
use capsid_nn::model::load_model_folder;
use capsid_nn::segment::{argmax_labels, segment_volume, NetPredictor, SegmentConfig};
use capsid_nn::train::*;
use capsid_nn::NetConfig;
use ndarray::{Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn table() -> ClassTable {
    ClassTable {
        classes: vec![ClassDef {
            name: "ball".into(),
            label: 1,
            radius_a: None,
            radius_vox: Some(3.0),
            template: None,
        }],
    }
}

/// Bright balls of radius 3 on Gaussian noise, 24 × 40 × 40 voxels.
fn sample(seed: u64) -> (TrainSample, Vec<Particle>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = (24usize, 40usize, 40usize);
    let mut parts = Vec::new();
    for i in 0..12 {
        let x = 5.0 + ((i * 11) % 30) as f64;
        let y = 5.0 + ((i * 17) % 30) as f64;
        let z = 5.0 + ((i * 5) % 14) as f64;
        parts.push(Particle::new("ball", x, y, z));
    }
    let mut data = Array3::from_shape_fn(shape, |_| rng.gen_range(-1.0f32..1.0));
    for ((z, y, x), v) in data.indexed_iter_mut() {
        if parts
            .iter()
            .any(|p| p.distance_to([x as f64, y as f64, z as f64]) <= 3.0)
        {
            *v += 2.0;
        }
    }
    let s = make_sample(
        "balls",
        Volume::new(data, 10.0),
        &parts,
        None,
        &table(),
        &[],
    )
    .unwrap();
    (s, parts)
}

fn config() -> TrainConfig {
    let mut cfg = TrainConfig::default();
    cfg.net = NetConfig::by_name("unet", 2).unwrap();
    cfg.data.patch = 16;
    cfg.data.max_shift = 3;
    cfg.data.background_ratio = 0.25;
    cfg.data.folds = 4;
    cfg.batch = 2;
    cfg.epochs = 2;
    cfg.steps_per_epoch = 2;
    cfg.lr = 1e-3;
    cfg.seed = 3;
    cfg
}

#[test]
fn tiny_training_run_learns_and_writes_the_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut cfg = config();
    cfg.epochs = 4;
    cfg.steps_per_epoch = 6;
    cfg.batch = 4;
    let (s, _) = sample(1);
    let device = Device::flex();
    let summary = train(
        vec![s.clone()],
        &table(),
        &cfg,
        &out,
        &device,
        &TrainOptions::default(),
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(summary.state.global_step, 24);
    let rows = read_metrics_csv(&out.join("metrics.csv"), 1).unwrap();
    assert_eq!(rows.len(), 4);
    let first = rows[0].train_loss;
    let last = rows[3].train_loss;
    assert!(
        last < first * 0.9,
        "training loss did not fall: {first} → {last}"
    );
    assert!(rows.iter().all(|r| r.val_loss.is_finite()));
    for f in [
        "config.toml",
        "class_table.toml",
        "net.toml",
        "weights.bpk",
        "learning_curve.png",
        "last/optimizer.bpk",
        "last/train_state.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let back = load_run_config(&out).unwrap();
    assert_eq!(back, cfg);
    // The best model segments a tomogram: probabilities sum to one, shape kept.
    let (net_cfg, net) = load_model_folder(&out, &device).unwrap();
    assert_eq!(net_cfg, cfg.net);
    let mut pred = NetPredictor {
        net,
        device,
        num_classes: 2,
    };
    let seg = SegmentConfig {
        patch: 16,
        overlap: 4,
        ..SegmentConfig::default()
    };
    let probs = segment_volume(&s.tomogram.data.view(), &seg, &mut pred).unwrap();
    assert_eq!(probs.shape(), &[2, 24, 40, 40]);
    let sum = probs.sum_axis(Axis(0));
    assert!(sum.iter().all(|v| (v - 1.0).abs() < 1e-4));
    let labels = argmax_labels(&probs.view());
    // Foreground predictions favour the balls: precision of label 1 above the ball fraction.
    let fg: Vec<(u8, u8)> = labels
        .iter()
        .zip(s.labels.iter())
        .map(|(&p, &t)| (p, t))
        .collect();
    let predicted = fg.iter().filter(|(p, _)| *p == 1).count();
    let hits = fg.iter().filter(|(p, t)| *p == 1 && *t == 1).count();
    let base = s.labels.iter().filter(|&&t| t == 1).count() as f64 / s.labels.len() as f64;
    assert!(predicted > 0, "nothing segmented");
    assert!(
        hits as f64 / predicted as f64 > base,
        "precision {} ≤ base rate {base}",
        hits as f64 / predicted as f64
    );
}

#[test]
fn resume_continues_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let (s, _) = sample(2);
    let device = Device::flex();
    // Uninterrupted: 2 epochs × 2 steps.
    let a = dir.path().join("a");
    train(
        vec![s.clone()],
        &table(),
        &cfg,
        &a,
        &device,
        &TrainOptions::default(),
        &mut Quiet,
    )
    .unwrap();
    // Interrupted after 3 steps (mid-epoch 2), then resumed.
    let b = dir.path().join("b");
    let stop = TrainOptions {
        resume: false,
        stop_after_steps: Some(3),
    };
    let part = train(
        vec![s.clone()],
        &table(),
        &cfg,
        &b,
        &device,
        &stop,
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(part.reason, "interrupted");
    assert_eq!(part.state.global_step, 3);
    assert_eq!(
        read_metrics_csv(&b.join("metrics.csv"), 1).unwrap().len(),
        1
    );
    let resume = TrainOptions {
        resume: true,
        stop_after_steps: None,
    };
    let done = train(
        vec![s.clone()],
        &table(),
        &cfg,
        &b,
        &device,
        &resume,
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(done.state.global_step, 4);
    assert!(done.state.finished);
    let ra = read_metrics_csv(&a.join("metrics.csv"), 1).unwrap();
    let rb = read_metrics_csv(&b.join("metrics.csv"), 1).unwrap();
    assert_eq!(rb.len(), 2);
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x.step, y.step);
        assert!(
            (x.train_loss - y.train_loss).abs() < 1e-4 * x.train_loss.abs().max(1.0),
            "{x:?} vs {y:?}"
        );
        assert!(
            (x.val_loss - y.val_loss).abs() < 1e-4 * x.val_loss.abs().max(1.0),
            "{x:?} vs {y:?}"
        );
    }
    // Extending the epochs continues from the end.
    let mut more = cfg.clone();
    more.epochs = 3;
    let ext = train(vec![s], &table(), &more, &b, &device, &resume, &mut Quiet).unwrap();
    assert_eq!(ext.state.global_step, 6);
    assert_eq!(
        read_metrics_csv(&b.join("metrics.csv"), 1).unwrap().len(),
        3
    );
}
