//! Particle lists: read and write [`Particle`]s in the formats users bring.
//!
//! | [`Format`] | extension | coordinates | angles | class |
//! |---|---|---|---|---|
//! | [`Format::Star`] (RELION) | `.star` | `rlnCoordinateX/Y/Z` voxels, or RELION 5 `rlnCenteredCoordinateX/Y/ZAngst` | `rlnAngleRot/Tilt/Psi` ([`EulerConvention::RelionZyz`]) | `capsidClassName`, else `rlnClassNumber` via the class table |
//! | [`Format::Csv`] | `.csv` | `x,y,z` voxels | `phi,theta,psi` (ZXZ) | `class` |
//! | [`Format::ShrecTxt`] | `.txt` | `x y z` voxels | `phi theta psi` (ZXZ) | first field (PDB id or name) |
//! | [`Format::DeepFinderXml`] | `.xml` | `x y z` voxels | `phi the psi` (ZXZ) | `class_label` via the class table |
//! | [`Format::CopickJson`] | `.json` | `location` Å (÷ voxel size) | `transformation_` 4×4 | `pickable_object_name` |
//!
//! Reading ([`read_particles`]) checks every record and fails with one line naming the file and the
//! line (or record) at fault: missing columns, unparsable numbers, unknown class names (when a class
//! table is given), coordinates outside the tomogram (when its shape is given) and an empty list
//! (unless [`ReadOptions::allow_empty`]). Writing ([`write_particles`]) is atomic: a failure leaves
//! no file behind.
//!
//! Numeric classes (RELION `rlnClassNumber`, DeepFinder `class_label`) are labels of the class
//! table; without a table, reading fails unless [`ReadOptions::class_numbers_as_names`] keeps the
//! number as the class name.

pub mod copick;
pub mod csv_list;
pub mod deepfinder;
pub mod shrec;
pub mod star;

use crate::error::IoError;
use capsid_core::{ClassTable, EulerAngles, EulerConvention, Particle};
use std::path::Path;

/// A particle-list file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// RELION STAR (`.star`).
    Star,
    /// Comma-separated values with a header `class,x,y,z[,score][,phi,theta,psi][,tomogram]` (`.csv`).
    Csv,
    /// SHREC `particle_locations.txt`: `class x y z [phi theta psi]` per line (`.txt`).
    ShrecTxt,
    /// DeepFinder object list XML (`.xml`).
    DeepFinderXml,
    /// copick picks JSON, one object (class) per file (`.json`).
    CopickJson,
}

impl Format {
    /// All formats, in documentation order.
    pub const ALL: [Format; 5] = [
        Format::Star,
        Format::Csv,
        Format::ShrecTxt,
        Format::DeepFinderXml,
        Format::CopickJson,
    ];

