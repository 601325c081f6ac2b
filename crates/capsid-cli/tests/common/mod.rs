//! Helpers shared by the CLI tests: run the `capsid` binary as users run it and check the outcome
//! (success, or failure with exit code 2 and a one-line error).
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `capsid ARGS…` and returns its output.
pub fn capsid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capsid"))
        .args(args)
        .output()
        .expect("run capsid")
}

/// Panics with capsid's stderr unless `out` is a success.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "capsid failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `capsid ARGS…`, expects success and returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = capsid(args);
    assert!(
        out.status.success(),
        "capsid {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs `capsid ARGS…` expecting failure: exit code 2 and exactly one stderr line starting with
/// `error: `; returns that stderr.
pub fn fails(args: &[&str]) -> String {
    let out = capsid(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "capsid {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// `out` failed with exit code 2 and its `error:` line contains every needle.
pub fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    for n in needles {
        assert!(line.contains(n), "'{n}' not in: {line}");
    }
}

/// The Python named by the environment variable `var` (an interop test's reference reader), or
/// `None` to skip: a skip is a failure under `CAPSID_REQUIRE_INTEROP` (as CI sets it).
pub fn interop_python(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CAPSID_REQUIRE_INTEROP").map_or(true, |v| v.is_empty() || v == "0"),
                "CAPSID_REQUIRE_INTEROP is set but {var} is not"
            );
            eprintln!("skipped: set {var} to run the reference reader");
            None
        }
    }
}

/// Runs `python interop/SCRIPT ARGS…` and panics with its output unless it succeeds.
pub fn run_interop(python: &str, script: &str, args: &[&std::ffi::OsStr]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop")
        .join(script);
    let r = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("run the interop script");
    assert!(
        r.status.success(),
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
}
