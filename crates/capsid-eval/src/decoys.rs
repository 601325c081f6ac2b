//! Identification, not only detection: where the false picks lie, and how many look-alikes
//! ("decoys": unlabelled particles of the same size as a target, e.g. `capsid simulate --preset
//! hard`'s `*_decoy` classes) were picked as targets.
//!
//! Each false pick of a target class (a pick that the strict one-to-one matching left unmatched)
//! is put in the first of these bins that holds it:
//! 1. **decoy**: it lies inside a decoy, i.e. within the decoy class's radius of a decoy centre;
//! 2. **other class**: inside a true particle of another target class (a confusion);
//! 3. **own class**: inside a true particle of its own class but beyond the tolerance, or a second
//!    pick of an already matched particle (a localisation error or a duplicate);
//! 4. **background**: anywhere else (noise, membranes, other unlabelled material).
//!
//! A decoy counts as **picked as a target** when at least one pick of any target class lies
//! within its radius. Radii are whole particle radii (not the match tolerance): a pick anywhere
//! inside a look-alike is an identification error. Positions are `[x, y, z]` in voxels of the
//! tomogram; particles of different tomograms never meet (see [`crate::matching::same_tomogram`]).

use crate::matching::{distance, match_class, same_tomogram, EvalParams};
use crate::EvalError;
use capsid_core::{ClassTable, Particle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the false picks of one target class lie.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FalsePickBreakdown {
    pub class: String,
    /// All false picks of the class (the FP of the class's scores).
    pub false_picks: u64,
    /// Inside a decoy.
    pub on_decoys: u64,
    /// Inside a true particle of another target class.
    pub on_other_classes: u64,
    /// Inside a true particle of its own class, beyond the tolerance or a duplicate.
    pub on_own_class: u64,
    /// Anywhere else.
    pub background: u64,
}

/// How many particles of one decoy class were picked as targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecoyPicked {
    pub decoy_class: String,
    /// Decoy radius in voxels.
    pub radius_vox: f64,
    /// Decoys of the class (inside the volume).
    pub n: u64,
    /// Decoys with at least one target pick inside.
    pub picked: u64,
    /// `picked / n` (0 when `n` is 0).
    pub share_picked: f64,
    /// Decoys picked, by the target class of the pick that lies inside (a decoy picked as two
    /// classes counts once for each).
    pub picked_as: BTreeMap<String, u64>,
}

/// The identification part of an evaluation: false picks by where they lie, decoys picked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecoyReport {
    pub false_picks: Vec<FalsePickBreakdown>,
    pub decoys: Vec<DecoyPicked>,
    /// All decoys, all decoys picked as targets, and the share.
    pub n_decoys: u64,
    pub decoys_picked: u64,
    pub share_decoys_picked: f64,
}

/// Radius of every class of `table` in voxels (`voxel_size_a` converts radii given in Å).
fn radii_vox(table: &ClassTable, voxel_size_a: f64) -> Result<BTreeMap<String, f64>, EvalError> {
    let mut out = BTreeMap::new();
    for c in &table.classes {
        let r = match c.radius() {
            capsid_core::Radius::Angstrom(a) if voxel_size_a.is_nan() || voxel_size_a <= 0.0 => {
                return Err(EvalError::Invalid(format!(
                    "class '{}' has its radius in Å ({a}); the voxel size is needed",
                    c.name
                )))
            }
            r => r.to_voxels(voxel_size_a),
        };
        out.insert(c.name.clone(), r);
    }
    Ok(out)
}

/// Sorts particle indices by x for pruned neighbour scans.
fn by_x(list: &[Particle]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..list.len())
        .filter(|&i| list[i].position_xyz().iter().all(|c| c.is_finite()))
        .collect();
    v.sort_by(|&a, &b| list[a].x.total_cmp(&list[b].x).then(a.cmp(&b)));
    v
}

/// The particles of `list` (indices from `sorted`, x-sorted) whose centre lies within
/// `radius(particle)` of `p` in the same tomogram; `max_r` bounds every radius.
fn containing<'a>(
    p: &'a Particle,
    list: &'a [Particle],
    sorted: &'a [usize],
    max_r: f64,
    radius: &'a dyn Fn(&Particle) -> f64,
) -> impl Iterator<Item = usize> + 'a {
    let pos = p.position_xyz();
    let start = sorted.partition_point(|&t| list[t].x < pos[0] - max_r);
    sorted[start..]
        .iter()
        .copied()
        .take_while(move |&t| list[t].x <= pos[0] + max_r)
        .filter(move |&t| {
            same_tomogram(p, &list[t])
                && distance(&pos, &list[t].position_xyz()) <= radius(&list[t])
        })
}

