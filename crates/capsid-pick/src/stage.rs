//! The picking stage on files: a label map and/or probability maps (MRC) in, a particle list out
//! (any format capsid-io writes, with the settings recorded beside it as `<out>.pick.toml`).
//!
//! [`PickRequest`] is what the caller asks for; [`PickRequest::plan`] checks it against the
//! inputs and settles the method of every class ([`PickPlan`]): without a method, the model's
//! tuned settings decide (mean shift of the label map, or peaks of a class's probability map found
//! beside the label map as `capsid segment` writes it). [`PickPlan::run`] picks, [`PickPlan::write`]
//! writes the list and the record.

use crate::{
    connected_components, connected_components_prob, mean_shift, nms, peaks, ClassPickSettings,
    ComponentParams, MeanShiftParams, PickError, PickSettings,
};
use capsid_core::{ClassDef, ClassTable, Particle};
use capsid_io::particles::{write_particles, Optics, StarStyle, WriteOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Picking method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Mean shift on a label map (DeepFinder).
    Meanshift,
    /// Connected components of a label map, or of probability maps above a threshold (DeePiCt).
    Components,
    /// Non-maximum suppression on probability maps.
    Nms,
    /// Peaks of probability maps smoothed by a Gaussian.
    Peaks,
}

/// Where the per-class picking settings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsSource {
    /// This settings file (e.g. a run's `pick_settings.toml`).
    File(PathBuf),
    /// The model that segmented the label map (through `segment.toml` beside it), if any.
    Model,
    /// None.
    Off,
}

/// What the caller asks of the stage.
#[derive(Debug, Clone)]
pub struct PickRequest {
    /// Label map (for mean shift, components, and with tuned settings).
    pub labels: Option<PathBuf>,
    /// Probability maps, one per class (class name, path).
    pub probs: Vec<(String, PathBuf)>,
    pub classes: ClassTable,
    /// The file the class table was read from (for the record).
    pub classes_file: PathBuf,
    /// `None`: each class as the tuned settings say (mean shift without settings).
    pub method: Option<Method>,
    /// Drop label-map clusters smaller than this fraction of the class's sphere volume.
    pub min_fraction: Option<f64>,
    /// Probability threshold (nms, peaks, components on probability maps).
    pub threshold: f32,
    /// Peaks: σ of the smoothing as a fraction of the class radius.
    pub sigma_fraction: f64,
    pub meanshift: MeanShiftParams,
    pub components: ComponentParams,
    pub settings: SettingsSource,
    /// Tomogram name for the picks (default: from the map's file name).
    pub tomo_name: Option<String>,
    /// STAR output: the RELION generation and its optics table.
    pub star: StarStyle,
    pub optics: Optics,
}

/// A checked request: the method, the settings and the inputs.
#[derive(Debug, Clone)]
pub struct PickPlan {
    request: PickRequest,
    method: Method,
    /// Whether the label map is the input (else the probability maps).
    uses_labels: bool,
    settings_path: Option<PathBuf>,
    settings: Option<PickSettings>,
    /// Classes picked by peaks because the settings say so, with their probability maps.
    tuned_peaks: Vec<(ClassPickSettings, PathBuf)>,
    tomogram: String,
}

/// The picks of one run of the stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Picked {
    /// Positions in voxels of the maps, `tomogram` set.
    pub picks: Vec<Particle>,
    /// Voxel size of the maps, Å (0 when the header has none).
    pub voxel_size_a: f64,
    /// Shape of the maps (x, y, z).
    pub shape_xyz: Option<[usize; 3]>,
}

fn invalid(msg: String) -> PickError {
    PickError::Invalid(msg)
}

fn with_file(path: &Path, e: impl std::fmt::Display) -> PickError {
    invalid(format!("{}: {e}", path.display()))
}

/// `<file stem>` of a map without `.gz` and the last extension.
fn stem(p: &Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("tomogram");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.rsplit_once('.').map_or(name, |(s, _)| s).to_string()
}

