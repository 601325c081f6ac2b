//! The server without a browser: token, refused paths, slices in the right place, picks.

mod common;

use capsid_view::{ViewConfig, ViewServer, Viewer};
use common::*;

fn start(ph: &Phantom) -> ViewServer {
    let mut cfg = ViewConfig::new(&ph.tomo);
    cfg.labels = Some(ph.labels.clone());
    cfg.classes = Some(ph.classes.clone());
    cfg.picks = vec![ph.picks.clone()];
    ViewServer::start(Viewer::open(cfg).unwrap(), 0).unwrap()
}

#[test]
fn every_request_needs_the_token() {
    let ph = phantom();
    let s = start(&ph);
    let t = s.token().to_string();
    for target in [
        "/",
        "/api/info",
        "/api/slice?vol=tomo&axis=z&index=3",
        "/api/picks",
    ] {
        assert_eq!(http_get(s.port(), target).0, 403, "{target} without token");
        let sep = if target.contains('?') { '&' } else { '?' };
        let wrong = format!("{target}{sep}token=0123456789abcdef0123456789abcdef");
        assert_eq!(
            http_get(s.port(), &wrong).0,
            403,
            "{target} with a wrong token"
        );
        let ok = format!("{target}{sep}token={t}");
        assert_eq!(http_get(s.port(), &ok).0, 200, "{target} with the token");
    }
    assert_eq!(t.len(), 32);
    assert!(s.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn paths_outside_the_given_files_are_refused() {
    let ph = phantom();
    let s = start(&ph);
    let t = s.token().to_string();
    let tomo = ph.tomo.display().to_string();
    for target in [
        format!("/../../../../etc/passwd?token={t}"),
        format!("/%2e%2e/%2e%2e/etc/passwd?token={t}"),
        format!("{tomo}?token={t}"),
        format!("/api/slice?vol=/etc/passwd&token={t}"),
        format!("/api/slice?vol=../phantom.mrc&token={t}"),
        format!("/api/slice?vol=prob:../../etc/passwd&token={t}"),
        format!("/api/file?path=/etc/passwd&token={t}"),
        format!("/Cargo.toml?token={t}"),
    ] {
        let (code, body) = http_get(s.port(), &target);
        assert_eq!(code, 404, "{target}: {}", String::from_utf8_lossy(&body));
    }
    // Saving takes a format, never a path.
    assert!(s
        .viewer()
        .save_path(capsid_io::particles::Format::Csv)
        .starts_with(ph.dir.path()));
}

#[test]
fn raw_slices_show_the_sphere_where_it_is() {
    let ph = phantom();
    let s = start(&ph);
    let t = s.token().to_string();
    let [nx, ny, nz] = SHAPE_XYZ;
    let [cx, cy, cz] = SPHERE.map(|v| v as usize);
    // XY at the sphere's z: dark centre, bright elsewhere; far slice: no sphere.
    let get = |axis: &str, index: usize| {
        let (code, b) = http_get(
            s.port(),
            &format!("/api/slice?vol=tomo&axis={axis}&index={index}&fmt=raw&token={t}"),
        );
        assert_eq!(code, 200);
        b
    };
    let xy = get("z", cz);
    assert_eq!(xy.len(), nx * ny);
    assert!(xy[cy * nx + cx] < 10, "centre {}", xy[cy * nx + cx]);
    assert!(xy[cy * nx + cx - 10] > 40);
    let far = get("z", 5);
    assert!(far[cy * nx + cx] > 40);
    let xz = get("y", cy);
    assert_eq!(xz.len(), nx * nz);
    assert!(xz[cz * nx + cx] < 10);
    let yz = get("x", cx);
    assert_eq!(yz.len(), ny * nz);
    assert!(yz[cz * ny + cy] < 10);
    assert!(yz[cz * ny + cy + 10] > 40);
    let lab = http_get(
        s.port(),
        &format!("/api/slice?vol=labels&axis=z&index={cz}&fmt=raw&token={t}"),
    )
    .1;
    assert_eq!(lab[cy * nx + cx], 1);
    assert_eq!(lab[0], 0);
    // PNG by default.
    let (code, png) = http_get(
        s.port(),
        &format!("/api/slice?axis=z&index=3&slab=3&sigma=1&token={t}"),
    );
    assert_eq!(code, 200);
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn picks_match_save_and_auto_centre() {
    let ph = phantom();
    let truth = ph.dir.path().join("truth.csv");
    std::fs::write(
        &truth,
        format!(
            "class,x,y,z\nball,{},{},{}\nball,10,10,10\n",
            SPHERE[0], SPHERE[1], SPHERE[2]
        ),
    )
    .unwrap();
    let mut cfg = ViewConfig::new(&ph.tomo);
    cfg.classes = Some(ph.classes.clone());
    cfg.picks = vec![ph.picks.clone()];
    cfg.truth = Some(truth);
    let v = Viewer::open(cfg).unwrap();
    // The pick 1 voxel off the sphere is within 0.5 × 8 voxels: TP; the truth at (10,10,10) is missed.
    let j = v.picks_json();
    assert_eq!(j["picks"][0]["status"], "tp");
    assert_eq!(j["missed"].as_array().unwrap().len(), 1);
    assert_eq!(j["counts"]["ball"]["fn"], 1);
    // Auto-centre: a click 3 voxels off finds the dark sphere's centre.
    let c = v.auto_centre(SPHERE[0] + 3.0, SPHERE[1] - 2.0, SPHERE[2] + 1.0, 8.0, true);
    for a in 0..3 {
        assert!((c[a] - SPHERE[a]).abs() <= 1.0, "{c:?}");
    }
    // Save over the opened file keeps a backup of the original.
    let original = std::fs::read(&ph.picks).unwrap();
    let mut list: Vec<capsid_view::state::PickDto> =
        serde_json::from_value(v.picks_json()["picks"].clone()).unwrap();
    list.push(capsid_view::state::PickDto {
        class: "other".into(),
        x: 5.0,
        y: 6.0,
        z: 7.0,
        score: None,
        src: None,
        status: None,
    });
    // Classes outside the table are refused (a class can become part of a copick file name).
    let mut bad = list.clone();
    bad[0].class = "../../evil".into();
    assert!(v.set_picks(bad).is_err());
    let j = v.set_picks(list).unwrap();
    assert_eq!(j["picks"][1]["status"], "fp");
    let written = v.save(capsid_io::particles::Format::Star).unwrap();
    assert_eq!(written, vec![ph.picks.clone()]);
    assert_eq!(
        std::fs::read(ph.dir.path().join("picks.star.bak")).unwrap(),
        original
    );
    let back = capsid_io::particles::read_particles(&ph.picks, &Default::default()).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[1].class, "other");
    assert_eq!(back[0].score, Some(0.87));
    // A second save keeps the first backup (the original).
    v.save(capsid_io::particles::Format::Star).unwrap();
    assert_eq!(
        std::fs::read(ph.dir.path().join("picks.star.bak")).unwrap(),
        original
    );
    // CSV and copick beside it.
    v.save(capsid_io::particles::Format::Csv).unwrap();
    let csv = ph.dir.path().join("picks.csv");
    assert!(csv.exists());
    // Another writer (here: a process of another host) holds the list: the save is refused
    // with its name and the file is left as it was.
    let lock = capsid_core::guard::lock_path(&csv);
    std::fs::write(&lock, "host=another-host\npid=1\n").unwrap();
    let before = std::fs::read(&csv).unwrap();
    let err = v
        .save(capsid_io::particles::Format::Csv)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("being written by process 1 on host another-host"),
        "{err}"
    );
    assert_eq!(std::fs::read(&csv).unwrap(), before);
    assert!(lock.exists(), "another host's lock is never swept");
    std::fs::remove_file(&lock).unwrap();
    v.save(capsid_io::particles::Format::Csv).unwrap();
    assert!(!lock.exists(), "the save's own lock is released");
    let files = v.save(capsid_io::particles::Format::CopickJson).unwrap();
    assert_eq!(files.len(), 2);
    assert!(ph.dir.path().join("picks_ball.json").exists());
}
