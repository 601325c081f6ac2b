//! RELION STAR files: a small parser for data blocks, key-value pairs and `loop_` tables, and the
//! particle reader and writer built on it.
//!
//! Parsing follows RELION's reader: `data_NAME` opens a block; `_key value` lines are key-value
//! pairs; `loop_` is followed by `_column` lines (an optional `#n` after the name is a comment) and
//! then one row per line until a blank line, a new `data_`/`loop_`/`_key` line or the end. Values
//! may be quoted with `'` or `"` (`""` is an empty value); `#` at the start of a token starts a
//! comment. A row with the wrong number of values is an error naming its line.
//!
//! Particles are read from the block `data_particles` if it has a coordinate loop, else from the
//! first loop with coordinates. Columns:
//! * position: `rlnCoordinateX/Y/Z` (voxels), else RELION 5 `rlnCenteredCoordinateX/Y/ZAngst`:
//!   Å from the tomogram centre, converted as RELION 5 does
//!   (`ParticleSet::getParticleCoordDecenteredPixel`): `x = x_Å / voxel_size + nx / 2` (float
//!   division; the same for y, z). This needs the voxel size and tomogram shape of the tomogram the
//!   voxel coordinates refer to. `rlnOriginX/Y/ZAngst` shifts, when present and non-zero, are
//!   subtracted (`x -= origin_Å / voxel_size`, as RELION's `getPosition` does), which also needs the
//!   voxel size.
//! * angles: `rlnAngleRot/Tilt/Psi` ([`EulerConvention::RelionZyz`]).
//! * class: the text column `capsidClassName` (written by capsid), else `rlnClassNumber` mapped
//!   through the class table, else [`ReadOptions::default_class`].
//! * score: `rlnAutopickFigureOfMerit`; tomogram: `rlnTomoName`, else `rlnMicrographName`.
//!
//! Written files have one block `data_particles` with a `loop_` of right-aligned columns
//! `rlnTomoName`, `rlnCoordinateX/Y/Z` (or the RELION 5 centred Å columns), `rlnAngleRot/Tilt/Psi`,
//! `rlnClassNumber` (table label, or the class name when it is a number), `capsidClassName`,
//! `rlnAutopickFigureOfMerit`; optional columns only when particles have the value (all or none).
//! RELION keeps unknown columns such as `capsidClassName`; starfile reads them as any column.

use super::{num, parse_number, ReadOptions, WriteOptions};
use crate::error::IoError;
use capsid_core::{EulerConvention, Particle};
use std::path::Path;

/// A parsed STAR file: its data blocks in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StarFile {
    pub blocks: Vec<StarBlock>,
}

/// One `data_NAME` block: key-value pairs and loops, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StarBlock {
    /// The name after `data_` (may be empty).
    pub name: String,
    /// `_key value` pairs (key without the leading underscore).
    pub pairs: Vec<(String, String)>,
    pub loops: Vec<StarLoop>,
}

/// One `loop_` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StarLoop {
    /// Column names without the leading underscore.
    pub columns: Vec<String>,
    /// Rows of values (quotes removed), each as long as `columns`.
    pub rows: Vec<Vec<String>>,
    /// 1-based line number of each row.
    pub row_lines: Vec<usize>,
}

