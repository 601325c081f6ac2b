//! The particle library: built-in classes made of pseudo-atoms, and classes from atomic models
//! (PDB/mmCIF) or density maps (MRC), all turned into [`ClassModel`] templates at the simulation's
//! voxel size.
//!
//! Built-in classes (sizes are the longest extent of the rendered envelope):
//!
//! | name | shape | size |
//! |---|---|---|
//! | `ribosome` | asymmetric two-lobe particle: a large and a small subunit, two stalks | ≈ 25 nm |
//! | `proteasome` | barrel of four stacked 7-fold rings | ≈ 15 × 11 nm |
//! | `tric` | double 8-fold ring of elongated subunits (close to `proteasome` on purpose) | ≈ 15 × 15 nm |
//! | `rubisco` | cube of 8 large subunits capped by 8 small ones (L8S8) | ≈ 11 nm |
//! | `filament` | fragment of a two-start helical filament, 9 subunits | ≈ 26 × 7 nm |
//! | `globule` | small asymmetric globule (3GL1-like) | ≈ 5 nm |

use crate::density::{box_side_for, centre_blobs, render_blobs, trilinear, Blob};
use crate::error::SimError;
use capsid_core::Rotation;
use ndarray::Array3;
use std::path::Path;

/// Names of the built-in classes, in library order.
pub const BUILTIN_CLASSES: [&str; 6] = [
    "ribosome",
    "proteasome",
    "tric",
    "rubisco",
    "filament",
    "globule",
];

/// Spacing (Å) of the pseudo-atoms filling the built-in shapes, and their own σ (Å).
const PSEUDO_SPACING_A: f64 = 8.0;
const PSEUDO_SIGMA_A: f64 = 4.0;

/// One particle class ready to place: a density template and the threshold that defines its mask.
#[derive(Debug, Clone)]
pub struct ClassModel {
    /// snake_case class name (as in the class table and particle files).
    pub name: String,
    /// Where it came from: `builtin:ribosome`, `model:path`, `map:path`.
    pub source: String,
    /// Template density `[z, y, x]`, a cube of odd side; the particle centre is voxel `(n-1)/2`.
    /// Units: protein fill (1.0 = voxel full of protein); maps are scaled to a maximum of 1.
    pub density: Array3<f32>,
    /// Voxel size of the template in Å (= the tomogram's).
    pub voxel_size_a: f64,
    /// Density at or above which a voxel belongs to the particle's mask.
    pub mask_threshold: f32,
    /// An unlabelled class (see [`crate::ClassSpec::decoy`]).
    pub decoy: bool,
}

impl ClassModel {
    /// Wraps a template; `mask_fraction` of its maximum becomes the mask threshold.
    pub fn new(
        name: &str,
        source: String,
        density: Array3<f32>,
        voxel_size_a: f64,
        mask_fraction: f64,
    ) -> Self {
        let max = density.iter().cloned().fold(0.0f32, f32::max);
        Self {
            name: name.into(),
            source,
            density,
            voxel_size_a,
            mask_threshold: max * mask_fraction as f32,
            decoy: false,
        }
    }

    /// The same class marked unlabelled (`decoy = true`) or labelled.
    pub fn with_decoy(mut self, decoy: bool) -> Self {
        self.decoy = decoy;
        self
    }

    /// Side of the template cube in voxels.
    pub fn side(&self) -> usize {
        self.density.dim().0
    }

    /// Half the side: the template centre index.
    pub fn half(&self) -> usize {
        (self.side() - 1) / 2
    }

    /// Number of voxels in the (unrotated) mask.
    pub fn mask_voxels(&self) -> usize {
        self.density
            .iter()
            .filter(|&&v| v >= self.mask_threshold)
            .count()
    }

    /// Radius in Å of the sphere about the centre that holds the whole mask (the largest distance
    /// of a mask voxel centre from the template centre, plus half a voxel).
    pub fn radius_a(&self) -> f64 {
        let c = self.half() as f64;
        let mut r2 = 0.0f64;
        for ((z, y, x), &v) in self.density.indexed_iter() {
            if v >= self.mask_threshold {
                let d = (x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2);
                r2 = r2.max(d);
            }
        }
        (r2.sqrt() + 0.5) * self.voxel_size_a
    }

