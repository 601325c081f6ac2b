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
//! * score: `rlnAutopickFigureOfMerit`; tomogram: `rlnTomoName`, else `rlnMicrographName` (Warp's
//!   `NAME.tomostar` is the tomogram `NAME`).
//!
//! Written files ([`StarStyle`]) have, for RELION 3.1 and 4 (the default when the voxel size is
//! known) and RELION 5, a `data_optics` block with one optics group (pixel size, voltage, Cs,
//! amplitude contrast: what RELION's readers require), then the block `data_particles` with a
//! `loop_` of right-aligned columns `rlnTomoName`, `rlnCoordinateX/Y/Z` (or the RELION 5 centred Å
//! columns), `rlnAngleRot/Tilt/Psi`, `rlnClassNumber` (table label, or the class name when it is a
//! number), `capsidClassName`, `rlnAutopickFigureOfMerit`, `rlnOpticsGroup`; optional columns only
//! when particles have the value (all or none). RELION 3.0 files are the particles block alone;
//! Warp files (WarpTools `ts_export_particles --input_star`) are one unnamed block `data_` whose
//! tomogram column is `rlnMicrographName` = `NAME.tomostar`.
//! RELION keeps unknown columns such as `capsidClassName`; starfile reads them as any column.
//!
//! [`StarStyle`]: super::StarStyle
//! [`EulerConvention::RelionZyz`]: capsid_core::EulerConvention::RelionZyz
//! [`ReadOptions::default_class`]: super::ReadOptions::default_class

mod relion;
mod syntax;
mod writer;

pub use relion::parse_particles;
pub use syntax::{parse_star, StarBlock, StarFile, StarLoop};
pub use writer::render;
