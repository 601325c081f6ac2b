//! Times a whole preset run (library only, no CLI), for the benchmark figures:
//! `cargo run --release -p capsid-sim --example simulate_preset -- shrec-like /tmp/shrec 1`
//! under `/usr/bin/time -v` for the peak memory (maximum resident set size).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let preset = args.get(1).map(String::as_str).unwrap_or("tiny");
    let out = std::path::PathBuf::from(
        args.get(2)
            .map(String::as_str)
            .unwrap_or("/tmp/capsid_sim_example"),
    );
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut cfg = capsid_sim::SimConfig::preset(preset)?;
    cfg.seed = seed;
    let t = Instant::now();
    let mut last = Instant::now();
    let summaries = capsid_sim::run(&cfg, &out, &mut |e| {
        if let capsid_sim::Event::Stage { index, stage, .. } = e {
            eprintln!(
                "  [{:6.2} s] tomogram {index} {}",
                last.elapsed().as_secs_f64(),
                stage.name()
            );
            last = Instant::now();
        }
    })?;
    for s in &summaries {
        println!(
            "{}: placed {:?} of {:?}, noise sigma {:.3}",
            s.name, s.placed, s.requested, s.noise_sigma
        );
    }
    println!("{preset}: {:.2} s in all", t.elapsed().as_secs_f64());
    Ok(())
}
