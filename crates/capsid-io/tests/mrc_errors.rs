//! Bad MRC input: every case must give one error line naming the file and the problem, never a
//! panic and never a volume.

use capsid_core::Volume;
use capsid_io::mrc::{read_header, read_slab, read_volume, write_volume, MrcMode};
use ndarray::Array3;
use std::path::{Path, PathBuf};

/// A valid 4×3×2 float32 file written by capsid; cases below corrupt copies of its bytes.
fn good_bytes(dir: &Path) -> Vec<u8> {
    let p = dir.join("good.mrc");
    let vol = Volume::new(
        Array3::from_shape_fn((2, 3, 4), |(z, y, x)| (z + y + x) as f32),
        2.0,
    );
    write_volume(&p, &vol, MrcMode::Float32).unwrap();
    std::fs::read(&p).unwrap()
}

fn set_i32(b: &mut [u8], off: usize, v: i32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn mrc_bad_input_table() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_bytes(dir.path());
    type Corrupt = fn(&mut Vec<u8>);
    // (case name, corruption, words the one-line message must contain)
    let cases: Vec<(&str, Corrupt, &[&str])> = vec![
        (
            "truncated_data",
            |b| b.truncate(b.len() - 10),
            &["file is 1110 bytes, header implies 1120", "truncated"],
        ),
        (
            "truncated_header",
            |b| b.truncate(500),
            &["not an MRC file", "500 bytes"],
        ),
        (
            "implied_size_overflows_64_bits",
            |b| {
                for off in [0, 4, 8] {
                    set_i32(b, off, i32::MAX);
                }
            },
            &["overflows 64 bits"],
        ),
        ("empty", |b| b.clear(), &["not an MRC file", "0 bytes"]),
        (
            "longer_than_header_says",
            |b| b.extend_from_slice(&[0; 16]),
            &["file is 1136 bytes, header implies 1120"],
        ),
        (
            "mode_4_complex",
            |b| set_i32(b, 12, 4),
            &["unsupported MRC mode 4 (complex float32)"],
        ),
        ("mode_3", |b| set_i32(b, 12, 3), &["unsupported MRC mode 3"]),
        (
            "mode_101",
            |b| set_i32(b, 12, 101),
            &["unsupported MRC mode 101"],
        ),
        (
            "nan",
            |b| b[1024 + 8..1024 + 12].copy_from_slice(&f32::NAN.to_le_bytes()),
            &["NaN", "x=2, y=0, z=0"],
        ),
        (
            "infinity",
            |b| b[1024 + 4..1024 + 8].copy_from_slice(&f32::INFINITY.to_le_bytes()),
            &["infinite"],
        ),
        ("zero_dim", |b| set_i32(b, 4, 0), &["dimensions 4 x 0 x 2"]),
        (
            "negative_dim",
            |b| set_i32(b, 8, -2),
            &["dimensions 4 x 3 x -2"],
        ),
        (
            "not_mrc",
            |b| {
                b[208..212].copy_from_slice(b"XXXX");
                set_i32(b, 12, 77);
            },
            &["not an MRC file", "MAP"],
        ),
        (
            "text_file",
            |b| *b = b"hello, this is not a volume\n".repeat(50),
            &["not an MRC file"],
        ),
        (
            "bad_axis_order",
            |b| set_i32(b, 68, 1),
            &["MAPC/MAPR/MAPS = 1, 1, 3"],
        ),
        (
            "negative_nsymbt",
            |b| set_i32(b, 92, -5),
            &["negative extended header"],
        ),
        (
            "ext_header_past_end",
            |b| set_i32(b, 92, 5000),
            &["truncated", "extended header"],
        ),
        (
            "bzip2",
            |b| *b = b"BZh91AY&SY".to_vec(),
            &["bzip2", "not supported"],
        ),
    ];
    for (name, corrupt, words) in cases {
        let p = dir.path().join(format!("{name}.mrc"));
        let mut b = good.clone();
        corrupt(&mut b);
        std::fs::write(&p, &b).unwrap();
        let e = read_volume(&p).expect_err(name).to_string();
        assert!(!e.contains('\n'), "{name}: one line: {e}");
        assert!(
            e.contains(&format!("{name}.mrc")),
            "{name}: names the file: {e}"
        );
        for w in words {
            assert!(e.contains(w), "{name}: expected '{w}' in: {e}");
        }
        // Header-level problems are caught by read_header and read_slab too.
        if !["nan", "infinity"].contains(&name) {
            assert!(read_header(&p).is_err(), "{name}: read_header");
        }
        assert!(read_slab(&p, 0, 1).is_err(), "{name}: read_slab");
        assert_eq!(std::fs::read(&p).unwrap(), b, "{name}: input untouched");
    }
}

#[test]
fn mrc_nonexistent_file() {
    let p = PathBuf::from("/nonexistent/dir/missing.mrc");
    for e in [
        read_volume(&p).unwrap_err().to_string(),
        read_header(&p).unwrap_err().to_string(),
        read_slab(&p, 0, 1).unwrap_err().to_string(),
    ] {
        assert!(
            e.contains("missing.mrc") && e.contains("No such file"),
            "{e}"
        );
    }
}

#[test]
fn mrc_write_to_missing_folder_fails_cleanly() {
    let vol = Volume::new(Array3::<f32>::zeros((1, 2, 2)), 1.0);
    let e = write_volume(
        Path::new("/nonexistent/dir/out.mrc"),
        &vol,
        MrcMode::Float32,
    )
    .unwrap_err();
    assert!(e.to_string().contains("out.mrc"), "{e}");
}

#[test]
fn mrc_old_header_without_map_stamp_is_read() {
    // Files from before MRC2000 have no 'MAP ' stamp and no MACHST; capsid reads them when the
    // mode is valid and the sizes match the file length (as EMD-3197 style files do).
    let dir = tempfile::tempdir().unwrap();
    let mut b = good_bytes(dir.path());
    b[208..216].fill(0);
    let p = dir.path().join("old.mrc");
    std::fs::write(&p, &b).unwrap();
    let v = read_volume(&p).unwrap();
    assert_eq!(v.shape_zyx(), [2, 3, 4]);
    assert_eq!(v.data[[1, 2, 3]], 6.0);
    assert!(!read_header(&p).unwrap().has_map_stamp);
}
