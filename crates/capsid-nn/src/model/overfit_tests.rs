//! Both networks must be able to fit one simulated batch: voxel Dice of the particle class
//! above 0.95 within a fixed number of Adam steps (lr 1e-3, not the paper's 1e-4, so that the
//! test stays short). Dice is measured in inference mode (`valid()`, batch norms on running
//! statistics) every 10 steps.

use super::*;
use crate::loss::{class_weights_inverse_frequency, dice_ce_loss, recon_loss};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// A batch of `n` patches of edge `p` (voxels), each with one spherical particle of radius `r`
/// (density +1, Gaussian noise σ 0.5, then z-scored), and its labels (1 inside the sphere).
fn simulated_batch(n: usize, p: usize, r: f32, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 0.5).unwrap();
    let mut x = Vec::with_capacity(n * p * p * p);
    let mut y = Vec::with_capacity(n * p * p * p);
    for b in 0..n {
        // Centres differ between patches so that the net cannot learn one fixed mask.
        let c = [
            p as f32 / 2.0 - 1.5 + b as f32 * 2.0,
            p as f32 / 2.0 + 1.0,
            p as f32 / 2.0 - b as f32,
        ];
        let mut patch = Vec::with_capacity(p * p * p);
        for z in 0..p {
            for yy in 0..p {
                for xx in 0..p {
                    let d2 = (z as f32 - c[0]).powi(2)
                        + (yy as f32 - c[1]).powi(2)
                        + (xx as f32 - c[2]).powi(2);
                    let inside = d2 <= r * r;
                    patch.push(if inside { 1.0 } else { 0.0 } + noise.sample(&mut rng));
                    y.push(inside as i64);
                }
            }
        }
        let m = patch.iter().sum::<f32>() / patch.len() as f32;
        let s = (patch.iter().map(|v| (v - m).powi(2)).sum::<f32>() / patch.len() as f32).sqrt();
        x.extend(patch.iter().map(|v| (v - m) / s));
    }
    (x, y)
}

/// Voxel Dice of class 1 between the argmax of `logits` and `target`.
fn particle_dice(logits: Tensor<5>, target: &[i64]) -> f64 {
    let pred = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let (mut inter, mut np, mut nt) = (0usize, 0usize, 0usize);
    for (p, t) in pred.iter().zip(target) {
        inter += (*p == 1 && *t == 1) as usize;
        np += (*p == 1) as usize;
        nt += (*t == 1) as usize;
    }
    2.0 * inter as f64 / (np + nt).max(1) as f64
}

/// Trains `cfg` on one batch; returns (step at which Dice > 0.95 first held, that Dice), or the
/// best Dice seen if it never did.
fn overfit(cfg: &NetConfig, patch: usize, max_steps: usize) -> Result<(usize, f64), f64> {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    let n = 2;
    let (xv, yv) = simulated_batch(n, patch, 3.5, 1);
    let shape = [n, 1, patch, patch, patch];
    let x = Tensor::<5>::from_data(TensorData::new(xv.clone(), shape), &ad);
    let y = Tensor::<4, Int>::from_data(TensorData::new(yv.clone(), [n, patch, patch, patch]), &ad);
    let x_plain = Tensor::<5>::from_data(TensorData::new(xv, shape), &plain);
    let fg = yv.iter().filter(|&&v| v == 1).count() as u64;
    let weights = class_weights_inverse_frequency(&[yv.len() as u64 - fg, fg]);
    let mut net = Net::init_seeded(cfg, &ad, 5);
    let mut optim = AdamConfig::new().init();
    let mut best = 0.0f64;
    for step in 1..=max_steps {
        let out = net.forward(x.clone());
        let mut loss = dice_ce_loss(out.logits, y.clone(), Some(&weights));
        if let Some(recon) = out.recon {
            loss = loss + recon_loss(recon, x.clone(), Some(y.clone())).mul_scalar(0.1);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        if step % 10 == 0 {
            let dice = particle_dice(net.valid().forward(x_plain.clone()).logits, &yv);
            best = best.max(dice);
            if dice > 0.95 {
                return Ok((step, dice));
            }
        }
    }
    Err(best)
}

#[test]
fn unet_overfits_one_batch() {
    let cfg = NetConfig::by_name("unet", 2).unwrap();
    match overfit(&cfg, 16, 200) {
        Ok((step, dice)) => eprintln!("unet: Dice {dice:.3} after {step} steps"),
        Err(best) => panic!("unet did not reach Dice 0.95 in 200 steps (best {best:.3})"),
    }
}

#[test]
fn ucaps_overfits_one_batch() {
    let cfg = NetConfig::by_name("ucaps", 2).unwrap();
    match overfit(&cfg, 16, 200) {
        Ok((step, dice)) => eprintln!("ucaps: Dice {dice:.3} after {step} steps"),
        Err(best) => panic!("ucaps did not reach Dice 0.95 in 200 steps (best {best:.3})"),
    }
}
