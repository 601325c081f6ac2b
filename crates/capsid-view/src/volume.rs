//! Volumes for the viewer: plain MRC files are memory-mapped and only the voxels of the planes
//! asked for are decoded; gzip files and files with permuted axes are read into memory once.

use crate::ViewError;
use capsid_io::mrc::{read_header, read_volume_with, DataType, ReadOptions, HEADER_LEN};
use memmap2::Mmap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The axis normal to a displayed plane: `Z` shows an XY plane, `Y` an XZ plane, `X` a YZ plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Z,
    Y,
    X,
}

impl Axis {
    /// `"z"`, `"y"` or `"x"` (also `xy`, `xz`, `yz` for the planes).
    pub fn parse(s: &str) -> Option<Axis> {
        match s {
            "z" | "xy" => Some(Axis::Z),
            "y" | "xz" => Some(Axis::Y),
            "x" | "yz" => Some(Axis::X),
            _ => None,
        }
    }
}

/// Where a volume's voxels live.
enum Store {
    /// The file mapped; voxel data start at `offset`.
    Mapped {
        map: Mmap,
        offset: usize,
        dtype: DataType,
        little: bool,
    },
    /// Decoded `[z][y][x]` values (gzip or permuted-axis files).
    Memory(Vec<f32>),
}

/// One volume that the viewer may show: shape, voxel size and on-demand planes.
pub struct MappedVolume {
    pub path: PathBuf,
    pub nx: usize,
    pub ny: usize,
    pub nz: usize,
    /// Voxel size in Å (x axis; 0 when the header gives none).
    pub voxel_size_a: f64,
    store: Store,
}

