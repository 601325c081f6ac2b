//! Round trips through capsid's MRC writer and reader, plus hand-built files in layouts capsid
//! does not write itself (big-endian, extended header, gzip, permuted axes, IMOD uint8).

use capsid_core::Volume;
use capsid_io::mrc::{
    read_block, read_header, read_mrc, read_slab, read_volume, write_labels, write_volume,
    write_volume_like, write_volume_with, LabelMode, MrcHeader, MrcMode, MrcWriter, ReadOptions,
    WriteOptions,
};
use ndarray::Array3;
use std::io::Write;

/// A small test volume `[z, y, x]` whose values encode their position, within int8 range.
fn ramp(shape_zyx: [usize; 3]) -> Volume<f32> {
    let [nz, ny, nx] = shape_zyx;
    let data = Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        ((z * 31 + y * 7 + x * 3) % 200) as f32 - 100.0
    });
    Volume {
        data,
        voxel_size_a: [2.0, 2.5, 3.0],
        origin_a: [10.0, -20.0, 30.5],
    }
}

/// Builds the raw bytes of an MRC file in either byte order from its main fields.
#[allow(clippy::too_many_arguments)]
fn raw_mrc(
    little: bool,
    nxyz: [i32; 3],
    mode: i32,
    axis_map: [i32; 3],
    cella: [f32; 3],
    ext: &[u8],
    data: &[u8],
    imod_unsigned: bool,
) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    let pi = |b: &mut Vec<u8>, off: usize, v: i32| {
        let x = if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        b[off..off + 4].copy_from_slice(&x);
    };
    let pf = |b: &mut Vec<u8>, off: usize, v: f32| {
        let x = if little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        b[off..off + 4].copy_from_slice(&x);
    };
    for k in 0..3 {
        pi(&mut b, 4 * k, nxyz[k]);
        pf(&mut b, 40 + 4 * k, cella[k]);
        pf(&mut b, 52 + 4 * k, 90.0);
        pi(&mut b, 64 + 4 * k, axis_map[k]);
        pf(&mut b, 196 + 4 * k, 1.5 * (k as f32 + 1.0));
    }
    // mx, my, mz are along physical X, Y, Z.
    let mut phys = [0i32; 3];
    for k in 0..3 {
        phys[(axis_map[k] - 1) as usize] = nxyz[k];
    }
    for (k, &m) in phys.iter().enumerate() {
        pi(&mut b, 28 + 4 * k, m);
    }
    pi(&mut b, 12, mode);
    pi(&mut b, 92, ext.len() as i32);
    pi(&mut b, 108, 20141);
    if imod_unsigned {
        pi(&mut b, 152, 1146047817);
        pi(&mut b, 156, 1);
    }
    b[208..212].copy_from_slice(b"MAP ");
    b[212..214].copy_from_slice(if little { &[0x44, 0x44] } else { &[0x11, 0x11] });
    b.extend_from_slice(ext);
    b.extend_from_slice(data);
    b
}

#[test]
fn mrc_roundtrip_every_volume_mode() {
    let dir = tempfile::tempdir().unwrap();
    let vol = ramp([5, 6, 7]);
    for (mode, code) in [
        (MrcMode::Float32, 2),
        (MrcMode::Float16, 12),
        (MrcMode::Int8, 0),
        (MrcMode::Int16, 1),
        (MrcMode::Uint16, 6),
    ] {
        let p = dir.path().join(format!("v{code}.mrc"));
        let v = if mode == MrcMode::Uint16 {
            vol.with_data(vol.data.mapv(|v| v + 100.0))
        } else {
            vol.clone()
        };
        write_volume(&p, &v, mode).unwrap();
        let (h, back) = read_mrc(&p, ReadOptions::default()).unwrap();
        assert_eq!(h.mode, code);
        assert_eq!(
            back, v,
            "mode {code}: values, voxel size and origin survive"
        );
        assert_eq!(h.nversion, 20141);
        assert_eq!(h.machst, [0x44, 0x44, 0, 0]);
        assert_eq!(h.axis_map, [1, 2, 3]);
        assert_eq!(h.cella, [14.0, 15.0, 15.0]);
        assert_eq!(h.ispg, 1);
        assert_eq!(h.labels[0], format!("capsid {}", capsid_core::VERSION));
        let s = capsid_core::volume::stats(v.data.iter().map(|&x| x as f64));
        assert_eq!(h.dmin as f64, s.min);
        assert_eq!(h.dmax as f64, s.max);
        assert!((h.dmean as f64 - s.mean).abs() < 1e-5);
        assert!((h.rms as f64 - s.rms).abs() < 1e-4);
        let len = std::fs::metadata(&p).unwrap().len();
        let bytes = match code {
            0 => 1,
            2 => 4,
            _ => 2,
        };
        assert_eq!(len, 1024 + 5 * 6 * 7 * bytes);
    }
}

