//! The training inputs of a run: where they are found (a SHREC-layout folder or a list file,
//! [`discover`]) and how they are read into [`TrainSample`]s ([`load_samples`]).
//!
//! A list file has one tomogram per line, `TOMO PARTICLES [LABELS]` (paths relative to the list
//! file; `-` for a missing particle list), `#` starts a comment.

use crate::data::{make_sample, TrainSample};
use crate::train::InputSpec;
use crate::NnError;
use capsid_core::{ClassTable, Particle};
use capsid_io::mrc;
use capsid_io::particles::{self, ReadOptions};
use std::path::{Path, PathBuf};

/// The inputs found at a `--data` path and the class table found beside them, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub inputs: Vec<InputSpec>,
    /// `class_table.toml` in the folder or its parent (folders only).
    pub class_table: Option<PathBuf>,
}

fn input_error(path: &Path, reason: impl Into<String>) -> NnError {
    NnError::Input {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// One SHREC-layout tomogram folder as an input, if it holds `reconstruction.mrc` (with
/// `class_mask.mrc` and `particle_locations.txt` where present).
fn shrec_input(dir: &Path) -> Option<InputSpec> {
    let tomo = dir.join("reconstruction.mrc");
    if !tomo.is_file() {
        return None;
    }
    let labels = Some(dir.join("class_mask.mrc")).filter(|p| p.is_file());
    let particles = Some(dir.join("particle_locations.txt")).filter(|p| p.is_file());
    Some(InputSpec {
        tomogram: tomo,
        particles,
        labels,
        copick: None,
    })
}

/// The inputs of a `--data` path: a SHREC-layout folder (one tomogram folder, or a folder of
/// them, sorted by name) or a list file (see the module docs).
pub fn discover(path: &Path) -> Result<Dataset, NnError> {
    if path.is_dir() {
        let class_table = [
            path.join("class_table.toml"),
            path.join("..").join("class_table.toml"),
        ]
        .into_iter()
        .find(|p| p.is_file());
        if let Some(one) = shrec_input(path) {
            return Ok(Dataset {
                inputs: vec![one],
                class_table,
            });
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| NnError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let inputs: Vec<InputSpec> = dirs.iter().filter_map(|d| shrec_input(d)).collect();
        if inputs.is_empty() {
            return Err(input_error(
                path,
                "no reconstruction.mrc in the folder or its subfolders (expected the SHREC layout)",
            ));
        }
        return Ok(Dataset {
            inputs,
            class_table,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Dataset {
        inputs: parse_list(&text, path)?,
        class_table: None,
    })
}

/// The inputs of a list file's text; relative paths are taken from the list file's folder.
fn parse_list(text: &str, path: &Path) -> Result<Vec<InputSpec>, NnError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |s: &str| -> Option<PathBuf> {
        if s == "-" {
            None
        } else {
            let p = PathBuf::from(s);
            Some(if p.is_relative() { base.join(p) } else { p })
        }
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let line_error = |what: String| input_error(path, format!("line {}: {what}", i + 1));
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 2 || f.len() > 3 {
            return Err(line_error(format!(
                "expected `TOMO PARTICLES [LABELS]`, found {} fields",
                f.len()
            )));
        }
        let tomogram = rel(f[0]).ok_or_else(|| line_error("the tomogram cannot be '-'".into()))?;
        let particles = rel(f[1]);
        let labels = f.get(2).and_then(|s| rel(s));
        if particles.is_none() && labels.is_none() {
            return Err(line_error("give a particle list or a label map".into()));
        }
        out.push(InputSpec {
            tomogram,
            particles,
            labels,
            copick: None,
        });
    }
    if out.is_empty() {
        return Err(input_error(path, "the list names no tomogram"));
    }
    Ok(out)
}

/// Reads the tomograms, particle lists and label maps of `inputs` into training samples (the
/// particles of `targets`, labelled as in `classes`). A label map must lie on its tomogram's grid
/// and hold only labels of `classes`.
pub fn load_samples(
    inputs: &[InputSpec],
    classes: &ClassTable,
    targets: &[String],
    target_radius: f64,
) -> Result<Vec<TrainSample>, NnError> {
    inputs
        .iter()
        .map(|inp| load_sample(inp, classes, targets, target_radius))
        .collect()
}

/// One input of [`load_samples`].
fn load_sample(
    inp: &InputSpec,
    classes: &ClassTable,
    targets: &[String],
    target_radius: f64,
) -> Result<TrainSample, NnError> {
    let tomo = mrc::read_volume(&inp.tomogram)?;
    let [nz, ny, nx] = tomo.shape_zyx();
    let particles: Vec<Particle> = match (&inp.particles, &inp.copick) {
        (Some(_), Some(_)) => {
            return Err(input_error(
                &inp.tomogram,
                "give the particles as a list or as copick picks, not both",
            ))
        }
        (None, Some(c)) => {
            let project = capsid_io::copick_project::Project::open(&c.config)?;
            let picks = project.read_picks(
                &c.run,
                &c.user_id,
                &c.session_id,
                classes,
                tomo.voxel_size() as f64,
            )?;
            for p in &picks {
                let [x, y, z] = [p.x, p.y, p.z];
                let inside = |v: f64, n: usize| v >= -0.5 && v < n as f64 - 0.5;
                if !(inside(x, nx) && inside(y, ny) && inside(z, nz)) {
                    return Err(input_error(
                        &c.config,
                        format!(
                            "run '{}': a '{}' pick of {}/{} lies outside the tomogram (voxel {x:.1}, {y:.1}, {z:.1} of {nx}×{ny}×{nz}; wrong voxel spacing?)",
                            c.run, p.class, c.user_id, c.session_id
                        ),
                    ));
                }
            }
            picks
        }
        (Some(p), None) => {
            let vs = tomo.voxel_size() as f64;
            let opts = ReadOptions {
                voxel_size_a: (vs > 0.0).then_some(vs),
                tomo_shape_xyz: Some([nx, ny, nz]),
                classes: Some(classes.clone()),
                ..ReadOptions::default()
            };
            particles::read_particles(p, &opts)?
        }
        (None, None) => vec![],
    };
    let label_map = match &inp.labels {
        Some(l) => {
            let v = mrc::read_label_map(l)?;
            capsid_core::guard::check_same_grid(
                &inp.tomogram,
                tomo.shape_zyx(),
                tomo.voxel_size_a,
                l,
                v.shape_zyx(),
                v.voxel_size_a,
            )?;
            capsid_core::guard::check_labels_known(l, v.data.iter().copied(), classes)?;
            Some(v.data)
        }
        None => None,
    };
    let name = capsid_core::outputs::tomogram_name(&inp.tomogram);
    make_sample(
        &name,
        tomo,
        &particles,
        label_map,
        classes,
        targets,
        target_radius,
    )
    .map_err(|e| input_error(&inp.tomogram, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_files_resolve_relative_paths_and_name_bad_lines() {
        let list = Path::new("/data/train.txt");
        let got = parse_list(
            "# comment\nt1.mrc t1.star\n/abs/t2.mrc - t2_labels.mrc\n",
            list,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].tomogram, PathBuf::from("/data/t1.mrc"));
        assert_eq!(got[0].particles, Some(PathBuf::from("/data/t1.star")));
        assert_eq!(got[1].tomogram, PathBuf::from("/abs/t2.mrc"));
        assert_eq!(got[1].particles, None);
        assert_eq!(got[1].labels, Some(PathBuf::from("/data/t2_labels.mrc")));
        let e = parse_list("t1.mrc\n", list).unwrap_err().to_string();
        assert!(e.starts_with("/data/train.txt: line 1:"), "{e}");
        let e = parse_list("t1.mrc - \nt2.mrc -\n", list)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: give a particle list"), "{e}");
        let e = parse_list("# nothing\n", list).unwrap_err().to_string();
        assert!(e.contains("names no tomogram"), "{e}");
    }
}
