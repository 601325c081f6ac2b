//! The sections of the report page, one module each, in page order: [`results`] (evaluation
//! tables), [`timings`] (stage wall times), [`slices`] (central XY and XZ slices with voxel
//! overlays and picks; volumes are `[z, y, x]`), [`learning`] (learning curves), [`pr`]
//! (precision–recall curves) and [`config`] (inputs and configuration files). Each returns an
//! [`html::Section`](crate::html::Section), pushes the PNG figures it made and adds a note for
//! every input it lacks.

mod config;
mod learning;
mod pr;
mod results;
mod slices;
mod timings;

pub(crate) use config::config_section;
pub(crate) use learning::learning_section;
pub(crate) use pr::pr_section;
pub(crate) use results::results_section;
pub(crate) use slices::slices_section;
pub(crate) use timings::timings_section;

use crate::{html, ReportError};
use std::path::Path;

/// Adds `text` to the notes and returns it as an HTML note.
fn note(notes: &mut Vec<String>, text: String) -> String {
    let h = html::note(&text);
    notes.push(text);
    h
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn png_name(prefix: &str, set: &str) -> String {
    let clean: String = set
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}_{clean}.png")
}
