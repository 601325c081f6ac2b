//! `capsid-afl TARGET`: one capsid-fuzz target under AFL++ in persistent mode (built by
//! `cargo afl build`, started by `bench/afl.sh`). `capsid-afl --seeds DIR TARGET` writes the
//! target's seed inputs (valid files from capsid's own writers) into DIR for `afl-fuzz -i`.
//!
//! Panics caught around third-party parsers stay caught (they are counted by the stable-Rust
//! campaign, not crashes); any other panic aborts, which AFL++ records as a crash.

use std::process::exit;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, dir, name] if flag == "--seeds" => write_seeds(dir, name),
        [name] => run(name),
        _ => usage(),
    }
}

fn usage() -> ! {
    let names: Vec<&str> = capsid_fuzz::targets().iter().map(|t| t.name).collect();
    eprintln!(
        "usage: capsid-afl TARGET | capsid-afl --seeds DIR TARGET  (targets: {})",
        names.join(", ")
    );
    exit(2)
}

fn target(name: &str) -> capsid_fuzz::Target {
    capsid_fuzz::target(name).unwrap_or_else(|| usage())
}

fn write_seeds(dir: &str, name: &str) {
    let t = target(name);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("capsid-afl: {dir}: {e}");
        exit(2);
    }
    for (i, s) in (t.seeds)().iter().enumerate() {
        let p = std::path::Path::new(dir).join(format!("seed-{i:03}"));
        if let Err(e) = std::fs::write(&p, s) {
            eprintln!("capsid-afl: {}: {e}", p.display());
            exit(2);
        }
    }
}

fn run(name: &str) {
    let t = target(name);
    let scratch = capsid_fuzz::Scratch::new();
    // No abort-on-panic hook: `catch_third_party_panic` must be able to catch around a parser
    // crate; a panic that escapes the target is turned into an abort by the harness itself.
    afl::fuzz_nohook!(|data: &[u8]| {
        (t.run)(&scratch, data);
    });
}