#[test]
fn mrc_float16_rounds_to_nearest_half() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("h.mrc");
    let vol = Volume::new(
        Array3::from_shape_fn((2, 3, 4), |(z, y, x)| 0.1 * (z + y + x) as f32),
        1.0,
    );
    write_volume(&p, &vol, MrcMode::Float16).unwrap();
    let back = read_volume(&p).unwrap();
    for (a, b) in vol.data.iter().zip(back.data.iter()) {
        assert_eq!(half::f16::from_f32(*a).to_f32(), *b);
    }
}

#[test]
fn mrc_integer_modes_refuse_out_of_range_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.mrc");
    let mut vol = ramp([2, 3, 4]);
    vol.data[[1, 2, 3]] = 300.0;
    let e = write_volume(&p, &vol, MrcMode::Int8)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.mrc") && e.contains("300") && e.contains("x=3, y=2, z=1"),
        "{e}"
    );
    assert!(!p.exists(), "no half-written file");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp file removed"
    );
    vol.data[[1, 2, 3]] = f32::NAN;
    assert!(write_volume(&p, &vol, MrcMode::Float32).is_err());
    vol.data[[1, 2, 3]] = 1e6;
    assert!(write_volume(&p, &vol, MrcMode::Float16).is_err());
    assert!(!p.exists());
}

#[test]
fn mrc_labels_uint8_and_uint16() {
    let dir = tempfile::tempdir().unwrap();
    let data = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| ((z + y + x) % 4) as u8 * 80);
    let labels = Volume {
        data,
        voxel_size_a: [4.0; 3],
        origin_a: [0.0; 3],
    };
    for (mode, code, bytes) in [
        (LabelMode::Uint8Mode0, 0, 1),
        (LabelMode::Uint16Mode6, 6, 2),
    ] {
        let p = dir.path().join(format!("l{code}.mrc"));
        write_labels(&p, &labels, mode).unwrap();
        let (h, back) = read_mrc(&p, ReadOptions::default()).unwrap();
        assert_eq!(h.mode, code);
        if code == 0 {
            assert_eq!(h.imod_stamp, 1146047817);
            assert_eq!(h.imod_flags & 1, 1);
        }
        assert_eq!(
            back.data,
            labels.data.mapv(|v| v as f32),
            "values above 127 stay unsigned"
        );
        assert_eq!(h.dmax, 240.0);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1024 + 60 * bytes);
    }
}

#[test]
fn mrc_reads_big_endian_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..24).map(|i| i as f32 - 5.0).collect();
    type Enc = fn(f32) -> Vec<u8>;
    let cases: [(i32, Enc); 5] = [
        (0, |v| vec![v as i8 as u8]),
        (1, |v| (v as i16).to_be_bytes().to_vec()),
        (2, |v| v.to_be_bytes().to_vec()),
        (6, |v| ((v + 5.0) as u16).to_be_bytes().to_vec()),
        (12, |v| half::f16::from_f32(v).to_be_bytes().to_vec()),
    ];
    for (mode, enc) in cases {
        let data: Vec<u8> = values.iter().flat_map(|&v| enc(v)).collect();
        let p = dir.path().join(format!("be{mode}.mrc"));
        std::fs::write(
            &p,
            raw_mrc(
                false,
                [4, 3, 2],
                mode,
                [1, 2, 3],
                [8.0, 6.0, 4.0],
                &[],
                &data,
                false,
            ),
        )
        .unwrap();
        let (h, v) = read_mrc(&p, ReadOptions::default()).unwrap();
        assert!(!h.little_endian);
        assert_eq!(v.shape_zyx(), [2, 3, 4]);
        assert_eq!(v.voxel_size_a, [2.0, 2.0, 2.0]);
        assert_eq!(v.origin_a, [1.5, 3.0, 4.5]);
        let off = if mode == 6 { 5.0 } else { 0.0 };
        let expect: Vec<f32> = values.iter().map(|v| v + off).collect();
        assert_eq!(
            v.data.iter().copied().collect::<Vec<_>>(),
            expect,
            "mode {mode}"
        );
    }
}

