//! Interoperability with mrcfile (Python), run when `CAPSID_PYTHON` names a Python that has
//! mrcfile and numpy (`python interop/mrc_interop.py` sets it and runs this test); skipped with a
//! message otherwise, so plain `cargo test` needs no Python.
//!
//! (a) mrcfile writes files in every mode capsid reads (0 int8, 0 uint8 with IMOD's flag, 1, 2,
//!     6, 12), both byte orders, with extended headers, gzip and permuted axes; capsid must read
//!     the values mrcfile reads (transposed to physical z, y, x), voxel size and origin.
//! (b) capsid writes files in every writer mode; mrcfile.validate must pass on each and mrcfile
//!     must read the values and header capsid meant to write.

mod common;
use capsid_core::Volume;
use capsid_io::mrc::{
    read_header, read_mrc, write_labels, write_volume, write_volume_like, write_volume_with,
    LabelMode, MrcMode, MrcWriter, ReadOptions, WriteOptions,
};
use ndarray::Array3;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    manifest.join("../../interop/mrc_interop.py")
}

fn run_python(python: &str, args: &[&str]) {
    let out = Command::new(python)
        .arg(script())
        .args(args)
        .output()
        .expect("run python");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python {args:?} failed");
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn write_f32(path: &Path, values: impl Iterator<Item = f32>) {
    let bytes: Vec<u8> = values.flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// (a): read every file mrcfile wrote and compare with mrcfile's values.
fn read_python_files(dir: &Path) -> capsid_io::mrc::MrcHeader {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 18, "python wrote {} cases", cases.len());
    let mut ext_header = None;
    for c in &cases {
        let file = c["file"].as_str().unwrap();
        let (h, v) = read_mrc(&dir.join(file), ReadOptions::default())
            .unwrap_or_else(|e| panic!("capsid cannot read mrcfile's {file}: {e}"));
        let shape: Vec<usize> = c["shape_zyx"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(v.shape_zyx().to_vec(), shape, "{file}");
        assert_eq!(h.mode as i64, c["mode"].as_i64().unwrap(), "{file}");
        assert_eq!(
            h.little_endian,
            c["little_endian"].as_bool().unwrap(),
            "{file}"
        );
        let expect = read_f32(&dir.join(c["expect"].as_str().unwrap()));
        let got: Vec<f32> = v.data.iter().copied().collect();
        assert_eq!(got, expect, "{file}: values");
        for k in 0..3 {
            let vs = c["voxel_size_a"][k].as_f64().unwrap() as f32;
            let o = c["origin_a"][k].as_f64().unwrap() as f32;
            assert!(
                (v.voxel_size_a[k] - vs).abs() < 1e-6,
                "{file}: voxel {:?}",
                v.voxel_size_a
            );
            assert_eq!(v.origin_a[k], o, "{file}: origin");
        }
        assert_eq!(h.nsymbt() as u64, c["nsymbt"].as_u64().unwrap(), "{file}");
        if let Some(ext) = c["ext_header"].as_array() {
            let ext: Vec<u8> = ext.iter().map(|b| b.as_u64().unwrap() as u8).collect();
            assert_eq!(h.ext_header, ext, "{file}: extended header");
            assert_eq!(&h.exttyp, b"FEI1");
            if file == "f4_ext_le.mrc" {
                ext_header = Some(h.clone());
            }
        }
        println!("capsid read mrcfile's {file}: ok");
    }
    ext_header.expect("f4_ext_le.mrc case")
}

/// (b): write one file per writer mode plus header copy and streaming; list them for python.
fn write_rust_files(dir: &Path, like: &capsid_io::mrc::MrcHeader) {
    std::fs::create_dir_all(dir).unwrap();
    let (nz, ny, nx) = (6, 5, 9);
    let smooth = Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
        ((z as f32 * 0.7).sin() + (y as f32 * 1.3).cos() * (x as f32 * 0.4 - 1.0)) * 3.0
    });
    let vol = Volume {
        data: smooth.clone(),
        voxel_size_a: [1.5, 2.0, 2.5],
        origin_a: [-3.0, 4.5, 100.0],
    };
    let version_label = format!("capsid {}", capsid_core::VERSION);
    let mut cases = Vec::new();
    let mut case = |file: &str,
                    mode: i64,
                    stored: Vec<f32>,
                    voxel: [f32; 3],
                    origin: [f32; 3],
                    extra: Value| {
        write_f32(&dir.join(format!("{file}.f32")), stored.into_iter());
        let mut c = json!({
            "file": file, "expect": format!("{file}.f32"), "shape_zyx": [nz, ny, nx],
            "mode": mode, "voxel_size_a": voxel, "origin_a": origin, "uint8": false, "ispg": 1,
            "nsymbt": 0, "labels": [version_label.clone()],
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        cases.push(c);
    };
    let scaled = |f: f32| vol.with_data(smooth.mapv(|v| v * f));
    for (name, mode, code, v) in [
        ("f32.mrc", MrcMode::Float32, 2, vol.clone()),
        ("f16.mrc", MrcMode::Float16, 12, vol.clone()),
        ("i8.mrc", MrcMode::Int8, 0, scaled(10.0)),
        ("i16.mrc", MrcMode::Int16, 1, scaled(1000.0)),
        (
            "u16.mrc",
            MrcMode::Uint16,
            6,
            vol.with_data(smooth.mapv(|v| v * 1000.0 + 20000.0)),
        ),
    ] {
        write_volume(&dir.join(name), &v, mode).unwrap();
        let stored = v
            .data
            .iter()
            .map(|&x| match mode {
                MrcMode::Float32 => x,
                MrcMode::Float16 => half::f16::from_f32(x).to_f32(),
                _ => x.round(),
            })
            .collect();
        case(name, code, stored, v.voxel_size_a, v.origin_a, json!({}));
    }
    // Label maps as capsid writes them: classes 0..N with N small.
    let labels = Volume {
        data: smooth.mapv(|v| ((v + 10.0) as u8) % 8),
        voxel_size_a: [4.0; 3],
        origin_a: [0.0; 3],
    };
    write_labels(&dir.join("labels_u8.mrc"), &labels, LabelMode::Uint8Mode0).unwrap();
    write_labels(&dir.join("labels_u16.mrc"), &labels, LabelMode::Uint16Mode6).unwrap();
    let lv: Vec<f32> = labels.data.iter().map(|&l| l as f32).collect();
    case(
        "labels_u8.mrc",
        0,
        lv.clone(),
        [4.0; 3],
        [0.0; 3],
        json!({"uint8": true}),
    );
    case("labels_u16.mrc", 6, lv, [4.0; 3], [0.0; 3], json!({}));
    // Values above 127 in mode 0: mrcfile ignores IMOD's unsigned flag and reads int8, so its
    // validate() reports the (unsigned) header statistics as wrong. The values are still checked
    // through a uint8 view; mode 6 has no such caveat.
    let high = labels.with_data(smooth.mapv(|v| ((v + 10.0) * 12.0).clamp(0.0, 255.0) as u8));
    assert!(
        high.data.iter().any(|&l| l > 127),
        "exercise the unsigned range"
    );
    write_labels(
        &dir.join("labels_u8_high.mrc"),
        &high,
        LabelMode::Uint8Mode0,
    )
    .unwrap();
    write_labels(
        &dir.join("labels_u16_high.mrc"),
        &high,
        LabelMode::Uint16Mode6,
    )
    .unwrap();
    let hv: Vec<f32> = high.data.iter().map(|&l| l as f32).collect();
    case(
        "labels_u8_high.mrc",
        0,
        hv.clone(),
        [4.0; 3],
        [0.0; 3],
        json!({"uint8": true, "validate": false}),
    );
    case("labels_u16_high.mrc", 6, hv, [4.0; 3], [0.0; 3], json!({}));

    // Header copied from mrcfile's file with an FEI1 extended header.
    write_volume_like(&dir.join("like.mrc"), &vol, MrcMode::Float32, like).unwrap();
    let mut like_labels: Vec<String> = like.labels.clone();
    like_labels.push(version_label.clone());
    case(
        "like.mrc",
        2,
        vol.data.iter().copied().collect(),
        like.voxel_size_a,
        like.origin_a,
        json!({
            "nsymbt": like.ext_header.len(), "ext_header": like.ext_header, "exttyp": "FEI1",
            "labels": like_labels,
        }),
    );

    // Image stack (ISPG 0) with an extra label.
    let opts = WriteOptions {
        extra_labels: vec!["interop stack".into()],
        ispg: Some(0),
        like: None,
    };
    write_volume_with(&dir.join("stack.mrc"), &vol, MrcMode::Float32, &opts).unwrap();
    case(
        "stack.mrc",
        2,
        vol.data.iter().copied().collect(),
        vol.voxel_size_a,
        vol.origin_a,
        json!({"ispg": 0, "labels": [version_label.clone(), "interop stack"]}),
    );

    // Streaming writer, slabs of 4 then 2 sections.
    let mut w = MrcWriter::create(
        &dir.join("streamed.mrc"),
        [nz, ny, nx],
        MrcMode::Float32,
        vol.voxel_size_a,
        vol.origin_a,
    )
    .unwrap();
    w.write_slab(&smooth.slice(ndarray::s![0..4, .., ..]))
        .unwrap();
    w.write_slab(&smooth.slice(ndarray::s![4..6, .., ..]))
        .unwrap();
    w.finish().unwrap();
    case(
        "streamed.mrc",
        2,
        vol.data.iter().copied().collect(),
        vol.voxel_size_a,
        vol.origin_a,
        json!({}),
    );

    std::fs::write(
        dir.join("rust_cases.json"),
        serde_json::to_string_pretty(&cases).unwrap(),
    )
    .unwrap();
    // Sanity: capsid reads its own files back.
    assert_eq!(
        read_header(&dir.join("like.mrc")).unwrap().ext_header,
        like.ext_header
    );
}

#[test]
fn mrc_interop_with_mrcfile() {
    let Some(python) =
        common::interop_python("mrcfile and numpy (or run `python interop/mrc_interop.py`)")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let from_python = tmp.path().join("from_python");
    run_python(&python, &["write", from_python.to_str().unwrap()]);
    let like = read_python_files(&from_python);
    let from_rust = tmp.path().join("from_rust");
    write_rust_files(&from_rust, &like);
    run_python(&python, &["check", from_rust.to_str().unwrap()]);
}
