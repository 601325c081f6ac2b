//! capsid-nn: capsid's deep-learning part, the only crate that depends on Burn (pinned 0.22.1).
//!
//! * [`model`]: the two networks behind one type, [`model::Net`], built from a serialisable
//!   [`model::NetConfig`]: DeepFinder's 3D-UNet ([`model::unet`]) and 3D-UCaps ([`model::ucaps`],
//!   with conv-capsule layers and dynamic routing in [`model::capsule`]). Inputs are patches
//!   `[batch, 1, z, y, x]`; outputs are per-class logits of the same spatial shape.
//! * [`loss`]: Dice + cross-entropy with class weights, the reconstruction term and the capsule
//!   margin loss.
//! * [`device`]: turning `--device flex|wgpu|vulkan|cuda|rocm` into a Burn `Device`, and the CPU
//!   thread count.
//! * [`dataset`]: the training inputs of a `--data` folder or list file, read into samples.
//! * [`segment`]: sliding-window inference and [`segment::Segmenter`], the segmentation stage on
//!   files (a run folder in, label and probability maps out).
//! * [`features`]: the encoder's features at particle centres (what a trained encoder holds
//!   about each particle: the capsule-pose measurement).
//! * [`mod@bench`]: the timing behind `capsid bench` (inference and one training step per network).
//!
//! Burn 0.22 tensors carry no backend type parameter: the [`burn::tensor::Device`] picks the
//! backend (`Device::flex()` is the default pure-Rust CPU backend; `device.autodiff()` adds
//! gradients).
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod bench;
pub mod data;
pub mod dataset;
pub mod device;
pub mod features;
pub mod loss;
pub mod metrics;
pub mod mining;
pub mod model;
pub mod negatives;
pub mod pick_tuning;
pub mod segment;
pub mod train;

pub use device::{parse_device, set_threads};
pub use model::{Net, NetConfig, NetOutput, UCapsConfig, UNetConfig};

/// Re-export of Burn so that callers use the exact pinned version.
pub use burn;

use std::path::PathBuf;

/// Errors of capsid-nn; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// `--device` named a backend this binary was not built with, or an unknown one.
    #[error("device '{name}': {reason}")]
    Device { name: String, reason: String },
    /// A network configuration that cannot be built (e.g. zero classes).
    #[error("invalid network config: {0}")]
    Config(String),
    /// A patch whose shape the network cannot take.
    #[error("invalid input shape {shape:?}: {reason}")]
    Shape { shape: Vec<usize>, reason: String },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model folder whose config or weights cannot be parsed or do not match.
    #[error("{}: {reason}", path.display())]
    Model { path: PathBuf, reason: String },
    /// Training data that cannot be used (unknown target class, shapes that differ, no patches).
    #[error("training data: {0}")]
    Data(String),
    /// The thread pool was already set up with another size.
    #[error("cannot set the number of threads to {threads}: {reason}")]
    Threads { threads: usize, reason: String },
    /// A file of capsid-core's formats (e.g. `metrics.csv`) that cannot be read or written; the
    /// message names the file.
    #[error(transparent)]
    Core(#[from] capsid_core::CoreError),
    /// A tomogram, particle list or label map that cannot be read (the message names the file).
    #[error(transparent)]
    File(#[from] capsid_io::IoError),
    /// An input file or folder that does not say what it should (the message names it).
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
}
