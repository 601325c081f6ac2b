//! The viewer's session: the files given at start, the class table, the edited picks, matching
//! against truth, contrast, saving and auto-centring.

// Split by concern: this module opens the session and describes it (`/api/info`); `picks` edits
// the picks and matches them against truth; `saving` writes them; `planes` renders tomogram and
// overlay planes; `centring` finds the density extremum near a click.

mod centring;
mod picks;
mod planes;
mod saving;

pub use picks::PickDto;
pub use planes::SliceParams;

use crate::volume::MappedVolume;
use crate::ViewError;
use capsid_core::{ClassDef, ClassTable, Particle};
use capsid_io::particles::{read_particles, Format, ReadOptions};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What `capsid view` was given.
#[derive(Debug, Clone)]
pub struct ViewConfig {
    /// The tomogram (MRC).
    pub tomo: PathBuf,
    /// A label map of the same shape (label k = class with label k).
    pub labels: Option<PathBuf>,
    /// Probability maps, `(class, path)`.
    pub probs: Vec<(String, PathBuf)>,
    /// Particle lists whose picks are shown and edited (merged into one list).
    pub picks: Vec<PathBuf>,
    /// Ground-truth particles for TP/FP/FN colouring.
    pub truth: Option<PathBuf>,
    /// Class table (names, labels, radii); without it classes come from the files, radius
    /// [`ViewConfig::default_radius_vox`].
    pub classes: Option<PathBuf>,
    /// Where "save" writes (the extension is replaced by the chosen format's). Default: the first
    /// `--picks` file, else `<tomo stem>_picks.star` beside the tomogram.
    pub save: Option<PathBuf>,
    /// Match tolerance as a fraction of the class radius (0.5: the CZII rule).
    pub tolerance: f64,
    /// Voxel size in Å overriding the tomogram header's (Å radii, copick and RELION 5 files).
    pub voxel_size_a: Option<f64>,
    /// Radius in voxels of classes when no class table is given.
    pub default_radius_vox: f64,
}

impl ViewConfig {
    /// A configuration showing `tomo` alone, with the defaults.
    pub fn new(tomo: impl Into<PathBuf>) -> ViewConfig {
        ViewConfig {
            tomo: tomo.into(),
            labels: None,
            probs: Vec::new(),
            picks: Vec::new(),
            truth: None,
            classes: None,
            save: None,
            tolerance: 0.5,
            voxel_size_a: None,
            default_radius_vox: 10.0,
        }
    }
}

/// One class as the page sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClassDto {
    pub name: String,
    pub label: u8,
    pub radius_vox: f64,
    pub colour: String,
}

/// The editable state behind a mutex.
struct Edit {
    picks: Vec<Particle>,
    /// `src` of each pick (index into `originals`).
    src: Vec<Option<usize>>,
    /// Files already backed up this session (saved over once).
    backed_up: HashSet<PathBuf>,
    saves: usize,
}

/// The whole session: read-only volumes and tables, plus the edited picks.
pub struct Viewer {
    pub config: ViewConfig,
    pub tomo: MappedVolume,
    pub labels: Option<MappedVolume>,
    pub probs: Vec<(String, MappedVolume)>,
    pub classes: ClassTable,
    pub voxel_size_a: f64,
    pub truth: Vec<Particle>,
    pub save_base: PathBuf,
    originals: Vec<Particle>,
    opened: Vec<PathBuf>,
    edit: Mutex<Edit>,
    contrast_cache: Mutex<HashMap<ContrastKey, (f32, f32)>>,
}

/// Slab, σ, low and high percentile (as bits) of a cached display range.
type ContrastKey = (usize, u32, u32, u32);

const PALETTE: [&str; 10] = [
    "#ff3b30", "#34c759", "#0a84ff", "#ff9f0a", "#bf5af2", "#64d2ff", "#ff2d55", "#ffd60a",
    "#30d158", "#ac8e68",
];

fn same_shape(a: &MappedVolume, b: &MappedVolume) -> Result<(), ViewError> {
    if a.shape_xyz() != b.shape_xyz() {
        let [x, y, z] = b.shape_xyz();
        let [tx, ty, tz] = a.shape_xyz();
        return Err(ViewError::Invalid(format!(
            "{}: shape {x} x {y} x {z} differs from the tomogram's {tx} x {ty} x {tz}",
            b.path.display()
        )));
    }
    Ok(())
}

