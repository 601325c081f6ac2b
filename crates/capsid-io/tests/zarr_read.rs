//! OME-Zarr tomograms through capsid's volume readers: a v3 multiscale image written with `zarrs`
//! (two levels: float32 with zstd, uint8 with gzip; OME 0.5 metadata in Å) reads back value for
//! value as a whole, by band and by level; bad stores fail with a message naming the path.

mod common;
use capsid_io::mrc::{read_block, read_header, read_volume};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use zarrs::array::codec::bytes_to_bytes::{gzip::GzipCodec, zstd::ZstdCodec};
use zarrs::array::{data_type, ArrayBuilder, ArraySubset};
use zarrs::filesystem::FilesystemStore;

/// Voxel values of level 0 at `[z, y, x]`.
fn value(z: usize, y: usize, x: usize) -> f32 {
    (z * 1000 + y * 10 + x) as f32 * 0.25 - 7.0
}

/// Writes a two-level OME-Zarr image of 12 × 20 × 18 (z, y, x) voxels at 10 Å (level 1:
/// 6 × 10 × 9 at 20 Å, origin 5 Å) to `root`.
fn write_image(root: &Path) {
    let store = Arc::new(FilesystemStore::new(root).unwrap());
    let ms = json!([{
        "version": "0.5",
        "axes": [
            {"name": "z", "type": "space", "unit": "angstrom"},
            {"name": "y", "type": "space", "unit": "angstrom"},
            {"name": "x", "type": "space", "unit": "angstrom"}
        ],
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [10.0, 10.0, 10.0]}]},
            {"path": "1", "coordinateTransformations": [
                {"type": "scale", "scale": [20.0, 20.0, 20.0]},
                {"type": "translation", "translation": [5.0, 5.0, 5.0]}
            ]}
        ]
    }]);
    let mut attrs = serde_json::Map::new();
    attrs.insert("ome".into(), json!({"version": "0.5", "multiscales": ms}));
    zarrs::group::GroupBuilder::new()
        .attributes(attrs)
        .build(store.clone(), "/")
        .unwrap()
        .store_metadata()
        .unwrap();
    let a0 = ArrayBuilder::new(vec![12, 20, 18], vec![5, 8, 7], data_type::float32(), 0f32)
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, true))])
        .build(store.clone(), "/0")
        .unwrap();
    a0.store_metadata().unwrap();
    let v0: Vec<f32> = (0..12 * 20 * 18)
        .map(|i| value(i / 360, i / 18 % 20, i % 18))
        .collect();
    a0.store_array_subset(&ArraySubset::new_with_ranges(&[0..12, 0..20, 0..18]), v0)
        .unwrap();
    let a1 = ArrayBuilder::new(vec![6, 10, 9], vec![4, 4, 4], data_type::uint8(), 0u8)
        .bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(5).unwrap())])
        .build(store, "/1")
        .unwrap();
    a1.store_metadata().unwrap();
    let v1: Vec<u8> = (0..6 * 10 * 9).map(|i| (i % 251) as u8).collect();
    a1.store_array_subset(&ArraySubset::new_with_ranges(&[0..6, 0..10, 0..9]), v1)
        .unwrap();
}

#[test]
fn ome_zarr_reads_as_a_volume_by_band_and_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wbp.zarr");
    write_image(&root);
    assert!(capsid_io::zarr::is_zarr(&root));

    let h = read_header(&root).unwrap();
    assert_eq!(h.shape_zyx(), [12, 20, 18]);
    assert_eq!(h.voxel_size_a, [10.0; 3]);
    let v = read_volume(&root).unwrap();
    for ((z, y, x), &got) in v.data.indexed_iter() {
        assert_eq!(got, value(z, y, x), "[{z}, {y}, {x}]");
    }
    // A band spanning chunk borders; its origin moves with it.
    let b = read_block(&root, 3, 6, 5, 9).unwrap();
    assert_eq!(b.data.shape(), &[6, 9, 18]);
    for ((z, y, x), &got) in b.data.indexed_iter() {
        assert_eq!(got, value(z + 3, y + 5, x));
    }
    assert_eq!(b.origin_a, [0.0, 50.0, 30.0]);

    // Level 1 by its path: uint8 read as f32, 20 Å, origin from the translation.
    let l1 = root.join("1");
    let h1 = read_header(&l1).unwrap();
    assert_eq!(
        (h1.shape_zyx(), h1.voxel_size_a, h1.origin_a),
        ([6, 10, 9], [20.0; 3], [5.0; 3])
    );
    let v1 = read_volume(&l1).unwrap();
    for ((z, y, x), &got) in v1.data.indexed_iter() {
        assert_eq!(got, ((z * 90 + y * 9 + x) % 251) as f32);
    }
    let t = capsid_io::zarr::ZarrTomogram::open(&root).unwrap();
    assert_eq!(t.levels.len(), 2);

    // Out-of-range bands and stores without OME metadata fail naming the path.
    let e = read_block(&root, 10, 5, 0, 4).unwrap_err().to_string();
    assert!(e.contains("wbp.zarr") && e.contains("outside"), "{e}");
    let bare = dir.path().join("bare.zarr");
    let store = Arc::new(FilesystemStore::new(&bare).unwrap());
    zarrs::group::GroupBuilder::new()
        .build(store, "/")
        .unwrap()
        .store_metadata()
        .unwrap();
    let e = read_header(&bare).unwrap_err().to_string();
    assert!(e.contains("bare.zarr") && e.contains("multiscales"), "{e}");
}