/// Breaks down the false picks of every class of `classes` and counts the decoys picked.
/// `picks` and `truth` are as for [`crate::evaluate_picks`] (truth of classes outside `classes`
/// is ignored); `decoys` are the decoy particles, their classes named in `decoy_classes` (radii).
/// Decoys outside `params.shape_xyz` are not counted.
/// Refuses decoys and picks that name their tomograms but share none: no decoy could then meet
/// a pick, and "0 look-alikes picked" would be an artefact of the names (e.g. picks named after
/// a label map, `tomo_003_labels`, against decoys of `tomo_003`). Lists without names, or with
/// at least one name in common, pass.
pub fn check_tomograms_meet(picks: &[Particle], decoys: &[Particle]) -> Result<(), EvalError> {
    let names = |l: &[Particle]| -> Option<std::collections::BTreeSet<String>> {
        l.iter().map(|p| p.tomogram.clone()).collect()
    };
    match (names(picks), names(decoys)) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() && a.is_disjoint(&b) => {
            let show = |s: &std::collections::BTreeSet<String>| {
                s.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            };
            Err(EvalError::Invalid(format!(
                "the picks are of tomogram(s) {} and the decoys of {}: no decoy can meet a pick \
                 (name the picks' tomogram with `capsid pick --tomo-name`)",
                show(&a),
                show(&b)
            )))
        }
        _ => Ok(()),
    }
}

pub fn decoy_report(
    picks: &[Particle],
    truth: &[Particle],
    classes: &ClassTable,
    decoys: &[Particle],
    decoy_classes: &ClassTable,
    params: &EvalParams,
) -> Result<DecoyReport, EvalError> {
    params.validate()?;
    let target_r = radii_vox(classes, params.voxel_size_a)?;
    let decoy_r = radii_vox(decoy_classes, params.voxel_size_a)?;
    for d in decoys {
        if !decoy_r.contains_key(&d.class) {
            return Err(EvalError::Invalid(format!(
                "decoy class '{}' is not in the decoy class table",
                d.class
            )));
        }
    }
    check_tomograms_meet(picks, decoys)?;
    let decoys: Vec<Particle> = decoys
        .iter()
        .filter(|d| crate::matching::inside(d, params.shape_xyz))
        .cloned()
        .collect();
    let truth: Vec<Particle> = truth
        .iter()
        .filter(|t| target_r.contains_key(&t.class))
        .cloned()
        .collect();
    let decoy_sorted = by_x(&decoys);
    let truth_sorted = by_x(&truth);
    let max_decoy_r = decoy_r.values().cloned().fold(0.0, f64::max);
    let max_truth_r = target_r.values().cloned().fold(0.0, f64::max);
    let decoy_radius = |d: &Particle| decoy_r[&d.class];
    let truth_radius = |t: &Particle| target_r[&t.class];

    let mut breakdown = Vec::new();
    // Per decoy: the target classes of the picks inside it.
    let mut picked_as: Vec<std::collections::BTreeSet<String>> =
        vec![Default::default(); decoys.len()];
    for p in picks {
        if !target_r.contains_key(&p.class) {
            continue;
        }
        for d in containing(p, &decoys, &decoy_sorted, max_decoy_r, &decoy_radius) {
            picked_as[d].insert(p.class.clone());
        }
    }
    for c in &classes.classes {
        let r = target_r[&c.name];
        let m = match_class(
            picks,
            &truth,
            &c.name,
            r * params.tolerance_fraction,
            params.shape_xyz,
        );
        let mut b = FalsePickBreakdown {
            class: c.name.clone(),
            false_picks: m.false_picks.len() as u64,
            ..Default::default()
        };
        for &i in &m.false_picks {
            let p = &picks[i];
            if containing(p, &decoys, &decoy_sorted, max_decoy_r, &decoy_radius)
                .next()
                .is_some()
            {
                b.on_decoys += 1;
                continue;
            }
            let inside: Vec<usize> =
                containing(p, &truth, &truth_sorted, max_truth_r, &truth_radius).collect();
            if inside.iter().any(|&t| truth[t].class != c.name) {
                b.on_other_classes += 1;
            } else if !inside.is_empty() {
                b.on_own_class += 1;
            } else {
                b.background += 1;
            }
        }
        breakdown.push(b);
    }
    let mut per_class = Vec::new();
    for dc in &decoy_classes.classes {
        let idx: Vec<usize> = (0..decoys.len())
            .filter(|&i| decoys[i].class == dc.name)
            .collect();
        let picked = idx.iter().filter(|&&i| !picked_as[i].is_empty()).count() as u64;
        let mut by = BTreeMap::new();
        for &i in &idx {
            for c in &picked_as[i] {
                *by.entry(c.clone()).or_insert(0) += 1;
            }
        }
        per_class.push(DecoyPicked {
            decoy_class: dc.name.clone(),
            radius_vox: decoy_r[&dc.name],
            n: idx.len() as u64,
            picked,
            share_picked: share(picked, idx.len() as u64),
            picked_as: by,
        });
    }
    let n_decoys = decoys.len() as u64;
    let decoys_picked = picked_as.iter().filter(|s| !s.is_empty()).count() as u64;
    Ok(DecoyReport {
        false_picks: breakdown,
        decoys: per_class,
        n_decoys,
        decoys_picked,
        share_decoys_picked: share(decoys_picked, n_decoys),
    })
}

