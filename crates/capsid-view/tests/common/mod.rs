//! Shared by the viewer's tests: a phantom tomogram, raw HTTP requests, and a small Chrome
//! DevTools Protocol client (headless Chromium over a WebSocket).
#![allow(dead_code)]

use capsid_core::{Particle, Volume};
use capsid_io::mrc::{write_labels, write_volume, LabelMode, MrcMode};
use capsid_io::particles::{write_particles, WriteOptions};
use ndarray::Array3;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Phantom: 64 × 48 × 40 voxels, background uniform noise in [-0.1, 0.1], one dark sphere
/// (density -1) of radius 8 at SPHERE (1.7 % of the voxels: inside the 1 % contrast percentile).
pub const SHAPE_XYZ: [usize; 3] = [64, 48, 40];
pub const SPHERE: [f64; 3] = [40.0, 20.0, 25.0];
pub const RADIUS: f64 = 8.0;

pub struct Phantom {
    pub dir: tempfile::TempDir,
    pub tomo: PathBuf,
    pub labels: PathBuf,
    pub classes: PathBuf,
    pub picks: PathBuf,
    pub volume_bytes: u64,
}

pub fn phantom() -> Phantom {
    let dir = tempfile::tempdir().unwrap();
    let [nx, ny, nz] = SHAPE_XYZ;
    let mut seed: u64 = 12345;
    let mut data = Array3::<f32>::zeros((nz, ny, nx));
    let mut labels = Array3::<u8>::zeros((nz, ny, nx));
    for ((z, y, x), v) in data.indexed_iter_mut() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((seed >> 33) as f64 / (1u64 << 31) as f64) as f32; // [0, 1)
        *v = (u - 0.5) * 0.2;
        let d2 = (x as f64 - SPHERE[0]).powi(2)
            + (y as f64 - SPHERE[1]).powi(2)
            + (z as f64 - SPHERE[2]).powi(2);
        if d2 <= RADIUS * RADIUS {
            *v -= 1.0;
            labels[[z, y, x]] = 1;
        }
    }
    let tomo = dir.path().join("phantom.mrc");
    write_volume(&tomo, &Volume::new(data, 10.0), MrcMode::Float32).unwrap();
    let lab = dir.path().join("phantom_labels.mrc");
    write_labels(&lab, &Volume::new(labels, 10.0), LabelMode::Uint8Mode0).unwrap();
    let classes = dir.path().join("classes.toml");
    std::fs::write(
        &classes,
        "[[class]]\nname = \"ball\"\nlabel = 1\nradius_vox = 8.0\n\n\
         [[class]]\nname = \"other\"\nlabel = 2\nradius_vox = 4.0\n",
    )
    .unwrap();
    let picks = dir.path().join("picks.star");
    let mut p = Particle::new("ball", SPHERE[0] + 1.0, SPHERE[1], SPHERE[2]);
    p.score = Some(0.87);
    write_particles(&picks, &[p], &WriteOptions::default()).unwrap();
    Phantom {
        volume_bytes: (nx * ny * nz * 4) as u64,
        dir,
        tomo,
        labels: lab,
        classes,
        picks,
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1:`port`; returns (status, body).
pub fn http_get(port: u16, target: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response without header end");
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

/// The system Chromium, if installed. Without it the browser tests skip, except under CI=true,
/// where they fail (CI installs it: see .ci/run).
pub fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("CAPSID_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if p.exists() {
        return Some(p);
    }
    let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0");
    if ci.unwrap_or(false) {
        panic!(
            "CI is set but {} is missing: install Debian's chromium (apt-get install -y chromium)",
            p.display()
        );
    }
    // Written to the process's stderr directly, so that the test harness's capture does not
    // hide it.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: browser test needs headless Chromium at {} (apt-get install -y chromium); \
         it runs (and must pass) under CI=true",
        p.display()
    );
    None
}

