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
            symmetry: None,
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
        1.0,
    )
    .unwrap();
    (s, parts)
}

fn config() -> TrainConfig {
    let mut cfg = TrainConfig {
        net: NetConfig::by_name("unet", 2).unwrap(),
        ..TrainConfig::default()
    };
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

/// Mining the model's false positives: balls that look exactly like the labelled ones but carry
/// no label are what a model trained on the labelled ones predicts outside them, so a mining round
/// finds them, lists them in the run folder and adds them to the hard negatives.
#[test]
fn mining_turns_the_models_false_positives_into_negatives() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (mut s, parts) = sample(1);
    // Unlabelled look-alikes: the same bright balls where no particle is listed.
    let decoys: Vec<[f64; 3]> = vec![[8.0, 33.0, 17.0], [33.0, 13.0, 6.0], [33.0, 33.0, 6.0]];
    for d in &decoys {
        assert!(parts.iter().all(|p| p.distance_to(*d) > 8.0), "{d:?}");
    }
    for ((z, y, x), v) in s.tomogram.data.indexed_iter_mut() {
        let p = [x as f64, y as f64, z as f64];
        if decoys
            .iter()
            .any(|d| (0..3).map(|a| (p[a] - d[a]).powi(2)).sum::<f64>() <= 9.0)
        {
            *v += 2.0;
        }
    }
    let mut cfg = config();
    cfg.epochs = 3;
    cfg.steps_per_epoch = 8;
    cfg.batch = 4;
    cfg.data.negative_ratio = 0.25;
    cfg.data.background_ratio = 0.25;
    cfg.data.negative_source = capsid_nn::mining::NegativeSource::Model;
    cfg.data.mine_every = 2;
    cfg.data.mine_region = 64;
    let mut log = Messages(vec![]);
    train(
        vec![s],
        &table(),
        &cfg,
        &out,
        &Device::flex(),
        &TrainOptions::default(),
        &mut log,
    )
    .unwrap();
    assert!(
        log.0
            .iter()
            .any(|m| m.starts_with("epoch 2: the model's false positives")),
        "{:?}",
        log.0
    );
    let csv = std::fs::read_to_string(out.join("mined_negatives.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(2).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(!rows.is_empty(), "nothing mined: {:?}", log.0);
    for r in &rows {
        let c = [r[0], r[1], r[2]];
        // Never on a labelled particle; every mined place in round (epoch) 2.
        assert!(parts.iter().all(|p| p.distance_to(c) > 3.0), "{c:?}");
        assert_eq!(r[3], 2.0);
    }
    // At least one of them is a look-alike.
    assert!(
        rows.iter().any(|r| decoys
            .iter()
            .any(|d| (0..3).map(|a| (r[a] - d[a]).powi(2)).sum::<f64>() <= 4.0)),
        "no look-alike among {rows:?}"
    );
}

/// Collects the trainer's messages.
struct Messages(Vec<String>);

impl TrainObserver for Messages {
    fn message(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
}

/// `monitor = val_pick_f1`: the held-out tomogram is segmented and picked at the chosen epochs
/// (and the last), each evaluation is a line of `val_picks.csv`, the best one's picking settings
/// are saved with its weights, and a pick F1 the model cannot reach keeps no later epoch.
#[test]
fn pick_f1_monitor_keeps_the_best_picking_epoch_and_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut cfg = config();
    cfg.epochs = 3;
    cfg.steps_per_epoch = 4;
    cfg.batch = 4;
    cfg.monitor = Monitor::ValPickF1;
    cfg.val_pick_every = 2;
    cfg.data.folds = 2;
    cfg.data.split_by = capsid_nn::data::SplitBy::Tomogram;
    let samples = vec![sample(1).0, sample(2).0];
    let device = Device::flex();
    #[derive(Default)]
    struct Log(Vec<String>);
    impl TrainObserver for Log {
        fn message(&mut self, text: &str) {
            self.0.push(text.to_string());
        }
    }
    let mut log = Log::default();
    let summary = train(
        samples,
        &table(),
        &cfg,
        &out,
        &device,
        &TrainOptions::default(),
        &mut log,
    )
    .unwrap();
    assert!(summary.pick_settings_saved);
    let csv = std::fs::read_to_string(out.join(PICK_METRICS)).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0], "epoch,step,mean_pick_f1,pick_f1_ball,picker_ball",
        "{csv}"
    );
    // Epoch 2 (every 2) and epoch 3 (the last); not epoch 1.
    let epochs: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["2", "3"], "{csv}");
    let f1_of = |e: &str| -> f64 {
        let l = lines[1..]
            .iter()
            .find(|l| l.starts_with(&format!("{e},")))
            .unwrap();
        l.split(',').nth(2).unwrap().parse().unwrap()
    };
    // The later evaluation is kept only when it is strictly better.
    let best = summary.state.best_epoch;
    let expected = if f1_of("3") > f1_of("2") { 3 } else { 2 };
    assert_eq!(best, expected, "{csv}");
    let settings = capsid_pick::PickSettings::load(&out.join("pick_settings.toml")).unwrap();
    assert_eq!(settings.classes.len(), 1);
    assert!((settings.classes[0].tuning_f1 - f1_of(&best.to_string())).abs() < 1e-5);
    assert!(
        settings.tuned_on.contains("the validation tomogram"),
        "{}",
        settings.tuned_on
    );
    assert!(
        log.0
            .iter()
            .any(|m| m.starts_with("epoch 2: pick F1 on balls")),
        "{:?}",
        log.0
    );
    // A run that monitors the loss writes neither file, and replaces the earlier run's.
    cfg.monitor = Monitor::ValLoss;
    let s2 = train(
        vec![sample(1).0, sample(2).0],
        &table(),
        &cfg,
        &out,
        &device,
        &TrainOptions::default(),
        &mut Quiet,
    )
    .unwrap();
    assert!(!s2.pick_settings_saved);
    assert!(!out.join(PICK_METRICS).exists());
    assert!(!out.join("pick_settings.toml").exists());
}
