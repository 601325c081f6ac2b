//! The page in a real browser (headless Chromium over the DevTools protocol): the sphere in the
//! right place on the right slice (pixels), the label overlay, a click adds a pick of the chosen
//! class, Ctrl+S writes a STAR that capsid-io reads back, bytes of a slice-stepping session, the
//! token. Skips without /usr/bin/chromium unless CI is set (then fails).

mod common;

use capsid_view::{ViewConfig, ViewServer, Viewer};
use common::*;
use std::time::Instant;

/// RGBA of the canvas pixel under voxel (x, y, z) of the current plane.
fn pixel(b: &mut Browser, p: [f64; 3]) -> [i64; 4] {
    let v = b.eval(&format!(
        "(() => {{ const c = document.getElementById('view'); const r = c.getBoundingClientRect();
           const [sx, sy] = capsidView.screenOf({}, {}, {});
           return Array.from(c.getContext('2d').getImageData(Math.round(sx - r.left), Math.round(sy - r.top), 1, 1).data); }})()",
        p[0], p[1], p[2]
    ));
    let a: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    [a[0], a[1], a[2], a[3]]
}

fn idle(b: &mut Browser) {
    b.wait_for("!!window.capsidView && capsidView.idle()", 30.0);
}

#[test]
fn browser_session() {
    let Some(chrome) = chromium() else {
        return;
    };
    let ph = phantom();
    let mut cfg = ViewConfig::new(&ph.tomo);
    cfg.labels = Some(ph.labels.clone());
    cfg.classes = Some(ph.classes.clone());
    cfg.picks = vec![ph.picks.clone()];
    let server = ViewServer::start(Viewer::open(cfg).unwrap(), 0).unwrap();
    let url = server.url();
    let t_launch = Instant::now();
    let mut b = Browser::launch(&chrome, 1000, 700);
    eprintln!("chromium up in {:.2} s", t_launch.elapsed().as_secs_f64());

    // The token is required, in the browser too.
    let bare = format!("http://127.0.0.1:{}/", server.port());
    b.navigate(&bare);
    let text = b
        .eval("document.body.innerText")
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(text.contains("403"), "page without token showed: {text}");

    let t0 = Instant::now();
    b.navigate(&url);
    idle(&mut b);
    let first = t0.elapsed().as_secs_f64();
    let [cx, cy, cz] = SPHERE;
    assert_eq!(
        b.eval("capsidView.S.index.z"),
        serde_json::json!(SHAPE_XYZ[2] / 2)
    );

    // Overlay off first: plain grey values.
    b.eval("capsidView.S.overlays[0].checkbox.click()");
    idle(&mut b);
    b.eval(&format!("capsidView.setIndex({cz})"));
    idle(&mut b);
    let centre = pixel(&mut b, SPHERE);
    let beside = pixel(&mut b, [cx - 12.0, cy, cz]);
    assert!(
        centre[0] < 30 && centre[0] == centre[1],
        "sphere centre not dark: {centre:?}"
    );
    assert!(beside[0] > 60, "background not brighter: {beside:?}");
    // The right slice: 15 slices away there is no sphere.
    b.eval(&format!("capsidView.setIndex({})", cz - 15.0));
    idle(&mut b);
    let off = pixel(&mut b, [cx, cy, cz - 15.0]);
    assert!(off[0] > 60, "sphere seen on the wrong slice: {off:?}");
    // XZ plane through the sphere, with keyboard: 'y' selects XZ.
    b.key("y", "KeyY", 89, 0);
    idle(&mut b);
    b.eval(&format!("capsidView.setIndex({cy})"));
    idle(&mut b);
    assert!(pixel(&mut b, SPHERE)[0] < 30, "sphere not dark in XZ");
    assert!(pixel(&mut b, [cx, cy, cz - 12.0])[0] > 60);
    b.key("z", "KeyZ", 90, 0);
    idle(&mut b);
    b.eval(&format!("capsidView.setIndex({cz})"));
    idle(&mut b);

    // The label overlay colours the sphere with its class colour (label 1: red).
    let plain = pixel(&mut b, SPHERE);
    b.eval("capsidView.S.overlays[0].checkbox.click()");
    idle(&mut b);
    let tinted = pixel(&mut b, SPHERE);
    assert!(
        tinted[0] - tinted[1] > 40 && plain[0] - plain[1] < 5,
        "overlay: {plain:?} → {tinted:?}"
    );
    let bg = pixel(&mut b, [cx - 12.0, cy, cz]);
    assert!(
        (bg[0] - bg[1]).abs() < 5,
        "overlay outside the sphere: {bg:?}"
    );

    // The pick read from picks.star is drawn: its circle crosses the plane with its class colour.
    assert_eq!(b.eval("capsidView.S.picks.length"), serde_json::json!(1));

    // Choose class 2 ("other") with the keyboard, click to add a pick.
    b.key("2", "Digit2", 50, 0);
    assert_eq!(b.eval("capsidView.S.active"), serde_json::json!("other"));
    let target = [20.0, 30.0, cz];
    let sp = b.eval(&format!(
        "capsidView.screenOf({}, {}, {})",
        target[0], target[1], target[2]
    ));
    let (sx, sy) = (sp[0].as_f64().unwrap(), sp[1].as_f64().unwrap());
    b.click(sx, sy);
    idle(&mut b);
    let picks = b.eval("capsidView.S.picks");
    let list = picks.as_array().unwrap();
    assert_eq!(list.len(), 2, "{picks}");
    let p = &list[1];
    assert_eq!(p["class"], "other");
    for (k, want) in ["x", "y", "z"].iter().zip(target) {
        let got = p[*k].as_f64().unwrap();
        assert!((got - want).abs() <= 0.6, "{k}: {got} vs {want}");
    }
    // Drag the new pick 4 voxels right and 3 down.
    let to = b.eval(&format!(
        "capsidView.screenOf({}, {}, {})",
        target[0] + 4.0,
        target[1] + 3.0,
        target[2]
    ));
    b.drag(sx, sy, to[0].as_f64().unwrap(), to[1].as_f64().unwrap());
    idle(&mut b);
    let moved = b.eval("capsidView.S.picks[1]");
    assert!(
        (moved["x"].as_f64().unwrap() - target[0] - 4.0).abs() <= 0.6
            && (moved["y"].as_f64().unwrap() - target[1] - 3.0).abs() <= 0.6
            && (moved["z"].as_f64().unwrap() - target[2]).abs() < 1e-9,
        "drag: {moved}"
    );
    assert_eq!(b.eval("capsidView.S.picks.length"), serde_json::json!(2));
    // Undo the move (Ctrl+Z), checked below with the add's undo/redo.
    b.key("z", "KeyZ", 90, 2);
    idle(&mut b);
    assert!((b.eval("capsidView.S.picks[1].x").as_f64().unwrap() - target[0]).abs() <= 0.6);
    // Hovering the pick read from the file shows its class and score.
    let h = b.eval(&format!(
        "capsidView.screenOf({}, {}, {})",
        cx + 1.0,
        cy,
        cz
    ));
    b.hover(h[0].as_f64().unwrap(), h[1].as_f64().unwrap());
    let tip = b.eval(
        "document.getElementById('tip').hidden ? '' : document.getElementById('tip').textContent",
    );
    let tip = tip.as_str().unwrap_or("");
    assert!(
        tip.contains("ball") && tip.contains("0.870"),
        "tooltip: {tip:?}"
    );
    // Undo and redo with the keyboard.
    b.key("z", "KeyZ", 90, 2);
    idle(&mut b);
    assert_eq!(b.eval("capsidView.S.picks.length"), serde_json::json!(1));
    b.key("Z", "KeyZ", 90, 2 | 8);
    idle(&mut b);
    assert_eq!(b.eval("capsidView.S.picks.length"), serde_json::json!(2));

    // Ctrl+S saves STAR over the opened file (keeping a backup); capsid-io reads the pick back.
    let original = std::fs::read(&ph.picks).unwrap();
    b.key("s", "KeyS", 83, 2);
    b.wait_for(
        "document.getElementById('saveInfo').textContent.startsWith('saved')",
        20.0,
    );
    let back = capsid_io::particles::read_particles(
        &ph.picks,
        &capsid_io::particles::ReadOptions {
            classes: Some(capsid_core::ClassTable::load(&ph.classes).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[1].class, "other");
    assert!((back[1].x - target[0]).abs() <= 0.6 && (back[1].y - target[1]).abs() <= 0.6);
    assert!((back[1].z - target[2]).abs() <= 0.6);
    assert_eq!(
        std::fs::read(ph.dir.path().join("picks.star.bak")).unwrap(),
        original
    );

    // A session of slice changes with the keyboard: bytes far below the volume's.
    let before = server.bytes_sent();
    let steps = 20;
    let t1 = Instant::now();
    for _ in 0..steps {
        b.key("ArrowUp", "ArrowUp", 38, 0);
        idle(&mut b);
    }
    let per_step_ms = t1.elapsed().as_secs_f64() * 1000.0 / steps as f64;
    let session = server.bytes_sent() - before;
    assert_eq!(
        b.eval("capsidView.S.index.z"),
        serde_json::json!((cz as usize + steps).min(SHAPE_XYZ[2] - 1))
    );
    let timings = b.eval("capsidView.S.timings.slice(-20)");
    let mut ts: Vec<f64> = timings
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    ts.sort_by(f64::total_cmp);
    eprintln!(
        "browser: first picture {:.0} ms (navigate → drawn), {} slice changes: {} bytes sent \
         (volume {} bytes, {:.1} %), median in-page slice load {:.1} ms, {:.1} ms per key step",
        first * 1000.0,
        steps,
        session,
        ph.volume_bytes,
        100.0 * session as f64 / ph.volume_bytes as f64,
        ts.get(ts.len() / 2).copied().unwrap_or(f64::NAN),
        per_step_ms
    );
    assert!(
        session < ph.volume_bytes / 3,
        "{session} bytes for {steps} slices of a {} byte volume",
        ph.volume_bytes
    );
    let rtt = b.eval(&format!(
        "(async () => {{ const ts = []; for (let i = 0; i < 10; i++) {{ const t = performance.now();
           await (await fetch('/api/info?token={}')).text(); ts.push(performance.now() - t); }}
           ts.sort((a, b) => a - b); return ts[5]; }})()",
        server.token()
    ));
    eprintln!("browser: median /api/info round trip {rtt} ms");
    // The page's own fetches without the token are refused too.
    let code = b.eval("fetch('/api/info').then(r => r.status)");
    assert_eq!(code, serde_json::json!(403));
    let code = b.eval(&format!(
        "fetch('/etc/passwd?token={}').then(r => r.status)",
        server.token()
    ));
    assert_eq!(code, serde_json::json!(404));
    assert_eq!(b.eval("capsidView.S.errors.length"), serde_json::json!(0));
    if let Some(out) = std::env::var_os("CAPSID_VIEW_SCREENSHOT") {
        std::fs::write(out, b.screenshot()).unwrap();
    }
}
