//! Point-group symmetry of a particle class, as RELION names it (`C1`, `C7`, `D6`, `T`, `O`, `I`),
//! and the angle between two orientations of a symmetric particle.
//!
//! A class has symmetry group `G` when its template `T` satisfies `T(S·p) = T(p)` for every
//! operator `S` in `G` (points `p` relative to the template centre, `[x, y, z]`). A particle placed
//! by the active rotation `R` ([`Rotation`]) then looks the same when placed by `R·S`: the
//! orientations `{R·S}` cannot be told apart, and [`symmetric_angle_deg`] measures the angle to the
//! nearest of them.
//!
//! Axes of the operators (the template's frame):
//! * `Cn`: the n-fold axis is z.
//! * `Dn`: the n-fold axis is z, a two-fold axis is x.
//! * `T`: two-fold axes along x, y and z, three-fold axes along the body diagonals `(±1, ±1, ±1)`.
//! * `O`: four-fold axes along x, y and z, three-fold axes along the body diagonals.
//! * `I`: two-fold axes along x, y and z, five-fold axes along `(0, ±1, φ)` and its cyclic
//!   permutations (φ = golden ratio): the "2-fold on x, y, z" setting (RELION's `I2`).

use crate::rotation::Rotation;
use std::fmt;

/// A point group of a particle class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symmetry {
    /// `Cn`: n-fold rotation about z (`C1` = no symmetry).
    Cyclic(u32),
    /// `Dn`: n-fold about z and two-fold about x (order 2n).
    Dihedral(u32),
    /// `T`: tetrahedral (order 12).
    Tetrahedral,
    /// `O`: octahedral (order 24).
    Octahedral,
    /// `I`: icosahedral (order 60).
    Icosahedral,
}

impl Default for Symmetry {
    fn default() -> Self {
        Symmetry::Cyclic(1)
    }
}

impl fmt::Display for Symmetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Symmetry::Cyclic(n) => write!(f, "C{n}"),
            Symmetry::Dihedral(n) => write!(f, "D{n}"),
            Symmetry::Tetrahedral => write!(f, "T"),
            Symmetry::Octahedral => write!(f, "O"),
            Symmetry::Icosahedral => write!(f, "I"),
        }
    }
}

impl std::str::FromStr for Symmetry {
    type Err = String;
    /// Parses `C1`, `c6`, `D7`, `T`, `O`, `I` (also `I2`, the axes used here). `n` is 1..=100.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_uppercase();
        let bad = || format!("unknown symmetry '{s}': expected Cn or Dn (n = 1..100), T, O or I");
        match t.as_str() {
            "T" => return Ok(Symmetry::Tetrahedral),
            "O" => return Ok(Symmetry::Octahedral),
            "I" | "I2" => return Ok(Symmetry::Icosahedral),
            _ => {}
        }
        let (kind, n) = t.split_at(1.min(t.len()));
        let n: u32 = n.parse().map_err(|_| bad())?;
        if !(1..=100).contains(&n) {
            return Err(bad());
        }
        match kind {
            "C" => Ok(Symmetry::Cyclic(n)),
            "D" => Ok(Symmetry::Dihedral(n)),
            _ => Err(bad()),
        }
    }
}

impl Symmetry {
    /// Number of operators (the group's order).
    pub fn order(&self) -> usize {
        match *self {
            Symmetry::Cyclic(n) => n as usize,
            Symmetry::Dihedral(n) => 2 * n as usize,
            Symmetry::Tetrahedral => 12,
            Symmetry::Octahedral => 24,
            Symmetry::Icosahedral => 60,
        }
    }

    /// The group's operators, the identity first. Built by closing the generators under
    /// multiplication (exact to 1e-9 per matrix element).
    pub fn operators(&self) -> Vec<Rotation> {
        let gens: Vec<Rotation> = match *self {
            Symmetry::Cyclic(n) => vec![Rotation::rz(std::f64::consts::TAU / n as f64)],
            Symmetry::Dihedral(n) => vec![
                Rotation::rz(std::f64::consts::TAU / n as f64),
                Rotation::rx(std::f64::consts::PI),
            ],
            Symmetry::Tetrahedral => vec![
                Rotation::rz(std::f64::consts::PI),
                Rotation::rx(std::f64::consts::PI),
                axis_angle([1.0, 1.0, 1.0], 120.0),
            ],
            Symmetry::Octahedral => vec![
                Rotation::rz(std::f64::consts::FRAC_PI_2),
                axis_angle([1.0, 1.0, 1.0], 120.0),
            ],
            Symmetry::Icosahedral => {
                let phi = (1.0 + 5f64.sqrt()) / 2.0;
                vec![
                    Rotation::rz(std::f64::consts::PI),
                    Rotation::rx(std::f64::consts::PI),
                    axis_angle([1.0, 1.0, 1.0], 120.0),
                    axis_angle([0.0, 1.0, phi], 72.0),
                ]
            }
        };
        close_group(&gens)
    }
}

