//! The HTTP side: 127.0.0.1 only, a token on every request, a fixed set of routes.

use crate::state::{PickDto, SliceParams, Viewer};
use crate::volume::Axis;
use crate::ViewError;
use capsid_io::particles::Format;
use rand::Rng;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Header, Method, Request, Response, Server};

const INDEX_HTML: &str = include_str!("../web/index.html");
const VIEW_JS: &str = include_str!("../web/view.js");
const VIEW_CSS: &str = include_str!("../web/view.css");
/// Largest request body accepted (a pick list).
const MAX_BODY: usize = 64 << 20;
const WORKERS: usize = 4;

/// A running viewer: the server threads and counters.
pub struct ViewServer {
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    port: u16,
    token: String,
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    viewer: Arc<Viewer>,
}

struct Shared {
    viewer: Arc<Viewer>,
    token: String,
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl ViewServer {
    /// Starts serving `viewer` on 127.0.0.1:`port` (0 = any free port) with a fresh random token.
    pub fn start(viewer: Viewer, port: u16) -> Result<ViewServer, ViewError> {
        let cannot =
            |e: String| ViewError::Invalid(format!("cannot listen on 127.0.0.1:{port}: {e}"));
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| cannot(e.to_string()))?;
        no_delay(&listener);
        let server = Server::from_listener(listener, None).map_err(|e| cannot(e.to_string()))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .unwrap_or(port);
        let mut rng = rand::thread_rng();
        let token: String = (0..32)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect();
        let server = Arc::new(server);
        let viewer = Arc::new(viewer);
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..WORKERS {
            let (server, stop) = (server.clone(), stop.clone());
            let shared = Shared {
                viewer: viewer.clone(),
                token: token.clone(),
                bytes: bytes.clone(),
                requests: requests.clone(),
            };
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv() {
                        Ok(req) => shared.handle(req),
                        Err(_) => break,
                    }
                }
            }));
        }
        Ok(ViewServer {
            server,
            threads,
            stop,
            port,
            token,
            bytes,
            requests,
            viewer,
        })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The session token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The page's URL, token included.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    /// Response body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The session state (picks as edited so far).
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// Stops the server threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ViewServer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Sets TCP_NODELAY on the listening socket (Linux hands it down to accepted connections).
/// tiny_http writes a response's header and body separately; with Nagle's algorithm the body
/// waited for the client's delayed ACK: 40 ms per slice on loopback.
#[cfg(unix)]
fn no_delay(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a valid socket fd with a pointer to an int and its size.
    unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(unix))]
fn no_delay(_listener: &std::net::TcpListener) {}

/// Decodes `%XX` and `+` in a query component.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a request URL into its path and query parameters.
pub(crate) fn split_url(url: &str) -> (String, HashMap<String, String>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let params = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (url_decode(k), url_decode(v))
        })
        .collect();
    (path.to_string(), params)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

type Reply = (u16, &'static str, Vec<u8>, Vec<(&'static str, String)>);

fn text(code: u16, msg: impl Into<String>) -> Reply {
    (
        code,
        "text/plain; charset=utf-8",
        msg.into().into_bytes(),
        vec![],
    )
}

fn json(v: &serde_json::Value) -> Reply {
    (200, "application/json", v.to_string().into_bytes(), vec![])
}