impl Viewer {
    /// Opens every file of `config` (volumes mapped, lists read) and checks shapes agree.
    pub fn open(config: ViewConfig) -> Result<Viewer, ViewError> {
        if !(config.tolerance > 0.0 && config.tolerance.is_finite()) {
            return Err(ViewError::Invalid(format!(
                "tolerance must be positive, got {}",
                config.tolerance
            )));
        }
        let tomo = MappedVolume::open(&config.tomo)?;
        let voxel_size_a = config.voxel_size_a.unwrap_or(tomo.voxel_size_a).max(0.0);
        let labels = match &config.labels {
            Some(p) => {
                let v = MappedVolume::open(p)?;
                same_shape(&tomo, &v)?;
                Some(v)
            }
            None => None,
        };
        let mut probs = Vec::new();
        for (c, p) in &config.probs {
            let v = MappedVolume::open(p)?;
            same_shape(&tomo, &v)?;
            probs.push((c.clone(), v));
        }
        let table = match &config.classes {
            Some(p) => Some(ClassTable::load(p)?),
            None => None,
        };
        let ropts = ReadOptions {
            voxel_size_a: (voxel_size_a > 0.0).then_some(voxel_size_a),
            tomo_shape_xyz: Some(tomo.shape_xyz()),
            classes: table.clone(),
            class_numbers_as_names: table.is_none(),
            default_class: Some("particle".into()),
            allow_empty: true,
            ..Default::default()
        };
        let mut originals = Vec::new();
        for p in &config.picks {
            originals.extend(read_particles(p, &ropts)?);
        }
        let truth = match &config.truth {
            Some(p) => {
                let mut o = ropts.clone();
                // Truth may hold classes the table lacks (ignored, as `capsid evaluate` does).
                o.classes = None;
                o.class_numbers_as_names = true;
                read_particles(p, &o)?
            }
            None => Vec::new(),
        };
        let classes = match table {
            Some(t) => t,
            None => {
                let mut names: BTreeSet<String> = BTreeSet::new();
                names.extend(originals.iter().map(|p| p.class.clone()));
                names.extend(truth.iter().map(|p| p.class.clone()));
                names.extend(config.probs.iter().map(|(c, _)| c.clone()));
                if names.is_empty() {
                    names.insert("particle".into());
                }
                ClassTable {
                    classes: names
                        .into_iter()
                        .take(255)
                        .enumerate()
                        .map(|(i, name)| ClassDef {
                            name,
                            label: (i + 1) as u8,
                            radius_a: None,
                            radius_vox: Some(config.default_radius_vox),
                            template: None,
                            symmetry: None,
                        })
                        .collect(),
                }
            }
        };
        for (c, p) in &config.probs {
            if classes.get(c).is_err() {
                return Err(ViewError::Invalid(format!(
                    "{}: class '{c}' is not in the class table (has: {})",
                    p.display(),
                    classes.names().join(", ")
                )));
            }
        }
        let save_base = match (&config.save, config.picks.first()) {
            (Some(s), _) => s.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => {
                let stem = config
                    .tomo
                    .file_name()
                    .and_then(|s| s.to_str())
                    .unwrap_or("tomo")
                    .trim_end_matches(".gz")
                    .trim_end_matches(".mrc")
                    .trim_end_matches(".map")
                    .trim_end_matches(".rec")
                    .to_string();
                config.tomo.with_file_name(format!("{stem}_picks.star"))
            }
        };
        let edit = Edit {
            picks: originals.clone(),
            src: (0..originals.len()).map(Some).collect(),
            backed_up: HashSet::new(),
            saves: 0,
        };
        let opened = config
            .picks
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        Ok(Viewer {
            tomo,
            labels,
            probs,
            classes,
            voxel_size_a,
            truth,
            save_base,
            originals,
            opened,
            edit: Mutex::new(edit),
            contrast_cache: Mutex::new(HashMap::new()),
            config,
        })
    }

    /// Radius in voxels of `class` (the default radius for classes the table lacks).
    pub fn radius_vox(&self, class: &str) -> f64 {
        self.classes
            .get(class)
            .map(|c| c.radius_voxels(self.voxel_size_a))
            .unwrap_or(self.config.default_radius_vox)
    }

    /// The classes with radii in voxels and display colours.
    pub fn class_dtos(&self) -> Vec<ClassDto> {
        self.classes
            .classes
            .iter()
            .map(|c| ClassDto {
                name: c.name.clone(),
                label: c.label,
                radius_vox: c.radius_voxels(self.voxel_size_a),
                colour: PALETTE[(c.label as usize + 9) % PALETTE.len()].to_string(),
            })
            .collect()
    }

    /// `/api/info`: shape, voxel size, classes, overlays, save targets.
    pub fn info_json(&self) -> serde_json::Value {
        let [nx, ny, nz] = self.tomo.shape_xyz();
        let name = |p: &Path| {
            p.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        serde_json::json!({
            "tomo": name(&self.tomo.path),
            "shape": [nx, ny, nz],
            "voxel_size_a": self.voxel_size_a,
            "mapped": self.tomo.is_mapped(),
            "classes": self.class_dtos(),
            "labels": self.labels.as_ref().map(|v| name(&v.path)),
            "probs": self.probs.iter().map(|(c, v)| serde_json::json!({"class": c, "file": name(&v.path)})).collect::<Vec<_>>(),
            "has_truth": self.config.truth.is_some(),
            "tolerance": self.config.tolerance,
            "save": {
                "star": name(&self.save_path(Format::Star)),
                "csv": name(&self.save_path(Format::Csv)),
                "copick": format!("{}_<class>.json", self.save_stem()),
            },
        })
    }

    /// The volume called `id`: `tomo`, `labels` or `prob:CLASS`.
    pub fn volume(&self, id: &str) -> Option<&MappedVolume> {
        match id {
            "tomo" => Some(&self.tomo),
            "labels" => self.labels.as_ref(),
            _ => {
                let c = id.strip_prefix("prob:")?;
                self.probs.iter().find(|(n, _)| n == c).map(|(_, v)| v)
            }
        }
    }
}
