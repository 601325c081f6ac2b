//! `capsid match`: template matching over a tomogram (score map, best-rotation map, peaks with
//! orientations as RELION STAR), and the template options it shares with `capsid orient`.

use anyhow::{bail, Context};
use capsid_core::{ClassTable, OutputGuard, Symmetry, Volume};
use capsid_io::mrc::{self, MrcMode};
use capsid_match::template::{Ctf, TemplateFilter, Wedge};
use capsid_match::Template;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Protein contrast in the tomogram.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contrast {
    /// Protein darker than the solvent (raw cryo-ET reconstructions): the template, protein
    /// positive as in EMDB maps and capsid's templates, is inverted.
    Dark,
    /// Protein brighter (contrast-inverted tomograms): the template is used as it is.
    Bright,
}

/// The template and how it is filtered: shared by `match` and `orient`.
#[derive(clap::Args, Debug, Clone)]
pub struct TemplateArgs {
    /// Template density (MRC, a cube; protein positive, as EMDB maps and the templates/ of
    /// `capsid simulate`). At another voxel size it is resampled to the tomogram's.
    #[arg(long, value_name = "MRC")]
    pub template: PathBuf,
    /// Mask (MRC, the template's shape and voxel size, 0..1). Default: a sphere of radius
    /// side/2 − 1. A non-spherical mask is turned with the template (about 3× the work).
    #[arg(long, value_name = "MRC")]
    pub mask: Option<PathBuf>,
    /// Protein contrast in the tomogram.
    #[arg(long, value_enum, default_value_t = Contrast::Dark)]
    pub contrast: Contrast,
    /// Point-group symmetry of the template (C1, Cn, Dn, T, O, I): the search covers its
    /// asymmetric unit. Default: the class table's, else C1.
    #[arg(long, value_name = "SYM")]
    pub symmetry: Option<Symmetry>,
    /// Tilt range of the tilt series, MIN,MAX degrees (tilt axis y, beam z): the template gets
    /// the tomogram's missing wedge.
    #[arg(long, value_name = "MIN,MAX", value_parser = parse_range, allow_hyphen_values = true, conflicts_with = "tlt")]
    pub tilt_range: Option<(f64, f64)>,
    /// The tilt angles as an IMOD .tlt file (one angle in degrees per line): its smallest and
    /// largest give the missing wedge.
    #[arg(long, value_name = "FILE")]
    pub tlt: Option<PathBuf>,
    /// Defocus in µm (underfocus positive): the template gets this CTF.
    #[arg(long, value_name = "UM")]
    pub defocus: Option<f64>,
    /// Acceleration voltage in kV (with --defocus).
    #[arg(long, default_value_t = 300.0, value_name = "KV")]
    pub voltage: f64,
    /// Spherical aberration in mm (with --defocus).
    #[arg(long, default_value_t = 2.7, value_name = "MM")]
    pub cs: f64,
    /// Amplitude contrast (with --defocus).
    #[arg(long, default_value_t = 0.07, value_name = "FRACTION")]
    pub amplitude_contrast: f64,
    /// The tilt series was phase-flipped: the template gets |CTF| (with --defocus).
    #[arg(long)]
    pub phase_flipped: bool,
    /// Low-pass the template to this resolution (Å), a raised-cosine edge ±10 %.
    #[arg(long, value_name = "A")]
    pub lowpass: Option<f64>,
}

fn parse_range(s: &str) -> Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || format!("expected MIN,MAX in degrees (e.g. -60,60), got '{s}'");
    if parts.len() != 2 {
        return Err(bad());
    }
    let a: f64 = parts[0].trim().parse().map_err(|_| bad())?;
    let b: f64 = parts[1].trim().parse().map_err(|_| bad())?;
    if !(a.is_finite() && b.is_finite() && a < b && a >= -90.0 && b <= 90.0) {
        return Err(format!(
            "tilt range must satisfy -90 ≤ MIN < MAX ≤ 90, got '{s}'"
        ));
    }
    Ok((a, b))
}

