//! capsid-fuzz: fuzz targets over every parser that reads user files, for stable Rust.
//!
//! Each [`Target`] feeds bytes to one parser the way capsid's commands do (MRC header + data
//! through the file readers, STAR, CSV, SHREC txt, DeepFinder XML, copick JSON, class-table TOML,
//! PDB and mmCIF through the simulator's model loader). A target must never panic: errors are
//! fine, panics are crashes.
//!
//! * [`campaign`] runs one target for a given time: inputs are the target's seeds (valid files
//!   written by capsid's own writers) mutated at random (bit flips, interesting integers at
//!   header offsets, byte insertions/deletions, splices of two inputs, repeated chunks). Every
//!   input that panics is saved under `tests/fuzz_regressions/<target>/`. The binary
//!   `capsid-fuzz SECONDS` (run by `bench/fuzz.sh`) prints executions and crashes per target.
//! * `cargo test -p capsid-fuzz` replays every saved crash and the seeds, runs a short
//!   deterministic campaign per target, and property tests with structured random inputs.
//!
//! Panics caught around third-party parsers (see `capsid_core::guard::catch_third_party_panic`)
//! are not crashes but are counted and reported.
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

mod class_tables;
mod models;
mod mutation;
mod particle_lists;
mod runner;
mod volumes;

use capsid_io::particles::Format;
use class_tables::{run_class_table, seeds_class_table};
use models::{run_model, MMCIF, PDB};
use particle_lists::{run_particles, seeds_particles};
use std::path::PathBuf;
use volumes::{run_mrc, seeds_mrc};

pub use class_tables::class_table;
pub use mutation::mutate;
pub use runner::{campaign, fnv, regressions_dir, run_one, Stats};

/// A scratch folder for targets that read files (one per campaign or test).
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new scratch folder.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("scratch folder"),
        }
    }

    /// Writes `bytes` to the scratch file `name` and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("scratch write");
        p
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// One fuzz target: a parser fed with bytes.
pub struct Target {
    /// Short name (also the folder of its saved crashes).
    pub name: &'static str,
    /// Runs the parser on `bytes`; must not panic.
    pub run: fn(&Scratch, &[u8]),
    /// Valid inputs to start from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "mrc",
            run: run_mrc,
            seeds: seeds_mrc,
        },
        Target {
            name: "star",
            run: |_, b| run_particles(b, Format::Star),
            seeds: || seeds_particles(Format::Star),
        },
        Target {
            name: "csv",
            run: |_, b| run_particles(b, Format::Csv),
            seeds: || seeds_particles(Format::Csv),
        },
        Target {
            name: "shrec",
            run: |_, b| run_particles(b, Format::ShrecTxt),
            seeds: || seeds_particles(Format::ShrecTxt),
        },
        Target {
            name: "deepfinder_xml",
            run: |_, b| run_particles(b, Format::DeepFinderXml),
            seeds: || seeds_particles(Format::DeepFinderXml),
        },
        Target {
            name: "copick_json",
            run: |_, b| run_particles(b, Format::CopickJson),
            seeds: || seeds_particles(Format::CopickJson),
        },
        Target {
            name: "class_toml",
            run: run_class_table,
            seeds: seeds_class_table,
        },
        Target {
            name: "pdb",
            run: |s, b| run_model(s, b, "m.pdb"),
            seeds: || vec![PDB.as_bytes().to_vec()],
        },
        Target {
            name: "mmcif",
            run: |s, b| run_model(s, b, "m.cif"),
            seeds: || vec![MMCIF.as_bytes().to_vec()],
        },
    ]
}

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    targets().into_iter().find(|t| t.name == name)
}
