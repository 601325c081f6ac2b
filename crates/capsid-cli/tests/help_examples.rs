//! Help examples run as printed: a chain of commands copied verbatim from `--help` (simulate →
//! convert → info → mask → pick → evaluate), run in a folder holding the files they name. (Every
//! example of every command is parsed by a unit test in `main.rs`; these ones also run.)

use std::path::Path;
use std::process::Command;

/// The example of `capsid CMD --help` that starts with `capsid CMD START` (continuation lines
/// joined; words split as a shell would, quotes removed).
fn example(cmd: &str, start: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_capsid"))
        .args([cmd, "--help"])
        .output()
        .expect("run capsid");
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let prefix = format!("capsid {cmd} {start}");
    let mut lines = help.lines();
    while let Some(line) = lines.next() {
        let l = line.trim();
        if !l.starts_with(&prefix) {
            continue;
        }
        let mut text = l.to_string();
        while text.ends_with('\\') {
            text.pop();
            text.push(' ');
            text.push_str(lines.next().unwrap_or("").trim());
        }
        return text
            .split_whitespace()
            .map(|w| w.trim_matches('\'').to_string())
            .collect();
    }
    panic!("no example '{prefix}' in:\n{help}");
}

/// Runs an example (its first word is `capsid`) in `dir`; panics with stderr on failure.
fn run(dir: &Path, words: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_capsid"))
        .args(&words[1..])
        .current_dir(dir)
        .output()
        .expect("run capsid");
    assert!(
        out.status.success(),
        "{words:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_chain_of_help_examples_runs_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &example("simulate", "--preset tiny"));
    let sim = d.join("sim_tiny");
    assert!(sim.join("reconstruction.mrc").is_file());
    // The files the next examples name, taken from the simulation.
    for (from, to) in [
        ("reconstruction.mrc", "tomo.mrc"),
        ("particle_locations.txt", "particle_locations.txt"),
        ("class_table.toml", "classes.toml"),
        ("occupancy_mask.mrc", "occupancy_mask.mrc"),
    ] {
        std::fs::copy(sim.join(from), d.join(to)).unwrap();
    }
    run(d, &example("convert", "particle_locations.txt picks.star"));
    assert!(d.join("picks.star").is_file());
    let info = run(d, &example("info", "tomo.mrc"));
    assert!(info.contains("96"), "{info}");
    run(d, &example("info", "particle_locations.txt"));
    run(
        d,
        &example("mask", "--tomogram tomo.mrc --particles picks.star"),
    );
    std::fs::copy(d.join("labels.mrc"), d.join("tomo_labels.mrc")).unwrap();
    run(
        d,
        &example("pick", "tomo_labels.mrc --classes classes.toml --out"),
    );
    run(d, &example("evaluate", "--picks tomo_picks.star"));
    // Picking the exact label map finds the simulated particles.
    let summary = std::fs::read_to_string(d.join("eval/summary.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let f1 = v["macro_avg"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.8, "macro F1 {f1} from the exact label map");

    // --json: the same figures, machine-readable on stdout.
    let mut pick = example("pick", "tomo_labels.mrc --classes classes.toml --out");
    pick.retain(|w| w != "tomo_picks.star");
    pick.extend(["picks_json.star".into(), "--json".into()]);
    let out: serde_json::Value = serde_json::from_str(run(d, &pick).trim()).unwrap();
    let n = out["picks"].as_u64().unwrap();
    let by_class: u64 = out["by_class"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(n > 0 && n == by_class, "{out}");
    let mut eval = example("evaluate", "--picks tomo_picks.star");
    let at = eval.iter().position(|w| w == "eval").unwrap();
    eval[at] = "eval_json".into();
    eval.push("--json".into());
    let out: serde_json::Value = serde_json::from_str(run(d, &eval).trim()).unwrap();
    assert_eq!(out["macro_avg"]["f1"].as_f64(), Some(f1));
}
