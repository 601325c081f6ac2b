//! The training run's settings ([`TrainConfig`], read and written as TOML) and the names of the
//! files in a run folder ([`RunLayout`]).

use crate::data::{fold_assignment, DataConfig, SplitBy};
use crate::model::NetConfig;
use crate::NnError;
use capsid_core::ClassTable;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The precision of the convolutions' matrix products during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 factors and sums (the default).
    #[default]
    F32,
    /// bf16 factors rounded to nearest even, f32 sums, f32 weights and optimiser state
    /// (AVX512-BF16; on a CPU without it the products stay f32 and the run says so).
    Bf16,
}

impl From<capsid_conv::Precision> for Precision {
    fn from(p: capsid_conv::Precision) -> Self {
        match p {
            capsid_conv::Precision::F32 => Precision::F32,
            capsid_conv::Precision::Bf16 => Precision::Bf16,
        }
    }
}

impl Precision {
    /// The convolution kernels' setting for this precision.
    pub fn to_conv(self) -> capsid_conv::Precision {
        match self {
            Precision::F32 => capsid_conv::Precision::F32,
            Precision::Bf16 => capsid_conv::Precision::Bf16,
        }
    }
}

/// Which validation number drives reduce-on-plateau, early stopping and the best model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation loss (lower is better). Falls back to the training loss without validation.
    #[default]
    ValLoss,
    /// Mean voxel F1 of the target classes on the validation patches (higher is better).
    ValF1,
    /// Mean strict pick F1 of the target classes on the tuning tomogram (higher is better):
    /// every `val_pick_every` epochs (and at the last one) the tomogram is segmented, both
    /// pickers are tuned per class ([`crate::pick_tuning`]) and the weights whose tuned picks
    /// score best are kept, with their picking settings. With a by-tomogram split the tuning
    /// tomogram is the held-out one; otherwise it is the last input, scored on its validation
    /// particles only (its training particles are neither to be found nor false picks).
    /// The learning-rate plateau and early stopping follow the validation loss.
    ValPickF1,
}

impl Monitor {
    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val-loss",
            Monitor::ValF1 => "val-f1",
            Monitor::ValPickF1 => "val-pick-f1",
        }
    }
}

/// How the learning rate moves during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// Constant, times `plateau_factor` after `plateau_patience` epochs without improvement
    /// (the seed's).
    #[default]
    Plateau,
    /// Linear warm-up over `warmup_steps`, then a cosine decay to `min_lr` at the end of the run:
    /// the planned steps (`epochs × steps_per_epoch`) or the time budget, whichever comes first.
    Cosine,
}

/// The learning rate of the cosine schedule at `step` (0-based): `lr · (step + 1) / warmup`
/// during the warm-up, then `min_lr + (lr − min_lr) · (1 + cos(π · p)) / 2`, where `p` in
/// [0, 1] is the share of the run done after the warm-up (`progress`, by steps or by time).
pub fn cosine_lr(lr: f64, min_lr: f64, step: u64, warmup_steps: u64, progress: f64) -> f64 {
    if step < warmup_steps {
        return lr * (step + 1) as f64 / warmup_steps as f64;
    }
    let p = progress.clamp(0.0, 1.0);
    min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
}

/// One training input: a tomogram with a particle list and/or a label map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Tomogram (MRC or OME-Zarr).
    pub tomogram: PathBuf,
    /// Particle list (any format capsid reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub particles: Option<PathBuf>,
    /// Class label map (class-table labels), used instead of spheres around the particles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// The particles as the picks of a copick user and session (instead of `particles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copick: Option<CopickPicks>,
}

/// Picks of one run of a copick project, by a user and session: a training input's particles
/// (one file per object in the project, coordinates in Å).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopickPicks {
    /// The project's configuration (`copick_config.json`).
    pub config: PathBuf,
    /// The run (the tomogram's name).
    pub run: String,
    /// Whose picks, e.g. `curation` (the portal's ground truth) or a picker's name.
    pub user_id: String,
    /// Which session of that user, e.g. `0`.
    pub session_id: String,
}

/// Everything that defines a training run. TOML sections `[net]` (with `model = "unet"` or
/// `"ucaps"`) and `[data]`, the rest at top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Class table (TOML) the inputs' particles refer to.
    pub classes: Option<PathBuf>,
    /// Target classes in output-label order (label 1, 2, …); empty = every class of the table.
    pub targets: Vec<String>,
    /// The training inputs.
    pub inputs: Vec<InputSpec>,
    /// Patches per step. Default 24 (the paper).
    pub batch: usize,
    /// Epochs (at most; early stopping may end sooner). Default 100.
    pub epochs: usize,
    /// Steps per epoch. Default 100.
    pub steps_per_epoch: usize,
    /// Adam learning rate. Default 1e-4.
    pub lr: f64,
    /// Adam L2 weight decay. Default 1e-6.
    pub weight_decay: f64,
    /// Learning rate factor on a plateau. Default 0.1.
    pub plateau_factor: f64,
    /// Epochs without improvement before the learning rate drops (0 = never). Default 5.
    pub plateau_patience: usize,
    /// Lowest learning rate the plateau rule goes to (and where the cosine schedule ends).
    pub min_lr: f64,
    /// The learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Warm-up steps of the cosine schedule.
    pub warmup_steps: u64,
    /// Epochs without improvement before training stops (0 = never). Default 15.
    pub early_stop_patience: usize,
    /// What "improvement" means.
    pub monitor: Monitor,
    /// With `monitor = "val_pick_f1"`: epochs between pick evaluations (the last epoch is
    /// always evaluated). Default 5.
    pub val_pick_every: usize,
    /// Save `checkpoints/step_<N>.bpk` and refresh `last/` every this many steps (0 = only at
    /// epoch ends).
    pub checkpoint_every: u64,
    /// Weight the Dice + CE classes by inverse voxel frequency of the training label maps.
    pub class_weights: bool,
    /// Validation patches per forward pass (0 = `batch`).
    pub val_batch: usize,
    /// Seed of every random choice (weights, patches, split).
    pub seed: u64,
    /// Wall-clock budget in minutes (0 = none): training stops at the end of the last epoch
    /// that, at the mean epoch time so far, still ends within the budget (validation included).
    pub time_budget_min: f64,
    /// The precision of the convolutions' products (f32 or bf16; CPU backend).
    pub precision: Precision,
    /// The network.
    pub net: NetConfig,
    /// Patch sampling and split.
    pub data: DataConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            classes: None,
            targets: vec![],
            inputs: vec![],
            batch: 24,
            epochs: 100,
            steps_per_epoch: 100,
            lr: 1e-4,
            weight_decay: 1e-6,
            plateau_factor: 0.1,
            plateau_patience: 5,
            min_lr: 1e-7,
            lr_schedule: LrSchedule::Plateau,
            warmup_steps: 50,
            early_stop_patience: 15,
            monitor: Monitor::ValLoss,
            val_pick_every: 5,
            checkpoint_every: 0,
            class_weights: false,
            val_batch: 0,
            seed: 0,
            time_budget_min: 0.0,
            precision: Precision::F32,
            net: NetConfig::default(),
            data: DataConfig::default(),
        }
    }
}

