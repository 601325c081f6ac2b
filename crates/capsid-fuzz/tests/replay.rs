//! CI side of the fuzzing: every saved crashing input (tests/fuzz_regressions/<target>/) and
//! every seed runs without panicking, a short deterministic mutation campaign per target finds no
//! crash, and structured random inputs (proptest) go through the parsers.

use capsid_fuzz::{campaign, run_one, target, targets, Scratch};
use proptest::prelude::*;
use std::time::Duration;

#[test]
fn saved_crashes_and_seeds_replay_without_panic() {
    let scratch = Scratch::new();
    let mut replayed = 0;
    for t in targets() {
        for s in (t.seeds)() {
            run_one(&t, &scratch, &s).unwrap_or_else(|e| panic!("{} seed: {e}", t.name));
        }
        let dir = capsid_fuzz::regressions_dir().join(t.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            run_one(&t, &scratch, &bytes).unwrap_or_else(|m| panic!("{}: {m}", e.path().display()));
            replayed += 1;
        }
    }
    eprintln!("{replayed} saved inputs replayed");
}

#[test]
fn short_deterministic_campaign_finds_no_crash() {
    for t in targets() {
        let n = if t.name == "mmcif" || t.name == "pdb" {
            150
        } else {
            400
        };
        let s = campaign(&t, Duration::from_secs(20), n, 13, None);
        assert_eq!(s.crashes, 0, "{}: {} crashes", t.name, s.crashes);
    }
}

/// An MRC header built field by field from random values (dimensions, mode, axis map, extended
/// header size, stamps), followed by a random amount of data.
fn mrc_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::array::uniform3(prop_oneof![
            Just(0i32),
            Just(-1),
            1..6i32,
            Just(i32::MAX),
            any::<i32>()
        ]),
        prop_oneof![
            Just(0i32),
            Just(1),
            Just(2),
            Just(6),
            Just(12),
            Just(101),
            any::<i32>()
        ],
        prop::array::uniform3(prop_oneof![1..4i32, any::<i32>()]),
        prop_oneof![Just(0i32), 0..200i32, Just(-5), Just(i32::MAX)],
        any::<bool>(),
        prop::array::uniform3(any::<f32>()),
        0usize..800,
    )
        .prop_map(|(dims, mode, axes, nsymbt, le, cell, data_len)| {
            let mut b = vec![0u8; 1024];
            let put = |b: &mut Vec<u8>, off: usize, v: [u8; 4]| b[off..off + 4].copy_from_slice(&v);
            let word = |v: i32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
            for k in 0..3 {
                put(&mut b, 4 * k, word(dims[k]));
                put(&mut b, 28 + 4 * k, word(dims[k]));
                put(
                    &mut b,
                    40 + 4 * k,
                    if le {
                        cell[k].to_le_bytes()
                    } else {
                        cell[k].to_be_bytes()
                    },
                );
                put(&mut b, 64 + 4 * k, word(axes[k]));
            }
            put(&mut b, 12, word(mode));
            put(&mut b, 92, word(nsymbt));
            b[208..212].copy_from_slice(b"MAP ");
            b[212] = if le { 0x44 } else { 0x11 };
            b[213] = b[212];
            b.extend((0..data_len).map(|i| (i * 37 % 251) as u8));
            b
        })
}

/// A STAR file from random blocks, loops, column names and values.
fn star_text() -> impl Strategy<Value = String> {
    let col = prop_oneof![
        Just("rlnCoordinateX"),
        Just("rlnCoordinateY"),
        Just("rlnCoordinateZ"),
        Just("rlnCenteredCoordinateXAngst"),
        Just("rlnAngleRot"),
        Just("rlnAngleTilt"),
        Just("rlnAnglePsi"),
        Just("rlnClassNumber"),
        Just("rlnTomoName"),
        Just("rlnAutopickFigureOfMerit"),
        Just("rlnTomoTiltSeriesPixelSize"),
        Just("x")
    ];
    let val = prop_oneof![
        Just("1".to_string()),
        Just("-3.5".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e308".to_string()),
        Just("\"quoted value\"".to_string()),
        Just("tomo_1".to_string()),
        Just("".to_string()),
        "[a-z0-9_.#'\"-]{0,6}",
        any::<f64>().prop_map(|f| f.to_string())
    ];
    (
        prop_oneof![
            Just("data_particles"),
            Just("data_"),
            Just("data_optics"),
            Just("")
        ],
        any::<bool>(),
        prop::collection::vec(col, 0..8),
        prop::collection::vec(prop::collection::vec(val, 0..9), 0..6),
    )
        .prop_map(|(block, looped, cols, rows)| {
            let mut s = format!("{block}\n");
            if looped {
                s.push_str("loop_\n");
            }
            for (i, c) in cols.iter().enumerate() {
                s.push_str(&format!("_{c} #{}\n", i + 1));
            }
            for r in rows {
                s.push_str(&r.join(" "));
                s.push('\n');
            }
            s
        })
}

/// A class table from random names, labels and radii (names with separators included).
fn class_toml() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("ribo".to_string()),
        Just("../x".to_string()),
        Just("".to_string()),
        Just("a/b".to_string()),
        "[ -~]{0,8}"
    ];
    let class = (
        name,
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(255),
            Just(256),
            Just(-1),
            any::<i64>()
        ],
        prop_oneof![Just("radius_a"), Just("radius_vox"), Just("radius")],
        prop_oneof![
            Just(0.0f64),
            Just(-1.0),
            Just(f64::NAN),
            Just(1e308),
            0.1f64..500.0
        ],
    )
        .prop_map(|(n, l, key, r)| {
            format!("[[class]]\nname = {n:?}\nlabel = {l}\n{key} = {r:?}\n")
        });
    prop::collection::vec(class, 0..4).prop_map(|v| v.join("\n"))
}

