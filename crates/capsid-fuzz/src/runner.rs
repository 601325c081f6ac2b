//! Running targets: one input with panics caught, a timed campaign from the seeds, and the
//! folder where crashing inputs are saved.

use crate::{mutate, Scratch, Target};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a campaign did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Inputs run.
    pub execs: u64,
    /// Inputs that panicked (saved when a folder was given).
    pub crashes: u64,
    /// Panics caught around third-party parsers (not crashes; reported).
    pub caught_third_party: u64,
    /// Wall time.
    pub seconds: f64,
    /// Paths of the saved crashing inputs.
    pub saved: Vec<PathBuf>,
}

/// Runs `target` on one input; `Err(message)` if it panicked.
pub fn run_one(target: &Target, scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (target.run)(scratch, input)
    }))
    .map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

/// Runs `target` for `time` (or `max_execs` inputs, whichever comes first) from its seeds with
/// random mutations (`seed` makes the run reproducible), saving each crashing input into
/// `save_dir/<target>/crash-<hash>` when `save_dir` is given. Panics are silenced while it runs.
pub fn campaign(
    target: &Target,
    time: Duration,
    max_execs: u64,
    seed: u64,
    save_dir: Option<&Path>,
) -> Stats {
    let scratch = Scratch::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut corpus = (target.seeds)();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let seeds = corpus.len();
    let caught_before = capsid_core::guard::caught_panics();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let t0 = Instant::now();
    let mut stats = Stats::default();
    while t0.elapsed() < time && stats.execs < max_execs {
        let input = if (stats.execs as usize) < seeds {
            corpus[stats.execs as usize].clone()
        } else {
            let mut x = corpus[rng.gen_range(0..corpus.len())].clone();
            let other = corpus[rng.gen_range(0..corpus.len())].clone();
            mutate(&mut rng, &mut x, &other);
            x
        };
        stats.execs += 1;
        match run_one(target, &scratch, &input) {
            Ok(()) => {
                // Keep a few mutants as new starting points (no coverage feedback on stable:
                // a small random pool widens the search).
                if corpus.len() < 256 && rng.gen_ratio(1, 64) {
                    corpus.push(input);
                }
            }
            Err(_) => {
                stats.crashes += 1;
                if let Some(dir) = save_dir {
                    let d = dir.join(target.name);
                    let _ = std::fs::create_dir_all(&d);
                    let p = d.join(format!("crash-{:016x}", fnv(&input)));
                    if std::fs::write(&p, &input).is_ok() {
                        stats.saved.push(p);
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    stats.seconds = t0.elapsed().as_secs_f64();
    stats.caught_third_party = (capsid_core::guard::caught_panics() - caught_before) as u64;
    stats
}

/// FNV-1a hash of `b` (names of saved inputs).
pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The folder of saved crashing inputs in this crate's source tree.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}
