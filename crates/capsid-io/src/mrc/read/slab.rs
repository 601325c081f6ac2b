//! Slabs and bands: sections `z_start .. z_start + z_len` (and rows of them) read from a
//! memory-mapped plain file or a gzip stream without reading the whole volume.

use super::voxels::{check_finite, decode, read_voxels, to_zyx};
use super::{check_file_len, data_type, open, read_headers, read_mrc, Compression, ReadOptions};
use crate::error::IoError;
use crate::mrc::header::{DataType, MrcHeader, HEADER_LEN};
use capsid_core::Volume;
use ndarray::Array3;
use std::io::{BufReader, Read};
use std::path::Path;

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

/// The origin `[x, y, z]` (Å) of a band that starts at row `y_start` of section `z_start` of a
/// volume with origin `origin_a` and voxel size `voxel_size_a` (both `[x, y, z]`, Å).
pub fn band_origin(
    origin_a: [f32; 3],
    voxel_size_a: [f32; 3],
    y_start: usize,
    z_start: usize,
) -> [f32; 3] {
    [
        origin_a[0],
        origin_a[1] + y_start as f32 * voxel_size_a[1],
        origin_a[2] + z_start as f32 * voxel_size_a[2],
    ]
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
    if crate::zarr::is_zarr(path) {
        return crate::zarr::ZarrTomogram::open(path)?.read_band(z_start, z_len, y_start, y_len);
    }
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
    Ok(Volume {
        data,
        voxel_size_a: h.voxel_size_a,
        origin_a: band_origin(h.origin_a, h.voxel_size_a, y_start, z_start),
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
