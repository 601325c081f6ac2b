//! Writing MRC2014 files: whole volumes, label maps, and a streaming slab writer. Every write goes
//! to a temporary file in the destination folder and is renamed over the destination at the end,
//! so a failure never leaves a half-written file.
//!
//! Split by concern: this module holds the written modes, the header options and the one-call
//! writes; `stream` is the [`MrcWriter`] they go through; `stored` builds a new file's header and
//! each voxel's stored bytes.

mod stored;
mod stream;

use super::header::{DataType, MrcHeader};
use crate::error::IoError;
use capsid_core::Volume;
use std::path::Path;

pub use stream::MrcWriter;

/// Voxel type of a written density / probability volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrcMode {
    /// Mode 2, 32-bit float (exact).
    Float32,
    /// Mode 12, 16-bit half float (rounded to nearest; values beyond ±65504 are refused).
    Float16,
    /// Mode 0, signed 8-bit (values rounded to nearest; outside -128..=127 refused).
    Int8,
    /// Mode 1, signed 16-bit (values rounded; outside -32768..=32767 refused).
    Int16,
    /// Mode 6, unsigned 16-bit (values rounded; outside 0..=65535 refused).
    Uint16,
}

impl MrcMode {
    fn data_type(self) -> DataType {
        match self {
            MrcMode::Float32 => DataType::Float32,
            MrcMode::Float16 => DataType::Float16,
            MrcMode::Int8 => DataType::Int8,
            MrcMode::Int16 => DataType::Int16,
            MrcMode::Uint16 => DataType::Uint16,
        }
    }
}

/// Voxel type of a written label map (label 0 = background, classes 1..N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelMode {
    /// Mode 6, unsigned 16-bit: read back as unsigned by every MRC reader.
    Uint16Mode6,
    /// Mode 0 with IMOD's unsigned flag (imodStamp 1146047817, imodFlags bit 0): half the size;
    /// IMOD and capsid read it as uint8, readers that ignore the flag see int8.
    Uint8Mode0,
}

/// Header details for a write beyond shape, mode, voxel size and origin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOptions {
    /// Extra labels written after `capsid <version>` (at most 10 labels in all, 80 bytes each).
    pub extra_labels: Vec<String>,
    /// Copy origin, voxel size, extended header (and EXTTYP), NXSTART/NYSTART/NZSTART, space
    /// group and labels from this header (e.g. the tomogram a map was computed from). The
    /// volume's own voxel size and origin are then ignored.
    pub like: Option<MrcHeader>,
    /// Space group; `None` means 1 (a volume), or the `like` header's when given. Use 0 for a
    /// stack of 2D images.
    pub ispg: Option<i32>,
}

/// Writes `vol` to `path` as an MRC2014 file in `mode` (little-endian, MAPC/MAPR/MAPS 1 2 3,
/// cella = n × voxel size, header stats from the stored values, label `capsid <version>`).
///
/// Integer modes round to nearest and refuse values outside their range; all modes refuse NaN
/// and infinite values. The write is atomic (temporary file + rename).
pub fn write_volume(path: &Path, vol: &Volume<f32>, mode: MrcMode) -> Result<(), IoError> {
    write_volume_with(path, vol, mode, &WriteOptions::default())
}

/// Like [`write_volume`], copying origin, voxel size, extended header and labels from `like`.
pub fn write_volume_like(
    path: &Path,
    vol: &Volume<f32>,
    mode: MrcMode,
    like: &MrcHeader,
) -> Result<(), IoError> {
    let opts = WriteOptions {
        like: Some(like.clone()),
        ..WriteOptions::default()
    };
    write_volume_with(path, vol, mode, &opts)
}

/// Like [`write_volume`], with header options.
pub fn write_volume_with(
    path: &Path,
    vol: &Volume<f32>,
    mode: MrcMode,
    opts: &WriteOptions,
) -> Result<(), IoError> {
    let mut w = MrcWriter::create_with(
        path,
        vol.shape_zyx(),
        mode,
        vol.voxel_size_a,
        vol.origin_a,
        opts,
    )?;
    w.write_slab(&vol.data)?;
    w.finish()
}

/// Writes a label map (`0` background, classes `1..N`) in `mode`; atomic.
pub fn write_labels(path: &Path, vol: &Volume<u8>, mode: LabelMode) -> Result<(), IoError> {
    write_labels_with(path, vol, mode, &WriteOptions::default())
}

/// Like [`write_labels`], with header options.
pub fn write_labels_with(
    path: &Path,
    vol: &Volume<u8>,
    mode: LabelMode,
    opts: &WriteOptions,
) -> Result<(), IoError> {
    let mut w = MrcWriter::create_labels_with(
        path,
        vol.shape_zyx(),
        mode,
        vol.voxel_size_a,
        vol.origin_a,
        opts,
    )?;
    w.write_label_slab(&vol.data)?;
    w.finish()
}
