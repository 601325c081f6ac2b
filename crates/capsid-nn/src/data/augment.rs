//! Patch augmentation: [`Augment`], wedge-preserving flips along z, y and x and optional 90°
//! turns about z, applied alike to a `[z, y, x]` patch and its labels.

use ndarray::{Array3, Axis};
use rand::Rng;

/// A random wedge-preserving (unless `rot90_z`) transform of a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    pub flip_z: bool,
    pub flip_y: bool,
    pub flip_x: bool,
    /// Number of 90° turns about z (counter-clockwise seen from +z), 0..4.
    pub rot90_z: u8,
}

impl Augment {
    /// The identity transform.
    pub const NONE: Augment = Augment {
        flip_z: false,
        flip_y: false,
        flip_x: false,
        rot90_z: 0,
    };

    /// Draws a transform: flips each with probability ½ when `flips`, a uniform number of 90°
    /// turns about z when `rot90`.
    pub fn random(rng: &mut impl Rng, flips: bool, rot90: bool) -> Self {
        let mut a = Augment::NONE;
        if flips {
            a.flip_z = rng.gen();
            a.flip_y = rng.gen();
            a.flip_x = rng.gen();
        }
        if rot90 {
            a.rot90_z = rng.gen_range(0..4);
        }
        a
    }

    /// Applies the transform to a `[z, y, x]` array (turns need `y` and `x` of equal size; they
    /// are skipped otherwise). The same transform on a patch and its labels keeps them aligned.
    pub fn apply<T: Clone>(&self, a: Array3<T>) -> Array3<T> {
        let mut v = a;
        if self.flip_z {
            v.invert_axis(Axis(0));
        }
        if self.flip_y {
            v.invert_axis(Axis(1));
        }
        if self.flip_x {
            v.invert_axis(Axis(2));
        }
        if v.shape()[1] == v.shape()[2] {
            for _ in 0..self.rot90_z % 4 {
                // (y, x) -> (x, n-1-y): transpose then mirror.
                v = v.permuted_axes([0, 2, 1]);
                v.invert_axis(Axis(2));
            }
        }
        v.as_standard_layout().into_owned()
    }
}