impl StarLoop {
    /// Index of column `name` (without underscore).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

impl StarFile {
    /// The block called `name`.
    pub fn block(&self, name: &str) -> Option<&StarBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// Splits one line into values, removing quotes and a trailing `#` comment. `Err` holds a message
/// for an unterminated quote.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        if c == '\'' || c == '"' {
            // A quoted value ends at the same quote followed by whitespace or the line end.
            let mut j = i + 1;
            loop {
                if j >= chars.len() {
                    return Err(format!("unterminated {c} quote"));
                }
                if chars[j] == c && (j + 1 == chars.len() || chars[j + 1].is_whitespace()) {
                    break;
                }
                j += 1;
            }
            out.push(chars[i + 1..j].iter().collect());
            i = j + 1;
        } else {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    Ok(out)
}

/// Parses STAR text; `path` names the file in errors.
pub fn parse_star(text: &str, path: &Path) -> Result<StarFile, IoError> {
    #[derive(PartialEq)]
    enum State {
        Outside,
        Block,
        LoopHeader,
        LoopRows,
    }
    let mut file = StarFile::default();
    let mut state = State::Outside;
    let err = |line: usize, m: String| IoError::format(path, format!("line {line}: {m}"));
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            if state == State::LoopRows {
                state = State::Block;
            }
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("data_") {
            file.blocks.push(StarBlock {
                name: name.trim().to_string(),
                ..Default::default()
            });
            state = State::Block;
            continue;
        }
        let Some(block) = file.blocks.last_mut() else {
            return Err(err(line_no, format!("'{trimmed}' before any data_ block")));
        };
        if trimmed == "loop_" || trimmed.starts_with("loop_ ") || trimmed.starts_with("loop_\t") {
            block.loops.push(StarLoop::default());
            state = State::LoopHeader;
            continue;
        }
        if trimmed.starts_with('_') {
            let tokens = tokenize(trimmed).map_err(|m| err(line_no, m))?;
            let name = tokens[0][1..].to_string();
            match state {
                State::LoopHeader => {
                    if let Some(l) = block.loops.last_mut() {
                        l.columns.push(name);
                    }
                }
                _ => {
                    // A key-value pair (also ends a loop).
                    state = State::Block;
                    let value = tokens
                        .get(1)
                        .cloned()
                        .ok_or_else(|| err(line_no, format!("_{name} has no value")))?;
                    if tokens.len() > 2 {
                        return Err(err(
                            line_no,
                            format!("_{name} has {} values, expected one", tokens.len() - 1),
                        ));
                    }
                    block.pairs.push((name, value));
                }
            }
            continue;
        }
        match state {
            State::LoopHeader | State::LoopRows => {
                state = State::LoopRows;
                let tokens = tokenize(raw).map_err(|m| err(line_no, m))?;
                let Some(l) = block.loops.last_mut() else {
                    continue;
                };
                if l.columns.is_empty() {
                    return Err(err(line_no, "loop_ without columns".into()));
                }
                if tokens.len() != l.columns.len() {
                    return Err(err(
                        line_no,
                        format!(
                            "row has {} values but the loop has {} columns",
                            tokens.len(),
                            l.columns.len()
                        ),
                    ));
                }
                l.rows.push(tokens);
                l.row_lines.push(line_no);
            }
            _ => {
                return Err(err(
                    line_no,
                    format!("unexpected '{trimmed}' outside a loop"),
                ))
            }
        }
    }
    Ok(file)
}

const COORD: [&str; 3] = ["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"];
const CENTRED: [&str; 3] = [
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
];
const ORIGIN: [&str; 3] = ["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"];
const ANGLES: [&str; 3] = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"];
const CLASS_NAME: &str = "capsidClassName";
const CLASS_NUMBER: &str = "rlnClassNumber";
const SCORE: &str = "rlnAutopickFigureOfMerit";
const TOMO: &str = "rlnTomoName";
const MICROGRAPH: &str = "rlnMicrographName";

fn has_coordinates(l: &StarLoop) -> bool {
    l.column(COORD[0]).is_some() || l.column(CENTRED[0]).is_some()
}

/// The loop holding the particles: `data_particles`' coordinate loop, else the first loop with
/// coordinates.
fn particle_loop<'a>(file: &'a StarFile, path: &Path) -> Result<&'a StarLoop, IoError> {
    let preferred = file
        .block("particles")
        .and_then(|b| b.loops.iter().find(|l| has_coordinates(l)));
    preferred
        .or_else(|| file.blocks.iter().flat_map(|b| b.loops.iter()).find(|l| has_coordinates(l)))
        .ok_or_else(|| {
            let names: Vec<String> = file.blocks.iter().map(|b| format!("data_{}", b.name)).collect();
            IoError::format(
                path,
                format!(
                    "no loop with rlnCoordinateX/Y/Z or rlnCenteredCoordinateX/Y/ZAngst (blocks: {})",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            )
        })
}

