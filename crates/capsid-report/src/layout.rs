//! Finding a run's inputs in its folder, and reading the slices and particle lists the figures
//! need.
//!
//! The run-directory layout (every part optional; sections whose inputs are absent are skipped
//! with a note on the page):
//!
//! ```text
//! RUN_DIR/
//!   timings.json                       {"stages": [{"name": "simulate", "seconds": 12.5}, …]}
//!   *.toml                             run configuration (shown verbatim)
//!   class_table.toml                   class table (also looked for in the data folder)
//!   sim/ or data/                      ground truth, SHREC-like; either directly or one folder per
//!     [<tomo>/]                        tomogram (the first in name order, or --tomogram):
//!       reconstruction.mrc             tomogram (or tomogram.mrc)
//!       class_mask.mrc                 ground-truth label map (or labels.mrc)
//!       particle_locations.txt         ground-truth particles (or particles.star/.csv)
//!       class_table.toml
//!   train/[<model>/]metrics.csv        learning curves (capsid-core's `run_metrics` format)
//!   segment/[<model>/]<tomo>_labels.mrc   predicted label map
//!   pick/[<model>/]<tomo>_picks.star   picks (.star, .csv, .txt, .xml or .json)
//!   eval/[<model>/]summary.json        evaluation summary (per-class P/R/F1, PR curves)
//! ```
//!
//! A prediction set is the label map and picks of one model: files directly in `segment/` and
//! `pick/` form the set `prediction`, files in `segment/<model>/` and `pick/<model>/` the set
//! `<model>`.

use crate::error::ReportError;
use capsid_core::Particle;
use ndarray::{Array2, Axis};
use std::path::{Path, PathBuf};

/// The files of one model's predictions for the shown tomogram.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PredictionSet {
    /// Model name (sub-folder), or `prediction` for files directly in `segment/` / `pick/`.
    pub name: String,
    pub labels: Option<PathBuf>,
    pub picks: Option<PathBuf>,
}

