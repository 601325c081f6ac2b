//! `capsid`: find and identify macromolecules in cryo-electron tomograms.
//!
//! The pipeline shows in the subcommands:
//! simulate → mask → train → segment → pick → evaluate → report. Each subcommand lives in its own
//! module under `cmd/`. Errors print as one line on stderr and exit with code 2.

use clap::{Parser, Subcommand};

mod cmd;
mod copick_args;
mod grammar;
mod pick_tuning;
mod util;

/// mimalloc as the global allocator: Burn's CPU backend allocates many short-lived buffers, and
/// mimalloc measured 10–30% faster than the system allocator for training steps.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (position in the C enum `mi_option_e` of mimalloc v2 and
/// v3; the Rust bindings do not name it). Checked by a test against v3's default (1000 ms).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed memory to the OS at once instead of after mimalloc v3's 1 s purge delay: lowers
/// the peak resident memory of long inference runs (sliding-window segmentation, where a window's
/// freed activations otherwise stay resident while the next allocations come from fresh pages).
/// `MIMALLOC_PURGE_DELAY` in the environment wins.
pub(crate) fn purge_freed_memory_at_once() {
    set_purge_delay(0);
}

/// Never returns freed memory to the OS: for training and benchmarks, where every step allocates
/// the same large activation buffers again. With the default 1 s delay the freed buffers were
/// purged between steps and the next step's came back as fresh pages that the kernel had to zero
/// (UNet patch 32, batch 4: 27,743 page faults in a 4-step bench run, 616 with this; ≈ 10 % of the
/// run's time was the kernel's page clearing). `MIMALLOC_PURGE_DELAY` in the environment wins.
pub(crate) fn keep_freed_memory() {
    set_purge_delay(-1);
}

fn set_purge_delay(ms: std::os::raw::c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an integer option; any value is valid for this option.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
}

/// Find and identify macromolecules in cryo-ET tomograms with 3D deep learning
/// (3D-UCaps and DeepFinder's 3D-UNet).
#[derive(Parser)]
#[command(name = "capsid", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Example: the whole pipeline on built-in simulated data\n  capsid demo --out demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// CPU convolution kernels (any command): winograd (the default: capsid's kernels, Winograd
    /// for 3×3×3 layers), direct (capsid's kernels without Winograd) or burn (Burn's own
    /// convolutions); for benchmarks, results agree to rounding
    #[arg(
        long,
        global = true,
        value_name = "winograd|direct|burn",
        default_value = "winograd"
    )]
    conv: String,
    /// Precision of the convolutions' products on the CPU (any command): f32 (the default) or
    /// bf16 (factors rounded to bfloat16, f32 sums, f32 weights; needs AVX512-BF16, otherwise the
    /// products stay f32). `capsid train` records it in the run's config.toml
    #[arg(long, global = true, value_name = "f32|bf16")]
    precision: Option<String>,
    /// The most bytes one volume may take in memory (any command; default: this machine's RAM
    /// plus swap). Larger volumes are refused with one error line before anything is allocated
    #[arg(
        long,
        global = true,
        value_name = "BYTES",
        env = "CAPSID_MAX_VOLUME_BYTES"
    )]
    max_volume_bytes: Option<u64>,
}