/// The tuned picking settings of the model that segmented `labels`: `segment.toml` beside the
/// map names the model folder, whose `pick_settings.toml` is returned when it exists.
fn model_pick_settings(labels: &Path) -> Option<PathBuf> {
    let dir = labels.parent()?;
    let record = capsid_core::outputs::SegmentRecord::read(dir).ok()??;
    let p = record.model.join(PickSettings::FILE);
    p.is_file().then_some(p)
}

impl PickRequest {
    /// Checks the request against its inputs and settles every class's method.
    pub fn plan(self) -> Result<PickPlan, PickError> {
        let method = self.method.unwrap_or(Method::Meanshift);
        let min_fraction = self.min_fraction.unwrap_or(0.0);
        if !(min_fraction >= 0.0 && min_fraction.is_finite()) {
            return Err(invalid(format!(
                "--min-fraction must be ≥ 0, got {min_fraction}"
            )));
        }
        self.meanshift.validate()?;
        let settings_path = match (&self.settings, self.min_fraction) {
            (SettingsSource::File(p), _) => Some(p.clone()),
            (SettingsSource::Model, None) if method == Method::Meanshift => {
                self.labels.as_deref().and_then(model_pick_settings)
            }
            _ => None,
        };
        let settings = settings_path
            .as_deref()
            .map(PickSettings::load)
            .transpose()?;
        let first_input = self
            .labels
            .clone()
            .or_else(|| self.probs.first().map(|(_, p)| p.clone()))
            .ok_or_else(|| {
                invalid(
                    "no input: give a label map, or probability maps with --prob CLASS=PATH".into(),
                )
            })?;
        let map_tomo = capsid_core::outputs::tomogram_of_map(
            &stem(&first_input),
            self.classes.classes.iter().map(|c| c.name.as_str()),
        );
        let tomogram = self.tomo_name.clone().unwrap_or_else(|| map_tomo.clone());
        let uses_labels =
            method == Method::Meanshift || (method == Method::Components && self.probs.is_empty());
        if uses_labels && self.labels.is_none() {
            return Err(invalid(format!(
                "--method {method:?} needs a label map (positional argument)"
            )));
        }
        if matches!(method, Method::Nms | Method::Peaks) && self.probs.is_empty() {
            return Err(invalid(format!(
                "--method {method:?} needs probability maps: --prob CLASS=PATH"
            )));
        }
        let tuned_peaks = match (self.method, &settings, self.labels.as_deref()) {
            (None, Some(s), Some(labels)) => tuned_peak_maps(s, &self.probs, labels, &map_tomo)?,
            _ => Vec::new(),
        };
        if uses_labels {
            if let Some((c, _)) = self
                .probs
                .iter()
                .find(|(c, _)| !tuned_peaks.iter().any(|t| t.0.name == *c))
            {
                return Err(invalid(format!(
                    "--prob {c}=…: with a label map, --prob only gives the probability maps of \
                     classes the model's settings pick by peaks; give either a label map or \
                     --prob maps for --method {method:?}"
                )));
            }
        }
        Ok(PickPlan {
            request: self,
            method,
            uses_labels,
            settings_path,
            settings,
            tuned_peaks,
            tomogram,
        })
    }
}

/// Without a method, the classes that the settings `s` pick by peaks, each with its probability
/// map: given in `probs`, or beside the label map as `capsid segment` writes it.
fn tuned_peak_maps(
    s: &PickSettings,
    probs: &[(String, PathBuf)],
    labels: &Path,
    map_tomo: &str,
) -> Result<Vec<(ClassPickSettings, PathBuf)>, PickError> {
    let mut tuned = Vec::new();
    for c in s.peak_classes() {
        let path = probs
            .iter()
            .find(|(k, _)| *k == c.name)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| {
                labels
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(capsid_core::outputs::prob_map_file(map_tomo, &c.name))
            });
        if !path.is_file() {
            return Err(invalid(format!(
                "{}: the model's picking settings pick class '{}' by peaks of its probability \
                 map, which is missing (segment with --probs, give --prob {}=PATH, or pick with \
                 --method meanshift)",
                path.display(),
                c.name,
                c.name
            )));
        }
        tuned.push((c.clone(), path));
    }
    Ok(tuned)
}