/// zarr-python's stores (`interop/zarr_interop.py`): Zarr v2 with blosc as copick writes them,
/// Zarr v3 with sharding and OME 0.5 metadata in nanometres. Needs CAPSID_PYTHON with zarr
/// (skipped without it, a failure under CAPSID_REQUIRE_INTEROP).
#[test]
fn zarr_python_stores_read_value_for_value() {
    let Some(python) = common::interop_python("zarr and numpy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/zarr_interop.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg("write")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap())
            .unwrap();
    for (store, levels) in expected.as_object().unwrap() {
        let root = dir.path().join(store);
        for (i, l) in levels.as_array().unwrap().iter().enumerate() {
            let path = root.join(i.to_string());
            let h = read_header(&path).unwrap();
            let shape: Vec<usize> = l["shape_zyx"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(h.shape_zyx().to_vec(), shape, "{store} level {i}");
            let voxel = l["voxel_a"].as_f64().unwrap() as f32;
            let origin = l["origin_a"].as_f64().unwrap() as f32;
            assert_eq!(h.voxel_size_a, [voxel; 3], "{store} level {i}");
            assert!(
                h.origin_a.iter().all(|o| (o - origin).abs() < 1e-4),
                "{store} level {i}"
            );
            let step = 1 << i;
            let v = read_volume(&path).unwrap();
            for ((z, y, x), &got) in v.data.indexed_iter() {
                assert_eq!(
                    got,
                    value(z * step, y * step, x * step),
                    "{store} level {i}"
                );
            }
        }
    }
}

/// A level chosen by voxel size: the 20 Å level of the group, the group's own level 1 path, and
/// errors listing the levels for a size there is none of; an MRC file of another voxel size is
/// refused.
#[test]
fn levels_chosen_by_voxel_size() {
    use capsid_io::zarr::ZarrTomogram;
    use capsid_io::VolumeSource;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("img.zarr");
    write_image(&root);
    let z = ZarrTomogram::open_at_voxel_size(&root, 20.0).unwrap();
    assert_eq!(z.current().path, "1");
    assert_eq!(z.header().shape_zyx(), [6, 10, 9]);
    // Level 1 holds its linear index (z * 90 + y * 9 + x) modulo 251.
    assert_eq!(z.read_volume().unwrap().data[[1, 2, 3]], 111.0);
    // Within 1 %.
    assert_eq!(
        ZarrTomogram::open_at_voxel_size(&root, 10.05)
            .unwrap()
            .level,
        0
    );
    let e = ZarrTomogram::open_at_voxel_size(&root, 40.0)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("img.zarr")
            && e.contains("no level at 40 Å")
            && e.contains("0 (10 Å), 1 (20 Å)"),
        "{e}"
    );
    // A level path keeps its level: asking it for another size is an error.
    let e = VolumeSource::open_at(&root.join("0"), Some(20.0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no level at 20 Å here"), "{e}");
    let s = VolumeSource::open_at(&root, Some(20.0)).unwrap();
    assert_eq!(s.header().voxel_size_a, [20.0; 3]);
    // An MRC file is checked against the size asked for.
    let mrc = dir.path().join("t.mrc");
    let v = capsid_core::Volume::new(ndarray::Array3::<f32>::zeros((4, 5, 6)), 10.0);
    capsid_io::mrc::write_volume(&mrc, &v, capsid_io::mrc::MrcMode::Float32).unwrap();
    assert!(VolumeSource::open_at(&mrc, Some(10.0)).is_ok());
    let e = VolumeSource::open_at(&mrc, Some(20.0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("t.mrc") && e.contains("voxel size 10 Å"), "{e}");
}
