//! Table-driven bad-input suite (issue 13): every row is a command that must fail with exit code
//! 2 and exactly one stderr line (`error: …` holding a fragment), leaving every file of the
//! fixture folder byte for byte as it was: inputs unchanged, no temporary or lock file left, no
//! half-written output and no empty folder created.

use capsid_core::Volume;
use capsid_io::mrc::{self, LabelMode, MrcMode};
use ndarray::Array3;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

const CLASSES: &str = "[[class]]\nname = \"ball\"\nlabel = 1\nradius_vox = 2.0\n\n\
[[class]]\nname = \"dud\"\nlabel = 2\nradius_a = 30.0\n";

/// Deterministic noise in [-1, 1).
fn noise(z: usize, y: usize, x: usize) -> f32 {
    let mut h =
        ((z as u64) << 40 | (y as u64) << 20 | x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 32;
    (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

const SHAPE: (usize, usize, usize) = (16, 24, 24);
const CENTRES: [[usize; 3]; 4] = [[6, 6, 6], [17, 8, 8], [8, 17, 9], [16, 16, 7]];

fn tomogram(voxel: f32, shape: (usize, usize, usize)) -> Volume<f32> {
    let data = Array3::from_shape_fn(shape, |(z, y, x)| {
        let mut v = noise(z, y, x);
        for c in CENTRES {
            let d2 = (x as f64 - c[0] as f64).powi(2)
                + (y as f64 - c[1] as f64).powi(2)
                + (z as f64 - c[2] as f64).powi(2);
            if d2 <= 4.0 {
                v += 2.0;
            }
        }
        v
    });
    Volume::new(data, voxel)
}

fn labels(voxel: f32, shape: (usize, usize, usize), extra: Option<u8>) -> Volume<u8> {
    let mut data = Array3::<u8>::zeros(shape);
    for (i, c) in CENTRES.iter().enumerate() {
        data[[c[2], c[1], c[0]]] = if i % 2 == 0 { 1 } else { 2 };
    }
    if let Some(v) = extra {
        data[[1, 1, 1]] = v;
    }
    Volume::new(data, voxel)
}

fn write_tomo(p: &Path, v: &Volume<f32>) {
    mrc::write_volume(p, v, MrcMode::Float32).unwrap();
}

fn write_labels(p: &Path, v: &Volume<u8>) {
    mrc::write_labels(p, v, LabelMode::Uint8Mode0).unwrap();
}

/// A 1024-byte MRC header whose dimensions imply more than 2^64 bytes of data.
fn overflowing_header() -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    for k in 0..3 {
        b[4 * k..4 * k + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    }
    b[12..16].copy_from_slice(&2i32.to_le_bytes());
    for k in 0..3 {
        b[64 + 4 * k..68 + 4 * k].copy_from_slice(&(k as i32 + 1).to_le_bytes());
    }
    b[208..212].copy_from_slice(b"MAP ");
    b[212] = 0x44;
    b[213] = 0x44;
    b
}

/// The fixture folder: tomograms, label maps, particle lists, class tables, a trained run and
/// existing results, plus a few links and a foreign lock.
fn fixture(d: &Path) {
    let w = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("classes.toml", CLASSES);
    w(
        "bad_class.toml",
        "[[class]]\nname = \"../x\"\nlabel = 1\nradius_vox = 2.0\n",
    );
    let mut shrec = String::new();
    for (i, c) in CENTRES.iter().enumerate() {
        let class = if i % 2 == 0 { "ball" } else { "dud" };
        shrec.push_str(&format!("{class} {} {} {} 0 0 0\n", c[0], c[1], c[2]));
    }
    w("p.txt", &shrec);
    w("evil.txt", "../evil 5 5 5 0 0 0\n");
    w("notmrc.mrc", "this is not an MRC file\n");
    w(
        "bad.pdb",
        "ATOM  garbage\nHETATM\x01\x02 nonsense 1e999 NaN\nEND\n",
    );
    w("existing.mrc", "an earlier result\n");
    w("existing.star", "an earlier result\n");
    w("sim_existing/reconstruction.mrc", "an earlier simulation\n");
    w("eval_existing/summary.json", "{}\n");
    w("data/class_table.toml", CLASSES);
    w("data/tomo_000/particle_locations.txt", &shrec);
    w("data/report/index.html", "<html></html>\n");
    std::fs::write(d.join("huge.mrc"), overflowing_header()).unwrap();

    write_tomo(&d.join("t.mrc"), &tomogram(10.0, SHAPE));
    write_tomo(
        &d.join("data/tomo_000/reconstruction.mrc"),
        &tomogram(10.0, SHAPE),
    );
    write_tomo(&d.join("t0.mrc"), &tomogram(0.0, SHAPE));
    write_labels(&d.join("labels.mrc"), &labels(10.0, SHAPE, None));
    write_labels(&d.join("labels0.mrc"), &labels(0.0, SHAPE, None));
    write_labels(&d.join("labels11.mrc"), &labels(11.0, SHAPE, None));
    write_labels(
        &d.join("labels_shape.mrc"),
        &labels(10.0, (16, 24, 20), None),
    );
    write_labels(&d.join("labels_unknown.mrc"), &labels(10.0, SHAPE, Some(7)));
    let prob = |vs: f32| {
        let l = labels(vs, SHAPE, None);
        l.with_data(l.data.mapv(|v| if v == 1 { 0.9f32 } else { 0.0 }))
    };
    write_tomo(&d.join("prob_ball.mrc"), &prob(10.0));
    write_tomo(&d.join("prob_dud11.mrc"), &prob(11.0));
    std::fs::create_dir_all(d.join("q")).unwrap();
    write_labels(&d.join("q/tomo_000_labels.mrc"), &labels(10.0, SHAPE, None));
    std::fs::create_dir_all(d.join("seg_existing")).unwrap();
    write_labels(
        &d.join("seg_existing/t_labels.mrc"),
        &labels(10.0, SHAPE, None),
    );
    #[cfg(unix)]
    {
        std::fs::hard_link(d.join("t.mrc"), d.join("hard.mrc")).unwrap();
        std::os::unix::fs::symlink(d.join("t.mrc"), d.join("sym.mrc")).unwrap();
        std::fs::hard_link(d.join("p.txt"), d.join("hard.txt")).unwrap();
    }
    // Another host's lock: never swept, always respected.
    w(
        ".capsid-lock-locked.mrc",
        "host=another-node.example\npid=1\noutput=locked.mrc\n",
    );
    // A trained run (tiny UNet) for the segment rows.
    let run = d.join("run");
    common::assert_ok(&common::capsid(&[
        "train",
        "--model",
        "unet",
        "--tomo",
        &s(&d.join("t.mrc")),
        "--particles",
        &s(&d.join("p.txt")),
        "--classes",
        &s(&d.join("classes.toml")),
        "--patch",
        "16",
        "--batch",
        "1",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--threads",
        "1",
        "--out",
        &s(&run),
    ]));
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Every file and folder under `d` (links not followed) with a hash of its content.
fn snapshot(d: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            if ft.is_dir() {
                "dir".hash(&mut h);
                stack.push(p.clone());
            } else if ft.is_symlink() {
                std::fs::read_link(&p).unwrap().hash(&mut h);
            } else {
                std::fs::read(&p).unwrap().hash(&mut h);
            }
            out.insert(p.strip_prefix(d).unwrap().to_path_buf(), h.finish());
        }
    }
    out
}

/// One row: the arguments (`{d}` is the fixture folder) and a fragment of the error line.
struct Row {
    args: &'static str,
    fragment: &'static str,
}

const fn row(args: &'static str, fragment: &'static str) -> Row {
    Row { args, fragment }
}

const MASK: &str = "mask --tomogram {d}/t.mrc --particles {d}/p.txt --classes {d}/classes.toml";
const EVAL: &str = "evaluate --picks {d}/p.txt --truth {d}/p.txt --classes {d}/classes.toml";

fn rows() -> Vec<Row> {
    vec![
        // ---- simulate
        row("simulate --preset tiny --out {d}/sim_existing", "already exists"),
        row("simulate --preset tiny --out {d}/new_sim --class-from-model {d}/bad.pdb:junk", "bad.pdb"),
        row("simulate --preset tiny --out {d}/new_sim --class-from-model {d}/missing.pdb", "missing.pdb"),
        row("simulate --preset tiny --out {d}/new_sim --shape-xyz 100000,100000,100000", "100000"),
        row("simulate --preset tiny --out {d}/new_sim --shape 48,96,96", "--shape-xyz 96,96,48"),
        row("simulate --preset tiny --out {d} --class-from-map {d}/t.mrc:blob", "holds the input"),
        row("simulate --preset no-such-preset --out {d}/new_sim", "no-such-preset"),
        // ---- mask
        row("{MASK} --out {d}/t.mrc", "overwrite the input"),
        row("{MASK} --out {d}/p.txt", "overwrite the input"),
        row("{MASK} --out {d}/classes.toml", "overwrite the input"),
        row("{MASK} --out {d}/l.mrc --instances {d}/t.mrc", "overwrite the input"),
        row("{MASK} --out {d}/l.mrc --instances {d}/l.mrc", "two different outputs"),
        row("{MASK} --out {d}/existing.mrc", "already exists"),
        row("{MASK} --out {d}/hard.mrc", "overwrite the input"),
        row("{MASK} --out {d}/sym.mrc", "overwrite the input"),
        row("{MASK} --out {d}/q/../t.mrc", "overwrite the input"),
        row("{MASK} --out {d}/locked.mrc", "another-node.example"),
        row("{MASK} --out {d}/new.mrc.gz", "uncompressed"),
        row("mask --shape 100000,100000,100000 --voxel-size 10 --particles {d}/p.txt --classes {d}/classes.toml --out {d}/new.mrc", "memory"),
        row("mask --shape 200,200,200 --voxel-size 10 --particles {d}/p.txt --classes {d}/classes.toml --out {d}/new.mrc --max-volume-bytes 1000000", "memory"),
        row("mask --tomogram {d}/t0.mrc --particles {d}/p.txt --classes {d}/classes.toml --out {d}/new.mrc", "voxel size"),
        row("mask --tomogram {d}/t.mrc --particles {d}/p.txt --classes {d}/bad_class.toml --out {d}/new.mrc", "file name"),
        row("mask --tomogram {d}/huge.mrc --particles {d}/p.txt --classes {d}/classes.toml --out {d}/new.mrc", "overflows"),
        row("mask --tomogram {d}/notmrc.mrc --particles {d}/p.txt --classes {d}/classes.toml --out {d}/new.mrc", "notmrc.mrc"),
        // ---- prep
        row("prep {d}/t.mrc {d}/t.mrc", "overwrite the input"),
        row("prep {d}/t.mrc {d}/hard.mrc", "overwrite the input"),
        row("prep {d}/t.mrc {d}/sym.mrc", "overwrite the input"),
        row("prep {d}/t.mrc {d}/existing.mrc", "already exists"),
        row("prep {d}/t0.mrc {d}/new.mrc --lowpass-a 40", "voxel size"),
        row("prep {d}/t.mrc {d}/new.mrc.gz", "uncompressed"),
        row("prep {d}/huge.mrc {d}/new.mrc", "overflows"),
        row("prep {d}/notmrc.mrc {d}/new.mrc", "notmrc.mrc"),
        // ---- train
        row("train --model unet --data {d}/data --out {d}/data --patch 16", "overwrite the input"),
        row("train --model unet --data {d}/data --out {d}/run --patch 16", "--resume"),
        row("train --model unet --data {d}/data --out {d}/new_run --threads 0", "--threads"),
        row("train --model unet --tomo {d}/t.mrc --labels {d}/labels_unknown.mrc --classes {d}/classes.toml --out {d}/new_run --patch 16", "7"),
        row("train --model unet --tomo {d}/t.mrc --labels {d}/labels11.mrc --classes {d}/classes.toml --out {d}/new_run --patch 16", "voxel size"),
        row("train --model unet --tomo {d}/t.mrc --labels {d}/labels_shape.mrc --classes {d}/classes.toml --out {d}/new_run --patch 16", "shape"),
        row("train --model unet --tomo {d}/t.mrc --particles {d}/p.txt --classes {d}/bad_class.toml --out {d}/new_run", "file name"),
        row("train --model unet --tomo {d}/t.mrc --particles {d}/p.txt --classes {d}/classes.toml --out {d}/t.mrc", "overwrite the input"),
        // ---- segment
        row("segment {d}/run {d}/data/tomo_000/reconstruction.mrc {d}/q/tomo_000_labels.mrc --out {d}/q", "overwrite the input"),
        row("segment {d}/run {d}/t.mrc --out {d}/seg_existing", "already exists"),
        row("segment {d}/run {d}/t.mrc --out {d}/new_seg --threads 0", "--threads"),
        row("segment {d}/run {d}/t.mrc --out {d}/new_seg --patch 16 --overlap 9", "half the patch"),
        row("segment {d}/run {d}/notmrc.mrc --out {d}/new_seg", "notmrc.mrc"),
        row("segment {d}/run {d}/huge.mrc --out {d}/new_seg/deeper", "overflows"),
        row("segment {d}/no_run {d}/t.mrc --out {d}/new_seg", "no_run"),
        row("segment {d}/run {d}/t.mrc --out {d}/t.mrc", "t.mrc"),
        // ---- pick
        row("pick {d}/labels.mrc --classes {d}/classes.toml --out {d}/labels.mrc", "overwrite the input"),
        row("pick {d}/labels.mrc --classes {d}/classes.toml --out {d}/classes.toml", "overwrite the input"),
        row("pick {d}/labels.mrc --classes {d}/classes.toml --out {d}/existing.star", "already exists"),
        row("pick {d}/labels_unknown.mrc --classes {d}/classes.toml --out {d}/new.star", "not in the class table"),
        row("pick {d}/t.mrc --classes {d}/classes.toml --out {d}/new.star", "not a label map"),
        row("pick --method nms --prob ball={d}/prob_ball.mrc --prob dud={d}/prob_dud11.mrc --classes {d}/classes.toml --out {d}/new.star", "voxel size"),
        row("pick {d}/labels0.mrc --classes {d}/classes.toml --out {d}/new.star", "voxel size 0"),
        row("pick {d}/labels.mrc --classes {d}/bad_class.toml --out {d}/new.star", "file name"),
        // ---- evaluate
        row("{EVAL} --occupancy {d}/t.mrc --out {d}/new_eval", "not an occupancy map"),
        row("{EVAL} --labels {d}/labels.mrc --truth-labels {d}/labels11.mrc --out {d}/new_eval", "voxel size"),
        row("{EVAL} --labels {d}/labels.mrc --truth-labels {d}/labels_shape.mrc --out {d}/new_eval", "shape"),
        row("{EVAL} --labels {d}/labels_unknown.mrc --truth-labels {d}/labels.mrc --out {d}/new_eval", "not in the class table"),
        row("{EVAL} --out {d}", "holds the input"),
        row("{EVAL} --out {d}/eval_existing", "already exists"),
        // ---- report
        row("report {d}/no_such_run", "no_such_run"),
        row("report {d}/data --out {d}/data", "overwrite the input"),
        row("report {d}/data", "already exists"),
        // ---- convert
        row("convert {d}/p.txt {d}/p.txt", "overwrite the input"),
        row("convert {d}/p.txt {d}/hard.txt", "overwrite the input"),
        row("convert {d}/p.txt {d}/existing.star", "already exists"),
        row("convert {d}/evil.txt {d}/out_{class}.star", "file name"),
        // ---- info
        row("info {d}/huge.mrc", "overflows"),
        row("info {d}/notmrc.mrc", "notmrc.mrc"),
        // ---- demo
        row("demo --out {d}/sim_existing", "already exists"),
        row("demo --out {d}/new_demo --threads 0", "--threads"),
    ]
}

#[test]
fn bad_inputs_fail_cleanly_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fixture(d);
    let dir = s(d);
    let rows = rows();
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let line = r
            .args
            .replace("{MASK}", MASK)
            .replace("{EVAL}", EVAL)
            .replace("{d}", &dir);
        let args: Vec<&str> = line.split_whitespace().collect();
        let before = snapshot(d);
        let out = Command::new(env!("CARGO_BIN_EXE_capsid"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let after = snapshot(d);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push(format!("exit {:?}", out.status.code()));
        }
        let lines: Vec<&str> = err.lines().collect();
        if lines.len() != 1 || !lines[0].starts_with("error: ") {
            problems.push(format!("not one error line: {} lines", lines.len()));
        }
        if !err.contains(r.fragment) {
            problems.push(format!("no '{}'", r.fragment));
        }
        if before != after {
            let changed: Vec<String> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .map(|k| k.display().to_string())
                .collect();
            problems.push(format!("files changed, created or left over: {changed:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "capsid {}\n    {}\n    stderr: {}",
                r.args,
                problems.join("; "),
                err.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    // The good paths next to the bad ones: a result is kept unless --force; --skip-complete
    // skips finished tomograms; --force on a particle list keeps the previous file as .bak.
    let seg = format!("segment {dir}/run {dir}/t.mrc --out {dir}/seg_ok --patch 16");
    let run = |line: &str| {
        let args: Vec<&str> = line.split_whitespace().collect();
        common::capsid(&args)
    };
    common::assert_ok(&run(&seg));
    common::fails_with(&run(&seg), &["already exists", "--force"]);
    let skipped = run(&format!("{seg} --skip-complete"));
    common::assert_ok(&skipped);
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("skipped"));
    common::assert_ok(&run(&format!("{seg} --force")));
    common::assert_ok(&run(&format!("convert {dir}/p.txt {dir}/c.star")));
    let first = std::fs::read(d.join("c.star")).unwrap();
    common::assert_ok(&run(&format!("convert {dir}/p.txt {dir}/c.star --force")));
    assert_eq!(std::fs::read(d.join("c.star.bak")).unwrap(), first);
    assert!(leftovers(d)
        .iter()
        .all(|p| p.ends_with(".capsid-lock-locked.mrc")));
}

/// Every capsid hidden file (temporary files, locks) under `d`.
fn leftovers(d: &Path) -> Vec<PathBuf> {
    snapshot(d)
        .into_keys()
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with(".capsid-tmp-")
                    || n.to_string_lossy().starts_with(".capsid-lock-")
            })
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_leave_no_temporary_files() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("sim");
        let child = Command::new(env!("CARGO_BIN_EXE_capsid"))
            .args([
                "simulate",
                "--preset",
                "default",
                "--tomograms",
                "2",
                "--out",
            ])
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let res = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(code), "{err}");
        assert!(
            err.trim_end()
                .lines()
                .last()
                .unwrap_or("")
                .contains("interrupted"),
            "{err}"
        );
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{:?}",
            leftovers(tmp.path())
        );
    }
}

