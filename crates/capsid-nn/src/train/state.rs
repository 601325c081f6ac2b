//! Where a training run stands ([`TrainState`]), what the caller asks for ([`TrainOptions`]),
//! the progress callbacks ([`TrainObserver`]) and how a run ended ([`TrainSummary`]).

use crate::metrics::EpochRecord;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Steps done in total.
    pub global_step: u64,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Steps done in the unfinished epoch and their summed training loss.
    pub steps_in_epoch: u64,
    pub epoch_loss_sum: f64,
    /// Current learning rate.
    pub lr: f64,
    /// Best value of the schedule's monitor so far (lower is better; F1 is stored negated).
    pub best: f64,
    /// Best mean pick F1 of the `val-pick-f1` monitor so far ([`NO_PICK_F1`] before the first
    /// evaluation).
    #[serde(default = "no_pick_f1")]
    pub best_pick_f1: f64,
    /// The epoch of the kept weights (the run folder's model).
    pub best_epoch: usize,
    /// Epochs since the last improvement (early stopping) and since the last LR change.
    pub stale_epochs: usize,
    pub plateau_epochs: usize,
    /// Training time so far, seconds.
    pub elapsed_s: f64,
    /// True once training ended (all epochs or early stop).
    pub finished: bool,
}

/// [`TrainState::best_pick_f1`] before any pick evaluation (below every F1, so the first
/// evaluation is kept).
pub const NO_PICK_F1: f64 = -1.0;

fn no_pick_f1() -> f64 {
    NO_PICK_F1
}

/// What the caller wants besides the config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the run in the output folder from `last/`.
    pub resume: bool,
    /// Stop (as if interrupted, saving `last/`) after this many steps of this call.
    pub stop_after_steps: Option<u64>,
}

/// Progress callbacks (the CLI draws a bar).
pub trait TrainObserver {
    /// After each step: steps done, total planned steps, the step's loss, patches per second.
    fn on_step(&mut self, _global_step: u64, _total_steps: u64, _loss: f64, _patches_per_s: f64) {}
    /// After each epoch.
    fn on_epoch(&mut self, _record: &EpochRecord) {}
    /// A one-line note about the run (e.g. what the data preparation found).
    fn message(&mut self, _text: &str) {}
    /// After each epoch's files (`metrics.csv`, `last/`) are written to the run folder `out`
    /// (the CLI draws `learning_curve.png` from `metrics.csv` here).
    fn on_epoch_saved(&mut self, _out: &Path) {}
}

/// An observer that does nothing.
pub struct Quiet;
impl TrainObserver for Quiet {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    pub state: TrainState,
    pub records: Vec<EpochRecord>,
    /// Why training stopped: "epochs", "early stopping", "interrupted".
    pub reason: String,
    /// The `val-pick-f1` monitor wrote the best evaluation's `pick_settings.toml` into the run
    /// folder (no need to tune again after training).
    pub pick_settings_saved: bool,
}
