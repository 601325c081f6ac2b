//! Batches: [`make_batch`] extracts patches in parallel into the models' layout
//! (`[B, 1, P, P, P]` intensities, `[B, P, P, P]` labels, x fastest), and [`BatchStream`]
//! prepares the training batches of a step range on a background thread.

use super::{extract_patch, training_patches, DataConfig, PatchSpec, Split, TrainSample};
use ndarray::Array3;
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// A batch of patches in the layout the models take.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Global step this batch belongs to (training) or the batch index (validation).
    pub step: u64,
    /// Number of patches.
    pub size: usize,
    /// Patch side in voxels.
    pub patch: usize,
    /// Normalised intensities, `[B, 1, P, P, P]` flattened (x fastest).
    pub x: Vec<f32>,
    /// Target labels, `[B, P, P, P]` flattened.
    pub y: Vec<u8>,
}

/// Extracts `specs` in parallel (rayon; results kept in spec order) into one batch.
pub fn make_batch(samples: &[TrainSample], specs: &[PatchSpec], patch: usize, step: u64) -> Batch {
    let parts: Vec<(Array3<f32>, Array3<u8>)> = specs
        .par_iter()
        .map(|spec| extract_patch(&samples[spec.sample], spec, patch))
        .collect();
    let n = patch * patch * patch;
    let mut x = Vec::with_capacity(n * specs.len());
    let mut y = Vec::with_capacity(n * specs.len());
    for (px, py) in parts {
        x.extend(px.iter());
        y.extend(py.iter());
    }
    Batch {
        step,
        size: specs.len(),
        patch,
        x,
        y,
    }
}

/// Training batches for steps `first..end`, prepared on a background thread (at most `ahead`
/// batches waiting) while the caller computes.
pub struct BatchStream {
    rx: Receiver<Batch>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BatchStream {
    /// Starts preparing batches of `batch` patches for global steps `first..end`.
    #[allow(clippy::too_many_arguments)] // the sampling inputs, the step range and the queue depth
    pub fn start(
        samples: Arc<Vec<TrainSample>>,
        split: Arc<Split>,
        cfg: DataConfig,
        batch: usize,
        seed: u64,
        first: u64,
        end: u64,
        ahead: usize,
    ) -> Self {
        let (tx, rx) = sync_channel(ahead.max(1));
        let handle = std::thread::spawn(move || {
            for step in first..end {
                let specs = training_patches(&samples, &split, &cfg, batch, seed, step);
                let b = make_batch(&samples, &specs, cfg.patch, step);
                if tx.send(b).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            handle: Some(handle),
        }
    }

    /// The next batch, or `None` when all steps are done.
    pub fn next_batch(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Unblock the producer: drain until it sees the closed channel.
        while self.rx.try_recv().is_ok() {}
        let (_, dummy) = sync_channel::<Batch>(1);
        let rx = std::mem::replace(&mut self.rx, dummy);
        drop(rx);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
