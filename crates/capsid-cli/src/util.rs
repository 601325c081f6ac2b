//! Small helpers shared by the subcommands.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

/// The error and its causes on one line: `outer: cause: root cause`, without repeats.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Progress of a long stage on stderr: an indicatif bar (position, rate, ETA) on a terminal;
/// otherwise (a log file, CI, a Slurm job) plain lines, one every 10 % and at least one a minute
/// once the stage has run 5 s:
/// `segment tomo_003: 30/75 (40 %), 12 s, ETA 18 s`.
pub struct Progress {
    bar: ProgressBar,
    plain: Option<Mutex<PlainProgress>>,
}

/// State of the plain-line mode.
struct PlainProgress {
    what: String,
    len: u64,
    pos: u64,
    next_percent: u64,
    start: Instant,
    last_line: Instant,
}

impl PlainProgress {
    /// The line to print after moving to `pos`, if one is due.
    fn advance(&mut self, pos: u64) -> Option<String> {
        self.pos = pos.min(self.len);
        let percent = (self.pos * 100).checked_div(self.len).unwrap_or(100);
        let now = Instant::now();
        let due =
            percent >= self.next_percent || now.duration_since(self.last_line).as_secs() >= 60;
        // Quick stages (under 5 s) print nothing: a log is for long work, and an error stays
        // the only line of a run that fails early.
        if !due || self.pos == 0 || now.duration_since(self.start).as_secs_f64() < 5.0 {
            return None;
        }
        self.next_percent = (percent / 10 + 1) * 10;
        self.last_line = now;
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let eta = elapsed * (self.len - self.pos) as f64 / self.pos as f64;
        Some(format!(
            "{}: {}/{} ({percent} %), {elapsed:.0} s, ETA {eta:.0} s",
            self.what, self.pos, self.len
        ))
    }
}

impl Progress {
    /// Moves on by `n`.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.plain_to(|p| p.pos + n);
    }

    /// Moves to `pos`.
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        self.plain_to(|_| pos);
    }

    /// Names what is being done (e.g. the current class).
    pub fn set_message(&self, what: impl Into<String>) {
        let what = what.into();
        if let Some(p) = &self.plain {
            if let Ok(mut p) = p.lock() {
                p.what = what.clone();
            }
        }
        self.bar.set_message(what);
    }

    /// Runs `f` with the bar hidden (for printing lines around it).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar.
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }

    fn plain_to(&self, pos: impl FnOnce(&PlainProgress) -> u64) {
        let Some(p) = &self.plain else {
            return;
        };
        let line = match p.lock() {
            Ok(mut p) => {
                let to = pos(&p);
                p.advance(to)
            }
            Err(_) => None,
        };
        if let Some(line) = line {
            eprintln!("{line}");
        }
    }
}

/// A [`Progress`] of `len` steps named `what`.
pub fn progress(len: u64, what: &str) -> Progress {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    let plain = (!std::io::stderr().is_terminal()).then(|| {
        let now = Instant::now();
        Mutex::new(PlainProgress {
            what: what.to_string(),
            len,
            pos: 0,
            next_percent: 10,
            start: now,
            last_line: now,
        })
    });
    Progress { bar: pb, plain }
}

