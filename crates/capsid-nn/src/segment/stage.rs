//! The segmentation stage on files: a trained run folder in, per tomogram a label map (and
//! optionally probability maps) out, written slab by slab as [`segment_streaming`] finishes them.
//!
//! [`Segmenter::from_run_dir`] owns the defaults: the window side is the run's training patch
//! (64 without a run config), the overlap [`SegmentConfig::DEFAULT_OVERLAP`] voxels (at most half
//! the patch), the class names come from the run's class table, and probability maps are written
//! (f16) when the run's tuned picking settings pick some class by peaks of its probability map.

use super::{
    argmax_labels_fg, segment_streaming, window_count, Blend, NetPredictor, Normalize,
    SegmentConfig,
};
use crate::model::load_model_folder;
use crate::train::{load_run_config, RunLayout};
use crate::NnError;
use burn::tensor::Device;
use capsid_core::outputs::{label_map_file, prob_map_file, SegmentRecord};
use capsid_core::ClassTable;
use capsid_io::mrc::{LabelMode, MrcMode, MrcWriter, WriteOptions};
use ndarray::Axis;
use std::path::{Path, PathBuf};

/// Number type of the probability maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbPrecision {
    F16,
    F32,
}

/// What the caller asks of the stage; `None` takes the run's own setting (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRequest {
    /// Window side, voxels.
    pub patch: Option<usize>,
    /// Overlap of neighbouring windows, voxels.
    pub overlap: Option<usize>,
    pub blend: Blend,
    /// Window normalisation.
    pub normalize: Normalize,
    /// Test-time augmentation (8 mirror images).
    pub tta: bool,
    /// Windows per forward pass.
    pub batch: usize,
    /// Probability maps to write beside the label map.
    pub probs: Option<ProbPrecision>,
}

impl Default for SegmentRequest {
    fn default() -> Self {
        Self {
            patch: None,
            overlap: None,
            blend: Blend::Uniform,
            normalize: Normalize::Window,
            tta: false,
            batch: 1,
            probs: None,
        }
    }
}

/// What segmenting one tomogram produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentedTomogram {
    /// The label map written.
    pub label_map: PathBuf,
    /// Windows computed.
    pub windows: usize,
    /// Voxels per label, background (0) first.
    pub voxels_per_label: Vec<u64>,
}

/// A trained model ready to segment tomograms with validated settings.
pub struct Segmenter {
    run_dir: PathBuf,
    predictor: NetPredictor,
    config: SegmentConfig,
    class_names: Vec<String>,
    probs: Option<ProbPrecision>,
    probs_for_peaks: bool,
}

impl Segmenter {
    /// Loads the model of run folder `run_dir` (written by `capsid train`, or any model folder
    /// with `net.toml` + weights) onto `device` and settles the window settings of `request`.
    pub fn from_run_dir(
        run_dir: &Path,
        device: Device,
        request: &SegmentRequest,
    ) -> Result<Self, NnError> {
        let (net_cfg, net) = load_model_folder(run_dir, &device)?;
        let num_classes = net_cfg.num_classes();
        let train_patch = if run_dir.join(RunLayout::CONFIG).is_file() {
            Some(load_run_config(run_dir)?.data.patch)
        } else {
            None
        };
        let class_names = run_class_names(run_dir, num_classes)?;
        let patch = request
            .patch
            .or(train_patch)
            .unwrap_or(SegmentConfig::default().patch);
        net_cfg.check_patch([patch; 3]).map_err(|e| match e {
            NnError::Shape { reason, .. } => NnError::Config(format!("patch {patch}: {reason}")),
            other => other,
        })?;
        let overlap = request
            .overlap
            .unwrap_or(SegmentConfig::DEFAULT_OVERLAP.min(patch / 2));
        if overlap * 2 > patch {
            return Err(NnError::Config(format!(
                "overlap {overlap} is more than half the patch ({patch} voxels); windows would be computed more than twice"
            )));
        }
        let config = SegmentConfig {
            patch,
            overlap,
            blend: request.blend,
            tta: request.tta,
            batch: request.batch,
            normalize: request.normalize,
        };
        config
            .validate()
            .map_err(|e| NnError::Config(format!("segmentation settings: {e}")))?;
        let probs_for_peaks = request.probs.is_none() && run_picks_by_peaks(run_dir)?;
        let probs = request
            .probs
            .or(probs_for_peaks.then_some(ProbPrecision::F16));
        Ok(Self {
            run_dir: run_dir.to_path_buf(),
            predictor: NetPredictor {
                net,
                device,
                num_classes,
            },
            config,
            class_names,
            probs,
            probs_for_peaks,
        })
    }

    /// The window settings in use.
    pub fn config(&self) -> &SegmentConfig {
        &self.config
    }

    /// Names of the target classes, labels 1..K.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// True when probability maps are written only because the run picks some class by peaks.
    pub fn probs_for_peaks(&self) -> bool {
        self.probs_for_peaks
    }

    /// Windows needed for a tomogram of `shape_zyx`.
    pub fn window_count(&self, shape_zyx: [usize; 3]) -> usize {
        window_count(shape_zyx, &self.config)
    }

