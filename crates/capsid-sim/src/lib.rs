//! capsid-sim: simulated cryo-electron tomograms with exact ground truth (SHREC'19 style), so that
//! users can test a model before trusting it, and capsid's tests, benchmarks and demo need no
//! downloads.
//!
//! The pipeline, one module per step:
//! * [`library`]: particle classes ([`ClassModel`]): six built-in pseudo-atomic shapes from tiny
//!   (≈ 5 nm) to large (≈ 25 nm), or classes from atomic models (PDB/mmCIF via pdbtbx, atoms →
//!   element-weighted Gaussians) and density maps (MRC).
//! * [`sample`]: a solvent slab crowded with particles placed without overlap of their actual
//!   masks, uniform random orientations (ZXZ Euler angles), optional vesicles and gold beads.
//! * [`imaging`]: tilt-series projection about y, CTF, noise to a target SNR, weighted
//!   back-projection (the missing wedge arises from the tilt range, not from a mask).
//! * [`output`] and [`preview`]: the SHREC file layout, RELION STAR, PNG slices.
//! * [`config`]: [`SimConfig`] with presets (`tiny`, `demo`, `shrec-like`, `default`).
//!
//! Entry points: [`run`] writes a whole simulation to a folder; [`simulate_tomogram`] returns one
//! tomogram in memory. Same config and seed → same files, bit for bit.
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod config;
pub mod density;
pub mod error;
pub mod imaging;
pub mod library;
pub mod metrics;
pub mod output;
pub mod preview;
pub mod sample;

pub use config::{ClassSpec, SimConfig};
pub use error::SimError;
pub use library::ClassModel;
pub use sample::{PlacedParticle, Sample};

use capsid_core::{ClassDef, ClassTable, Volume};
use capsid_io::mrc::{self, LabelMode, MrcMode};
use ndarray::Array3;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// A seed for one purpose of one tomogram, mixed from the run's seed (splitmix64 steps), so that
/// tomograms and purposes draw independent streams.
pub fn derive_seed(seed: u64, tomogram: u64, purpose: u64) -> u64 {
    let mut x = seed;
    for v in [tomogram, purpose] {
        x = x
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(v.wrapping_mul(0xD1B5_4A32_D192_ED03));
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}

/// The stages of one tomogram, in order, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Place,
    Project,
    Ctf,
    Noise,
    Reconstruct,
    Write,
}

impl Stage {
    /// Number of stages per tomogram.
    pub const COUNT: u64 = 6;

    /// A short name for progress bars.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Place => "placing",
            Stage::Project => "projecting",
            Stage::Ctf => "CTF",
            Stage::Noise => "noise",
            Stage::Reconstruct => "WBP",
            Stage::Write => "writing",
        }
    }
}

/// Builds the classes of `cfg` at its voxel size (in config order). Labelled classes take labels
/// 1..N in config order; decoys (see [`ClassSpec::decoy`]) are built and placed like any class but
/// carry no label.
pub fn build_classes(cfg: &SimConfig) -> Result<Vec<ClassModel>, SimError> {
    let res = cfg.effective_resolution_a();
    cfg.classes
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let model = if let Some(b) = &c.builtin {
                library::builtin_class(&c.name, b, cfg.voxel_size_a, res, cfg.mask_fraction)
            } else if let Some(p) = &c.model {
                library::model_class(&c.name, p, cfg.voxel_size_a, res, cfg.mask_fraction)
            } else if let Some(p) = &c.map {
                library::map_class(
                    &c.name,
                    p,
                    cfg.voxel_size_a,
                    c.map_voxel_size_a,
                    cfg.mask_fraction,
                )
            } else if let Some(o) = &c.scrambled_from {
                let original = cfg.classes.iter().find(|d| &d.name == o);
                let blobs = original.and_then(library::spec_blobs).ok_or_else(|| {
                    SimError::Config(format!(
                        "class '{}': scrambled_from '{o}' must name a builtin or model class",
                        c.name
                    ))
                })??;
                let shell = c.shell_a.unwrap_or(8.0);
                let seed = derive_seed(cfg.seed, u64::MAX, index as u64);
                let scrambled = library::scrambled_blobs(&blobs, shell, seed);
                Ok(library::blob_class(
                    &c.name,
                    format!("scrambled:{o}"),
                    &scrambled,
                    cfg.voxel_size_a,
                    res,
                    cfg.mask_fraction,
                ))
            } else {
                Err(SimError::Config(format!(
                    "class '{}' has no source",
                    c.name
                )))
            };
            model.map(|m| m.with_decoy(c.decoy))
        })
        .collect()
}

