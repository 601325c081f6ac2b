//! SHREC `particle_locations.txt`: one particle per line, `class x y z [phi theta psi]`,
//! whitespace-separated, no header. `x y z` are voxels; the angles are ZXZ degrees
//! ([`EulerConvention::Zxz`]: SHREC's rotation_Z1, rotation_X, rotation_Z2). Class names are kept as
//! written (PDB ids such as `4b4t`, and `vesicle` / `fiducial` lines). Blank lines and lines starting
//! with `#` are skipped. Writing omits the angles of particles without them; scores and tomogram
//! names have no place in this format and are not written.

use super::{angles_from_fields, num, parse_number, ReadOptions, WriteOptions};
use crate::error::IoError;
use capsid_core::{EulerConvention, Particle};
use std::path::Path;

/// Reads the particles of a SHREC particle list.
pub fn parse(
    text: &str,
    path: &Path,
    _opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let at = format!("line {}", i + 1);
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() != 4 && f.len() != 7 {
            return Err(IoError::format(
                path,
                format!(
                    "{at}: expected 'class x y z' or 'class x y z phi theta psi', found {} fields",
                    f.len()
                ),
            ));
        }
        let x = parse_number(path, &at, "x", f[1])?;
        let y = parse_number(path, &at, "y", f[2])?;
        let z = parse_number(path, &at, "z", f[3])?;
        let angles = if f.len() == 7 {
            angles_from_fields(
                path,
                &at,
                ["phi", "theta", "psi"],
                [Some(f[4]), Some(f[5]), Some(f[6])],
                EulerConvention::Zxz,
            )?
        } else {
            None
        };
        let p = Particle {
            class: f[0].to_string(),
            x,
            y,
            z,
            angles,
            score: None,
            tomogram: None,
        };
        out.push((at, p));
    }
    Ok(out)
}

/// The SHREC text of `particles`.
pub fn render(
    particles: &[Particle],
    _path: &Path,
    _opts: &WriteOptions,
) -> Result<String, IoError> {
    let mut s = String::new();
    for p in particles {
        s.push_str(&format!(
            "{} {} {} {}",
            p.class,
            num(p.x),
            num(p.y),
            num(p.z)
        ));
        if let Some(a) = p.angles {
            let [phi, theta, psi] = a.to_convention(EulerConvention::Zxz).angles_deg;
            s.push_str(&format!(" {} {} {}", num(phi), num(theta), num(psi)));
        }
        s.push('\n');
    }
    Ok(s)
}
