//! Reading MRC / CCP4 files: whole volumes (plain or gzip), headers, and memory-mapped z slabs.
//!
//! Split by concern: this module opens files, validates headers against the data and reads whole
//! volumes; `voxels` decodes the stored modes and byte orders into f32 `[z, y, x]`; `slab`
//! reads z slabs and row bands without touching the rest of the file.

mod slab;
mod voxels;

use super::header::{DataType, MrcHeader, HEADER_LEN};
use crate::error::IoError;
use capsid_core::Volume;
use ndarray::Array3;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use voxels::{check_finite, read_voxels, to_zyx};

pub use slab::{band_origin, read_block, read_block_with, read_slab, read_slab_with};
pub use voxels::decode;

/// Options for reading voxel values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Accept NaN and infinite values in float data (modes 2 and 12). By default they are refused
    /// with an error naming the file, since no stage of capsid can use them.
    pub allow_non_finite: bool,
}

/// How the file's bytes are stored on disk.
enum Compression {
    None,
    Gzip,
}

/// Opens `path` and tells whether it is gzip-compressed (by its magic bytes, whatever its
/// extension). bzip2 files are refused with a message saying how to decompress them.
fn open(path: &Path) -> Result<(File, Compression), IoError> {
    let mut file = File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut magic = [0u8; 3];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| IoError::io(path, e))?;
    use std::io::Seek;
    file.rewind().map_err(|e| IoError::io(path, e))?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        return Ok((file, Compression::Gzip));
    }
    if n == 3 && &magic == b"BZh" {
        return Err(IoError::format(
            path,
            "bzip2-compressed MRC files are not supported; decompress first (bunzip2 -k FILE)",
        ));
    }
    Ok((file, Compression::None))
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads exactly `buf.len()` bytes or fails with a "truncated" format error for `path`.
fn read_exact_or_truncated(
    r: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    what: &str,
) -> Result<(), IoError> {
    let got = read_up_to(r, buf).map_err(|e| IoError::io(path, e))?;
    if got < buf.len() {
        return Err(IoError::format(
            path,
            format!(
                "truncated MRC file: {what} ends after {got} of {} bytes",
                buf.len()
            ),
        ));
    }
    Ok(())
}

/// Parses the main header from `r` and fills its extended header; checks the mode is readable.
fn read_headers(r: &mut impl Read, path: &Path) -> Result<MrcHeader, IoError> {
    let mut b = [0u8; HEADER_LEN];
    let got = read_up_to(r, &mut b).map_err(|e| IoError::io(path, e))?;
    let mut h = MrcHeader::parse(path, &b[..got])?;
    let mut ext = std::mem::take(&mut h.ext_header);
    read_exact_or_truncated(r, &mut ext, path, "extended header")?;
    h.ext_header = ext;
    Ok(h)
}

/// The data type of `h` or an error naming the mode.
fn data_type(h: &MrcHeader, path: &Path) -> Result<DataType, IoError> {
    h.data_type().ok_or_else(|| {
        let what = match h.mode {
            3 => " (complex int16)",
            4 => " (complex float32)",
            101 => " (4-bit packed)",
            _ => "",
        };
        IoError::format(
            path,
            format!(
                "unsupported MRC mode {}{what}; capsid reads modes 0 (int8/uint8), 1 (int16), \
                 2 (float32), 6 (uint16) and 12 (float16)",
                h.mode
            ),
        )
    })
}

/// The shared "too large" check before a whole volume (float32) is allocated.
fn check_alloc(h: &MrcHeader, path: &Path) -> Result<(), IoError> {
    capsid_core::volume::check_volume_size("", h.shape_zyx(), 4)
        .map(|_| ())
        .map_err(|e| IoError::format(path, e.to_string()))
}

