//! capsid-report: PNG figures and one self-contained HTML page for a capsid run directory.
//!
//! [`build_report`] reads what a run left in its folder (layout in [`layout`]) and writes
//! `report/index.html` with, where their inputs exist:
//!
//! * the evaluation tables (per-class precision, recall, F1, Fβ, … from `eval/summary.json`),
//! * the wall time of each stage (`timings.json`; the seed's Table 5),
//! * central XY and XZ slices of the tomogram with the predicted label map laid over the ground
//!   truth, voxels coloured TP green, FP red, FN blue, wrong class orange (the seed's Figs 6–7),
//! * the same slices with picks drawn as circles of the class radius (TP green, FP red, missed
//!   particles blue),
//! * learning curves (`train/<model>/metrics.csv`) and precision–recall curves,
//! * the run's configuration files.
//!
//! Figures are also written as PNG files beside the page; the page embeds them as base64 `data:`
//! URIs and needs no other file. Sections whose inputs are absent are replaced by a note.
//!
//! Modules: [`overlay`] (slices, TP/FP/FN colouring, circles; pure functions on arrays),
//! [`figure`] (panel layout, text, PNG), [`curves`] (line charts), [`summary`] (evaluation and
//! timing JSON), [`html`] (the page), [`layout`] (finding and reading inputs); each section of
//! the page is built by its own module under the private `sections`. Main types:
//! [`ReportOptions`], [`ReportSummary`], [`ReportError`].
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod curves;
pub mod error;
pub mod figure;
pub mod html;
pub mod layout;
pub mod overlay;
mod sections;
pub mod summary;

pub use error::ReportError;

use capsid_core::ClassTable;
use html::Section;
use overlay::ClassSelect;
use sections::{
    config_section, learning_section, pr_section, results_section, slices_section, timings_section,
};
use std::path::{Path, PathBuf};

/// Options of [`build_report`]. `Default` writes to `RUN_DIR/report`, shows all classes and
/// picks the magnification itself.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Output folder; `None` means `RUN_DIR/report`.
    pub out_dir: Option<PathBuf>,
    /// Show only this class in the overlays and pick figures (a class-table name).
    pub class: Option<String>,
    /// Tomogram to show when the data folder holds several (its folder name).
    pub tomogram: Option<String>,
    /// Magnification of slice images (1–8); `None` chooses 1–4 so a slice is about 500 px wide.
    pub scale: Option<u32>,
}

/// What [`build_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// The HTML page.
    pub html: PathBuf,
    /// The PNG figures written beside it.
    pub figures: Vec<PathBuf>,
    /// Why sections are missing or partial (the same notes appear on the page).
    pub notes: Vec<String>,
}

/// Magnification of slice images: `requested` (clamped to 1..=8) or the largest factor up to 4
/// that keeps the widest slice side at or under 512 pixels (at least 1).
pub fn slice_scale(requested: Option<u32>, shape_zyx: [usize; 3]) -> u32 {
    if let Some(s) = requested {
        return s.clamp(1, 8);
    }
    let widest = shape_zyx.iter().copied().max().unwrap_or(1).max(1);
    ((512 / widest) as u32).clamp(1, 4)
}

/// Builds the report of `run_dir`: writes the PNG figures and `index.html` into the output folder
/// (created if needed) and returns their paths and the notes about missing inputs.
///
/// Fails with the file named when an input that is present cannot be read or parsed, when
/// `--class` names a class the class table lacks, or when the output cannot be written. Inputs
/// are never modified; each output is written atomically.
pub fn build_report(run_dir: &Path, opts: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let inputs = layout::discover(run_dir, opts.tomogram.as_deref())?;
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("report"));
    let mut notes: Vec<String> = Vec::new();
    let mut figures: Vec<(String, Vec<u8>)> = Vec::new(); // (file name, PNG)
    let mut sections: Vec<Section> = Vec::new();

    let classes = match &inputs.class_table {
        Some(p) => Some(ClassTable::load(p)?),
        None => None,
    };
    let select = match (&opts.class, &classes) {
        (None, _) => ClassSelect::All,
        (Some(name), Some(t)) => ClassSelect::Label(t.get(name)?.label),
        (Some(name), None) => {
            return Err(ReportError::Invalid(format!(
                "--class {name}: no class table found in {} (looked for class_table.toml in the run and data folders)",
                run_dir.display()
            )))
        }
    };

    sections.push(results_section(&inputs, &mut notes)?);
    sections.push(timings_section(&inputs, &mut notes)?);
    sections.push(slices_section(
        &inputs,
        classes.as_ref(),
        select,
        opts,
        &mut figures,
        &mut notes,
    )?);
    sections.push(learning_section(&inputs, &mut figures, &mut notes)?);
    sections.push(pr_section(&inputs, &mut figures, &mut notes)?);
    sections.push(config_section(&inputs, &mut notes)?);

    std::fs::create_dir_all(&out_dir).map_err(|source| ReportError::Io {
        path: out_dir.clone(),
        source,
    })?;
    let mut figure_paths = Vec::new();
    for (name, png) in &figures {
        let p = out_dir.join(name);
        capsid_core::write_atomically(&p, |w| std::io::Write::write_all(w, png))?;
        figure_paths.push(p);
    }
    let meta = format!(
        "Run folder {} · tomogram {} · class {} · capsid {}",
        run_dir.display(),
        inputs.tomo_name.as_deref().unwrap_or("—"),
        opts.class.as_deref().unwrap_or("all"),
        capsid_core::VERSION
    );
    let page = html::page("capsid run report", &meta, &sections);
    let html_path = out_dir.join("index.html");
    capsid_core::write_atomically(&html_path, |w| {
        std::io::Write::write_all(w, page.as_bytes())
    })?;
    Ok(ReportSummary {
        html: html_path,
        figures: figure_paths,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_choice() {
        assert_eq!(slice_scale(None, [64, 64, 64]), 4);
        assert_eq!(slice_scale(None, [200, 200, 200]), 2);
        assert_eq!(slice_scale(None, [200, 512, 512]), 1);
        assert_eq!(slice_scale(None, [100, 1000, 1000]), 1);
        assert_eq!(slice_scale(Some(20), [64, 64, 64]), 8);
        assert_eq!(slice_scale(Some(0), [64, 64, 64]), 1);
    }
}
