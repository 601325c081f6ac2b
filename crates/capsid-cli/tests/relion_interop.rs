//! RELION 3.1 (Debian's `relion` package) on the STAR files capsid writes: `relion_star_handler`
//! must accept the picks of `capsid pick` and of `capsid convert` (it refuses a particle file
//! without `data_optics`), select from them, and capsid must read what RELION writes back.
//!
//! Without `relion_star_handler` on the PATH the test says so and passes, unless
//! `CAPSID_REQUIRE_INTEROP` is set (as CI sets it, after installing the package): then it fails.

use capsid_core::Volume;
use capsid_io::mrc::{write_labels, LabelMode};
use capsid_io::particles::{read_particles, ReadOptions};
use ndarray::Array3;
use std::path::Path;
use std::process::Command;

mod common;
use common::*;

const CLASSES: &str = "[[class]]\nname = \"big\"\nlabel = 1\nradius_vox = 5\n\n[[class]]\nname = \"small\"\nlabel = 2\nradius_vox = 3\n";

/// `relion_star_handler` if installed; `None` (or a failure under `CAPSID_REQUIRE_INTEROP`)
/// otherwise.
fn relion_star_handler() -> Option<&'static str> {
    let found = Command::new("relion_star_handler")
        .arg("--version")
        .output()
        .is_ok();
    if found {
        return Some("relion_star_handler");
    }
    let required = std::env::var("CAPSID_REQUIRE_INTEROP").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "CAPSID_REQUIRE_INTEROP is set but relion_star_handler is not installed (apt install relion)"
    );
    eprintln!("relion_star_handler not found: RELION interop test skipped");
    None
}

/// `relion_star_handler --select LABEL --minval MIN --maxval MAX` from `input` into `output`:
/// whether it succeeded, and what it printed.
fn select(
    tool: &str,
    input: &Path,
    output: &Path,
    label: &str,
    range: [&str; 2],
) -> (bool, String) {
    let out = Command::new(tool)
        .args(["--i", s(input), "--o", s(output), "--select", label])
        .args(["--minval", range[0], "--maxval", range[1]])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("ERROR"), text)
}

/// Two balls of class `big` and one of class `small` in a 40 × 36 × 32 (x, y, z) label map.
fn label_map(dir: &Path) {
    let balls = [
        ([10.0, 10.0, 10.0], 5.0, 1u8),
        ([28.0, 12.0, 20.0], 5.0, 1),
        ([20.0, 27.0, 12.0], 3.0, 2),
    ];
    let labels = Array3::from_shape_fn((32, 36, 40), |(z, y, x)| {
        balls
            .iter()
            .find(|(c, r, _)| {
                (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2) + (z as f64 - c[2]).powi(2)
                    <= r * r
            })
            .map_or(0, |b| b.2)
    });
    write_labels(
        &dir.join("TS_1.mrc"),
        &Volume::new(labels, 10.0),
        LabelMode::Uint8Mode0,
    )
    .unwrap();
    std::fs::write(dir.join("classes.toml"), CLASSES).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn relion_3_1_selects_from_capsid_picks_and_capsid_reads_the_result() {
    let Some(tool) = relion_star_handler() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    label_map(d);
    let picks = d.join("picks.star");
    ok(&[
        "pick",
        s(&d.join("TS_1.mrc")),
        "--classes",
        s(&d.join("classes.toml")),
        "--out",
        s(&picks),
    ]);
    let text = std::fs::read_to_string(&picks).unwrap();
    assert!(
        text.contains("data_optics") && text.contains("_rlnImagePixelSize"),
        "{text}"
    );

    // Keep class 1 (big) with RELION; capsid reads RELION's file back.
    let big = d.join("big.star");
    let (accepted, log) = select(tool, &picks, &big, "rlnClassNumber", ["1", "1"]);
    assert!(accepted && log.contains("with 2 item(s)"), "{log}");
    let ours = read_particles(&picks, &ReadOptions::default()).unwrap();
    let theirs = read_particles(&big, &ReadOptions::default()).unwrap();
    let mine: Vec<_> = ours.iter().filter(|p| p.class == "big").collect();
    assert_eq!(theirs.len(), mine.len());
    for (a, b) in theirs.iter().zip(&mine) {
        assert_eq!(a.class, "big");
        assert_eq!(a.tomogram.as_deref(), Some("TS_1"));
        assert!(a.distance_to(b.position_xyz()) < 1e-5, "{a:?} vs {b:?}");
        assert!((a.score.unwrap() - b.score.unwrap()).abs() < 1e-5);
    }

    // capsid convert's STAR (voxel size from --like) passes RELION's optics check too; a file
    // written for RELION 3.0 (no optics table) is the one RELION 3.1 refuses.
    let csv = d.join("picks.csv");
    ok(&["convert", s(&picks), s(&csv)]);
    let again = d.join("again.star");
    ok(&[
        "convert",
        s(&csv),
        s(&again),
        "--like",
        s(&d.join("TS_1.mrc")),
    ]);
    let every = ["0", "100"];
    let (accepted, log) = select(tool, &again, &d.join("sel.star"), "rlnCoordinateX", every);
    assert!(accepted && log.contains("with 3 item(s)"), "{log}");
    let old = d.join("old.star");
    ok(&["convert", s(&csv), s(&old), "--star-style", "relion3.0"]);
    let (accepted, log) = select(tool, &old, &d.join("old_sel.star"), "rlnCoordinateX", every);
    assert!(
        !accepted,
        "RELION 3.1 accepted a file without optics: {log}"
    );
}
