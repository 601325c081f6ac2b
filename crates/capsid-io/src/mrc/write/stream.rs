//! The streaming [`MrcWriter`]: header first, then z slabs in order, statistics and the atomic
//! rename at the end.

use super::stored::{build_header, encode, range_text};
use super::{LabelMode, MrcMode, WriteOptions};
use crate::error::IoError;
use crate::mrc::header::{DataType, MrcHeader};
use ndarray::{ArrayBase, Data, Ix3};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Streaming writer for volumes larger than memory: the header is written from the shape, then
/// slabs of whole z sections are appended in z order; [`MrcWriter::finish`] fills in the header
/// statistics and renames the temporary file over `path`. Dropping the writer without finishing
/// removes the temporary file and leaves `path` untouched.
pub struct MrcWriter {
    path: PathBuf,
    out: BufWriter<File>,
    tmp: tempfile::TempPath,
    header: MrcHeader,
    t: DataType,
    z_written: usize,
    buf: Vec<u8>,
    count: u64,
    sum: f64,
    sum2: f64,
    min: f64,
    max: f64,
}

impl MrcWriter {
    /// Starts writing `path`: a volume of `shape_zyx` voxels in `mode`, `voxel_size_a` and
    /// `origin_a` as `[x, y, z]` in Å.
    pub fn create(
        path: &Path,
        shape_zyx: [usize; 3],
        mode: MrcMode,
        voxel_size_a: [f32; 3],
        origin_a: [f32; 3],
    ) -> Result<Self, IoError> {
        Self::create_with(
            path,
            shape_zyx,
            mode,
            voxel_size_a,
            origin_a,
            &WriteOptions::default(),
        )
    }

    /// Like [`MrcWriter::create`], with header options.
    pub fn create_with(
        path: &Path,
        shape_zyx: [usize; 3],
        mode: MrcMode,
        voxel_size_a: [f32; 3],
        origin_a: [f32; 3],
        opts: &WriteOptions,
    ) -> Result<Self, IoError> {
        Self::create_typed(
            path,
            shape_zyx,
            mode.data_type(),
            voxel_size_a,
            origin_a,
            opts,
        )
    }