impl PickPlan {
    /// The method for classes not picked by tuned peaks.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The settings file in use, if any.
    pub fn settings_path(&self) -> Option<&Path> {
        self.settings_path.as_deref()
    }

    /// Every file the stage reads (outputs must be none of them).
    pub fn inputs(&self) -> Vec<&Path> {
        let r = &self.request;
        let mut inputs: Vec<&Path> = r.labels.iter().map(PathBuf::as_path).collect();
        inputs.extend(r.probs.iter().map(|(_, p)| p.as_path()));
        inputs.extend(self.tuned_peaks.iter().map(|(_, p)| p.as_path()));
        inputs.extend(self.settings_path.as_deref());
        inputs.push(&r.classes_file);
        inputs
    }

    /// Reads the maps and picks; `progress` is called once per probability map done.
    pub fn run(&self, progress: &mut dyn FnMut(u64)) -> Result<Picked, PickError> {
        let mut picked = if self.uses_labels {
            self.pick_label_map()?
        } else {
            self.pick_prob_maps(progress)?
        };
        for p in &mut picked.picks {
            p.tomogram = Some(self.tomogram.clone());
        }
        Ok(picked)
    }

    /// Writes `picked` to `out` (format by extension) and the record `<out>.pick.toml`.
    pub fn write(&self, picked: &Picked, out: &Path) -> Result<(), PickError> {
        write_particles(out, &picked.picks, &self.write_options(picked))?;
        write_record(out, &self.record(picked.picks.len()))
    }