/// Reads the particles of STAR text (see the module docs for the columns).
pub fn parse_particles(
    text: &str,
    path: &Path,
    opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    let file = parse_star(text, path)?;
    let l = particle_loop(&file, path)?;
    let find3 = |names: [&str; 3]| -> Option<[usize; 3]> {
        Some([
            l.column(names[0])?,
            l.column(names[1])?,
            l.column(names[2])?,
        ])
    };
    let missing = |names: [&str; 3]| -> String {
        names
            .iter()
            .filter(|n| l.column(n).is_none())
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Position columns and how to convert them to voxels.
    let (pos_cols, centred) = if l.column(COORD[0]).is_some() {
        (
            find3(COORD).ok_or_else(|| {
                IoError::format(path, format!("missing column(s) {}", missing(COORD)))
            })?,
            false,
        )
    } else {
        (
            find3(CENTRED).ok_or_else(|| {
                IoError::format(path, format!("missing column(s) {}", missing(CENTRED)))
            })?,
            true,
        )
    };
    let need_voxel = |why: &str| {
        IoError::format(
            path,
            format!("{why}: give the tomogram's voxel size in Å (--voxel-size)"),
        )
    };
    let centre_xyz = if centred {
        let v = opts.voxel_size_a.ok_or_else(|| {
            need_voxel("rlnCenteredCoordinateX/Y/ZAngst are Å from the tomogram centre (also give --tomo-shape X,Y,Z)")
        })?;
        let s = opts.tomo_shape_xyz.ok_or_else(|| {
            IoError::format(
                path,
                "rlnCenteredCoordinateX/Y/ZAngst are Å from the tomogram centre: give the tomogram shape (--tomo-shape X,Y,Z)",
            )
        })?;
        Some((v, s.map(|n| n as f64 / 2.0)))
    } else {
        None
    };
    let origin_cols = find3(ORIGIN);
    let angle_cols = if ANGLES.iter().any(|n| l.column(n).is_some()) {
        Some(find3(ANGLES).ok_or_else(|| {
            IoError::format(path, format!("missing angle column(s) {}", missing(ANGLES)))
        })?)
    } else {
        None
    };
    let name_col = l.column(CLASS_NAME);
    let number_col = l.column(CLASS_NUMBER);
    if name_col.is_none() && number_col.is_none() && opts.default_class.is_none() {
        return Err(IoError::format(
            path,
            format!("no class column ({CLASS_NAME} or {CLASS_NUMBER}): name the class of these particles (--class NAME)"),
        ));
    }
    let score_col = l.column(SCORE);
    let tomo_col = l.column(TOMO).or_else(|| l.column(MICROGRAPH));

    let mut out = Vec::with_capacity(l.rows.len());
    for (row, &line) in l.rows.iter().zip(&l.row_lines) {
        let at = format!("line {line}");
        let mut xyz = [0.0; 3];
        for k in 0..3 {
            let name = if centred { CENTRED[k] } else { COORD[k] };
            xyz[k] = parse_number(path, &at, name, &row[pos_cols[k]])?;
        }
        if let Some((voxel, centre)) = centre_xyz {
            for k in 0..3 {
                xyz[k] = xyz[k] / voxel + centre[k];
            }
        }
        if let Some(oc) = origin_cols {
            let mut shift = [0.0; 3];
            for k in 0..3 {
                shift[k] = parse_number(path, &at, ORIGIN[k], &row[oc[k]])?;
            }
            if shift.iter().any(|s| *s != 0.0) {
                let v = opts.voxel_size_a.ok_or_else(|| {
                    need_voxel(&format!("{at}: non-zero rlnOriginX/Y/ZAngst shifts"))
                })?;
                for k in 0..3 {
                    xyz[k] -= shift[k] / v;
                }
            }
        }
        let class = if let Some(c) = name_col {
            row[c].clone()
        } else if let Some(c) = number_col {
            super::class_from_number(path, &at, CLASS_NUMBER, &row[c], opts)?
        } else {
            opts.default_class.clone().unwrap_or_default()
        };
        let angles = match angle_cols {
            Some(ac) => super::angles_from_fields(
                path,
                &at,
                ANGLES,
                [
                    Some(row[ac[0]].as_str()),
                    Some(row[ac[1]].as_str()),
                    Some(row[ac[2]].as_str()),
                ],
                EulerConvention::RelionZyz,
            )?,
            None => None,
        };
        let score = score_col
            .map(|c| parse_number(path, &at, SCORE, &row[c]))
            .transpose()?;
        let tomogram = tomo_col.map(|c| row[c].clone());
        let p = Particle {
            class,
            x: xyz[0],
            y: xyz[1],
            z: xyz[2],
            angles,
            score,
            tomogram,
        };
        out.push((at, p));
    }
    Ok(out)
}

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

/// The STAR text of `particles` (see the module docs).
pub fn render(particles: &[Particle], path: &Path, opts: &WriteOptions) -> Result<String, IoError> {
    let with_tomo = all_or_none(path, particles, "a tomogram name", |p| p.tomogram.is_some())?;
    let with_angles = all_or_none(path, particles, "angles", |p| p.angles.is_some())?;
    let with_score = all_or_none(path, particles, "a score", |p| p.score.is_some())?;
    let numbers: Vec<Option<i64>> = particles
        .iter()
        .map(|p| super::class_number(&p.class, opts.classes.as_ref()))
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
    let centred = if opts.star_centered_angst {
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
        Some((v, s.map(|n| n as f64 / 2.0)))
    } else {
        None
    };

    let mut columns: Vec<&str> = Vec::new();
    if with_tomo {
        columns.push(TOMO);
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
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(particles.len());
    for (p, n) in particles.iter().zip(&numbers) {
        let mut r = Vec::with_capacity(columns.len());
        if with_tomo {
            r.push(quote(p.tomogram.as_deref().unwrap_or("")));
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
        rows.push(r);
    }
    let mut widths: Vec<usize> = vec![0; columns.len()];
    for r in &rows {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.len());
        }
    }
    let mut s = format!(
        "# Written by capsid {}\n\ndata_particles\n\nloop_\n",
        capsid_core::VERSION
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_handles_quotes_and_comments() {
        assert_eq!(
            tokenize("a 'b c' \"\" d # e").unwrap(),
            vec!["a", "b c", "", "d"]
        );
        assert_eq!(tokenize("_rlnX #1").unwrap(), vec!["_rlnX"]);
        assert_eq!(tokenize("it's fine").unwrap(), vec!["it's", "fine"]);
        assert!(tokenize("'open").is_err());
    }

    #[test]
    fn parses_pairs_loops_and_empty_loops() {
        let text = "# c\ndata_general\n_rlnA 1.5\n_rlnB 'x y'\n\ndata_p\nloop_\n_rlnX #1\n_rlnY #2\n1 2\n3 4\n\ndata_e\nloop_\n_rlnX\n";
        let f = parse_star(text, Path::new("t.star")).unwrap();
        assert_eq!(f.blocks.len(), 3);
        assert_eq!(
            f.blocks[0].pairs,
            vec![("rlnA".into(), "1.5".into()), ("rlnB".into(), "x y".into())]
        );
        let l = &f.blocks[1].loops[0];
        assert_eq!(l.columns, vec!["rlnX", "rlnY"]);
        assert_eq!(l.rows, vec![vec!["1", "2"], vec!["3", "4"]]);
        assert_eq!(l.row_lines, vec![10, 11]);
        assert!(f.blocks[2].loops[0].rows.is_empty());
    }

    #[test]
    fn ragged_row_names_its_line() {
        let e = parse_star("data_\nloop_\n_a\n_b\n1 2\n3\n", Path::new("t.star"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.star: line 6: row has 1 values but the loop has 2 columns"
        );
    }

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
