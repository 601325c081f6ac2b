//! Training losses.
//!
//! * [`dice_ce_loss`]: cross-entropy (class-weighted, PyTorch's weighted mean) plus
//!   `1 − mean soft Dice` over classes (Dice over the whole batch, smoothing 1e-5), as the
//!   PyTorch reference `dice_ce`. Class weights act on the cross-entropy only.
//! * [`recon_loss`]: binary cross-entropy between the reconstruction (pre-sigmoid) and
//!   `sigmoid(input)`, optionally weighted so that particle and background voxels count half
//!   each ("weighted cross-entropy"); the caller multiplies by the weight (0.1).
//! * [`margin_loss`]: the capsule margin loss on class-capsule lengths.
//! * [`class_weights_inverse_frequency`] and [`downsample_labels`] to prepare their inputs.
//!
//! Every function returns a one-element tensor that can be differentiated.

use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Int, Tensor, TensorData};

/// Smoothing of the soft Dice (numerator and denominator), as the reference.
pub const DICE_SMOOTH: f64 = 1e-5;

/// Class weights proportional to the inverse voxel frequency, scaled so that a perfectly
/// balanced label set gets weight 1 everywhere: `w_c = total / (K · count_c)` with K the number
/// of classes that occur. Classes with no voxel get weight 0 (they never appear as a target).
pub fn class_weights_inverse_frequency(counts: &[u64]) -> Vec<f32> {
    let total: u64 = counts.iter().sum();
    let present = counts.iter().filter(|&&c| c > 0).count();
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (total as f64 / (present as f64 * c as f64)) as f32
            }
        })
        .collect()
}

/// One-hot `[B, C, z, y, x]` (float) of labels `[B, z, y, x]`.
fn one_hot_channels(target: Tensor<4, Int>, num_classes: usize) -> Tensor<5> {
    target
        .one_hot::<5>(num_classes)
        .float()
        .permute([0, 4, 1, 2, 3])
}

/// Dice + cross-entropy of `logits` `[B, C, z, y, x]` against `target` labels `[B, z, y, x]`
/// (values `0..C`).
///
/// `CE = Σ_v w[t_v]·(−log p_v[t_v]) / Σ_v w[t_v]` (plain mean without weights);
/// `Dice_c = (2 Σ p_c·1[t=c] + ε) / (Σ p_c + Σ 1[t=c] + ε)` over batch and voxels;
/// loss = CE + 1 − mean_c Dice_c.
pub fn dice_ce_loss(
    logits: Tensor<5>,
    target: Tensor<4, Int>,
    class_weights: Option<&[f32]>,
) -> Tensor<1> {
    let [_, c, _, _, _] = logits.dims();
    let device = logits.device();
    let onehot = one_hot_channels(target, c);
    let logp = log_softmax(logits.clone(), 1);
    let nll = (logp * onehot.clone()).sum_dim(1).neg(); // [B, 1, z, y, x]
    let ce = match class_weights {
        Some(w) => {
            assert_eq!(w.len(), c, "one class weight per class");
            let w: Tensor<5> =
                Tensor::from_data(TensorData::new(w.to_vec(), [1, c, 1, 1, 1]), &device);
            let wv = (onehot.clone() * w).sum_dim(1); // weight of each voxel's class
            (nll * wv.clone()).sum() / wv.sum()
        }
        None => nll.mean(),
    };
    let p = softmax(logits, 1);
    let inter = (p.clone() * onehot.clone()).sum_dims(&[0, 2, 3, 4]);
    let denom = p.sum_dims(&[0, 2, 3, 4]) + onehot.sum_dims(&[0, 2, 3, 4]);
    let dice = inter
        .mul_scalar(2.0)
        .add_scalar(DICE_SMOOTH)
        .div(denom.add_scalar(DICE_SMOOTH));
    ce + dice.mean().neg().add_scalar(1.0)
}

