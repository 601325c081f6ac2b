//! Timing behind `capsid bench`: median milliseconds of one inference patch batch and of one
//! training step, with the same meaning as `shared/bench/torch_reference.py`:
//! * inference: forward pass without gradients (batch norms on running statistics);
//! * training step: forward, Dice + CE loss (+ 0.1 · reconstruction BCE for UCaps), backward and
//!   an Adam step (lr 1e-4).
//!
//! Inputs are random (normal patch, uniform labels) from a seeded generator.

use crate::loss::{dice_ce_loss, recon_loss};
use crate::model::{Net, NetConfig};
use crate::NnError;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// "unet" or "ucaps".
    pub model: String,
    /// Cubic patch edge, voxels.
    pub patch: usize,
    pub batch: usize,
    /// Classes including background.
    pub classes: usize,
    /// CPU threads (recorded; the caller sets the pool with [`crate::set_threads`]).
    pub threads: usize,
    pub warmup: usize,
    pub iters: usize,
    pub seed: u64,
    /// Time inference batches (false: `infer_ms` is null).
    pub infer: bool,
    /// Time training steps (false: `train_ms` is null).
    pub train: bool,
}

/// One measurement, printed as one JSON line (keys as the PyTorch reference).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub model: String,
    pub patch: usize,
    pub batch: usize,
    pub classes: usize,
    pub threads: usize,
    pub params: usize,
    /// Median ms per inference batch (None when not timed).
    pub infer_ms: Option<f64>,
    /// Median ms per training step (None when not timed).
    pub train_ms: Option<f64>,
    pub device: String,
    pub burn: &'static str,
    /// The CPU's model name (CPUID brand string).
    pub cpu: String,
    /// Instruction sets detected at run time (those that matter for the kernels).
    pub isa: Vec<&'static str>,
    /// capsid's CPU kernel paths on this CPU: `winograd <avx512|avx2|generic>, gemm
    /// <avx512|fma|scalar>, products <f32|bf16>`
    /// (the CPU backend's convolutions; GPU backends use Burn's own).
    pub kernels: String,
    /// The precision of the convolutions' products that ran: "f32" or "bf16" (`--precision`).
    pub precision: &'static str,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn median_ms(warmup: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let times = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    (median(times) * 10.0).round() / 10.0
}

/// A random patch batch `[B, 1, p, p, p]` (standard normal) and labels `[B, p, p, p]`.
pub fn random_batch(
    batch: usize,
    patch: usize,
    classes: usize,
    seed: u64,
    device: &Device,
) -> (Tensor<5>, Tensor<4, Int>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = batch * patch * patch * patch;
    let x: Vec<f32> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let y: Vec<i64> = (0..n).map(|_| rng.gen_range(0..classes as i64)).collect();
    let x = Tensor::from_data(TensorData::new(x, [batch, 1, patch, patch, patch]), device);
    let y = Tensor::from_data(TensorData::new(y, [batch, patch, patch, patch]), device);
    (x, y)
}

/// Loss of one training step as the reference: Dice + CE (+ 0.1 · reconstruction BCE).
pub fn reference_train_loss(net: &Net, x: Tensor<5>, y: Tensor<4, Int>) -> Tensor<1> {
    let out = net.forward(x.clone());
    let mut loss = dice_ce_loss(out.logits, y, None);
    if let Some(recon) = out.recon {
        loss = loss + recon_loss(recon, x, None).mul_scalar(0.1);
    }
    loss
}

/// Runs the benchmark on `device` (a plain device; training uses `device.autodiff()`).
pub fn run(spec: &BenchSpec, device: &Device, device_name: &str) -> Result<BenchResult, NnError> {
    let cfg = NetConfig::by_name(&spec.model, spec.classes)?;
    cfg.check_patch([spec.patch; 3])?;
    if spec.batch == 0 {
        return Err(NnError::Config("batch must be at least 1".into()));
    }
    let sync = |d: &Device| {
        d.sync().map_err(|e| NnError::Device {
            name: device_name.to_string(),
            reason: format!("{e:?}"),
        })
    };

    // Inference.
    let net = Net::try_init(&cfg, device, spec.seed)?;
    let params = net.num_params();
    let (x, _) = random_batch(spec.batch, spec.patch, spec.classes, spec.seed, device);
    let mut failure = None;
    let infer_ms = spec.infer.then(|| {
        median_ms(spec.warmup, spec.iters, || {
            let out = net.forward(x.clone());
            if let Err(e) = sync(device) {
                failure = Some(e);
            }
            drop(out);
        })
    });
    drop(net);

    // Training step.
    let ad = device.clone().autodiff();
    let mut net = Some(Net::try_init(&cfg, &ad, spec.seed)?);
    let (xa, ya) = random_batch(spec.batch, spec.patch, spec.classes, spec.seed, &ad);
    let mut optim = AdamConfig::new().init();
    let train_ms = spec.train.then(|| {
        median_ms(spec.warmup, spec.iters, || {
            let model = net.take().expect("model present between steps");
            let loss = reference_train_loss(&model, xa.clone(), ya.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            net = Some(optim.step(1e-4, model, grads));
            if let Err(e) = sync(&ad) {
                failure = Some(e);
            }
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let _ = net.map(|n| n.num_params());
    let cpu = capsid_conv::cpu::cpu_report();
    Ok(BenchResult {
        model: cfg.name().to_string(),
        patch: spec.patch,
        batch: spec.batch,
        classes: spec.classes,
        threads: spec.threads,
        params,
        infer_ms,
        train_ms,
        device: device_name.to_string(),
        burn: "0.22.1",
        cpu: cpu.model,
        isa: cpu.features,
        kernels: format!(
            "winograd {}, gemm {}, products {}",
            cpu.winograd, cpu.gemm, cpu.products
        ),
        precision: cpu.products,
    })
}