/// Checks that a plain file's length is exactly header + extended header + data.
fn check_file_len(h: &MrcHeader, t: DataType, file_len: u64, path: &Path) -> Result<(), IoError> {
    let expected = (HEADER_LEN + h.nsymbt()) as u64 + (h.voxel_count() * t.bytes()) as u64;
    if file_len != expected {
        return Err(IoError::format(
            path,
            format!(
                "file is {file_len} bytes, header implies {expected} \
                 (1024 + {} extended + {} x {} x {} voxels of mode {}){}",
                h.nsymbt(),
                h.nx,
                h.ny,
                h.nz,
                h.mode,
                if file_len < expected {
                    " — truncated"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

/// Reads the header (and extended header) of an MRC / CCP4 file, plain or gzip-compressed, or
/// describes an OME-Zarr image (its finest level, or the level array given) as a float32 header.
///
/// Checks the mode is readable and, for plain files, that the file length matches the header.
pub fn read_header(path: &Path) -> Result<MrcHeader, IoError> {
    if crate::zarr::is_zarr(path) {
        return Ok(crate::zarr::ZarrTomogram::open(path)?.header());
    }
    let (file, comp) = open(path)?;
    match comp {
        Compression::None => {
            let len = file.metadata().map_err(|e| IoError::io(path, e))?.len();
            let mut r = BufReader::new(file);
            let h = read_headers(&mut r, path)?;
            let t = data_type(&h, path)?;
            check_file_len(&h, t, len, path)?;
            Ok(h)
        }
        Compression::Gzip => {
            let mut r = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            let h = read_headers(&mut r, path)?;
            data_type(&h, path)?;
            Ok(h)
        }
    }
}

/// Reads a whole MRC / CCP4 volume as f32, `[z, y, x]`, refusing NaN / infinite values.
///
/// Any readable mode (0, 1, 2, 6, 12), either byte order, gzip (detected by magic bytes), and
/// permuted axes (MAPC/MAPR/MAPS ≠ 1, 2, 3: the data are transposed so the result is indexed by
/// the physical z, y, x axes, as `numpy.transpose` after mrcfile would give). `voxel_size_a` is
/// `cella / (mx, my, mz)` (0 where either is 0) and `origin_a` the header's ORIGIN, both `[x, y, z]`.
pub fn read_volume(path: &Path) -> Result<Volume<f32>, IoError> {
    read_mrc(path, ReadOptions::default()).map(|(_, v)| v)
}

/// Reads a label map: a volume whose every voxel holds an integer 0..=255 (class labels, 0 =
/// background), whatever the MRC mode; anything else is an error naming the file and the first
/// offending value. The one rule for every stage that takes label maps (pick, evaluate, train).
pub fn read_label_map(path: &Path) -> Result<Volume<u8>, IoError> {
    let v = read_volume(path)?;
    if let Some(x) = v
        .data
        .iter()
        .find(|x| x.fract() != 0.0 || !(0.0..=255.0).contains(*x))
    {
        return Err(IoError::format(
            path,
            format!("not a label map: holds the value {x} (labels are integers 0..=255)"),
        ));
    }
    let data = v.data.mapv(|x| x as u8);
    Ok(v.with_data(data))
}

/// Like [`read_volume`], with options (e.g. to accept NaN values).
pub fn read_volume_with(path: &Path, opts: ReadOptions) -> Result<Volume<f32>, IoError> {
    read_mrc(path, opts).map(|(_, v)| v)
}

/// Reads the header and the whole volume (see [`read_volume`]).
pub fn read_mrc(path: &Path, opts: ReadOptions) -> Result<(MrcHeader, Volume<f32>), IoError> {
    if crate::zarr::is_zarr(path) {
        let z = crate::zarr::ZarrTomogram::open(path)?;
        return Ok((z.header(), z.read_volume()?));
    }
    let (file, comp) = open(path)?;
    let (h, stored) = match comp {
        Compression::None => {
            let len = file.metadata().map_err(|e| IoError::io(path, e))?.len();
            let mut r = BufReader::new(file);
            let h = read_headers(&mut r, path)?;
            let t = data_type(&h, path)?;
            check_file_len(&h, t, len, path)?;
            check_alloc(&h, path)?;
            let mut v = vec![0f32; h.voxel_count()];
            read_voxels(&mut r, t, h.little_endian, &mut v, path)?;
            (h, v)
        }
        Compression::Gzip => {
            let mut r = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            let h = read_headers(&mut r, path)?;
            let t = data_type(&h, path)?;
            check_alloc(&h, path)?;
            let mut v = vec![0f32; h.voxel_count()];
            read_voxels(&mut r, t, h.little_endian, &mut v, path)?;
            let mut extra = [0u8; 1];
            if read_up_to(&mut r, &mut extra).map_err(|e| IoError::io(path, e))? > 0 {
                return Err(IoError::format(
                    path,
                    "decompressed data are longer than the header implies",
                ));
            }
            (h, v)
        }
    };
    let data = Array3::from_shape_vec((h.nz, h.ny, h.nx), stored)
        .map_err(|e| IoError::format(path, e.to_string()))?;
    let data = to_zyx(data, h.axis_map);
    if !opts.allow_non_finite && h.data_type().is_some_and(DataType::is_float) {
        check_finite(data.view(), path)?;
    }
    let vol = Volume {
        data,
        voxel_size_a: h.voxel_size_a,
        origin_a: h.origin_a,
    };
    Ok((h, vol))
}
