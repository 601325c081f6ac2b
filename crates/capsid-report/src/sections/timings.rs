//! The stage wall-time section: one row per stage of `timings.json` (seconds and human-readable
//! wall time) and the total.

use super::{note, read_text};
use crate::html::{self, Section};
use crate::summary::{self, Table};
use crate::{layout, ReportError};

pub(crate) fn timings_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let body = match &inputs.timings {
        None => note(notes, "No timings.json: stage wall times unknown.".into()),
        Some(p) => {
            let stages = summary::parse_timings(&read_text(p)?, p)?;
            let mut t = Table {
                header: vec![
                    "stage".into(),
                    "seconds".into(),
                    "wall time".into(),
                    "details".into(),
                ],
                rows: Vec::new(),
            };
            for s in &stages {
                t.rows.push(vec![
                    s.name.clone(),
                    format!("{:.1}", s.seconds),
                    summary::human_duration(s.seconds),
                    s.details.clone(),
                ]);
            }
            let total: f64 = stages.iter().map(|s| s.seconds).sum();
            t.rows.push(vec![
                "total".into(),
                format!("{total:.1}"),
                summary::human_duration(total),
                String::new(),
            ]);
            html::table(&t)
        }
    };
    Ok(Section {
        id: "timings".into(),
        title: "Stage wall times".into(),
        body,
    })
}