fn share(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

impl DecoyReport {
    /// Text: false picks by where they lie, and decoys picked as targets.
    pub fn to_table(&self) -> String {
        let w = self
            .false_picks
            .iter()
            .map(|b| b.class.len())
            .chain(self.decoys.iter().map(|d| d.decoy_class.len()))
            .max()
            .unwrap_or(5)
            .max(7);
        let mut s = format!(
            "\nFalse picks by where they lie (inside a particle's radius)\n{:<w$} {:>6} {:>6} {:>6} {:>6} {:>10}\n",
            "class", "FP", "decoy", "other", "own", "background"
        );
        for b in &self.false_picks {
            s += &format!(
                "{:<w$} {:>6} {:>6} {:>6} {:>6} {:>10}\n",
                b.class,
                b.false_picks,
                b.on_decoys,
                b.on_other_classes,
                b.on_own_class,
                b.background
            );
        }
        s += &format!(
            "\nDecoys picked as targets: {} of {} ({:.1} %)\n{:<w$} {:>6} {:>7} {:>7}  picked as\n",
            self.decoys_picked,
            self.n_decoys,
            100.0 * self.share_decoys_picked,
            "decoy",
            "n",
            "picked",
            "share"
        );
        for d in &self.decoys {
            let by: Vec<String> = d
                .picked_as
                .iter()
                .map(|(c, k)| format!("{c} {k}"))
                .collect();
            s += &format!(
                "{:<w$} {:>6} {:>7} {:>7.3}  {}\n",
                d.decoy_class,
                d.n,
                d.picked,
                d.share_picked,
                by.join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, f64)]) -> ClassTable {
        crate::test_table(entries)
    }

    fn p(class: &str, x: f64, y: f64, z: f64) -> Particle {
        Particle::new(class.to_string(), x, y, z)
    }

    fn params() -> EvalParams {
        EvalParams {
            tolerance_fraction: 0.5,
            voxel_size_a: 10.0,
            ..Default::default()
        }
    }

    #[test]
    fn false_picks_are_binned_by_what_they_hit() {
        let classes = table(&[("big", 10.0), ("small", 3.0)]);
        let decoy_classes = table(&[("big_decoy", 10.0)]);
        let truth = vec![p("big", 20.0, 20.0, 20.0), p("small", 60.0, 60.0, 20.0)];
        let decoys = vec![
            p("big_decoy", 100.0, 20.0, 20.0),
            p("big_decoy", 100.0, 80.0, 20.0),
        ];
        let picks = vec![
            p("big", 21.0, 20.0, 20.0),    // TP
            p("big", 27.0, 20.0, 20.0),    // inside own particle, beyond 5 voxels: own
            p("big", 103.0, 20.0, 20.0),   // inside a decoy
            p("small", 100.0, 20.0, 22.0), // the same decoy picked as small
            p("big", 61.0, 60.0, 20.0),    // inside the small particle: other class
            p("big", 150.0, 150.0, 20.0),  // background
        ];
        let r = decoy_report(&picks, &truth, &classes, &decoys, &decoy_classes, &params()).unwrap();
        let big = &r.false_picks[0];
        assert_eq!(
            (
                big.false_picks,
                big.on_decoys,
                big.on_other_classes,
                big.on_own_class,
                big.background
            ),
            (4, 1, 1, 1, 1)
        );
        let small = &r.false_picks[1];
        assert_eq!((small.false_picks, small.on_decoys), (1, 1));
        assert_eq!((r.n_decoys, r.decoys_picked), (2, 1));
        assert!((r.share_decoys_picked - 0.5).abs() < 1e-12);
        assert_eq!(r.decoys[0].picked_as.get("big"), Some(&1));
        assert_eq!(r.decoys[0].picked_as.get("small"), Some(&1));
    }

    #[test]
    fn tomograms_are_kept_apart_and_unknown_decoys_are_an_error() {
        let classes = table(&[("big", 10.0)]);
        let decoy_classes = table(&[("big_decoy", 10.0)]);
        let mut d = p("big_decoy", 50.0, 50.0, 50.0);
        d.tomogram = Some("a".into());
        let mut pick = p("big", 50.0, 50.0, 50.0);
        pick.tomogram = Some("b".into());
        // Picks of tomograms a and b: the one of b at the decoy's place of a is background.
        let mut other = p("big", 10.0, 10.0, 10.0);
        other.tomogram = Some("a".into());
        let r = decoy_report(
            &[pick.clone(), other],
            &[],
            &classes,
            &[d.clone()],
            &decoy_classes,
            &params(),
        )
        .unwrap();
        assert_eq!(r.decoys_picked, 0);
        assert_eq!(r.false_picks[0].background, 2);
        // Picks only of b, decoys only of a: the names cannot meet; an error, not "0 picked".
        let e = decoy_report(
            &[pick],
            &[],
            &classes,
            &[d.clone()],
            &decoy_classes,
            &params(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tomogram(s) b") && e.contains("decoys of a"),
            "{e}"
        );
        d.class = "nope".into();
        assert!(decoy_report(&[], &[], &classes, &[d], &decoy_classes, &params()).is_err());
    }
}