impl Shared {
    fn handle(&self, mut req: Request) {
        let (path, q) = split_url(req.url());
        let authorised = q
            .get("token")
            .map(|t| constant_time_eq(t, &self.token))
            .unwrap_or(false);
        let (code, ctype, body, extra) = if !authorised {
            text(
                403,
                "403 forbidden: this page needs the token printed by `capsid view`\n",
            )
        } else {
            let method = req.method().clone();
            let mut body = Vec::new();
            if method == Method::Post {
                let _ = req
                    .as_reader()
                    .take(MAX_BODY as u64 + 1)
                    .read_to_end(&mut body);
            }
            if body.len() > MAX_BODY {
                text(413, "request too large")
            } else {
                self.route(&method, &path, &q, &body)
            }
        };
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
        // Content-Length, never chunked: one body write, and the client knows the size up front.
        let mut resp = Response::from_data(body)
            .with_status_code(code)
            .with_chunked_threshold(usize::MAX);
        let mut headers = vec![
            ("Content-Type", ctype.to_string()),
            ("X-Content-Type-Options", "nosniff".into()),
            ("Referrer-Policy", "no-referrer".into()),
        ];
        if !extra.iter().any(|(k, _)| *k == "Cache-Control") {
            headers.push(("Cache-Control", "no-store".into()));
        }
        headers.extend(extra);
        for (k, v) in headers {
            if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp = resp.with_header(h);
            }
        }
        let _ = req.respond(resp);
    }

    fn route(
        &self,
        method: &Method,
        path: &str,
        q: &HashMap<String, String>,
        body: &[u8],
    ) -> Reply {
        let v = &*self.viewer;
        match (method, path) {
            (Method::Get, "/") | (Method::Get, "/index.html") => {
                let page = INDEX_HTML
                    .replacen("/*CSS*/", VIEW_CSS, 1)
                    .replacen("//JS", VIEW_JS, 1);
                (200, "text/html; charset=utf-8", page.into_bytes(), vec![])
            }
            (Method::Get, "/api/info") => json(&v.info_json()),
            (Method::Get, "/api/slice") => self.slice(q),
            (Method::Get, "/api/picks") => json(&v.picks_json()),
            (Method::Post, "/api/picks") => {
                #[derive(serde::Deserialize)]
                struct Body {
                    picks: Vec<PickDto>,
                }
                match serde_json::from_slice::<Body>(body) {
                    Ok(b) => match v.set_picks(b.picks) {
                        Ok(j) => json(&j),
                        Err(e) => text(400, e.to_string()),
                    },
                    Err(e) => text(400, format!("bad pick list: {e}")),
                }
            }
            (Method::Post, "/api/save") => {
                let format = match q.get("format").map(String::as_str).unwrap_or("star") {
                    "star" => Format::Star,
                    "csv" => Format::Csv,
                    "copick" | "json" => Format::CopickJson,
                    other => {
                        return text(400, format!("unknown format '{other}' (star, csv, copick)"))
                    }
                };
                match v.save(format) {
                    Ok(files) => {
                        let names: Vec<String> =
                            files.iter().map(|p| p.display().to_string()).collect();
                        json(&serde_json::json!({"written": names, "count": v.picks().len()}))
                    }
                    Err(e) => text(500, e.to_string()),
                }
            }
            (Method::Get, "/api/centre") => {
                let f = |k: &str| {
                    q.get(k)
                        .and_then(|s| s.parse::<f64>().ok())
                        .filter(|x| x.is_finite())
                };
                match (f("x"), f("y"), f("z"), f("r")) {
                    (Some(x), Some(y), Some(z), Some(r)) => {
                        let dark = q.get("polarity").map(String::as_str) != Some("bright");
                        let [cx, cy, cz] = v.auto_centre(x, y, z, r, dark);
                        json(&serde_json::json!({"x": cx, "y": cy, "z": cz}))
                    }
                    _ => text(400, "centre needs x, y, z and r"),
                }
            }
            (Method::Get, _) | (Method::Post, _) => text(404, "404 not found\n"),
            _ => text(405, "method not allowed\n"),
        }
    }

    fn slice(&self, q: &HashMap<String, String>) -> Reply {
        let v = &*self.viewer;
        let id = q.get("vol").map(String::as_str).unwrap_or("tomo");
        let Some(vol) = v.volume(id) else {
            return text(404, format!("no volume '{id}'"));
        };
        let Some(axis) = Axis::parse(q.get("axis").map(String::as_str).unwrap_or("z")) else {
            return text(400, "axis must be z, y or x");
        };
        let num = |k: &str, d: f64| {
            q.get(k)
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|x| x.is_finite())
                .unwrap_or(d)
        };
        let n = vol.len_along(axis);
        let index = num("index", (n / 2) as f64)
            .round()
            .clamp(0.0, n.saturating_sub(1) as f64) as usize;
        let t0 = std::time::Instant::now();
        let (w, h, px) = if id == "tomo" {
            let p = SliceParams {
                axis,
                index,
                slab: num("slab", 1.0).clamp(1.0, 257.0) as usize,
                sigma: num("sigma", 0.0).clamp(0.0, 20.0) as f32,
                lo: num("lo", 1.0).clamp(0.0, 100.0) as f32,
                hi: num("hi", 99.0).clamp(0.0, 100.0) as f32,
                per_slice: q.get("contrast").map(String::as_str) == Some("slice"),
                invert: q.get("invert").map(String::as_str) == Some("1"),
            };
            v.render_tomo(&p)
        } else {
            match v.render_overlay(id, axis, index) {
                Some(r) => r,
                None => return text(404, "no such volume"),
            }
        };
        let raw = q.get("fmt").map(String::as_str) == Some("raw");
        let (ctype, body) = if raw {
            ("application/octet-stream", px)
        } else {
            ("image/png", crate::render::encode_png_gray(w, h, &px))
        };
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        (
            200,
            ctype,
            body,
            vec![
                ("Cache-Control", "private, max-age=3600".into()),
                ("X-Width", w.to_string()),
                ("X-Height", h.to_string()),
                ("Server-Timing", format!("render;dur={ms:.1}")),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_decode() {
        let (p, q) = split_url("/api/slice?vol=prob%3Aribo+some&token=ab&x");
        assert_eq!(p, "/api/slice");
        assert_eq!(q["vol"], "prob:ribo some");
        assert_eq!(q["token"], "ab");
        assert_eq!(q["x"], "");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%4"), "%4");
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