/// Reads an IMOD .tlt file: its smallest and largest angle.
fn read_tlt(path: &Path) -> anyhow::Result<(f64, f64)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut angles = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let a: f64 = t
            .parse()
            .ok()
            .filter(|a: &f64| a.is_finite() && a.abs() <= 90.0)
            .with_context(|| {
                format!(
                    "{}: line {}: expected a tilt angle in degrees (-90..90), got '{t}'",
                    path.display(),
                    i + 1
                )
            })?;
        angles.push(a);
    }
    if angles.len() < 2 {
        bail!(
            "{}: a .tlt file needs at least two tilt angles",
            path.display()
        );
    }
    let lo = angles.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = angles.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    Ok((lo, hi))
}

/// A template ready to match, with what describes it.
pub struct LoadedTemplate {
    pub template: Template,
    /// Side of the cube in voxels.
    pub side: usize,
    /// Radius of the template's density (voxels): the farthest voxel from the centre whose
    /// |density| is at least half the maximum, plus half a voxel.
    pub density_radius_vox: f64,
    pub filter: TemplateFilter,
}

impl TemplateArgs {
    /// The files these options read (template, mask, .tlt), for the output guards.
    pub fn input_paths(&self) -> Vec<&Path> {
        let mut v = vec![self.template.as_path()];
        v.extend(self.mask.as_deref());
        v.extend(self.tlt.as_deref());
        v
    }

    /// Loads the template (and mask) for a tomogram of voxel size `voxel_size_a`.
    pub fn load(&self, voxel_size_a: f32) -> anyhow::Result<LoadedTemplate> {
        let mut t = mrc::read_volume(&self.template)?;
        let tv = t.voxel_size_a[0];
        if !(tv > 0.0 && tv.is_finite()) {
            bail!(
                "{}: the header gives no voxel size; the template's must be known",
                self.template.display()
            );
        }
        let mut mask = match &self.mask {
            Some(p) => {
                let m = mrc::read_volume(p)?;
                if m.data.dim() != t.data.dim() {
                    bail!(
                        "{}: the mask's shape differs from the template's",
                        p.display()
                    );
                }
                Some(m.data)
            }
            None => None,
        };
        if (tv / voxel_size_a - 1.0).abs() > 0.01 {
            // Another voxel size (an EMDB map, say): resampled about its centre to an odd cube
            // at the tomogram's, averaging sub-samples when coarsening (as the simulator loads
            // maps).
            let (from, to) = (tv as f64, voxel_size_a as f64);
            let before = t.data.dim().0;
            t.data = capsid_sim::library::resample_to_cube(&t.data, from, to);
            mask = mask.map(|m| capsid_sim::library::resample_to_cube(&m, from, to));
            eprintln!(
                "{}: resampled from {tv} Å ({before} voxels a side) to {voxel_size_a} Å ({} a side)",
                self.template.display(),
                t.data.dim().0
            );
        }
        let wedge = match (&self.tilt_range, &self.tlt) {
            (Some((a, b)), _) => Some(Wedge {
                min_deg: *a,
                max_deg: *b,
            }),
            (None, Some(p)) => {
                let (a, b) = read_tlt(p)?;
                Some(Wedge {
                    min_deg: a,
                    max_deg: b,
                })
            }
            (None, None) => None,
        };
        let ctf = match self.defocus {
            Some(df) => {
                if !(df.is_finite() && df > 0.0 && df < 50.0) {
                    bail!("--defocus: expected a defocus in µm (0..50), got {df}");
                }
                if !(self.voltage > 0.0
                    && self.cs >= 0.0
                    && (0.0..1.0).contains(&self.amplitude_contrast))
                {
                    bail!("--voltage must be > 0, --cs ≥ 0 and --amplitude-contrast in [0, 1)");
                }
                Some(Ctf {
                    defocus_um: df,
                    voltage_kv: self.voltage,
                    cs_mm: self.cs,
                    amplitude_contrast: self.amplitude_contrast,
                    phase_flipped: self.phase_flipped,
                })
            }
            None => None,
        };
        if let Some(l) = self.lowpass {
            if !(l.is_finite() && l > 0.0) {
                bail!("--lowpass: expected a resolution in Å, got {l}");
            }
        }
        let filter = TemplateFilter {
            wedge,
            ctf,
            lowpass_a: self.lowpass,
            voxel_size_a: voxel_size_a as f64,
        };
        let template = Template::new(
            &t.data,
            mask.as_ref(),
            self.contrast == Contrast::Dark,
            &filter,
        )
        .with_context(|| format!("{}", self.template.display()))?;
        let side = template.side();
        Ok(LoadedTemplate {
            template,
            side,
            density_radius_vox: density_radius(&t.data),
            filter,
        })
    }