#[test]
fn mrc_imod_unsigned_mode0_and_signed_default() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = vec![0, 1, 127, 128, 200, 255];
    for (flag, expect) in [
        (true, vec![0.0, 1.0, 127.0, 128.0, 200.0, 255.0]),
        (false, vec![0.0, 1.0, 127.0, -128.0, -56.0, -1.0]),
    ] {
        let p = dir.path().join(format!("u{flag}.mrc"));
        std::fs::write(
            &p,
            raw_mrc(
                true,
                [3, 2, 1],
                0,
                [1, 2, 3],
                [3.0, 2.0, 1.0],
                &[],
                &data,
                flag,
            ),
        )
        .unwrap();
        let v = read_volume(&p).unwrap();
        assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), expect);
    }
}

#[test]
fn mrc_extended_header_skipped_kept_and_copied() {
    let dir = tempfile::tempdir().unwrap();
    let ext: Vec<u8> = (0..160u32).map(|i| (i * 7 % 251) as u8).collect();
    let values: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let src = dir.path().join("ext.mrc");
    let mut raw = raw_mrc(
        true,
        [4, 3, 2],
        2,
        [1, 2, 3],
        [8.0, 6.0, 4.0],
        &ext,
        &data,
        false,
    );
    raw[104..108].copy_from_slice(b"CCP4");
    std::fs::write(&src, raw).unwrap();
    let h = read_header(&src).unwrap();
    assert_eq!(h.ext_header, ext);
    assert_eq!(&h.exttyp, b"CCP4");
    let v = read_volume(&src).unwrap();
    assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), values);

    // Header copy: a map computed from this volume keeps its geometry, ext header and labels.
    let mut like = h.clone();
    like.labels = vec!["from the microscope".into()];
    let out = dir.path().join("copy.mrc");
    let mut other = v.clone();
    other.voxel_size_a = [9.0; 3];
    other.origin_a = [0.0; 3];
    write_volume_like(&out, &other, MrcMode::Float32, &like).unwrap();
    let h2 = read_header(&out).unwrap();
    assert_eq!(h2.ext_header, ext);
    assert_eq!(&h2.exttyp, b"CCP4");
    assert_eq!(h2.voxel_size_a, h.voxel_size_a);
    assert_eq!(h2.origin_a, h.origin_a);
    assert_eq!(h2.labels[0], "from the microscope");
    assert!(h2.labels[1].starts_with("capsid "));
    assert_eq!(read_volume(&out).unwrap().data, v.data);
}

#[test]
fn mrc_gzip_detected_by_magic_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    let vol = ramp([4, 5, 6]);
    let plain = dir.path().join("p.mrc");
    write_volume(&plain, &vol, MrcMode::Float32).unwrap();
    let bytes = std::fs::read(&plain).unwrap();
    for name in ["g.mrc.gz", "g.map.gz", "disguised.mrc"] {
        let p = dir.path().join(name);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        assert_eq!(read_volume(&p).unwrap(), vol, "{name}");
        let h = read_header(&p).unwrap();
        assert_eq!(h.nz, 4);
        let slab = read_slab(&p, 1, 2).unwrap();
        assert_eq!(slab.data, vol.data.slice(ndarray::s![1..3, .., ..]));
        let band = read_block(&p, 1, 2, 3, 2).unwrap();
        assert_eq!(band.data, vol.data.slice(ndarray::s![1..3, 3..5, ..]));
    }
}