/// The label of each class, in class order: 1..N for the labelled classes in order, 0 for decoys.
pub fn class_labels(classes: &[ClassModel]) -> Vec<u8> {
    let mut next = 0u8;
    classes
        .iter()
        .map(|c| {
            if c.decoy {
                0
            } else {
                next = next.saturating_add(1);
                next
            }
        })
        .collect()
}

/// The class table of the labelled `classes` (labels 1..N, radius in Å, template path
/// `templates/<name>.mrc`); decoys are left out.
pub fn class_table(classes: &[ClassModel]) -> ClassTable {
    class_table_of(classes, |c| !c.decoy)
}

/// The table of the decoy classes (labels 1..M among themselves): how `decoys.star` names them.
pub fn decoy_table(classes: &[ClassModel]) -> ClassTable {
    class_table_of(classes, |c| c.decoy)
}

fn class_table_of(classes: &[ClassModel], keep: impl Fn(&ClassModel) -> bool) -> ClassTable {
    ClassTable {
        classes: classes
            .iter()
            .filter(|c| keep(c))
            .enumerate()
            .map(|(i, c)| ClassDef {
                name: c.name.clone(),
                label: (i + 1) as u8,
                radius_a: Some((c.radius_a() * 10.0).round() / 10.0),
                radius_vox: None,
                template: Some(PathBuf::from(format!("templates/{}.mrc", c.name))),
            })
            .collect(),
    }
}

/// One simulated tomogram in memory.
#[derive(Debug, Clone)]
pub struct Tomogram {
    /// The noise-free sample (grand model density, occupancy, particles).
    pub sample: Sample,
    /// The noisy tilt series `[tilt, y, x]`.
    pub tilt_series: Array3<f32>,
    /// Tilt angles in degrees.
    pub tilt_angles_deg: Vec<f64>,
    /// The WBP reconstruction `[z, y, x]`.
    pub reconstruction: Array3<f32>,
    /// Standard deviation of the noise added to each projection pixel (0 without noise).
    pub noise_sigma: f64,
    /// Variance of the noise-free projections (see [`imaging::signal_variance`]).
    pub signal_variance: f64,
}

/// Simulates tomogram number `index` of `cfg` with `classes` (from [`build_classes`]);
/// `on_stage` is called as each stage begins.
pub fn simulate_tomogram(
    cfg: &SimConfig,
    classes: &[ClassModel],
    index: usize,
    on_stage: &mut dyn FnMut(Stage),
) -> Tomogram {
    on_stage(Stage::Place);
    let params = sample::PlacementParams {
        shape_zyx: cfg.shape_zyx,
        voxel_size_a: cfg.voxel_size_a,
        slab_thickness_vox: cfg.slab_thickness_vox,
        counts: cfg.counts(),
        max_attempts: cfg.max_attempts,
        resolution_a: cfg.effective_resolution_a(),
        vesicles: cfg.vesicles.clone(),
        gold: cfg.gold.clone(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, index as u64, 0));
    let sample = sample::place_sample(classes, &params, &mut rng);

    on_stage(Stage::Project);
    let angles = imaging::tilt_angles(cfg.tilt.min_deg, cfg.tilt.max_deg, cfg.tilt.step_deg);
    let s = cfg.solvent_density as f32;
    // Particles displace solvent: what the beam sees is density − s·(fill fraction ≤ 1).
    let mut series = imaging::project(&sample.density, &angles, |v| v - s * v.clamp(0.0, 1.0));
    // The slab itself, laterally infinite: path length thickness / cos α.
    let thickness = cfg.slab_thickness_vox.min(cfg.shape_zyx[0]) as f64;
    for (t, mut img) in series.outer_iter_mut().enumerate() {
        let path = thickness / angles[t].to_radians().cos();
        img.mapv_inplace(|v| v + (cfg.solvent_density * path) as f32);
    }

    on_stage(Stage::Ctf);
    if cfg.ctf.enabled {
        imaging::apply_ctf(&mut series, &cfg.ctf, cfg.voxel_size_a);
    }

    on_stage(Stage::Noise);
    let signal_variance = imaging::signal_variance(&series);
    let noise_sigma = if cfg.noise.enabled {
        (signal_variance / cfg.noise.snr).sqrt()
    } else {
        0.0
    };
    if noise_sigma > 0.0 {
        imaging::add_noise(
            &mut series,
            noise_sigma,
            derive_seed(cfg.seed, index as u64, 1),
        );
    }

    on_stage(Stage::Reconstruct);
    let mut reconstruction =
        imaging::reconstruct_wbp(&series, &angles, cfg.shape_zyx[0], &cfg.reconstruction);
    imaging::sanitize(&mut reconstruction);
    Tomogram {
        sample,
        tilt_series: series,
        tilt_angles_deg: angles,
        reconstruction,
        noise_sigma,
        signal_variance,
    }
}

