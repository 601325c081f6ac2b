//! CLI tests of `capsid mask` and `capsid prep` on small hand-made files in temp folders.

use capsid_core::Volume;
use capsid_io::mrc::{self, MrcMode};
use capsid_prep::prep::{prep_volume, BinMethod, Normalize, PrepConfig};
use ndarray::Array3;
use std::path::{Path, PathBuf};

mod common;
use common::*;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        // big: radius 40 Å = 4 voxels at 10 Å; small: 2 voxels.
        f.write("classes.toml", "[[class]]\nname = \"big\"\nlabel = 1\nradius_a = 40.0\n\n[[class]]\nname = \"small\"\nlabel = 2\nradius_vox = 2.0\ntemplate = \"l.mrc\"\n");
        // Tomogram header: x×y×z = 20×24×16, 10 Å, origin (5, 6, 7) Å.
        let mut tomo = Volume::new(Array3::<f32>::zeros((16, 24, 20)), 10.0);
        tomo.origin_a = [5.0, 6.0, 7.0];
        mrc::write_volume(&f.path("tomo.mrc"), &tomo, MrcMode::Float32).expect("write tomo");
        f
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write");
    }
}

fn read(path: &Path) -> Volume<f32> {
    mrc::read_volume(path).expect("read back")
}

#[test]
fn mask_labels_instances_and_overlap() {
    let f = Fixture::new();
    // big at x=8 and small at x=11 overlap along y=12, z=6; a third particle elsewhere.
    f.write(
        "p.csv",
        "class,x,y,z\nbig,8,12,6\nsmall,11,12,6\nsmall,15,3,12\n",
    );
    let out = capsid(&[
        "mask",
        "--tomogram",
        &f.p("tomo.mrc"),
        "--particles",
        &f.p("p.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--out",
        &f.p("labels.mrc"),
        "--instances",
        &f.p("inst.mrc"),
    ]);
    assert_ok(&out);
    let lab = read(&f.path("labels.mrc"));
    let inst = read(&f.path("inst.mrc"));
    assert_eq!(lab.shape_zyx(), [16, 24, 20]);
    assert_eq!(lab.voxel_size_a, [10.0; 3]);
    assert_eq!(lab.origin_a, [5.0, 6.0, 7.0]);
    assert_eq!(inst.origin_a, [5.0, 6.0, 7.0]);
    assert_eq!(mrc::read_header(&f.path("labels.mrc")).unwrap().mode, 0);
    assert_eq!(mrc::read_header(&f.path("inst.mrc")).unwrap().mode, 6);
    // Centres, borders, overlap (x=9 nearer big, x=10 nearer small).
    assert_eq!(lab.data[[6, 12, 8]], 1.0);
    assert_eq!(lab.data[[6, 12, 4]], 1.0); // distance 4 = radius
    assert_eq!(lab.data[[6, 12, 3]], 0.0);
    assert_eq!(lab.data[[6, 12, 9]], 1.0);
    assert_eq!(lab.data[[6, 12, 10]], 2.0);
    assert_eq!(inst.data[[6, 12, 9]], 1.0);
    assert_eq!(inst.data[[6, 12, 10]], 2.0);
    assert_eq!(inst.data[[12, 3, 15]], 3.0);
    assert_eq!(lab.data[[12, 3, 15]], 2.0);
    assert_eq!(lab.data[[12, 3, 18]], 0.0);

    // Same grid from --shape/--voxel-size, u16 labels: same values; repeated runs are identical.
    let out = capsid(&[
        "mask",
        "--shape",
        "20,24,16",
        "--voxel-size",
        "10",
        "--particles",
        &f.p("p.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--out",
        &f.p("labels16.mrc"),
        "--label-mode",
        "u16",
    ]);
    assert_ok(&out);
    let lab16 = read(&f.path("labels16.mrc"));
    assert_eq!(mrc::read_header(&f.path("labels16.mrc")).unwrap().mode, 6);
    assert_eq!(lab16.data, lab.data);
    let again = capsid(&[
        "mask",
        "--shape",
        "20,24,16",
        "--voxel-size",
        "10",
        "--particles",
        &f.p("p.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--out",
        &f.p("labels16b.mrc"),
        "--label-mode",
        "u16",
    ]);
    assert_ok(&again);
    assert_eq!(
        std::fs::read(f.path("labels16.mrc")).unwrap(),
        std::fs::read(f.path("labels16b.mrc")).unwrap()
    );
}

#[test]
fn mask_shapes_rotates_template() {
    let f = Fixture::new();
    // L-shaped template (7³, centre 3): arm along +x, one voxel at +y and one at +z.
    let mut t = Array3::<f32>::zeros((7, 7, 7));
    for x in 3..=6 {
        t[[3, 3, x]] = 1.0;
    }
    t[[3, 4, 3]] = 1.0;
    t[[4, 3, 3]] = 1.0;
    mrc::write_volume(&f.path("l.mrc"), &Volume::new(t, 10.0), MrcMode::Float32).unwrap();
    // phi = 90° (ZXZ): Rz(90°) sends +x to +y and +y to -x.
    f.write("p.csv", "class,x,y,z,phi,theta,psi\nsmall,10,10,8,90,0,0\n");
    let out = capsid(&[
        "mask",
        "--tomogram",
        &f.p("tomo.mrc"),
        "--particles",
        &f.p("p.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--shapes",
        "--out",
        &f.p("labels.mrc"),
    ]);
    assert_ok(&out);
    let lab = read(&f.path("labels.mrc"));
    let mut want = Array3::<f32>::zeros((16, 24, 20));
    for d in 0..=3 {
        want[[8, 10 + d, 10]] = 2.0;
    }
    want[[8, 10, 9]] = 2.0;
    want[[9, 10, 10]] = 2.0;
    assert_eq!(lab.data, want);
    // Missing angles in shapes mode.
    f.write("noang.csv", "class,x,y,z\nsmall,10,10,8\n");
    let out = capsid(&[
        "mask",
        "--tomogram",
        &f.p("tomo.mrc"),
        "--particles",
        &f.p("noang.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--shapes",
        "--out",
        &f.p("x.mrc"),
    ]);
    fails_with(&out, &["particle 1", "no angles"]);
    assert!(!f.path("x.mrc").exists());
}

#[test]
fn mask_errors_are_one_line() {
    let f = Fixture::new();
    let base = |parts: &str| {
        f.write("p.csv", parts);
        capsid(&[
            "mask",
            "--tomogram",
            &f.p("tomo.mrc"),
            "--particles",
            &f.p("p.csv"),
            "--classes",
            &f.p("classes.toml"),
            "--out",
            &f.p("labels.mrc"),
        ])
    };
    fails_with(
        &base("class,x,y,z\nribosome,1,1,1\n"),
        &["p.csv", "unknown class 'ribosome'"],
    );
    fails_with(
        &base("class,x,y,z\nbig,1,1,1\nsmall,3,30,2\n"),
        &["particle 2", "y=30", "outside"],
    );
    assert!(!f.path("labels.mrc").exists());
    // --skip-outside: warning and a map without that particle.
    let out = capsid(&[
        "mask",
        "--tomogram",
        &f.p("tomo.mrc"),
        "--particles",
        &f.p("p.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--out",
        &f.p("labels.mrc"),
        "--skip-outside",
    ]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert_eq!(read(&f.path("labels.mrc")).data[[1, 1, 1]], 1.0);
    let out = capsid(&[
        "mask",
        "--tomogram",
        &f.p("missing.mrc"),
        "--particles",
        &f.p("p.csv"),
        "--classes",
        &f.p("classes.toml"),
        "--out",
        &f.p("l2.mrc"),
    ]);
    fails_with(&out, &["missing.mrc"]);
}

/// A deterministic, non-trivial test volume `[z, y, x]`.
fn test_volume() -> Volume<f32> {
    let data = Array3::from_shape_fn((13, 18, 16), |(z, y, x)| {
        let (z, y, x) = (z as f32, y as f32, x as f32);
        (0.7 * x).sin()
            + (0.3 * y + 0.2 * z).cos() * 2.0
            + ((x * 7.0 + y * 3.0 + z * 11.0) % 5.0) * 0.1
            + 10.0
    });
    let mut v = Volume::new(data, 5.0);
    v.origin_a = [1.0, 2.0, 3.0];
    v
}

#[test]
fn prep_streams_like_the_whole_volume_function() {
    let f = Fixture::new();
    let vol = test_volume();
    mrc::write_volume(&f.path("in.mrc"), &vol, MrcMode::Float32).unwrap();
    let before = std::fs::read(f.path("in.mrc")).unwrap();
    for (method, norm, cfg) in [
        (
            "mean",
            "zscore",
            PrepConfig {
                bin: 2,
                bin_method: BinMethod::Mean,
                lowpass_a: Some(40.0),
                normalize: Normalize::Zscore,
                slab: 1,
            },
        ),
        (
            "fourier",
            "clip",
            PrepConfig {
                bin: 2,
                bin_method: BinMethod::Fourier,
                lowpass_a: Some(40.0),
                normalize: Normalize::Clip {
                    low_pct: 0.5,
                    high_pct: 99.5,
                },
                slab: 1,
            },
        ),
    ] {
        let out_path = f.path(&format!("out_{method}.mrc"));
        let out = capsid(&[
            "prep",
            &f.p("in.mrc"),
            &out_path.display().to_string(),
            "--bin",
            "2",
            "--bin-method",
            method,
            "--lowpass-a",
            "40",
            "--normalize",
            norm,
            "--slab",
            "2",
        ]);
        assert_ok(&out);
        let got = read(&out_path);
        let want = prep_volume(&vol, &cfg).unwrap();
        assert_eq!(got.shape_zyx(), [6, 9, 8]);
        assert_eq!(got.voxel_size_a, [10.0; 3]);
        assert_eq!(got.origin_a, want.origin_a);
        assert_eq!(got.data, want.data, "{method}");
    }
    assert_eq!(read(&f.path("out_mean.mrc")).origin_a, [3.5, 4.5, 5.5]);
    let z = read(&f.path("out_mean.mrc"));
    let st = capsid_core::volume::stats(z.data.iter().map(|&v| v as f64));
    assert!(
        st.mean.abs() < 1e-5 && (st.rms - 1.0).abs() < 1e-4,
        "{st:?}"
    );
    assert_eq!(
        std::fs::read(f.path("in.mrc")).unwrap(),
        before,
        "input untouched"
    );
}

#[test]
fn prep_errors() {
    let f = Fixture::new();
    mrc::write_volume(&f.path("in.mrc"), &test_volume(), MrcMode::Float32).unwrap();
    fails_with(
        &capsid(&["prep", &f.p("in.mrc"), &f.p("in.mrc")]),
        &["overwrite the input"],
    );
    fails_with(
        &capsid(&["prep", &f.p("in.mrc"), &f.p("o.mrc"), "--clip", "1,99"]),
        &["--normalize clip"],
    );
    fails_with(
        &capsid(&["prep", &f.p("in.mrc"), &f.p("o.mrc"), "--bin", "20"]),
        &["in.mrc", "smaller than the bin"],
    );
    fails_with(
        &capsid(&[
            "prep",
            &f.p("in.mrc"),
            &f.p("o.mrc"),
            "--normalize",
            "clip",
            "--clip",
            "60,40",
        ]),
        &["percentiles"],
    );
    f.write("bad.toml", "bin = 2\ncolour = 1\n");
    fails_with(
        &capsid(&[
            "prep",
            &f.p("in.mrc"),
            &f.p("o.mrc"),
            "--config",
            &f.p("bad.toml"),
        ]),
        &["bad.toml", "colour"],
    );
    assert!(!f.path("o.mrc").exists());
    // Config file values apply, flags override them.
    f.write("ok.toml", "bin = 3\nbin_method = \"mean\"\n");
    assert_ok(&capsid(&[
        "prep",
        &f.p("in.mrc"),
        &f.p("o.mrc"),
        "--config",
        &f.p("ok.toml"),
        "--bin",
        "2",
    ]));
    let o = read(&f.path("o.mrc"));
    assert_eq!(o.shape_zyx(), [6, 9, 8]);
    assert_eq!(o.origin_a, [3.5, 4.5, 5.5], "mean binning from the file");
}

/// `shared/data` next to the project root (or `$CAPSID_SHARED_DATA`); `None` in a checkout without it.
fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("CAPSID_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent (real-world fixtures)", dir.display());
        None
    }
}

#[test]
fn prep_real_maps_match_whole_volume() {
    let Some(data) = shared_data() else { return };
    let f = Fixture::new();
    // EMDB map with a symmetry extended header, its gzip copy, and a CCP4 map with permuted axes.
    for name in ["EMD-3001.map", "emd_3001.map.gz", "1jzv.ccp4"] {
        let input = data.join("mrc").join(name);
        let vol = mrc::read_volume(&input).expect("fixture reads");
        let out_path = f.path(&format!("{name}.prep.mrc"));
        // Cut-off at 4 binned voxels (f64 printed in full so the CLI parses the same number).
        let cutoff_a = 4.0 * 2.0 * vol.voxel_size_a[0] as f64;
        assert_ok(&capsid(&[
            "prep",
            &input.display().to_string(),
            &out_path.display().to_string(),
            "--bin",
            "2",
            "--bin-method",
            "mean",
            "--lowpass-a",
            &format!("{cutoff_a}"),
            "--normalize",
            "zscore",
            "--slab",
            "3",
        ]));
        let cfg = PrepConfig {
            bin: 2,
            bin_method: BinMethod::Mean,
            lowpass_a: Some(cutoff_a),
            normalize: Normalize::Zscore,
            slab: 32,
        };
        let want = prep_volume(&vol, &cfg).unwrap();
        let got = read(&out_path);
        assert_eq!(got.shape_zyx(), want.shape_zyx(), "{name}");
        assert_eq!(got.data, want.data, "{name}");
        assert_eq!(got.voxel_size_a, want.voxel_size_a, "{name}");
    }
}

#[test]
fn mask_shapes_with_a_real_subtomogram_template() {
    let Some(data) = shared_data() else { return };
    let f = Fixture::new();
    // TomoTwin's 37³ rubisco sub-tomogram (voxel size 0 in its header: taken as the tomogram's).
    let template = data.join("mrc/subtomo_1bxn_37.mrc");
    let t = mrc::read_volume(&template).unwrap();
    let half_max = 0.5 * t.data.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let inside = t.data.iter().filter(|&&v| v > half_max).count();
    assert!(inside > 10, "template has a shape");
    f.write(
        "c.toml",
        &format!(
            "[[class]]\nname = \"1bxn\"\nlabel = 3\nradius_vox = 10.0\ntemplate = \"{}\"\n",
            template.display()
        ),
    );
    // Half-max voxels of this noisy map reach the box corners (18·√3 ≈ 31 voxels from the centre).
    let big = Volume::new(Array3::<f32>::zeros((70, 70, 70)), 10.0);
    mrc::write_volume(&f.path("t70.mrc"), &big, MrcMode::Float32).unwrap();
    // Identity and 90° about z map template voxels onto tomogram voxels one to one.
    for (angles, exact) in [("0,0,0", true), ("90,0,0", true), ("33,61,-20", false)] {
        f.write(
            "p.csv",
            &format!("class,x,y,z,phi,theta,psi\n1bxn,35,35,35,{angles}\n"),
        );
        assert_ok(&capsid(&[
            "mask",
            "--tomogram",
            &f.p("t70.mrc"),
            "--particles",
            &f.p("p.csv"),
            "--classes",
            &f.p("c.toml"),
            "--shapes",
            "--out",
            &f.p("l.mrc"),
            "--force",
        ]));
        let lab = read(&f.path("l.mrc"));
        let n = lab.data.iter().filter(|&&v| v == 3.0).count();
        assert!(lab.data.iter().all(|&v| v == 0.0 || v == 3.0));
        if exact {
            assert_eq!(n, inside, "{angles}");
        } else {
            let rel = (n as f64 - inside as f64).abs() / inside as f64;
            assert!(
                rel < 0.1,
                "{angles}: {n} voxels vs {inside} in the template"
            );
        }
    }
}
