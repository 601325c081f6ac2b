//! `capsid-fuzz SECONDS [TARGET…]`: runs each fuzz target (all by default) for SECONDS and prints
//! one line per target: executions, executions per second, crashes (inputs that panicked, saved
//! under crates/capsid-fuzz/tests/fuzz_regressions/<target>/) and panics caught around
//! third-party parsers. Exit status 1 if any target crashed.

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(secs) = args.first().and_then(|s| s.parse::<f64>().ok()) else {
        eprintln!(
            "usage: capsid-fuzz SECONDS [TARGET…]  (targets: {})",
            names()
        );
        std::process::exit(2);
    };
    let wanted: Vec<&String> = args[1..].iter().collect();
    let seed = std::env::var("CAPSID_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
    let save = capsid_fuzz::regressions_dir();
    println!(
        "seed {seed}; {secs} s per target; crashes saved under {}",
        save.display()
    );
    println!(
        "{:<16} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "target", "execs", "execs/s", "seconds", "crashes", "caught"
    );
    let mut any = false;
    for t in capsid_fuzz::targets() {
        if !wanted.is_empty() && !wanted.iter().any(|w| *w == t.name) {
            continue;
        }
        let s = capsid_fuzz::campaign(
            &t,
            Duration::from_secs_f64(secs),
            u64::MAX,
            seed,
            Some(&save),
        );
        println!(
            "{:<16} {:>10} {:>10.0} {:>8.1} {:>8} {:>8}",
            t.name,
            s.execs,
            s.execs as f64 / s.seconds.max(1e-9),
            s.seconds,
            s.crashes,
            s.caught_third_party
        );
        for p in &s.saved {
            println!("  saved {}", p.display());
        }
        any |= s.crashes > 0;
    }
    if any {
        std::process::exit(1);
    }
}

fn names() -> String {
    capsid_fuzz::targets()
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}
