//! One tomogram: its stages, simulating it in memory, and writing its files.

use crate::class::{class_labels, class_table, decoy_table};
use crate::{
    derive_seed, imaging, output, preview, sample, ClassModel, PlacedParticle, Sample, SimConfig,
    SimError,
};
use capsid_core::{ClassTable, Volume};
use capsid_io::mrc::{self, LabelMode, MrcMode};
use ndarray::Array3;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

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

/// Simulates tomogram number `index` of `cfg` with `classes` (from
/// [`build_classes`](crate::build_classes)); `on_stage` is called as each stage begins.
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