// One command is parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Simulate SHREC-style tomograms with exact ground truth.
    Simulate(cmd::simulate::Args),
    /// Write label and instance maps (training targets) from a particle list.
    Mask(cmd::mask::Args),
    /// Preprocess a tomogram: binning, low-pass, normalisation.
    Prep(cmd::prep::Args),
    /// Train a 3D-UNet or 3D-UCaps model.
    Train(cmd::train::Args),
    /// Segment tomograms with a trained model (sliding window).
    Segment(cmd::segment::Args),
    /// Pick particles from label or probability maps.
    Pick(cmd::pick::Args),
    /// Evaluate picks against ground truth.
    Evaluate(cmd::evaluate::Args),
    /// Template matching: scores, orientations and peaks over a tomogram.
    Match(cmd::matching::Args),
    /// An orientation for each pick, by a local template search around it.
    Orient(cmd::orient::Args),
    /// A trained encoder's features at each particle's centre (CSV).
    Features(cmd::features::Args),
    /// Make figures and an HTML page for a run.
    Report(cmd::report::Args),
    /// Convert between particle-list formats.
    Convert(cmd::convert::Args),
    /// Summarise a volume or particle list.
    Info(cmd::info::Args),
    /// Time inference and training steps of a network (one JSON line).
    Bench(cmd::bench::Args),
    /// Run the whole pipeline on built-in simulated data.
    Demo(cmd::demo::Args),
    /// Look at a tomogram, its maps and picks in a browser, and edit picks.
    View(cmd::view::Args),
    /// Run segment, pick or train on a Slurm cluster (a job array, a task per tomogram).
    Slurm(cmd::slurm::Args),
}

/// Applies `--conv` to the process's convolution kernels.
fn set_conv_kernels(choice: &str) -> Result<(), String> {
    let (fast, winograd) = match choice {
        "winograd" => (true, true),
        "direct" => (true, false),
        "burn" => (false, false),
        other => {
            return Err(format!(
                "--conv: expected winograd, direct or burn, got '{other}'"
            ))
        }
    };
    capsid_nn::model::fastconv::set_fast_conv(fast);
    capsid_conv::set_settings(capsid_conv::ConvSettings {
        winograd,
        ..capsid_conv::settings()
    });
    Ok(())
}

/// Broken pipes end quietly: with SIGPIPE back to its default, `capsid info x | head -1` ends
/// like any Unix tool when `head` closes the pipe (status 141, no message) instead of panicking
/// in `println!`.
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default at start-up, before any thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A panic is a bug in capsid, never the user's fault: say so on one line (no backtrace) unless
/// `RUST_BACKTRACE` asks for one in a debug build. Temporary files are removed as the stack
/// unwinds; the exit status is 101.
fn install_panic_hook() {
    let verbose = cfg!(debug_assertions) && std::env::var_os("RUST_BACKTRACE").is_some();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if capsid_core::guard::in_third_party_code() {
            // Caught around a third-party parser and reported as a one-line error.
            return;
        }
        if verbose {
            return default_hook(info);
        }
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (a bug in capsid {}; please report it with the command): {}{loc}",
            env!("CARGO_PKG_VERSION"),
            msg.replace('\n', " ")
        );
    }));
}

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP: remove this process's temporary files, locks and the empty
/// folders it created, keep finished outputs, print one line and exit with 128 + the signal.
fn install_signal_handler() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                capsid_core::guard::cleanup_this_process();
                let name = match sig {
                    SIGINT => "SIGINT (Ctrl-C)",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                eprintln!(
                    "error: interrupted by {name}; temporary files removed, finished outputs kept"
                );
                std::process::exit(128 + sig);
            }
        });
    }
}

