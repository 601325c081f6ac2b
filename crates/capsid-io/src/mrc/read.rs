//! Reading MRC / CCP4 files: whole volumes (plain or gzip), headers, and memory-mapped z slabs.

use super::header::{DataType, MrcHeader, HEADER_LEN};
use crate::error::IoError;
use capsid_core::Volume;
use ndarray::{Array3, ArrayView3};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

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

/// Decodes `bytes` (whole voxels of type `t`, byte order `little_endian`) into `out` as f32.
pub fn decode(t: DataType, little_endian: bool, bytes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(bytes.len(), out.len() * t.bytes());
    macro_rules! conv {
        ($n:literal, $f:expr) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                let a: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                *o = $f(a);
            }
        };
    }
    match (t, little_endian) {
        (DataType::Int8, _) => conv!(1, |a: [u8; 1]| a[0] as i8 as f32),
        (DataType::Uint8, _) => conv!(1, |a: [u8; 1]| a[0] as f32),
        (DataType::Int16, true) => conv!(2, |a| i16::from_le_bytes(a) as f32),
        (DataType::Int16, false) => conv!(2, |a| i16::from_be_bytes(a) as f32),
        (DataType::Uint16, true) => conv!(2, |a| u16::from_le_bytes(a) as f32),
        (DataType::Uint16, false) => conv!(2, |a| u16::from_be_bytes(a) as f32),
        (DataType::Float16, true) => conv!(2, |a| half::f16::from_le_bytes(a).to_f32()),
        (DataType::Float16, false) => conv!(2, |a| half::f16::from_be_bytes(a).to_f32()),
        (DataType::Float32, true) => conv!(4, f32::from_le_bytes),
        (DataType::Float32, false) => conv!(4, f32::from_be_bytes),
    }
}

/// Reads `out.len()` voxels from `r`, decoding in bounded chunks (no second full-size buffer).
fn read_voxels(
    r: &mut impl Read,
    t: DataType,
    little_endian: bool,
    out: &mut [f32],
    path: &Path,
) -> Result<(), IoError> {
    const CHUNK_VOXELS: usize = 1 << 20;
    if t == DataType::Float32 && little_endian == cfg!(target_endian = "little") {
        // Native-order float32: read straight into the output, no conversion pass.
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
        let want = bytes.len();
        let got = read_up_to(r, bytes).map_err(|e| IoError::io(path, e))?;
        if got < want {
            return Err(IoError::format(
                path,
                format!("truncated MRC file: voxel data ends after {got} of {want} bytes"),
            ));
        }
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK_VOXELS.min(out.len()) * t.bytes()];
    let total = out.len();
    for (k, chunk) in out.chunks_mut(CHUNK_VOXELS).enumerate() {
        let bytes = &mut buf[..chunk.len() * t.bytes()];
        let got = read_up_to(r, bytes).map_err(|e| IoError::io(path, e))?;
        if got < bytes.len() {
            let have = k * CHUNK_VOXELS * t.bytes() + got;
            return Err(IoError::format(
                path,
                format!(
                    "truncated MRC file: voxel data ends after {have} of {} bytes",
                    total * t.bytes()
                ),
            ));
        }
        decode(t, little_endian, bytes, chunk);
    }
    Ok(())
}

/// Fails if `data` (from `path`) holds NaN or infinite values; names the first one's position.
fn check_finite(data: ArrayView3<f32>, path: &Path) -> Result<(), IoError> {
    let bad = data.iter().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return Ok(());
    }
    let (idx, v) = data
        .indexed_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|(i, v)| (i, *v))
        .unwrap_or(((0, 0, 0), f32::NAN));
    Err(IoError::format(
        path,
        format!(
            "{bad} NaN or infinite values (first: {v} at x={}, y={}, z={}); \
             capsid refuses non-finite densities",
            idx.2, idx.1, idx.0
        ),
    ))
}

/// Reorders stored `[sections, rows, columns]` data to physical `[z, y, x]` per the header's
/// MAPC/MAPR/MAPS. Returns `data` unchanged for the standard order 1, 2, 3.
fn to_zyx(data: Array3<f32>, axis_map: [i32; 3]) -> Array3<f32> {
    if axis_map == [1, 2, 3] {
        return data;
    }
    // Array axis 0 runs along axis_map[2] (sections), 1 along axis_map[1], 2 along axis_map[0].
    let phys_of_array_axis = [axis_map[2], axis_map[1], axis_map[0]];
    // Output axis k is physical axis 3 - k (z = 3, y = 2, x = 1).
    let perm = [0, 1, 2].map(|k| {
        phys_of_array_axis
            .iter()
            .position(|&p| p == 3 - k as i32)
            .unwrap_or(k)
    });
    data.permuted_axes(perm).as_standard_layout().into_owned()
}

