//! Writes a small synthetic run folder and its report, to look at the figures:
//!
//! ```text
//! cargo run -p capsid-report --example synthetic_report -- /tmp/synthetic-run
//! ```
//! then open `/tmp/synthetic-run/report/index.html`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: synthetic_report OUT_DIR")?;
    let dir = std::path::Path::new(&dir);
    common::write_run(dir);
    let summary = capsid_report::build_report(dir, &capsid_report::ReportOptions::default())?;
    println!("{}", summary.html.display());
    for f in &summary.figures {
        println!("{}", f.display());
    }
    for n in &summary.notes {
        println!("note: {n}");
    }
    Ok(())
}
