//! Maps written as OME-Zarr ([`capsid_io::zarr::write_ome_zarr`]): a label map and a probability
//! map written from MRC files read back through capsid's readers at every level (labels by
//! nearest neighbour, probabilities by 2 × 2 × 2 means, scales and translations in Å), and —
//! with CAPSID_PYTHON — through zarr-python against mrcfile's reading of the same MRC files
//! (`interop/zarr_interop.py check`). Bad inputs and existing outputs fail with their path named.

mod common;
use capsid_core::Volume;
use capsid_io::mrc::{read_header, read_volume, write_labels, write_volume, LabelMode, MrcMode};
use capsid_io::zarr::{write_ome_zarr, MapKind, OmeZarrOptions};
use capsid_io::VolumeSource;
use ndarray::Array3;
use std::path::{Path, PathBuf};

/// Shape (z, y, x) of the test maps: odd sides so coarser levels round up.
const SHAPE: (usize, usize, usize) = (37, 42, 33);

fn labels() -> Volume<u8> {
    let data = Array3::from_shape_fn(SHAPE, |(z, y, x)| ((z / 5 + y / 7 + x / 3) % 4) as u8);
    let mut v = Volume::new(data, 10.0);
    v.origin_a = [30.0, -20.0, 100.0];
    v
}

fn probabilities() -> Volume<f32> {
    let data = Array3::from_shape_fn(SHAPE, |(z, y, x)| {
        ((z as f32 * 0.37).sin() * (y as f32 * 0.21).cos() + x as f32 * 0.01).abs() / 2.0
    });
    let mut v = Volume::new(data, 10.0);
    v.origin_a = [30.0, -20.0, 100.0];
    v
}

/// Writes the MRC maps into `dir`, converts them with chunk side 16, and returns
/// (labels.mrc, labels.zarr, prob.mrc, prob.zarr).
fn write_maps(dir: &Path) -> [PathBuf; 4] {
    let lm = dir.join("t_labels.mrc");
    write_labels(&lm, &labels(), LabelMode::Uint8Mode0).unwrap();
    let pm = dir.join("t_prob_ribosome.mrc");
    write_volume(&pm, &probabilities(), MrcMode::Float32).unwrap();
    let opts = OmeZarrOptions {
        chunk: 16,
        name: "t".into(),
        ..OmeZarrOptions::default()
    };
    let lz = dir.join("t_labels.zarr");
    let kind = MapKind::Labels {
        classes: vec!["ribosome".into(), "proteasome".into(), "tric".into()],
        relabel: vec![],
    };
    write_ome_zarr(&VolumeSource::open(&lm).unwrap(), &lm, &lz, &kind, &opts).unwrap();
    let pz = dir.join("t_prob_ribosome.zarr");
    write_ome_zarr(
        &VolumeSource::open(&pm).unwrap(),
        &pm,
        &pz,
        &MapKind::Values,
        &opts,
    )
    .unwrap();
    [lm, lz, pm, pz]
}

#[test]
fn maps_written_as_ome_zarr_read_back_at_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let [_, lz, _, pz] = write_maps(dir.path());
    let l = labels();
    let p = probabilities();
    // Three levels: 37×42×33 → 19×21×17 → 10×11×9 (the last below 16 voxels: not made).
    let h1 = read_header(&lz.join("1")).unwrap();
    assert_eq!(h1.shape_zyx(), [19, 21, 17]);
    assert!(!lz.join("2").exists());
    assert_eq!(h1.voxel_size_a, [20.0; 3]);
    assert_eq!(h1.origin_a, [30.0, -20.0, 100.0]);
    let l0 = read_volume(&lz).unwrap();
    assert_eq!(l0.data, l.data.mapv(f32::from));
    assert_eq!(l0.origin_a, l.origin_a);
    let l1 = read_volume(&lz.join("1")).unwrap();
    for ((z, y, x), &v) in l1.data.indexed_iter() {
        assert_eq!(v, l.data[[2 * z, 2 * y, 2 * x]] as f32);
    }
    let p0 = read_volume(&pz).unwrap();
    assert_eq!(p0.data, p.data);
    let p1 = read_volume(&pz.join("1")).unwrap();
    // Block means are centred half a source voxel further along each axis.
    assert_eq!(p1.origin_a, [35.0, -15.0, 105.0]);
    for ((z, y, x), &v) in p1.data.indexed_iter() {
        let block = p.data.slice(ndarray::s![
            2 * z..(2 * z + 2).min(SHAPE.0),
            2 * y..(2 * y + 2).min(SHAPE.1),
            2 * x..(2 * x + 2).min(SHAPE.2)
        ]);
        let mean = block.iter().map(|&v| v as f64).sum::<f64>() / block.len() as f64;
        assert!((v as f64 - mean).abs() < 1e-6, "{v} vs {mean}");
    }
    let attrs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lz.join(".zattrs")).unwrap()).unwrap();
    assert_eq!(attrs["image-label"]["properties"][2]["class"], "tric");
    assert_eq!(attrs["image-label"]["properties"][2]["label-value"], 3);
    // Nothing but the image is left in the folder (no temporary folder).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "t_labels.mrc",
            "t_labels.zarr",
            "t_prob_ribosome.mrc",
            "t_prob_ribosome.zarr"
        ]
    );
}

