//! STAR files against real files and against the `starfile` Python package.
//!
//! * Always: capsid parses every STAR file in `../shared/data/star` (RELION's, via starfile's
//!   tests) and reads the particles of those with coordinates (skipped with a message when the
//!   folder is absent).
//! * With `CAPSID_PYTHON` set to a Python that has starfile and pandas (else skipped with a
//!   message): starfile reads every STAR capsid writes with equal values, and capsid reads every
//!   shared STAR file and the STAR files starfile writes with the values starfile gives.
//!   Command: `CAPSID_PYTHON=/tmp/interop-venv/bin/python cargo test -p capsid-io --test particles_star_interop`
//! * With `CAPSID_REQUIRE_INTEROP=1` (as CI sets it) a missing Python or shared folder fails
//!   instead of skipping.

use capsid_core::{ClassTable, EulerAngles, EulerConvention, Particle};
use capsid_io::particles::star::{parse_star, StarFile};
use capsid_io::particles::{read_particles, write_particles, ReadOptions, WriteOptions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips with a message, or fails when CI requires the interop checks.
fn skip(message: &str) {
    let required = std::env::var("CAPSID_REQUIRE_INTEROP").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "CAPSID_REQUIRE_INTEROP is set but: {message}");
    eprintln!("SKIP: {message}");
}

fn shared_star_dir() -> Option<PathBuf> {
    let d = repo_root().join("../shared/data/star");
    if d.is_dir() {
        Some(d)
    } else {
        skip(&format!(
            "{} is absent (shared test data not checked out)",
            d.display()
        ));
        None
    }
}

fn python() -> Option<String> {
    match std::env::var("CAPSID_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            skip("set CAPSID_PYTHON to a Python with starfile and pandas to run the starfile interop checks");
            None
        }
    }
}

fn run_python(py: &str, args: &[&str]) -> String {
    let script = repo_root().join("interop/star_interop.py");
    let out = Command::new(py)
        .arg(&script)
        .args(args)
        .output()
        .expect("run CAPSID_PYTHON");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "star_interop.py {args:?} failed:\n{text}"
    );
    text
}

fn table() -> ClassTable {
    ClassTable::from_toml_str(
        "[[class]]\nname='ribosome'\nlabel=1\nradius_a=120.0\n[[class]]\nname='4b4t'\nlabel=2\nradius_vox=10\n",
        Path::new("classes.toml"),
    )
    .unwrap()
}

#[test]
fn capsid_reads_every_shared_star_file() {
    let Some(dir) = shared_star_dir() else { return };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("star") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        parse_star(&text, &path).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 8, "only {n} STAR files in {}", dir.display());
    let opts = ReadOptions {
        default_class: Some("particle".into()),
        ..Default::default()
    };
    // RELION tomography particles: 16 rows, rlnMicrographName as tomogram, zero angles.
    let ps = read_particles(&dir.join("one_loop.star"), &opts).unwrap();
    assert_eq!(ps.len(), 16);
    assert_eq!((ps[0].x, ps[0].y, ps[0].z), (1572.444, 1084.5, 964.5));
    assert_eq!(
        ps[0].tomogram.as_deref(),
        Some("tomo_ts01.mrc_15.00Apx.mrc")
    );
    assert_eq!(ps[0].angles, Some(EulerAngles::relion(0.0, 0.0, 0.0)));
    // RELION 3.1 style: the optics block has no coordinates; the first particle loop is read.
    let ps = read_particles(&dir.join("rln3.1_data_style.star"), &opts).unwrap();
    assert_eq!(ps.len(), 2);
    assert_eq!((ps[1].x, ps[1].y, ps[1].z), (685.0, 1268.0, -51.5227));
    // No coordinates, or a loop with only rlnCoordinateX: clear errors.
    for (name, needle) in [
        ("postprocess.star", "no loop with rlnCoordinateX"),
        ("default_pipeline.star", "no loop with rlnCoordinateX"),
        ("two_basic_blocks.star", "no loop with rlnCoordinateX"),
        (
            "empty_loop.star",
            "missing column(s) rlnCoordinateY, rlnCoordinateZ",
        ),
    ] {
        let e = read_particles(&dir.join(name), &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(name) && e.contains(needle), "{e}");
    }
}

