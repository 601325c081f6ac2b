//! Voxel data: decoding each MRC mode and byte order to f32, the stored-to-physical axis
//! order, and the check for NaN / infinite values.

use super::read_up_to;
use crate::error::IoError;
use crate::mrc::header::DataType;
use ndarray::{Array3, ArrayView3};
use std::io::Read;
use std::path::Path;

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
pub(super) fn read_voxels(
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
pub(super) fn check_finite(data: ArrayView3<f32>, path: &Path) -> Result<(), IoError> {
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
pub(super) fn to_zyx(data: Array3<f32>, axis_map: [i32; 3]) -> Array3<f32> {
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
