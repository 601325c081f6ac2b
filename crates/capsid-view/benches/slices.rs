//! `cargo bench -p capsid-view --bench slices`: the viewer's server side on a 512×512×200 float32
//! MRC (200 MiB, written once to a temporary folder).
//!
//! * `first_picture`: open the tomogram (map it), start the server, GET /api/info and the middle
//!   XY slice as PNG (global percentile contrast computed from the sample) over HTTP — what the
//!   page waits for before its first picture. Goal ≤ 1 s.
//! * `slice_change/*`: one more slice over HTTP (PNG), XY / XZ / YZ, and XY with a 5-slice slab
//!   and σ = 1.5 low-pass. Goal ≤ 100 ms.
//!
//! The file is in the page cache (just written): a cold read of a first slice adds the disk's
//! time for ~1 MiB (XY) to the whole file's pages (YZ reads one value per row).

use capsid_view::{ViewConfig, ViewServer, Viewer};
use criterion::{criterion_group, criterion_main, Criterion};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const NX: usize = 512;
const NY: usize = 512;
const NZ: usize = 200;

fn write_tomo(path: &Path) {
    // A float32 MRC written directly: a 1024-byte header then z, y, x values (noise + spheres).
    let mut h = capsid_io::mrc::MrcHeader::new([NZ, NY, NX], 2, [10.0; 3], [0.0; 3]);
    h.dmin = -3.0;
    h.dmax = 3.0;
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::new(f);
    w.write_all(&h.to_bytes()).unwrap();
    let mut seed: u64 = 1;
    let mut row = vec![0u8; NX * 4];
    for z in 0..NZ {
        for y in 0..NY {
            for x in 0..NX {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let mut v = ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
                let (dx, dy, dz) = (
                    (x % 64) as f32 - 32.0,
                    (y % 64) as f32 - 32.0,
                    (z % 50) as f32 - 25.0,
                );
                if dx * dx + dy * dy + dz * dz < 100.0 {
                    v -= 1.0;
                }
                row[x * 4..x * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
            w.write_all(&row).unwrap();
        }
    }
    w.flush().unwrap();
}

/// GET on a kept-alive connection; returns the body length.
fn get(s: &mut TcpStream, target: &str) -> usize {
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("content-length");
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&tmp[..n]);
            }
            return len;
        }
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let tomo = dir.path().join("tomo512.mrc");
    write_tomo(&tomo);
    let mut g = c.benchmark_group("view_512x512x200");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("first_picture", |b| {
        b.iter(|| {
            let server =
                ViewServer::start(Viewer::open(ViewConfig::new(&tomo)).unwrap(), 0).unwrap();
            let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
            let t = server.token().to_string();
            get(&mut s, &format!("/api/info?token={t}"));
            get(&mut s, &format!("/api/picks?token={t}"));
            let n = get(
                &mut s,
                &format!("/api/slice?vol=tomo&axis=z&index={}&token={t}", NZ / 2),
            );
            assert!(n > 1000);
            drop(s);
            server.shutdown();
        })
    });
    let server = ViewServer::start(Viewer::open(ViewConfig::new(&tomo)).unwrap(), 0).unwrap();
    let t = server.token().to_string();
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_nodelay(true).unwrap();
    get(&mut s, &format!("/api/slice?axis=z&index=1&token={t}"));
    get(
        &mut s,
        &format!("/api/slice?axis=z&index=1&slab=5&sigma=1.5&token={t}"),
    );
    let mut bytes = Vec::new();
    for (name, axis, n, extra) in [
        ("slice_change/xy", "z", NZ, ""),
        ("slice_change/xz", "y", NY, ""),
        ("slice_change/yz", "x", NX, ""),
        (
            "slice_change/xy_slab5_sigma1.5",
            "z",
            NZ,
            "&slab=5&sigma=1.5",
        ),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 37) % n;
                let len = get(
                    &mut s,
                    &format!("/api/slice?axis={axis}&index={i}{extra}&token={t}"),
                );
                bytes.push((name, len));
            })
        });
    }
    g.finish();
    for name in ["slice_change/xy", "slice_change/xz", "slice_change/yz"] {
        let v: Vec<usize> = bytes
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, l)| *l)
            .collect();
        if !v.is_empty() {
            eprintln!(
                "{name}: mean PNG {} bytes",
                v.iter().sum::<usize>() / v.len()
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
