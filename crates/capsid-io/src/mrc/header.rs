//! The 1024-byte MRC2014 / CCP4 header: parsing (either byte order) and writing (little-endian).
//!
//! Byte offsets follow the MRC2014 specification (<https://www.ccpem.ac.uk/mrc_format/mrc2014.php>);
//! the IMOD fields `imodStamp`/`imodFlags` (bytes 152..160) follow IMOD's MRC documentation.

use crate::error::IoError;
use std::path::Path;

/// Length of the fixed MRC header in bytes.
pub const HEADER_LEN: usize = 1024;
/// IMOD's stamp value (bytes 152..156) that says `imod_flags` is meaningful.
pub const IMOD_STAMP: i32 = 1146047817;
/// The MRC2014 format version number capsid writes (NVERSION).
pub const NVERSION: i32 = 20141;

/// Voxel data types (MRC `MODE`) capsid reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// Mode 0, signed 8-bit integers.
    Int8,
    /// Mode 0 with IMOD's unsigned flag: unsigned 8-bit integers.
    Uint8,
    /// Mode 1, signed 16-bit integers.
    Int16,
    /// Mode 2, 32-bit floats.
    Float32,
    /// Mode 6, unsigned 16-bit integers.
    Uint16,
    /// Mode 12, 16-bit (IEEE half) floats.
    Float16,
}

impl DataType {
    /// Bytes per voxel.
    pub fn bytes(self) -> usize {
        match self {
            DataType::Int8 | DataType::Uint8 => 1,
            DataType::Int16 | DataType::Uint16 | DataType::Float16 => 2,
            DataType::Float32 => 4,
        }
    }

    /// True for the floating-point modes (2 and 12), whose values can be NaN or infinite.
    pub fn is_float(self) -> bool {
        matches!(self, DataType::Float32 | DataType::Float16)
    }
}

/// The header of an MRC / CCP4 file, as read or as it will be written.
///
/// Field names follow the MRC2014 specification. `nx, ny, nz` are the numbers of columns, rows and
/// sections *as stored*; when the axis order (`mapc, mapr, maps`) is not 1, 2, 3 the volume that
/// [`read_volume`](super::read_volume) returns has its axes permuted to `[z, y, x]`, see
/// [`MrcHeader::shape_zyx`].
#[derive(Debug, Clone, PartialEq)]
pub struct MrcHeader {
    /// Columns (fastest axis in the file).
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Sections (slowest axis in the file).
    pub nz: usize,
    /// MRC mode number (0, 1, 2, 6, 12 are readable).
    pub mode: i32,
    /// NXSTART, NYSTART, NZSTART: index of the first column, row, section (kept, not interpreted).
    pub nxstart: [i32; 3],
    /// MX, MY, MZ: sampling along the cell's X, Y, Z axes.
    pub mxyz: [i32; 3],
    /// Cell lengths (CELLA) in Å along X, Y, Z.
    pub cella: [f32; 3],
    /// Cell angles (CELLB) in degrees.
    pub cellb: [f32; 3],
    /// MAPC, MAPR, MAPS: which axis (1 = X, 2 = Y, 3 = Z) columns, rows and sections run along.
    pub axis_map: [i32; 3],
    /// Minimum, maximum and mean density (DMIN, DMAX, DMEAN) as recorded.
    pub dmin: f32,
    pub dmax: f32,
    pub dmean: f32,
    /// RMS deviation from the mean as recorded.
    pub rms: f32,
    /// Space group (ISPG): 0 image stack, 1 volume, 401 volume stack, ...
    pub ispg: i32,
    /// Extended header type (EXTTYP), e.g. `b"FEI1"`, `b"CCP4"`, or zeros.
    pub exttyp: [u8; 4],
    /// NVERSION (20140 / 20141 for MRC2014, 0 in older files).
    pub nversion: i32,
    /// IMOD stamp and flags (bytes 152..160); bit 0 of the flags with the stamp set means mode 0 is
    /// unsigned.
    pub imod_stamp: i32,
    pub imod_flags: i32,
    /// ORIGIN (x, y, z) in Å.
    pub origin_a: [f32; 3],
    /// Voxel size (x, y, z) in Å: `cella / mxyz`, 0 where either is 0.
    pub voxel_size_a: [f32; 3],
    /// True when bytes 208..212 hold `MAP ` (older files may lack it).
    pub has_map_stamp: bool,
    /// MACHST bytes as read (`44 44 00 00` little-endian, `11 11 00 00` big-endian).
    pub machst: [u8; 4],
    /// Byte order of the file's numbers.
    pub little_endian: bool,
    /// Text labels (at most 10 of 80 characters), trailing spaces removed.
    pub labels: Vec<String>,
    /// The extended header (NSYMBT bytes after the main header), kept verbatim.
    pub ext_header: Vec<u8>,
}

