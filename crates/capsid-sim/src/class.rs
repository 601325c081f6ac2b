//! Particle classes of a run: building them from the config, and their labels and class tables.

use crate::{derive_seed, library, ClassModel, SimConfig, SimError};
use capsid_core::{ClassDef, ClassTable};
use std::path::PathBuf;

/// Builds the classes of `cfg` at its voxel size (in config order). Labelled classes take labels
/// 1..N in config order; decoys (see [`ClassSpec::decoy`](crate::ClassSpec::decoy)) are built and
/// placed like any class but carry no label.
pub fn build_classes(cfg: &SimConfig) -> Result<Vec<ClassModel>, SimError> {
    let res = cfg.effective_resolution_a();
    cfg.classes
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let model = if let Some(b) = &c.builtin {
                library::builtin_class(&c.name, b, cfg.voxel_size_a, res, cfg.mask_fraction)
            } else if let Some(p) = &c.model {
                library::model_class(&c.name, p, cfg.voxel_size_a, res, cfg.mask_fraction)
            } else if let Some(p) = &c.map {
                library::map_class(
                    &c.name,
                    p,
                    cfg.voxel_size_a,
                    c.map_voxel_size_a,
                    cfg.mask_fraction,
                )
            } else if let Some(o) = &c.scrambled_from {
                let original = cfg.classes.iter().find(|d| &d.name == o);
                let blobs = original.and_then(library::spec_blobs).ok_or_else(|| {
                    SimError::Config(format!(
                        "class '{}': scrambled_from '{o}' must name a builtin or model class",
                        c.name
                    ))
                })??;
                let shell = c.shell_a.unwrap_or(8.0);
                let seed = derive_seed(cfg.seed, u64::MAX, index as u64);
                let scrambled = library::scrambled_blobs(&blobs, shell, seed);
                Ok(library::blob_class(
                    &c.name,
                    format!("scrambled:{o}"),
                    &scrambled,
                    cfg.voxel_size_a,
                    res,
                    cfg.mask_fraction,
                ))
            } else {
                Err(SimError::Config(format!(
                    "class '{}' has no source",
                    c.name
                )))
            };
            model.map(|m| m.with_decoy(c.decoy))
        })
        .collect()
}

/// The label of each class, in class order: 1..N for the labelled classes in order, 0 for decoys.
pub fn class_labels(classes: &[ClassModel]) -> Vec<u8> {
    let mut next = 0u8;
    classes
        .iter()
        .map(|c| {
            if c.decoy {
                0
            } else {
                next = next.saturating_add(1);
                next
            }
        })
        .collect()
}

/// The class table of the labelled `classes` (labels 1..N, radius in Å, template path
/// `templates/<name>.mrc`); decoys are left out.
pub fn class_table(classes: &[ClassModel]) -> ClassTable {
    class_table_of(classes, |c| !c.decoy)
}

/// The table of the decoy classes (labels 1..M among themselves): how `decoys.star` names them.
pub fn decoy_table(classes: &[ClassModel]) -> ClassTable {
    class_table_of(classes, |c| c.decoy)
}

fn class_table_of(classes: &[ClassModel], keep: impl Fn(&ClassModel) -> bool) -> ClassTable {
    ClassTable {
        classes: classes
            .iter()
            .filter(|c| keep(c))
            .enumerate()
            .map(|(i, c)| ClassDef {
                name: c.name.clone(),
                label: (i + 1) as u8,
                radius_a: Some((c.radius_a() * 10.0).round() / 10.0),
                radius_vox: None,
                template: Some(PathBuf::from(format!("templates/{}.mrc", c.name))),
                symmetry: None,
            })
            .collect(),
    }
}