    /// The template turned by `rot` (template → tomogram), sampled trilinearly on the same grid:
    /// voxel `p` takes the template value at `Rᵀ (p - c) + c`.
    pub fn rotated(&self, rot: &Rotation) -> Array3<f32> {
        let n = self.side();
        let c = self.half() as f64;
        let rt = rot.transpose();
        Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let q = rt.apply([x as f64 - c, y as f64 - c, z as f64 - c]);
            trilinear(&self.density, q[0] + c, q[1] + c, q[2] + c)
        })
    }
}

/// Pseudo-atoms on a grid of `PSEUDO_SPACING_A` filling an ellipsoid with semi-axes `semi_a`
/// (Å, along its own x, y, z), turned by `rot` and centred at `centre_a`.
fn fill_ellipsoid(centre_a: [f64; 3], semi_a: [f64; 3], rot: &Rotation, out: &mut Vec<Blob>) {
    let s = PSEUDO_SPACING_A;
    let reach = semi_a.map(|a| (a / s).floor() as i64);
    for i in -reach[0]..=reach[0] {
        for j in -reach[1]..=reach[1] {
            for k in -reach[2]..=reach[2] {
                let p = [i as f64 * s, j as f64 * s, k as f64 * s];
                let r = (p[0] / semi_a[0]).powi(2)
                    + (p[1] / semi_a[1]).powi(2)
                    + (p[2] / semi_a[2]).powi(2);
                if r <= 1.0 {
                    let q = rot.apply(p);
                    out.push(Blob {
                        pos_a: [q[0] + centre_a[0], q[1] + centre_a[1], q[2] + centre_a[2]],
                        sigma_a: PSEUDO_SIGMA_A,
                        weight_a3: s * s * s,
                    });
                }
            }
        }
    }
}

/// Subunits of a ring: `n` ellipsoids with semi-axes `[radial, tangential, z]` at `radius_a` from
/// the z axis, at height `z_a`, the first at angle `phase_deg`.
fn ring(n: usize, radius_a: f64, z_a: f64, semi_a: [f64; 3], phase_deg: f64, out: &mut Vec<Blob>) {
    for k in 0..n {
        let a = (phase_deg + 360.0 * k as f64 / n as f64).to_radians();
        let rot = Rotation::rz(a);
        fill_ellipsoid(
            [radius_a * a.cos(), radius_a * a.sin(), z_a],
            semi_a,
            &rot,
            out,
        );
    }
}

/// The pseudo-atoms of a built-in class (centred on their weighted centre), or `None` for an
/// unknown name.
pub fn builtin_blobs(name: &str) -> Option<Vec<Blob>> {
    let mut b = Vec::new();
    let id = Rotation::identity();
    match name {
        "ribosome" => {
            // Large subunit, small subunit on one side, L1 stalk and P stalk on others.
            // Large subunit: a squat body with a central protuberance off-axis.
            fill_ellipsoid([0.0, 0.0, -25.0], [100.0, 88.0, 72.0], &id, &mut b);
            fill_ellipsoid([-15.0, -40.0, 35.0], [36.0, 30.0, 34.0], &id, &mut b);
            // Small subunit, elongated and tilted, offset from the large one's axis.
            fill_ellipsoid(
                [30.0, 25.0, 75.0],
                [95.0, 55.0, 38.0],
                &Rotation::rz(0.5).mul(&Rotation::rx(0.25)),
                &mut b,
            );
            // L1 stalk and P stalk on opposite, unequal sides.
            fill_ellipsoid(
                [-110.0, 40.0, 5.0],
                [38.0, 20.0, 20.0],
                &Rotation::ry(0.5),
                &mut b,
            );
            fill_ellipsoid(
                [80.0, -75.0, -10.0],
                [30.0, 15.0, 15.0],
                &Rotation::rz(-0.7),
                &mut b,
            );
        }
        "proteasome" => {
            for (i, z) in [-57.0, -19.0, 19.0, 57.0].into_iter().enumerate() {
                ring(
                    7,
                    36.0,
                    z,
                    [18.0, 15.0, 17.0],
                    25.7 * (i % 2) as f64,
                    &mut b,
                );
            }
        }
        "tric" => {
            for z in [-36.0, 36.0] {
                ring(8, 52.0, z, [20.0, 17.0, 33.0], 11.25, &mut b);
            }
        }
        "rubisco" => {
            for sx in [-1.0, 1.0] {
                for sy in [-1.0, 1.0] {
                    for sz in [-1.0, 1.0] {
                        fill_ellipsoid(
                            [22.0 * sx, 22.0 * sy, 19.0 * sz],
                            [20.0, 20.0, 18.0],
                            &id,
                            &mut b,
                        );
                    }
                    for z in [-44.0, 44.0] {
                        fill_ellipsoid([17.0 * sx, 17.0 * sy, z], [13.0, 13.0, 9.0], &id, &mut b);
                    }
                }
            }
        }
        "filament" => {
            // Two-start helix: rise 27.5 Å, twist 166.7° per subunit (actin-like).
            for k in 0..9 {
                let a = (166.7 * k as f64).to_radians();
                let z = 27.5 * (k as f64 - 4.0);
                fill_ellipsoid(
                    [18.0 * a.cos(), 18.0 * a.sin(), z],
                    [26.0, 20.0, 19.0],
                    &Rotation::rz(a),
                    &mut b,
                );
            }
        }
        "globule" => {
            fill_ellipsoid(
                [0.0, 0.0, 0.0],
                [22.0, 17.0, 14.0],
                &Rotation::ry(0.3),
                &mut b,
            );
            fill_ellipsoid([14.0, 10.0, 6.0], [11.0, 10.0, 9.0], &id, &mut b);
        }
        _ => return None,
    }
    centre_blobs(&mut b);
    Some(b)
}

