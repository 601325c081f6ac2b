//! MRC / CCP4 files written by other software (../shared/data/mrc relative to the workspace root).
//!
//! Every expected number below was measured with mrcfile 1.5.4 + numpy 2.4
//! (`mrcfile.open(f, permissive=True)`, data as float64, transposed to physical z, y, x with
//! `numpy.transpose` per MAPC/MAPR/MAPS; see interop/mrc_interop.py, `expected` command, which
//! prints them again). Tests skip with a message when the folder is absent (a user's checkout).

use capsid_io::mrc::{read_block, read_header, read_mrc, read_slab, read_volume, ReadOptions};
use std::path::PathBuf;

fn data_dir() -> Option<PathBuf> {
    // The workspace root is two levels above this crate; the data sit beside it.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let d = manifest.join("../../../shared/data/mrc");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!(
            "skipped: {} not found (real MRC fixtures are not in this checkout)",
            d.display()
        );
        None
    }
}

/// Expected values from mrcfile, physical `[z, y, x]` order.
struct Expected {
    file: &'static str,
    shape_zyx: [usize; 3],
    mode: i32,
    axis_map: [i32; 3],
    voxel_size_a: [f32; 3],
    nsymbt: usize,
    mean: f64,
    min: f64,
    max: f64,
    /// (z, y, x, value)
    samples: [(usize, usize, usize, f64); 3],
}

const EXPECTED: &[Expected] = &[
    Expected {
        file: "EMD-3197.map",
        shape_zyx: [20, 20, 20],
        mode: 2,
        axis_map: [1, 2, 3],
        voxel_size_a: [11.4, 11.4, 11.4],
        nsymbt: 0,
        mean: 0.7836120336,
        min: -4.13374567,
        max: 5.576736927,
        samples: [
            (0, 0, 0, -1.8013091087341309),
            (19, 19, 19, 1.3078573942184448),
            (10, 6, 5, 4.7553863525390625),
        ],
    },
    Expected {
        file: "EMD-3001.map",
        shape_zyx: [73, 25, 43],
        mode: 2,
        axis_map: [3, 1, 2],
        voxel_size_a: [0.44825, 0.3925, 0.45874998],
        nsymbt: 160,
        mean: 0.0005329666823,
        min: -0.3681429625,
        max: 0.7216102481,
        samples: [
            (0, 0, 0, 0.04283447191119194),
            (72, 24, 42, 0.06724497675895691),
            (36, 8, 10, 0.19196733832359314),
        ],
    },
    Expected {
        file: "emd_3001.map.gz",
        shape_zyx: [73, 25, 43],
        mode: 2,
        axis_map: [3, 1, 2],
        voxel_size_a: [0.44825, 0.3925, 0.45874998],
        nsymbt: 160,
        mean: 0.0005329666823,
        min: -0.3681429625,
        max: 0.7216102481,
        samples: [
            (1, 2, 3, 0.06160535663366318),
            (72, 24, 42, 0.06724497675895691),
            (36, 8, 10, 0.19196733832359314),
        ],
    },
    Expected {
        file: "fei-extended.mrc",
        shape_zyx: [1, 3838, 3710],
        mode: 6,
        axis_map: [1, 2, 3],
        voxel_size_a: [0.8537755, 0.8537755, 0.0],
        nsymbt: 786432,
        mean: 3521.030242,
        min: 302.0,
        max: 45804.0,
        samples: [
            (0, 0, 0, 2811.0),
            (0, 3837, 3709, 4146.0),
            (0, 1279, 927, 5018.0),
        ],
    },
    Expected {
        file: "1jzv.ccp4",
        shape_zyx: [70, 96, 76],
        mode: 2,
        axis_map: [2, 1, 3],
        voxel_size_a: [0.5452381, 0.5452381, 0.5603125],
        nsymbt: 640,
        mean: -0.0005801090036,
        min: -0.9930942059,
        max: 9.050403595,
        samples: [
            (1, 2, 3, -0.03203520551323891),
            (69, 95, 75, -0.09388785809278488),
            (35, 32, 19, 0.4779524505138397),
        ],
    },
    Expected {
        file: "subtomo_1bxn_37.mrc",
        shape_zyx: [37, 37, 37],
        mode: 2,
        axis_map: [1, 2, 3],
        voxel_size_a: [0.0, 0.0, 0.0],
        nsymbt: 0,
        mean: 0.001190624184,
        min: -0.5430454612,
        max: 0.6200212836,
        samples: [
            (1, 2, 3, 0.1850305199623108),
            (36, 36, 36, -0.016585711389780045),
            (18, 12, 9, 0.07850069552659988),
        ],
    },
];