impl MrcHeader {
    /// A header for a new little-endian file of `shape_zyx` voxels in `mode`, with `voxel_size_a`
    /// and `origin_a` given as `[x, y, z]` in Å. Stats are zero until set; ISPG 1 (a volume).
    pub fn new(
        shape_zyx: [usize; 3],
        mode: i32,
        voxel_size_a: [f32; 3],
        origin_a: [f32; 3],
    ) -> Self {
        let [nz, ny, nx] = shape_zyx;
        let n = [nx, ny, nz];
        let cella = [0, 1, 2].map(|i| n[i] as f32 * voxel_size_a[i]);
        MrcHeader {
            nx,
            ny,
            nz,
            mode,
            nxstart: [0; 3],
            mxyz: n.map(|v| v as i32),
            cella,
            cellb: [90.0; 3],
            axis_map: [1, 2, 3],
            dmin: 0.0,
            dmax: 0.0,
            dmean: 0.0,
            rms: 0.0,
            ispg: 1,
            exttyp: [0; 4],
            nversion: NVERSION,
            imod_stamp: 0,
            imod_flags: 0,
            origin_a,
            voxel_size_a,
            has_map_stamp: true,
            machst: [0x44, 0x44, 0, 0],
            little_endian: true,
            labels: Vec::new(),
            ext_header: Vec::new(),
        }
    }

    /// Number of voxels.
    pub fn voxel_count(&self) -> usize {
        self.nx * self.ny * self.nz
    }

