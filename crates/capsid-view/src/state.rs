//! The viewer's session: the files given at start, the class table, the edited picks, matching
//! against truth, contrast, saving and auto-centring.

use crate::render::{encode_png_gray, gaussian_blur, percentiles, to_u8};
use crate::volume::{Axis, MappedVolume};
use crate::ViewError;
use capsid_core::{ClassDef, ClassTable, Particle};
use capsid_eval::matching::match_class;
use capsid_io::particles::{read_particles, write_particles, Format, ReadOptions, WriteOptions};
use serde::{Deserialize, Serialize};
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

/// A pick as the page sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickDto {
    pub class: String,
    pub x: f64,
    pub y: f64,
    pub z: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Index of the particle as read at start (keeps its angles and tomogram), `None` for new picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<usize>,
    /// `tp` / `fp` when truth is given (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
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

/// Parameters of a rendered tomogram plane.
#[derive(Debug, Clone, Copy)]
pub struct SliceParams {
    pub axis: Axis,
    pub index: usize,
    /// Number of planes averaged (1 = the plane itself).
    pub slab: usize,
    /// Gaussian low-pass σ in pixels (0 = none).
    pub sigma: f32,
    /// Contrast percentiles.
    pub lo: f32,
    pub hi: f32,
    /// Percentiles of this plane (true) or of a sample of the volume rendered alike (false).
    pub per_slice: bool,
    pub invert: bool,
}