    fn create_typed(
        path: &Path,
        shape_zyx: [usize; 3],
        t: DataType,
        voxel_size_a: [f32; 3],
        origin_a: [f32; 3],
        opts: &WriteOptions,
    ) -> Result<Self, IoError> {
        let lower = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if lower.ends_with(".gz") {
            return Err(IoError::format(
                path,
                "capsid writes MRC files uncompressed: name the output .mrc (gzip it afterwards \
                 if you like; capsid reads .mrc.gz)",
            ));
        }
        if shape_zyx.contains(&0) || shape_zyx.iter().any(|&n| n > i32::MAX as usize) {
            return Err(IoError::format(
                path,
                format!("cannot write a volume of shape (z, y, x) {shape_zyx:?}: each size must be 1..2^31"),
            ));
        }
        let header = build_header(shape_zyx, t, voxel_size_a, origin_a, opts);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = capsid_core::guard::temp_file_in(dir).map_err(|e| IoError::io(path, e))?;
        let (file, tmp) = tmp.into_parts();
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header.to_bytes())
            .map_err(|e| IoError::io(path, e))?;
        out.write_all(&header.ext_header)
            .map_err(|e| IoError::io(path, e))?;
        Ok(MrcWriter {
            path: path.to_path_buf(),
            out,
            tmp,
            header,
            t,
            z_written: 0,
            buf: Vec::new(),
            count: 0,
            sum: 0.0,
            sum2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        })
    }

    /// Starts a streamed label map (`0` background, classes `1..N`) in `mode`: slabs are then
    /// appended with [`MrcWriter::write_label_slab`]. Same header options as
    /// [`MrcWriter::create_with`].
    pub fn create_labels_with(
        path: &Path,
        shape_zyx: [usize; 3],
        mode: LabelMode,
        voxel_size_a: [f32; 3],
        origin_a: [f32; 3],
        opts: &WriteOptions,
    ) -> Result<Self, IoError> {
        let t = match mode {
            LabelMode::Uint16Mode6 => DataType::Uint16,
            LabelMode::Uint8Mode0 => DataType::Uint8,
        };
        Self::create_typed(path, shape_zyx, t, voxel_size_a, origin_a, opts)
    }

    /// Appends whole z sections `[z, y, x]` of labels (y, x must match the volume's).
    pub fn write_label_slab<S: Data<Elem = u8>>(
        &mut self,
        slab: &ArrayBase<S, Ix3>,
    ) -> Result<(), IoError> {
        let s = slab.shape();
        self.check_section_shape(s[1], s[2])?;
        self.write_values(s[0], slab.iter().map(|&v| f32::from(v)))
    }

    /// Fails unless sections of `ny × nx` voxels match the volume's.
    fn check_section_shape(&self, ny: usize, nx: usize) -> Result<(), IoError> {
        if ny != self.header.ny || nx != self.header.nx {
            return Err(IoError::format(
                &self.path,
                format!(
                    "slab of (y, x) = ({ny}, {nx}) does not match the volume's ({}, {})",
                    self.header.ny, self.header.nx
                ),
            ));
        }
        Ok(())
    }

    /// The header that will be written (stats are filled in by [`MrcWriter::finish`]).
    pub fn header(&self) -> &MrcHeader {
        &self.header
    }

    /// Appends whole z sections `[z, y, x]` (y, x must match the volume's).
    pub fn write_slab<S: Data<Elem = f32>>(
        &mut self,
        slab: &ArrayBase<S, Ix3>,
    ) -> Result<(), IoError> {
        let s = slab.shape();
        self.check_section_shape(s[1], s[2])?;
        self.write_values(s[0], slab.iter().copied())
    }

    /// Appends `nz` sections given as values in `[z, y, x]` order.
    fn write_values(
        &mut self,
        nz: usize,
        values: impl Iterator<Item = f32>,
    ) -> Result<(), IoError> {
        if self.z_written + nz > self.header.nz {
            return Err(IoError::format(
                &self.path,
                format!(
                    "too many sections: {} written + {nz} new > {} in the header",
                    self.z_written, self.header.nz
                ),
            ));
        }
        let section = self.header.nx * self.header.ny;
        let z0 = self.z_written;
        let t = self.t;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for (i, v) in values.enumerate() {
            let stored = match encode(t, v, &mut buf) {
                Some(s) => s,
                None => {
                    let (z, rem) = (z0 + i / section, i % section);
                    let (y, x) = (rem / self.header.nx, rem % self.header.nx);
                    return Err(IoError::format(
                        &self.path,
                        format!(
                            "cannot store value {v} at x={x}, y={y}, z={z} in MRC mode {} ({})",
                            self.header.mode,
                            range_text(t)
                        ),
                    ));
                }
            };
            self.count += 1;
            self.sum += stored;
            self.sum2 += stored * stored;
            self.min = self.min.min(stored);
            self.max = self.max.max(stored);
            if buf.len() >= 1 << 20 {
                self.out
                    .write_all(&buf)
                    .map_err(|e| IoError::io(&self.path, e))?;
                buf.clear();
            }
        }
        self.out
            .write_all(&buf)
            .map_err(|e| IoError::io(&self.path, e))?;
        self.buf = buf;
        self.z_written += nz;
        Ok(())
    }

    /// Checks all sections were written, writes the header statistics, and renames the file
    /// into place.
    pub fn finish(mut self) -> Result<(), IoError> {
        let path = self.path.clone();
        let io = |e| IoError::io(&path, e);
        let expected = (self.header.nx * self.header.ny * self.header.nz) as u64;
        if self.z_written != self.header.nz || self.count != expected {
            return Err(IoError::format(
                &path,
                format!(
                    "only {} of {} sections were written; the file was not created",
                    self.z_written, self.header.nz
                ),
            ));
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        self.header.dmin = self.min as f32;
        self.header.dmax = self.max as f32;
        self.header.dmean = mean as f32;
        self.header.rms = (self.sum2 / n - mean * mean).max(0.0).sqrt() as f32;
        self.out.flush().map_err(io)?;
        let mut file = self.out.into_inner().map_err(|e| io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&self.header.to_bytes()).map_err(io)?;
        file.sync_all().ok();
        drop(file);
        self.tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }
}
