//! The inputs-and-configuration section: the table of input files found (or absent) and the
//! run's class table and `*.toml` configuration files, each cut at 20,000 characters.

use super::{note, read_text};
use crate::html::{self, Section};
use crate::summary::Table;
use crate::{layout, ReportError};
use std::path::PathBuf;

pub(crate) fn config_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    const MAX_CHARS: usize = 20_000;
    let mut body = String::new();
    let mut files: Vec<(String, String)> = vec![
        ("tomogram".into(), opt_path(&inputs.tomogram)),
        ("ground-truth labels".into(), opt_path(&inputs.truth_labels)),
        (
            "ground-truth particles".into(),
            opt_path(&inputs.truth_particles),
        ),
        ("class table".into(), opt_path(&inputs.class_table)),
        ("timings".into(), opt_path(&inputs.timings)),
    ];
    for p in &inputs.predictions {
        files.push((format!("{} labels", p.name), opt_path(&p.labels)));
        files.push((format!("{} picks", p.name), opt_path(&p.picks)));
    }
    let t = Table {
        header: vec!["input".into(), "file".into()],
        rows: files.into_iter().map(|(a, b)| vec![a, b]).collect(),
    };
    body.push_str(&html::table(&t));
    if inputs.configs.is_empty() && inputs.class_table.is_none() {
        body.push_str(&note(
            notes,
            "No configuration files (*.toml) in the run folder.".into(),
        ));
    }
    for p in inputs.class_table.iter().chain(&inputs.configs) {
        let mut text = read_text(p)?;
        if text.len() > MAX_CHARS {
            let cut = (0..=MAX_CHARS)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push_str("\n… (cut)");
        }
        let shown = p.strip_prefix(&inputs.run_dir).unwrap_or(p);
        body.push_str(&html::pre(&shown.display().to_string(), &text));
    }
    Ok(Section {
        id: "config".into(),
        title: "Inputs and configuration".into(),
        body,
    })
}

fn opt_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "— (absent)".into())
}
