//! The RELION particle table: which STAR columns hold a particle's position, angles, class,
//! score and tomogram, and the reader that maps a parsed loop to [`Particle`]s.

use super::syntax::{parse_star, StarFile, StarLoop};
use crate::error::IoError;
use crate::particles::{parse_number, ReadOptions};
use capsid_core::{EulerConvention, Particle};
use std::path::Path;

pub(super) const COORD: [&str; 3] = ["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"];
pub(super) const CENTRED: [&str; 3] = [
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
];
const ORIGIN: [&str; 3] = ["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"];
pub(super) const ANGLES: [&str; 3] = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"];
pub(super) const CLASS_NAME: &str = "capsidClassName";
pub(super) const CLASS_NUMBER: &str = "rlnClassNumber";
pub(super) const SCORE: &str = "rlnAutopickFigureOfMerit";
pub(super) const TOMO: &str = "rlnTomoName";
pub(super) const MICROGRAPH: &str = "rlnMicrographName";
/// The extension of Warp's per-tilt-series settings files, which Warp's particle tables name in
/// `rlnMicrographName` (`TS_01.tomostar` for the tomogram `TS_01`).
pub(super) const TOMOSTAR: &str = ".tomostar";

/// The tomogram name of a `rlnTomoName` or `rlnMicrographName` value: Warp's `NAME.tomostar`
/// is the tomogram `NAME`; other values are kept as they are.
pub(super) fn tomogram_name(value: &str) -> String {
    value.strip_suffix(TOMOSTAR).unwrap_or(value).to_string()
}

fn has_coordinates(l: &StarLoop) -> bool {
    l.column(COORD[0]).is_some() || l.column(CENTRED[0]).is_some()
}

/// The loop holding the particles: `data_particles`' coordinate loop, else the first loop with
/// coordinates.
fn particle_loop<'a>(file: &'a StarFile, path: &Path) -> Result<&'a StarLoop, IoError> {
    let preferred = file
        .block("particles")
        .and_then(|b| b.loops.iter().find(|l| has_coordinates(l)));
    preferred
        .or_else(|| file.blocks.iter().flat_map(|b| b.loops.iter()).find(|l| has_coordinates(l)))
        .ok_or_else(|| {
            let names: Vec<String> = file.blocks.iter().map(|b| format!("data_{}", b.name)).collect();
            IoError::format(
                path,
                format!(
                    "no loop with rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst (blocks: {})",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            )
        })
}

/// Reads the particles of STAR text (see the [module docs](super) for the columns).
pub fn parse_particles(
    text: &str,
    path: &Path,
    opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    let file = parse_star(text, path)?;
    let l = particle_loop(&file, path)?;
    let find3 = |names: [&str; 3]| -> Option<[usize; 3]> {
        Some([
            l.column(names[0])?,
            l.column(names[1])?,
            l.column(names[2])?,
        ])
    };
    let missing = |names: [&str; 3]| -> String {
        names
            .iter()
            .filter(|n| l.column(n).is_none())
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Position columns and how to convert them to voxels.
    let (pos_cols, centred) = if l.column(COORD[0]).is_some() {
        (
            find3(COORD).ok_or_else(|| {
                IoError::format(path, format!("missing column(s) {}", missing(COORD)))
            })?,
            false,
        )
    } else {
        (
            find3(CENTRED).ok_or_else(|| {
                IoError::format(path, format!("missing column(s) {}", missing(CENTRED)))
            })?,
            true,
        )
    };
    let need_voxel = |why: &str| {
        IoError::format(
            path,
            format!("{why}: give the tomogram's voxel size in Å (--voxel-size)"),
        )
    };
    let centre_xyz = if centred {
        let v = opts.voxel_size_a.ok_or_else(|| {
            need_voxel("rlnCenteredCoordinateX/Y/ZAngst are Å from the tomogram centre (also give --tomo-shape X,Y,Z)")
        })?;
        let s = opts.tomo_shape_xyz.ok_or_else(|| {
            IoError::format(
                path,
                "rlnCenteredCoordinateX/Y/ZAngst are Å from the tomogram centre: give the tomogram shape (--tomo-shape X,Y,Z)",
            )
        })?;
        Some((v, s.map(|n| n as f64 / 2.0)))
    } else {
        None
    };
    let origin_cols = find3(ORIGIN);
    let angle_cols = if ANGLES.iter().any(|n| l.column(n).is_some()) {
        Some(find3(ANGLES).ok_or_else(|| {
            IoError::format(path, format!("missing angle column(s) {}", missing(ANGLES)))
        })?)
    } else {
        None
    };
    let name_col = l.column(CLASS_NAME);
    let number_col = l.column(CLASS_NUMBER);
    if name_col.is_none() && number_col.is_none() && opts.default_class.is_none() {
        return Err(IoError::format(
            path,
            format!("no class column ({CLASS_NAME} or {CLASS_NUMBER}): name the class of these particles (--class NAME)"),
        ));
    }
    let score_col = l.column(SCORE);
    let tomo_col = l.column(TOMO).or_else(|| l.column(MICROGRAPH));

    let mut out = Vec::with_capacity(l.rows.len());
    for (row, &line) in l.rows.iter().zip(&l.row_lines) {
        let at = format!("line {line}");
        let mut xyz = [0.0; 3];
        for k in 0..3 {
            let name = if centred { CENTRED[k] } else { COORD[k] };
            xyz[k] = parse_number(path, &at, name, &row[pos_cols[k]])?;
        }
        if let Some((voxel, centre)) = centre_xyz {
            for k in 0..3 {
                xyz[k] = xyz[k] / voxel + centre[k];
            }
        }
        if let Some(oc) = origin_cols {
            let mut shift = [0.0; 3];
            for k in 0..3 {
                shift[k] = parse_number(path, &at, ORIGIN[k], &row[oc[k]])?;
            }
            if shift.iter().any(|s| *s != 0.0) {
                let v = opts.voxel_size_a.ok_or_else(|| {
                    need_voxel(&format!("{at}: non-zero rlnOriginX/Y/ZAngst shifts"))
                })?;
                for k in 0..3 {
                    xyz[k] -= shift[k] / v;
                }
            }
        }
        let class = if let Some(c) = name_col {
            row[c].clone()
        } else if let Some(c) = number_col {
            crate::particles::class_from_number(path, &at, CLASS_NUMBER, &row[c], opts)?
        } else {
            opts.default_class.clone().unwrap_or_default()
        };
        let angles = match angle_cols {
            Some(ac) => crate::particles::angles_from_fields(
                path,
                &at,
                ANGLES,
                [
                    Some(row[ac[0]].as_str()),
                    Some(row[ac[1]].as_str()),
                    Some(row[ac[2]].as_str()),
                ],
                EulerConvention::RelionZyz,
            )?,
            None => None,
        };
        let score = score_col
            .map(|c| parse_number(path, &at, SCORE, &row[c]))
            .transpose()?;
        let tomogram = tomo_col.map(|c| tomogram_name(&row[c]));
        let p = Particle {
            class,
            x: xyz[0],
            y: xyz[1],
            z: xyz[2],
            angles,
            score,
            tomogram,
        };
        out.push((at, p));
    }
    Ok(out)
}
