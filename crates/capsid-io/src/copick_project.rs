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

/// A local copick project opened from its configuration: its roots and pickable objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The configuration file.
    pub config: PathBuf,
    /// The overlay root, then the static root when there is one (local folders).
    pub roots: Vec<PathBuf>,
    pub objects: Vec<PickableObject>,
}

/// A copick root URL or path as a local folder (`local://` stripped; relative paths from the
/// configuration's folder); other file systems (s3://, …) are an error.
fn local_root(config: &Path, url: &str) -> Result<PathBuf, IoError> {
    let path = match url.split_once("://") {
        None => url,
        Some(("local" | "file", rest)) => rest,
        Some((scheme, _)) => {
            return Err(IoError::format(
                config,
                format!("root {url}: only local projects are read ({scheme}:// is not); copy the project to a local folder"),
            ))
        }
    };
    let p = PathBuf::from(path);
    Ok(if p.is_relative() {
        config.parent().unwrap_or(Path::new(".")).join(p)
    } else {
        p
    })
}

impl Project {
    /// Reads the configuration `config` (copick's JSON: `overlay_root`, optional
    /// `static_root`, `pickable_objects`).
    pub fn open(config: &Path) -> Result<Self, IoError> {
        let text = std::fs::read_to_string(config).map_err(|e| IoError::io(config, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| IoError::format(config, format!("not a copick configuration: {e}")))?;
        let mut roots = Vec::new();
        for key in ["overlay_root", "static_root"] {
            if let Some(url) = v.get(key).and_then(|u| u.as_str()) {
                roots.push(local_root(config, url)?);
            }
        }
        if roots.is_empty() {
            return Err(IoError::format(
                config,
                "not a copick configuration: no overlay_root",
            ));
        }
        let mut objects = Vec::new();
        for (k, o) in v
            .get("pickable_objects")
            .and_then(|o| o.as_array())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = o.get("name").and_then(|n| n.as_str()).ok_or_else(|| {
                IoError::format(config, format!("pickable object {} has no name", k + 1))
            })?;
            let color = o
                .get("color")
                .and_then(|c| serde_json::from_value::<[u8; 4]>(c.clone()).ok())
                .unwrap_or_else(|| object_color(k));
            objects.push(PickableObject {
                name: name.to_string(),
                label: o
                    .get("label")
                    .and_then(|l| l.as_u64())
                    .and_then(|l| u8::try_from(l).ok())
                    .unwrap_or(k as u8 + 1),
                radius_a: o.get("radius").and_then(|r| r.as_f64()).unwrap_or(0.0),
                color,
            });
        }
        Ok(Self {
            config: config.to_path_buf(),
            roots,
            objects,
        })
    }

    /// The runs: folders of `ExperimentRuns` under any root, sorted, each once.
    pub fn runs(&self) -> Vec<String> {
        let mut runs: Vec<String> = self
            .roots
            .iter()
            .filter_map(|r| std::fs::read_dir(r.join("ExperimentRuns")).ok())
            .flat_map(|d| d.flatten())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        runs.sort();
        runs.dedup();
        runs
    }

    /// The runs named in `wanted` (all runs when empty), each checked to exist.
    pub fn select_runs(&self, wanted: &[String]) -> Result<Vec<String>, IoError> {
        let runs = self.runs();
        if wanted.is_empty() {
            if runs.is_empty() {
                return Err(IoError::format(&self.config, "the project has no run"));
            }
            return Ok(runs);
        }
        for w in wanted {
            if !runs.contains(w) {
                return Err(IoError::format(
                    &self.config,
                    format!("no run '{w}' (runs: {})", runs.join(", ")),
                ));
            }
        }
        Ok(wanted.to_vec())
    }

