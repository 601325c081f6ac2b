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

mod class;
pub mod config;
pub mod density;
pub mod error;
pub mod imaging;
pub mod library;
pub mod metrics;
pub mod output;
pub mod preview;
pub mod sample;
mod seed;
mod tomogram;

pub use class::{build_classes, class_labels, class_table, decoy_table};
pub use config::{ClassSpec, SimConfig};
pub use error::SimError;
pub use library::ClassModel;
pub use sample::{PlacedParticle, Sample};
pub use seed::derive_seed;
pub use tomogram::{
    simulate_tomogram, tomogram_dir, tomogram_name, write_tomogram, Stage, Tomogram,
};

use capsid_core::Volume;
use capsid_io::mrc::{self, MrcMode};
use std::path::{Path, PathBuf};

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