/// The folder of tomogram `index`: `out` itself for a single tomogram, else `out/tomo_###`.
pub fn tomogram_dir(out: &Path, cfg: &SimConfig, index: usize) -> PathBuf {
    if cfg.tomograms == 1 {
        out.to_path_buf()
    } else {
        out.join(tomogram_name(index))
    }
}

/// The tomogram's name in particle files (`rlnTomoName`): `tomo_###`.
pub fn tomogram_name(index: usize) -> String {
    format!("tomo_{index:03}")
}

/// Writes one tomogram's files into `dir` (created if missing).
pub fn write_tomogram(
    dir: &Path,
    cfg: &SimConfig,
    classes: &[ClassModel],
    tomo: &Tomogram,
    name: &str,
) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let vox = cfg.voxel_size_a as f32;
    let vol = |a: Array3<f32>| Volume::new(a, vox);
    mrc::write_volume(
        &dir.join("reconstruction.mrc"),
        &vol(tomo.reconstruction.clone()),
        MrcMode::Float32,
    )?;
    mrc::write_volume(
        &dir.join("grandmodel.mrc"),
        &vol(tomo.sample.density.clone()),
        MrcMode::Float32,
    )?;
    let class_labels = class_labels(classes);
    let labels = Volume::new(tomo.sample.class_mask_with(&class_labels), vox);
    mrc::write_labels(&dir.join("class_mask.mrc"), &labels, LabelMode::Uint8Mode0)?;
    let ids = tomo
        .sample
        .labelled_particle_ids(&class_labels)
        .mapv(|v| v as f32);
    mrc::write_volume(&dir.join("occupancy_mask.mrc"), &vol(ids), MrcMode::Uint16)?;
    let (targets, decoys): (Vec<PlacedParticle>, Vec<PlacedParticle>) = tomo
        .sample
        .particles
        .iter()
        .cloned()
        .partition(|p| class_labels[p.class_index] != 0);
    // The particle lists: SHREC text and RELION STAR, of the targets and of the decoys.
    let write_lists = |placed: &[PlacedParticle], table: ClassTable, stems: [&str; 2]| {
        let list = output::to_particles(placed, classes, name);
        let opts = capsid_io::particles::WriteOptions {
            classes: Some(table),
            ..Default::default()
        };
        for file in stems {
            capsid_io::particles::write_particles(&dir.join(file), &list, &opts)?;
        }
        Ok::<(), SimError>(())
    };
    write_lists(
        &targets,
        class_table(classes),
        ["particle_locations.txt", "particles.star"],
    )?;
    if classes.iter().any(|c| c.decoy) {
        write_lists(
            &decoys,
            decoy_table(classes),
            ["decoy_locations.txt", "decoys.star"],
        )?;
    }
    if cfg.outputs.tilt_series {
        let opts = mrc::WriteOptions {
            ispg: Some(0),
            ..Default::default()
        };
        mrc::write_volume_with(
            &dir.join("tiltseries.mrc"),
            &vol(tomo.tilt_series.clone()),
            MrcMode::Float32,
            &opts,
        )?;
        output::write_text(
            &dir.join("tiltseries.tlt"),
            &output::tlt_text(&tomo.tilt_angles_deg),
        )?;
    }
    if cfg.outputs.preview {
        preview::write_previews(dir, "preview", &tomo.reconstruction)?;
    }
    Ok(())
}

/// What [`run`] reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// Tomogram `index` (of `total`) begins `stage`.
    Stage {
        index: usize,
        total: usize,
        stage: Stage,
    },
    /// Tomogram `index` is written: particles placed and asked for, per class.
    Done {
        index: usize,
        placed: Vec<usize>,
        requested: Vec<usize>,
    },
}