    /// The format a file name's extension implies (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "star" => Some(Format::Star),
            "csv" => Some(Format::Csv),
            "txt" => Some(Format::ShrecTxt),
            "xml" => Some(Format::DeepFinderXml),
            "json" => Some(Format::CopickJson),
            _ => None,
        }
    }

    /// The format called `name`: `star`, `csv`, `shrec` (or `txt`), `deepfinder` (or `xml`),
    /// `copick` (or `json`); case-insensitive.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "star" | "relion" => Some(Format::Star),
            "csv" => Some(Format::Csv),
            "shrec" | "txt" => Some(Format::ShrecTxt),
            "deepfinder" | "xml" => Some(Format::DeepFinderXml),
            "copick" | "json" => Some(Format::CopickJson),
            _ => None,
        }
    }

    /// The short name [`Format::from_name`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            Format::Star => "star",
            Format::Csv => "csv",
            Format::ShrecTxt => "shrec",
            Format::DeepFinderXml => "deepfinder",
            Format::CopickJson => "copick",
        }
    }

    /// `given` if set, else the format of `path`'s extension; an error naming the file otherwise.
    pub fn resolve(path: &Path, given: Option<Format>) -> Result<Format, IoError> {
        given.or_else(|| Format::from_path(path)).ok_or_else(|| {
            IoError::format(
                path,
                "unknown particle-list format: use .star, .csv, .txt (SHREC), .xml (DeepFinder) or \
                 .json (copick), or name the format",
            )
        })
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::from_name(s).ok_or_else(|| {
            format!("unknown format '{s}' (known: star, csv, shrec, deepfinder, copick)")
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What reading may need beyond the file itself. `Default` reads by extension with no class table.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Format override; `None` detects it from the extension.
    pub format: Option<Format>,
    /// Voxel size of the tomogram in Å: converts Å coordinates (copick, RELION 5, RELION origin
    /// shifts) to voxels. copick files carry their own `voxel_spacing`, used when this is `None`.
    pub voxel_size_a: Option<f64>,
    /// Tomogram shape `[x, y, z]` in voxels: needed for RELION 5 centred coordinates, and when given
    /// every particle must lie inside (`-0.5 <= x < nx - 0.5`, the same for y and z).
    pub tomo_shape_xyz: Option<[usize; 3]>,
    /// Class table: maps numeric classes to names, and every class name read must be in it.
    pub classes: Option<ClassTable>,
    /// Class given to particles of files that name none (a STAR file without class column).
    pub default_class: Option<String>,
    /// Tomogram given to particles whose file names none (SHREC, a STAR file without `rlnTomoName`).
    pub default_tomogram: Option<String>,
    /// Without a class table, keep numeric classes as names (`"3"`) instead of failing.
    pub class_numbers_as_names: bool,
    /// Accept a list without particles (otherwise an error).
    pub allow_empty: bool,
}

/// Which RELION generation a written STAR file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StarStyle {
    /// One `data_particles` block with `rlnCoordinateX/Y/Z` in voxels and no optics: RELION 3.0,
    /// Dynamo and Warp coordinate tables.
    Relion30,
    /// `data_optics` (one group: `rlnImagePixelSize` = the voxel size, `rlnVoltage`,
    /// `rlnSphericalAberration`, `rlnAmplitudeContrast`) and `data_particles` with
    /// `rlnOpticsGroup`, coordinates in voxels: what RELION 3.1 and 4 require
    /// (`relion_star_handler` refuses a particle file without optics). Without a voxel size the
    /// file is written as [`StarStyle::Relion30`].
    #[default]
    Relion31,
    /// RELION 5 tomography: `data_optics` with `rlnTomoTiltSeriesPixelSize` (what RELION 5's
    /// `ParticleSet` requires), `rlnVoltage`, `rlnSphericalAberration`, `rlnAmplitudeContrast`;
    /// `data_particles` with `rlnTomoName`, `rlnCenteredCoordinateX/Y/ZAngst` (Å from the
    /// tomogram centre) and `rlnOpticsGroup`. Needs the voxel size, the tomogram shape and a
    /// tomogram name on every particle.
    Relion5,
    /// Warp (WarpTools `ts_export_particles --input_star`, whose particles M refines): one
    /// unnamed `data_` block with `rlnCoordinateX/Y/Z` in voxels (0 at the centre of the first
    /// voxel, as capsid counts), the angles, and the tomogram as `rlnMicrographName`
    /// `NAME.tomostar` (the tilt series' Warp settings file), no optics; Warp takes the voxel
    /// size from its `--coords_angpix`.
    Warp,
}

impl std::str::FromStr for StarStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['.', '-', '_'], "").as_str() {
            "relion30" | "relion3" | "plain" => Ok(StarStyle::Relion30),
            "relion31" | "relion4" => Ok(StarStyle::Relion31),
            "relion5" => Ok(StarStyle::Relion5),
            "warp" | "warptools" | "m" => Ok(StarStyle::Warp),
            _ => Err(format!(
                "unknown STAR style '{s}': relion3.0, relion3.1, relion5 or warp"
            )),
        }
    }
}

