//! copick picks JSON (copick's `CopickPicksFile`): the picks of one object (class) in one run.
//!
//! ```json
//! {"pickable_object_name": "ribosome", "user_id": "capsid", "session_id": "0",
//!  "run_name": "TS_01", "voxel_spacing": 10.0, "unit": "angstrom", "trust_orientation": true,
//!  "points": [{"location": {"x": 100.0, "y": 50.0, "z": 20.0},
//!              "transformation_": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]],
//!              "instance_id": 0, "score": 1.0}]}
//! ```
//!
//! * `location` is in Å (`unit` must be `angstrom`, the default); voxels = Å / voxel size, where the
//!   voxel size is [`ReadOptions::voxel_size_a`] if given, else the file's `voxel_spacing`.
//! * `transformation_` maps object space to tomogram space: its 3×3 block is the particle's active
//!   rotation ([`capsid_core::Rotation`]), read as ZXZ angles; its translation column (Å) is added to
//!   the location. With `trust_orientation: false` the angles are dropped.
//! * `pickable_object_name` is the class, `run_name` the tomogram, `score` the score.
//!
//! Writing needs one class (copick keeps one file per object: write each class to its own file)
//! and at most one tomogram, and a voxel size. `session_id` defaults to `"0"` (copick's mark of a
//! tool-generated pick), `user_id` to `capsid`; `trust_orientation` is true when every particle has
//! angles (then `transformation_` holds them; otherwise it is the identity).

use super::{ReadOptions, WriteOptions};
use crate::error::IoError;
use capsid_core::{EulerConvention, Particle, Rotation};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Serialize, Deserialize)]
struct PicksFile {
    pickable_object_name: String,
    user_id: serde_json::Value,
    session_id: serde_json::Value,
    #[serde(default)]
    run_name: Option<String>,
    #[serde(default)]
    voxel_spacing: Option<f64>,
    #[serde(default = "angstrom")]
    unit: String,
    #[serde(default)]
    points: Option<Vec<Point>>,
    #[serde(default)]
    trust_orientation: Option<bool>,
}

fn angstrom() -> String {
    "angstrom".to_string()
}