    /// The tomogram of type `tomo_type` of `run`: at voxel spacing `voxel_size_a` when given,
    /// else at the run's only voxel spacing; the overlay root first, then the static one. An
    /// error names what the run has.
    pub fn tomogram(
        &self,
        run: &str,
        voxel_size_a: Option<f64>,
        tomo_type: &str,
    ) -> Result<PathBuf, IoError> {
        let mut spacings: Vec<PathBuf> = Vec::new();
        for root in &self.roots {
            match voxel_size_a {
                Some(vs) => spacings.push(voxel_spacing_dir(root, run, vs)),
                None => spacings.extend(
                    std::fs::read_dir(run_dir(root, run))
                        .into_iter()
                        .flat_map(|d| d.flatten())
                        .map(|e| e.path())
                        .filter(|p| {
                            p.is_dir()
                                && p.file_name().is_some_and(|n| {
                                    n.to_string_lossy().starts_with("VoxelSpacing")
                                })
                        }),
                ),
            }
        }
        let names = |ps: &[PathBuf]| -> String {
            let mut n: Vec<String> = ps
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            n.sort();
            n.dedup();
            n.join(", ")
        };
        if voxel_size_a.is_none() {
            let mut distinct: Vec<_> = spacings.iter().filter_map(|p| p.file_name()).collect();
            distinct.sort();
            distinct.dedup();
            if distinct.len() > 1 {
                return Err(IoError::format(
                    &self.config,
                    format!(
                        "run '{run}' has several voxel spacings ({}): choose one (--voxel-spacing)",
                        names(&spacings)
                    ),
                ));
            }
        }
        let found = spacings
            .iter()
            .map(|s| s.join(format!("{tomo_type}.zarr")))
            .find(|p| p.is_dir());
        found.ok_or_else(|| {
            let have: Vec<PathBuf> = spacings
                .iter()
                .filter_map(|s| std::fs::read_dir(s).ok())
                .flat_map(|d| d.flatten())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "zarr"))
                .collect();
            IoError::format(
                &self.config,
                format!(
                    "run '{run}' has no '{tomo_type}' tomogram{} (found: {})",
                    voxel_size_a
                        .map(|v| format!(" at {v:.3} Å"))
                        .unwrap_or_default(),
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        names(&have)
                    }
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ribosome() -> PickableObject {
        PickableObject {
            name: "ribosome".into(),
            label: 1,
            radius_a: 150.0,
            color: object_color(0),
        }
    }

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
    fn projects_open_with_runs_and_tomograms() {
        let dir = tempfile::tempdir().unwrap();
        let objects = [ribosome()];
        let cfg = write_config(dir.path(), "sim", "test", &objects, dir.path()).unwrap();
        for run in ["TS_2", "TS_1"] {
            std::fs::create_dir_all(tomogram_path(dir.path(), run, 10.0, "wbp")).unwrap();
        }
        std::fs::create_dir_all(tomogram_path(dir.path(), "TS_2", 20.0, "denoised")).unwrap();
        let p = Project::open(&cfg).unwrap();
        assert_eq!(p.objects, objects);
        assert_eq!(p.runs(), ["TS_1", "TS_2"]);
        assert_eq!(p.select_runs(&[]).unwrap(), ["TS_1", "TS_2"]);
        let e = p.select_runs(&["TS_3".into()]).unwrap_err().to_string();
        assert!(
            e.contains("no run 'TS_3'") && e.contains("TS_1, TS_2"),
            "{e}"
        );
        assert_eq!(
            p.tomogram("TS_1", None, "wbp").unwrap(),
            tomogram_path(dir.path(), "TS_1", 10.0, "wbp")
        );
        assert_eq!(
            p.tomogram("TS_2", Some(10.0), "wbp").unwrap(),
            tomogram_path(dir.path(), "TS_2", 10.0, "wbp")
        );
        let e = p.tomogram("TS_2", None, "wbp").unwrap_err().to_string();
        assert!(e.contains("several voxel spacings"), "{e}");
        let e = p
            .tomogram("TS_2", Some(10.0), "denoised")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no 'denoised' tomogram at 10.000 Å") && e.contains("wbp.zarr"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("s3.json"),
            r#"{"overlay_root": "s3://bucket/x"}"#,
        )
        .unwrap();
        let e = Project::open(&dir.path().join("s3.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only local projects"), "{e}");
    }

    #[test]
    fn config_names_objects_and_an_absolute_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let objects = [ribosome()];
        let p = write_config(dir.path(), "sim", "test", &objects, dir.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        assert_eq!(v["pickable_objects"][0]["name"], "ribosome");
        assert_eq!(v["pickable_objects"][0]["radius"], 150.0);
        let root = v["overlay_root"].as_str().unwrap();
        assert!(root.starts_with("local:///"), "{root}");
    }
}