fn is_gzip(path: &Path) -> Result<bool, ViewError> {
    let mut f = File::open(path).map_err(|e| ViewError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| ViewError::io(path, e))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

impl MappedVolume {
    /// Opens `path` (any MRC capsid-io reads). Plain files with the standard axis order are
    /// memory-mapped; others are decoded into memory.
    pub fn open(path: &Path) -> Result<MappedVolume, ViewError> {
        let h = read_header(path)?;
        let [nz, ny, nx] = h.shape_zyx();
        let voxel_size_a = h.voxel_size_a[0] as f64;
        let store = if !is_gzip(path)? && h.is_standard_axis_order() {
            let dtype = h.data_type().ok_or_else(|| {
                ViewError::Invalid(format!("{}: unsupported MRC mode", path.display()))
            })?;
            let file = File::open(path).map_err(|e| ViewError::io(path, e))?;
            // SAFETY: the file is only read; capsid never writes inputs in place (outputs are
            // renamed over), so the mapping stays valid for the viewer's lifetime.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| ViewError::io(path, e))?;
            let offset = HEADER_LEN + h.nsymbt();
            if map.len() < offset + nx * ny * nz * dtype.bytes() {
                return Err(ViewError::Invalid(format!(
                    "{}: truncated MRC file",
                    path.display()
                )));
            }
            Store::Mapped {
                map,
                offset,
                dtype,
                little: h.little_endian,
            }
        } else {
            let v = read_volume_with(
                path,
                ReadOptions {
                    allow_non_finite: true,
                },
            )?;
            Store::Memory(v.data.as_standard_layout().iter().copied().collect())
        };
        Ok(MappedVolume {
            path: path.to_path_buf(),
            nx,
            ny,
            nz,
            voxel_size_a,
            store,
        })
    }

    /// Shape `[x, y, z]`.
    pub fn shape_xyz(&self) -> [usize; 3] {
        [self.nx, self.ny, self.nz]
    }

    /// Whether the voxels are read from a memory map (else they were decoded into memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.store, Store::Mapped { .. })
    }

    /// Number of slices along `axis`.
    pub fn len_along(&self, axis: Axis) -> usize {
        match axis {
            Axis::Z => self.nz,
            Axis::Y => self.ny,
            Axis::X => self.nx,
        }
    }

    /// Width and height of planes normal to `axis`: XY is nx × ny, XZ nx × nz, YZ ny × nz.
    pub fn plane_dims(&self, axis: Axis) -> (usize, usize) {
        match axis {
            Axis::Z => (self.nx, self.ny),
            Axis::Y => (self.nx, self.nz),
            Axis::X => (self.ny, self.nz),
        }
    }

    /// Decodes `out.len()` consecutive voxels of row (z, y) from column `x0`.
    pub fn read_row(&self, z: usize, y: usize, x0: usize, out: &mut [f32]) {
        let start = (z * self.ny + y) * self.nx + x0;
        match &self.store {
            Store::Memory(v) => out.copy_from_slice(&v[start..start + out.len()]),
            Store::Mapped {
                map,
                offset,
                dtype,
                little,
            } => {
                let b = dtype.bytes();
                let bytes = &map[offset + start * b..offset + (start + out.len()) * b];
                decode(*dtype, *little, bytes, out);
            }
        }
    }

    /// Adds the plane normal to `axis` at `index` into `acc` (length w × h, row-major).
    pub fn add_plane(&self, axis: Axis, index: usize, acc: &mut [f32], row: &mut Vec<f32>) {
        let (w, h) = self.plane_dims(axis);
        debug_assert_eq!(acc.len(), w * h);
        match axis {
            Axis::Z => {
                row.resize(self.nx, 0.0);
                for y in 0..self.ny {
                    self.read_row(index, y, 0, row);
                    add_into(&mut acc[y * w..(y + 1) * w], row);
                }
            }
            Axis::Y => {
                row.resize(self.nx, 0.0);
                for z in 0..self.nz {
                    self.read_row(z, index, 0, row);
                    add_into(&mut acc[z * w..(z + 1) * w], row);
                }
            }
            Axis::X => {
                let mut one = [0f32; 1];
                for z in 0..self.nz {
                    for y in 0..self.ny {
                        self.read_row(z, y, index, &mut one);
                        acc[z * w + y] += one[0];
                    }
                }
            }
        }
    }

    /// The plane normal to `axis` at `index`, averaged over `slab` neighbouring planes (centred on
    /// `index`, clipped at the volume's faces). Returns (width, height, values).
    pub fn plane(&self, axis: Axis, index: usize, slab: usize) -> (usize, usize, Vec<f32>) {
        let (w, h) = self.plane_dims(axis);
        let n = self.len_along(axis);
        let index = index.min(n.saturating_sub(1));
        let slab = slab.clamp(1, n.max(1));
        let lo = index.saturating_sub((slab - 1) / 2);
        let hi = (lo + slab).min(n);
        let mut acc = vec![0f32; w * h];
        let mut row = Vec::new();
        for i in lo..hi {
            self.add_plane(axis, i, &mut acc, &mut row);
        }
        let k = (hi - lo) as f32;
        if k > 1.0 {
            acc.iter_mut().for_each(|v| *v /= k);
        }
        (w, h, acc)
    }

    /// The voxel value at (x, y, z) (no bounds check beyond the store's).
    pub fn value(&self, x: usize, y: usize, z: usize) -> f32 {
        let mut one = [0f32; 1];
        self.read_row(z, y, x, &mut one);
        one[0]
    }
}

fn add_into(acc: &mut [f32], row: &[f32]) {
    for (a, r) in acc.iter_mut().zip(row) {
        *a += if r.is_finite() { *r } else { 0.0 };
    }
}

/// Decodes voxels of type `t` in byte order `little` into f32 (capsid-io's MRC decoding).
fn decode(t: DataType, little: bool, bytes: &[u8], out: &mut [f32]) {
    capsid_io::mrc::decode_voxels(t, little, bytes, out);
}

#[cfg(test)]
mod tests {
    use super::DataType;

    /// One little-endian float16 voxel decoded as the viewer does.
    fn f16_to_f32(h: u16) -> f32 {
        let mut out = [0f32];
        super::decode(DataType::Float16, true, &h.to_le_bytes(), &mut out);
        out[0]
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0), 0.0);
    }
}