/// A SHREC/CSV-like line list with random fields.
fn table_text(sep: &'static str) -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("ribosome".to_string()),
        Just("1".to_string()),
        Just("-0".to_string()),
        Just("nan".to_string()),
        Just("x".to_string()),
        Just("1e400".to_string()),
        any::<f32>().prop_map(|f| f.to_string()),
        "[ -~]{0,5}"
    ];
    prop::collection::vec(prop::collection::vec(field, 0..9), 0..6).prop_map(move |rows| {
        rows.iter()
            .map(|r| r.join(sep))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mrc_headers_never_panic(b in mrc_bytes()) {
        let s = Scratch::new();
        run_one(&target("mrc").unwrap(), &s, &b).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn star_never_panics(t in star_text()) {
        let s = Scratch::new();
        run_one(&target("star").unwrap(), &s, t.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn class_tables_never_panic(t in class_toml()) {
        let s = Scratch::new();
        run_one(&target("class_toml").unwrap(), &s, t.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn shrec_and_csv_never_panic(t in table_text(" "), c in table_text(",")) {
        let s = Scratch::new();
        run_one(&target("shrec").unwrap(), &s, t.as_bytes()).map_err(TestCaseError::fail)?;
        let csv = format!("class,x,y,z,phi,theta,psi\n{c}");
        run_one(&target("csv").unwrap(), &s, csv.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn xml_and_json_never_panic(t in table_text(" ")) {
        let s = Scratch::new();
        let xml = format!("<objlist>{}</objlist>", t.lines().map(|l| format!("<object {l}/>")).collect::<String>());
        run_one(&target("deepfinder_xml").unwrap(), &s, xml.as_bytes()).map_err(TestCaseError::fail)?;
        let json = format!("{{\"points\": [{}]}}", t.lines().map(|l| format!("{{\"location\": {{\"x\": {l:?}}}}}")).collect::<Vec<_>>().join(","));
        run_one(&target("copick_json").unwrap(), &s, json.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn pdb_records_never_panic(lines in prop::collection::vec("(ATOM  |HETATM|MODEL |ENDMDL|HEADER|CRYST1)[ -~]{0,80}", 0..12)) {
        let s = Scratch::new();
        run_one(&target("pdb").unwrap(), &s, lines.join("\n").as_bytes()).map_err(TestCaseError::fail)?;
    }
}

/// The seeds are valid files (so mutations start from inputs that reach deep into the parsers).
#[test]
fn seeds_are_valid_inputs() {
    use capsid_io::particles::{parse_particles, Format, ReadOptions};
    let opts = ReadOptions {
        voxel_size_a: Some(10.0),
        tomo_shape_xyz: Some([64, 64, 32]),
        classes: Some(capsid_fuzz::class_table()),
        ..ReadOptions::default()
    };
    for (name, format) in [
        ("star", Format::Star),
        ("csv", Format::Csv),
        ("shrec", Format::ShrecTxt),
        ("deepfinder_xml", Format::DeepFinderXml),
        ("copick_json", Format::CopickJson),
    ] {
        for seed in (target(name).unwrap().seeds)() {
            let text = String::from_utf8(seed).unwrap();
            let ps = parse_particles(&text, std::path::Path::new("seed"), format, &opts)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert!(!ps.is_empty(), "{name}");
        }
    }
    let scratch = Scratch::new();
    for seed in (target("mrc").unwrap().seeds)() {
        let p = scratch.file("s.mrc", &seed);
        capsid_io::mrc::read_volume(&p).unwrap();
    }
    let p = scratch.file("m.pdb", &(target("pdb").unwrap().seeds)()[0]);
    assert!(!capsid_sim::library::model_blobs(&p).unwrap().is_empty());
    let p = scratch.file("m.cif", &(target("mmcif").unwrap().seeds)()[0]);
    assert!(!capsid_sim::library::model_blobs(&p).unwrap().is_empty());
}