#[test]
fn stale_files_of_dead_processes_are_swept_and_live_locks_respected() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("classes.toml"), CLASSES).unwrap();
    std::fs::write(d.join("p.txt"), "ball 5 5 5 0 0 0\n").unwrap();
    write_tomo(&d.join("t.mrc"), &tomogram(10.0, SHAPE));
    let host = capsid_core::guard::host_name();
    let dead = i32::MAX as u32 - 11;
    let stale_tmp = d.join(format!(".capsid-tmp-{host}.{dead}.abcdef"));
    let stale_lock = d.join(".capsid-lock-l.mrc");
    let foreign_tmp = d.join(".capsid-tmp-another-node.example.1.abcdef");
    std::fs::write(&stale_tmp, "half").unwrap();
    std::fs::write(&stale_lock, format!("host={host}\npid={dead}\n")).unwrap();
    std::fs::write(&foreign_tmp, "half").unwrap();
    let mask = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_capsid"))
            .args([
                "mask",
                "--tomogram",
                &s(&d.join("t.mrc")),
                "--particles",
                &s(&d.join("p.txt")),
            ])
            .args([
                "--classes",
                &s(&d.join("classes.toml")),
                "--out",
                &s(&d.join(out)),
            ])
            .output()
            .unwrap()
    };
    common::assert_ok(&mask("l.mrc"));
    assert!(!stale_tmp.exists() && !stale_lock.exists());
    assert!(foreign_tmp.exists(), "another host's file is never swept");
    // A live process of this host (this test) holds the lock of m.mrc: refused, lock kept.
    let live = d.join(".capsid-lock-m.mrc");
    std::fs::write(&live, format!("host={host}\npid={}\n", std::process::id())).unwrap();
    let out = mask("m.mrc");
    common::fails_with(
        &out,
        &["being written by process", &std::process::id().to_string()],
    );
    assert!(live.exists() && !d.join("m.mrc").exists());
    std::fs::remove_file(&live).unwrap();
    common::assert_ok(&mask("m.mrc"));
    // --force replaces; without it the result is kept.
    common::fails_with(&mask("m.mrc"), &["already exists", "--force"]);
}

#[cfg(unix)]
#[test]
fn broken_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..20000 {
        text.push_str(&format!("ball {} {} {} 0 0 0\n", i % 60, i % 50, i % 40));
    }
    let p = tmp.path().join("many.txt");
    std::fs::write(&p, text).unwrap();
    for args in [
        vec!["info", "--stats"],
        vec!["info", "--json"],
        vec!["--help"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capsid"))
            .args(&args)
            .arg(&p)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let res = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            res.status.success() || res.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            res.status
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
