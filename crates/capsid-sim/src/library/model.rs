//! Classes from atomic models (PDB/mmCIF): atoms become element-weighted Gaussians.

use super::ClassModel;
use crate::density::{box_side_for, centre_blobs, render_blobs, Blob};
use crate::error::SimError;
use std::path::Path;

/// Volume of packed protein (Å³) that one atom of atomic number `z` stands for: `z · 2.6 Å³`
/// (protein: ≈ 17 Å³ per heavy atom including its hydrogens, mean Z ≈ 6.6), so heavier elements
/// (P in RNA, S, metals) scatter more.
pub fn atom_weight_a3(atomic_number: usize) -> f64 {
    atomic_number as f64 * 2.6
}

/// Reads the atoms of a PDB or mmCIF file (first model, hydrogens dropped) as point blobs
/// weighted by element (see [`atom_weight_a3`]), centred on their weighted centre.
pub fn model_blobs(path: &Path) -> Result<Vec<Blob>, SimError> {
    let err = |message: String| SimError::Model {
        path: path.to_path_buf(),
        message,
    };
    let path_str = path
        .to_str()
        .ok_or_else(|| err("path is not valid UTF-8".into()))?;
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let mut opts = pdbtbx::ReadOptions::new();
    opts.set_level(pdbtbx::StrictnessLevel::Loose)
        .set_only_first_model(true)
        .set_discard_hydrogens(true)
        .guess_format(path_str);
    let is_pdb = path_str.to_ascii_lowercase().ends_with(".pdb")
        || path_str.to_ascii_lowercase().ends_with(".ent");
    // A panic inside the parser crate on a malformed file becomes a one-line error.
    let parsed = capsid_core::guard::catch_third_party_panic(|| opts.read(path_str));
    let mut blobs: Vec<Blob> = match parsed {
        Ok(Ok((pdb, _warnings))) => pdb
            .atoms()
            .filter_map(|a| {
                let z = a.element()?.atomic_number();
                let (x, y, zz) = a.pos();
                Some(Blob {
                    pos_a: [x, y, zz],
                    sigma_a: 0.0,
                    weight_a3: atom_weight_a3(z) * a.occupancy().clamp(0.01, 1.0),
                })
            })
            .collect(),
        // pdbtbx refuses some legal-enough PDB files (e.g. odd header records); the coordinate
        // records alone are fixed-column and simple, so read those directly.
        Ok(Err(_)) | Err(_) if is_pdb => {
            let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            pdb_atom_records(&text)
        }
        Err(m) => {
            return Err(err(format!(
                "not a readable PDB/mmCIF file (the parser failed: {m})"
            )))
        }
        Ok(Err(errors)) => {
            let first = errors.first().map(|e| format!("{e}")).unwrap_or_default();
            let first = first.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(err(format!("not a readable PDB/mmCIF file: {first}")));
        }
    };
    if blobs.is_empty() {
        return Err(err("no atoms with a known element".into()));
    }
    centre_blobs(&mut blobs);
    Ok(blobs)
}

/// Point blobs from the `ATOM`/`HETATM` records of the first model of PDB-format text (fixed
/// columns: x 31–38, y 39–46, z 47–54, occupancy 55–60, element 77–78; hydrogens dropped).
pub fn pdb_atom_records(text: &str) -> Vec<Blob> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("ENDMDL") {
            break;
        }
        if !(line.starts_with("ATOM") || line.starts_with("HETATM")) || line.len() < 54 {
            continue;
        }
        let field =
            |a: usize, b: usize| line.get(a..b.min(line.len())).map(str::trim).unwrap_or("");
        let (Ok(x), Ok(y), Ok(z)) = (
            field(30, 38).parse::<f64>(),
            field(38, 46).parse::<f64>(),
            field(46, 54).parse::<f64>(),
        ) else {
            continue;
        };
        let occ = field(54, 60).parse::<f64>().unwrap_or(1.0).clamp(0.01, 1.0);
        let mut symbol = field(76, 78).to_string();
        if symbol.is_empty() {
            symbol = field(12, 16)
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .take(1)
                .collect();
        }
        let Some(el) = pdbtbx::Element::from_symbol(&symbol) else {
            continue;
        };
        let zn = el.atomic_number();
        if zn == 1 {
            continue;
        }
        out.push(Blob {
            pos_a: [x, y, z],
            sigma_a: 0.0,
            weight_a3: atom_weight_a3(zn) * occ,
        });
    }
    out
}

/// A class from an atomic model: atoms → element-weighted Gaussians at `resolution_a`.
pub fn model_class(
    class_name: &str,
    path: &Path,
    voxel_size_a: f64,
    resolution_a: f64,
    mask_fraction: f64,
) -> Result<ClassModel, SimError> {
    let blobs = model_blobs(path)?;
    let n = box_side_for(&blobs, voxel_size_a, resolution_a);
    let density = render_blobs(&blobs, n, voxel_size_a, resolution_a);
    Ok(ClassModel::new(
        class_name,
        format!("model:{}", path.display()),
        density,
        voxel_size_a,
        mask_fraction,
    ))
}
