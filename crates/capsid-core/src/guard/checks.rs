//! Physical and naming checks at the edges: voxel sizes, two maps on one grid, names that become
//! part of file names, label values known to the class table, whole-number maps. Shapes are
//! `[z, y, x]`, voxel sizes `[x, y, z]` in Å.

use super::invalid;
use crate::error::CoreError;
use std::path::Path;

/// Refuses a voxel size that is not a positive finite number of Å on every axis. `what` names
/// the file or option it comes from.
pub fn check_voxel_size(what: &str, voxel_size_a: [f32; 3]) -> Result<(), CoreError> {
    if voxel_size_a.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(invalid(format!(
            "{what}: voxel size {} x {} x {} Å is not a positive number; set it in the header \
             (e.g. `capsid prep` or IMOD's alterheader) or give it as an option",
            voxel_size_a[0], voxel_size_a[1], voxel_size_a[2]
        )));
    }
    Ok(())
}

/// Refuses two maps used together whose shapes differ, or whose voxel sizes differ by more than
/// 0.1 % on any axis (a voxel size of 0, "unknown", matches anything). Names both files.
pub fn check_same_grid(
    a: &Path,
    a_shape_zyx: [usize; 3],
    a_voxel_a: [f32; 3],
    b: &Path,
    b_shape_zyx: [usize; 3],
    b_voxel_a: [f32; 3],
) -> Result<(), CoreError> {
    if a_shape_zyx != b_shape_zyx {
        let xyz = |s: [usize; 3]| format!("{} x {} x {}", s[2], s[1], s[0]);
        return Err(invalid(format!(
            "{} ({} voxels, x × y × z) and {} ({}) differ in shape; maps used together must share one grid",
            a.display(),
            xyz(a_shape_zyx),
            b.display(),
            xyz(b_shape_zyx)
        )));
    }
    for k in 0..3 {
        let (x, y) = (a_voxel_a[k] as f64, b_voxel_a[k] as f64);
        if x > 0.0 && y > 0.0 && ((x - y).abs() > 1e-3 * x.max(y)) {
            return Err(invalid(format!(
                "{} (voxel size {x} Å) and {} ({y} Å) differ in voxel size by more than 0.1 %; \
                 maps used together must share one grid",
                a.display(),
                b.display()
            )));
        }
    }
    Ok(())
}

/// Refuses a name that becomes part of a file name (a class name, a tomogram name) when it holds
/// a path separator, is `.`/`..` or empty, or holds control characters.
pub fn check_file_name_part(what: &str, name: &str) -> Result<(), CoreError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains("..")
        || name.contains('/')
        || name.contains('\\')
        || name.chars().any(char::is_control);
    if bad {
        return Err(invalid(format!(
            "{what} '{}' cannot be part of a file name (no '/', '\\', '..', control characters or empty names)",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Refuses a label map holding values that are not labels of `table` (0 is background). The
/// message lists the unknown values (the first few) and the table's labels.
pub fn check_labels_known(
    what: &Path,
    values: impl IntoIterator<Item = u8>,
    table: &crate::ClassTable,
) -> Result<(), CoreError> {
    let mut seen = [false; 256];
    for v in values {
        seen[v as usize] = true;
    }
    let unknown: Vec<String> = (1..256)
        .filter(|&v| seen[v] && table.by_label(v as u8).is_none())
        .map(|v| v.to_string())
        .collect();
    if !unknown.is_empty() {
        let known: Vec<String> = table
            .classes
            .iter()
            .map(|c| format!("{}={}", c.label, c.name))
            .collect();
        let shown = if unknown.len() > 8 {
            format!("{}, … ({} values)", unknown[..8].join(", "), unknown.len())
        } else {
            unknown.join(", ")
        };
        return Err(invalid(format!(
            "{}: label value(s) {shown} are not in the class table (0 = background, {})",
            what.display(),
            known.join(", ")
        )));
    }
    Ok(())
}

/// Refuses a map that should hold whole numbers 0..=`max` (a label, occupancy or instance map)
/// but holds another value, e.g. a float tomogram given by mistake. `kind` names the map.
pub fn check_integer_map<'a>(
    what: &Path,
    kind: &str,
    values: impl IntoIterator<Item = &'a f32>,
    max: f32,
) -> Result<(), CoreError> {
    if let Some(v) = values
        .into_iter()
        .find(|v| !(v.fract() == 0.0 && (0.0..=max).contains(*v)))
    {
        return Err(invalid(format!(
            "{}: not {kind}: holds the value {v} (expected whole numbers 0..={max}; is this a tomogram?)",
            what.display()
        )));
    }
    Ok(())
}