/// The acquisition of the optics group written into RELION 3.1 and 5 STAR files. RELION needs
/// the values to be present; picking does not use them. Defaults: 300 kV, Cs 2.7 mm, amplitude
/// contrast 0.1 (RELION's), the tilt series' pixel size equal to the tomogram's voxel size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optics {
    /// Acceleration voltage, kV.
    pub voltage_kv: f64,
    /// Spherical aberration, mm.
    pub cs_mm: f64,
    /// Amplitude contrast, a fraction.
    pub amplitude_contrast: f64,
    /// Pixel size of the (unbinned) tilt series in Å (RELION 5's `rlnTomoTiltSeriesPixelSize`);
    /// `None` = the tomogram's voxel size.
    pub tilt_series_pixel_size_a: Option<f64>,
}

impl Default for Optics {
    fn default() -> Self {
        Self {
            voltage_kv: 300.0,
            cs_mm: 2.7,
            amplitude_contrast: 0.1,
            tilt_series_pixel_size_a: None,
        }
    }
}

/// What writing may need beyond the particles. `Default` writes by extension.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Format override; `None` detects it from the extension.
    pub format: Option<Format>,
    /// Voxel size in Å: needed for copick (Å locations) and RELION 5 centred coordinates.
    pub voxel_size_a: Option<f64>,
    /// Tomogram shape `[x, y, z]` in voxels: needed for RELION 5 centred coordinates.
    pub tomo_shape_xyz: Option<[usize; 3]>,
    /// Class table: gives `rlnClassNumber` / DeepFinder `class_label`.
    pub classes: Option<ClassTable>,
    /// STAR: which RELION generation the file is for (see [`StarStyle`]).
    pub star: StarStyle,
    /// STAR: the optics group written with [`StarStyle::Relion31`] and [`StarStyle::Relion5`].
    pub optics: Optics,
    /// copick `user_id` (default `capsid`).
    pub copick_user_id: Option<String>,
    /// copick `session_id` (default `0`, copick's mark of a tool-generated pick).
    pub copick_session_id: Option<String>,
}

