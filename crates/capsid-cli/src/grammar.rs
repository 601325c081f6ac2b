//! The CLI's shared grammar: one parser per kind of value, so every command reads a shape (or any
//! other shared value) the same way. Written down in the README ("One grammar").
//!
//! * Shapes are `X,Y,Z` in voxels (x fastest, as coordinates in particle files), flag
//!   `--shape-xyz` (and `--shape` where it always meant X,Y,Z). `capsid simulate --shape` took
//!   Z,Y,X: it is refused with a message instead of silently transposing an old script.
//! * A tomogram is `--tomogram` (`--tomo` is a hidden alias for one release), a class table
//!   `--classes FILE`, an output `--out`.

/// Parses a shape `X,Y,Z` (or `XxYxZ`) of three positive integers, in voxels.
pub fn parse_shape_xyz(s: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = s.split([',', 'x']).map(str::trim).collect();
    let bad = || format!("'{s}' is not a shape X,Y,Z of three positive integers");
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut out = [0usize; 3];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p.parse().map_err(|_| bad())?;
        if *o == 0 {
            return Err(bad());
        }
    }
    Ok(out)
}

/// How STAR particle lists are written (`capsid convert`, `capsid pick`): the RELION generation
/// and the acquisition values RELION needs in the optics table.
#[derive(clap::Args, Debug, Clone)]
pub struct StarArgs {
    /// STAR files for: relion3.1 (data_optics + data_particles, coordinates in voxels: RELION
    /// 3.1 and 4; written as relion3.0 when the voxel size is unknown), relion3.0 (one
    /// data_particles block: RELION 3.0, Dynamo), relion5 (tomography: centred Å coordinates
    /// and rlnTomoName; needs the tomogram shape), warp (WarpTools ts_export_particles
    /// --input_star, for Warp and M: voxels, rlnMicrographName NAME.tomostar; give Warp
    /// --coords_angpix VOXEL_SIZE).
    #[arg(long, value_name = "STYLE", default_value = "relion3.1")]
    pub star_style: capsid_io::particles::StarStyle,
    /// Optics table: acceleration voltage in kV.
    #[arg(long, value_name = "KV", default_value_t = 300.0)]
    pub voltage: f64,
    /// Optics table: spherical aberration in mm.
    #[arg(long, value_name = "MM", default_value_t = 2.7)]
    pub cs: f64,
    /// Optics table: amplitude contrast (a fraction).
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub amplitude_contrast: f64,
    /// RELION 5 optics table: the unbinned tilt series' pixel size in Å (default: the
    /// tomogram's voxel size).
    #[arg(long, value_name = "A")]
    pub tilt_series_pixel_size: Option<f64>,
}

impl StarArgs {
    /// The optics group of the flags.
    pub fn optics(&self) -> capsid_io::particles::Optics {
        capsid_io::particles::Optics {
            voltage_kv: self.voltage,
            cs_mm: self.cs,
            amplitude_contrast: self.amplitude_contrast,
            tilt_series_pixel_size_a: self.tilt_series_pixel_size,
        }
    }
}

/// `[x, y, z]` → `[z, y, x]` (the memory order of volumes).
pub fn zyx(xyz: [usize; 3]) -> [usize; 3] {
    [xyz[2], xyz[1], xyz[0]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_in_xyz_order() {
        assert_eq!(parse_shape_xyz("630,630,200").unwrap(), [630, 630, 200]);
        assert_eq!(parse_shape_xyz("64x32x16").unwrap(), [64, 32, 16]);
        assert_eq!(zyx([64, 32, 16]), [16, 32, 64]);
        assert!(parse_shape_xyz("1,2").is_err());
        assert!(parse_shape_xyz("1,0,2").is_err());
        assert!(parse_shape_xyz("a,b,c").unwrap_err().contains("'a,b,c'"));
    }
}
