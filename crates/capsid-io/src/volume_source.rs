//! A tomogram opened once and read band by band, whatever its format: the reader a streaming
//! stage (segment) keeps for the whole of its pass, so an OME-Zarr tomogram's metadata are
//! parsed once rather than for every band.

use crate::error::IoError;
use crate::mrc::{self, MrcHeader};
use crate::zarr::{is_zarr, ZarrTomogram};
use capsid_core::Volume;
use std::path::{Path, PathBuf};

/// An opened tomogram: an MRC / CCP4 file (memory-mapped per band) or one level of an OME-Zarr
/// image.
pub enum VolumeSource {
    /// An MRC / CCP4 file and its header.
    Mrc {
        path: PathBuf,
        header: Box<MrcHeader>,
    },
    /// An OME-Zarr level.
    Zarr(Box<ZarrTomogram>),
}

impl VolumeSource {
    /// Opens `path` (an MRC file, an OME-Zarr group or one of its level arrays) and reads its
    /// header.
    pub fn open(path: &Path) -> Result<Self, IoError> {
        if is_zarr(path) {
            return Ok(Self::Zarr(Box::new(ZarrTomogram::open(path)?)));
        }
        Ok(Self::Mrc {
            path: path.to_path_buf(),
            header: Box::new(mrc::read_header(path)?),
        })
    }

    /// Like [`Self::open`], at the voxel size `voxel_size_a` Å when given: an OME-Zarr group
    /// is read at the level of that voxel size (within 1 %), and an MRC file (or a Zarr level)
    /// whose voxel size differs by more than 1 % is an error naming the file and both sizes.
    pub fn open_at(path: &Path, voxel_size_a: Option<f32>) -> Result<Self, IoError> {
        let Some(want) = voxel_size_a else {
            return Self::open(path);
        };
        if is_zarr(path) {
            return Ok(Self::Zarr(Box::new(ZarrTomogram::open_at_voxel_size(
                path, want,
            )?)));
        }
        let source = Self::open(path)?;
        let have = source.header().voxel_size_a[0];
        if (have / want - 1.0).abs() > 0.01 {
            return Err(IoError::format(
                path,
                format!(
                    "voxel size {have} Å, not the {want} Å asked for (capsid prep --bin rescales a tomogram)"
                ),
            ));
        }
        Ok(source)
    }

    /// The header: shape, voxel size and origin (for a Zarr level, a float32 header describing
    /// it).
    pub fn header(&self) -> MrcHeader {
        match self {
            Self::Mrc { header, .. } => (**header).clone(),
            Self::Zarr(z) => z.header(),
        }
    }

    /// The whole volume (an OME-Zarr image: the level opened).
    pub fn read_volume(&self) -> Result<Volume<f32>, IoError> {
        match self {
            Self::Mrc { path, .. } => mrc::read_volume(path),
            Self::Zarr(z) => z.read_volume(),
        }
    }

    /// Rows `y0 .. y0 + ny` of sections `z0 .. z0 + nz` (physical axes) as f32 `[nz, ny, x]`,
    /// origin moved to the band's first voxel; NaN / infinite values are an error.
    pub fn read_block(
        &self,
        z0: usize,
        nz: usize,
        y0: usize,
        ny: usize,
    ) -> Result<Volume<f32>, IoError> {
        match self {
            Self::Mrc { path, .. } => mrc::read_block(path, z0, nz, y0, ny),
            Self::Zarr(z) => z.read_band(z0, nz, y0, Some(ny)),
        }
    }
}
