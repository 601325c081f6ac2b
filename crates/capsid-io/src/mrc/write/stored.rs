//! What a new file stores: its header (shape, type, geometry, labels, copied details) and each
//! voxel's little-endian bytes.

use super::WriteOptions;
use crate::mrc::header::{DataType, MrcHeader, IMOD_STAMP};

/// The header of a new file: shape, type, geometry, labels, and whatever `opts.like` copies.
pub(super) fn build_header(
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
pub(super) fn encode(t: DataType, v: f32, out: &mut Vec<u8>) -> Option<f64> {
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
pub(super) fn range_text(t: DataType) -> &'static str {
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
