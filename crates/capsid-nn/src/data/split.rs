//! The validation split: [`SplitBy`], the seeded k-fold [`fold_assignment`] and [`split`]
//! of target particles (or whole tomograms) into training and validation sets.

use super::{DataConfig, TrainSample};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How validation data is held out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Target particles are dealt into folds (the seed's 6-fold cross-validation).
    #[default]
    Particle,
    /// Whole tomograms are dealt into folds.
    Tomogram,
}

/// Which target particles and tomograms are used for training and which for validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Training particles as `(sample, particle index)`.
    pub train_particles: Vec<(usize, usize)>,
    /// Validation particles as `(sample, particle index)`.
    pub val_particles: Vec<(usize, usize)>,
    /// Samples that training background patches come from.
    pub train_samples: Vec<usize>,
    /// Samples that validation background patches come from.
    pub val_samples: Vec<usize>,
}

/// Deals `n` items into `folds` folds after a seeded shuffle: returns each item's fold. Fold
/// sizes differ by at most one.
pub fn fold_assignment(n: usize, folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b66_6f6c_6473);
    order.shuffle(&mut rng);
    let mut fold = vec![0usize; n];
    for (rank, &item) in order.iter().enumerate() {
        fold[item] = rank % folds;
    }
    fold
}

/// Splits samples' target particles (or whole samples) into training and validation sets by
/// fold. With `folds == 1`, everything trains and nothing validates.
pub fn split(samples: &[TrainSample], cfg: &DataConfig, seed: u64) -> Split {
    let all: Vec<(usize, usize)> = samples
        .iter()
        .enumerate()
        .flat_map(|(s, t)| (0..t.particles.len()).map(move |i| (s, i)))
        .collect();
    let all_samples: Vec<usize> = (0..samples.len()).collect();
    if cfg.folds <= 1 {
        return Split {
            train_particles: all,
            val_particles: vec![],
            train_samples: all_samples,
            val_samples: vec![],
        };
    }
    match cfg.split_by {
        SplitBy::Particle => {
            let fold = fold_assignment(all.len(), cfg.folds, seed);
            let (mut tr, mut va) = (vec![], vec![]);
            for (k, p) in all.into_iter().enumerate() {
                if fold[k] == cfg.val_fold {
                    va.push(p)
                } else {
                    tr.push(p)
                }
            }
            Split {
                train_particles: tr,
                val_particles: va,
                train_samples: all_samples.clone(),
                val_samples: all_samples,
            }
        }
        SplitBy::Tomogram => {
            let fold = fold_assignment(samples.len(), cfg.folds, seed);
            let val_samples: Vec<usize> = all_samples
                .iter()
                .copied()
                .filter(|&s| fold[s] == cfg.val_fold)
                .collect();
            let train_samples: Vec<usize> = all_samples
                .iter()
                .copied()
                .filter(|&s| fold[s] != cfg.val_fold)
                .collect();
            let (tr, va) = all.into_iter().partition(|(s, _)| fold[*s] != cfg.val_fold);
            Split {
                train_particles: tr,
                val_particles: va,
                train_samples,
                val_samples,
            }
        }
    }
}