/// Reconstruction loss: binary cross-entropy between `sigmoid(recon)` and `sigmoid(x)` (the
/// z-scored input squashed to (0, 1)), both `[B, 1, z, y, x]`, computed stably from the logits.
///
/// With `labels` (`[B, z, y, x]`, 0 = background) the voxels are weighted so that particle and
/// background voxels contribute half each (weighted cross-entropy); without, a plain mean.
pub fn recon_loss(recon: Tensor<5>, x: Tensor<5>, labels: Option<Tensor<4, Int>>) -> Tensor<1> {
    let t = sigmoid(x.detach());
    // BCE with logits: max(z, 0) − z·t + log(1 + exp(−|z|)).
    let bce = recon.clone().clamp_min(0.0) - recon.clone() * t + recon.abs().neg().exp().log1p();
    match labels {
        None => bce.mean(),
        Some(labels) => {
            let fg = labels.greater_elem(0).float().unsqueeze_dim::<5>(1);
            let n = fg.dims().iter().product::<usize>() as f64;
            let n_fg = fg.clone().sum();
            // w_fg = 0.5 / n_fg, w_bg = 0.5 / n_bg (a class with no voxel gets no weight).
            let w_fg = n_fg.clone().clamp_min(1.0).recip().mul_scalar(0.5);
            let w_bg = n_fg
                .neg()
                .add_scalar(n)
                .clamp_min(1.0)
                .recip()
                .mul_scalar(0.5);
            let bg = fg.clone().neg().add_scalar(1.0);
            let w = fg * w_fg.reshape([1, 1, 1, 1, 1]) + bg * w_bg.reshape([1, 1, 1, 1, 1]);
            (bce * w.clone()).sum() / w.sum()
        }
    }
}

/// Margin loss of class-capsule lengths `[B, C, z, y, x]` against labels `[B, z, y, x]` at the
/// capsules' resolution (see [`downsample_labels`]).
///
/// As in SegCaps / 3D-UCaps' code (after Sabour et al.): with `a = length − 0.5`,
/// present class: `0.5·max(0, margin − a)²`; absent class: `downweight·0.5·max(0, a + margin)²`,
/// summed over classes and averaged over batch and voxels. The paper's "margin 0.2, down-weight
/// 0.5" therefore asks lengths ≥ 0.7 for the true class and ≤ 0.3 for the others.
pub fn margin_loss(
    capsule_lengths: Tensor<5>,
    target: Tensor<4, Int>,
    margin: f32,
    downweight: f32,
) -> Tensor<1> {
    let [b, c, d, h, w] = capsule_lengths.dims();
    let onehot = one_hot_channels(target, c);
    let a = capsule_lengths.sub_scalar(0.5);
    let pos = a.clone().neg().add_scalar(margin).clamp_min(0.0).square();
    let neg = a.add_scalar(margin).clamp_min(0.0).square();
    let absent = onehot.clone().neg().add_scalar(1.0);
    let per_voxel = (onehot * pos).mul_scalar(0.5) + (absent * neg).mul_scalar(0.5 * downweight);
    per_voxel.sum().div_scalar((b * d * h * w) as f32)
}

