//! capsid-io: the file formats capsid reads and writes.
//!
//! * [`mrc`]: MRC2014 / CCP4 volumes (tomograms, label maps, probability maps) — read any common
//!   mode, byte order, gzip, permuted axes, extended headers; write atomically; memory-mapped slab
//!   reads and a streaming slab writer for tomograms larger than memory. Main types:
//!   [`mrc::MrcHeader`], [`mrc::MrcMode`], [`mrc::LabelMode`], [`mrc::MrcWriter`].
//! * [`particles`]: particle lists (STAR, CSV, XML, JSON) as [`capsid_core::Particle`]s.
//! * [`zarr`]: OME-Zarr tomograms (v2 / v3, blosc / zstd / gzip, sharding), read by chunk.
//! * [`VolumeSource`]: a tomogram (MRC or OME-Zarr) opened once and read band by band.
//! * [`copick_project`]: copick projects' layout (configuration, runs, tomograms, picks).
//! * [`error`]: [`IoError`], the crate's one error type; every error names its file.

pub mod copick_project;
pub mod error;
pub mod mrc;
pub mod particles;
pub mod volume_source;
pub mod zarr;

pub use error::IoError;
pub use volume_source::VolumeSource;
