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

use capsid_core::{ClassTable, Particle};
use capsid_io::mrc::{self, MrcMode};
use capsid_io::particles::{self, Format, ReadOptions, WriteOptions};
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

// ---------------------------------------------------------------------------------------------
// Targets

fn run_mrc(s: &Scratch, bytes: &[u8]) {
    let p = s.file("f.mrc", bytes);
    if let Ok(h) = mrc::read_header(&p) {
        let _ = h.shape_zyx();
        let _ = h.data_len();
        let _ = mrc::read_slab(&p, 0, 1);
        let _ = mrc::read_block(&p, 0, 1, 0, 1);
        if let Ok(v) = mrc::read_volume(&p) {
            // What the commands do next: statistics and a label-map view.
            let _ = capsid_core::volume::stats(v.data.iter().map(|&x| x as f64));
        }
    }
}

fn read_opts(format: Format) -> ReadOptions {
    ReadOptions {
        format: Some(format),
        voxel_size_a: Some(10.0),
        tomo_shape_xyz: Some([64, 64, 32]),
        allow_empty: true,
        ..ReadOptions::default()
    }
}

fn run_particles(bytes: &[u8], format: Format) {
    let text = String::from_utf8_lossy(bytes);
    let path = Path::new("fuzz.input");
    for opts in [
        read_opts(format),
        ReadOptions {
            classes: Some(class_table()),
            ..read_opts(format)
        },
        ReadOptions {
            voxel_size_a: None,
            tomo_shape_xyz: None,
            class_numbers_as_names: true,
            ..read_opts(format)
        },
    ] {
        if let Ok(located) = particles::parse_particles(&text, path, format, &opts) {
            if let Ok(ps) = particles::check_particles(path, located, &opts) {
                // Write what was read back in every format (the convert command's path).
                for to in [
                    Format::Star,
                    Format::Csv,
                    Format::ShrecTxt,
                    Format::CopickJson,
                ] {
                    let w = WriteOptions {
                        format: Some(to),
                        voxel_size_a: opts.voxel_size_a,
                        tomo_shape_xyz: opts.tomo_shape_xyz,
                        ..WriteOptions::default()
                    };
                    let _ = particles::render_particles(&ps, path, to, &w);
                }
            }
        }
    }
}

fn run_class_table(_: &Scratch, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(t) = ClassTable::from_toml_str(&text, Path::new("classes.toml")) {
        let _ = t.to_toml_string();
        for c in &t.classes {
            let _ = c.radius_voxels(10.0);
            let _ = c.radius_voxels(0.0);
        }
    }
}

fn run_model(s: &Scratch, bytes: &[u8], name: &str) {
    let p = s.file(name, bytes);
    let _ = capsid_sim::library::model_blobs(&p);
}

// ---------------------------------------------------------------------------------------------
// Seeds

const CLASSES: &str = "[[class]]\nname = \"ribosome\"\nlabel = 1\nradius_a = 150.0\n\n\
[[class]]\nname = \"rubisco\"\nlabel = 2\nradius_vox = 3.0\n";

/// The class table the particle targets use (ribosome = 1, rubisco = 2).
pub fn class_table() -> ClassTable {
    ClassTable::from_toml_str(CLASSES, Path::new("classes.toml")).expect("built-in class table")
}

fn seeds_class_table() -> Vec<Vec<u8>> {
    vec![
        CLASSES.as_bytes().to_vec(),
        b"[[class]]\nname = \"a\"\nlabel = 255\nradius_vox = 1e30\ntemplate = \"t.mrc\"\n".to_vec(),
    ]
}

fn seeds_mrc() -> Vec<Vec<u8>> {
    let s = Scratch::new();
    let mut out = Vec::new();
    let data = ndarray::Array3::from_shape_fn((3, 4, 5), |(z, y, x)| (z * 20 + y * 5 + x) as f32);
    let vol = capsid_core::Volume::new(data, 10.0);
    for mode in [
        MrcMode::Float32,
        MrcMode::Int16,
        MrcMode::Uint16,
        MrcMode::Float16,
        MrcMode::Int8,
    ] {
        let p = s.dir.path().join("seed.mrc");
        if mrc::write_volume(&p, &vol, mode).is_ok() {
            let bytes = std::fs::read(&p).expect("seed");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).expect("gzip");
            out.push(gz.finish().expect("gzip"));
            out.push(bytes);
        }
    }
    out
}

