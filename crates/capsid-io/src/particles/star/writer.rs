//! Writing particles as a RELION `data_particles` block with right-aligned columns, after a
//! `data_optics` block for RELION 3.1 and 5, or as Warp's unnamed block ([`StarStyle`]).

use super::relion::{
    ANGLES, CENTRED, CLASS_NAME, CLASS_NUMBER, COORD, MICROGRAPH, SCORE, TOMO, TOMOSTAR,
};
use crate::error::IoError;
use crate::particles::{num, Optics, StarStyle, WriteOptions};
use capsid_core::{EulerConvention, Particle};
use std::path::Path;

/// Quotes a STAR value when it would not read back as one token.
fn quote(v: &str) -> String {
    let needs = v.is_empty()
        || v.chars().any(char::is_whitespace)
        || v.starts_with(['#', '_', '\'', '"'])
        || v.starts_with("data_")
        || v.starts_with("loop_");
    if !needs {
        v.to_string()
    } else if v.contains('"') {
        format!("'{v}'")
    } else {
        format!("\"{v}\"")
    }
}

/// All particles have the value, or none has; an error naming `what` otherwise.
fn all_or_none(
    path: &Path,
    particles: &[Particle],
    what: &str,
    has: impl Fn(&Particle) -> bool,
) -> Result<bool, IoError> {
    let n = particles.iter().filter(|p| has(p)).count();
    if n != 0 && n != particles.len() {
        return Err(IoError::format(
            path,
            format!(
                "{n} of {} particles have {what}: a STAR column needs it for all or none",
                particles.len()
            ),
        ));
    }
    Ok(n > 0)
}

/// The STAR text of `particles` (see the [module docs](super)).
pub fn render(particles: &[Particle], path: &Path, opts: &WriteOptions) -> Result<String, IoError> {
    let with_tomo = all_or_none(path, particles, "a tomogram name", |p| p.tomogram.is_some())?;
    let with_angles = all_or_none(path, particles, "angles", |p| p.angles.is_some())?;
    let with_score = all_or_none(path, particles, "a score", |p| p.score.is_some())?;
    let numbers: Vec<Option<i64>> = particles
        .iter()
        .map(|p| crate::particles::class_number(&p.class, opts.classes.as_ref()))
        .collect();
    if let Some(table) = &opts.classes {
        if let Some(p) = particles.iter().find(|p| table.get(&p.class).is_err()) {
            return Err(IoError::format(
                path,
                format!(
                    "class '{}' is not in the class table ({})",
                    p.class,
                    table.names().join(", ")
                ),
            ));
        }
    }
    let with_number = !particles.is_empty() && numbers.iter().all(Option::is_some);
    let style = match (opts.star, opts.voxel_size_a) {
        (StarStyle::Relion31, None) => StarStyle::Relion30,
        (style, _) => style,
    };
    let centred = if style == StarStyle::Relion5 {
        let v = opts.voxel_size_a.ok_or_else(|| {
            IoError::format(
                path,
                "RELION 5 centred coordinates need the voxel size (--voxel-size)",
            )
        })?;
        let s = opts.tomo_shape_xyz.ok_or_else(|| {
            IoError::format(
                path,
                "RELION 5 centred coordinates need the tomogram shape (--tomo-shape X,Y,Z)",
            )
        })?;
        if !with_tomo && !particles.is_empty() {
            return Err(IoError::format(
                path,
                "RELION 5 needs the tomogram of every particle (rlnTomoName): give --tomo-name",
            ));
        }
        Some((v, s.map(|n| n as f64 / 2.0)))
    } else {
        None
    };
    let optics = match style {
        StarStyle::Relion30 | StarStyle::Warp => None,
        _ => Some(
            optics_block(style, &opts.optics, opts.voxel_size_a.unwrap_or(0.0))
                .map_err(|m| IoError::format(path, m))?,
        ),
    };

    let warp = style == StarStyle::Warp;
    let mut columns: Vec<&str> = Vec::new();
    if with_tomo {
        columns.push(if warp { MICROGRAPH } else { TOMO });
    }
    columns.extend(if centred.is_some() { CENTRED } else { COORD });
    if with_angles {
        columns.extend(ANGLES);
    }
    if with_number {
        columns.push(CLASS_NUMBER);
    }
    columns.push(CLASS_NAME);
    if with_score {
        columns.push(SCORE);
    }
    if optics.is_some() {
        columns.push(OPTICS_GROUP);
    }
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(particles.len());
    for (p, n) in particles.iter().zip(&numbers) {
        let mut r = Vec::with_capacity(columns.len());
        if with_tomo {
            let name = p.tomogram.as_deref().unwrap_or("");
            if warp && !name.ends_with(TOMOSTAR) {
                r.push(quote(&format!("{name}{TOMOSTAR}")));
            } else {
                r.push(quote(name));
            }
        }
        let mut xyz = p.position_xyz();
        if let Some((v, c)) = centred {
            for k in 0..3 {
                xyz[k] = (xyz[k] - c[k]) * v;
            }
        }
        r.extend(xyz.iter().map(|v| num(*v)));
        if let Some(a) = p.angles.filter(|_| with_angles) {
            let rel = a.to_convention(EulerConvention::RelionZyz);
            // Angles converted from another convention carry float noise in the last digits
            // (-171.95999999999998); a micro-degree is far below any alignment precision.
            let tidy = |v: f64| {
                if a.convention == rel.convention {
                    v
                } else {
                    (v * 1e6).round() / 1e6 + 0.0
                }
            };
            r.extend(rel.angles_deg.iter().map(|v| num(tidy(*v))));
        }
        if with_number {
            r.push(n.unwrap_or(0).to_string());
        }
        r.push(quote(&p.class));
        if with_score {
            r.push(num(p.score.unwrap_or(0.0)));
        }
        if optics.is_some() {
            r.push("1".into());
        }
        rows.push(r);
    }
    let mut widths: Vec<usize> = vec![0; columns.len()];
    for r in &rows {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.len());
        }
    }
    let mut s = format!("# Written by capsid {}\n\n", capsid_core::VERSION);
    if let Some(o) = &optics {
        s.push_str(o);
    }
    // Warp's documented particle table is an unnamed block (`data_`).
    s.push_str(if warp {
        "data_\n\nloop_\n"
    } else {
        "data_particles\n\nloop_\n"
    });
    for (i, c) in columns.iter().enumerate() {
        s.push_str(&format!("_{c} #{}\n", i + 1));
    }
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect();
        s.push_str(&cells.join("  "));
        s.push('\n');
    }
    s.push('\n');
    Ok(s)
}