#[test]
fn mrc_permuted_axes_are_transposed_to_zyx() {
    // Stored: columns along y (ny = 3), rows along x (nx = 4), sections along z (nz = 2),
    // i.e. MAPC/MAPR/MAPS = 2, 1, 3 as in 1jzv.ccp4.
    let dir = tempfile::tempdir().unwrap();
    let phys = Array3::from_shape_fn((2, 3, 4), |(z, y, x)| (100 * z + 10 * y + x) as f32);
    let mut data = Vec::new();
    for z in 0..2 {
        for x in 0..4 {
            for y in 0..3 {
                data.extend_from_slice(&phys[[z, y, x]].to_le_bytes());
            }
        }
    }
    let p = dir.path().join("perm.ccp4");
    std::fs::write(
        &p,
        raw_mrc(
            true,
            [3, 4, 2],
            2,
            [2, 1, 3],
            [8.0, 6.0, 4.0],
            &[],
            &data,
            false,
        ),
    )
    .unwrap();
    let h = read_header(&p).unwrap();
    assert_eq!(h.shape_zyx(), [2, 3, 4]);
    let v = read_volume(&p).unwrap();
    assert_eq!(v.data, phys);
    assert_eq!(v.voxel_size_a, [2.0, 2.0, 2.0]);
    assert_eq!(
        read_slab(&p, 1, 1).unwrap().data,
        phys.slice(ndarray::s![1..2, .., ..])
    );

    // Sections along y (3, 1, 2 as in EMD-3001): columns z, rows x, sections y.
    let mut data = Vec::new();
    for y in 0..3 {
        for x in 0..4 {
            for z in 0..2 {
                data.extend_from_slice(&phys[[z, y, x]].to_le_bytes());
            }
        }
    }
    let p = dir.path().join("perm312.ccp4");
    std::fs::write(
        &p,
        raw_mrc(
            true,
            [2, 4, 3],
            2,
            [3, 1, 2],
            [8.0, 6.0, 4.0],
            &[],
            &data,
            false,
        ),
    )
    .unwrap();
    assert_eq!(read_volume(&p).unwrap().data, phys);
    assert_eq!(
        read_slab(&p, 1, 1).unwrap().data,
        phys.slice(ndarray::s![1..2, .., ..])
    );
    assert_eq!(
        read_block(&p, 0, 2, 1, 2).unwrap().data,
        phys.slice(ndarray::s![.., 1..3, ..])
    );
}

#[test]
fn mrc_block_of_plain_file_keeps_origin_and_refuses_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut vol = ramp([6, 7, 5]);
    vol.voxel_size_a = [2.0, 3.0, 4.0];
    vol.origin_a = [10.0, 20.0, 30.0];
    let p = dir.path().join("v.mrc");
    write_volume(&p, &vol, MrcMode::Float32).unwrap();
    let b = read_block(&p, 2, 3, 4, 3).unwrap();
    assert_eq!(b.data, vol.data.slice(ndarray::s![2..5, 4..7, ..]));
    assert_eq!(b.origin_a, [10.0, 20.0 + 4.0 * 3.0, 30.0 + 2.0 * 4.0]);
    let e = read_block(&p, 0, 1, 5, 3).unwrap_err().to_string();
    assert!(e.contains("v.mrc") && e.contains("rows y 5..8"), "{e}");
    assert!(read_block(&p, 0, 1, 0, 0).is_err());
}

#[test]
fn mrc_streaming_writer_matches_whole_write() {
    let dir = tempfile::tempdir().unwrap();
    let vol = ramp([7, 5, 6]);
    let whole = dir.path().join("whole.mrc");
    let streamed = dir.path().join("streamed.mrc");
    write_volume(&whole, &vol, MrcMode::Float32).unwrap();
    let mut w = MrcWriter::create(
        &streamed,
        [7, 5, 6],
        MrcMode::Float32,
        vol.voxel_size_a,
        vol.origin_a,
    )
    .unwrap();
    for z0 in (0..7).step_by(3) {
        let z1 = (z0 + 3).min(7);
        w.write_slab(&vol.data.slice(ndarray::s![z0..z1, .., ..]).to_owned())
            .unwrap();
        assert!(
            !streamed.exists(),
            "nothing at the destination before finish"
        );
    }
    w.finish().unwrap();
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&streamed).unwrap()
    );
}

#[test]
fn mrc_streaming_writer_incomplete_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("partial.mrc");
    let vol = ramp([4, 5, 6]);
    let mut w = MrcWriter::create(&p, [4, 5, 6], MrcMode::Float32, [1.0; 3], [0.0; 3]).unwrap();
    w.write_slab(&vol.data.slice(ndarray::s![0..2, .., ..]))
        .unwrap();
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("partial.mrc") && e.contains("2 of 4"), "{e}");
    assert!(!p.exists());
    let mut w = MrcWriter::create(&p, [4, 5, 6], MrcMode::Float32, [1.0; 3], [0.0; 3]).unwrap();
    assert!(
        w.write_slab(&Array3::<f32>::zeros((1, 5, 7))).is_err(),
        "wrong slab shape refused"
    );
    assert!(
        w.write_slab(&Array3::<f32>::zeros((5, 5, 6))).is_err(),
        "too many sections refused"
    );
    drop(w);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "dropped writer removes its temp file"
    );
}