    /// A summary of the filter for records.
    pub fn describe(&self, filter: &TemplateFilter) -> serde_json::Value {
        serde_json::json!({
            "template": self.template.display().to_string(),
            "mask": self.mask.as_ref().map(|p| p.display().to_string()),
            "contrast": format!("{:?}", self.contrast).to_lowercase(),
            "missing_wedge_deg": filter.wedge.map(|w| [w.min_deg, w.max_deg]),
            "defocus_um": filter.ctf.map(|c| c.defocus_um),
            "voltage_kv": filter.ctf.map(|c| c.voltage_kv),
            "cs_mm": filter.ctf.map(|c| c.cs_mm),
            "amplitude_contrast": filter.ctf.map(|c| c.amplitude_contrast),
            "phase_flipped": filter.ctf.map(|c| c.phase_flipped),
            "lowpass_a": filter.lowpass_a,
        })
    }
}

/// Opens the tomogram (an OME-Zarr at `voxel_size` when given) and checks its voxel size:
/// the source, its header and the voxel size in Å.
pub fn open_tomogram(
    path: &Path,
    voxel_size: Option<f32>,
) -> anyhow::Result<(capsid_io::VolumeSource, capsid_io::mrc::MrcHeader, f32)> {
    let source = capsid_io::VolumeSource::open_at(path, voxel_size)?;
    let header = source.header();
    capsid_core::guard::check_voxel_size(&path.display().to_string(), header.voxel_size_a)?;
    let vs = header.voxel_size_a[0];
    Ok((source, header, vs))
}

/// The farthest voxel from the centre `b / 2` whose |density| is ≥ half the maximum, plus half
/// a voxel (voxels).
fn density_radius(t: &ndarray::Array3<f32>) -> f64 {
    let max = t.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let c = (t.dim().0 / 2) as f64;
    let mut r2 = 0.0f64;
    for ((z, y, x), v) in t.indexed_iter() {
        if v.abs() >= 0.5 * max {
            r2 = r2.max((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2));
        }
    }
    r2.sqrt() + 0.5
}

/// The class name, radius (voxels) and symmetry for the picks: the class table's entry when
/// given, flags first.
pub fn class_settings(
    classes: Option<&Path>,
    class: Option<&str>,
    template: &Path,
    radius_a: Option<f64>,
    symmetry: Option<Symmetry>,
    voxel_size_a: f64,
    density_radius_vox: f64,
) -> anyhow::Result<(String, f64, Symmetry)> {
    let stem = template
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "template".into());
    let (name, table_radius, table_sym) = match classes {
        Some(p) => {
            let table = ClassTable::load(p)?;
            let name = class.map(str::to_string).unwrap_or(stem);
            let def = table
                .get(&name)
                .with_context(|| format!("{}", p.display()))?;
            (name, Some(def.radius_voxels(voxel_size_a)), def.symmetry)
        }
        None => (class.map(str::to_string).unwrap_or(stem), None, None),
    };
    capsid_core::guard::check_file_name_part("--class", &name)?;
    let radius = match radius_a {
        Some(r) if r.is_finite() && r > 0.0 => r / voxel_size_a,
        Some(r) => bail!("--radius: expected a radius in Å, got {r}"),
        None => table_radius.unwrap_or(density_radius_vox),
    };
    Ok((name, radius, symmetry.or(table_sym).unwrap_or_default()))
}

/// Arguments of `capsid match`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Template matching: for every position and every rotation of a uniform sampling of
SO(3) at --angular-step (cut to the asymmetric unit of --symmetry; the count is
printed: 4,400 rotations at 15° for C1), the local correlation coefficient
between the tomogram and the turned template under its mask (Roseman's FLCF,
−1..1), the template filtered by the tomogram's missing wedge (--tilt-range or
--tlt) and CTF (--defocus). The tomogram is cut into tiles (--tile) so memory
stays bounded. Positions whose template box leaves the tomogram score 0.