/// Everything found in a run folder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunInputs {
    pub run_dir: PathBuf,
    /// Name of the tomogram shown (its folder's name, or the tomogram file's stem).
    pub tomo_name: Option<String>,
    pub timings: Option<PathBuf>,
    pub class_table: Option<PathBuf>,
    pub tomogram: Option<PathBuf>,
    pub truth_labels: Option<PathBuf>,
    pub truth_particles: Option<PathBuf>,
    pub predictions: Vec<PredictionSet>,
    /// `(model, metrics.csv)`.
    pub training: Vec<(String, PathBuf)>,
    /// `(name, summary.json)`.
    pub evaluations: Vec<(String, PathBuf)>,
    /// Configuration files shown on the page.
    pub configs: Vec<PathBuf>,
}

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Sub-folders of `dir`, sorted by name (empty when `dir` is not a folder).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Files of `dir` whose name ends with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with(suffix))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether `run_dir/segment/` (or a per-model sub-folder) holds a label map of tomogram `name`
/// (`<name>_labels.mrc`).
fn has_prediction(run_dir: &Path, name: &str) -> bool {
    let seg = run_dir.join("segment");
    let file = capsid_core::outputs::label_map_file(name);
    seg.join(&file).is_file() || subdirs(&seg).iter().any(|d| d.join(&file).is_file())
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

const TOMOGRAM_NAMES: [&str; 4] = [
    "reconstruction.mrc",
    "tomogram.mrc",
    "reconstruction.mrc.gz",
    "tomogram.mrc.gz",
];
const TRUTH_LABEL_NAMES: [&str; 3] = ["class_mask.mrc", "labels.mrc", "class_mask.mrc.gz"];
const TRUTH_PARTICLE_NAMES: [&str; 4] = [
    "particle_locations.txt",
    "particles.star",
    "particles.csv",
    "particle_locations.csv",
];
const CLASS_TABLE_NAMES: [&str; 2] = ["class_table.toml", "classes.toml"];
const PICK_SUFFIXES: [&str; 5] = [
    "_picks.star",
    "_picks.csv",
    "_picks.txt",
    "_picks.xml",
    "_picks.json",
];

/// Picks the file for tomogram `tomo` among `files` named `<tomo><suffix>`: the exact match, else
/// the only file when there is one.
fn for_tomogram(files: &[PathBuf], tomo: Option<&str>, suffix: &str) -> Option<PathBuf> {
    if let Some(t) = tomo {
        if let Some(p) = files.iter().find(|p| name_of(p) == format!("{t}{suffix}")) {
            return Some(p.clone());
        }
    }
    if files.len() == 1 {
        return Some(files[0].clone());
    }
    None
}

/// Looks through `run_dir` for the inputs of a report (see the module docs). `tomogram` chooses
/// the tomogram folder by name when the data folder holds several. Finds nothing rather than
/// failing when parts are absent; fails only when `run_dir` is not a readable folder.
pub fn discover(run_dir: &Path, tomogram: Option<&str>) -> Result<RunInputs, ReportError> {
    std::fs::read_dir(run_dir).map_err(|source| ReportError::Io {
        path: run_dir.to_path_buf(),
        source,
    })?;
    let mut inp = RunInputs {
        run_dir: run_dir.to_path_buf(),
        ..Default::default()
    };
    inp.timings = first_existing(run_dir, &["timings.json"]);

    // Ground truth: a data folder (sim/, sim_test/ — the demo's held-out tomogram — or data/)
    // itself or one of its sub-folders. Without a name, the tomogram that has a predicted label
    // map is preferred, so the slices show the tomogram the predictions are for.
    let mut candidates: Vec<(PathBuf, PathBuf)> = Vec::new();
    for data in ["sim", "sim_test", "data"]
        .map(|d| run_dir.join(d))
        .into_iter()
        .filter(|d| d.is_dir())
    {
        candidates.push((data.clone(), data.clone()));
        candidates.extend(subdirs(&data).into_iter().map(|d| (data.clone(), d)));
    }
    let has_tomo = |d: &PathBuf| first_existing(d, &TOMOGRAM_NAMES).is_some();
    let predicted = |d: &PathBuf| has_prediction(run_dir, &name_of(d));
    let chosen = match tomogram {
        Some(t) => candidates.iter().find(|(_, d)| name_of(d) == t),
        None => None,
    }
    .or_else(|| candidates.iter().find(|(_, d)| has_tomo(d) && predicted(d)))
    .or_else(|| candidates.iter().find(|(_, d)| has_tomo(d)));
    if let Some((data, dir)) = chosen {
        inp.tomogram = first_existing(dir, &TOMOGRAM_NAMES);
        inp.truth_labels = first_existing(dir, &TRUTH_LABEL_NAMES);
        inp.truth_particles = first_existing(dir, &TRUTH_PARTICLE_NAMES);
        inp.class_table = first_existing(dir, &CLASS_TABLE_NAMES)
            .or_else(|| first_existing(data, &CLASS_TABLE_NAMES))
            .or_else(|| {
                candidates
                    .iter()
                    .find_map(|(d, _)| first_existing(d, &CLASS_TABLE_NAMES))
            });
        // A data folder holding the tomogram itself: `capsid segment` names a `reconstruction.mrc`
        // after its folder.
        inp.tomo_name = Some(if dir != data || predicted(dir) {
            name_of(dir)
        } else {
            tomogram.unwrap_or("reconstruction").to_string()
        });
    }
    if inp.class_table.is_none() {
        inp.class_table = first_existing(run_dir, &CLASS_TABLE_NAMES);
    }
    if inp.tomo_name.is_none() {
        inp.tomo_name = tomogram.map(str::to_string);
    }
    let tomo = inp.tomo_name.clone();

    // Predictions: segment/ and pick/, directly or per model.
    let mut sets: Vec<PredictionSet> = Vec::new();
    fn set_for(sets: &mut Vec<PredictionSet>, name: &str) -> usize {
        match sets.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                sets.push(PredictionSet {
                    name: name.to_string(),
                    ..Default::default()
                });
                sets.len() - 1
            }
        }
    }
    let seg = run_dir.join("segment");
    let mut seg_dirs = vec![("prediction".to_string(), seg.clone())];
    seg_dirs.extend(subdirs(&seg).into_iter().map(|d| (name_of(&d), d)));
    for (name, dir) in seg_dirs {
        if let Some(p) = for_tomogram(
            &files_ending(&dir, capsid_core::outputs::LABEL_MAP_SUFFIX),
            tomo.as_deref(),
            capsid_core::outputs::LABEL_MAP_SUFFIX,
        ) {
            let i = set_for(&mut sets, &name);
            sets[i].labels = Some(p);
        }
    }
    let pick = run_dir.join("pick");
    let mut pick_dirs = vec![("prediction".to_string(), pick.clone())];
    pick_dirs.extend(subdirs(&pick).into_iter().map(|d| (name_of(&d), d)));
    for (name, dir) in pick_dirs {
        for suffix in PICK_SUFFIXES {
            if let Some(p) = for_tomogram(&files_ending(&dir, suffix), tomo.as_deref(), suffix) {
                let i = set_for(&mut sets, &name);
                sets[i].picks = Some(p);
                break;
            }
        }
    }
    inp.predictions = sets;

    // Training curves.
    let train = run_dir.join("train");
    if let Some(p) = first_existing(&train, &[capsid_core::run_metrics::FILE]) {
        inp.training.push(("train".into(), p));
    }
    for d in subdirs(&train) {
        if let Some(p) = first_existing(&d, &[capsid_core::run_metrics::FILE]) {
            inp.training.push((name_of(&d), p));
        }
    }

    // Evaluation summaries.
    let eval = run_dir.join("eval");
    if let Some(p) = first_existing(&eval, &["summary.json"]) {
        inp.evaluations.push(("eval".into(), p));
    }
    for d in subdirs(&eval) {
        if let Some(p) = first_existing(&d, &["summary.json"]) {
            inp.evaluations.push((name_of(&d), p));
        }
    }

    // Configuration: run-level TOML files, then config.toml of each stage folder.
    let mut configs = files_ending(run_dir, ".toml");
    for stage in ["sim", "data", "train", "segment", "pick", "eval"] {
        let d = run_dir.join(stage);
        configs.extend(first_existing(&d, &["config.toml"]));
        for s in subdirs(&d) {
            configs.extend(first_existing(&s, &["config.toml"]));
        }
    }
    inp.configs = configs;
    Ok(inp)
}

