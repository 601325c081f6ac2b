//! [`Volume`]: a 3D array `[z, y, x]` (x fastest) with voxel size and origin in Å.

use ndarray::Array3;

/// A tomogram, label map, probability map or density in memory.
///
/// * `data` is indexed `[z, y, x]`; x is the fastest-varying axis, as in MRC files.
/// * `voxel_size_a` is `[x, y, z]` in Å per voxel (0 when unknown, as some files say).
/// * `origin_a` is `[x, y, z]` in Å: the position of the centre of voxel 0, as in the MRC header's
///   ORIGIN field.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T = f32> {
    /// Voxel values, `[z, y, x]`.
    pub data: Array3<T>,
    /// Voxel size `[x, y, z]` in Å.
    pub voxel_size_a: [f32; 3],
    /// Origin `[x, y, z]` in Å.
    pub origin_a: [f32; 3],
}

impl<T> Volume<T> {
    /// Wraps an array `[z, y, x]` with an isotropic voxel size in Å and a zero origin.
    pub fn new(data: Array3<T>, voxel_size_a: f32) -> Self {
        Self {
            data,
            voxel_size_a: [voxel_size_a; 3],
            origin_a: [0.0; 3],
        }
    }

    /// Shape as `[z, y, x]`.
    pub fn shape_zyx(&self) -> [usize; 3] {
        let s = self.data.shape();
        [s[0], s[1], s[2]]
    }

    /// Shape as `[x, y, z]` (the order MRC headers and particle files use).
    pub fn shape_xyz(&self) -> [usize; 3] {
        let [z, y, x] = self.shape_zyx();
        [x, y, z]
    }

    /// The voxel size in Å along x (the value used where one isotropic size is needed).
    pub fn voxel_size(&self) -> f32 {
        self.voxel_size_a[0]
    }

    /// Same voxel size and origin, other data.
    pub fn with_data<U>(&self, data: Array3<U>) -> Volume<U> {
        Volume {
            data,
            voxel_size_a: self.voxel_size_a,
            origin_a: self.origin_a,
        }
    }

    /// True when the point `(x, y, z)` in voxels lies inside the volume (voxel centres at integers,
    /// so valid coordinates are `-0.5 ..< n - 0.5` on each axis).
    pub fn contains_xyz(&self, x: f64, y: f64, z: f64) -> bool {
        let [nx, ny, nz] = self.shape_xyz();
        let inside = |v: f64, n: usize| v >= -0.5 && v < n as f64 - 0.5;
        inside(x, nx) && inside(y, ny) && inside(z, nz)
    }
}

/// The limit set by [`set_max_volume_bytes`] (0: none set).
static MAX_VOLUME_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sets the most bytes one volume may take in memory for this process (`None` or 0: this
/// machine's RAM plus swap). The CLI sets it from `--max-volume-bytes`
/// (env `CAPSID_MAX_VOLUME_BYTES`).
pub fn set_max_volume_bytes(bytes: Option<u64>) {
    MAX_VOLUME_BYTES.store(bytes.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
}

/// The most bytes one volume may take in memory: the limit given to [`set_max_volume_bytes`], or
/// else this machine's RAM plus swap (from `/proc/meminfo`; 1 TiB where that is unknown).
pub fn max_volume_bytes() -> u64 {
    let set = MAX_VOLUME_BYTES.load(std::sync::atomic::Ordering::Relaxed);
    if set > 0 {
        return set;
    }
    let from_meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        let kib = |key: &str| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        Some(kib("MemTotal:")?.saturating_add(kib("SwapTotal:").unwrap_or(0)) * 1024)
    });
    from_meminfo.unwrap_or(1 << 40)
}

/// The one "too large" check every volume allocation goes through: the number of voxels of
/// `shape_zyx` (checked multiplication) times `bytes_per_voxel` must fit in memory
/// ([`max_volume_bytes`]). Returns the voxel count. `what` names the file or option the shape
/// comes from (empty: no prefix).
pub fn check_volume_size(
    what: &str,
    shape_zyx: [usize; 3],
    bytes_per_voxel: usize,
) -> Result<usize, crate::CoreError> {
    let [z, y, x] = shape_zyx;
    let voxels = (x as u64)
        .checked_mul(y as u64)
        .and_then(|v| v.checked_mul(z as u64));
    let bytes = voxels.and_then(|v| v.checked_mul(bytes_per_voxel.max(1) as u64));
    let limit = max_volume_bytes();
    match (voxels, bytes) {
        (Some(v), Some(b)) if b <= limit && usize::try_from(b).is_ok() => Ok(v as usize),
        _ => Err(crate::CoreError::Invalid(format!(
            "{}a volume of {x} x {y} x {z} voxels (x × y × z) needs {} of memory, more than \
             this machine has ({:.1} GiB)",
            if what.is_empty() {
                String::new()
            } else {
                format!("{what}: ")
            },
            match bytes {
                Some(b) => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
                None => "more than 2^64 bytes".to_string(),
            },
            limit as f64 / (1u64 << 30) as f64
        ))),
    }
}

