//! copick projects on a local file system: the layout copick (and the CZII challenge's data)
//! uses, written by `capsid simulate --copick`.
//!
//! ```text
//! copick_config.json                      name, pickable objects, overlay_root = local://ROOT
//! ROOT/ExperimentRuns/<run>/VoxelSpacing<size, 3 decimals>/<tomo type>.zarr   OME-Zarr tomogram
//! ROOT/ExperimentRuns/<run>/Picks/<user>_<session>_<object>.json              picks (Å)
//! ROOT/ExperimentRuns/<run>/Segmentations/<size>_<user>_<session>_<name>-multilabel.zarr
//!                                         label map, voxel = object label (OME-Zarr)
//! ```
//!
//! [`load_class_table`] reads a class table from capsid's TOML or from a copick configuration,
//! so a project's configuration serves wherever a class table is asked for.
//!
//! A pickable object has a name, a label (its class label), a radius in Å and an RGBA colour;
//! `is_particle` is true for every class capsid writes.

use crate::error::IoError;
use capsid_core::{ClassDef, ClassTable, Particle};
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

/// The multilabel segmentation `name` of `user`, `session` in run `run` at voxel spacing
/// `voxel_size_a` Å (copick's store name: `<spacing, 3 decimals>_<user>_<session>_<name>-multilabel.zarr`
/// under the run's `Segmentations`).
pub fn multilabel_segmentation_path(
    root: &Path,
    run: &str,
    voxel_size_a: f64,
    user: &str,
    session: &str,
    name: &str,
) -> PathBuf {
    run_dir(root, run).join("Segmentations").join(format!(
        "{voxel_size_a:.3}_{user}_{session}_{name}-multilabel.zarr"
    ))
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

/// A class table from `path`: capsid's TOML, or a copick configuration (JSON: its pickable
/// particle objects, see [`Project::class_table`]).
pub fn load_class_table(path: &Path) -> Result<ClassTable, IoError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return Project::open(path)?.class_table(&[]);
    }
    ClassTable::load(path).map_err(|e| IoError::format(path, strip_prefix(path, &e.to_string())))
}