/// A look-alike of `blobs`: every spherical shell of thickness `shell_a` (Å) about the centre
/// (`floor(|p| / shell_a)`) is turned about the centre by its own uniformly random rotation drawn
/// from `seed`. Each blob keeps its distance from the centre and its weight, so the total mass,
/// the bounding radius and the radial density profile are the original's, while the shape (how
/// the mass is arranged over directions) is not. Deterministic in `seed`.
pub fn scrambled_blobs(blobs: &[Blob], shell_a: f64, seed: u64) -> Vec<Blob> {
    use rand::SeedableRng;
    let shell_a = shell_a.max(1e-6);
    let radius = |p: [f64; 3]| (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
    let max_r = blobs.iter().map(|b| radius(b.pos_a)).fold(0.0, f64::max);
    let shells = (max_r / shell_a).floor() as usize + 1;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let turns: Vec<Rotation> = (0..shells)
        .map(|_| Rotation::random_uniform(&mut rng))
        .collect();
    blobs
        .iter()
        .map(|b| {
            let k = ((radius(b.pos_a) / shell_a).floor() as usize).min(shells - 1);
            Blob {
                pos_a: turns[k].apply(b.pos_a),
                ..*b
            }
        })
        .collect()
}

/// The pseudo-atoms (built-in) or atoms (model) of a class spec, centred; `None` for a map or
/// scrambled class.
pub fn spec_blobs(spec: &crate::ClassSpec) -> Option<Result<Vec<Blob>, SimError>> {
    if let Some(b) = &spec.builtin {
        Some(builtin_blobs(b).ok_or_else(|| {
            SimError::Config(format!(
                "unknown built-in class '{b}' (known: {})",
                BUILTIN_CLASSES.join(", ")
            ))
        }))
    } else {
        spec.model.as_ref().map(|p| model_blobs(p))
    }
}

/// A class rendered from blobs at `voxel_size_a` and `resolution_a`.
pub fn blob_class(
    class_name: &str,
    source: String,
    blobs: &[Blob],
    voxel_size_a: f64,
    resolution_a: f64,
    mask_fraction: f64,
) -> ClassModel {
    let n = box_side_for(blobs, voxel_size_a, resolution_a);
    let density = render_blobs(blobs, n, voxel_size_a, resolution_a);
    ClassModel::new(class_name, source, density, voxel_size_a, mask_fraction)
}

/// A built-in class rendered at `voxel_size_a` and `resolution_a`.
pub fn builtin_class(
    class_name: &str,
    builtin: &str,
    voxel_size_a: f64,
    resolution_a: f64,
    mask_fraction: f64,
) -> Result<ClassModel, SimError> {
    let blobs = builtin_blobs(builtin).ok_or_else(|| {
        SimError::Config(format!(
            "unknown built-in class '{builtin}' (known: {})",
            BUILTIN_CLASSES.join(", ")
        ))
    })?;
    let n = box_side_for(&blobs, voxel_size_a, resolution_a);
    let density = render_blobs(&blobs, n, voxel_size_a, resolution_a);
    Ok(ClassModel::new(
        class_name,
        format!("builtin:{builtin}"),
        density,
        voxel_size_a,
        mask_fraction,
    ))
}

/// Volume of packed protein (Å³) that one atom of atomic number `z` stands for: `z · 2.6 Å³`
/// (protein: ≈ 17 Å³ per heavy atom including its hydrogens, mean Z ≈ 6.6), so heavier elements
/// (P in RNA, S, metals) scatter more.
pub fn atom_weight_a3(atomic_number: usize) -> f64 {
    atomic_number as f64 * 2.6
}

/// Reads the atoms of a PDB or mmCIF file (first model, hydrogens dropped) as point blobs
/// weighted by element (see [`atom_weight_a3`]), centred on their weighted centre.
pub fn model_blobs(path: &Path) -> Result<Vec<Blob>, SimError> {
    let err = |message: String| SimError::Model {
        path: path.to_path_buf(),
        message,
    };
    let path_str = path
        .to_str()
        .ok_or_else(|| err("path is not valid UTF-8".into()))?;
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let mut opts = pdbtbx::ReadOptions::new();
    opts.set_level(pdbtbx::StrictnessLevel::Loose)
        .set_only_first_model(true)
        .set_discard_hydrogens(true)
        .guess_format(path_str);
    let is_pdb = path_str.to_ascii_lowercase().ends_with(".pdb")
        || path_str.to_ascii_lowercase().ends_with(".ent");
    // A panic inside the parser crate on a malformed file becomes a one-line error.
    let parsed = capsid_core::guard::catch_third_party_panic(|| opts.read(path_str));
    let mut blobs: Vec<Blob> = match parsed {
        Ok(Ok((pdb, _warnings))) => pdb
            .atoms()
            .filter_map(|a| {
                let z = a.element()?.atomic_number();
                let (x, y, zz) = a.pos();
                Some(Blob {
                    pos_a: [x, y, zz],
                    sigma_a: 0.0,
                    weight_a3: atom_weight_a3(z) * a.occupancy().clamp(0.01, 1.0),
                })
            })
            .collect(),
        // pdbtbx refuses some legal-enough PDB files (e.g. odd header records); the coordinate
        // records alone are fixed-column and simple, so read those directly.
        Ok(Err(_)) | Err(_) if is_pdb => {
            let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            pdb_atom_records(&text)
        }
        Err(m) => {
            return Err(err(format!(
                "not a readable PDB/mmCIF file (the parser failed: {m})"
            )))
        }
        Ok(Err(errors)) => {
            let first = errors.first().map(|e| format!("{e}")).unwrap_or_default();
            let first = first.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(err(format!("not a readable PDB/mmCIF file: {first}")));
        }
    };
    if blobs.is_empty() {
        return Err(err("no atoms with a known element".into()));
    }
    centre_blobs(&mut blobs);
    Ok(blobs)
}

/// Point blobs from the `ATOM`/`HETATM` records of the first model of PDB-format text (fixed
/// columns: x 31–38, y 39–46, z 47–54, occupancy 55–60, element 77–78; hydrogens dropped).
pub fn pdb_atom_records(text: &str) -> Vec<Blob> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("ENDMDL") {
            break;
        }
        if !(line.starts_with("ATOM") || line.starts_with("HETATM")) || line.len() < 54 {
            continue;
        }
        let field =
            |a: usize, b: usize| line.get(a..b.min(line.len())).map(str::trim).unwrap_or("");
        let (Ok(x), Ok(y), Ok(z)) = (
            field(30, 38).parse::<f64>(),
            field(38, 46).parse::<f64>(),
            field(46, 54).parse::<f64>(),
        ) else {
            continue;
        };
        let occ = field(54, 60).parse::<f64>().unwrap_or(1.0).clamp(0.01, 1.0);
        let mut symbol = field(76, 78).to_string();
        if symbol.is_empty() {
            symbol = field(12, 16)
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .take(1)
                .collect();
        }
        let Some(el) = pdbtbx::Element::from_symbol(&symbol) else {
            continue;
        };
        let zn = el.atomic_number();
        if zn == 1 {
            continue;
        }
        out.push(Blob {
            pos_a: [x, y, z],
            sigma_a: 0.0,
            weight_a3: atom_weight_a3(zn) * occ,
        });
    }
    out
}

