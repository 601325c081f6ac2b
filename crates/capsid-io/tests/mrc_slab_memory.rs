//! `read_slab` memory: reading a few sections of a large tomogram must not load the whole file.
//!
//! The tomograms are sparse files (header + `set_len`), cheap on disk. Peak resident memory is
//! read from /proc/self/status (VmHWM) before and after; on systems without /proc the test says
//! so and stops. The 2 GB version is `#[ignore]`d (run with `--ignored`); the small one always runs.

use capsid_io::mrc::{read_slab, MrcHeader};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// VmHWM is per process: keep the two tests from running at the same time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Peak resident set size of this process in bytes (VmHWM), if /proc is available.
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Writes a float32 MRC header for `shape_zyx` and extends the file sparsely to full length.
fn sparse_tomogram(path: &Path, shape_zyx: [usize; 3]) -> u64 {
    let h = MrcHeader::new(shape_zyx, 2, [10.0; 3], [0.0; 3]);
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&h.to_bytes()).unwrap();
    let len = 1024 + (shape_zyx.iter().product::<usize>() * 4) as u64;
    f.set_len(len).unwrap();
    len
}

/// Reads `z_len` sections from the middle of a sparse tomogram of `shape_zyx`; returns
/// (file bytes, slab bytes, peak RSS growth in bytes).
fn measure(shape_zyx: [usize; 3], z_len: usize) -> Option<(u64, u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.mrc");
    let file_len = sparse_tomogram(&p, shape_zyx);
    let before = peak_rss_bytes()?;
    let slab = read_slab(&p, shape_zyx[0] / 2, z_len).unwrap();
    let after = peak_rss_bytes()?;
    assert_eq!(slab.shape_zyx(), [z_len, shape_zyx[1], shape_zyx[2]]);
    assert!(slab.data.iter().all(|&v| v == 0.0));
    Some((
        file_len,
        (slab.data.len() * 4) as u64,
        after.saturating_sub(before),
    ))
}

#[test]
fn mrc_slab_of_256mb_file_uses_little_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((file, slab, grew)) = measure([64, 1024, 1024], 4) else {
        eprintln!("skipped: /proc/self/status not available");
        return;
    };
    println!(
        "file {} MB, slab {} MB, peak RSS grew {} MB",
        file >> 20,
        slab >> 20,
        grew >> 20
    );
    // The slab (16 MB) plus its mapped pages (16 MB) and slack; far below the 256 MB file.
    assert!(
        grew < 80 << 20,
        "peak RSS grew {} MB for a {} MB slab",
        grew >> 20,
        slab >> 20
    );
}

#[test]
#[ignore = "creates a 2 GB sparse file; run with --ignored"]
fn mrc_slab_of_2gb_tomogram_uses_little_memory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some((file, slab, grew)) = measure([512, 1024, 1024], 32) else {
        eprintln!("skipped: /proc/self/status not available");
        return;
    };
    println!(
        "file {} MB, slab {} MB, peak RSS grew {} MB",
        file >> 20,
        slab >> 20,
        grew >> 20
    );
    // 32 sections = 128 MB of f32 plus 128 MB of mapped file pages at most.
    assert!(
        grew < 400 << 20,
        "peak RSS grew {} MB for a {} MB slab",
        grew >> 20,
        slab >> 20
    );
}
