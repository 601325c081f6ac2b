//! The learning-curve section: one figure per trained model from its `train/<model>/metrics.csv`.

use super::{note, png_name};
use crate::html::{self, Section};
use crate::{curves, figure, layout, ReportError};

pub(crate) fn learning_section(
    inputs: &layout::RunInputs,
    figures: &mut Vec<(String, Vec<u8>)>,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    if inputs.training.is_empty() {
        body.push_str(&note(
            notes,
            "No training metrics (train/<model>/metrics.csv): no learning curves.".into(),
        ));
    }
    for (model, path) in &inputs.training {
        let table =
            curves::MetricsTable::from_run(&capsid_core::run_metrics::RunMetrics::read(path)?);
        match curves::learning_curve_figure(model, &table)? {
            Some(img) => {
                let png = figure::png_bytes(&img)?;
                body.push_str(&html::figure(
                    &png,
                    &format!("{model} learning curves"),
                    &format!("{model}: learning curves from {}.", path.display()),
                ));
                figures.push((png_name("learning", model), png));
            }
            None => body.push_str(&note(
                notes,
                format!("{}: no curve columns.", path.display()),
            )),
        }
    }
    Ok(Section {
        id: "learning".into(),
        title: "Learning curves".into(),
        body,
    })
}
