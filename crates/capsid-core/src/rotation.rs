//! Rotations of particles and the Euler-angle conventions of the files users bring.
//!
//! A [`Rotation`] is a 3×3 matrix acting on column vectors `(x, y, z)`: it takes a point of the class
//! template (relative to the template centre) to the tomogram frame (relative to the particle
//! centre), `p_tomo = R · p_template`. This is the *active* rotation that places a particle.
//!
//! Euler conventions (angles in degrees):
//! * [`EulerConvention::Zxz`]: `[phi, theta, psi]`, `R = Rz(phi) · Rx(theta) · Rz(psi)`. Used by
//!   SHREC `particle_locations.txt` (rotation_Z1, rotation_X, rotation_Z2), DeepFinder XML
//!   (`phi`, `the`, `psi`) and capsid's simulator.
//! * [`EulerConvention::RelionZyz`]: `[rot, tilt, psi]` as RELION's `rlnAngleRot/Tilt/Psi`. RELION's
//!   `Euler_angles2matrix` gives `A = Rz(-psi) · Ry(-tilt) · Rz(-rot)` (in the active matrices used
//!   here), which takes reference coordinates into the particle frame, so the active rotation is
//!   `R = A = (Rz(rot) · Ry(tilt) · Rz(psi))ᵀ` — the same as scipy's
//!   `Rotation.from_euler("ZYZ", [rot, tilt, psi]).inv()` used by copick and teamtomo.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// An Euler-angle convention; see the module documentation for the exact matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EulerConvention {
    /// `[phi, theta, psi]`, `R = Rz(phi)·Rx(theta)·Rz(psi)` (SHREC, DeepFinder, capsid).
    Zxz,
    /// `[rot, tilt, psi]`, RELION's `A = Rz(-psi)·Ry(-tilt)·Rz(-rot)`, `R = A`.
    RelionZyz,
}

impl EulerConvention {
    /// A short name for files and messages: `zxz` or `relion_zyz`.
    pub fn name(self) -> &'static str {
        match self {
            EulerConvention::Zxz => "zxz",
            EulerConvention::RelionZyz => "relion_zyz",
        }
    }
}

/// Three Euler angles in degrees with the convention that gives them meaning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EulerAngles {
    pub convention: EulerConvention,
    /// The three angles in degrees, in the order the convention names them.
    pub angles_deg: [f64; 3],
}

impl EulerAngles {
    /// ZXZ angles `[phi, theta, psi]` in degrees.
    pub fn zxz(phi: f64, theta: f64, psi: f64) -> Self {
        Self {
            convention: EulerConvention::Zxz,
            angles_deg: [phi, theta, psi],
        }
    }

    /// RELION angles `[rot, tilt, psi]` in degrees.
    pub fn relion(rot: f64, tilt: f64, psi: f64) -> Self {
        Self {
            convention: EulerConvention::RelionZyz,
            angles_deg: [rot, tilt, psi],
        }
    }

    /// The active rotation (template → tomogram) these angles describe.
    pub fn rotation(&self) -> Rotation {
        let [a, b, c] = self.angles_deg.map(f64::to_radians);
        match self.convention {
            EulerConvention::Zxz => Rotation::rz(a).mul(&Rotation::rx(b)).mul(&Rotation::rz(c)),
            EulerConvention::RelionZyz => Rotation::rz(a)
                .mul(&Rotation::ry(b))
                .mul(&Rotation::rz(c))
                .transpose(),
        }
    }

    /// The same rotation expressed in another convention.
    pub fn to_convention(&self, convention: EulerConvention) -> EulerAngles {
        if convention == self.convention {
            return *self;
        }
        self.rotation().to_euler(convention)
    }
}

/// A 3×3 rotation matrix acting on column vectors `(x, y, z)`; `m[row][col]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    pub m: [[f64; 3]; 3],
}

impl Default for Rotation {
    fn default() -> Self {
        Self::identity()
    }
}

