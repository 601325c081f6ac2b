//! The precision–recall section: one figure per evaluation summary that holds curves, one curve
//! per class.

use super::{note, png_name};
use crate::html::{self, Section};
use crate::{curves, figure, layout, summary, ReportError};

pub(crate) fn pr_section(
    inputs: &layout::RunInputs,
    figures: &mut Vec<(String, Vec<u8>)>,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    let mut any = false;
    for (name, path) in &inputs.evaluations {
        let s = summary::eval_summary(&summary::read_evaluation(path)?);
        if s.pr_curves.is_empty() {
            continue;
        }
        any = true;
        let title = format!("{name}: precision–recall");
        let png = figure::png_bytes(&curves::pr_curve_figure(&title, &s.pr_curves)?)?;
        body.push_str(&html::figure(
            &png,
            &title,
            &format!("{title}, one curve per class, from {}.", path.display()),
        ));
        figures.push((png_name("pr", name), png));
    }
    if !any {
        body.push_str(&note(
            notes,
            "No precision–recall curves in the evaluation summaries.".into(),
        ));
    }
    Ok(Section {
        id: "pr".into(),
        title: "Precision–recall curves".into(),
        body,
    })
}