/// Reads the header (and extended header) of an MRC / CCP4 file, plain or gzip-compressed.
///
/// Checks the mode is readable and, for plain files, that the file length matches the header.
pub fn read_header(path: &Path) -> Result<MrcHeader, IoError> {
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

/// Reads sections `z_start .. z_start + z_len` (physical z) of a volume as f32 `[z_len, y, x]`,
/// refusing NaN / infinite values.
///
/// Plain files are memory-mapped and only the slab's bytes are touched, so reading a 32-slice
/// slab of a 2 GB tomogram needs about 32 slices of memory. Gzip files are decompressed as a
/// stream up to the slab. The slab's `origin_a[2]` is the file's z origin plus
/// `z_start * voxel_size_a[2]`, so Å coordinates stay those of the whole tomogram.
/// Files whose sections are not along z (MAPS ≠ 3) are read whole, then cut.
pub fn read_slab(path: &Path, z_start: usize, z_len: usize) -> Result<Volume<f32>, IoError> {
    read_slab_with(path, z_start, z_len, ReadOptions::default())
}

/// Like [`read_slab`], with options (e.g. to accept NaN values).
pub fn read_slab_with(
    path: &Path,
    z_start: usize,
    z_len: usize,
    opts: ReadOptions,
) -> Result<Volume<f32>, IoError> {
    read_block_with(path, z_start, z_len, 0, None, opts)
}

/// Reads rows `y_start .. y_start + y_len` of sections `z_start .. z_start + z_len` (physical
/// axes) as f32 `[z_len, y_len, x]`: a band of a slab, refusing NaN / infinite values.
///
/// Plain files are memory-mapped and only the band's rows are touched (a 64-row band of a
/// 64-section slab of a 512 × 512 tomogram is 8 MB, against 64 MB for the slab). Gzip files and
/// files whose sections are not along z read the slab (or the volume), then cut. The band's
/// origin is moved by `y_start`, `z_start` voxels, so Å coordinates stay the tomogram's.
pub fn read_block(
    path: &Path,
    z_start: usize,
    z_len: usize,
    y_start: usize,
    y_len: usize,
) -> Result<Volume<f32>, IoError> {
    read_block_with(
        path,
        z_start,
        z_len,
        y_start,
        Some(y_len),
        ReadOptions::default(),
    )
}

/// [`read_block`] with options; `y_len` None means every row from `y_start`.
pub fn read_block_with(
    path: &Path,
    z_start: usize,
    z_len: usize,
    y_start: usize,
    y_len: Option<usize>,
    opts: ReadOptions,
) -> Result<Volume<f32>, IoError> {
    let (file, comp) = open(path)?;
    // Checks `start .. start + len` against an axis of `n` `unit`; `what` ("slab z", "rows y")
    // and `verb` ("is", "are") word the error.
    let check_span = |start: usize, len: usize, n: usize, [what, verb, unit]: [&str; 3]| {
        if len == 0 || start.checked_add(len).is_none_or(|end| end > n) {
            return Err(IoError::format(
                path,
                format!(
                    "{what} {start}..{} {verb} outside the volume's {n} {unit}",
                    start.saturating_add(len)
                ),
            ));
        }
        Ok(())
    };
    let check_range = |h: &MrcHeader| -> Result<usize, IoError> {
        let [nz, ny, _] = h.shape_zyx();
        check_span(z_start, z_len, nz, ["slab z", "is", "sections"])?;
        let y_len = y_len.unwrap_or(ny.saturating_sub(y_start));
        check_span(y_start, y_len, ny, ["rows y", "are", "rows"])?;
        Ok(y_len)
    };
    let cut_rows = |slab: Array3<f32>, y_len: usize| -> Array3<f32> {
        if y_start == 0 && y_len == slab.shape()[1] {
            slab
        } else {
            slab.slice(ndarray::s![.., y_start..y_start + y_len, ..])
                .to_owned()
        }
    };
    let (h, data) = match comp {
        Compression::None => {
            let len = file.metadata().map_err(|e| IoError::io(path, e))?.len();
            let h = read_headers(&mut BufReader::new(&file), path)?;
            let t = data_type(&h, path)?;
            check_file_len(&h, t, len, path)?;
            let y_len = check_range(&h)?;
            if h.axis_map[2] != 3 {
                let (h, slab) = slab_of_whole_file(path, z_start, z_len)?;
                (h, cut_rows(slab, y_len))
            } else {
                // SAFETY: the map is read-only and only read from; the file stays open for its
                // lifetime. (Another process truncating the file meanwhile could fault; mmap has
                // no safe alternative, and the reader validated the size first.)
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| IoError::io(path, e))?;
                // Stored rows are y only in the standard axis order (MAPC, MAPR = 1, 2); other
                // orders decode whole sections and cut after the transpose.
                let standard = h.axis_map == [1, 2, 3];
                let row = h.nx * t.bytes();
                let section = h.ny * row;
                let (r0, nr) = if standard {
                    (y_start, y_len)
                } else {
                    (0, h.ny)
                };
                let band = nr * h.nx;
                let mut v = vec![0f32; z_len * band];
                for (k, out) in v.chunks_exact_mut(band).enumerate() {
                    let start = HEADER_LEN + h.nsymbt() + (z_start + k) * section + r0 * row;
                    decode(t, h.little_endian, &map[start..start + nr * row], out);
                }
                let stored = Array3::from_shape_vec((z_len, nr, h.nx), v)
                    .map_err(|e| IoError::format(path, e.to_string()))?;
                let zyx = to_zyx(stored, h.axis_map);
                (h.clone(), if standard { zyx } else { cut_rows(zyx, y_len) })
            }
        }
        Compression::Gzip => {
            let mut r = flate2::read::MultiGzDecoder::new(BufReader::new(file));
            let h = read_headers(&mut r, path)?;
            let t = data_type(&h, path)?;
            let y_len = check_range(&h)?;
            if h.axis_map[2] != 3 {
                let (h, slab) = slab_of_whole_file(path, z_start, z_len)?;
                (h, cut_rows(slab, y_len))
            } else {
                // A compressed file's length says nothing about the size its header claims:
                // check the slab against memory before allocating it (the plain branch is
                // covered by the file length check).
                capsid_core::volume::check_volume_size("", [z_len, h.ny, h.nx], 4)
                    .map_err(|e| IoError::format(path, e.to_string()))?;
                let section = (h.nx * h.ny * t.bytes()) as u64;
                let skip = (z_start as u64).checked_mul(section).ok_or_else(|| {
                    IoError::format(path, "header dimensions overflow 64-bit byte offsets")
                })?;
                let skipped = std::io::copy(&mut (&mut r).take(skip), &mut std::io::sink())
                    .map_err(|e| IoError::io(path, e))?;
                if skipped < skip {
                    return Err(IoError::format(
                        path,
                        "truncated MRC file: voxel data end early",
                    ));
                }
                let mut v = vec![0f32; z_len * h.nx * h.ny];
                read_voxels(&mut r, t, h.little_endian, &mut v, path)?;
                let stored = Array3::from_shape_vec((z_len, h.ny, h.nx), v)
                    .map_err(|e| IoError::format(path, e.to_string()))?;
                let axis_map = h.axis_map;
                (h, cut_rows(to_zyx(stored, axis_map), y_len))
            }
        }
    };
    if !opts.allow_non_finite && h.data_type().is_some_and(DataType::is_float) {
        check_finite(data.view(), path)?;
    }
    let mut origin_a = h.origin_a;
    origin_a[2] += z_start as f32 * h.voxel_size_a[2];
    origin_a[1] += y_start as f32 * h.voxel_size_a[1];
    Ok(Volume {
        data,
        voxel_size_a: h.voxel_size_a,
        origin_a,
    })
}