/// `message` without a leading `path: ` (the error adds the path again).
fn strip_prefix(path: &Path, message: &str) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// A local copick project opened from its configuration: its roots and pickable objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// The configuration file.
    pub config: PathBuf,
    /// The overlay root, then the static root when there is one (local folders).
    pub roots: Vec<PathBuf>,
    /// The pickable objects that are particles (`is_particle` true or absent); segmentation-only
    /// objects (membranes, …) are left out.
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
            if o.get("is_particle").and_then(|p| p.as_bool()) == Some(false) {
                continue;
            }
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

    /// The particle objects named in `names` (all of them when empty) as a class table: the
    /// object's name, label and radius (Å). An unknown name is an error listing the objects.
    pub fn class_table(&self, names: &[String]) -> Result<ClassTable, IoError> {
        let known = || {
            self.objects
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen: Vec<&PickableObject> = if names.is_empty() {
            self.objects.iter().collect()
        } else {
            names
                .iter()
                .map(|n| {
                    self.objects.iter().find(|o| &o.name == n).ok_or_else(|| {
                        IoError::format(
                            &self.config,
                            format!("no pickable particle object '{n}' (objects: {})", known()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if chosen.is_empty() {
            return Err(IoError::format(
                &self.config,
                "the project names no pickable particle object",
            ));
        }
        let table = ClassTable {
            classes: chosen
                .into_iter()
                .map(|o| ClassDef {
                    name: o.name.clone(),
                    label: o.label,
                    radius_a: Some(o.radius_a),
                    radius_vox: None,
                    template: None,
                    symmetry: None,
                })
                .collect(),
        };
        table
            .validate()
            .map_err(|e| IoError::format(&self.config, e))?;
        Ok(table)
    }

    /// The picks of `user`/`session` in `run` for the objects of `classes`, in voxels of
    /// `voxel_size_a` Å (copick stores Å), each naming the run as its tomogram. Each object's file
    /// is taken from the overlay root, else the static root; an object without a file has no
    /// picks. When no object has a file, the error names the user/session pairs the run has.
    pub fn read_picks(
        &self,
        run: &str,
        user: &str,
        session: &str,
        classes: &ClassTable,
        voxel_size_a: f64,
    ) -> Result<Vec<Particle>, IoError> {
        let mut out = Vec::new();
        let mut found = 0;
        for c in &classes.classes {
            let Some(path) = self
                .roots
                .iter()
                .map(|r| picks_path(r, run, user, session, &c.name))
                .find(|p| p.is_file())
            else {
                continue;
            };
            found += 1;
            let opts = crate::particles::ReadOptions {
                voxel_size_a: Some(voxel_size_a),
                classes: Some(classes.clone()),
                default_tomogram: Some(run.to_string()),
                allow_empty: true,
                ..Default::default()
            };
            for mut p in crate::particles::read_particles(&path, &opts)? {
                p.tomogram = Some(run.to_string());
                out.push(p);
            }
        }
        if found == 0 {
            let mut have: Vec<String> = self
                .roots
                .iter()
                .filter_map(|r| std::fs::read_dir(run_dir(r, run).join("Picks")).ok())
                .flat_map(|d| d.flatten())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let stem = name.strip_suffix(".json")?;
                    let mut parts = stem.splitn(3, '_');
                    Some(format!("{}/{}", parts.next()?, parts.next()?))
                })
                .collect();
            have.sort();
            have.dedup();
            return Err(IoError::format(
                &self.config,
                format!(
                    "run '{run}' has no picks of user '{user}', session '{session}' for {} (user/session pairs with picks: {})",
                    classes
                        .classes
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ),
            ));
        }
        Ok(out)
    }

    /// Checks, before anything is picked, that picks of `user`/`session` can be written for
    /// `runs`: each is a run of the project and, unless `force`, has no picks of that user and
    /// session yet (the error names the first file found).
    pub fn check_picks_writable(
        &self,
        runs: &[&str],
        user: &str,
        session: &str,
        force: bool,
    ) -> Result<(), IoError> {
        let all = self.runs();
        let prefix = format!("{user}_{session}_");
        for run in runs {
            if !all.iter().any(|r| r == run) {
                return Err(IoError::format(
                    &self.config,
                    format!(
                        "picks of tomogram '{run}', which is no run of the project (runs: {})",
                        all.join(", ")
                    ),
                ));
            }
            if force {
                continue;
            }
            let picks_dir = run_dir(&self.roots[0], run).join("Picks");
            let existing = std::fs::read_dir(&picks_dir)
                .into_iter()
                .flat_map(|d| d.flatten())
                .map(|e| e.path())
                .find(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with(&prefix) && n.ends_with(".json")
                    })
                });
            if let Some(p) = existing {
                return Err(IoError::format(
                    &p,
                    "copick picks of this user and session exist; --force replaces them",
                ));
            }
        }
        Ok(())
    }

    /// Writes `picks` (x, y, z in voxels of `voxel_size_a` Å, each naming its run as its
    /// tomogram) into the overlay root as copick picks of `user`/`session`: one file per run and
    /// class, coordinates in Å. A pick without a tomogram name or of a run the project lacks is
    /// an error, and so are existing picks of that user and session unless `force` (which
    /// replaces them all, earlier files of other classes included); all is checked before
    /// anything is written. Returns each file with its number of picks.
    pub fn write_picks(
        &self,
        picks: &[Particle],
        user: &str,
        session: &str,
        voxel_size_a: f64,
        force: bool,
    ) -> Result<Vec<(PathBuf, usize)>, IoError> {
        let mut groups: std::collections::BTreeMap<(String, String), Vec<Particle>> =
            Default::default();
        for p in picks {
            let Some(run) = p.tomogram.as_deref() else {
                return Err(IoError::format(
                    &self.config,
                    "a pick names no tomogram: cannot tell which run it belongs to",
                ));
            };
            groups
                .entry((run.to_string(), p.class.clone()))
                .or_default()
                .push(p.clone());
        }
        let runs: Vec<&str> = groups.keys().map(|(r, _)| r.as_str()).collect();
        self.check_picks_writable(&runs, user, session, force)?;
        let overlay = &self.roots[0];
        let paths: Vec<PathBuf> = groups
            .keys()
            .map(|(run, class)| picks_path(overlay, run, user, session, class))
            .collect();
        let opts = crate::particles::WriteOptions {
            format: Some(crate::particles::Format::CopickJson),
            voxel_size_a: Some(voxel_size_a),
            copick_user_id: Some(user.to_string()),
            copick_session_id: Some(session.to_string()),
            ..Default::default()
        };
        // Replacing (force): the user's and session's earlier files of these runs go too, so a
        // class without picks now keeps none from before.
        let prefix = format!("{user}_{session}_");
        for run in &runs {
            let dir = run_dir(overlay, run).join("Picks");
            for e in std::fs::read_dir(&dir)
                .into_iter()
                .flat_map(|d| d.flatten())
            {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.ends_with(".json") && !paths.contains(&p) {
                    std::fs::remove_file(&p).map_err(|e| IoError::io(&p, e))?;
                }
            }
        }
        let mut out = Vec::with_capacity(paths.len());
        for (path, group) in paths.into_iter().zip(groups.values()) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| IoError::io(dir, e))?;
            }
            crate::particles::write_particles(&path, group, &opts)?;
            out.push((path, group.len()));
        }
        Ok(out)
    }

    /// The voxel spacings (Å) of `run`: its `VoxelSpacing<size>` folders under any root, sorted,
    /// each once.
    pub fn voxel_spacings(&self, run: &str) -> Vec<f64> {
        let mut out: Vec<f64> = self
            .roots
            .iter()
            .filter_map(|r| std::fs::read_dir(run_dir(r, run)).ok())
            .flat_map(|d| d.flatten())
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix("VoxelSpacing")?
                    .parse::<f64>()
                    .ok()
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out.dedup();
        out
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

    /// Objects as a class table (by name), picks written in Å and read back in voxels, the
    /// voxel spacings of a run, and the errors that name what the project has.
    #[test]
    fn picks_round_trip_through_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = ribosome();
        small.name = "apo".into();
        small.label = 2;
        small.radius_a = 60.0;
        let cfg = write_config(dir.path(), "sim", "t", &[ribosome(), small], dir.path()).unwrap();
        std::fs::create_dir_all(tomogram_path(dir.path(), "TS_1", 10.0, "wbp")).unwrap();
        let p = Project::open(&cfg).unwrap();
        assert_eq!(p.voxel_spacings("TS_1"), [10.0]);
        let all = p.class_table(&[]).unwrap();
        assert_eq!(all.names(), ["ribosome", "apo"]);
        assert_eq!(all.classes[1].radius_a, Some(60.0));
        let only = p.class_table(&["apo".into()]).unwrap();
        assert_eq!(
            (only.names(), only.classes[0].label),
            (vec!["apo".to_string()], 2)
        );
        let e = p.class_table(&["nope".into()]).unwrap_err().to_string();
        assert!(
            e.contains("no pickable particle object 'nope'") && e.contains("ribosome, apo"),
            "{e}"
        );
        assert_eq!(load_class_table(&cfg).unwrap(), all);

        let mut a = Particle::new("ribosome", 10.0, 20.0, 30.0);
        a.tomogram = Some("TS_1".into());
        let mut b = Particle::new("apo", 1.5, 2.5, 3.5);
        b.tomogram = Some("TS_1".into());
        let written = p
            .write_picks(&[a.clone(), b], "capsid", "0", 10.0, false)
            .unwrap();
        assert_eq!(written.len(), 2);
        assert!(picks_path(dir.path(), "TS_1", "capsid", "0", "ribosome").is_file());
        // In Å on disk.
        let text =
            std::fs::read_to_string(picks_path(dir.path(), "TS_1", "capsid", "0", "ribosome"))
                .unwrap();
        assert!(text.contains("100.0") && text.contains("300.0"), "{text}");
        // Read back in voxels of another spacing: scaled.
        let back = p.read_picks("TS_1", "capsid", "0", &all, 5.0).unwrap();
        let r = back.iter().find(|q| q.class == "ribosome").unwrap();
        assert!(
            (r.x - 20.0).abs() < 1e-9 && (r.z - 60.0).abs() < 1e-9,
            "{r:?}"
        );
        assert_eq!(r.tomogram.as_deref(), Some("TS_1"));
        // Existing picks are kept without force; with force the user's set is replaced whole.
        let e = p
            .write_picks(&[a.clone()], "capsid", "0", 10.0, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--force"), "{e}");
        p.write_picks(&[a.clone()], "capsid", "0", 10.0, true)
            .unwrap();
        assert!(!picks_path(dir.path(), "TS_1", "capsid", "0", "apo").exists());
        // A run the project lacks, and a user without picks.
        let mut c = a.clone();
        c.tomogram = Some("TS_9".into());
        let e = p
            .write_picks(&[c], "capsid", "1", 10.0, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'TS_9', which is no run of the project"), "{e}");
        let e = p
            .read_picks("TS_1", "curation", "0", &all, 10.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no picks of user 'curation'") && e.contains("capsid/0"),
            "{e}"
        );
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