const OPTICS_GROUP: &str = "rlnOpticsGroup";

/// The `data_optics` block (one group, named `opticsGroup1`) of `style` for a tomogram of
/// `voxel_size_a` Å, ending with a blank line; a message naming the bad value otherwise.
fn optics_block(style: StarStyle, optics: &Optics, voxel_size_a: f64) -> Result<String, String> {
    let positive = |what: &str, v: f64| {
        if v > 0.0 && v.is_finite() {
            Ok(())
        } else {
            Err(format!("{what} must be positive, got {v}"))
        }
    };
    let checks = [
        positive("the voltage (kV)", optics.voltage_kv),
        positive("the voxel size (Å)", voxel_size_a),
        if optics.cs_mm.is_finite() {
            Ok(())
        } else {
            Err(format!("Cs must be finite, got {}", optics.cs_mm))
        },
        if (0.0..1.0).contains(&optics.amplitude_contrast) {
            Ok(())
        } else {
            Err(format!(
                "the amplitude contrast must be in [0, 1), got {}",
                optics.amplitude_contrast
            ))
        },
    ];
    checks.into_iter().collect::<Result<Vec<()>, String>>()?;
    let pixel = match style {
        StarStyle::Relion5 => {
            let p = optics.tilt_series_pixel_size_a.unwrap_or(voxel_size_a);
            positive("the tilt series' pixel size (Å)", p)?;
            ("rlnTomoTiltSeriesPixelSize", p)
        }
        _ => ("rlnImagePixelSize", voxel_size_a),
    };
    let columns: [(&str, String); 6] = [
        ("rlnOpticsGroupName", "opticsGroup1".into()),
        (OPTICS_GROUP, "1".into()),
        (pixel.0, num(pixel.1)),
        ("rlnVoltage", num(optics.voltage_kv)),
        ("rlnSphericalAberration", num(optics.cs_mm)),
        ("rlnAmplitudeContrast", num(optics.amplitude_contrast)),
    ];
    let mut s = String::from("data_optics\n\nloop_\n");
    for (i, (c, _)) in columns.iter().enumerate() {
        s.push_str(&format!("_{c} #{}\n", i + 1));
    }
    let values: Vec<&str> = columns.iter().map(|(_, v)| v.as_str()).collect();
    s.push_str(&values.join("  "));
    s.push_str("\n\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::syntax::tokenize;
    use super::*;

    #[test]
    fn quote_round_trips() {
        for v in [
            "plain",
            "with space",
            "",
            "#hash",
            "_under",
            "say \"hi\" now",
        ] {
            let line = format!("{} end", quote(v));
            assert_eq!(
                tokenize(&line).unwrap(),
                vec![v.to_string(), "end".to_string()],
                "{v}"
            );
        }
    }
}