impl TrainConfig {
    /// The input on which picking is tuned after training, and whether it was held out: the
    /// validation fold's first tomogram when the split is by tomogram (k-fold), otherwise the last
    /// input (a training tomogram). `inputs` must not be empty.
    pub fn tuning_input(&self) -> (usize, bool) {
        let n = self.inputs.len();
        let held_out = self.data.split_by == SplitBy::Tomogram && self.data.folds > 1;
        if !held_out {
            return (n.saturating_sub(1), false);
        }
        let fold = fold_assignment(n, self.data.folds, self.seed);
        match (0..n).find(|&i| fold[i] == self.data.val_fold) {
            Some(i) => (i, true),
            None => (n.saturating_sub(1), true),
        }
    }

    /// Checks every field; the message names the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.data.validate()?;
        self.net.validate().map_err(|e| e.to_string())?;
        self.net
            .check_patch([self.data.patch; 3])
            .map_err(|e| format!("data.patch: {e}"))?;
        if self.batch == 0 {
            return Err("batch must be at least 1".into());
        }
        if self.val_pick_every == 0 {
            return Err("val_pick_every must be at least 1".into());
        }
        if !(self.time_budget_min >= 0.0 && self.time_budget_min.is_finite()) {
            return Err(format!(
                "time_budget_min must be ≥ 0 (0 = none), got {}",
                self.time_budget_min
            ));
        }
        if self.epochs == 0 || self.steps_per_epoch == 0 {
            return Err("epochs and steps_per_epoch must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("lr must be positive, got {}", self.lr));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!(
                "weight_decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if !(self.plateau_factor > 0.0 && self.plateau_factor <= 1.0) {
            return Err(format!(
                "plateau_factor must be in (0, 1], got {}",
                self.plateau_factor
            ));
        }
        if self.net.num_classes() < 2 {
            return Err("the network needs at least 2 classes (background + 1 target)".into());
        }
        Ok(())
    }

    /// Parses TOML (every field optional); `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, NnError> {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| NnError::Model {
            path: origin.to_path_buf(),
            reason: e.message().to_string(),
        })?;
        // The version line written into run folders is a record, not a setting.
        value.remove("capsid_version");
        value
            .try_into()
            .map_err(|e: toml::de::Error| NnError::Model {
                path: origin.to_path_buf(),
                reason: e.message().to_string(),
            })
    }

    /// The config as TOML, with a `capsid_version` line first.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("capsid_version = \"{}\"\n{body}", capsid_core::VERSION)
    }
}

/// File names inside a run folder.
pub struct RunLayout;

impl RunLayout {
    pub const CONFIG: &'static str = "config.toml";
    pub const CLASS_TABLE: &'static str = "class_table.toml";
    pub const METRICS: &'static str = capsid_core::run_metrics::FILE;
    pub const CURVE: &'static str = "learning_curve.png";
    pub const LAST: &'static str = "last";
    pub const CHECKPOINTS: &'static str = "checkpoints";
    pub const STATE: &'static str = "train_state.json";
    pub const OPTIMIZER: &'static str = "optimizer.bpk";
}

/// The class table of a run's outputs: the targets with labels 1..K in target order.
pub fn output_class_table(classes: &ClassTable, targets: &[String]) -> Result<ClassTable, NnError> {
    let chosen: Vec<&capsid_core::ClassDef> = if targets.is_empty() {
        classes.classes.iter().collect()
    } else {
        targets
            .iter()
            .map(|t| classes.get(t).map_err(|e| NnError::Data(e.to_string())))
            .collect::<Result<_, _>>()?
    };
    Ok(ClassTable {
        classes: chosen
            .into_iter()
            .enumerate()
            .map(|(i, c)| capsid_core::ClassDef {
                label: (i + 1) as u8,
                ..c.clone()
            })
            .collect(),
    })
}

/// Reads a run folder's config.
pub fn load_run_config(run_dir: &Path) -> Result<TrainConfig, NnError> {
    let p = run_dir.join(RunLayout::CONFIG);
    let text = std::fs::read_to_string(&p).map_err(|source| NnError::Io {
        path: p.clone(),
        source,
    })?;
    TrainConfig::from_toml(&text, &p)
}