/// Summary statistics of a volume's values, as the MRC header records them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Root-mean-square deviation from the mean (the MRC header's RMS field).
    pub rms: f64,
}

/// Min, max, mean and RMS deviation of `values` (f64 accumulation). Empty input gives zeros.
pub fn stats<I: IntoIterator<Item = f64>>(values: I) -> Stats {
    let (mut n, mut sum, mut sum2) = (0u64, 0.0f64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        n += 1;
        sum += v;
        sum2 += v * v;
        min = min.min(v);
        max = max.max(v);
    }
    if n == 0 {
        return Stats {
            min: 0.0,
            max: 0.0,
            mean: 0.0,
            rms: 0.0,
        };
    }
    let mean = sum / n as f64;
    let var = (sum2 / n as f64 - mean * mean).max(0.0);
    Stats {
        min,
        max,
        mean,
        rms: var.sqrt(),
    }
}

/// The label a float voxel of a label map shows, for display: the nearest integer clamped to
/// 0..=255, 0 for NaN and infinities. (Stages that compute with label maps read them strictly instead: capsid-io's
/// `mrc::read_label_map`.)
pub fn display_label(v: f32) -> u8 {
    if v.is_finite() {
        v.round().clamp(0.0, 255.0) as u8
    } else {
        0
    }
}

/// Trilinear sample at `(x, y, z)` (voxel units, voxel centres at integers) of `data`, a
/// standard-layout volume of shape `[nz, ny, nx]` (x fastest); 0 outside (neighbours beyond a
/// face count as 0, so values fade to 0 within one voxel of the faces).
#[inline]
pub fn trilinear(data: &[f32], shape_zyx: [usize; 3], x: f64, y: f64, z: f64) -> f32 {
    let [nz, ny, nx] = shape_zyx;
    let (x0, y0, z0) = (x.floor(), y.floor(), z.floor());
    let (fx, fy, fz) = ((x - x0) as f32, (y - y0) as f32, (z - z0) as f32);
    let (x0, y0, z0) = (x0 as i64, y0 as i64, z0 as i64);
    if x0 < -1 || y0 < -1 || z0 < -1 || x0 >= nx as i64 || y0 >= ny as i64 || z0 >= nz as i64 {
        return 0.0;
    }
    let get = |zz: i64, yy: i64, xx: i64| -> f32 {
        if zz < 0 || yy < 0 || xx < 0 || zz >= nz as i64 || yy >= ny as i64 || xx >= nx as i64 {
            0.0
        } else {
            data[(zz as usize * ny + yy as usize) * nx + xx as usize]
        }
    };
    let c00 = get(z0, y0, x0) * (1.0 - fx) + get(z0, y0, x0 + 1) * fx;
    let c01 = get(z0, y0 + 1, x0) * (1.0 - fx) + get(z0, y0 + 1, x0 + 1) * fx;
    let c10 = get(z0 + 1, y0, x0) * (1.0 - fx) + get(z0 + 1, y0, x0 + 1) * fx;
    let c11 = get(z0 + 1, y0 + 1, x0) * (1.0 - fx) + get(z0 + 1, y0 + 1, x0 + 1) * fx;
    let c0 = c00 * (1.0 - fy) + c01 * fy;
    let c1 = c10 * (1.0 - fy) + c11 * fy;
    c0 * (1.0 - fz) + c1 * fz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_orders() {
        let v = Volume::new(Array3::<f32>::zeros((4, 5, 6)), 10.0);
        assert_eq!(v.shape_zyx(), [4, 5, 6]);
        assert_eq!(v.shape_xyz(), [6, 5, 4]);
        assert!(v.contains_xyz(5.4, 4.0, 3.0));
        assert!(!v.contains_xyz(5.6, 4.0, 3.0));
        assert!(!v.contains_xyz(0.0, -0.6, 0.0));
    }

    #[test]
    fn too_large_volumes_refused() {
        assert!(check_volume_size("x", [100_000; 3], 4).is_err());
        assert!(check_volume_size("x", [usize::MAX, 2, 2], 1).is_err());
        assert_eq!(check_volume_size("x", [2, 3, 4], 4).unwrap(), 24);
    }

    #[test]
    fn stats_of_values() {
        let s = stats([1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 4.0);
        assert!((s.mean - 2.5).abs() < 1e-12);
        assert!((s.rms - 1.25f64.sqrt()).abs() < 1e-12);
    }
}
