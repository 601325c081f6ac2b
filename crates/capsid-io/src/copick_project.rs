//! copick projects on a local file system: the layout copick (and the CZII challenge's data)
//! uses, written by `capsid simulate --copick`.
//!
//! ```text
//! copick_config.json                      name, pickable objects, overlay_root = local://ROOT
//! ROOT/ExperimentRuns/<run>/VoxelSpacing<size, 3 decimals>/<tomo type>.zarr   OME-Zarr tomogram
//! ROOT/ExperimentRuns/<run>/Picks/<user>_<session>_<object>.json              picks (Å)
//! ```
//!
//! A pickable object has a name, a label (its class label), a radius in Å and an RGBA colour;
//! `is_particle` is true for every class capsid writes.

use crate::error::IoError;
use serde_json::json;
use std::path::{Path, PathBuf};

/// File name of the project's configuration, in the project folder.
pub const CONFIG_FILE: &str = "copick_config.json";

/// One pickable object of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct PickableObject {
    pub name: String,
    pub label: u8,
    /// Radius, Å.
    pub radius_a: f64,
    /// RGBA, 0–255.
    pub color: [u8; 4],
}

/// The folder of run `run` under the overlay root `root`.
pub fn run_dir(root: &Path, run: &str) -> PathBuf {
    root.join("ExperimentRuns").join(run)
}

/// The folder of voxel spacing `voxel_size_a` (Å) of run `run` (`VoxelSpacing10.000`).
pub fn voxel_spacing_dir(root: &Path, run: &str, voxel_size_a: f64) -> PathBuf {
    run_dir(root, run).join(format!("VoxelSpacing{voxel_size_a:.3}"))
}

/// The OME-Zarr tomogram of type `tomo_type` (`wbp`, `denoised`, …) of a run at a voxel spacing.
pub fn tomogram_path(root: &Path, run: &str, voxel_size_a: f64, tomo_type: &str) -> PathBuf {
    voxel_spacing_dir(root, run, voxel_size_a).join(format!("{tomo_type}.zarr"))
}

/// The picks file of `object` by `user`, `session` in run `run`.
pub fn picks_path(root: &Path, run: &str, user: &str, session: &str, object: &str) -> PathBuf {
    run_dir(root, run)
        .join("Picks")
        .join(format!("{user}_{session}_{object}.json"))
}

/// A colour for the `k`-th object (a fixed, distinguishable palette).
pub fn object_color(k: usize) -> [u8; 4] {
    const PALETTE: [[u8; 3]; 8] = [
        [230, 25, 75],
        [60, 180, 75],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
    ];
    let [r, g, b] = PALETTE[k % PALETTE.len()];
    [r, g, b, 255]
}

/// Writes the project configuration `dir/copick_config.json` naming `objects` and the overlay
/// root `root` (made absolute, as `local://` URLs need), atomically.
pub fn write_config(
    dir: &Path,
    name: &str,
    description: &str,
    objects: &[PickableObject],
    root: &Path,
) -> Result<PathBuf, IoError> {
    let path = dir.join(CONFIG_FILE);
    let root = std::path::absolute(root).map_err(|e| IoError::io(root, e))?;
    let objects: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "is_particle": true,
                "label": o.label,
                "color": o.color,
                "radius": o.radius_a,
            })
        })
        .collect();
    let config = json!({
        "config_type": "filesystem",
        "name": name,
        "description": description,
        "version": "0.5.0",
        "pickable_objects": objects,
        "overlay_root": format!("local://{}", root.display()),
        "overlay_fs_args": {"auto_mkdir": true},
    });
    let mut text =
        serde_json::to_string_pretty(&config).map_err(|e| IoError::format(&path, e.to_string()))?;
    text.push('\n');
    capsid_core::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .map_err(|e| IoError::format(&path, e.to_string()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_copicks_layout() {
        let root = Path::new("/p");
        assert_eq!(
            tomogram_path(root, "TS_5_4", 10.012, "denoised"),
            Path::new("/p/ExperimentRuns/TS_5_4/VoxelSpacing10.012/denoised.zarr")
        );
        assert_eq!(
            picks_path(root, "TS_5_4", "curation", "0", "ribosome"),
            Path::new("/p/ExperimentRuns/TS_5_4/Picks/curation_0_ribosome.json")
        );
    }

    #[test]
    fn config_names_objects_and_an_absolute_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let objects = [PickableObject {
            name: "ribosome".into(),
            label: 1,
            radius_a: 150.0,
            color: object_color(0),
        }];
        let p = write_config(dir.path(), "sim", "test", &objects, dir.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        assert_eq!(v["pickable_objects"][0]["name"], "ribosome");
        assert_eq!(v["pickable_objects"][0]["radius"], 150.0);
        let root = v["overlay_root"].as_str().unwrap();
        assert!(root.starts_with("local:///"), "{root}");
    }
}
