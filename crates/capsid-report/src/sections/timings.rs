//! The stage wall-time section: one row per stage of `timings.json` (seconds and human-readable
//! wall time) and the total.

use super::note;
use crate::html::{self, Section};
use crate::summary::{self, Table};
use crate::{layout, ReportError};
use capsid_core::outputs::{StageTiming, Timings};

pub(crate) fn timings_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let body = match &inputs.timings {
        None => note(notes, "No timings.json: stage wall times unknown.".into()),
        Some(p) => {
            let stages = Timings::read(p)
                .map_err(|e| ReportError::input(p, e.to_string()))?
                .stages;
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
                    stage_details(s),
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

/// The details column of a stage: its command and device, as `key=value`.
fn stage_details(s: &StageTiming) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &s.command {
        parts.push(format!("command={c}"));
    }
    if let Some(d) = &s.device {
        parts.push(format!("device={d}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_name_command_and_device() {
        let s = StageTiming {
            name: "train".into(),
            seconds: 4000.0,
            command: None,
            device: Some("cpu".into()),
        };
        assert_eq!(stage_details(&s), "device=cpu");
        let s = StageTiming {
            command: Some("capsid train".into()),
            ..s
        };
        assert_eq!(stage_details(&s), "command=capsid train, device=cpu");
    }
}