/// The STAR variants capsid writes, with the column values each must hold, computed here from the
/// particles (not from the writer).
fn capsid_variants() -> Vec<(&'static str, Vec<Particle>, WriteOptions, Value)> {
    let angles = [
        [10.0, 40.0, -70.0],
        [170.0, 0.0, 0.0],
        [-120.0, 179.0, 33.3],
    ];
    let base: Vec<Particle> = [
        ("ribosome", 10.25, 20.5, 3.0),
        ("4b4t", 0.0, 199.75, 99.125),
        ("ribosome", 63.0, 1.0 / 3.0, 12.0),
    ]
    .iter()
    .zip(angles)
    .enumerate()
    .map(|(i, ((c, x, y, z), a))| Particle {
        class: c.to_string(),
        x: *x,
        y: *y,
        z: *z,
        angles: Some(EulerAngles::zxz(a[0], a[1], a[2])),
        score: Some(0.25 * i as f64 + 0.1),
        tomogram: Some(if i == 1 {
            "TS 02".to_string()
        } else {
            "TS_01".to_string()
        }),
    })
    .collect();
    let col =
        |f: &dyn Fn(&Particle) -> Value, ps: &[Particle]| Value::Array(ps.iter().map(f).collect());
    let relion = |p: &Particle, k: usize| {
        json!(
            p.angles
                .unwrap()
                .to_convention(EulerConvention::RelionZyz)
                .angles_deg[k]
        )
    };
    let full = {
        let ps = &base;
        json!({"block": "particles", "columns": {
            "rlnTomoName": col(&|p| json!(p.tomogram), ps),
            "rlnCoordinateX": col(&|p| json!(p.x), ps),
            "rlnCoordinateY": col(&|p| json!(p.y), ps),
            "rlnCoordinateZ": col(&|p| json!(p.z), ps),
            "rlnAngleRot": col(&|p| relion(p, 0), ps),
            "rlnAngleTilt": col(&|p| relion(p, 1), ps),
            "rlnAnglePsi": col(&|p| relion(p, 2), ps),
            "rlnClassNumber": col(&|p| json!(if p.class == "ribosome" { 1.0 } else { 2.0 }), ps),
            "capsidClassName": col(&|p| json!(p.class), ps),
            "rlnAutopickFigureOfMerit": col(&|p| json!(p.score), ps),
        }})
    };
    let bare: Vec<Particle> = base
        .iter()
        .map(|p| Particle::new(p.class.clone(), p.x, p.y, p.z))
        .collect();
    let minimal = json!({"block": "particles", "columns": {
        "rlnCoordinateX": col(&|p| json!(p.x), &bare),
        "rlnCoordinateY": col(&|p| json!(p.y), &bare),
        "rlnCoordinateZ": col(&|p| json!(p.z), &bare),
        "capsidClassName": col(&|p| json!(p.class), &bare),
    }});
    // RELION 5: Å from the centre of a 200 x 300 x 151 tomogram at 7.5 Å: (x - n/2) * 7.5, with
    // the optics columns RELION 5's ParticleSet requires (rlnTomoTiltSeriesPixelSize, voltage, Cs).
    let named: Vec<Particle> = base
        .iter()
        .map(|p| Particle {
            tomogram: p.tomogram.clone(),
            ..Particle::new(p.class.clone(), p.x, p.y, p.z)
        })
        .collect();
    let centred =
        |p: &Particle, k: usize| json!((p.position_xyz()[k] - [100.0, 150.0, 75.5][k]) * 7.5);
    let ones = col(&|_| json!(1), &named);
    let optics = |pixel: &str, size: f64| {
        json!({
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnOpticsGroup": [1],
            pixel: [size],
            "rlnVoltage": [300.0],
            "rlnSphericalAberration": [2.7],
            "rlnAmplitudeContrast": [0.1],
        })
    };
    let r5 = json!({"block": "particles", "columns": {
        "rlnTomoName": col(&|p| json!(p.tomogram), &named),
        "rlnCenteredCoordinateXAngst": col(&|p| centred(p, 0), &named),
        "rlnCenteredCoordinateYAngst": col(&|p| centred(p, 1), &named),
        "rlnCenteredCoordinateZAngst": col(&|p| centred(p, 2), &named),
        "capsidClassName": col(&|p| json!(p.class), &named),
        "rlnOpticsGroup": ones.clone(),
    }, "optics": optics("rlnTomoTiltSeriesPixelSize", 7.5)});
    // RELION 3.1: voxel coordinates after an optics table with the image pixel size.
    let r31 = json!({"block": "particles", "columns": {
        "rlnCoordinateX": col(&|p| json!(p.x), &bare),
        "rlnCoordinateY": col(&|p| json!(p.y), &bare),
        "rlnCoordinateZ": col(&|p| json!(p.z), &bare),
        "capsidClassName": col(&|p| json!(p.class), &bare),
        "rlnOpticsGroup": ones,
    }, "optics": optics("rlnImagePixelSize", 7.5)});
    // Warp (WarpTools ts_export_particles --input_star): the full table in one unnamed block,
    // with the tomogram as rlnMicrographName NAME.tomostar; no optics.
    let mut warp = full.clone();
    warp["block"] = json!("");
    let columns = warp["columns"].as_object_mut().unwrap();
    columns.remove("rlnTomoName");
    columns.insert(
        "rlnMicrographName".into(),
        col(
            &|p| json!(format!("{}.tomostar", p.tomogram.as_deref().unwrap())),
            &base,
        ),
    );
    vec![
        (
            "warp",
            base.clone(),
            WriteOptions {
                classes: Some(table()),
                voxel_size_a: Some(7.5),
                star: capsid_io::particles::StarStyle::Warp,
                ..Default::default()
            },
            warp,
        ),
        (
            "full",
            base.clone(),
            WriteOptions {
                classes: Some(table()),
                ..Default::default()
            },
            full,
        ),
        ("minimal", bare.clone(), WriteOptions::default(), minimal),
        (
            "relion31",
            bare,
            WriteOptions {
                voxel_size_a: Some(7.5),
                ..Default::default()
            },
            r31,
        ),
        (
            "relion5",
            named,
            WriteOptions {
                voxel_size_a: Some(7.5),
                tomo_shape_xyz: Some([200, 300, 151]),
                star: capsid_io::particles::StarStyle::Relion5,
                ..Default::default()
            },
            r5,
        ),
    ]
}