#[test]
fn existing_outputs_and_maps_that_are_not_labels_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let [lm, lz, pm, _] = write_maps(dir.path());
    let kind = MapKind::Labels {
        classes: vec![],
        relabel: vec![],
    };
    let before = std::fs::read_to_string(lz.join(".zattrs")).unwrap();
    let src = VolumeSource::open(&lm).unwrap();
    let e = write_ome_zarr(&src, &lm, &lz, &kind, &OmeZarrOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t_labels.zarr") && e.contains("already exists"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(lz.join(".zattrs")).unwrap(), before);
    // With overwrite the image is replaced (one level now).
    let opts = OmeZarrOptions {
        overwrite: true,
        max_levels: 1,
        ..OmeZarrOptions::default()
    };
    write_ome_zarr(&src, &lm, &lz, &kind, &opts).unwrap();
    assert!(!lz.join("1").exists());
    // A probability map is not a label map: error names the source, nothing is written.
    let out = dir.path().join("bad.zarr");
    let src = VolumeSource::open(&pm).unwrap();
    let e = write_ome_zarr(&src, &pm, &out, &kind, &OmeZarrOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t_prob_ribosome.mrc") && e.contains("not a label map"),
        "{e}"
    );
    assert!(!out.exists());
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("tmp")));
}

/// zarr-python reads capsid's images (group, multiscales, levels, dtypes) and finds level 0 equal
/// to mrcfile's reading of the MRC and level 1 equal to numpy's own downsampling of it. Needs
/// CAPSID_PYTHON with zarr, mrcfile and numpy (skipped without it, a failure under
/// CAPSID_REQUIRE_INTEROP).
#[test]
fn zarr_python_reads_written_maps() {
    let Some(python) = common::interop_python("zarr, mrcfile and numpy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [lm, lz, pm, pz] = write_maps(dir.path());
    // A float16 map (capsid segment --probs f16) is stored as float16.
    let hm = dir.path().join("t_prob_f16.mrc");
    write_volume(&hm, &probabilities(), MrcMode::Float16).unwrap();
    let hz = dir.path().join("t_prob_f16.zarr");
    let src = VolumeSource::open(&hm).unwrap();
    write_ome_zarr(&src, &hm, &hz, &MapKind::Values, &OmeZarrOptions::default()).unwrap();
    let zarray = std::fs::read_to_string(hz.join("0/.zarray")).unwrap();
    assert!(zarray.contains("<f2"), "{zarray}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/zarr_interop.py");
    for (mrc, zarr, kind) in [
        (&lm, &lz, "labels"),
        (&pm, &pz, "values"),
        (&hm, &hz, "values"),
    ] {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(["check", kind])
            .arg(mrc)
            .arg(zarr)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// ome-zarr-py (the OME-NGFF reference reader; copick brings it, so CAPSID_COPICK_PYTHON has it)
/// opens capsid's images with their levels, axes and scales. Skipped without that Python, a
/// failure under CAPSID_REQUIRE_INTEROP.
#[test]
fn ome_zarr_py_reads_written_maps() {
    let Some(python) = common::interop_python_of("CAPSID_COPICK_PYTHON", "ome-zarr") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [_, lz, _, pz] = write_maps(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/zarr_interop.py");
    for image in [&lz, &pz] {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg("ome")
            .arg(image)
            .args(["2", "10"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
