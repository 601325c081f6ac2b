//! CSV particle lists: a header row, then one particle per row.
//!
//! Columns are found by name (case-insensitive, any order): `class`, `x`, `y`, `z` (voxels) are
//! required; `score`, `phi`, `theta`, `psi` (ZXZ degrees, [`EulerConvention::Zxz`]) and `tomogram`
//! are optional, and other columns are ignored. An empty optional cell means "none". Writing gives
//! `class,x,y,z` then `score`, `phi,theta,psi` and `tomogram` when any particle has them.

use super::{angles_from_fields, num, parse_number, ReadOptions, WriteOptions};
use crate::error::IoError;
use capsid_core::{EulerConvention, Particle};
use std::path::Path;

/// Reads the particles of CSV text.
pub fn parse(
    text: &str,
    path: &Path,
    _opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| IoError::format(path, format!("line 1: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect::<Vec<_>>();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let required: Vec<(&str, Option<usize>)> = ["class", "x", "y", "z"]
        .iter()
        .map(|n| (*n, col(n)))
        .collect();
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(IoError::format(
            path,
            format!(
                "missing column(s) {} (header: {})",
                missing.join(", "),
                headers.join(",")
            ),
        ));
    }
    let [class_c, x_c, y_c, z_c] =
        [required[0].1, required[1].1, required[2].1, required[3].1].map(|c| c.unwrap_or(0));
    let (score_c, tomo_c) = (col("score"), col("tomogram"));
    let angle_c = [col("phi"), col("theta"), col("psi")];
    let mut out = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            IoError::format(path, format!("line {line}: {e}"))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let at = format!("line {line}");
        let get = |c: usize| rec.get(c).unwrap_or("");
        let opt = |c: Option<usize>| c.map(get).filter(|t| !t.is_empty());
        let x = parse_number(path, &at, "x", get(x_c))?;
        let y = parse_number(path, &at, "y", get(y_c))?;
        let z = parse_number(path, &at, "z", get(z_c))?;
        let angles = angles_from_fields(
            path,
            &at,
            ["phi", "theta", "psi"],
            angle_c.map(opt),
            EulerConvention::Zxz,
        )?;
        let score = opt(score_c)
            .map(|t| parse_number(path, &at, "score", t))
            .transpose()?;
        let p = Particle {
            class: get(class_c).to_string(),
            x,
            y,
            z,
            angles,
            score,
            tomogram: opt(tomo_c).map(str::to_string),
        };
        out.push((at, p));
    }
    Ok(out)
}

/// The CSV text of `particles`.
pub fn render(
    particles: &[Particle],
    path: &Path,
    _opts: &WriteOptions,
) -> Result<String, IoError> {
    let with_score = particles.iter().any(|p| p.score.is_some());
    let with_angles = particles.iter().any(|p| p.angles.is_some());
    let with_tomo = particles.iter().any(|p| p.tomogram.is_some());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["class", "x", "y", "z"];
    if with_score {
        header.push("score");
    }
    if with_angles {
        header.extend(["phi", "theta", "psi"]);
    }
    if with_tomo {
        header.push("tomogram");
    }
    let werr = |e: csv::Error| IoError::format(path, e.to_string());
    w.write_record(&header).map_err(werr)?;
    for p in particles {
        let mut r = vec![p.class.clone(), num(p.x), num(p.y), num(p.z)];
        if with_score {
            r.push(p.score.map(num).unwrap_or_default());
        }
        if with_angles {
            match p.angles {
                Some(a) => r.extend(a.to_convention(EulerConvention::Zxz).angles_deg.map(num)),
                None => r.extend([String::new(), String::new(), String::new()]),
            }
        }
        if with_tomo {
            r.push(p.tomogram.clone().unwrap_or_default());
        }
        w.write_record(&r).map_err(werr)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| IoError::format(path, e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| IoError::format(path, e.to_string()))
}