#[test]
fn starfile_reads_capsid_star_with_equal_values() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, particles, opts, expected) in capsid_variants() {
        write_particles(&dir.path().join(format!("{name}.star")), &particles, &opts).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.expected.json")),
            expected.to_string(),
        )
        .unwrap();
    }
    let out = run_python(&py, &["check", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        5,
        "{out}"
    );
}

/// Compares capsid's parse of a STAR file with starfile's dump of it.
fn compare_with_dump(star: &StarFile, dump: &Value, what: &str) {
    let blocks = dump["blocks"].as_array().unwrap();
    assert_eq!(star.blocks.len(), blocks.len(), "{what}: block count");
    for (ours, theirs) in star.blocks.iter().zip(blocks) {
        assert_eq!(ours.name, theirs["name"].as_str().unwrap(), "{what}");
        if let Some(pairs) = theirs.get("pairs") {
            let pairs = pairs.as_object().unwrap();
            assert_eq!(ours.pairs.len(), pairs.len(), "{what}: data_{}", ours.name);
            for (k, v) in &ours.pairs {
                same_value(v, &pairs[k], &format!("{what}: data_{} _{k}", ours.name));
            }
        } else {
            assert_eq!(ours.loops.len(), 1, "{what}: data_{}", ours.name);
            let l = &ours.loops[0];
            let cols: Vec<&str> = theirs["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            assert_eq!(l.columns, cols, "{what}: data_{}", ours.name);
            let rows = theirs["rows"].as_array().unwrap();
            assert_eq!(l.rows.len(), rows.len(), "{what}: data_{} rows", ours.name);
            for (i, (r, t)) in l.rows.iter().zip(rows).enumerate() {
                for (j, (v, tv)) in r.iter().zip(t.as_array().unwrap()).enumerate() {
                    same_value(
                        v,
                        tv,
                        &format!(
                            "{what}: data_{} row {} column {}",
                            ours.name,
                            i + 1,
                            cols[j]
                        ),
                    );
                }
            }
        }
    }
}

fn same_value(ours: &str, theirs: &Value, what: &str) {
    match theirs {
        Value::Null => assert!(
            ours.is_empty() || ours.eq_ignore_ascii_case("nan"),
            "{what}: '{ours}' vs null"
        ),
        Value::String(s) => assert_eq!(ours, s, "{what}"),
        Value::Number(n) => {
            let t = n.as_f64().unwrap();
            let o: f64 = ours
                .parse()
                .unwrap_or_else(|_| panic!("{what}: '{ours}' is not a number, starfile reads {t}"));
            assert!(
                (o - t).abs() <= 1e-9 * t.abs().max(1.0),
                "{what}: {o} vs {t}"
            );
        }
        other => panic!("{what}: unexpected {other}"),
    }
}

#[test]
fn capsid_reads_star_like_starfile() {
    let Some(py) = python() else { return };
    let Some(shared) = shared_star_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    run_python(
        &py,
        &[
            "dump",
            shared.to_str().unwrap(),
            out.path().to_str().unwrap(),
        ],
    );
    let mut compared = 0;
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let json_path = entry.unwrap().path();
        if json_path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let dump: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        let file = dump["file"].as_str().unwrap();
        let star_path = if file.starts_with("starfile_") {
            out.path().join(file)
        } else {
            shared.join(file)
        };
        let star = parse_star(&std::fs::read_to_string(&star_path).unwrap(), &star_path).unwrap();
        compare_with_dump(&star, &dump, file);
        compared += 1;
    }
    assert!(compared >= 10, "compared only {compared} files");
    // Particles of starfile-written files: capsid's particles hold starfile's values.
    for (file, opts) in [
        (
            "starfile_particles",
            ReadOptions {
                classes: Some(table()),
                ..Default::default()
            },
        ),
        (
            "starfile_named",
            ReadOptions {
                classes: Some(table()),
                ..Default::default()
            },
        ),
    ] {
        let dump: Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join(format!("{file}.json"))).unwrap(),
        )
        .unwrap();
        let block = dump["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == "particles")
            .unwrap();
        let cols: Vec<&str> = block["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let get = |row: &Value, c: &str| row[cols.iter().position(|x| *x == c).unwrap()].clone();
        let ps = read_particles(&out.path().join(format!("{file}.star")), &opts).unwrap();
        let rows = block["rows"].as_array().unwrap();
        assert_eq!(ps.len(), rows.len(), "{file}");
        for (p, row) in ps.iter().zip(rows) {
            assert_eq!(json!(p.x), get(row, "rlnCoordinateX"), "{file}");
            assert_eq!(json!(p.y), get(row, "rlnCoordinateY"), "{file}");
            assert_eq!(json!(p.z), get(row, "rlnCoordinateZ"), "{file}");
            assert_eq!(json!(p.tomogram), get(row, "rlnTomoName"), "{file}");
            assert_eq!(
                json!(p.score),
                get(row, "rlnAutopickFigureOfMerit"),
                "{file}"
            );
            let a = p.angles.unwrap();
            assert_eq!(a.convention, EulerConvention::RelionZyz);
            let want = [
                get(row, "rlnAngleRot"),
                get(row, "rlnAngleTilt"),
                get(row, "rlnAnglePsi"),
            ];
            assert_eq!(a.angles_deg.map(|v| json!(v)), want, "{file}");
            let class = if cols.contains(&"capsidClassName") {
                get(row, "capsidClassName").as_str().unwrap().to_string()
            } else {
                let n = get(row, "rlnClassNumber").as_f64().unwrap() as u8;
                table().by_label(n).unwrap().name.clone()
            };
            assert_eq!(p.class, class, "{file}");
        }
    }
}