/// The central slices of a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct CentralSlices {
    /// XY slice `[y, x]` at `z = nz / 2`.
    pub xy: Array2<f32>,
    /// XZ slice `[z, x]` at `y = ny / 2`.
    pub xz: Array2<f32>,
    /// Shape of the whole volume, `[z, y, x]`.
    pub shape_zyx: [usize; 3],
}

/// The central XY and XZ slices of a volume file. Small volumes (≤ 64 Mi voxels) are read whole;
/// larger ones slab by slab, so memory stays near one slab.
pub fn central_slices(path: &Path) -> Result<CentralSlices, ReportError> {
    central_slices_with(path, 64 << 20)
}

/// [`central_slices`] reading volumes of at most `whole_limit` voxels whole and larger ones slab
/// by slab (8 sections at a time).
pub fn central_slices_with(path: &Path, whole_limit: usize) -> Result<CentralSlices, ReportError> {
    let io = |e: capsid_io::IoError| ReportError::input(e.path().to_path_buf(), strip_path(&e));
    // An MRC file or an OME-Zarr image, opened once.
    let source = capsid_io::VolumeSource::open(path).map_err(io)?;
    let header = source.header();
    let [nz, ny, nx] = header.shape_zyx();
    if nz == 0 || ny == 0 || nx == 0 {
        return Err(ReportError::input(path, "the volume is empty"));
    }
    let (z0, y0) = (nz / 2, ny / 2);
    if nz * ny * nx <= whole_limit {
        let v = source.read_volume().map_err(io)?;
        let xy = v.data.index_axis(Axis(0), z0).to_owned();
        let xz = v.data.index_axis(Axis(1), y0).to_owned();
        return Ok(CentralSlices {
            xy,
            xz,
            shape_zyx: [nz, ny, nx],
        });
    }
    let xy = source
        .read_block(z0, 1, 0, ny)
        .map_err(io)?
        .data
        .index_axis(Axis(0), 0)
        .to_owned();
    let mut xz = Array2::<f32>::zeros((nz, nx));
    const SLAB: usize = 8;
    let mut z = 0;
    while z < nz {
        let len = SLAB.min(nz - z);
        let slab = source.read_block(z, len, 0, ny).map_err(io)?;
        for dz in 0..len {
            xz.row_mut(z + dz)
                .assign(&slab.data.index_axis(Axis(0), dz).index_axis(Axis(0), y0));
        }
        z += len;
    }
    Ok(CentralSlices {
        xy,
        xz,
        shape_zyx: [nz, ny, nx],
    })
}