/// Labels `[B, z, y, x]` reduced by `factor` along each axis (sizes divisible by `factor`):
/// a block takes the particle class with the most voxels in it, background only if it holds no
/// particle voxel (ties go to the lower label). The class capsules mark particle presence, so a
/// particle smaller than a block still shows.
pub fn downsample_labels(
    labels: Tensor<4, Int>,
    num_classes: usize,
    factor: usize,
) -> Tensor<4, Int> {
    let [b, d, h, w] = labels.dims();
    let f = factor;
    let (d2, h2, w2) = (d / f, h / f, w / f);
    let counts: Tensor<5> = labels
        .one_hot::<5>(num_classes)
        .float()
        .reshape([b, d2, f, h2, f, w2, f, num_classes])
        .sum_dims(&[2, 4, 6])
        .reshape([b, d2, h2, w2, num_classes]);
    // Background counts only when nothing else is there: scale it below one voxel.
    let scale: Vec<f32> = (0..num_classes)
        .map(|k| {
            if k == 0 {
                1.0 / (f * f * f + 1) as f32
            } else {
                1.0
            }
        })
        .collect();
    let device = counts.device();
    let scale: Tensor<5> =
        Tensor::from_data(TensorData::new(scale, [1, 1, 1, 1, num_classes]), &device);
    (counts * scale).argmax(4).reshape([b, d2, h2, w2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn t5(v: Vec<f32>, shape: [usize; 5]) -> Tensor<5> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }
    fn labels(v: Vec<i64>, shape: [usize; 4]) -> Tensor<4, Int> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }
    fn scalar(t: Tensor<1>) -> f64 {
        t.into_data().try_to_vec::<f32>().unwrap()[0] as f64
    }
    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// Two voxels, two classes: p(v0) = (0.25, 0.75) with target 1, p(v1) = (0.5, 0.5) with
    /// target 0.
    fn two_voxels() -> (Tensor<5>, Tensor<4, Int>) {
        // Layout [B=1, C=2, 1, 1, 2]: class 0 logits of v0, v1, then class 1 logits.
        let logits = t5(vec![0.0, 0.0, 3f32.ln(), 0.0], [1, 2, 1, 1, 2]);
        (logits, labels(vec![1, 0], [1, 1, 1, 2]))
    }

    #[test]
    fn dice_ce_matches_hand_computation() {
        let e = DICE_SMOOTH;
        let dice0 = (2.0 * 0.5 + e) / (0.75 + 1.0 + e);
        let dice1 = (2.0 * 0.75 + e) / (1.25 + 1.0 + e);
        let dice_term = 1.0 - (dice0 + dice1) / 2.0;

        let (logits, target) = two_voxels();
        let ce = (-(0.75f64).ln() - (0.5f64).ln()) / 2.0;
        close(scalar(dice_ce_loss(logits, target, None)), ce + dice_term);

        let (logits, target) = two_voxels();
        let ce_w = (3.0 * -(0.75f64).ln() + 1.0 * -(0.5f64).ln()) / 4.0;
        close(
            scalar(dice_ce_loss(logits, target, Some(&[1.0, 3.0]))),
            ce_w + dice_term,
        );
    }

    #[test]
    fn dice_ce_is_small_for_confident_correct_logits() {
        let logits = t5(vec![10.0, -10.0, -10.0, 10.0], [1, 2, 1, 1, 2]);
        let loss = scalar(dice_ce_loss(logits, labels(vec![0, 1], [1, 1, 1, 2]), None));
        assert!(loss < 1e-3, "{loss}");
    }

    fn bce(z: f64, x: f64) -> f64 {
        let t = 1.0 / (1.0 + (-x).exp());
        let s = 1.0 / (1.0 + (-z).exp());
        -(t * s.ln() + (1.0 - t) * (1.0 - s).ln())
    }

    #[test]
    fn recon_loss_matches_hand_computation() {
        let z = [0.0, 2.0, -1.0];
        let x = [0.0, 1.0, -2.0];
        let b: Vec<f64> = (0..3).map(|i| bce(z[i], x[i])).collect();
        let rz = || t5(z.iter().map(|&v| v as f32).collect(), [1, 1, 1, 1, 3]);
        let rx = || t5(x.iter().map(|&v| v as f32).collect(), [1, 1, 1, 1, 3]);
        close(
            scalar(recon_loss(rz(), rx(), None)),
            (b[0] + b[1] + b[2]) / 3.0,
        );
        // One particle voxel (weight 1/2) and two background voxels (1/4 each).
        let lab = labels(vec![2, 0, 0], [1, 1, 1, 3]);
        close(
            scalar(recon_loss(rz(), rx(), Some(lab))),
            0.5 * b[0] + 0.25 * b[1] + 0.25 * b[2],
        );
    }

    #[test]
    fn margin_loss_matches_hand_computation() {
        // Voxel 0: lengths (0.9, 0.4), class 0. Voxel 1: lengths (0.6, 0.35), class 1.
        let lengths = t5(vec![0.9, 0.6, 0.4, 0.35], [1, 2, 1, 1, 2]);
        let target = labels(vec![0, 1], [1, 1, 1, 2]);
        // v0: present a=0.4 → 0; absent a=-0.1 → 0.25·(0.1)². v1: present a=-0.15 → 0.5·0.35²;
        // absent a=0.1 → 0.25·0.3².
        let want = (0.25 * 0.01 + 0.5 * 0.1225 + 0.25 * 0.09) / 2.0;
        close(scalar(margin_loss(lengths, target, 0.2, 0.5)), want);
    }

    #[test]
    fn inverse_frequency_weights() {
        let w = class_weights_inverse_frequency(&[30, 10, 0, 20]);
        let want = [60.0 / 90.0, 2.0, 0.0, 1.0];
        for (a, b) in w.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{w:?}");
        }
        assert_eq!(class_weights_inverse_frequency(&[5, 5]), vec![1.0, 1.0]);
    }

    #[test]
    fn downsampled_labels_keep_small_particles() {
        // [1, 2, 2, 4] labels → factor 2 → [1, 1, 1, 2] blocks of 8 voxels.
        let mut v = vec![0i64; 16];
        // Block 0 (x 0..2): one voxel of class 2 among background → 2.
        v[1] = 2;
        // Block 1 (x 2..4): three voxels of class 1, two of class 3 → 1.
        for i in [2, 3, 6] {
            v[i] = 1;
        }
        for i in [7, 10] {
            v[i] = 3;
        }
        let got = downsample_labels(labels(v, [1, 2, 2, 4]), 4, 2);
        assert_eq!(got.dims(), [1, 1, 1, 2]);
        assert_eq!(
            got.into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap(),
            vec![2, 1]
        );
        let empty = downsample_labels(labels(vec![0; 16], [1, 2, 2, 4]), 4, 2);
        assert_eq!(
            empty
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap(),
            vec![0, 0]
        );
    }
}