/// Reads a particle list, checks it (see the module docs) and returns its particles in file order.
pub fn read_particles(path: &Path, opts: &ReadOptions) -> Result<Vec<Particle>, IoError> {
    let format = Format::resolve(path, opts.format)?;
    if let Some(v) = opts.voxel_size_a {
        if !(v > 0.0 && v.is_finite()) {
            return Err(IoError::format(
                path,
                format!("voxel size must be positive, got {v} Å"),
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| IoError::io(path, e))?;
    let located = parse_particles(&text, path, format, opts)?;
    check_particles(path, located, opts)
}

/// Parses particle-list text of `format` without the checks of [`read_particles`]; `path` only
/// names the source in errors.
pub fn parse_particles(
    text: &str,
    path: &Path,
    format: Format,
    opts: &ReadOptions,
) -> Result<Vec<(String, Particle)>, IoError> {
    match format {
        Format::Star => star::parse_particles(text, path, opts),
        Format::Csv => csv_list::parse(text, path, opts),
        Format::ShrecTxt => shrec::parse(text, path, opts),
        Format::DeepFinderXml => deepfinder::parse(text, path, opts),
        Format::CopickJson => copick::parse(text, path, opts),
    }
}

/// Applies the checks of [`read_particles`] to parsed particles: default tomogram, empty list,
/// finite coordinates, class names in the table, coordinates inside the tomogram.
pub fn check_particles(
    path: &Path,
    located: Vec<(String, Particle)>,
    opts: &ReadOptions,
) -> Result<Vec<Particle>, IoError> {
    if located.is_empty() && !opts.allow_empty {
        return Err(IoError::format(path, "the particle list is empty"));
    }
    let mut out = Vec::with_capacity(located.len());
    for (at, mut p) in located {
        if p.tomogram.is_none() {
            p.tomogram = opts.default_tomogram.clone();
        }
        for (axis, v) in [("x", p.x), ("y", p.y), ("z", p.z)] {
            if !v.is_finite() {
                return Err(IoError::format(
                    path,
                    format!("{at}: coordinate {axis} is {v}"),
                ));
            }
        }
        if p.class.is_empty() {
            return Err(IoError::format(path, format!("{at}: empty class name")));
        }
        if let Some(table) = &opts.classes {
            if table.get(&p.class).is_err() {
                return Err(IoError::format(
                    path,
                    format!(
                        "{at}: unknown class '{}' (class table has: {})",
                        p.class,
                        table.names().join(", ")
                    ),
                ));
            }
        }
        if let Some(shape) = opts.tomo_shape_xyz {
            check_inside(path, &at, &p, shape)?;
        }
        out.push(p);
    }
    Ok(out)
}

/// Errors unless the particle lies in a tomogram of `shape_xyz` voxels: `-0.5 <= c < n - 0.5` on
/// each axis (voxel centres are at integer coordinates 0..n-1).
fn check_inside(path: &Path, at: &str, p: &Particle, shape_xyz: [usize; 3]) -> Result<(), IoError> {
    for ((axis, v), n) in [("x", p.x), ("y", p.y), ("z", p.z)]
        .into_iter()
        .zip(shape_xyz)
    {
        if v < -0.5 || v >= n as f64 - 0.5 {
            return Err(IoError::format(
                path,
                format!(
                    "{at}: particle at ({}, {}, {}) voxels lies outside the tomogram ({} x {} x {}): {axis} = {v}",
                    p.x, p.y, p.z, shape_xyz[0], shape_xyz[1], shape_xyz[2]
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `particles` to `path` atomically (temporary file + rename) in the format of `opts` or of
/// the extension.
pub fn write_particles(
    path: &Path,
    particles: &[Particle],
    opts: &WriteOptions,
) -> Result<(), IoError> {
    let format = Format::resolve(path, opts.format)?;
    let text = render_particles(particles, path, format, opts)?;
    capsid_core::write_atomically(path, |w| std::io::Write::write_all(w, text.as_bytes())).map_err(
        |e| match e {
            capsid_core::CoreError::Io { path, source } => IoError::Io { path, source },
            other => IoError::format(path, other.to_string()),
        },
    )
}

/// The text of `particles` in `format`; `path` only names the destination in errors.
pub fn render_particles(
    particles: &[Particle],
    path: &Path,
    format: Format,
    opts: &WriteOptions,
) -> Result<String, IoError> {
    if let Some(v) = opts.voxel_size_a {
        if !(v > 0.0 && v.is_finite()) {
            return Err(IoError::format(
                path,
                format!("voxel size must be positive, got {v} Å"),
            ));
        }
    }
    for (i, p) in particles.iter().enumerate() {
        if p.class.is_empty() || p.class.chars().any(char::is_whitespace) {
            return Err(IoError::format(
                path,
                format!(
                    "particle {}: class name '{}' must be non-empty without spaces",
                    i + 1,
                    p.class
                ),
            ));
        }
    }
    match format {
        Format::Star => star::render(particles, path, opts),
        Format::Csv => csv_list::render(particles, path, opts),
        Format::ShrecTxt => shrec::render(particles, path, opts),
        Format::DeepFinderXml => deepfinder::render(particles, path, opts),
        Format::CopickJson => copick::render(particles, path, opts),
    }
}

/// Parses a number field; the error names the record, the field and the text.
pub(crate) fn parse_number(path: &Path, at: &str, field: &str, text: &str) -> Result<f64, IoError> {
    let t = text.trim();
    t.parse::<f64>()
        .map_err(|_| IoError::format(path, format!("{at}: {field}: '{t}' is not a number")))
}

/// The class name of a numeric class `text` (a class-table label).
pub(crate) fn class_from_number(
    path: &Path,
    at: &str,
    field: &str,
    text: &str,
    opts: &ReadOptions,
) -> Result<String, IoError> {
    let t = text.trim();
    let n: i64 = t
        .parse::<i64>()
        .ok()
        .or_else(|| {
            t.parse::<f64>()
                .ok()
                .filter(|v| v.fract() == 0.0 && v.abs() < 1e15)
                .map(|v| v as i64)
        })
        .ok_or_else(|| {
            IoError::format(path, format!("{at}: {field}: '{t}' is not a class number"))
        })?;
    match &opts.classes {
        Some(table) => {
            let def = u8::try_from(n).ok().and_then(|l| table.by_label(l));
            def.map(|c| c.name.clone()).ok_or_else(|| {
                let known: Vec<String> = table
                    .classes
                    .iter()
                    .map(|c| format!("{}={}", c.label, c.name))
                    .collect();
                IoError::format(
                    path,
                    format!(
                        "{at}: {field} {n} is not a label of the class table ({})",
                        known.join(", ")
                    ),
                )
            })
        }
        None if opts.class_numbers_as_names => Ok(n.to_string()),
        None => Err(IoError::format(
            path,
            format!("{at}: {field} {n} is a number: give a class table (--classes) to name it"),
        )),
    }
}

/// The class number to write for `class`: its table label, or the name itself when it is a number.
pub(crate) fn class_number(class: &str, classes: Option<&ClassTable>) -> Option<i64> {
    match classes {
        Some(t) => t.get(class).ok().map(|c| i64::from(c.label)),
        None => class.parse::<i64>().ok(),
    }
}

/// Three angle fields as Euler angles of `convention`: all three present, or none.
pub(crate) fn angles_from_fields(
    path: &Path,
    at: &str,
    names: [&str; 3],
    fields: [Option<&str>; 3],
    convention: EulerConvention,
) -> Result<Option<EulerAngles>, IoError> {
    let present: Vec<bool> = fields
        .iter()
        .map(|f| f.is_some_and(|t| !t.trim().is_empty()))
        .collect();
    if present.iter().all(|p| !p) {
        return Ok(None);
    }
    if !present.iter().all(|p| *p) {
        let missing: Vec<&str> = names
            .iter()
            .zip(&present)
            .filter(|(_, p)| !**p)
            .map(|(n, _)| *n)
            .collect();
        return Err(IoError::format(
            path,
            format!(
                "{at}: angles need all of {}: {} missing",
                names.join(", "),
                missing.join(", ")
            ),
        ));
    }
    let mut a = [0.0; 3];
    for i in 0..3 {
        a[i] = parse_number(path, at, names[i], fields[i].unwrap_or(""))?;
    }
    Ok(Some(EulerAngles {
        convention,
        angles_deg: a,
    }))
}

/// Shortest text that parses back to exactly `v` (Rust's `Display` for `f64`).
pub(crate) fn num(v: f64) -> String {
    format!("{v}")
}

/// 1-based line number of byte offset `pos` in `text`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_extension_and_name() {
        assert_eq!(Format::from_path(Path::new("a/b.STAR")), Some(Format::Star));
        assert_eq!(
            Format::from_path(Path::new("p.txt")),
            Some(Format::ShrecTxt)
        );
        assert_eq!(Format::from_path(Path::new("p.mrc")), None);
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()), Some(f));
        }
        let e = Format::resolve(Path::new("p.dat"), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.dat: unknown particle-list format"), "{e}");
        assert_eq!(
            Format::resolve(Path::new("p.dat"), Some(Format::Csv)).unwrap(),
            Format::Csv
        );
    }

    #[test]
    fn inside_check_uses_voxel_centres() {
        let p = |x| Particle::new("a", x, 0.0, 0.0);
        assert!(check_inside(Path::new("f"), "line 1", &p(-0.5), [10, 1, 1]).is_ok());
        assert!(check_inside(Path::new("f"), "line 1", &p(9.49), [10, 1, 1]).is_ok());
        let e = check_inside(Path::new("f"), "line 1", &p(9.5), [10, 1, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("outside"), "{e}");
    }

    #[test]
    fn numeric_classes_need_a_table() {
        let o = ReadOptions::default();
        let e = class_from_number(Path::new("f"), "line 2", "class_label", "3", &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--classes"), "{e}");
        let o = ReadOptions {
            class_numbers_as_names: true,
            ..Default::default()
        };
        assert_eq!(
            class_from_number(Path::new("f"), "l", "c", "3.0", &o).unwrap(),
            "3"
        );
    }
}
