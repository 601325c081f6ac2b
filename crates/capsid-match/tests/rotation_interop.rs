//! capsid's Euler-angle conventions checked against scipy, independently of capsid's own rotation
//! code (issue 18, item 3).
//!
//! An asymmetric density (Gaussian blobs of different sizes at asymmetric places, a cube of odd
//! side) goes to `tests/rotation_interop.py` as MRC; with scipy only, it writes the density turned
//! for RELION angles (`Rotation.from_euler("ZYZ", [rot, tilt, psi]).inv()`, active) and for SHREC /
//! simulator truth angles (`Rotation.from_euler("ZXZ", [phi, theta, psi])`, intrinsic), resampled
//! by `scipy.ndimage.affine_transform(order=1)`, and the rotation matrices. capsid turns the same
//! density with `capsid_match::template::rotate_cube` (what template matching does) and with the
//! simulator's `ClassModel::rotated` (how particles are placed), using
//! `EulerAngles::relion(..)` / `EulerAngles::zxz(..)`; both must agree with scipy (correlation
//! ≥ 0.99, max |difference| ≤ 10⁻³ of the maximum, matrices within 10⁻⁹). Deliberately wrong
//! readings (the transpose, the other Euler convention, the angles in reverse order) must score
//! clearly lower, so the test can fail.
//!
//! Needs `CAPSID_PYTHON` naming a Python with mrcfile, numpy and scipy; skipped with a message
//! without it, a failure instead when `CAPSID_REQUIRE_INTEROP` is set (as CI sets it).

use capsid_core::{EulerAngles, EulerConvention, Rotation, Volume};
use capsid_io::mrc::{read_volume, write_volume, MrcMode};
use capsid_match::template::rotate_cube;
use capsid_sim::ClassModel;
use ndarray::Array3;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Side of the test cube (odd: the centre `b / 2` is the simulator's `(b − 1) / 2` too).
const B: usize = 33;

/// Angle triples in degrees, each read in both conventions: generic ones and a few with zeros
/// and right angles.
const ANGLES: [[f64; 3]; 6] = [
    [37.0, 61.0, -112.0],
    [-150.0, 25.0, 80.0],
    [200.0, 135.0, 10.0],
    [12.5, 170.0, -45.0],
    [0.0, 90.0, 0.0],
    [90.0, 0.0, 0.0],
];

/// Agreement with scipy that the right convention must reach.
const MIN_CORR: f64 = 0.99;
const MAX_REL_DIFF: f64 = 1e-3;
/// What a wrong convention must stay below (when it is a rotation other than the right one by
/// more than `DISTINCT_DEG`).
const WRONG_MAX_CORR: f64 = 0.9;
const DISTINCT_DEG: f64 = 20.0;

/// The Python of `CAPSID_PYTHON`, or `None` after saying the test is skipped; with
/// `CAPSID_REQUIRE_INTEROP` set, a missing Python fails instead (as capsid-io's interop tests).
fn interop_python(needs: &str) -> Option<String> {
    if let Ok(python) = std::env::var("CAPSID_PYTHON") {
        return Some(python);
    }
    let required = std::env::var("CAPSID_REQUIRE_INTEROP").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "CAPSID_REQUIRE_INTEROP is set but CAPSID_PYTHON is not"
    );
    eprintln!("skipped: CAPSID_PYTHON not set (set it to a Python with {needs})");
    None
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rotation_interop.py")
}

/// Gaussian blobs `(x, y, z offset from the centre, sigma, amplitude)`: no symmetry at all, and
/// nothing within a few sigma of the faces, so turning loses nothing.
fn test_density() -> Array3<f32> {
    let blobs: [([f64; 3], f64, f64); 5] = [
        ([6.0, 2.0, -1.0], 3.0, 1.0),
        ([-4.0, 5.0, 3.0], 2.0, 0.8),
        ([1.0, -6.0, 4.0], 1.5, 1.2),
        ([-2.0, -1.0, -7.0], 2.5, 0.6),
        ([3.0, 4.0, 6.5], 1.2, 0.9),
    ];
    let c = (B / 2) as f64;
    Array3::from_shape_fn((B, B, B), |(z, y, x)| {
        let p = [x as f64 - c, y as f64 - c, z as f64 - c];
        blobs
            .iter()
            .map(|(q, s, a)| {
                let d2: f64 = (0..3).map(|k| (p[k] - q[k]).powi(2)).sum();
                a * (-d2 / (2.0 * s * s)).exp()
            })
            .sum::<f64>() as f32
    })
}

/// Pearson correlation of two equally long slices.
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

/// Max |a − b| relative to max |b|.
fn rel_max_diff(a: &[f32], b: &[f32]) -> f64 {
    let max = b.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
    let d = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()));
    d / max
}

fn turned(density: &[f32], rot: &Rotation) -> Vec<f32> {
    let mut out = vec![0.0f32; B * B * B];
    rotate_cube(density, B, rot, &mut out);
    out
}

/// The scipy spelling of a case for the script: `relion:rot,tilt,psi` or `zxz:phi,theta,psi`.
fn spec(e: &EulerAngles) -> String {
    let conv = match e.convention {
        EulerConvention::RelionZyz => "relion",
        EulerConvention::Zxz => "zxz",
    };
    let [a, b, c] = e.angles_deg;
    format!("{conv}:{a},{b},{c}")
}

