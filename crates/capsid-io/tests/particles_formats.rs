//! Particle lists: round trips through every format and the errors bad files give.

use capsid_core::{ClassTable, EulerAngles, Particle};
use capsid_io::particles::{read_particles, write_particles, Format, ReadOptions, WriteOptions};
use std::path::{Path, PathBuf};

fn table() -> ClassTable {
    ClassTable::from_toml_str(
        "[[class]]\nname='ribosome'\nlabel=1\nradius_a=120.0\n[[class]]\nname='4b4t'\nlabel=2\nradius_vox=10\n",
        Path::new("classes.toml"),
    )
    .unwrap()
}

/// A few particles with awkward values: fractions, negatives, angles near the poles.
fn sample(with_angles: bool, with_score: bool, tomo: Option<&str>) -> Vec<Particle> {
    let raw = [
        ("ribosome", 10.25, 20.5, 3.0, [10.0, 40.0, -70.0], 0.93),
        ("4b4t", 0.0, 199.75, 99.125, [170.0, 0.0, 0.0], 0.5),
        (
            "ribosome",
            63.0,
            1.0 / 3.0,
            12.0,
            [-120.0, 179.0, 33.3],
            1e-3,
        ),
    ];
    raw.iter()
        .map(|(c, x, y, z, a, s)| Particle {
            class: c.to_string(),
            x: *x,
            y: *y,
            z: *z,
            angles: with_angles.then(|| EulerAngles::zxz(a[0], a[1], a[2])),
            score: with_score.then_some(*s),
            tomogram: tomo.map(str::to_string),
        })
        .collect()
}

fn assert_same(a: &[Particle], b: &[Particle], pos_tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (p, q) in a.iter().zip(b) {
        assert_eq!(p.class, q.class, "{what}");
        for (u, v) in p.position_xyz().iter().zip(q.position_xyz()) {
            assert!((u - v).abs() <= pos_tol, "{what}: {p:?} vs {q:?}");
        }
        match (p.angles, q.angles) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                let d = x.rotation().angle_to_deg(&y.rotation());
                assert!(d < 1e-5, "{what}: rotation differs by {d}°: {x:?} vs {y:?}");
            }
            _ => panic!("{what}: angles {:?} vs {:?}", p.angles, q.angles),
        }
        assert_eq!(p.score.is_some(), q.score.is_some(), "{what}");
        if let (Some(s), Some(t)) = (p.score, q.score) {
            assert!((s - t).abs() < 1e-12, "{what}");
        }
    }
}

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn every_format_round_trips_its_particles() {
    let dir = tempfile::tempdir().unwrap();
    let ropts = ReadOptions {
        classes: Some(table()),
        ..Default::default()
    };
    let wopts = WriteOptions {
        classes: Some(table()),
        voxel_size_a: Some(10.0),
        ..Default::default()
    };
    for (name, particles, keeps_score, keeps_tomo) in [
        ("p.star", sample(true, true, Some("TS_01")), true, true),
        ("p.csv", sample(true, true, Some("TS_01")), true, true),
        ("p.txt", sample(true, false, None), false, false),
        ("p.xml", sample(true, true, Some("3")), true, true),
        ("q.star", sample(false, false, None), false, false),
        ("q.csv", sample(false, false, None), false, false),
        ("q.txt", sample(false, false, None), false, false),
        ("q.xml", sample(false, false, None), false, false),
    ] {
        let path = file(dir.path(), name);
        write_particles(&path, &particles, &wopts).unwrap();
        let back = read_particles(&path, &ropts).unwrap();
        assert_same(&particles, &back, 0.0, name);
        if keeps_score {
            assert_eq!(back[0].score, particles[0].score, "{name}");
        }
        if keeps_tomo {
            assert_eq!(back[0].tomogram, particles[0].tomogram, "{name}");
        }
    }
    // copick: one class per file, Å locations.
    let one: Vec<Particle> = sample(true, true, Some("TS_01"))
        .into_iter()
        .filter(|p| p.class == "ribosome")
        .collect();
    let path = file(dir.path(), "ribosome.json");
    write_particles(&path, &one, &wopts).unwrap();
    let back = read_particles(&path, &ropts).unwrap();
    assert_same(&one, &back, 1e-9, "copick");
    assert_eq!(back[0].tomogram.as_deref(), Some("TS_01"));
    // Without angles copick says trust_orientation false and reads back no angles.
    let plain: Vec<Particle> = sample(false, false, None)
        .into_iter()
        .filter(|p| p.class == "4b4t")
        .collect();
    write_particles(&path, &plain, &wopts).unwrap();
    assert_same(
        &plain,
        &read_particles(&path, &ropts).unwrap(),
        1e-9,
        "copick without angles",
    );
}