Writes in DIR: TOMO_scores.mrc (best score per voxel), TOMO_angles.mrc (index
of the best rotation), rotations.csv (index → RELION rot, tilt, psi), the peaks
as TOMO_particles.star (RELION 3.1: coordinates in voxels, rlnAngleRot/Tilt/Psi
ZYZ, score as rlnAutopickFigureOfMerit), match.json (counts, threshold, timing)
and match.toml (the settings and capsid's version). Peaks: local maxima above
the score expected once by chance in the whole search (--false-alarms 1; from
the scores' standard deviation, as pytom-match-pick), or --min-score,
suppressed within the particle radius.

Examples:
  capsid match tomo.mrc --template templates/ribosome.mrc \\
      --angular-step 15 --tilt-range -60,60 --out tm
  capsid match tomo.mrc --template apoferritin.mrc --symmetry O \\
      --radius 60 --angular-step 10 --defocus 3 --out tm_apo
  capsid match tomo.mrc --template t.mrc --classes classes.toml \\
      --class ribosome --angular-step 12 --max-peaks 300 --out tm")]
pub struct Args {
    /// Tomogram (MRC or OME-Zarr).
    pub tomogram: PathBuf,
    #[command(flatten)]
    pub template: TemplateArgs,
    /// Angular step of the rotation search in degrees.
    #[arg(long, default_value_t = 15.0, value_name = "DEG")]
    pub angular_step: f64,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Class table: the radius and symmetry of --class come from it.
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// Class name of the picks (default: the template's file name).
    #[arg(long)]
    pub class: Option<String>,
    /// Particle radius in Å for peak suppression (default: the class table's, else the
    /// template density's half-maximum radius).
    #[arg(long, value_name = "A")]
    pub radius: Option<f64>,
    /// Expected number of false peaks from noise in the whole search: sets the threshold.
    #[arg(long, default_value_t = 1.0, value_name = "N")]
    pub false_alarms: f64,
    /// Score threshold for peaks instead of --false-alarms.
    #[arg(long, value_name = "SCORE")]
    pub min_score: Option<f32>,
    /// Keep at most this many peaks (the strongest; 0 = all above the threshold).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_peaks: usize,
    /// Largest tile side in voxels (the FFT size; memory ≈ 16 bytes per tile voxel per thread,
    /// plus as much for the tile itself).
    #[arg(long, default_value_t = 320, value_name = "VOXELS")]
    pub tile: usize,
    /// Read an OME-Zarr tomogram at this voxel size (Å; its multiscale level).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f32>,
    /// Replace existing outputs.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !(args.angular_step.is_finite() && args.angular_step >= 1.0 && args.angular_step <= 90.0) {
        bail!(
            "--angular-step: expected 1 to 90 degrees, got {}",
            args.angular_step
        );
    }
    if !(args.false_alarms.is_finite() && args.false_alarms > 0.0) {
        bail!("--false-alarms must be > 0, got {}", args.false_alarms);
    }
    if args.tile < 16 {
        bail!("--tile must be at least 16 voxels, got {}", args.tile);
    }
    let name = capsid_core::outputs::tomogram_name(&args.tomogram);
    let out = &args.out;
    let files = [
        out.join(format!("{name}_scores.mrc")),
        out.join(format!("{name}_angles.mrc")),
        out.join(format!("{name}_particles.star")),
        out.join("rotations.csv"),
        out.join("match.json"),
        out.join("match.toml"),
    ];
    let outputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut inputs: Vec<&Path> = vec![&args.tomogram];
    inputs.extend(args.template.input_paths());
    inputs.extend(args.classes.as_deref());
    let _guard = OutputGuard::new(&outputs, &inputs, args.force)?;

    let (source, _, vs) = open_tomogram(&args.tomogram, args.voxel_size)?;
    let loaded = args.template.load(vs)?;
    let (class, radius_vox, symmetry) = class_settings(
        args.classes.as_deref(),
        args.class.as_deref(),
        &args.template.template,
        args.radius,
        args.template.symmetry,
        vs as f64,
        loaded.density_radius_vox,
    )?;
    let tomo = source.read_volume()?;
    let rotations = capsid_match::so3::search_rotations(args.angular_step, symmetry);
    eprintln!(
        "{}: template {}³ voxels, {} rotations at {}° ({symmetry}), mask {}",
        args.tomogram.display(),
        loaded.side,
        rotations.len(),
        args.angular_step,
        if loaded.template.mask_is_radial() {
            "spherical"
        } else {
            "non-spherical (turned with the template)"
        }
    );
    let opts = capsid_match::SearchOptions { tile: args.tile };
    let shape = tomo.shape_zyx();
    let tiles = capsid_match::search::tile_count(shape, loaded.side, args.tile);
    let bar = crate::util::progress((tiles * rotations.len()) as u64, &format!("match {name}"));
    let start = Instant::now();
    let maps = capsid_match::search(
        tomo.data.view(),
        &loaded.template,
        &rotations,
        &opts,
        &|n| bar.inc(n),
    )
    .with_context(|| format!("{}", args.tomogram.display()))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let searched = maps.positions as f64 * rotations.len() as f64;
    let threshold = match args.min_score {
        Some(t) => t,
        None => capsid_match::peaks::false_alarm_threshold(
            args.false_alarms,
            searched,
            maps.mean,
            maps.std,
        ) as f32,
    };
    let mut picks = capsid_match::peaks::extract_peaks(
        &maps,
        &rotations,
        vs,
        &class,
        radius_vox,
        threshold,
        args.max_peaks,
    )?;
    for p in &mut picks {
        p.tomogram = Some(name.clone());
    }
    std::fs::create_dir_all(out).with_context(|| format!("{}", out.display()))?;
    let as_volume = |data: ndarray::Array3<f32>| Volume {
        data,
        voxel_size_a: tomo.voxel_size_a,
        origin_a: tomo.origin_a,
    };
    mrc::write_volume(&files[0], &as_volume(maps.scores.clone()), MrcMode::Float32)?;
    mrc::write_volume(
        &files[1],
        &as_volume(maps.best.mapv(|v| v as f32)),
        MrcMode::Float32,
    )?;
    let wopts = capsid_io::particles::WriteOptions {
        voxel_size_a: Some(vs as f64),
        tomo_shape_xyz: Some(tomo.shape_xyz()),
        ..Default::default()
    };
    capsid_io::particles::write_particles(&files[2], &picks, &wopts)?;
    let mut csv = String::from("index,rlnAngleRot,rlnAngleTilt,rlnAnglePsi\n");
    for (i, r) in rotations.iter().enumerate() {
        let e = r.to_euler(capsid_core::EulerConvention::RelionZyz);
        csv.push_str(&format!(
            "{i},{:.4},{:.4},{:.4}\n",
            e.angles_deg[0], e.angles_deg[1], e.angles_deg[2]
        ));
    }
    capsid_core::write_atomically(&files[3], |w| std::io::Write::write_all(w, csv.as_bytes()))?;
    let summary = serde_json::json!({
        "tomogram": args.tomogram.display().to_string(),
        "class": class,
        "voxel_size_a": vs,
        "template_side": loaded.side,
        "symmetry": symmetry.to_string(),
        "angular_step_deg": args.angular_step,
        "rotations": rotations.len(),
        "mask_spherical": loaded.template.mask_is_radial(),
        "tiles": maps.tiles,
        "fft_shape_zyx": maps.fft_shape,
        "positions": maps.positions,
        "threads": rayon::current_num_threads(),
        "seconds": seconds,
        "rotations_per_s": rotations.len() as f64 / seconds,
        "score_mean": maps.mean,
        "score_std": maps.std,
        "threshold": threshold,
        "threshold_from": if args.min_score.is_some() { "min_score".to_string() } else { format!("false_alarms={}", args.false_alarms) },
        "radius_vox": radius_vox,
        "false_alarms": args.false_alarms,
        "min_score": args.min_score,
        "max_peaks": args.max_peaks,
        "tile": args.tile,
        "peaks": picks.len(),
        "filter": args.template.describe(&loaded.filter),
    });
    let text = serde_json::to_string_pretty(&summary)? + "\n";
    capsid_core::write_atomically(&files[4], |w| std::io::Write::write_all(w, text.as_bytes()))?;
    let record = format!(
        "# capsid match, version {}\n{}",
        capsid_core::VERSION,
        crate::util::record_toml(&summary)?
    );
    capsid_core::write_atomically(&files[5], |w| {
        std::io::Write::write_all(w, record.as_bytes())
    })?;
    eprintln!(
        "{}: {} peaks of '{class}' at score ≥ {threshold:.4} ({} rotations in {seconds:.1} s, \
         {:.1} rotations/s; scores: mean {:.4}, sd {:.4})",
        files[2].display(),
        picks.len(),
        rotations.len(),
        rotations.len() as f64 / seconds,
        maps.mean,
        maps.std
    );
    Ok(())
}