#[derive(Debug, Serialize, Deserialize)]
struct Location {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Point {
    location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transformation_: Option<[[f64; 4]; 4]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
}

/// Reads the particles of a copick picks file.
pub fn parse(
    text: &str,
    path: &Path,
    opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    let file: PicksFile = serde_json::from_str(text).map_err(|e| {
        IoError::format(
            path,
            format!("line {}: not a copick picks file: {e}", e.line()),
        )
    })?;
    if !file.unit.eq_ignore_ascii_case("angstrom") {
        return Err(IoError::format(
            path,
            format!("unit '{}' is not supported (only angstrom)", file.unit),
        ));
    }
    let points = file.points.unwrap_or_default();
    let voxel = match opts.voxel_size_a.or(file.voxel_spacing) {
        Some(v) if v > 0.0 && v.is_finite() => v,
        Some(v) => return Err(IoError::format(path, format!("voxel_spacing must be positive, got {v}"))),
        None if points.is_empty() => 1.0,
        None => {
            return Err(IoError::format(
                path,
                "locations are in Å and the file has no voxel_spacing: give the voxel size (--voxel-size)",
            ))
        }
    };
    let trust = file.trust_orientation.unwrap_or(true);
    let mut out = Vec::with_capacity(points.len());
    for (i, pt) in points.into_iter().enumerate() {
        let at = format!("point {}", i + 1);
        let mut loc = [pt.location.x, pt.location.y, pt.location.z];
        let mut angles = None;
        if let Some(t) = pt.transformation_ {
            let m = [
                [t[0][0], t[0][1], t[0][2]],
                [t[1][0], t[1][1], t[1][2]],
                [t[2][0], t[2][1], t[2][2]],
            ];
            let r = Rotation { m };
            let ortho = r.mul(&r.transpose());
            let err = (0..3)
                .flat_map(|i| (0..3).map(move |j| (i, j)))
                .map(|(i, j)| (ortho.m[i][j] - if i == j { 1.0 } else { 0.0 }).abs())
                .fold(0.0, f64::max);
            let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
            if err > 1e-4 || (det - 1.0).abs() > 1e-4 || t[3] != [0.0, 0.0, 0.0, 1.0] {
                return Err(IoError::format(
                    path,
                    format!("{at}: transformation_ is not a rotation with last row 0 0 0 1"),
                ));
            }
            for k in 0..3 {
                loc[k] += t[k][3];
            }
            if trust {
                angles = Some(r.to_euler(EulerConvention::Zxz));
            }
        } else if trust {
            angles = Some(Rotation::identity().to_euler(EulerConvention::Zxz));
        }
        let p = Particle {
            class: file.pickable_object_name.clone(),
            x: loc[0] / voxel,
            y: loc[1] / voxel,
            z: loc[2] / voxel,
            angles,
            score: pt.score,
            tomogram: file.run_name.clone(),
        };
        out.push((at, p));
    }
    Ok(out)
}

/// The copick JSON text of `particles` (one class, at most one tomogram).
pub fn render(particles: &[Particle], path: &Path, opts: &WriteOptions) -> Result<String, IoError> {
    let mut classes: Vec<&str> = particles.iter().map(|p| p.class.as_str()).collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() > 1 {
        return Err(IoError::format(
            path,
            format!(
                "a copick picks file holds one object, these particles have {} classes ({}): write each class to its own file",
                classes.len(),
                classes.join(", ")
            ),
        ));
    }
    let mut tomos: Vec<&str> = particles
        .iter()
        .filter_map(|p| p.tomogram.as_deref())
        .collect();
    tomos.sort_unstable();
    tomos.dedup();
    if tomos.len() > 1 {
        return Err(IoError::format(
            path,
            format!(
                "a copick picks file holds one run, these particles lie in {} tomograms ({})",
                tomos.len(),
                tomos.join(", ")
            ),
        ));
    }
    let voxel = opts.voxel_size_a.ok_or_else(|| {
        IoError::format(path, "copick stores Å: give the voxel size (--voxel-size)")
    })?;
    let trust = !particles.is_empty() && particles.iter().all(|p| p.angles.is_some());
    let points = particles
        .iter()
        .map(|p| {
            let r = p
                .angles
                .filter(|_| trust)
                .map(|a| a.rotation())
                .unwrap_or_default();
            let m = r.m;
            Point {
                location: Location {
                    x: p.x * voxel,
                    y: p.y * voxel,
                    z: p.z * voxel,
                },
                transformation_: Some([
                    [m[0][0], m[0][1], m[0][2], 0.0],
                    [m[1][0], m[1][1], m[1][2], 0.0],
                    [m[2][0], m[2][1], m[2][2], 0.0],
                    [0.0, 0.0, 0.0, 1.0],
                ]),
                instance_id: Some(0),
                score: p.score,
            }
        })
        .collect();
    let file = PicksFile {
        pickable_object_name: classes.first().map(|c| c.to_string()).unwrap_or_default(),
        user_id: serde_json::Value::String(
            opts.copick_user_id
                .clone()
                .unwrap_or_else(|| "capsid".into()),
        ),
        session_id: serde_json::Value::String(
            opts.copick_session_id.clone().unwrap_or_else(|| "0".into()),
        ),
        run_name: tomos.first().map(|t| t.to_string()),
        voxel_spacing: Some(voxel),
        unit: angstrom(),
        points: Some(points),
        trust_orientation: Some(trust),
    };
    let mut s =
        serde_json::to_string_pretty(&file).map_err(|e| IoError::format(path, e.to_string()))?;
    s.push('\n');
    Ok(s)
}