impl Default for SliceParams {
    fn default() -> Self {
        SliceParams {
            axis: Axis::Z,
            index: 0,
            slab: 1,
            sigma: 0.0,
            lo: 1.0,
            hi: 99.0,
            per_slice: false,
            invert: false,
        }
    }
}

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

    fn save_stem(&self) -> String {
        self.save_base
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "picks".into())
    }

    /// The file "save" writes for `format` (copick: see [`Viewer::save`]).
    pub fn save_path(&self, format: Format) -> PathBuf {
        let ext = match format {
            Format::Star => "star",
            Format::Csv => "csv",
            Format::ShrecTxt => "txt",
            Format::DeepFinderXml => "xml",
            Format::CopickJson => "json",
        };
        self.save_base.with_extension(ext)
    }

    /// The current picks (with TP/FP status when truth is given) and the missed truth particles.
    pub fn picks_json(&self) -> serde_json::Value {
        let edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        self.picks_json_locked(&edit)
    }

    fn picks_json_locked(&self, edit: &Edit) -> serde_json::Value {
        let mut status: Vec<Option<&str>> = vec![None; edit.picks.len()];
        let mut missed = Vec::new();
        let mut counts = serde_json::Map::new();
        if self.config.truth.is_some() {
            let shape = Some(self.tomo.shape_xyz());
            let mut names: BTreeSet<&str> = edit.picks.iter().map(|p| p.class.as_str()).collect();
            names.extend(self.classes.classes.iter().map(|c| c.name.as_str()));
            for class in names {
                let tol = self.config.tolerance * self.radius_vox(class);
                let m = match_class(&edit.picks, &self.truth, class, tol, shape);
                for pr in &m.pairs {
                    status[pr.pick] = Some("tp");
                }
                for &i in &m.false_picks {
                    status[i] = Some("fp");
                }
                // Truth classes outside the class table are ignored, as by `capsid evaluate`.
                let known = self.classes.get(class).is_ok();
                if known {
                    for &t in &m.missed {
                        let p = &self.truth[t];
                        missed.push(
                            serde_json::json!({"class": p.class, "x": p.x, "y": p.y, "z": p.z}),
                        );
                    }
                }
                counts.insert(
                    class.to_string(),
                    serde_json::json!({"tp": m.pairs.len(), "fp": m.false_picks.len(), "fn": if known { m.missed.len() } else { 0 }}),
                );
            }
        }
        let picks: Vec<PickDto> = edit
            .picks
            .iter()
            .zip(&edit.src)
            .zip(status)
            .map(|((p, src), st)| PickDto {
                class: p.class.clone(),
                x: p.x,
                y: p.y,
                z: p.z,
                score: p.score,
                src: *src,
                status: st.map(str::to_string),
            })
            .collect();
        serde_json::json!({"picks": picks, "missed": missed, "counts": counts, "saves": edit.saves})
    }

    /// Replaces the picks with the page's list (new picks get class, position and score; picks
    /// read at start keep their angles and tomogram name). Returns [`Viewer::picks_json`].
    pub fn set_picks(&self, list: Vec<PickDto>) -> Result<serde_json::Value, ViewError> {
        let mut picks = Vec::with_capacity(list.len());
        let mut src = Vec::with_capacity(list.len());
        for (i, d) in list.into_iter().enumerate() {
            if !(d.x.is_finite() && d.y.is_finite() && d.z.is_finite()) {
                return Err(ViewError::Invalid(format!(
                    "pick {}: non-finite coordinate",
                    i + 1
                )));
            }
            if self.classes.get(&d.class).is_err() {
                return Err(ViewError::Invalid(format!(
                    "pick {}: unknown class '{}' (classes: {})",
                    i + 1,
                    d.class,
                    self.classes.names().join(", ")
                )));
            }
            let orig = d.src.and_then(|s| self.originals.get(s).map(|p| (s, p)));
            let mut p = match orig {
                Some((_, o)) => o.clone(),
                None => Particle::new(d.class.clone(), d.x, d.y, d.z),
            };
            p.class = d.class;
            p.x = d.x;
            p.y = d.y;
            p.z = d.z;
            p.score = d.score;
            picks.push(p);
            src.push(orig.map(|(s, _)| s));
        }
        let mut edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        edit.picks = picks;
        edit.src = src;
        Ok(self.picks_json_locked(&edit))
    }

    /// The current picks.
    pub fn picks(&self) -> Vec<Particle> {
        self.edit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .picks
            .clone()
    }

    /// Saves the current picks in `format` (STAR, CSV, or copick: one `<stem>_<class>.json` per
    /// class) atomically; when some picks carry a score, picks without one (added by hand) get 1. Saving over a file that was opened keeps its first version as
    /// `<file>.bak`. Returns the files written.
    pub fn save(&self, format: Format) -> Result<Vec<PathBuf>, ViewError> {
        let mut edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = edit.picks.clone();
        // A score column needs a value for every pick: picks added by hand score 1.
        if all.iter().any(|p| p.score.is_some()) {
            for p in &mut all {
                p.score.get_or_insert(1.0);
            }
        }
        let mut jobs: Vec<(PathBuf, Vec<Particle>)> = Vec::new();
        match format {
            Format::Star | Format::Csv => jobs.push((self.save_path(format), all)),
            Format::CopickJson => {
                let names: BTreeSet<&str> = all.iter().map(|p| p.class.as_str()).collect();
                for c in names {
                    // The class becomes part of a file name: no folders.
                    capsid_core::guard::check_file_name_part("class", c)?;
                    let path = self
                        .save_base
                        .with_file_name(format!("{}_{c}.json", self.save_stem()));
                    let list = all.iter().filter(|p| p.class == c).cloned().collect();
                    jobs.push((path, list));
                }
            }
            other => {
                return Err(ViewError::Invalid(format!(
                    "saving as {other} is not offered (star, csv, copick)"
                )))
            }
        }
        let wopts = WriteOptions {
            format: Some(format),
            voxel_size_a: (self.voxel_size_a > 0.0).then_some(self.voxel_size_a),
            tomo_shape_xyz: Some(self.tomo.shape_xyz()),
            classes: Some(self.classes.clone()),
            ..Default::default()
        };
        // Lock every file first (another viewer or a capsid command writing the same list gets
        // a clear error, not an interleaved file); the locks go when this call returns.
        let _locks = jobs
            .iter()
            .map(|(path, _)| capsid_core::guard::OutputLock::acquire(path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut written = Vec::new();
        for (path, list) in jobs {
            if path.exists() {
                let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if self.opened.contains(&canon) && !edit.backed_up.contains(&canon) {
                    capsid_core::guard::keep_backup(&path)?;
                    edit.backed_up.insert(canon);
                }
            }
            write_particles(&path, &list, &wopts)?;
            written.push(path);
        }
        edit.saves += 1;
        Ok(written)
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

    /// The display range of tomogram planes rendered with `p` (percentiles of a sample of XY
    /// planes spread over z, rendered with the same slab and low-pass; cached).
    pub fn global_range(&self, p: &SliceParams) -> (f32, f32) {
        let key = (p.slab, p.sigma.to_bits(), p.lo.to_bits(), p.hi.to_bits());
        if let Some(r) = self
            .contrast_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return *r;
        }
        let v = &self.tomo;
        let planes = v.nz.clamp(1, 7);
        let (w, h) = v.plane_dims(Axis::Z);
        let step = ((w * h * planes) / 400_000).max(1);
        let mut sample = Vec::new();
        for k in 0..planes {
            let z = (2 * k + 1) * v.nz / (2 * planes);
            let (_, _, mut d) = v.plane(Axis::Z, z, p.slab);
            gaussian_blur(w, h, &mut d, p.sigma);
            sample.extend(d.iter().step_by(step));
        }
        let r = percentiles(&mut sample, p.lo, p.hi);
        self.contrast_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r);
        r
    }

    /// An 8-bit rendering of a tomogram plane: (width, height, pixels).
    pub fn render_tomo(&self, p: &SliceParams) -> (usize, usize, Vec<u8>) {
        let (w, h, mut d) = self.tomo.plane(p.axis, p.index, p.slab);
        gaussian_blur(w, h, &mut d, p.sigma);
        let (lo, hi) = if p.per_slice {
            let step = (d.len() / 200_000).max(1);
            let mut s: Vec<f32> = d.iter().step_by(step).copied().collect();
            percentiles(&mut s, p.lo, p.hi)
        } else {
            self.global_range(p)
        };
        (w, h, to_u8(&d, lo, hi, p.invert))
    }

    /// An 8-bit plane of an overlay: labels as they are (clipped to 0..=255), probabilities × 255.
    pub fn render_overlay(
        &self,
        id: &str,
        axis: Axis,
        index: usize,
    ) -> Option<(usize, usize, Vec<u8>)> {
        let v = self.volume(id)?;
        let (w, h, d) = v.plane(axis, index, 1);
        let px = if id == "labels" {
            d.iter()
                .map(|&x| capsid_core::volume::display_label(x))
                .collect()
        } else {
            d.iter()
                .map(|x| (x * 255.0 + 0.5).clamp(0.0, 255.0) as u8)
                .collect()
        };
        Some((w, h, px))
    }

    /// PNG of [`Viewer::render_tomo`].
    pub fn tomo_png(&self, p: &SliceParams) -> Vec<u8> {
        let (w, h, px) = self.render_tomo(p);
        encode_png_gray(w, h, &px)
    }

    /// The density extremum near a click: the minimum (`dark`) or maximum of the tomogram
    /// low-passed with σ = r/2 (1..8 voxels), searched within `r` voxels (≤ 24) of (x, y, z).
    pub fn auto_centre(&self, x: f64, y: f64, z: f64, r: f64, dark: bool) -> [f64; 3] {
        let v = &self.tomo;
        let rs = r.clamp(1.0, 24.0);
        let sigma = (r / 2.0).clamp(1.0, 8.0);
        let pad = rs + (3.0 * sigma).ceil();
        let c = [x, y, z];
        let n = [v.nx, v.ny, v.nz];
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        for a in 0..3 {
            lo[a] = (c[a] - pad).floor().max(0.0) as usize;
            hi[a] = ((c[a] + pad).ceil() as usize + 1).min(n[a]);
            if lo[a] >= hi[a] {
                return c;
            }
        }
        let (bx, by, bz) = (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
        let mut b = vec![0f32; bx * by * bz];
        for zz in 0..bz {
            for yy in 0..by {
                let o = (zz * by + yy) * bx;
                v.read_row(lo[2] + zz, lo[1] + yy, lo[0], &mut b[o..o + bx]);
            }
        }
        blur3d(&mut b, [bx, by, bz], sigma as f32);
        let sign = if dark { 1.0 } else { -1.0 };
        let mut best = (f32::INFINITY, c);
        for zz in 0..bz {
            for yy in 0..by {
                for xx in 0..bx {
                    let p = [
                        (lo[0] + xx) as f64,
                        (lo[1] + yy) as f64,
                        (lo[2] + zz) as f64,
                    ];
                    let d2 = (p[0] - x).powi(2) + (p[1] - y).powi(2) + (p[2] - z).powi(2);
                    if d2 > rs * rs {
                        continue;
                    }
                    let val = sign * b[(zz * by + yy) * bx + xx];
                    if val.is_finite() && val < best.0 {
                        best = (val, p);
                    }
                }
            }
        }
        best.1
    }
}

/// Separable 3D Gaussian low-pass of a block `[z][y][x]` of `dims` = `[nx, ny, nz]` (edges clamped).
fn blur3d(b: &mut [f32], dims: [usize; 3], sigma: f32) {
    let (k, r) = crate::render::gaussian_kernel(sigma);
    let [nx, ny, nz] = dims;
    let strides = [1, nx, nx * ny];
    let mut tmp = vec![0f32; b.len()];
    for a in 0..3 {
        let n = dims[a] as isize;
        let st = strides[a];
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let i = (z * ny + y) * nx + x;
                    let pos = [x, y, z][a] as isize;
                    let mut acc = 0.0;
                    for (j, kv) in k.iter().enumerate() {
                        let q = (pos + j as isize - r).clamp(0, n - 1);
                        let idx = (i as isize + (q - pos) * st as isize) as usize;
                        acc += kv * b[idx];
                    }
                    tmp[i] = acc;
                }
            }
        }
        b.copy_from_slice(&tmp);
    }
}