impl Rotation {
    /// The identity.
    pub fn identity() -> Self {
        Self {
            m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// Rotation by `a` radians about x (counter-clockwise looking down +x).
    pub fn rx(a: f64) -> Self {
        let (s, c) = a.sin_cos();
        Self {
            m: [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]],
        }
    }

    /// Rotation by `a` radians about y.
    pub fn ry(a: f64) -> Self {
        let (s, c) = a.sin_cos();
        Self {
            m: [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]],
        }
    }

    /// Rotation by `a` radians about z.
    pub fn rz(a: f64) -> Self {
        let (s, c) = a.sin_cos();
        Self {
            m: [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// Matrix product `self · other` (apply `other` first).
    pub fn mul(&self, other: &Rotation) -> Rotation {
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| self.m[i][k] * other.m[k][j]).sum();
            }
        }
        Rotation { m }
    }

    /// The inverse rotation.
    pub fn transpose(&self) -> Rotation {
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.m[j][i];
            }
        }
        Rotation { m }
    }

    /// Applies the rotation to a vector `[x, y, z]`.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.m;
        [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2] * p[2],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2] * p[2],
            m[2][0] * p[0] + m[2][1] * p[1] + m[2][2] * p[2],
        ]
    }

    /// Angle in degrees of the rotation `self⁻¹ · other` (0 when equal, at most 180).
    pub fn angle_to_deg(&self, other: &Rotation) -> f64 {
        let d = self.transpose().mul(other);
        let m = &d.m;
        // cos from the trace, sin from the antisymmetric part: atan2 keeps small angles exact
        // (acos near 1 loses half the digits).
        let cos = (m[0][0] + m[1][1] + m[2][2] - 1.0) / 2.0;
        let v = [m[2][1] - m[1][2], m[0][2] - m[2][0], m[1][0] - m[0][1]];
        let sin = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt() / 2.0;
        sin.atan2(cos).to_degrees()
    }

    /// A rotation drawn uniformly from SO(3) (Shoemake's method on unit quaternions).
    pub fn random_uniform<R: Rng + ?Sized>(rng: &mut R) -> Rotation {
        let (u1, u2, u3): (f64, f64, f64) = (rng.gen(), rng.gen(), rng.gen());
        let tau = std::f64::consts::TAU;
        let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
        let q = [
            a * (tau * u2).sin(),
            a * (tau * u2).cos(),
            b * (tau * u3).sin(),
            b * (tau * u3).cos(),
        ];
        Rotation::from_quaternion(q[3], q[0], q[1], q[2])
    }

    /// The rotation of the unit quaternion `w + xi + yj + zk`.
    pub fn from_quaternion(w: f64, x: f64, y: f64, z: f64) -> Rotation {
        let n = (w * w + x * x + y * y + z * z).sqrt();
        let (w, x, y, z) = (w / n, x / n, y / n, z / n);
        Rotation {
            m: [
                [
                    1.0 - 2.0 * (y * y + z * z),
                    2.0 * (x * y - w * z),
                    2.0 * (x * z + w * y),
                ],
                [
                    2.0 * (x * y + w * z),
                    1.0 - 2.0 * (x * x + z * z),
                    2.0 * (y * z - w * x),
                ],
                [
                    2.0 * (x * z - w * y),
                    2.0 * (y * z + w * x),
                    1.0 - 2.0 * (x * x + y * y),
                ],
            ],
        }
    }

    /// Euler angles (degrees) in `convention` that give this rotation. At the gimbal-lock poles the
    /// last angle is set to 0.
    pub fn to_euler(&self, convention: EulerConvention) -> EulerAngles {
        match convention {
            EulerConvention::Zxz => {
                // R = Rz(phi) Rx(theta) Rz(psi):
                // m22 = cos theta, m02 = sin phi sin theta, m12 = -cos phi sin theta,
                // m20 = sin theta sin psi, m21 = sin theta cos psi.
                let m = &self.m;
                let theta = m[2][2].clamp(-1.0, 1.0).acos();
                let (phi, psi) = if theta.sin().abs() > 1e-9 {
                    (m[0][2].atan2(-m[1][2]), m[2][0].atan2(m[2][1]))
                } else {
                    // R = Rz(phi ± psi): put it all in phi.
                    let a = m[1][0].atan2(m[0][0]);
                    (a, 0.0)
                };
                EulerAngles::zxz(phi.to_degrees(), theta.to_degrees(), psi.to_degrees())
            }
            EulerConvention::RelionZyz => {
                // M = Rᵀ = Rz(rot) Ry(tilt) Rz(psi):
                // m22 = cos tilt, m02 = cos rot sin tilt, m12 = sin rot sin tilt,
                // m20 = -sin tilt cos psi, m21 = sin tilt sin psi.
                let a = self.transpose().m;
                let tilt = a[2][2].clamp(-1.0, 1.0).acos();
                let (rot, psi) = if tilt.sin().abs() > 1e-9 {
                    (a[1][2].atan2(a[0][2]), a[2][1].atan2(-a[2][0]))
                } else {
                    // M = Rz(rot) at tilt 0, Rz(rot)·diag(-1, 1, -1) at tilt 180.
                    ((-a[0][1]).atan2(a[1][1]), 0.0)
                };
                EulerAngles::relion(rot.to_degrees(), tilt.to_degrees(), psi.to_degrees())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn euler_round_trips_in_both_conventions() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let r = Rotation::random_uniform(&mut rng);
            for conv in [EulerConvention::Zxz, EulerConvention::RelionZyz] {
                let e = r.to_euler(conv);
                assert!(r.angle_to_deg(&e.rotation()) < 1e-4, "{conv:?} {e:?}");
            }
        }
    }

    #[test]
    fn zxz_matches_hand_computed_matrix() {
        // phi = 90: x -> y. theta = 90 about x: y -> z. So Rz(90)·Rx(90) sends x to y, y to z.
        let r = EulerAngles::zxz(90.0, 90.0, 0.0).rotation();
        let p = r.apply([0.0, 1.0, 0.0]);
        assert!(
            (p[0]).abs() < 1e-12 && (p[1]).abs() < 1e-12 && (p[2] - 1.0).abs() < 1e-12,
            "{p:?}"
        );
    }

    #[test]
    fn relion_matches_relions_euler_angles2matrix() {
        // RELION's Euler_angles2matrix(rot, tilt, psi), written out element by element.
        let (rot, tilt, psi) = (10.0f64, 40.0f64, -70.0f64);
        let (sa, ca) = rot.to_radians().sin_cos();
        let (sb, cb) = tilt.to_radians().sin_cos();
        let (sg, cg) = psi.to_radians().sin_cos();
        let (cc, cs, sc, ss) = (cb * ca, cb * sa, sb * ca, sb * sa);
        let a = [
            [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
            [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
            [sc, ss, cb],
        ];
        let r = EulerAngles::relion(rot, tilt, psi).rotation();
        for i in 0..3 {
            for j in 0..3 {
                assert!(
                    (r.m[i][j] - a[i][j]).abs() < 1e-12,
                    "{i}{j}: {:?} vs {a:?}",
                    r.m
                );
            }
        }
    }

    #[test]
    fn relion_rot_only_is_inverse_rz() {
        // A = Rz(rot), R = Aᵀ = Rz(-rot).
        let r = EulerAngles::relion(30.0, 0.0, 0.0).rotation();
        assert!(r.angle_to_deg(&Rotation::rz((-30.0f64).to_radians())) < 1e-9);
    }

    #[test]
    fn gimbal_poles_round_trip() {
        for e in [
            EulerAngles::zxz(30.0, 0.0, 0.0),
            EulerAngles::zxz(30.0, 180.0, 0.0),
            EulerAngles::relion(30.0, 0.0, 0.0),
            EulerAngles::relion(30.0, 180.0, 0.0),
        ] {
            let back = e.rotation().to_euler(e.convention);
            assert!(
                e.rotation().angle_to_deg(&back.rotation()) < 1e-4,
                "{e:?} {back:?}"
            );
        }
    }

    #[test]
    fn conversion_preserves_rotation() {
        let e = EulerAngles::zxz(10.0, 40.0, -70.0);
        let rel = e.to_convention(EulerConvention::RelionZyz);
        assert!(e.rotation().angle_to_deg(&rel.rotation()) < 1e-9);
    }
}