fn same_convention(e: &EulerAngles, angles: [f64; 3]) -> EulerAngles {
    EulerAngles {
        convention: e.convention,
        angles_deg: angles,
    }
}

fn run_script(python: &str, density: &Path, outdir: &Path, cases: &[EulerAngles]) {
    let out = Command::new(python)
        .arg(script())
        .arg(density)
        .arg(outdir)
        .args(cases.iter().map(spec))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{} failed ({})",
        script().display(),
        out.status
    );
}

#[test]
fn euler_conventions_match_scipy() {
    let Some(python) = interop_python("mrcfile, numpy and scipy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let density = test_density();
    let density_path = dir.path().join("density.mrc");
    write_volume(
        &density_path,
        &Volume::new(density.clone(), 1.0),
        MrcMode::Float32,
    )
    .unwrap();
    let cases: Vec<EulerAngles> = ANGLES
        .iter()
        .flat_map(|&[a, b, c]| [EulerAngles::relion(a, b, c), EulerAngles::zxz(a, b, c)])
        .collect();
    let outdir = dir.path().join("scipy");
    run_script(&python, &density_path, &outdir, &cases);

    let matrices: Vec<Vec<f64>> = std::fs::read_to_string(outdir.join("matrices.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(matrices.len(), cases.len());

    let flat: Vec<f32> = density.iter().copied().collect();
    let model = ClassModel::new("blobs", "test:blobs".into(), density, 1.0, 0.5);
    let mut wrong_checked = 0;
    let mut worst_right = f64::INFINITY;
    let mut worst_right_diff = 0.0f64;
    let mut worst_wrong = f64::NEG_INFINITY;
    let mut failures = Vec::new();
    println!(
        "{:<7} {:>24} {:>9} {:>9} {:>9} | wrong: transpose / other convention / reversed angles",
        "conv", "angles", "rotate", "sim", "max diff"
    );
    for (i, (e, m)) in cases.iter().zip(&matrices).enumerate() {
        let right = e.rotation();
        // The matrices themselves: scipy's reading of the convention against capsid's.
        assert_eq!(m.len(), 9, "case {i}: {m:?}");
        for r in 0..3 {
            for c in 0..3 {
                assert!(
                    (m[3 * r + c] - right.m[r][c]).abs() < 1e-9,
                    "case {i} {e:?}: scipy's matrix {m:?} differs from capsid's {:?}",
                    right.m
                );
            }
        }
        let reference = read_volume(&outdir.join(format!("case_{i}.mrc"))).unwrap();
        assert_eq!(reference.data.dim(), (B, B, B), "case {i}");
        let reference: Vec<f32> = reference.data.iter().copied().collect();

        // The right convention, through template matching's and the simulator's code.
        let ours = turned(&flat, &right);
        let sim: Vec<f32> = model.rotated(&right).iter().copied().collect();
        let (c_ours, c_sim) = (
            correlation(&ours, &reference),
            correlation(&sim, &reference),
        );
        let diff = rel_max_diff(&ours, &reference).max(rel_max_diff(&sim, &reference));
        worst_right = worst_right.min(c_ours).min(c_sim);
        worst_right_diff = worst_right_diff.max(diff);
        if c_ours < MIN_CORR || c_sim < MIN_CORR || diff > MAX_REL_DIFF {
            failures.push(format!(
                "{e:?}: correlation {c_ours:.5} (rotate_cube), {c_sim:.5} (ClassModel::rotated), \
                 max diff {diff:.2e} of the maximum"
            ));
        }

        // Wrong readings of the same angles.
        let [a, b, c] = e.angles_deg;
        let other = match e.convention {
            EulerConvention::RelionZyz => EulerAngles::zxz(a, b, c),
            EulerConvention::Zxz => EulerAngles::relion(a, b, c),
        };
        let wrongs = [
            ("transpose", right.transpose()),
            ("other convention", other.rotation()),
            ("reversed angles", same_convention(e, [c, b, a]).rotation()),
        ];
        let mut shown = Vec::new();
        for (what, w) in wrongs {
            if w.angle_to_deg(&right) < DISTINCT_DEG {
                shown.push("(same)".to_string());
                continue;
            }
            let cw = correlation(&turned(&flat, &w), &reference);
            wrong_checked += 1;
            worst_wrong = worst_wrong.max(cw);
            shown.push(format!("{cw:.3}"));
            if cw >= WRONG_MAX_CORR {
                failures.push(format!(
                    "{e:?}: the wrong reading '{what}' correlates {cw:.4} with scipy's (≥ \
                     {WRONG_MAX_CORR}): the test cannot tell conventions apart"
                ));
            }
        }
        println!(
            "{:<7} {:>24} {:>9.6} {:>9.6} {:>9.2e} | {}",
            match e.convention {
                EulerConvention::RelionZyz => "relion",
                EulerConvention::Zxz => "zxz",
            },
            format!("({a}, {b}, {c})"),
            c_ours,
            c_sim,
            diff,
            shown.join(" / ")
        );
    }
    println!(
        "right conventions: lowest correlation {worst_right:.6}, largest max diff \
         {worst_right_diff:.2e} of the maximum; wrong readings ({wrong_checked} checked): highest \
         correlation {worst_wrong:.4}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        wrong_checked >= 2 * cases.len(),
        "only {wrong_checked} wrong readings were distinct rotations"
    );
}