/// A headless Chromium with one page attached over the DevTools protocol.
pub struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `chrome` headless (as root: --no-sandbox) with a fresh profile and a
    /// `width × height` page.
    pub fn launch(chrome: &Path, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chrome)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(i) = line.find("ws://") {
                        let _ = tx.send(line[i..].trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium printed no DevTools URL within 60 s");
        let (mut ws, _) = tungstenite::connect(url.as_str()).expect("DevTools websocket");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_mut() {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 1,
            _profile: profile,
        };
        let t = b.call_browser(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let target = t["targetId"].as_str().unwrap().to_string();
        let a = b.call_browser(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target, "flatten": true}),
        );
        b.session = a["sessionId"].as_str().unwrap().to_string();
        b.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        b.call("Page.enable", serde_json::json!({}));
        b
    }

    fn send(
        &mut self,
        method: &str,
        params: serde_json::Value,
        session: bool,
    ) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = serde_json::Value::String(self.session.clone());
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().expect("DevTools connection");
            let tungstenite::Message::Text(t) = m else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send(method, params, false)
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.send(method, params, true)
    }

    /// Evaluates `expr` in the page (awaiting promises) and returns its JSON value.
    pub fn eval(&mut self, expr: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("page threw on `{expr}`: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is `true` (panics after `secs`).
    pub fn wait_for(&mut self, expr: &str, secs: f64) {
        let t0 = Instant::now();
        loop {
            if self.eval(expr) == serde_json::Value::Bool(true) {
                return;
            }
            if t0.elapsed().as_secs_f64() > secs {
                let errs = self.eval("window.capsidView ? JSON.stringify(capsidView.S.errors) : document.body.innerText");
                panic!("timed out after {secs} s waiting for `{expr}` (page: {errs})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", serde_json::json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", 30.0);
    }

    /// A left click at page coordinates.
    pub fn click(&mut self, x: f64, y: f64) {
        for ty in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({"type": ty, "x": x, "y": y, "button": if ty == "mouseMoved" { "none" } else { "left" }, "clickCount": 1}),
            );
        }
    }

    /// A left-button drag from (x0, y0) to (x1, y1) in a few moves.
    pub fn drag(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        let ev = |ty: &str, x: f64, y: f64, button: &str| serde_json::json!({"type": ty, "x": x, "y": y, "button": button, "buttons": if button == "left" || ty == "mouseMoved" { 1 } else { 0 }, "clickCount": 1});
        self.call("Input.dispatchMouseEvent", ev("mouseMoved", x0, y0, "none"));
        self.call(
            "Input.dispatchMouseEvent",
            ev("mousePressed", x0, y0, "left"),
        );
        for k in 1..=5 {
            let t = k as f64 / 5.0;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            self.call("Input.dispatchMouseEvent", ev("mouseMoved", x, y, "left"));
        }
        self.call(
            "Input.dispatchMouseEvent",
            ev("mouseReleased", x1, y1, "left"),
        );
    }

    /// Moves the mouse to (x, y) without buttons.
    pub fn hover(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            serde_json::json!({"type": "mouseMoved", "x": x, "y": y, "button": "none"}),
        );
    }

    /// A key press; `modifiers`: 2 = Ctrl, 8 = Shift.
    pub fn key(&mut self, key: &str, code: &str, key_code: u32, modifiers: u32) {
        let text = if key.chars().count() == 1 && modifiers & 2 == 0 {
            key.to_string()
        } else {
            String::new()
        };
        self.call(
            "Input.dispatchKeyEvent",
            serde_json::json!({"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers, "text": text}),
        );
        self.call(
            "Input.dispatchKeyEvent",
            serde_json::json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers}),
        );
    }

    /// A PNG screenshot of the page.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64_decode as b64;
        let r = self.call(
            "Page.captureScreenshot",
            serde_json::json!({"format": "png"}),
        );
        b64(r["data"].as_str().unwrap())
    }
}

/// Standard base64 decoding (DevTools screenshots).
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