    /// Writes the picks of several maps to one list `out` (`plans[i]` picked `picked[i]`, each
    /// a tomogram of its own, named in every pick) and the record `<out>.pick.toml`, one
    /// `[[tomogram]]` table per map. The maps must share their voxel size (one optics group);
    /// the tomograms' shape is written only when they share it.
    pub fn write_many(plans: &[PickPlan], picked: &[Picked], out: &Path) -> Result<(), PickError> {
        let (Some(first), Some(p0)) = (plans.first(), picked.first()) else {
            return Err(invalid(format!("{}: no map to pick", out.display())));
        };
        for (plan, p) in plans.iter().zip(picked) {
            let (a, b) = (p.voxel_size_a, p0.voxel_size_a);
            if (a - b).abs() > 1e-3 * a.abs().max(b.abs()) {
                return Err(invalid(format!(
                    "{}: voxel size {a} Å, but the first map's is {b} Å (one list holds one voxel size)",
                    plan.request.labels.as_deref().unwrap_or(Path::new("?")).display()
                )));
            }
        }
        let all: Vec<Particle> = picked
            .iter()
            .flat_map(|p| p.picks.iter().cloned())
            .collect();
        let same_shape = picked.iter().all(|p| p.shape_xyz == p0.shape_xyz);
        let combined = Picked {
            picks: all,
            voxel_size_a: p0.voxel_size_a,
            shape_xyz: if same_shape { p0.shape_xyz } else { None },
        };
        let wopts = first.write_options(&combined);
        write_particles(out, &combined.picks, &wopts)?;
        #[derive(Serialize)]
        struct Many<'a> {
            tomogram: Vec<PickRecord<'a>>,
        }
        let many = Many {
            tomogram: plans
                .iter()
                .zip(picked)
                .map(|(plan, p)| plan.record(p.picks.len()))
                .collect(),
        };
        write_record(out, &many)
    }

    /// The tomogram name the picks get.
    pub fn tomogram(&self) -> &str {
        &self.tomogram
    }

    /// How `picked` is written: classes, voxel size, shape, STAR style and optics.
    fn write_options(&self, picked: &Picked) -> WriteOptions {
        WriteOptions {
            classes: Some(self.request.classes.clone()),
            voxel_size_a: (picked.voxel_size_a > 0.0).then_some(picked.voxel_size_a),
            tomo_shape_xyz: picked.shape_xyz,
            star: self.request.star,
            optics: self.request.optics,
            ..Default::default()
        }
    }

    /// Mean shift or components of the label map, then the tuned peak classes.
    fn pick_label_map(&self) -> Result<Picked, PickError> {
        let r = &self.request;
        let path = r.labels.as_deref().unwrap_or(Path::new(""));
        let map = capsid_io::mrc::read_label_map(path)?;
        capsid_core::guard::check_labels_known(path, map.data.iter().copied(), &r.classes)?;
        let voxel_size = map.voxel_size() as f64;
        let needs_radius = self.method == Method::Meanshift && r.meanshift.bandwidth_vox.is_none();
        if needs_radius && (voxel_size.is_nan() || voxel_size <= 0.0) {
            if let Some(c) = r.classes.classes.iter().find(|c| c.radius_a.is_some()) {
                return Err(with_file(
                    path,
                    format!(
                        "voxel size 0 in the header, but class '{}' has its radius in Å (use radius_vox or --bandwidth)",
                        c.name
                    ),
                ));
            }
        }
        let found = match self.method {
            Method::Meanshift => mean_shift(&map, &r.classes, &r.meanshift),
            _ => connected_components(&map, &r.classes, &r.components),
        };
        let picks = found.map_err(|e| with_file(path, e))?;
        let mut picks = match &self.settings {
            Some(s) => s.filter(picks, &r.classes, voxel_size),
            None => match r.min_fraction {
                Some(f) if f > 0.0 => {
                    crate::filter_by_class_volume(picks, &r.classes, voxel_size, f)
                }
                _ => picks,
            },
        };
        for (s, prob) in &self.tuned_peaks {
            picks.retain(|p| p.class != s.name);
            let def = r.classes.get(&s.name)?;
            picks.extend(pick_tuned_peaks(prob, def, s, path, &map)?);
        }
        Ok(Picked {
            picks,
            voxel_size_a: voxel_size,
            shape_xyz: Some(map.shape_xyz()),
        })
    }

    /// NMS, peaks or components of the probability maps (one per class, on one grid).
    fn pick_prob_maps(&self, progress: &mut dyn FnMut(u64)) -> Result<Picked, PickError> {
        let r = &self.request;
        let mut picks = Vec::new();
        let mut voxel_size = 0.0f64;
        let mut shape_xyz = None;
        let mut first_map: Option<(PathBuf, [usize; 3], [f32; 3])> = None;
        for (class, path) in &r.probs {
            let map = capsid_io::mrc::read_volume(path)?;
            if let Some((p0, s0, v0)) = &first_map {
                capsid_core::guard::check_same_grid(
                    p0,
                    *s0,
                    *v0,
                    path,
                    map.shape_zyx(),
                    map.voxel_size_a,
                )?;
            }
            first_map.get_or_insert((path.clone(), map.shape_zyx(), map.voxel_size_a));
            shape_xyz = Some(map.shape_xyz());
            voxel_size = map.voxel_size() as f64;
            let def = r.classes.get(class)?;
            let found = match self.method {
                Method::Nms | Method::Peaks => {
                    let radius = def.radius_voxels(voxel_size);
                    if def.radius_a.is_some() && (voxel_size.is_nan() || voxel_size <= 0.0) {
                        return Err(with_file(
                            path,
                            format!(
                                "voxel size 0 in the header, but class '{class}' has its radius in Å"
                            ),
                        ));
                    }
                    if self.method == Method::Peaks {
                        peaks(&map, class, radius, r.sigma_fraction, r.threshold)
                    } else {
                        nms(&map, class, radius, r.threshold)
                    }
                }
                _ => connected_components_prob(&map, def, r.threshold, &r.components),
            };
            picks.extend(found.map_err(|e| with_file(path, e))?);
            progress(1);
        }
        Ok(Picked {
            picks,
            voxel_size_a: voxel_size,
            shape_xyz,
        })
    }

    /// The record written beside the output.
    fn record(&self, n_picks: usize) -> PickRecord<'_> {
        let r = &self.request;
        PickRecord {
            capsid_version: capsid_core::VERSION,
            method: self.method,
            tuned_peaks: self
                .tuned_peaks
                .iter()
                .map(|(s, p)| TunedPeaks {
                    class: s.name.clone(),
                    prob: p.display().to_string(),
                    min_score: s.min_score,
                    sigma_fraction: s.sigma_fraction,
                })
                .collect(),
            labels: r.labels.as_ref().map(|p| p.display().to_string()),
            prob: r
                .probs
                .iter()
                .map(|(c, p)| format!("{c}={}", p.display()))
                .collect(),
            classes: r.classes_file.display().to_string(),
            tomogram: &self.tomogram,
            threshold: r.threshold,
            min_fraction: r.min_fraction.unwrap_or(0.0),
            settings: self.settings_path.as_ref().map(|p| p.display().to_string()),
            meanshift: (self.method == Method::Meanshift).then_some(&r.meanshift),
            components: (self.method == Method::Components).then_some(&r.components),
            n_picks,
        }
    }
}