#[test]
fn mrc_overwrite_is_atomic_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keep.mrc");
    let vol = ramp([2, 3, 4]);
    write_volume(&p, &vol, MrcMode::Float32).unwrap();
    let before = std::fs::read(&p).unwrap();
    let mut bad = vol.clone();
    bad.data[[0, 0, 0]] = 1000.0;
    assert!(write_volume(&p, &bad, MrcMode::Int8).is_err());
    assert_eq!(
        std::fs::read(&p).unwrap(),
        before,
        "failed write leaves the old file intact"
    );
}

#[test]
fn mrc_extra_labels_and_ispg() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lab.mrc");
    let opts = WriteOptions {
        extra_labels: vec!["segment model=ucaps".into(), "x".repeat(100)],
        ispg: Some(0),
        ..WriteOptions::default()
    };
    write_volume_with(&p, &ramp([2, 2, 2]), MrcMode::Float32, &opts).unwrap();
    let h: MrcHeader = read_header(&p).unwrap();
    assert_eq!(h.ispg, 0);
    assert_eq!(h.labels.len(), 3);
    assert_eq!(h.labels[1], "segment model=ucaps");
    assert_eq!(h.labels[2].len(), 80, "labels are cut to 80 bytes");
}

#[test]
fn mrc_slab_reads_match_whole_volume_and_shift_origin() {
    let dir = tempfile::tempdir().unwrap();
    let vol = ramp([9, 4, 5]);
    let p = dir.path().join("slab.mrc");
    write_volume(&p, &vol, MrcMode::Int16).unwrap();
    for (z0, n) in [(0, 9), (0, 1), (3, 4), (8, 1)] {
        let s = read_slab(&p, z0, n).unwrap();
        assert_eq!(s.data, vol.data.slice(ndarray::s![z0..z0 + n, .., ..]));
        assert_eq!(s.origin_a[2], vol.origin_a[2] + z0 as f32 * 3.0);
        assert_eq!(s.voxel_size_a, vol.voxel_size_a);
    }
    for (z0, n) in [(8, 2), (0, 0), (10, 1), (usize::MAX, 2)] {
        let e = read_slab(&p, z0, n).unwrap_err().to_string();
        assert!(e.contains("slab.mrc") && e.contains("outside"), "{e}");
    }
}

#[test]
fn mrc_reads_nan_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut values: Vec<f32> = (0..8).map(|i| i as f32).collect();
    values[5] = f32::NAN;
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let p = dir.path().join("nan.mrc");
    std::fs::write(
        &p,
        raw_mrc(true, [2, 2, 2], 2, [1, 2, 3], [2.0; 3], &[], &data, false),
    )
    .unwrap();
    let e = read_volume(&p).unwrap_err().to_string();
    assert!(
        e.contains("nan.mrc") && e.contains("NaN") && e.contains("x=1, y=0, z=1"),
        "{e}"
    );
    assert!(read_slab(&p, 0, 2).is_err());
    let v = capsid_io::mrc::read_volume_with(
        &p,
        ReadOptions {
            allow_non_finite: true,
        },
    )
    .unwrap();
    assert!(v.data[[1, 0, 1]].is_nan());
}

/// Label maps are read by one rule: any mode, integers 0..=255; a fraction or a value out of
/// range is an error naming the file and the value.
#[test]
fn label_maps_hold_integers_in_any_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut labels = Volume::new(Array3::<u8>::zeros((2, 3, 4)), 10.0);
    labels.data[[1, 2, 3]] = 7;
    let p = dir.path().join("labels.mrc");
    write_labels(&p, &labels, LabelMode::Uint8Mode0).unwrap();
    assert_eq!(
        capsid_io::mrc::read_label_map(&p).unwrap().data,
        labels.data
    );
    // The same labels stored as float32 read the same.
    let f = dir.path().join("labels_f32.mrc");
    write_volume(
        &f,
        &labels.with_data(labels.data.mapv(f32::from)),
        MrcMode::Float32,
    )
    .unwrap();
    assert_eq!(
        capsid_io::mrc::read_label_map(&f).unwrap().data,
        labels.data
    );
    for (bad, shown) in [(1.5f32, "1.5"), (300.0, "300"), (-1.0, "-1")] {
        let mut v = labels.data.mapv(f32::from);
        v[[0, 0, 1]] = bad;
        write_volume(&f, &labels.with_data(v), MrcMode::Float32).unwrap();
        let e = capsid_io::mrc::read_label_map(&f).unwrap_err().to_string();
        assert!(e.contains("labels_f32.mrc") && e.contains(shown), "{e}");
    }
}
