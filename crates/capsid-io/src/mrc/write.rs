//! Writing MRC2014 files: whole volumes, label maps, and a streaming slab writer. Every write goes
//! to a temporary file in the destination folder and is renamed over the destination at the end,
//! so a failure never leaves a half-written file.

use super::header::{DataType, MrcHeader, IMOD_STAMP};
use crate::error::IoError;
use capsid_core::Volume;
use ndarray::{ArrayBase, Data, Ix3};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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

/// The header of a new file: shape, type, geometry, labels, and whatever `opts.like` copies.
fn build_header(
    shape_zyx: [usize; 3],
    t: DataType,
    voxel_size_a: [f32; 3],
    origin_a: [f32; 3],
    opts: &WriteOptions,
) -> MrcHeader {
    let mode = match t {
        DataType::Int8 | DataType::Uint8 => 0,
        DataType::Int16 => 1,
        DataType::Float32 => 2,
        DataType::Uint16 => 6,
        DataType::Float16 => 12,
    };
    let (voxel, origin) = match &opts.like {
        Some(l) => (l.voxel_size_a, l.origin_a),
        None => (voxel_size_a, origin_a),
    };
    let mut h = MrcHeader::new(shape_zyx, mode, voxel, origin);
    if t == DataType::Uint8 {
        h.imod_stamp = IMOD_STAMP;
        h.imod_flags = 1;
    }
    let mut labels = Vec::new();
    if let Some(l) = &opts.like {
        h.ext_header = l.ext_header.clone();
        h.exttyp = l.exttyp;
        h.nxstart = l.nxstart;
        h.ispg = l.ispg;
        labels.extend(l.labels.iter().cloned());
    }
    if let Some(ispg) = opts.ispg {
        h.ispg = ispg;
    }
    let own = 1 + opts.extra_labels.len();
    labels.truncate(10usize.saturating_sub(own));
    labels.push(format!("capsid {}", capsid_core::VERSION));
    labels.extend(opts.extra_labels.iter().cloned());
    labels.truncate(10);
    h.labels = labels;
    h
}

/// Appends `v` stored as `t` (little-endian) to `out`; returns the stored value, or `None` when
/// `v` cannot be stored (non-finite, or outside an integer type's range).
fn encode(t: DataType, v: f32, out: &mut Vec<u8>) -> Option<f64> {
    if !v.is_finite() {
        return None;
    }
    let r = v.round();
    match t {
        DataType::Float32 => {
            out.extend_from_slice(&v.to_le_bytes());
            Some(v as f64)
        }
        DataType::Float16 => {
            let h = half::f16::from_f32(v);
            if !h.is_finite() {
                return None;
            }
            out.extend_from_slice(&h.to_le_bytes());
            Some(h.to_f64())
        }
        DataType::Int8 if (-128.0..=127.0).contains(&r) => {
            out.push(r as i8 as u8);
            Some(r as f64)
        }
        DataType::Uint8 if (0.0..=255.0).contains(&r) => {
            out.push(r as u8);
            Some(r as f64)
        }
        DataType::Int16 if (-32768.0..=32767.0).contains(&r) => {
            out.extend_from_slice(&(r as i16).to_le_bytes());
            Some(r as f64)
        }
        DataType::Uint16 if (0.0..=65535.0).contains(&r) => {
            out.extend_from_slice(&(r as u16).to_le_bytes());
            Some(r as f64)
        }
        _ => None,
    }
}

/// What a data type can hold, for error messages.
fn range_text(t: DataType) -> &'static str {
    match t {
        DataType::Float32 => "finite float32",
        DataType::Float16 => "finite float16, |v| <= 65504",
        DataType::Int8 => "int8, -128..=127",
        DataType::Uint8 => "uint8, 0..=255",
        DataType::Int16 => "int16, -32768..=32767",
        DataType::Uint16 => "uint16, 0..=65535",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_rounds_and_refuses_out_of_range() {
        let mut b = Vec::new();
        assert_eq!(encode(DataType::Int8, -3.6, &mut b), Some(-4.0));
        assert_eq!(b, [(-4i8) as u8]);
        assert_eq!(encode(DataType::Int8, 127.6, &mut b), None);
        assert_eq!(encode(DataType::Uint8, 255.4, &mut b), Some(255.0));
        assert_eq!(encode(DataType::Uint16, -0.6, &mut b), None);
        assert_eq!(encode(DataType::Int16, f32::NAN, &mut b), None);
        assert_eq!(encode(DataType::Float16, 70000.0, &mut b), None);
        assert_eq!(encode(DataType::Float32, 0.1, &mut b), Some(0.1f32 as f64));
    }

    #[test]
    fn header_labels_capped_at_ten() {
        let like = MrcHeader {
            labels: (0..10).map(|i| format!("old {i}")).collect(),
            ..MrcHeader::new([1, 1, 1], 2, [1.0; 3], [0.0; 3])
        };
        let opts = WriteOptions {
            like: Some(like),
            extra_labels: vec!["extra".into()],
            ispg: None,
        };
        let h = build_header([1, 1, 1], DataType::Float32, [1.0; 3], [0.0; 3], &opts);
        assert_eq!(h.labels.len(), 10);
        assert_eq!(h.labels[7], "old 7");
        assert!(h.labels[8].starts_with("capsid "));
        assert_eq!(h.labels[9], "extra");
    }
}