/// Written and read as its name (`"D7"`), as in class tables and reports.
impl serde::Serialize for Symmetry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Symmetry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The rotation by `deg` degrees about `axis` (`[x, y, z]`, any length > 0), counter-clockwise
/// looking down the axis.
pub fn axis_angle(axis: [f64; 3], deg: f64) -> Rotation {
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let h = deg.to_radians() / 2.0;
    let s = h.sin() / n;
    Rotation::from_quaternion(h.cos(), axis[0] * s, axis[1] * s, axis[2] * s)
}

fn same(a: &Rotation, b: &Rotation) -> bool {
    a.m.iter()
        .flatten()
        .zip(b.m.iter().flatten())
        .all(|(x, y)| (x - y).abs() < 1e-9)
}

/// Closes `gens` under multiplication; the identity comes first.
fn close_group(gens: &[Rotation]) -> Vec<Rotation> {
    let mut group = vec![Rotation::identity()];
    let mut frontier = vec![Rotation::identity()];
    while let Some(g) = frontier.pop() {
        for h in gens {
            let p = g.mul(h);
            if !group.iter().any(|q| same(q, &p)) {
                group.push(p);
                frontier.push(p);
            }
        }
    }
    group
}

/// Angle in degrees (0..=180) between orientation `a` and the nearest orientation equivalent to
/// `b` under the class's symmetry (`b·S` for each operator `S` of `operators`, as from
/// [`Symmetry::operators`]): the geodesic distance on SO(3) modulo the symmetry.
pub fn symmetric_angle_deg(a: &Rotation, b: &Rotation, operators: &[Rotation]) -> f64 {
    if operators.is_empty() {
        return a.angle_to_deg(b);
    }
    operators
        .iter()
        .map(|s| a.angle_to_deg(&b.mul(s)))
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn groups_have_their_orders_and_are_closed() {
        for (s, n) in [
            ("C1", 1),
            ("C7", 7),
            ("D6", 12),
            ("T", 12),
            ("O", 24),
            ("I", 60),
        ] {
            let sym: Symmetry = s.parse().unwrap();
            let ops = sym.operators();
            assert_eq!(ops.len(), n, "{s}");
            assert_eq!(sym.order(), n, "{s}");
            assert_eq!(sym.to_string(), s);
            for a in &ops {
                for b in &ops {
                    let p = a.mul(b);
                    assert!(ops.iter().any(|q| same(q, &p)), "{s} not closed");
                }
            }
        }
    }

    #[test]
    fn class_tables_name_symmetries() {
        let text = "[[class]]\nname = \"p\"\nlabel = 1\nradius_a = 80\nsymmetry = \"d7\"\n";
        let t = crate::ClassTable::from_toml_str(text, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(t.classes[0].symmetry, Some(Symmetry::Dihedral(7)));
        assert!(t.to_toml_string().contains("symmetry = \"D7\""));
        let bad = text.replace("d7", "Q2");
        let err =
            crate::ClassTable::from_toml_str(&bad, std::path::Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("unknown symmetry 'Q2'"), "{err}");
    }

    #[test]
    fn parse_rejects_nonsense() {
        for s in ["", "C0", "X3", "D", "C101", "Cx"] {
            assert!(s.parse::<Symmetry>().is_err(), "{s}");
        }
        assert_eq!("c6".parse::<Symmetry>().unwrap(), Symmetry::Cyclic(6));
        assert_eq!("I2".parse::<Symmetry>().unwrap(), Symmetry::Icosahedral);
    }

    #[test]
    fn icosahedral_axes_are_where_documented() {
        // Two-fold about x, y and z; five-fold about (0, 1, φ).
        let ops = Symmetry::Icosahedral.operators();
        let phi = (1.0 + 5f64.sqrt()) / 2.0;
        for r in [
            Rotation::rx(std::f64::consts::PI),
            Rotation::ry(std::f64::consts::PI),
            Rotation::rz(std::f64::consts::PI),
            axis_angle([0.0, 1.0, phi], 72.0),
            axis_angle([1.0, phi, 0.0], 72.0),
        ] {
            assert!(ops.iter().any(|q| same(q, &r)));
        }
    }

    #[test]
    fn symmetric_angle_ignores_equivalent_orientations() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for sym in [
            Symmetry::Cyclic(4),
            Symmetry::Dihedral(3),
            Symmetry::Octahedral,
        ] {
            let ops = sym.operators();
            for _ in 0..20 {
                let r = Rotation::random_uniform(&mut rng);
                for s in &ops {
                    assert!(symmetric_angle_deg(&r, &r.mul(s), &ops) < 1e-6);
                }
                // A small extra turn about an axis not in the group stays measurable.
                let d = r.mul(&Rotation::ry(5f64.to_radians()));
                let a = symmetric_angle_deg(&r, &d, &ops);
                assert!((a - 5.0).abs() < 1e-6, "{sym}: {a}");
            }
        }
        // Without symmetry it is the plain geodesic distance; C4's largest possible angle is
        // smaller than C1's 180°.
        let r = Rotation::rz(std::f64::consts::PI);
        assert!((symmetric_angle_deg(&Rotation::identity(), &r, &[]) - 180.0).abs() < 1e-9);
        let c4 = Symmetry::Cyclic(4).operators();
        assert!(symmetric_angle_deg(&Rotation::identity(), &r, &c4) < 1e-6);
    }
}