/// Sections not along z: the slab is cut from the whole volume (read with non-finite values
/// allowed; the caller checks them on the slab).
fn slab_of_whole_file(
    path: &Path,
    z_start: usize,
    z_len: usize,
) -> Result<(MrcHeader, Array3<f32>), IoError> {
    let (h, vol) = read_mrc(
        path,
        ReadOptions {
            allow_non_finite: true,
        },
    )?;
    let slab = vol
        .data
        .slice(ndarray::s![z_start..z_start + z_len, .., ..])
        .to_owned();
    Ok((h, slab))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_each_type_and_byte_order() {
        let mut out = [0f32; 2];
        decode(DataType::Int8, true, &[0xff, 0x05], &mut out);
        assert_eq!(out, [-1.0, 5.0]);
        decode(DataType::Uint8, true, &[0xff, 0x05], &mut out);
        assert_eq!(out, [255.0, 5.0]);
        decode(DataType::Int16, false, &[0xff, 0xfe, 0x01, 0x00], &mut out);
        assert_eq!(out, [-2.0, 256.0]);
        decode(DataType::Uint16, true, &[0xff, 0xfe, 0x01, 0x00], &mut out);
        assert_eq!(out, [65279.0, 1.0]);
        let mut one = [0f32; 1];
        decode(DataType::Float32, false, &1.5f32.to_be_bytes(), &mut one);
        assert_eq!(one, [1.5]);
        decode(
            DataType::Float16,
            true,
            &half::f16::from_f32(-0.25).to_le_bytes(),
            &mut one,
        );
        assert_eq!(one, [-0.25]);
    }

    #[test]
    fn to_zyx_undoes_axis_permutation() {
        // Stored [sections = z, rows = x, columns = y] (MAPC/MAPR/MAPS = 2, 1, 3).
        let stored = Array3::from_shape_fn((2, 4, 3), |(z, x, y)| (100 * z + 10 * y + x) as f32);
        let zyx = to_zyx(stored, [2, 1, 3]);
        assert_eq!(zyx.shape(), &[2, 3, 4]);
        assert_eq!(zyx[[1, 2, 3]], 123.0);
        let same = Array3::from_shape_fn((2, 3, 4), |(z, y, x)| (z + y + x) as f32);
        assert_eq!(to_zyx(same.clone(), [1, 2, 3]), same);
    }
}
