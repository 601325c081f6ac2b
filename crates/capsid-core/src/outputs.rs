//! The names of stage outputs that later stages find by name: what `capsid segment` writes for a
//! tomogram and the record beside them through which `capsid pick` finds the model. One place, so
//! that segment, pick, demo and report cannot drift apart.

/// `capsid segment`'s record of a run in its output folder (the model, window settings).
pub const SEGMENT_RECORD: &str = "segment.toml";

/// Ending of a label-map file name after the tomogram's name.
pub const LABEL_MAP_SUFFIX: &str = "_labels.mrc";

/// The label map `capsid segment` writes for tomogram `tomo`: `<tomo>_labels.mrc`.
pub fn label_map_file(tomo: &str) -> String {
    format!("{tomo}{LABEL_MAP_SUFFIX}")
}

/// The probability map of `class` for tomogram `tomo`: `<tomo>_prob_<class>.mrc`.
pub fn prob_map_file(tomo: &str, class: &str) -> String {
    format!("{tomo}_prob_{class}.mrc")
}

/// The tomogram a map of `capsid segment` was computed from, from the map's file stem (no
/// extension): `tomo_003_labels` → `tomo_003`, `tomo_003_prob_ribosome` → `tomo_003` when
/// `ribosome` is one of `classes`; any other stem is kept.
pub fn tomogram_of_map<'a>(stem: &str, classes: impl IntoIterator<Item = &'a str>) -> String {
    let label_stem = LABEL_MAP_SUFFIX.trim_end_matches(".mrc");
    if let Some(t) = stem.strip_suffix(label_stem).filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    for c in classes {
        if let Some(t) = stem
            .strip_suffix(c)
            .and_then(|t| t.strip_suffix("_prob_"))
            .filter(|t| !t.is_empty())
        {
            return t.to_string();
        }
    }
    stem.to_string()
}

/// What `capsid segment` records in its output folder ([`SEGMENT_RECORD`]): the capsid version,
/// the model folder (absolute path), the window settings and the tomograms. `capsid pick` finds
/// the model's tuned picking settings through it. Every field may be missing when reading (a record
/// written by hand or by an older version may hold only `model`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SegmentRecord {
    pub capsid_version: String,
    /// The run folder of the model.
    pub model: std::path::PathBuf,
    /// Window side and overlap, voxels.
    pub patch: usize,
    pub overlap: usize,
    /// Blending of overlapping windows (`uniform` or `gaussian`).
    pub blend: String,
    /// Test-time augmentation (8 mirror images).
    pub tta: bool,
    /// The tomograms segmented by the command that wrote the record.
    pub tomograms: Vec<std::path::PathBuf>,
}

impl SegmentRecord {
    /// Writes the record as `dir/segment.toml` (atomically).
    pub fn write(&self, dir: &std::path::Path) -> Result<(), crate::CoreError> {
        let path = dir.join(SEGMENT_RECORD);
        let text = toml::to_string_pretty(self)
            .map_err(|e| crate::CoreError::Invalid(format!("{}: {e}", path.display())))?;
        crate::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))
    }

    /// Reads `dir/segment.toml`; `Ok(None)` when there is none.
    pub fn read(dir: &std::path::Path) -> Result<Option<Self>, crate::CoreError> {
        let path = dir.join(SEGMENT_RECORD);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| crate::CoreError::Io {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| crate::CoreError::Invalid(format!("{}: {e}", path.display())))
    }
}

/// Stage wall times of a pipeline run (`capsid demo` writes them), read by the report.
pub const TIMINGS: &str = "timings.json";

/// The wall time of each stage of a run, in order: `{"stages": [{"name": "simulate", "seconds":
/// 12.5, "command": "capsid simulate …"}, …]}`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timings {
    pub stages: Vec<StageTiming>,
}

/// One stage of [`Timings`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageTiming {
    pub name: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The command that ran the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Where it ran (`cpu`, a GPU backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl Timings {
    /// Writes `path` (JSON, atomically).
    pub fn write(&self, path: &std::path::Path) -> Result<(), crate::CoreError> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| crate::CoreError::Invalid(format!("{}: {e}", path.display())))?;
        crate::write_atomically(path, |w| std::io::Write::write_all(w, json.as_bytes()))
    }

    /// Reads `path`; errors name the file.
    pub fn read(path: &std::path::Path) -> Result<Self, crate::CoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| {
            crate::CoreError::Invalid(format!("{}: not stage timings: {e}", path.display()))
        })
    }
}

/// The name a tomogram's outputs carry: its file stem (`t1.mrc` → `t1`), or for SHREC's
/// `reconstruction.mrc` its folder's name (`model_3/reconstruction.mrc` → `model_3`). An OME-Zarr
/// image is named by its folder without `.zarr` (`tomo.zarr` and its levels `tomo.zarr/1` →
/// `tomo`), or, in a copick project (`RUN/VoxelSpacing10.000/wbp.zarr`), by its run (`RUN`).
pub fn tomogram_name(path: &std::path::Path) -> String {
    let is_zarr = |p: &std::path::Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".zarr"))
    };
    // A level inside an image names the image.
    let image = match path.parent() {
        Some(parent) if !is_zarr(path) && is_zarr(parent) => parent,
        _ => path,
    };
    if is_zarr(image) {
        let spacing = image.parent();
        if let (Some(true), Some(run)) = (
            spacing
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().starts_with("VoxelSpacing")),
            spacing.and_then(folder_name),
        ) {
            return run;
        }
    }
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tomogram".into());
    let stem = stem.trim_end_matches(".mrc").to_string();
    match (stem.as_str(), folder_name(image)) {
        ("reconstruction", Some(d)) => d,
        _ => stem,
    }
}