/// Parses `--prob CLASS=PATH` pairs (pick, evaluate), checking the classes against the table.
pub fn parse_prob_args(
    items: &[String],
    classes: &capsid_core::ClassTable,
) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let mut out: Vec<(String, std::path::PathBuf)> = Vec::new();
    for it in items {
        let Some((c, p)) = it.split_once('=') else {
            anyhow::bail!("--prob '{it}': expected CLASS=PATH");
        };
        classes
            .get(c.trim())
            .with_context(|| format!("--prob '{it}'"))?;
        if out.iter().any(|(k, _)| k == c.trim()) {
            anyhow::bail!("--prob: class '{}' given twice", c.trim());
        }
        out.push((c.trim().to_string(), std::path::PathBuf::from(p.trim())));
    }
    Ok(out)
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn plain_progress_prints_every_ten_percent() {
        let now = Instant::now();
        let mut p = PlainProgress {
            what: "segment t".into(),
            len: 75,
            pos: 0,
            next_percent: 10,
            start: now,
            last_line: now,
        };
        // Nothing in the first 5 s.
        assert_eq!(p.advance(40), None);
        p.start = now - std::time::Duration::from_secs(6);
        p.pos = 0;
        let lines: Vec<String> = (1..=75).filter_map(|i| p.advance(i)).collect();
        assert_eq!(lines.len(), 10, "{lines:?}");
        assert!(
            lines[0].starts_with("segment t: 8/75 (10 %)"),
            "{}",
            lines[0]
        );
        assert!(
            lines[9].starts_with("segment t: 75/75 (100 %)"),
            "{}",
            lines[9]
        );
    }
}

/// A plain-text table for the terminal: every column as wide as its widest cell (header
/// included), two spaces between columns, column `i` aligned left where `left[i]` (else right;
/// columns beyond `left` align right). One line per row, each ending in a newline.
pub fn text_table(header: &[String], rows: &[Vec<String>], left: &[bool]) -> String {
    let n = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate().take(n) {
            if i > 0 {
                l.push_str("  ");
            }
            let w = width[i];
            if left.get(i).copied().unwrap_or(false) {
                l.push_str(&format!("{c:<w$}"));
            } else {
                l.push_str(&format!("{c:>w$}"));
            }
        }
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut t = line(header);
    for r in rows {
        t.push_str(&line(r));
    }
    t
}

#[cfg(test)]
mod table_tests {
    use super::text_table;

    #[test]
    fn columns_take_their_widest_cell_and_their_alignment() {
        let h = ["name", "n", "status"].map(String::from).to_vec();
        let rows = vec![
            ["tomo_000", "12", "done"].map(String::from).to_vec(),
            ["t", "3", "failed: x"].map(String::from).to_vec(),
        ];
        let t = text_table(&h, &rows, &[true, false, true]);
        assert_eq!(
            t,
            "name       n  status\ntomo_000  12  done\nt          3  failed: x\n"
        );
    }
}

/// `--precision` as given on the command line (None when absent), for commands that record it.
static PRECISION_FLAG: std::sync::OnceLock<capsid_conv::Precision> = std::sync::OnceLock::new();

/// Applies `--precision` to the process's convolution kernels and remembers it
/// ([`precision_flag`]).
pub fn set_precision_flag(flag: Option<&str>) -> Result<(), String> {
    let Some(text) = flag else { return Ok(()) };
    let p = capsid_conv::Precision::parse(text)
        .ok_or_else(|| format!("--precision: expected f32 or bf16, got '{text}'"))?;
    capsid_conv::set_settings(capsid_conv::ConvSettings {
        precision: p,
        ..capsid_conv::settings()
    });
    let _ = PRECISION_FLAG.set(p);
    Ok(())
}

/// `--precision` if it was given.
pub fn precision_flag() -> Option<capsid_conv::Precision> {
    PRECISION_FLAG.get().copied()
}

/// A JSON summary as TOML for a run record (`match.toml`, `*.orient.toml`): nulls (unset
/// options) are left out, since TOML has none.
pub fn record_toml(v: &serde_json::Value) -> anyhow::Result<String> {
    fn strip(v: &serde_json::Value) -> Option<serde_json::Value> {
        match v {
            serde_json::Value::Null => None,
            serde_json::Value::Object(m) => Some(serde_json::Value::Object(
                m.iter()
                    .filter_map(|(k, v)| strip(v).map(|v| (k.clone(), v)))
                    .collect(),
            )),
            serde_json::Value::Array(a) => Some(serde_json::Value::Array(
                a.iter().filter_map(strip).collect(),
            )),
            other => Some(other.clone()),
        }
    }
    let clean = strip(v).unwrap_or(serde_json::Value::Null);
    toml::to_string(&clean).context("writing the run record as TOML")
}