/// Writes `record` as TOML to `<out>.pick.toml` ([`record_file`]), atomically.
fn write_record(out: &Path, record: &impl Serialize) -> Result<(), PickError> {
    let record_path = record_file(out);
    let text = toml::to_string_pretty(record).map_err(|e| with_file(&record_path, e))?;
    capsid_core::write_atomically(&record_path, |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })?;
    Ok(())
}

/// The record file of a pick list: `<out>.pick.toml`.
pub fn record_file(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pick.toml", out.display()))
}

/// Picks `class` by its tuned peaks settings from the probability map at `path`, checked to lie on
/// the grid of the label map `labels` (already read: `grid`).
fn pick_tuned_peaks(
    path: &Path,
    def: &ClassDef,
    s: &ClassPickSettings,
    labels: &Path,
    grid: &capsid_core::Volume<u8>,
) -> Result<Vec<Particle>, PickError> {
    let map = capsid_io::mrc::read_volume(path)?;
    capsid_core::guard::check_same_grid(
        labels,
        grid.shape_zyx(),
        grid.voxel_size_a,
        path,
        map.shape_zyx(),
        map.voxel_size_a,
    )?;
    let r = def.radius_voxels(map.voxel_size() as f64);
    peaks(&map, &def.name, r, s.sigma_fraction, s.min_score as f32).map_err(|e| with_file(path, e))
}

/// The settings of a pick run, saved next to the output as `<out>.pick.toml`.
#[derive(Serialize)]
struct PickRecord<'a> {
    capsid_version: &'a str,
    method: Method,
    /// Classes picked by peaks of their probability maps as the model's settings say (these
    /// override `method` for them).
    tuned_peaks: Vec<TunedPeaks>,
    labels: Option<String>,
    prob: Vec<String>,
    classes: String,
    tomogram: &'a str,
    threshold: f32,
    min_fraction: f64,
    settings: Option<String>,
    n_picks: usize,
    meanshift: Option<&'a MeanShiftParams>,
    components: Option<&'a ComponentParams>,
}

/// A class picked by peaks because the model's settings say so.
#[derive(Serialize)]
struct TunedPeaks {
    class: String,
    prob: String,
    min_score: f64,
    sigma_fraction: f64,
}