/// [`tomogram_name`] for several tomograms at once, kept apart: a name that two of them share
/// gets its folder's name in front (`a/t1.mrc`, `b/t1.mrc` → `a_t1`, `b_t1`).
pub fn tomogram_names(paths: &[std::path::PathBuf]) -> Vec<String> {
    let base: Vec<String> = paths.iter().map(|p| tomogram_name(p)).collect();
    base.iter()
        .zip(paths)
        .map(|(b, p)| {
            if base.iter().filter(|x| *x == b).count() > 1 {
                format!("{}_{b}", folder_name(p).unwrap_or_default())
            } else {
                b.clone()
            }
        })
        .collect()
}

/// The name of the folder holding `path`, if it has one.
fn folder_name(path: &std::path::Path) -> Option<String> {
    path.parent()
        .and_then(|d| d.file_name())
        .map(|s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_inverse() {
        assert_eq!(label_map_file("tomo_003"), "tomo_003_labels.mrc");
        assert_eq!(prob_map_file("tomo_003", "tiny"), "tomo_003_prob_tiny.mrc");
        let classes = ["ribosome"];
        assert_eq!(tomogram_of_map("tomo_003_labels", classes), "tomo_003");
        assert_eq!(
            tomogram_of_map("tomo_003_prob_ribosome", classes),
            "tomo_003"
        );
        // Not a class of the table, or nothing left: kept as it is.
        assert_eq!(
            tomogram_of_map("tomo_003_prob_other", classes),
            "tomo_003_prob_other"
        );
        assert_eq!(tomogram_of_map("_labels", classes), "_labels");
        assert_eq!(tomogram_of_map("my_map", classes), "my_map");
    }

    #[test]
    fn tomogram_names_follow_stems_and_shrec_folders() {
        use std::path::PathBuf;
        assert_eq!(tomogram_name(&PathBuf::from("d/t1.mrc")), "t1");
        // OME-Zarr: the image's folder, also for a level; a copick image takes its run's name.
        assert_eq!(tomogram_name(&PathBuf::from("d/tomo.zarr")), "tomo");
        assert_eq!(tomogram_name(&PathBuf::from("d/tomo.zarr/1")), "tomo");
        assert_eq!(
            tomogram_name(&PathBuf::from(
                "proj/ExperimentRuns/TS_5_4/VoxelSpacing10.000/wbp.zarr/0"
            )),
            "TS_5_4"
        );
        assert_eq!(
            tomogram_name(&PathBuf::from("sim/model_3/reconstruction.mrc")),
            "model_3"
        );
        let names = tomogram_names(&[
            PathBuf::from("a/t1.mrc"),
            PathBuf::from("b/t1.mrc"),
            PathBuf::from("b/t2.mrc"),
        ]);
        assert_eq!(names, ["a_t1", "b_t1", "t2"]);
    }

    #[test]
    fn segment_record_round_trip() {
        let dir = std::env::temp_dir().join(format!("capsid-segrec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(SegmentRecord::read(&dir).unwrap(), None);
        let r = SegmentRecord {
            capsid_version: crate::VERSION.into(),
            model: "/runs/unet".into(),
            patch: 64,
            overlap: 25,
            blend: "uniform".into(),
            tta: false,
            tomograms: vec!["t1.mrc".into()],
        };
        r.write(&dir).unwrap();
        assert_eq!(SegmentRecord::read(&dir).unwrap(), Some(r));
        std::fs::write(dir.join(SEGMENT_RECORD), "model = \"/m\"\n").unwrap();
        let only_model = SegmentRecord::read(&dir).unwrap().unwrap();
        assert_eq!(only_model.model, std::path::PathBuf::from("/m"));
        std::fs::write(dir.join(SEGMENT_RECORD), "model = 3\n").unwrap();
        let e = SegmentRecord::read(&dir).unwrap_err().to_string();
        assert!(e.contains("segment.toml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timings_round_trip_and_name_the_file_when_damaged() {
        let dir = std::env::temp_dir().join(format!("capsid-timings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(TIMINGS);
        let t = Timings {
            stages: vec![StageTiming {
                name: "simulate".into(),
                seconds: 12.5,
                command: Some("capsid simulate --preset demo".into()),
                device: None,
            }],
        };
        t.write(&path).unwrap();
        assert_eq!(Timings::read(&path).unwrap(), t);
        std::fs::write(&path, r#"{"stages":[{"name":"x"}]}"#).unwrap();
        let e = Timings::read(&path).unwrap_err().to_string();
        assert!(e.contains("timings.json") && e.contains("seconds"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