/// A class from an atomic model: atoms → element-weighted Gaussians at `resolution_a`.
pub fn model_class(
    class_name: &str,
    path: &Path,
    voxel_size_a: f64,
    resolution_a: f64,
    mask_fraction: f64,
) -> Result<ClassModel, SimError> {
    let blobs = model_blobs(path)?;
    let n = box_side_for(&blobs, voxel_size_a, resolution_a);
    let density = render_blobs(&blobs, n, voxel_size_a, resolution_a);
    Ok(ClassModel::new(
        class_name,
        format!("model:{}", path.display()),
        density,
        voxel_size_a,
        mask_fraction,
    ))
}

/// Resamples a map `src` (`[z, y, x]`, voxel `src_voxel_a`) to a cube of odd side at `dst_voxel_a`
/// about the map's centre. When coarsening, each output voxel averages a k³ sub-grid of trilinear
/// samples spanning it (k = ceil(ratio)), which integrates instead of aliasing. Density outside the
/// inscribed sphere is cut so that the template can be turned without losing corners.
pub fn resample_to_cube(src: &Array3<f32>, src_voxel_a: f64, dst_voxel_a: f64) -> Array3<f32> {
    let (nz, ny, nx) = src.dim();
    let ratio = dst_voxel_a / src_voxel_a;
    let longest = nx.max(ny).max(nz) as f64;
    let half = ((longest / ratio) / 2.0).ceil() as usize + 1;
    let n = 2 * half + 1;
    let k = ratio.ceil().max(1.0) as usize;
    let cs = [
        (nx as f64 - 1.0) / 2.0,
        (ny as f64 - 1.0) / 2.0,
        (nz as f64 - 1.0) / 2.0,
    ];
    let h = half as f64;
    Array3::from_shape_fn((n, n, n), |(z, y, x)| {
        let d = [x as f64 - h, y as f64 - h, z as f64 - h];
        if d[0] * d[0] + d[1] * d[1] + d[2] * d[2] > h * h {
            return 0.0;
        }
        let mut acc = 0.0f64;
        for a in 0..k {
            for b in 0..k {
                for c in 0..k {
                    let off = |s: usize| ((s as f64 + 0.5) / k as f64 - 0.5) * ratio;
                    let sx = d[0] * ratio + cs[0] + off(c);
                    let sy = d[1] * ratio + cs[1] + off(b);
                    let sz = d[2] * ratio + cs[2] + off(a);
                    acc += trilinear(src, sx, sy, sz) as f64;
                }
            }
        }
        (acc / (k * k * k) as f64) as f32
    })
}