fn seed_particles() -> Vec<Particle> {
    (0..4)
        .map(|i| {
            let mut p = Particle::new(
                if i % 2 == 0 { "ribosome" } else { "rubisco" },
                5.0 + i as f64 * 7.0,
                6.5 + i as f64,
                3.25 * i as f64,
            );
            p.angles = Some(capsid_core::EulerAngles::zxz(10.0 * i as f64, 20.0, 30.0));
            p.score = Some(0.5);
            p.tomogram = Some("tomo_1".into());
            p
        })
        .collect()
}

fn seeds_particles(format: Format) -> Vec<Vec<u8>> {
    let mut ps = seed_particles();
    if format == Format::CopickJson {
        // A copick file holds one class.
        ps.retain(|p| p.class == "ribosome");
    }
    let mut out = Vec::new();
    for centred in [false, true] {
        let w = WriteOptions {
            format: Some(format),
            voxel_size_a: Some(10.0),
            tomo_shape_xyz: Some([64, 64, 32]),
            star_centered_angst: centred,
            classes: Some(class_table()),
            ..WriteOptions::default()
        };
        if let Ok(text) = particles::render_particles(&ps, Path::new("seed"), format, &w) {
            out.push(text.into_bytes());
        }
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

const PDB: &str = "\
HEADER    TEST
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00  0.00           N
ATOM      2  CA  ALA A   1      11.639   6.071  -5.147  1.00  0.00           C
ATOM      3  C   ALA A   1      13.148   5.853  -5.100  1.00  0.00           C
ATOM      4  O   ALA A   1      13.725   5.381  -6.079  1.00  0.00           O
HETATM    5 FE   HEM A   2      10.000  10.000  10.000  0.50  0.00          FE
END
";

const MMCIF: &str = "\
data_test
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_entity_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.occupancy
_atom_site.B_iso_or_equiv
_atom_site.auth_seq_id
_atom_site.auth_asym_id
_atom_site.pdbx_PDB_model_num
ATOM 1 N N . ALA A 1 1 ? 11.104 6.134 -6.504 1.00 0.00 1 A 1
ATOM 2 C CA . ALA A 1 1 ? 11.639 6.071 -5.147 1.00 0.00 1 A 1
ATOM 3 O O . ALA A 1 1 ? 13.725 5.381 -6.079 1.00 0.00 1 A 1
";

// ---------------------------------------------------------------------------------------------
// Mutation and campaigns

const INTERESTING: [i64; 14] = [
    0,
    -1,
    1,
    2,
    3,
    101,
    255,
    256,
    65535,
    i32::MAX as i64,
    i32::MIN as i64,
    0x7fff_ff00,
    1024,
    -1024,
];

/// One random mutation of `input` (or a splice with `other`).
pub fn mutate(rng: &mut impl Rng, input: &mut Vec<u8>, other: &[u8]) {
    let n = rng.gen_range(1..=4);
    for _ in 0..n {
        let len = input.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] = rng.gen();
            }
            2 if len >= 4 => {
                // An interesting 32-bit integer, 4-aligned (MRC header words), either byte order.
                let i = rng.gen_range(0..len / 4) * 4;
                let v = INTERESTING[rng.gen_range(0..INTERESTING.len())] as i32;
                let b = if rng.gen() {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                input[i..i + 4].copy_from_slice(&b);
            }
            3 if len >= 4 => {
                // A float word: NaN, infinity, 0, negative, huge.
                let i = rng.gen_range(0..len.min(1024) / 4) * 4;
                let f = [f32::NAN, f32::INFINITY, 0.0, -1.0, 1e30, f32::MIN_POSITIVE]
                    [rng.gen_range(0..6)];
                input[i..i + 4].copy_from_slice(&f.to_le_bytes());
            }
            4 => {
                let i = rng.gen_range(0..=len);
                let k = rng.gen_range(1..=16);
                let bytes: Vec<u8> = (0..k)
                    .map(|_| {
                        if rng.gen_bool(0.5) {
                            b"\n\t ,;:=_\"'#{}[]<>/-.0123456789eE+"[rng.gen_range(0..33)]
                        } else {
                            rng.gen()
                        }
                    })
                    .collect();
                input.splice(i..i, bytes);
            }
            5 if len > 0 => {
                let i = rng.gen_range(0..len);
                let k = rng.gen_range(1..=(len - i).min(64));
                input.drain(i..i + k);
            }
            6 if !other.is_empty() => {
                let cut = rng.gen_range(0..=len);
                let from = rng.gen_range(0..other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => {
                // Repeat a chunk (long lines, repeated loops, many columns).
                let i = rng.gen_range(0..len);
                let k = rng.gen_range(1..=(len - i).min(128));
                let chunk = input[i..i + k].to_vec();
                for _ in 0..rng.gen_range(1..8) {
                    input.splice(i..i, chunk.iter().copied());
                }
            }
            _ if len > 0 => {
                input.truncate(rng.gen_range(0..len));
            }
            _ => input.push(rng.gen()),
        }
    }
    input.truncate(1 << 20);
}

/// What a campaign did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Inputs run.
    pub execs: u64,
    /// Inputs that panicked (saved when a folder was given).
    pub crashes: u64,
    /// Panics caught around third-party parsers (not crashes; reported).
    pub caught_third_party: u64,
    /// Wall time.
    pub seconds: f64,
    /// Paths of the saved crashing inputs.
    pub saved: Vec<PathBuf>,
}

/// Runs `target` on one input; `Err(message)` if it panicked.
pub fn run_one(target: &Target, scratch: &Scratch, input: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (target.run)(scratch, input)
    }))
    .map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