    /// The files written for tomogram `name` in folder `out`: the label map first, then the
    /// probability maps.
    pub fn output_files(&self, out: &Path, name: &str) -> Vec<PathBuf> {
        let mut files = vec![out.join(label_map_file(name))];
        if self.probs.is_some() {
            files.extend(
                self.class_names
                    .iter()
                    .map(|c| out.join(prob_map_file(name, c))),
            );
        }
        files
    }

    /// Segments the tomogram `tomo` (MRC or OME-Zarr), opened as `source`, into `out` under
    /// `name` (see [`Self::output_files`]); `progress` is called with the number of windows done
    /// since its last call. The header (origin, voxel size) of the tomogram is copied to every
    /// output.
    pub fn segment_file(
        &mut self,
        source: &capsid_io::VolumeSource,
        tomo: &Path,
        out: &Path,
        name: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<SegmentedTomogram, NnError> {
        let header = source.header();
        let shape = header.shape_zyx();
        let like = WriteOptions {
            like: Some(header.clone()),
            extra_labels: vec![format!("capsid segment: {}", self.run_dir.display())
                .chars()
                .take(80)
                .collect()],
            ..WriteOptions::default()
        };
        let mut prob_writers: Vec<MrcWriter> = Vec::new();
        if let Some(kind) = self.probs {
            let mode = match kind {
                ProbPrecision::F16 => MrcMode::Float16,
                ProbPrecision::F32 => MrcMode::Float32,
            };
            for c in &self.class_names {
                prob_writers.push(MrcWriter::create_with(
                    &out.join(prob_map_file(name, c)),
                    shape,
                    mode,
                    header.voxel_size_a,
                    header.origin_a,
                    &like,
                )?);
            }
        }
        let label_map = out.join(label_map_file(name));
        let mut label_writer = MrcWriter::create_labels_with(
            &label_map,
            shape,
            LabelMode::Uint8Mode0,
            header.voxel_size_a,
            header.origin_a,
            &like,
        )?;
        let mut counts = vec![0u64; self.class_names.len() + 1];
        segment_streaming::<NnError>(
            shape,
            &self.config,
            &mut self.predictor,
            &mut |z0, nz, y0, ny| Ok(source.read_block(z0, nz, y0, ny)?.data),
            &mut |_z0, fg| {
                let labels = argmax_labels_fg(&fg);
                for &l in labels.iter() {
                    counts[l as usize] += 1;
                }
                label_writer.write_label_slab(&labels)?;
                for (k, w) in prob_writers.iter_mut().enumerate() {
                    w.write_slab(&fg.index_axis(Axis(0), k))?;
                }
                Ok(())
            },
            progress,
        )
        .map_err(|e| NnError::Input {
            path: tomo.to_path_buf(),
            reason: e.to_string(),
        })?;
        for w in prob_writers {
            w.finish()?;
        }
        label_writer.finish()?;
        Ok(SegmentedTomogram {
            label_map,
            windows: window_count(shape, &self.config),
            voxels_per_label: counts,
        })
    }

    /// The record of this stage for output folder `out` that segmented `tomograms`
    /// (`segment.toml`; the model folder as an absolute path).
    pub fn record(&self, tomograms: &[PathBuf]) -> SegmentRecord {
        let model = std::fs::canonicalize(&self.run_dir).unwrap_or_else(|_| self.run_dir.clone());
        SegmentRecord {
            capsid_version: capsid_core::VERSION.into(),
            model,
            patch: self.config.patch,
            overlap: self.config.overlap,
            blend: format!("{:?}", self.config.blend).to_lowercase(),
            tta: self.config.tta,
            tomograms: tomograms.to_vec(),
        }
    }
}

/// Whether the run's tuned picking settings pick some class by peaks of its probability map.
fn run_picks_by_peaks(run_dir: &Path) -> Result<bool, NnError> {
    let path = run_dir.join(capsid_pick::PickSettings::FILE);
    if !path.is_file() {
        return Ok(false);
    }
    let settings = capsid_pick::PickSettings::load(&path).map_err(|e| NnError::Input {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let needs = settings.peak_classes().next().is_some();
    Ok(needs)
}

/// Class names 1..K from the run's class table (`class1`, … without one).
fn run_class_names(run_dir: &Path, num_classes: usize) -> Result<Vec<String>, NnError> {
    let p = run_dir.join(RunLayout::CLASS_TABLE);
    if !p.is_file() {
        return Ok((1..num_classes).map(|k| format!("class{k}")).collect());
    }
    let table = ClassTable::load(&p)?;
    let bad = |reason: String| NnError::Input {
        path: p.clone(),
        reason,
    };
    let mut names = vec![String::new(); num_classes.saturating_sub(1)];
    for c in &table.classes {
        let k = c.label as usize;
        if k == 0 || k >= num_classes {
            return Err(bad(format!(
                "class '{}' has label {} but the network has {} classes",
                c.name, k, num_classes
            )));
        }
        names[k - 1] = c.name.clone();
    }
    if let Some(k) = names.iter().position(String::is_empty) {
        return Err(bad(format!("no class with label {}", k + 1)));
    }
    Ok(names)
}