fn main() {
    reset_sigpipe();
    install_panic_hook();
    install_signal_handler();
    let cli = Cli::parse();
    capsid_core::volume::set_max_volume_bytes(cli.max_volume_bytes);
    if let Err(e) = set_conv_kernels(&cli.conv)
        .and_then(|()| util::set_precision_flag(cli.precision.as_deref()))
    {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let result = match cli.command {
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Mask(a) => cmd::mask::run(a),
        Command::Prep(a) => cmd::prep::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Segment(a) => cmd::segment::run(a),
        Command::Pick(a) => cmd::pick::run(a),
        Command::Evaluate(a) => cmd::evaluate::run(a),
        Command::Match(a) => cmd::matching::run(a),
        Command::Orient(a) => cmd::orient::run(a),
        Command::Features(a) => cmd::features::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::View(a) => cmd::view::run(a),
        Command::Slurm(a) => cmd::slurm::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", util::one_line(&e));
        std::process::exit(2);
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    /// The example commands of a help text: lines from `capsid ` on, continuation lines (after a
    /// trailing `\`) joined; each split into words as a shell would (single and double quotes).
    pub(crate) fn examples(help: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut lines = help.lines();
        while let Some(line) = lines.next() {
            let Some(at) = line.find("capsid ") else {
                continue;
            };
            if !line[..at].trim().is_empty() && !line[..at].trim().ends_with('$') {
                continue;
            }
            let mut cmd = line[at..].trim_end().to_string();
            while cmd.ends_with('\\') {
                cmd.pop();
                cmd.push(' ');
                match lines.next() {
                    Some(next) => cmd.push_str(next.trim()),
                    None => break,
                }
            }
            out.push(shell_words(cmd.trim()));
        }
        out
    }

    fn shell_words(s: &str) -> Vec<String> {
        let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in s.chars() {
            match (quote, c) {
                (None, '\'' | '"') => {
                    quote = Some(c);
                    any = true;
                }
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if any {
                        words.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                (_, c) => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if any {
            words.push(cur);
        }
        words
    }

    /// Every example in every command's help, rendered 80 columns wide, is one whole command
    /// that parses: no example wraps mid-command, none uses a flag that does not exist.
    #[test]
    fn every_help_example_parses_at_80_columns() {
        let mut cli = super::Cli::command().term_width(80);
        cli.build();
        let mut checked = 0;
        // Subcommands and their own subcommands (`capsid slurm segment`).
        let mut subs: Vec<(String, clap::Command)> = Vec::new();
        for sub in cli.get_subcommands() {
            subs.push((sub.get_name().to_string(), sub.clone()));
            for inner in sub.get_subcommands() {
                let name = format!("{} {}", sub.get_name(), inner.get_name());
                subs.push((name, inner.clone()));
            }
        }
        for (name, sub) in subs {
            let help = sub.term_width(80).render_long_help().to_string();
            let Some(start) = help.find("Examples:") else {
                continue;
            };
            // Inside the examples block a line is a command, a comment, or the continuation
            // of a line ending in a backslash.
            let mut prev_continues = false;
            for line in help[start..].lines().skip(1) {
                let l = line.trim();
                if l.is_empty() {
                    break;
                }
                let head = l.starts_with("capsid ")
                    || l.starts_with('#')
                    || l.starts_with("python ")
                    || l.contains("$ ");
                assert!(
                    head || prev_continues,
                    "capsid {name} --help: example line wrapped or stray at 80 columns: '{l}'"
                );
                prev_continues = l.ends_with('\\');
            }
            for words in examples(&help[start..]) {
                match super::Cli::try_parse_from(&words) {
                    Ok(_) => checked += 1,
                    Err(e) => panic!("capsid {name} --help example {words:?}: {e}"),
                }
            }
        }
        assert!(checked >= 30, "only {checked} examples found");
    }

    #[test]
    fn example_extraction_joins_lines_and_keeps_quotes() {
        let help = "Examples:\n  capsid a --x 1 \\\n      --y 'p q/{c}.json'\n  capsid b\n  node$  capsid c --port 8\nnot capsid d\n";
        let ex = examples(help);
        assert_eq!(ex[0], ["capsid", "a", "--x", "1", "--y", "p q/{c}.json"]);
        assert_eq!(ex[1], ["capsid", "b"]);
        assert_eq!(ex[2], ["capsid", "c", "--port", "8"]);
        assert_eq!(ex.len(), 3);
    }

    #[test]
    fn purge_delay_option_is_the_one_documented() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading an option is side-effect free.
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(v, 1000, "mimalloc v3's purge_delay default is 1000 ms");
        // Its neighbour in the enum (use_numa_nodes) defaults to 0.
        // SAFETY: as above.
        let next = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY + 1) };
        assert_ne!(next, 1000);
    }
}