/// The error's message without its leading `path: ` (the report error adds the path itself).
fn strip_path(e: &capsid_io::IoError) -> String {
    let s = e.to_string();
    let prefix = format!("{}: ", e.path().display());
    s.strip_prefix(&prefix).map(str::to_string).unwrap_or(s)
}

/// Label values of a float slice: rounded, clamped to 0..=255 (capsid-core's `display_label`).
pub fn to_labels(slice: &Array2<f32>) -> Array2<u8> {
    slice.mapv(capsid_core::volume::display_label)
}

/// Reads a particle list (any format capsid-io knows); an empty list is allowed.
pub fn read_particles(
    path: &Path,
    classes: Option<&capsid_core::ClassTable>,
) -> Result<Vec<Particle>, ReportError> {
    let opts = capsid_io::particles::ReadOptions {
        classes: classes.cloned(),
        allow_empty: true,
        class_numbers_as_names: classes.is_none(),
        ..Default::default()
    };
    capsid_io::particles::read_particles(path, &opts)
        .map_err(|e| ReportError::input(e.path().to_path_buf(), strip_path(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn discovers_layout_with_models_and_tomogram_folders() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in [
            "timings.json",
            "run.toml",
            "sim/class_table.toml",
            "sim/model_0/reconstruction.mrc",
            "sim/model_0/class_mask.mrc",
            "sim/model_0/particle_locations.txt",
            "sim/model_1/reconstruction.mrc",
            "segment/unet/model_0_labels.mrc",
            "segment/unet/model_1_labels.mrc",
            "segment/ucaps/model_0_labels.mrc",
            "pick/unet/model_0_picks.star",
            "pick/ucaps/model_0_picks.csv",
            "train/unet/metrics.csv",
            "train/unet/config.toml",
            "train/ucaps/metrics.csv",
            "eval/summary.json",
            "eval/unet/summary.json",
        ] {
            touch(&r.join(f));
        }
        let inp = discover(r, None).unwrap();
        assert_eq!(inp.tomo_name.as_deref(), Some("model_0"));
        assert_eq!(inp.tomogram, Some(r.join("sim/model_0/reconstruction.mrc")));
        assert_eq!(inp.truth_labels, Some(r.join("sim/model_0/class_mask.mrc")));
        assert_eq!(inp.class_table, Some(r.join("sim/class_table.toml")));
        assert_eq!(inp.timings, Some(r.join("timings.json")));
        let names: Vec<&str> = inp.predictions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["ucaps", "unet"]);
        assert_eq!(
            inp.predictions[1].labels,
            Some(r.join("segment/unet/model_0_labels.mrc"))
        );
        assert_eq!(
            inp.predictions[0].picks,
            Some(r.join("pick/ucaps/model_0_picks.csv"))
        );
        assert_eq!(inp.training.len(), 2);
        assert_eq!(
            inp.evaluations
                .iter()
                .map(|e| e.0.as_str())
                .collect::<Vec<_>>(),
            vec!["eval", "unet"]
        );
        assert_eq!(
            inp.configs,
            vec![r.join("run.toml"), r.join("train/unet/config.toml")]
        );
        // Choosing the other tomogram.
        let inp = discover(r, Some("model_1")).unwrap();
        assert_eq!(inp.tomogram, Some(r.join("sim/model_1/reconstruction.mrc")));
        assert_eq!(inp.truth_labels, None);
        assert_eq!(
            inp.predictions
                .iter()
                .find(|p| p.name == "unet")
                .unwrap()
                .labels,
            Some(r.join("segment/unet/model_1_labels.mrc"))
        );
    }

    #[test]
    fn empty_and_missing_folders() {
        let d = tempfile::tempdir().unwrap();
        let inp = discover(d.path(), None).unwrap();
        assert!(inp.tomogram.is_none() && inp.predictions.is_empty() && inp.training.is_empty());
        let e = discover(&d.path().join("nope"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn slab_reading_matches_whole_reading() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.mrc");
        let data =
            ndarray::Array3::from_shape_fn((19, 6, 7), |(z, y, x)| (z * 100 + y * 10 + x) as f32);
        capsid_io::mrc::write_volume(
            &p,
            &capsid_core::Volume::new(data, 2.0),
            capsid_io::mrc::MrcMode::Float32,
        )
        .unwrap();
        let whole = central_slices(&p).unwrap();
        let slabs = central_slices_with(&p, 0).unwrap();
        assert_eq!(whole, slabs);
        assert_eq!(whole.shape_zyx, [19, 6, 7]);
        assert_eq!(whole.xy[[2, 3]], 923.0); // z = 9, y = 2, x = 3
        assert_eq!(whole.xz[[18, 6]], 1836.0); // z = 18, y = 3, x = 6
        let e = central_slices(&d.path().join("none.mrc"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.mrc"), "{e}");
    }

    #[test]
    fn labels_from_floats() {
        let s = ndarray::array![[0.0f32, 1.2], [2.6, f32::NAN]];
        assert_eq!(to_labels(&s), ndarray::array![[0u8, 1], [3, 0]]);
    }

    #[test]
    fn prefers_the_tomogram_that_was_segmented() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let touch = |p: &Path| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        for f in [
            "sim/class_table.toml",
            "sim/tomo_000/reconstruction.mrc",
            "sim/tomo_000/class_mask.mrc",
            "sim/tomo_002/reconstruction.mrc",
            "sim/tomo_002/class_mask.mrc",
            "segment/unet/tomo_002_labels.mrc",
        ] {
            touch(&r.join(f));
        }
        let inp = discover(r, None).unwrap();
        assert_eq!(inp.tomo_name.as_deref(), Some("tomo_002"));
        assert_eq!(
            inp.truth_labels,
            Some(r.join("sim/tomo_002/class_mask.mrc"))
        );
        // A one-tomogram demo: training data in sim/, the held-out tomogram in sim_test/.
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for f in [
            "sim/reconstruction.mrc",
            "sim/class_table.toml",
            "sim_test/reconstruction.mrc",
            "sim_test/class_mask.mrc",
            "segment/unet/sim_test_labels.mrc",
        ] {
            touch(&r.join(f));
        }
        let inp = discover(r, None).unwrap();
        assert_eq!(inp.tomo_name.as_deref(), Some("sim_test"));
        assert_eq!(inp.tomogram, Some(r.join("sim_test/reconstruction.mrc")));
        assert_eq!(inp.class_table, Some(r.join("sim/class_table.toml")));
    }
}