#[test]
fn relion5_centred_coordinates_follow_relions_centre() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "r5.star");
    // RELION 5: x = x_Å / voxel + n / 2. A 200 x 300 x 151 tomogram at 5 Å.
    std::fs::write(
        &path,
        "data_particles\nloop_\n_rlnTomoName\n_rlnCenteredCoordinateXAngst\n_rlnCenteredCoordinateYAngst\n\
         _rlnCenteredCoordinateZAngst\nTS_1 0 -250 12.5\n",
    )
    .unwrap();
    let opts = ReadOptions {
        voxel_size_a: Some(5.0),
        tomo_shape_xyz: Some([200, 300, 151]),
        default_class: Some("ribosome".into()),
        ..Default::default()
    };
    let p = &read_particles(&path, &opts).unwrap()[0];
    assert_eq!((p.x, p.y, p.z), (100.0, 100.0, 78.0));
    // Writing centred Å and reading back gives the same voxels.
    let out = file(dir.path(), "r5_out.star");
    let w = WriteOptions {
        voxel_size_a: Some(5.0),
        tomo_shape_xyz: Some([200, 300, 151]),
        star: capsid_io::particles::StarStyle::Relion5,
        ..Default::default()
    };
    write_particles(&out, &sample(true, true, Some("TS_1")), &w).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("_rlnCenteredCoordinateXAngst") && !text.contains("_rlnCoordinateX "),
        "{text}"
    );
    let back = read_particles(&out, &opts).unwrap();
    assert_same(&sample(true, true, Some("TS_1")), &back, 1e-9, "relion5");
    // Without voxel size or shape: a clear error.
    let e = read_particles(
        &path,
        &ReadOptions {
            default_class: Some("a".into()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("r5.star") && e.contains("--voxel-size"), "{e}");
    let e = read_particles(
        &path,
        &ReadOptions {
            default_class: Some("a".into()),
            voxel_size_a: Some(5.0),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--tomo-shape"), "{e}");
}

#[test]
fn star_origin_shifts_are_subtracted() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "o.star");
    std::fs::write(
        &path,
        "data_particles\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_rlnOriginXAngst\n\
         _rlnOriginYAngst\n_rlnOriginZAngst\n_rlnClassNumber\n10 20 30 5 -10 0 1\n",
    )
    .unwrap();
    let opts = ReadOptions {
        classes: Some(table()),
        voxel_size_a: Some(5.0),
        ..Default::default()
    };
    let p = &read_particles(&path, &opts).unwrap()[0];
    assert_eq!(
        (p.x, p.y, p.z, p.class.as_str()),
        (9.0, 22.0, 30.0, "ribosome")
    );
    let e = read_particles(
        &path,
        &ReadOptions {
            classes: Some(table()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 10") && e.contains("rlnOrigin"), "{e}");
}

/// Each bad file gives an error that names the file and contains the expected words.
#[test]
fn bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let classes = ReadOptions {
        classes: Some(table()),
        ..Default::default()
    };
    let shaped = ReadOptions {
        classes: Some(table()),
        tomo_shape_xyz: Some([64, 64, 32]),
        ..Default::default()
    };
    let plain = ReadOptions::default();
    let cases: Vec<(&str, &str, &ReadOptions, &[&str])> = vec![
        // STAR
        ("miss.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_capsidClassName\n1 2 a\n", &plain, &["missing column", "rlnCoordinateZ"]),
        ("nocoord.star", "data_x\nloop_\n_rlnA\n1\n", &plain, &["no loop with rlnCoordinateX", "data_x"]),
        ("empty.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_capsidClassName\n", &plain, &["empty"]),
        ("nan.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_capsidClassName\n1 2 3 a\n1 two 3 a\n", &plain, &["line 8", "rlnCoordinateY", "'two' is not a number"]),
        ("ragged.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_capsidClassName\n1 2 3\n", &plain, &["line 7", "3 values", "4 columns"]),
        ("class.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_capsidClassName\n1 2 3 ribosome\n1 2 3 proteasome\n", &classes, &["line 8", "unknown class 'proteasome'", "ribosome, 4b4t"]),
        ("label.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_rlnClassNumber\n1 2 3 7\n", &classes, &["line 7", "rlnClassNumber 7", "1=ribosome"]),
        ("notable.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_rlnClassNumber\n1 2 3 1\n", &plain, &["line 7", "--classes"]),
        ("noclass.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n1 2 3\n", &plain, &["no class column", "--class"]),
        ("angles.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_rlnAngleRot\n_capsidClassName\n1 2 3 4 a\n", &plain, &["missing angle column", "rlnAngleTilt"]),
        ("outside.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnCoordinateZ\n_capsidClassName\n1 2 3 ribosome\n10 20 32 ribosome\n", &shaped, &["line 8", "outside the tomogram", "z = 32"]),
        ("quote.star", "data_\nloop_\n_rlnCoordinateX\n_capsidClassName\n1 'open\n", &plain, &["line 5", "unterminated"]),
        // CSV
        ("miss.csv", "class,x,y\na,1,2\n", &plain, &["missing column", "z"]),
        ("empty.csv", "class,x,y,z\n", &plain, &["empty"]),
        ("nan.csv", "class,x,y,z\na,1,2,3\na,1,2,zz\n", &plain, &["line 3", "'zz' is not a number"]),
        ("angles.csv", "class,x,y,z,phi,theta,psi\na,1,2,3,10,,5\n", &plain, &["line 2", "theta missing"]),
        ("class.csv", "class,x,y,z\nnope,1,2,3\n", &classes, &["line 2", "unknown class 'nope'"]),
        ("outside.csv", "class,x,y,z\nribosome,-1,2,3\n", &shaped, &["line 2", "outside", "x = -1"]),
        ("ragged.csv", "class,x,y,z\na,1,2,3,4\n", &plain, &["line 2"]),
        // SHREC
        ("fields.txt", "4b4t 1 2 3\n4b4t 1 2 3 4 5\n", &plain, &["line 2", "found 6 fields"]),
        ("nan.txt", "\n4b4t 1 2 x 4 5 6\n", &plain, &["line 2", "z: 'x' is not a number"]),
        ("empty.txt", "\n# nothing\n", &plain, &["empty"]),
        ("class.txt", "4b4t 1 2 3\nvesicle 1 2 3\n", &classes, &["line 2", "unknown class 'vesicle'"]),
        ("outside.txt", "4b4t 64 2 3\n", &shaped, &["line 1", "outside", "x = 64"]),
        // DeepFinder
        ("miss.xml", "<objlist>\n<object tomo_idx=\"0\" class_label=\"1\" x=\"1\" y=\"2\"/>\n</objlist>\n", &classes, &["line 2", "lacks the attribute z"]),
        ("nolabel.xml", "<objlist>\n<object class_label=\"1\" x=\"1\" y=\"2\" z=\"3\"/>\n</objlist>\n", &plain, &["line 2", "--classes"]),
        ("label.xml", "<objlist>\n<object class_label=\"9\" x=\"1\" y=\"2\" z=\"3\"/>\n</objlist>\n", &classes, &["line 2", "class_label 9"]),
        ("nan.xml", "<objlist>\n\n<object class_label=\"1\" x=\"1\" y=\"b\" z=\"3\"/>\n</objlist>\n", &classes, &["line 3", "y: 'b'"]),
        ("empty.xml", "<objlist>\n</objlist>\n", &classes, &["empty"]),
        ("notxml.xml", "<a><b></a>", &classes, &["invalid XML"]),
        ("noobjlist.xml", "<root/>", &classes, &["no <objlist>"]),
        // copick
        ("nov.json", r#"{"pickable_object_name":"ribosome","user_id":"u","session_id":"0","points":[{"location":{"x":1,"y":2,"z":3}}]}"#, &plain, &["no voxel_spacing", "--voxel-size"]),
        ("bad.json", "{\n\"pickable_object_name\": 3}", &plain, &["line 2", "not a copick picks file"]),
        ("empty.json", r#"{"pickable_object_name":"ribosome","user_id":"u","session_id":"0","voxel_spacing":10,"points":[]}"#, &plain, &["empty"]),
        ("class.json", r#"{"pickable_object_name":"apo","user_id":"u","session_id":"0","voxel_spacing":10,"points":[{"location":{"x":1,"y":2,"z":3}}]}"#, &classes, &["point 1", "unknown class 'apo'"]),
        ("unit.json", r#"{"pickable_object_name":"apo","user_id":"u","session_id":"0","unit":"nm","voxel_spacing":10,"points":[]}"#, &plain, &["unit 'nm'"]),
        ("rot.json", r#"{"pickable_object_name":"apo","user_id":"u","session_id":"0","voxel_spacing":10,"points":[{"location":{"x":1,"y":2,"z":3},"transformation_":[[2,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}"#, &plain, &["point 1", "not a rotation"]),
        // Unknown extension
        ("list.dat", "x", &plain, &["unknown particle-list format"]),
    ];
    for (name, text, opts, needles) in cases {
        let path = file(dir.path(), name);
        std::fs::write(&path, text).unwrap();
        let e = match read_particles(&path, opts) {
            Ok(p) => panic!("{name}: read {} particles, expected an error", p.len()),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with(&path.display().to_string()), "{name}: {e}");
        assert!(!e.contains('\n'), "{name}: error is not one line: {e}");
        for n in needles {
            assert!(e.contains(n), "{name}: '{e}' lacks '{n}'");
        }
    }
    // A missing file is an I/O error naming it.
    let e = read_particles(&file(dir.path(), "none.star"), &plain)
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.star"), "{e}");
}

#[test]
fn empty_lists_are_accepted_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "e.csv");
    std::fs::write(&path, "class,x,y,z\n").unwrap();
    let opts = ReadOptions {
        allow_empty: true,
        ..Default::default()
    };
    assert!(read_particles(&path, &opts).unwrap().is_empty());
}

#[test]
fn shrec_lines_keep_their_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "particle_locations.txt");
    std::fs::write(
        &path,
        "4b4t 12 34 56 10 20 30\nvesicle 1 2 3\nfiducial 4 5 6 0 0 0\n",
    )
    .unwrap();
    let ps = read_particles(
        &path,
        &ReadOptions {
            default_tomogram: Some("model_0".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = ps.iter().map(|p| p.class.as_str()).collect();
    assert_eq!(names, ["4b4t", "vesicle", "fiducial"]);
    assert_eq!(ps[0].angles, Some(EulerAngles::zxz(10.0, 20.0, 30.0)));
    assert_eq!(ps[1].angles, None);
    assert_eq!(ps[2].tomogram.as_deref(), Some("model_0"));
}

#[test]
fn deepfinder_attributes_follow_phi_psi_the() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "objl.xml");
    std::fs::write(
        &path,
        "<objlist>\n  <object tomo_idx=\"2\" class_label=\"2\" x=\"1.5\" y=\"2\" z=\"3\" phi=\"10\" psi=\"30\" the=\"20\" cluster_size=\"17\"/>\n</objlist>\n",
    )
    .unwrap();
    let p = &read_particles(
        &path,
        &ReadOptions {
            classes: Some(table()),
            ..Default::default()
        },
    )
    .unwrap()[0];
    assert_eq!(p.class, "4b4t");
    assert_eq!(p.angles, Some(EulerAngles::zxz(10.0, 20.0, 30.0)));
    assert_eq!((p.score, p.tomogram.as_deref()), (Some(17.0), Some("2")));
}

#[test]
fn writers_refuse_what_a_format_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let w = WriteOptions {
        voxel_size_a: Some(10.0),
        ..Default::default()
    };
    // copick: one class per file.
    let e = write_particles(
        &file(dir.path(), "two.json"),
        &sample(false, false, None),
        &w,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("one object") && e.contains("4b4t, ribosome"),
        "{e}"
    );
    // copick: needs the voxel size.
    let one = vec![Particle::new("a", 1.0, 2.0, 3.0)];
    let e = write_particles(&file(dir.path(), "a.json"), &one, &WriteOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--voxel-size"), "{e}");
    // DeepFinder: class names need labels.
    let e = write_particles(&file(dir.path(), "a.xml"), &one, &w)
        .unwrap_err()
        .to_string();
    assert!(e.contains("class_label") && e.contains("--classes"), "{e}");
    // STAR: mixed presence of angles.
    let mut mixed = sample(true, false, None);
    mixed[1].angles = None;
    let e = write_particles(&file(dir.path(), "m.star"), &mixed, &w)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 of 3 particles have angles"), "{e}");
    // Nothing half-written is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn star_written_by_capsid_is_aligned_and_numbered() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "out.star");
    let w = WriteOptions {
        classes: Some(table()),
        ..Default::default()
    };
    write_particles(&path, &sample(true, true, Some("TS_01")), &w).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    for col in [
        "_rlnTomoName #1",
        "_rlnCoordinateX #2",
        "_rlnAngleRot #5",
        "_rlnClassNumber #8",
        "_capsidClassName #9",
        "_rlnAutopickFigureOfMerit #10",
    ] {
        assert!(text.contains(col), "{col} missing in\n{text}");
    }
    assert!(text.contains("data_particles\n\nloop_\n"));
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("TS_01")).collect();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|r| r.len() == rows[0].len()),
        "rows not aligned:\n{text}"
    );
    // The class number is the table label; RELION angles give the same rotation.
    let star = capsid_io::particles::star::parse_star(&text, &path).unwrap();
    let l = &star.blocks[0].loops[0];
    let c = l.column("rlnClassNumber").unwrap();
    assert_eq!(
        l.rows.iter().map(|r| r[c].as_str()).collect::<Vec<_>>(),
        ["1", "2", "1"]
    );
    assert_eq!(Format::from_path(&path), Some(Format::Star));
}

#[test]
fn star_styles_write_the_optics_relion_needs() {
    use capsid_io::particles::{Optics, StarStyle};
    let dir = tempfile::tempdir().unwrap();
    let out = file(dir.path(), "s.star");
    let ps = sample(true, true, Some("TS_1"));
    let write = |w: &WriteOptions| {
        write_particles(&out, &ps, w).map(|_| std::fs::read_to_string(&out).unwrap())
    };
    // RELION 3.1 (the default) with a voxel size: optics first, every particle in group 1.
    let t = write(&WriteOptions {
        voxel_size_a: Some(7.5),
        ..Default::default()
    })
    .unwrap();
    let optics = t.find("data_optics").expect("optics block");
    assert!(optics < t.find("data_particles").unwrap(), "{t}");
    for col in [
        "_rlnImagePixelSize",
        "_rlnVoltage",
        "_rlnSphericalAberration",
        "_rlnOpticsGroup",
    ] {
        assert!(t.contains(col), "{col}: {t}");
    }
    // Without one: a RELION 3.0 file (one block), as before.
    let t = write(&WriteOptions::default()).unwrap();
    assert!(
        !t.contains("data_optics") && !t.contains("_rlnOpticsGroup"),
        "{t}"
    );
    // RELION 5: the tilt series' pixel size, given or the voxel size.
    let r5 = WriteOptions {
        voxel_size_a: Some(7.5),
        tomo_shape_xyz: Some([200, 300, 151]),
        star: StarStyle::Relion5,
        optics: Optics {
            tilt_series_pixel_size_a: Some(1.875),
            ..Optics::default()
        },
        ..Default::default()
    };
    let t = write(&r5).unwrap();
    assert!(
        t.contains("_rlnTomoTiltSeriesPixelSize") && t.contains("1.875"),
        "{t}"
    );
    assert_same(
        &ps,
        &read_particles(
            &out,
            &ReadOptions {
                voxel_size_a: Some(7.5),
                tomo_shape_xyz: Some([200, 300, 151]),
                ..Default::default()
            },
        )
        .unwrap(),
        1e-9,
        "relion5 with optics",
    );
    // RELION 5 needs every particle's tomogram; bad optics values are named.
    let e = write_particles(&out, &sample(true, true, None), &r5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("s.star") && e.contains("rlnTomoName"), "{e}");
    let e = write(&WriteOptions {
        voxel_size_a: Some(7.5),
        optics: Optics {
            amplitude_contrast: 1.5,
            ..Optics::default()
        },
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("amplitude contrast"), "{e}");
    // Warp: no optics even with a voxel size, one unnamed block, the tomogram as Warp's
    // settings file NAME.tomostar, read back as the tomogram NAME.
    let t = write(&WriteOptions {
        voxel_size_a: Some(7.5),
        star: StarStyle::Warp,
        ..Default::default()
    })
    .unwrap();
    assert!(
        !t.contains("data_optics")
            && !t.contains("_rlnOpticsGroup")
            && !t.contains("data_particles"),
        "{t}"
    );
    assert!(
        t.contains("\ndata_\n") && t.contains("_rlnMicrographName") && !t.contains("_rlnTomoName"),
        "{t}"
    );
    assert!(t.contains("\nTS_1.tomostar "), "{t}");
    assert_same(
        &ps,
        &read_particles(&out, &ReadOptions::default()).unwrap(),
        1e-9,
        "warp",
    );
    assert_eq!("warp".parse::<StarStyle>(), Ok(StarStyle::Warp));
    assert_eq!("relion3.1".parse::<StarStyle>(), Ok(StarStyle::Relion31));
    assert_eq!("RELION5".parse::<StarStyle>(), Ok(StarStyle::Relion5));
    assert!("relion9".parse::<StarStyle>().is_err());
}