/// A class from a density map (MRC, any mode capsid-io reads), resampled to `voxel_size_a` and
/// scaled to a maximum of 1. The map's voxel size comes from its header; `fallback_voxel_a` is
/// used when the header says 0.
pub fn map_class(
    class_name: &str,
    path: &Path,
    voxel_size_a: f64,
    fallback_voxel_a: Option<f64>,
    mask_fraction: f64,
) -> Result<ClassModel, SimError> {
    let err = |message: String| SimError::Map {
        path: path.to_path_buf(),
        message,
    };
    let vol = capsid_io::mrc::read_volume(path)?;
    let mut src_voxel = vol.voxel_size_a[0] as f64;
    if !(src_voxel > 0.0 && src_voxel.is_finite()) {
        src_voxel = fallback_voxel_a.ok_or_else(|| {
            err("the header gives no voxel size; say it with map_voxel_size_a".into())
        })?;
    }
    if vol.data.iter().any(|v| !v.is_finite()) {
        return Err(err("the map holds NaN or infinite values".into()));
    }
    let mut density = resample_to_cube(&vol.data, src_voxel, voxel_size_a);
    let max = density.iter().cloned().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return Err(err("the map has no positive density".into()));
    }
    density.mapv_inplace(|v| (v / max).max(0.0));
    if density.dim().0 < 3 {
        return Err(err(format!(
            "the map is smaller than one voxel of {voxel_size_a} Å"
        )));
    }
    Ok(ClassModel::new(
        class_name,
        format!("map:{}", path.display()),
        density,
        voxel_size_a,
        mask_fraction,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent_nm(m: &ClassModel) -> f64 {
        2.0 * m.radius_a() / 10.0
    }

    #[test]
    fn builtin_sizes_span_tiny_to_large() {
        let mut sizes = Vec::new();
        for name in BUILTIN_CLASSES {
            let m = builtin_class(name, name, 10.0, 20.0, 0.3).unwrap();
            assert!(m.mask_voxels() > 10, "{name}");
            sizes.push((name, extent_nm(&m)));
        }
        let get = |n: &str| sizes.iter().find(|s| s.0 == n).unwrap().1;
        assert!((3.5..8.0).contains(&get("globule")), "{sizes:?}");
        assert!((21.0..31.0).contains(&get("ribosome")), "{sizes:?}");
        assert!((9.0..14.0).contains(&get("rubisco")), "{sizes:?}");
        assert!(
            get("globule") < get("rubisco") && get("rubisco") < get("proteasome"),
            "{sizes:?}"
        );
    }

    #[test]
    fn ribosome_is_asymmetric() {
        // Turning it 180° about any axis must change the density a lot (correlation over the
        // voxels inside either mask, so the empty box does not count).
        let m = builtin_class("ribosome", "ribosome", 10.0, 20.0, 0.3).unwrap();
        let t = m.mask_threshold;
        for rot in [
            Rotation::rx(std::f64::consts::PI),
            Rotation::ry(std::f64::consts::PI),
            Rotation::rz(std::f64::consts::PI),
        ] {
            let r = m.rotated(&rot);
            let (a, b): (Vec<f32>, Vec<f32>) = m
                .density
                .iter()
                .zip(r.iter())
                .filter(|(a, b)| **a >= t || **b >= t)
                .map(|(a, b)| (*a, *b))
                .unzip();
            let c = crate::metrics::pearson(a, b);
            assert!(c < 0.6, "correlation {c} after 180°");
        }
    }

    /// Mean density in shells of one voxel about the template centre.
    fn radial_profile(d: &Array3<f32>) -> Vec<f64> {
        let c = ((d.dim().0 - 1) / 2) as f64;
        let mut sum = vec![0.0f64; d.dim().0];
        let mut n = vec![0usize; d.dim().0];
        for ((z, y, x), &v) in d.indexed_iter() {
            let r = ((x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2))
                .sqrt()
                .round() as usize;
            if r < sum.len() {
                sum[r] += v as f64;
                n[r] += 1;
            }
        }
        sum.iter()
            .zip(&n)
            .filter(|(_, &k)| k > 0)
            .map(|(s, &k)| s / k as f64)
            .collect()
    }

    /// Principal second moments (voxel², ascending) of the density above the mask threshold
    /// about the template centre: a rotation-invariant description of the shape's extent along
    /// its three principal axes.
    fn principal_moments(m: &ClassModel) -> [f64; 3] {
        let c = m.half() as f64;
        let mut cov = [[0.0f64; 3]; 3];
        let mut total = 0.0;
        for ((z, y, x), &v) in m.density.indexed_iter() {
            if v < m.mask_threshold {
                continue;
            }
            let d = [x as f64 - c, y as f64 - c, z as f64 - c];
            for i in 0..3 {
                for j in 0..3 {
                    cov[i][j] += v as f64 * d[i] * d[j];
                }
            }
            total += v as f64;
        }
        let cov = cov.map(|r| r.map(|v| v / total));
        // Eigenvalues of the symmetric 3×3 matrix (trigonometric closed form).
        let p1 = cov[0][1].powi(2) + cov[0][2].powi(2) + cov[1][2].powi(2);
        let q = (cov[0][0] + cov[1][1] + cov[2][2]) / 3.0;
        let p2 =
            (cov[0][0] - q).powi(2) + (cov[1][1] - q).powi(2) + (cov[2][2] - q).powi(2) + 2.0 * p1;
        let p = (p2 / 6.0).sqrt();
        if p < 1e-12 {
            return [q; 3];
        }
        let bm: Vec<Vec<f64>> = (0..3)
            .map(|i| {
                (0..3)
                    .map(|j| (cov[i][j] - if i == j { q } else { 0.0 }) / p)
                    .collect()
            })
            .collect();
        let det = bm[0][0] * (bm[1][1] * bm[2][2] - bm[1][2] * bm[2][1])
            - bm[0][1] * (bm[1][0] * bm[2][2] - bm[1][2] * bm[2][0])
            + bm[0][2] * (bm[1][0] * bm[2][1] - bm[1][1] * bm[2][0]);
        let phi = (det / 2.0).clamp(-1.0, 1.0).acos() / 3.0;
        let e1 = q + 2.0 * p * phi.cos();
        let e3 = q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos();
        let e2 = 3.0 * q - e1 - e3;
        let mut e = [e1, e2, e3];
        e.sort_by(f64::total_cmp);
        e
    }

    #[test]
    fn scrambled_decoys_keep_mass_radius_and_profile_but_not_shape() {
        for name in ["ribosome", "proteasome", "globule"] {
            let blobs = builtin_blobs(name).unwrap();
            let target = blob_class(name, "t".into(), &blobs, 10.0, 20.0, 0.3);
            let decoy = blob_class(
                "d",
                "d".into(),
                &scrambled_blobs(&blobs, 8.0, 11),
                10.0,
                20.0,
                0.3,
            );
            let mass = |m: &ClassModel| m.density.iter().map(|&v| v as f64).sum::<f64>();
            let dm = (mass(&decoy) - mass(&target)).abs() / mass(&target);
            let dr = (decoy.radius_a() - target.radius_a()).abs() / target.radius_a();
            let (pt, pd) = (
                radial_profile(&target.density),
                radial_profile(&decoy.density),
            );
            let k = pt.len().min(pd.len());
            let profile = crate::metrics::pearson(
                pt[..k].iter().map(|&v| v as f32),
                pd[..k].iter().map(|&v| v as f32),
            );
            let (mt, md) = (principal_moments(&target), principal_moments(&decoy));
            // Anisotropy: largest over smallest principal moment.
            let (at, ad) = (mt[2] / mt[0], md[2] / md[0]);
            eprintln!(
                "{name}: mass {dm:.4} radius {dr:.4} ({:.1} vs {:.1} Å) profile r {profile:.3} \
                 moments {mt:.2?} vs {md:.2?} anisotropy {at:.2} vs {ad:.2}",
                target.radius_a(),
                decoy.radius_a()
            );
            assert!(dm < 0.01, "{name}: mass differs by {dm}");
            assert!(dr <= 0.10, "{name}: radius differs by {dr}");
            assert!(profile > 0.95, "{name}: radial profile r = {profile}");
            assert!(
                (at - ad).abs() / at > 0.15,
                "{name}: the decoy's shape is as anisotropic as the target's ({at} vs {ad})"
            );
        }
    }

    #[test]
    fn unknown_builtin_is_a_clear_error() {
        let e = builtin_class("x", "nope", 10.0, 20.0, 0.3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown built-in class 'nope'") && e.contains("ribosome"),
            "{e}"
        );
    }

    #[test]
    fn resampling_keeps_a_centred_sphere_centred() {
        let n = 41;
        let c = 20.0;
        let src = Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let r2 = (x as f64 - c).powi(2) + (y as f64 - c).powi(2) + (z as f64 - c).powi(2);
            if r2 <= 100.0 {
                1.0
            } else {
                0.0
            }
        });
        let dst = resample_to_cube(&src, 2.0, 5.0);
        let m = dst.dim().0;
        let h = (m - 1) / 2;
        assert!(dst[[h, h, h]] > 0.95);
        // Radius 10 voxels × 2 Å = 20 Å = 4 voxels of 5 Å.
        assert!(
            dst[[h, h, h + 3]] > 0.7 && dst[[h, h, h + 5]] < 0.05,
            "{:?}",
            dst.slice(ndarray::s![h, h, ..])
        );
        let mass_src: f64 = src.iter().map(|&v| v as f64 * 8.0).sum();
        let mass_dst: f64 = dst.iter().map(|&v| v as f64 * 125.0).sum();
        assert!(
            (mass_src - mass_dst).abs() / mass_src < 0.03,
            "{mass_src} {mass_dst}"
        );
    }
}