    /// The voxel data type this header's mode (and IMOD flags) declares, or `None` for modes capsid
    /// cannot read.
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self.mode {
            0 if self.imod_stamp == IMOD_STAMP && self.imod_flags & 1 == 1 => DataType::Uint8,
            0 => DataType::Int8,
            1 => DataType::Int16,
            2 => DataType::Float32,
            6 => DataType::Uint16,
            12 => DataType::Float16,
            _ => return None,
        })
    }

    /// True when columns, rows, sections are x, y, z (MAPC/MAPR/MAPS = 1, 2, 3).
    pub fn is_standard_axis_order(&self) -> bool {
        self.axis_map == [1, 2, 3]
    }

    /// Shape of the volume capsid returns, `[z, y, x]` (physical axes, after undoing any
    /// MAPC/MAPR/MAPS permutation).
    pub fn shape_zyx(&self) -> [usize; 3] {
        let stored = [self.nx, self.ny, self.nz]; // columns, rows, sections
        let mut xyz = [0usize; 3];
        for (i, &axis) in self.axis_map.iter().enumerate() {
            xyz[(axis - 1) as usize] = stored[i];
        }
        [xyz[2], xyz[1], xyz[0]]
    }

    /// Bytes of voxel data the header implies.
    pub fn data_len(&self) -> Option<usize> {
        self.data_type().map(|t| self.voxel_count() * t.bytes())
    }

    /// Parses the 1024-byte header `b` of the file `path` (used in error messages) and checks
    /// that it is self-consistent. The extended header is not read here (`ext_header` is empty).
    pub fn parse(path: &Path, b: &[u8]) -> Result<Self, IoError> {
        let err = |m: String| IoError::format(path, m);
        if b.len() < HEADER_LEN {
            return Err(err(format!(
                "not an MRC file: {} bytes, shorter than the 1024-byte MRC header",
                b.len()
            )));
        }
        let has_map_stamp = &b[208..211] == b"MAP";
        let machst = [b[212], b[213], b[214], b[215]];
        let little_endian = match machst[0] {
            0x44 => true,
            0x11 => false,
            // No usable stamp (old files): take the byte order in which the mode is plausible.
            _ => {
                let m_le = i32::from_le_bytes([b[12], b[13], b[14], b[15]]);
                (0..=16).contains(&m_le) || m_le == 101
            }
        };
        let i = |off: usize| {
            let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
            if little_endian {
                i32::from_le_bytes(a)
            } else {
                i32::from_be_bytes(a)
            }
        };
        let f = |off: usize| f32::from_bits(i(off) as u32);
        let dims = [i(0), i(4), i(8)];
        let mode = i(12);
        if !has_map_stamp && !(0..=16).contains(&mode) && mode != 101 {
            return Err(err(format!(
                "not an MRC file: no 'MAP ' stamp at byte 208 and mode {mode} is not an MRC mode"
            )));
        }
        if dims.iter().any(|&d| d <= 0) {
            return Err(err(format!(
                "invalid MRC header: dimensions {} x {} x {} (nx, ny, nz must be positive)",
                dims[0], dims[1], dims[2]
            )));
        }
        // The implied data size (at most 8 bytes a voxel) must be a 64-bit number.
        let implied = (dims[0] as u64)
            .checked_mul(dims[1] as u64)
            .and_then(|v| v.checked_mul(dims[2] as u64))
            .and_then(|v| v.checked_mul(8))
            .and_then(|v| v.checked_add(HEADER_LEN as u64 + u32::MAX as u64));
        if implied.is_none() {
            return Err(err(format!(
                "invalid MRC header: dimensions {} x {} x {} imply a data size that overflows 64 bits",
                dims[0], dims[1], dims[2]
            )));
        }
        let axis_map = [i(64), i(68), i(72)];
        let mut seen = [false; 3];
        for &a in &axis_map {
            if !(1..=3).contains(&a) || std::mem::replace(&mut seen[(a - 1) as usize], true) {
                return Err(err(format!(
                    "invalid MRC header: axis order MAPC/MAPR/MAPS = {}, {}, {} is not a permutation of 1, 2, 3",
                    axis_map[0], axis_map[1], axis_map[2]
                )));
            }
        }
        let nsymbt = i(92);
        if nsymbt < 0 {
            return Err(err(format!(
                "invalid MRC header: negative extended header size {nsymbt}"
            )));
        }
        let nlabl = i(220).clamp(0, 10) as usize;
        let labels = (0..nlabl)
            .map(|k| {
                let raw = &b[224 + 80 * k..224 + 80 * (k + 1)];
                let end = raw.iter().position(|&c| c == 0).unwrap_or(80);
                String::from_utf8_lossy(&raw[..end]).trim_end().to_string()
            })
            .collect();
        let mxyz = [i(28), i(32), i(36)];
        let cella = [f(40), f(44), f(48)];
        let voxel_size_a = [0, 1, 2].map(|k| {
            if mxyz[k] == 0 || cella[k] == 0.0 || !cella[k].is_finite() {
                0.0
            } else {
                cella[k] / mxyz[k] as f32
            }
        });
        Ok(MrcHeader {
            nx: dims[0] as usize,
            ny: dims[1] as usize,
            nz: dims[2] as usize,
            mode,
            nxstart: [i(16), i(20), i(24)],
            mxyz,
            cella,
            cellb: [f(52), f(56), f(60)],
            axis_map,
            dmin: f(76),
            dmax: f(80),
            dmean: f(84),
            rms: f(216),
            ispg: i(88),
            exttyp: [b[104], b[105], b[106], b[107]],
            nversion: i(108),
            imod_stamp: i(152),
            imod_flags: i(156),
            origin_a: [f(196), f(200), f(204)],
            voxel_size_a,
            has_map_stamp,
            machst,
            little_endian,
            labels,
            ext_header: vec![0; nsymbt as usize], // filled by the reader
        })
    }

    /// Size of the extended header in bytes (NSYMBT).
    pub fn nsymbt(&self) -> usize {
        self.ext_header.len()
    }

    /// The 1024 header bytes, always little-endian with the `MAP ` stamp and MRC2014 layout.
    /// NSYMBT is `ext_header.len()`; labels beyond 10 are dropped, each cut to 80 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let put_i = |b: &mut [u8; HEADER_LEN], off: usize, v: i32| {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes())
        };
        let put_f = |b: &mut [u8; HEADER_LEN], off: usize, v: f32| {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes())
        };
        put_i(&mut b, 0, self.nx as i32);
        put_i(&mut b, 4, self.ny as i32);
        put_i(&mut b, 8, self.nz as i32);
        put_i(&mut b, 12, self.mode);
        for k in 0..3 {
            put_i(&mut b, 16 + 4 * k, self.nxstart[k]);
            put_i(&mut b, 28 + 4 * k, self.mxyz[k]);
            put_f(&mut b, 40 + 4 * k, self.cella[k]);
            put_f(&mut b, 52 + 4 * k, self.cellb[k]);
            put_i(&mut b, 64 + 4 * k, self.axis_map[k]);
            put_f(&mut b, 196 + 4 * k, self.origin_a[k]);
        }
        put_f(&mut b, 76, self.dmin);
        put_f(&mut b, 80, self.dmax);
        put_f(&mut b, 84, self.dmean);
        put_i(&mut b, 88, self.ispg);
        put_i(&mut b, 92, self.ext_header.len() as i32);
        b[104..108].copy_from_slice(&self.exttyp);
        put_i(&mut b, 108, NVERSION);
        put_i(&mut b, 152, self.imod_stamp);
        put_i(&mut b, 156, self.imod_flags);
        b[208..212].copy_from_slice(b"MAP ");
        b[212..216].copy_from_slice(&[0x44, 0x44, 0, 0]);
        put_f(&mut b, 216, self.rms);
        let labels: Vec<&String> = self.labels.iter().take(10).collect();
        put_i(&mut b, 220, labels.len() as i32);
        for (k, l) in labels.iter().enumerate() {
            let bytes = l.as_bytes();
            let n = bytes.len().min(80);
            let start = 224 + 80 * k;
            b[start..start + 80].fill(b' ');
            b[start..start + n].copy_from_slice(&bytes[..n]);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut h = MrcHeader::new([3, 4, 5], 2, [2.0, 2.5, 3.0], [1.0, -2.0, 3.5]);
        h.labels = vec!["capsid test".into(), "second".into()];
        h.dmin = -1.0;
        h.dmax = 2.0;
        h.rms = 0.5;
        let b = h.to_bytes();
        let back = MrcHeader::parse(Path::new("x.mrc"), &b).unwrap();
        assert_eq!(back.shape_zyx(), [3, 4, 5]);
        assert_eq!(back.voxel_size_a, [2.0, 2.5, 3.0]);
        assert_eq!(back.origin_a, [1.0, -2.0, 3.5]);
        assert_eq!(back.labels, h.labels);
        assert_eq!(back.data_type(), Some(DataType::Float32));
        assert!(back.has_map_stamp && back.little_endian);
    }

    #[test]
    fn permuted_shape() {
        let mut h = MrcHeader::new([30, 20, 10], 2, [1.0; 3], [0.0; 3]);
        // Columns along y, rows along x: stored nx=10 is the y extent, ny=20 the x extent.
        h.axis_map = [2, 1, 3];
        assert_eq!(h.shape_zyx(), [30, 10, 20]);
    }
}