#[test]
fn mrc_real_files_match_mrcfile() {
    let Some(dir) = data_dir() else { return };
    for e in EXPECTED {
        let p = dir.join(e.file);
        let (h, v) = read_mrc(&p, ReadOptions::default()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(v.shape_zyx(), e.shape_zyx, "{}", e.file);
        assert_eq!(h.mode, e.mode, "{}", e.file);
        assert_eq!(h.axis_map, e.axis_map, "{}", e.file);
        assert_eq!(h.nsymbt(), e.nsymbt, "{}", e.file);
        for k in 0..3 {
            assert!(
                (v.voxel_size_a[k] - e.voxel_size_a[k]).abs() < 1e-6,
                "{} voxel {:?}",
                e.file,
                v.voxel_size_a
            );
        }
        assert_eq!(v.origin_a, [0.0; 3], "{}", e.file);
        let s = capsid_core::volume::stats(v.data.iter().map(|&x| x as f64));
        let tol = 1e-9 * (1.0 + e.max.abs());
        assert!(
            (s.mean - e.mean).abs() < tol.max(1e-9 * e.mean.abs()),
            "{} mean {} vs {}",
            e.file,
            s.mean,
            e.mean
        );
        assert!(
            (s.min - e.min).abs() < 1e-6 && (s.max - e.max).abs() < 1e-6,
            "{} min/max",
            e.file
        );
        for &(z, y, x, val) in &e.samples {
            assert_eq!(
                v.data[[z, y, x]] as f64,
                val,
                "{} at z={z} y={y} x={x}",
                e.file
            );
        }
    }
}

#[test]
fn mrc_real_file_headers() {
    let Some(dir) = data_dir() else { return };
    let h = read_header(&dir.join("fei-extended.mrc")).unwrap();
    assert_eq!(&h.exttyp, b"FEI1");
    assert_eq!(h.nversion, 20140);
    assert_eq!(h.ispg, 0);
    let h = read_header(&dir.join("EMD-3197.map")).unwrap();
    assert_eq!(h.nversion, 0, "old header, read permissively");
    assert_eq!(h.nxstart, [-2, 0, 0]);
    assert_eq!(h.machst[..2], [0x44, 0x41]);
    let h = read_header(&dir.join("1jzv.ccp4")).unwrap();
    assert_eq!(h.nxstart, [-4, -23, 102]);
    assert_eq!(h.ispg, 92);
    assert_eq!(h.labels.len(), 1);
}

#[test]
fn mrc_real_files_slabs_match_whole() {
    let Some(dir) = data_dir() else { return };
    for name in [
        "EMD-3197.map",
        "1jzv.ccp4",
        "EMD-3001.map",
        "emd_3001.map.gz",
        "subtomo_1bxn_37.mrc",
    ] {
        let p = dir.join(name);
        let whole = read_volume(&p).unwrap();
        let s = read_slab(&p, 3, 5).unwrap();
        assert_eq!(
            s.data,
            whole.data.slice(ndarray::s![3..8, .., ..]),
            "{name}"
        );
        let b = read_block(&p, 3, 5, 2, 4).unwrap();
        assert_eq!(
            b.data,
            whole.data.slice(ndarray::s![3..8, 2..6, ..]),
            "{name} block"
        );
    }
}

#[test]
fn mrc_real_bzip2_is_refused_clearly() {
    let Some(dir) = data_dir() else { return };
    let e = read_volume(&dir.join("EMD-3001.map.bz2"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("EMD-3001.map.bz2") && e.contains("bzip2"), "{e}");
}