/// Summary of one tomogram of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TomogramSummary {
    pub name: String,
    pub dir: PathBuf,
    pub placed: Vec<usize>,
    pub requested: Vec<usize>,
    pub noise_sigma: f64,
}

/// Simulates every tomogram of `cfg` into `out`: the class table (`class_table.toml`) and class
/// templates (`templates/<name>.mrc`), the resolved config (`simulate_config.toml`, with the capsid
/// version), a summary (`simulate_summary.toml`), and the SHREC files of each tomogram (in `out`
/// for one tomogram, else in `out/tomo_000/`, ...).
pub fn run(
    cfg: &SimConfig,
    out: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<TomogramSummary>, SimError> {
    cfg.validate()?;
    let classes = build_classes(cfg)?;
    for c in &classes {
        if c.mask_voxels() == 0 {
            return Err(SimError::Config(format!(
                "class '{}' has no voxel above mask_fraction {} at {} Å per voxel",
                c.name, cfg.mask_fraction, cfg.voxel_size_a
            )));
        }
    }
    let total_particles: usize = cfg.counts().iter().sum();
    if total_particles > u16::MAX as usize {
        return Err(SimError::Config(format!(
            "{total_particles} particles per tomogram: the occupancy mask (uint16) holds at most 65535"
        )));
    }
    std::fs::create_dir_all(out).map_err(|source| SimError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let templates = out.join("templates");
    std::fs::create_dir_all(&templates).map_err(|source| SimError::Io {
        path: templates.clone(),
        source,
    })?;
    for c in &classes {
        mrc::write_volume(
            &templates.join(format!("{}.mrc", c.name)),
            &Volume::new(c.density.clone(), cfg.voxel_size_a as f32),
            MrcMode::Float32,
        )?;
    }
    output::write_text(
        &out.join("class_table.toml"),
        &class_table(&classes).to_toml_string(),
    )?;
    if classes.iter().any(|c| c.decoy) {
        output::write_text(
            &out.join("decoy_table.toml"),
            &decoy_table(&classes).to_toml_string(),
        )?;
    }
    let mut resolved = cfg.clone();
    resolved.resolution_a = cfg.effective_resolution_a();
    let header = format!(
        "# capsid simulate, capsid {}\n# the resolved configuration of this run\n\n",
        capsid_core::VERSION
    );
    output::write_text(
        &out.join("simulate_config.toml"),
        &(header + &resolved.to_toml_string()),
    )?;

    let mut summaries = Vec::new();
    for index in 0..cfg.tomograms {
        let total = cfg.tomograms;
        let tomo = simulate_tomogram(cfg, &classes, index, &mut |stage| {
            on_event(Event::Stage {
                index,
                total,
                stage,
            })
        });
        on_event(Event::Stage {
            index,
            total,
            stage: Stage::Write,
        });
        let dir = tomogram_dir(out, cfg, index);
        let name = tomogram_name(index);
        write_tomogram(&dir, cfg, &classes, &tomo, &name)?;
        let placed = tomo.sample.placed_per_class(classes.len());
        on_event(Event::Done {
            index,
            placed: placed.clone(),
            requested: tomo.sample.requested.clone(),
        });
        summaries.push(TomogramSummary {
            name,
            dir,
            placed,
            requested: tomo.sample.requested.clone(),
            noise_sigma: tomo.noise_sigma,
        });
    }
    output::write_text(
        &out.join("simulate_summary.toml"),
        &summary_text(&classes, &summaries, out),
    )?;
    Ok(summaries)
}

fn summary_text(classes: &[ClassModel], summaries: &[TomogramSummary], out: &Path) -> String {
    let mut s = format!(
        "# capsid {}: per class: [particles placed, particles asked for]\n",
        capsid_core::VERSION
    );
    for t in summaries {
        let dir = t
            .dir
            .strip_prefix(out)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        s += &format!(
            "\n[[tomogram]]\nname = \"{}\"\ndir = \"{}\"\nnoise_sigma = {}\n",
            t.name, dir, t.noise_sigma
        );
        for (i, c) in classes.iter().enumerate() {
            s += &format!("{} = [{}, {}]\n", c.name, t.placed[i], t.requested[i]);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_tomogram_and_purpose() {
        let a = derive_seed(3, 0, 0);
        assert_ne!(a, derive_seed(3, 1, 0));
        assert_ne!(a, derive_seed(3, 0, 1));
        assert_ne!(a, derive_seed(4, 0, 0));
        assert_eq!(a, derive_seed(3, 0, 0));
    }
}
