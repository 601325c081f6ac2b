//! DeepFinder object lists (XML):
//! `<objlist><object tomo_idx="0" class_label="1" x=".." y=".." z=".." phi=".." psi=".." the=".."
//! cluster_size=".."/></objlist>`.
//!
//! `x y z` are voxels; `phi`, `the`, `psi` are ZXZ degrees ([`EulerConvention::Zxz`]: phi, theta,
//! psi — note the attribute names). `class_label` is a label of the class table (required to name
//! it, unless [`ReadOptions::class_numbers_as_names`]). `cluster_size` (DeepFinder's confidence for
//! a pick) is read as the score and the score is written as `cluster_size`. `tomo_idx` becomes the
//! tomogram name; when writing, numeric tomogram names are kept and other names are numbered 0, 1, …
//! in order of first appearance.

use super::{
    angles_from_fields, class_number, line_of, num, parse_number, ReadOptions, WriteOptions,
};
use crate::error::IoError;
use capsid_core::{EulerConvention, Particle};
use quick_xml::events::Event;
use std::collections::HashMap;
use std::path::Path;

/// Reads the particles of a DeepFinder object list.
pub fn parse(
    text: &str,
    path: &Path,
    opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Vec::new();
    let mut saw_objlist = false;
    loop {
        let pos = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            IoError::format(
                path,
                format!("line {}: invalid XML: {e}", line_of(text, pos)),
            )
        })?;
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                if name.as_ref() == b"objlist" {
                    saw_objlist = true;
                    continue;
                }
                if name.as_ref() != b"object" {
                    continue;
                }
                let at = format!("line {}", line_of(text, pos + 1));
                let mut attrs: HashMap<String, String> = HashMap::new();
                for a in e.attributes() {
                    let a = a.map_err(|err| {
                        IoError::format(path, format!("{at}: bad attribute: {err}"))
                    })?;
                    let key = String::from_utf8_lossy(a.key.as_ref()).to_string();
                    let value = a
                        .unescape_value()
                        .map_err(|err| {
                            IoError::format(path, format!("{at}: bad attribute {key}: {err}"))
                        })?
                        .to_string();
                    attrs.insert(key, value);
                }
                let need = |k: &str| {
                    attrs.get(k).map(String::as_str).ok_or_else(|| {
                        IoError::format(path, format!("{at}: <object> lacks the attribute {k}"))
                    })
                };
                let class =
                    super::class_from_number(path, &at, "class_label", need("class_label")?, opts)?;
                let x = parse_number(path, &at, "x", need("x")?)?;
                let y = parse_number(path, &at, "y", need("y")?)?;
                let z = parse_number(path, &at, "z", need("z")?)?;
                let field = |k: &str| attrs.get(k).map(String::as_str);
                let angles = angles_from_fields(
                    path,
                    &at,
                    ["phi", "the", "psi"],
                    [field("phi"), field("the"), field("psi")],
                    EulerConvention::Zxz,
                )?;
                let score = field("cluster_size")
                    .map(|t| parse_number(path, &at, "cluster_size", t))
                    .transpose()?;
                let tomogram = field("tomo_idx").map(|t| t.trim().to_string());
                out.push((
                    at,
                    Particle {
                        class,
                        x,
                        y,
                        z,
                        angles,
                        score,
                        tomogram,
                    },
                ));
            }
            _ => {}
        }
    }
    if !saw_objlist {
        return Err(IoError::format(
            path,
            "not a DeepFinder object list: no <objlist> element",
        ));
    }
    Ok(out)
}

/// The DeepFinder XML text of `particles`.
pub fn render(particles: &[Particle], path: &Path, opts: &WriteOptions) -> Result<String, IoError> {
    let mut tomo_idx: HashMap<String, usize> = HashMap::new();
    let mut s = String::from("<objlist>\n");
    for (i, p) in particles.iter().enumerate() {
        let label = class_number(&p.class, opts.classes.as_ref()).ok_or_else(|| {
            IoError::format(
                path,
                format!(
                    "particle {}: class '{}' needs a number for class_label: give a class table (--classes) that has it",
                    i + 1,
                    p.class
                ),
            )
        })?;
        let tomo = match &p.tomogram {
            Some(t) if t.parse::<u64>().is_ok() => t.clone(),
            Some(t) => {
                let n = tomo_idx.len();
                tomo_idx.entry(t.clone()).or_insert(n).to_string()
            }
            None => "0".to_string(),
        };
        s.push_str(&format!(
            "  <object tomo_idx=\"{}\" class_label=\"{label}\" x=\"{}\" y=\"{}\" z=\"{}\"",
            quick_xml::escape::escape(tomo.as_str()),
            num(p.x),
            num(p.y),
            num(p.z)
        ));
        if let Some(a) = p.angles {
            let [phi, theta, psi] = a.to_convention(EulerConvention::Zxz).angles_deg;
            s.push_str(&format!(
                " phi=\"{}\" psi=\"{}\" the=\"{}\"",
                num(phi),
                num(psi),
                num(theta)
            ));
        }
        if let Some(score) = p.score {
            s.push_str(&format!(" cluster_size=\"{}\"", num(score)));
        }
        s.push_str("/>\n");
    }
    s.push_str("</objlist>\n");
    Ok(s)
}
