//! The picks as the page edits them: the list with TP/FP status and missed truth, and its
//! replacement by the page's list.

use super::{Edit, Viewer};
use crate::ViewError;
use capsid_core::Particle;
use capsid_eval::matching::match_class;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A pick as the page sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickDto {
    pub class: String,
    pub x: f64,
    pub y: f64,
    pub z: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Index of the particle as read at start (keeps its angles and tomogram), `None` for new picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<usize>,
    /// `tp` / `fp` when truth is given (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Viewer {
    /// The current picks (with TP/FP status when truth is given) and the missed truth particles.
    pub fn picks_json(&self) -> serde_json::Value {
        let edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        self.picks_json_locked(&edit)
    }

    fn picks_json_locked(&self, edit: &Edit) -> serde_json::Value {
        let mut status: Vec<Option<&str>> = vec![None; edit.picks.len()];
        let mut missed = Vec::new();
        let mut counts = serde_json::Map::new();
        if self.config.truth.is_some() {
            let shape = Some(self.tomo.shape_xyz());
            let mut names: BTreeSet<&str> = edit.picks.iter().map(|p| p.class.as_str()).collect();
            names.extend(self.classes.classes.iter().map(|c| c.name.as_str()));
            for class in names {
                let tol = self.config.tolerance * self.radius_vox(class);
                let m = match_class(&edit.picks, &self.truth, class, tol, shape);
                for pr in &m.pairs {
                    status[pr.pick] = Some("tp");
                }
                for &i in &m.false_picks {
                    status[i] = Some("fp");
                }
                // Truth classes outside the class table are ignored, as by `capsid evaluate`.
                let known = self.classes.get(class).is_ok();
                if known {
                    for &t in &m.missed {
                        let p = &self.truth[t];
                        missed.push(
                            serde_json::json!({"class": p.class, "x": p.x, "y": p.y, "z": p.z}),
                        );
                    }
                }
                counts.insert(
                    class.to_string(),
                    serde_json::json!({"tp": m.pairs.len(), "fp": m.false_picks.len(), "fn": if known { m.missed.len() } else { 0 }}),
                );
            }
        }
        let picks: Vec<PickDto> = edit
            .picks
            .iter()
            .zip(&edit.src)
            .zip(status)
            .map(|((p, src), st)| PickDto {
                class: p.class.clone(),
                x: p.x,
                y: p.y,
                z: p.z,
                score: p.score,
                src: *src,
                status: st.map(str::to_string),
            })
            .collect();
        serde_json::json!({"picks": picks, "missed": missed, "counts": counts, "saves": edit.saves})
    }

    /// Replaces the picks with the page's list (new picks get class, position and score; picks
    /// read at start keep their angles and tomogram name). Returns [`Viewer::picks_json`].
    pub fn set_picks(&self, list: Vec<PickDto>) -> Result<serde_json::Value, ViewError> {
        let mut picks = Vec::with_capacity(list.len());
        let mut src = Vec::with_capacity(list.len());
        for (i, d) in list.into_iter().enumerate() {
            if !(d.x.is_finite() && d.y.is_finite() && d.z.is_finite()) {
                return Err(ViewError::Invalid(format!(
                    "pick {}: non-finite coordinate",
                    i + 1
                )));
            }
            if self.classes.get(&d.class).is_err() {
                return Err(ViewError::Invalid(format!(
                    "pick {}: unknown class '{}' (classes: {})",
                    i + 1,
                    d.class,
                    self.classes.names().join(", ")
                )));
            }
            let orig = d.src.and_then(|s| self.originals.get(s).map(|p| (s, p)));
            let mut p = match orig {
                Some((_, o)) => o.clone(),
                None => Particle::new(d.class.clone(), d.x, d.y, d.z),
            };
            p.class = d.class;
            p.x = d.x;
            p.y = d.y;
            p.z = d.z;
            p.score = d.score;
            picks.push(p);
            src.push(orig.map(|(s, _)| s));
        }
        let mut edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        edit.picks = picks;
        edit.src = src;
        Ok(self.picks_json_locked(&edit))
    }

    /// The current picks.
    pub fn picks(&self) -> Vec<Particle> {
        self.edit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .picks
            .clone()
    }
}