/// Runs `target` for `time` (or `max_execs` inputs, whichever comes first) from its seeds with
/// random mutations (`seed` makes the run reproducible), saving each crashing input into
/// `save_dir/<target>/crash-<hash>` when `save_dir` is given. Panics are silenced while it runs.
pub fn campaign(
    target: &Target,
    time: Duration,
    max_execs: u64,
    seed: u64,
    save_dir: Option<&Path>,
) -> Stats {
    let scratch = Scratch::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut corpus = (target.seeds)();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let seeds = corpus.len();
    let caught_before = capsid_core::guard::caught_panics();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let t0 = Instant::now();
    let mut stats = Stats::default();
    while t0.elapsed() < time && stats.execs < max_execs {
        let input = if (stats.execs as usize) < seeds {
            corpus[stats.execs as usize].clone()
        } else {
            let mut x = corpus[rng.gen_range(0..corpus.len())].clone();
            let other = corpus[rng.gen_range(0..corpus.len())].clone();
            mutate(&mut rng, &mut x, &other);
            x
        };
        stats.execs += 1;
        match run_one(target, &scratch, &input) {
            Ok(()) => {
                // Keep a few mutants as new starting points (no coverage feedback on stable:
                // a small random pool widens the search).
                if corpus.len() < 256 && rng.gen_ratio(1, 64) {
                    corpus.push(input);
                }
            }
            Err(_) => {
                stats.crashes += 1;
                if let Some(dir) = save_dir {
                    let d = dir.join(target.name);
                    let _ = std::fs::create_dir_all(&d);
                    let p = d.join(format!("crash-{:016x}", fnv(&input)));
                    if std::fs::write(&p, &input).is_ok() {
                        stats.saved.push(p);
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    stats.seconds = t0.elapsed().as_secs_f64();
    stats.caught_third_party = (capsid_core::guard::caught_panics() - caught_before) as u64;
    stats
}

/// FNV-1a hash of `b` (names of saved inputs).
pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The folder of saved crashing inputs in this crate's source tree.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}
