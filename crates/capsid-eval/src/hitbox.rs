//! The SHREC hitbox rule: picks are looked up in the occupancy (instance) map.
//!
//! * Each voxel of the occupancy map holds 0 (background) or the id of the particle covering it;
//!   id `k` is the `k`-th particle of the truth list (1-based, file order), as SHREC'19's
//!   `occupancy_mask.mrc` and `particle_locations.txt`.
//! * A pick is looked up at its nearest voxel. Inside a particle → a **hit** of that particle: the
//!   first hit (pick file order) is a true positive, later hits are **duplicates** (neither TP nor
//!   FP). Background, or outside the volume → a **miss** (FP). Particles never hit → FN.
//!   Particles whose class is not in the class table count as background.
//! * **Classification** is judged on the first pick per particle: the confusion matrix has one
//!   count per first hit (true class × picked class), misses in the `background` row (by picked
//!   class) and never-hit particles in the `missed` column. Per-class TP/FP/FN are read off this
//!   matrix ([`ConfusionMatrix::class_counts`]).

use crate::matching::ConfusionMatrix;
use crate::{Counts, EvalError};
use capsid_core::{ClassTable, Particle, Volume};
use serde::{Deserialize, Serialize};

/// Per-class scores under the hitbox rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitboxClass {
    pub class: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Result of [`hitbox`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitboxReport {
    /// Particles hit at least once (true positives of localisation, class ignored).
    pub hits: u64,
    /// Picks on an already-hit particle (not counted as FP).
    pub duplicates: u64,
    /// Picks on background, including picks on particles of classes outside the table.
    pub misses: u64,
    /// Picks outside the volume (also counted as misses).
    pub outside: u64,
    /// Particles of table classes never hit.
    pub never_hit: u64,
    /// Localisation counts: TP = hits, FP = misses, FN = never hit.
    pub localisation: Counts,
    pub localisation_precision: f64,
    pub localisation_recall: f64,
    pub localisation_f1: f64,
    /// Per-class scores from the classification confusion matrix.
    pub classes: Vec<HitboxClass>,
    pub confusion: ConfusionMatrix,
}

/// Evaluates `picks` against the occupancy map `occupancy` (`[z, y, x]`, particle ids as numbers,
/// rounded) whose ids index `truth` (1-based). Errors on a pick class not in `classes` or an id
/// beyond the truth list.
pub fn hitbox(
    picks: &[Particle],
    truth: &[Particle],
    occupancy: &Volume<f32>,
    classes: &ClassTable,
) -> Result<HitboxReport, EvalError> {
    let names = classes.names();
    let n = names.len();
    let class_idx = |c: &str| names.iter().position(|x| x == c);
    let mut pick_class = Vec::with_capacity(picks.len());
    for p in picks {
        pick_class.push(class_idx(&p.class).ok_or_else(|| {
            classes.get(&p.class).err().map_or_else(
                || EvalError::Invalid(format!("unknown pick class '{}'", p.class)),
                EvalError::from,
            )
        })?);
    }
    let truth_class: Vec<Option<usize>> = truth.iter().map(|t| class_idx(&t.class)).collect();
    let mut m = ConfusionMatrix::zeros(&names);
    let mut first_hit: Vec<bool> = vec![false; truth.len()];
    let (mut hits, mut duplicates, mut misses, mut outside) = (0u64, 0u64, 0u64, 0u64);
    let [nz, ny, nx] = occupancy.shape_zyx();
    for (i, p) in picks.iter().enumerate() {
        let inside =
            p.position_xyz().iter().all(|v| v.is_finite()) && occupancy.contains_xyz(p.x, p.y, p.z);
        if !inside {
            outside += 1;
            misses += 1;
            m.counts[n][pick_class[i]] += 1;
            continue;
        }
        let (x, y, z) = (
            p.x.round().clamp(0.0, nx as f64 - 1.0),
            p.y.round().clamp(0.0, ny as f64 - 1.0),
            p.z.round().clamp(0.0, nz as f64 - 1.0),
        );
        let v = occupancy.data[[z as usize, y as usize, x as usize]];
        let id = if v.is_finite() { v.round() as i64 } else { 0 };
        if id > truth.len() as i64 {
            return Err(EvalError::Invalid(format!(
                "occupancy map holds particle id {id} at voxel x={x} y={y} z={z}, but the truth list has only {} particles",
                truth.len()
            )));
        }
        let particle = (id >= 1)
            .then(|| (id - 1) as usize)
            .filter(|&t| truth_class[t].is_some());
        match particle {
            None => {
                misses += 1;
                m.counts[n][pick_class[i]] += 1;
            }
            Some(t) if first_hit[t] => duplicates += 1,
            Some(t) => {
                first_hit[t] = true;
                hits += 1;
                if let Some(tc) = truth_class[t] {
                    m.counts[tc][pick_class[i]] += 1;
                }
            }
        }
    }
    let mut never_hit = 0;
    for (t, tc) in truth_class.iter().enumerate() {
        if let (Some(tc), false) = (tc, first_hit[t]) {
            never_hit += 1;
            m.counts[*tc][n] += 1;
        }
    }
    let localisation = Counts {
        tp: hits,
        fp: misses,
        fn_: never_hit,
    };
    let class_scores = (0..n)
        .map(|c| {
            let counts = m.class_counts(c);
            HitboxClass {
                class: names[c].clone(),
                counts,
                precision: counts.precision(),
                recall: counts.recall(),
                f1: counts.f1(),
            }
        })
        .collect();
    Ok(HitboxReport {
        hits,
        duplicates,
        misses,
        outside,
        never_hit,
        localisation,
        localisation_precision: localisation.precision(),
        localisation_recall: localisation.recall(),
        localisation_f1: localisation.f1(),
        classes: class_scores,
        confusion: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsid_core::ClassDef;
    use ndarray::Array3;

    fn table() -> ClassTable {
        let c = |n: &str, l| ClassDef {
            name: n.into(),
            label: l,
            radius_a: None,
            radius_vox: Some(2.0),
            template: None,
            symmetry: None,
        };
        ClassTable {
            classes: vec![c("a", 1), c("b", 2)],
        }
    }

    #[test]
    fn hitbox_counts_unique_hits_duplicates_misses_and_first_pick_classification() {
        // Particles: 1 = a at x 1..=3, 2 = b at x 6..=8, 3 = a at x 12..=13 (never hit), 4 = "zzz"
        // (class outside the table) at x 16.
        let mut occ = Array3::<f32>::zeros((1, 1, 20));
        for x in 1..=3 {
            occ[[0, 0, x]] = 1.0;
        }
        for x in 6..=8 {
            occ[[0, 0, x]] = 2.0;
        }
        occ[[0, 0, 12]] = 3.0;
        occ[[0, 0, 13]] = 3.0;
        occ[[0, 0, 16]] = 4.0;
        let occ = Volume::new(occ, 1.0);
        let truth = vec![
            Particle::new("a", 2.0, 0.0, 0.0),
            Particle::new("b", 7.0, 0.0, 0.0),
            Particle::new("a", 12.5, 0.0, 0.0),
            Particle::new("zzz", 16.0, 0.0, 0.0),
        ];
        let picks = vec![
            Particle::new("a", 2.2, 0.0, 0.0),  // hit 1 (a on a)
            Particle::new("b", 3.4, 0.0, 0.0),  // duplicate of 1 (rounds to x 3)
            Particle::new("a", 6.0, 0.0, 0.0),  // first hit of 2: a on b (wrong class)
            Particle::new("b", 7.0, 0.0, 0.0),  // duplicate of 2: classification already judged
            Particle::new("b", 10.0, 0.0, 0.0), // background → miss
            Particle::new("a", 16.0, 0.0, 0.0), // particle of a class outside the table → miss
            Particle::new("a", 25.0, 0.0, 0.0), // outside the volume → miss
        ];
        let r = hitbox(&picks, &truth, &occ, &table()).unwrap();
        assert_eq!(
            (r.hits, r.duplicates, r.misses, r.outside, r.never_hit),
            (2, 2, 3, 1, 1)
        );
        assert_eq!(
            r.localisation,
            Counts {
                tp: 2,
                fp: 3,
                fn_: 1
            }
        );
        // rows a, b, background; cols a, b, missed
        assert_eq!(
            r.confusion.counts,
            vec![vec![1, 0, 1], vec![1, 0, 0], vec![2, 1, 0]]
        );
        assert_eq!(
            r.classes[0].counts,
            Counts {
                tp: 1,
                fp: 3,
                fn_: 1
            }
        );
        assert_eq!(
            r.classes[1].counts,
            Counts {
                tp: 0,
                fp: 1,
                fn_: 1
            }
        );
    }

    #[test]
    fn ids_beyond_the_truth_list_and_unknown_classes_are_errors() {
        let mut occ = Array3::<f32>::zeros((1, 1, 4));
        occ[[0, 0, 1]] = 5.0;
        let occ = Volume::new(occ, 1.0);
        let truth = vec![Particle::new("a", 1.0, 0.0, 0.0)];
        let e = hitbox(&[Particle::new("a", 1.0, 0.0, 0.0)], &truth, &occ, &table()).unwrap_err();
        assert!(e.to_string().contains("particle id 5"), "{e}");
        let e = hitbox(&[Particle::new("q", 0.0, 0.0, 0.0)], &truth, &occ, &table()).unwrap_err();
        assert!(e.to_string().contains("unknown class 'q'"), "{e}");
    }
}
