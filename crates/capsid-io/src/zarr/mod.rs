//! Tomograms stored as OME-Zarr (the CZ cryoET Data Portal's and copick's format), read with the
//! `zarrs` crate: Zarr v2 and v3 stores, blosc / zstd / gzip codecs, sharding.
//!
//! A path is either the multiscale group (`wbp.zarr`, read at its first, finest level) or one
//! level's array inside it (`wbp.zarr/1`). The voxel size and origin come from the level's OME
//! `coordinateTransformations` (`scale`, `translation`; in Å when the axes' unit is `angstrom`,
//! converted from nanometres when it is `nanometer`), axes `z, y, x`. Reads go chunk by chunk
//! through `zarrs`, so a band of a tomogram touches only the chunks that hold it.
//!
//! Writing ([`write_ome_zarr`]): label and probability maps as OME-Zarr 0.4 multiscale images
//! (Zarr v2, blosc-lz4, the layout copick and the Data Portal use for segmentations).
//!
//! The readers of [`crate::mrc`] (`read_header`, `read_volume`, `read_block`, …) accept a Zarr
//! path wherever they accept an MRC file and come here; the header they return describes the
//! level read (mode 2, the level's shape, voxel size and origin).

use crate::error::IoError;
use crate::mrc::MrcHeader;
use capsid_core::Volume;
use ndarray::Array3;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

mod write;
pub use write::{level_shapes, write_ome_zarr, Compressor, MapKind, OmeZarrOptions};

/// Whether `path` is a Zarr group or array (a directory holding `zarr.json`, `.zgroup` or
/// `.zarray`).
pub fn is_zarr(path: &Path) -> bool {
    path.is_dir()
        && ["zarr.json", ".zgroup", ".zarray"]
            .iter()
            .any(|f| path.join(f).is_file())
}

/// One multiscale level of an OME-Zarr image.
#[derive(Debug, Clone, PartialEq)]
pub struct ZarrLevel {
    /// The array's path inside the group (`"0"`, `"1"`, …).
    pub path: String,
    /// Shape `[z, y, x]`.
    pub shape_zyx: [usize; 3],
    /// Voxel size `[x, y, z]` in Å.
    pub voxel_size_a: [f32; 3],
    /// Origin `[x, y, z]` in Å.
    pub origin_a: [f32; 3],
}

/// A slab kept for band reads: its first section, its number of sections, its values.
type CachedSlab = Option<(usize, usize, Arc<Array3<f32>>)>;

/// An opened OME-Zarr tomogram at one of its levels.
pub struct ZarrTomogram {
    path: PathBuf,
    /// Every level of the multiscale image, finest first.
    pub levels: Vec<ZarrLevel>,
    /// The index of the level read.
    pub level: usize,
    array: Array<FilesystemStore>,
    /// The last slab read for a band (its first section, its sections, every row): bands of
    /// the same sections (a row of `segment`'s windows) are cut from it, so no chunk is decoded
    /// again for each band. Holds one slab: `nz × y × x` float32 values.
    slab: std::sync::Mutex<CachedSlab>,
}

fn err(path: &Path, what: impl std::fmt::Display) -> IoError {
    IoError::format(path, format!("OME-Zarr: {what}"))
}

/// The OME `multiscales` list of a group's attributes (OME-Zarr 0.4 at top level, 0.5 under
/// `ome`).
fn multiscales(attrs: &serde_json::Map<String, Value>) -> Option<&Vec<Value>> {
    attrs
        .get("multiscales")
        .or_else(|| attrs.get("ome").and_then(|o| o.get("multiscales")))
        .and_then(Value::as_array)
}

/// Å per unit of the axes' `unit` (Å when absent).
fn unit_scale(axes: Option<&Vec<Value>>) -> Result<f64, String> {
    let unit = axes
        .and_then(|a| a.last())
        .and_then(|a| a.get("unit"))
        .and_then(Value::as_str);
    match unit {
        None | Some("angstrom") => Ok(1.0),
        Some("nanometer") => Ok(10.0),
        Some("micrometer") => Ok(1e4),
        Some(u) => Err(format!("unsupported axis unit '{u}' (angstrom, nanometer)")),
    }
}

/// The last three values of a `scale` or `translation` transform as `[x, y, z]` (OME lists
/// them in axis order, `…, z, y, x`).
fn xyz(values: &[Value]) -> Option<[f64; 3]> {
    let n = values.len();
    if n < 3 {
        return None;
    }
    let v = |i: usize| values[n - 1 - i].as_f64();
    Some([v(0)?, v(1)?, v(2)?])
}

/// The levels of the multiscale image of the group at `root`, each with its opened array.
type OpenedLevels = Vec<(ZarrLevel, Array<FilesystemStore>)>;

/// The levels of the multiscale image of the group at `root`, finest first, with their arrays.
fn read_levels(root: &Path, store: &Arc<FilesystemStore>) -> Result<OpenedLevels, IoError> {
    let group = zarrs::group::Group::open(store.clone(), "/").map_err(|e| err(root, e))?;
    let ms = multiscales(group.attributes())
        .and_then(|m| m.first())
        .ok_or_else(|| {
            err(
                root,
                "no OME multiscales metadata in the group's attributes",
            )
        })?;
    let scale = unit_scale(ms.get("axes").and_then(Value::as_array)).map_err(|e| err(root, e))?;
    let datasets = ms
        .get("datasets")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| err(root, "multiscales without datasets"))?;
    let mut levels = Vec::new();
    for d in datasets {
        let path = d
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| err(root, "a dataset without a path"))?
            .to_string();
        let mut voxel = [1.0f64; 3];
        let mut origin = [0.0f64; 3];
        for t in d
            .get("coordinateTransformations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = t.get("type").and_then(Value::as_str);
            let values = t
                .get(if kind == Some("scale") {
                    "scale"
                } else {
                    "translation"
                })
                .and_then(Value::as_array);
            match (kind, values.and_then(|v| xyz(v))) {
                (Some("scale"), Some(v)) => voxel = v,
                (Some("translation"), Some(v)) => origin = v,
                _ => {}
            }
        }
        let array = Array::open(store.clone(), &format!("/{path}"))
            .map_err(|e| err(root, format!("level {path}: {e}")))?;
        let shape = array.shape();
        if shape.len() < 3 || shape[..shape.len() - 3].iter().any(|&n| n != 1) {
            return Err(err(
                root,
                format!("level {path} has shape {shape:?}: a tomogram needs z, y, x"),
            ));
        }
        let s3 = &shape[shape.len() - 3..];
        let level = ZarrLevel {
            path,
            shape_zyx: [s3[0] as usize, s3[1] as usize, s3[2] as usize],
            voxel_size_a: voxel.map(|v| (v * scale) as f32),
            origin_a: origin.map(|v| (v * scale) as f32),
        };
        levels.push((level, array));
    }
    Ok(levels)
}

impl ZarrTomogram {
    /// Opens `path`: a multiscale group (its first level) or one level's array inside one.
    pub fn open(path: &Path) -> Result<Self, IoError> {
        Self::open_level(path, None)
    }

    /// Opens the multiscale group at `path` at the level whose voxel size (along x) is within
    /// 1 % of `voxel_size_a` Å; an error lists the levels there are. A level's array path
    /// (`wbp.zarr/1`) is accepted when its own voxel size matches.
    pub fn open_at_voxel_size(path: &Path, voxel_size_a: f32) -> Result<Self, IoError> {
        Self::open_level(path, Some(voxel_size_a))
    }

    /// [`Self::open`], or with a voxel size [`Self::open_at_voxel_size`]: the levels' arrays
    /// are opened once and the chosen one kept.
    fn open_level(path: &Path, voxel_size_a: Option<f32>) -> Result<Self, IoError> {
        let (root, wanted) = if path.join(".zarray").is_file() || is_array_v3(path) {
            let parent = path
                .parent()
                .filter(|p| is_zarr(p))
                .ok_or_else(|| err(path, "an array outside an OME-Zarr multiscale group"))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (parent.to_path_buf(), Some(name))
        } else {
            (path.to_path_buf(), None)
        };
        let store = Arc::new(FilesystemStore::new(&root).map_err(|e| err(path, e))?);
        let opened = read_levels(&root, &store)?;
        let mut level = match &wanted {
            None => 0,
            Some(name) => opened
                .iter()
                .position(|(l, _)| &l.path == name)
                .ok_or_else(|| err(path, format!("'{name}' is not a level of the image")))?,
        };
        if let Some(want) = voxel_size_a {
            let matches = |l: &ZarrLevel| (l.voxel_size_a[0] / want - 1.0).abs() <= 0.01;
            if !matches(&opened[level].0) {
                let found = opened
                    .iter()
                    .position(|(l, _)| matches(l))
                    .filter(|_| wanted.is_none());
                level = found.ok_or_else(|| {
                    let sizes: Vec<String> = opened
                        .iter()
                        .map(|(l, _)| format!("{} ({} Å)", l.path, l.voxel_size_a[0]))
                        .collect();
                    err(
                        path,
                        format!(
                            "no level at {want} Å {}(levels: {})",
                            if wanted.is_some() { "here " } else { "" },
                            sizes.join(", ")
                        ),
                    )
                })?;
            }
        }
        let (levels, mut arrays): (Vec<_>, Vec<_>) = opened.into_iter().unzip();
        Ok(Self {
            path: path.to_path_buf(),
            levels,
            level,
            array: arrays.swap_remove(level),
            slab: std::sync::Mutex::new(None),
        })
    }

    /// The level read.
    pub fn current(&self) -> &ZarrLevel {
        &self.levels[self.level]
    }

    /// A float32 MRC header describing the level read.
    pub fn header(&self) -> MrcHeader {
        let l = self.current();
        MrcHeader::new(l.shape_zyx, 2, l.voxel_size_a, l.origin_a)
    }

    /// The array's data type and chunk shape, for `capsid info`.
    pub fn describe(&self) -> String {
        let chunks = self
            .array
            .chunk_shape(&vec![0; self.array.dimensionality()])
            .map(|c| format!("{:?}", c.iter().map(|v| v.get()).collect::<Vec<_>>()))
            .unwrap_or_else(|_| "?".into());
        format!("{}, chunks {chunks}", self.array.data_type())
    }

    /// Rows `y0 .. y0 + ny` of sections `z0 .. z0 + nz`, every x, as f32 `[nz, ny, x]`;
    /// NaN / infinite values are an error. A band of some of the rows is cut from the slab of
    /// its sections (every row), read once and kept until a band of other sections is asked
    /// for: `segment` reads a row of windows' bands from one slab (memory: one slab).
    pub fn read_block(
        &self,
        z0: usize,
        nz: usize,
        y0: usize,
        ny: usize,
    ) -> Result<Array3<f32>, IoError> {
        let [sz, sy, sx] = self.current().shape_zyx;
        if nz == 0 || ny == 0 || z0 + nz > sz || y0 + ny > sy {
            return Err(err(
                &self.path,
                format!("block z {z0}..{}, y {y0}..{} is outside the volume ({sz} × {sy} × {sx}, z, y, x)", z0 + nz, y0 + ny),
            ));
        }
        if ny < sy {
            let slab = self.slab(z0, nz)?;
            return Ok(slab.slice(ndarray::s![.., y0..y0 + ny, ..]).to_owned());
        }
        let lead = self.array.dimensionality() - 3;
        let mut ranges: Vec<std::ops::Range<u64>> = vec![0..1; lead];
        ranges.extend([
            z0 as u64..(z0 + nz) as u64,
            y0 as u64..(y0 + ny) as u64,
            0..sx as u64,
        ]);
        let subset = ArraySubset::new_with_ranges(&ranges);
        let values = self.read_f32(&subset)?;
        // Counting vectorises; searching for the first bad value only happens when there is one.
        let bad = values.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            let i = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
            let (z, y, x) = (i / (ny * sx), i / sx % ny, i % sx);
            return Err(err(
                &self.path,
                format!(
                    "{bad} NaN or infinite values (first: {} at x={x}, y={}, z={}); capsid refuses non-finite densities",
                    values[i],
                    y0 + y,
                    z0 + z
                ),
            ));
        }
        Array3::from_shape_vec((nz, ny, sx), values).map_err(|e| err(&self.path, e))
    }

    /// Rows `y0 .. y0 + ny` (every row from `y0` when None) of sections `z0 .. z0 + nz` as a
    /// volume whose origin is moved to the band's first voxel (see
    /// [`crate::mrc::band_origin`]), so Å coordinates stay the tomogram's.
    pub fn read_band(
        &self,
        z0: usize,
        nz: usize,
        y0: usize,
        ny: Option<usize>,
    ) -> Result<Volume<f32>, IoError> {
        let l = self.current();
        let ny = ny.unwrap_or(l.shape_zyx[1].saturating_sub(y0));
        let data = self.read_block(z0, nz, y0, ny)?;
        Ok(Volume {
            data,
            voxel_size_a: l.voxel_size_a,
            origin_a: crate::mrc::band_origin(l.origin_a, l.voxel_size_a, y0, z0),
        })
    }

    /// Sections `z0 .. z0 + nz`, every row, from the slab cache or read (and kept) now.
    fn slab(&self, z0: usize, nz: usize) -> Result<Arc<Array3<f32>>, IoError> {
        let mut cached = self.slab.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c0, cn, slab)) = cached.as_ref() {
            if (*c0, *cn) == (z0, nz) {
                return Ok(slab.clone());
            }
        }
        // Release the previous slab before reading the next one.
        *cached = None;
        let slab = Arc::new(self.read_block(z0, nz, 0, self.current().shape_zyx[1])?);
        *cached = Some((z0, nz, slab.clone()));
        Ok(slab)
    }

    /// The whole level as a volume.
    pub fn read_volume(&self) -> Result<Volume<f32>, IoError> {
        self.read_band(0, self.current().shape_zyx[0], 0, None)
    }

    /// The values of `subset` as f32, whatever the stored numeric type.
    fn read_f32(&self, subset: &ArraySubset) -> Result<Vec<f32>, IoError> {
        retrieve_f32(&self.array, subset, &self.path)
    }
}

/// The values of `subset` of `array` (stored at `path`) as f32, whatever the stored numeric
/// type.
fn retrieve_f32(
    a: &Array<FilesystemStore>,
    subset: &ArraySubset,
    path: &Path,
) -> Result<Vec<f32>, IoError> {
    // Float32 (what tomograms are): decoded straight into the output, with no intermediate
    // buffer of bytes to convert (zarrs' `Vec<f32>` result is such a copy).
    if <f32 as zarrs::array::Element>::validate_data_type(a.data_type()).is_ok() {
        return retrieve_f32_into(a, subset).map_err(|e| err(path, e));
    }
    // The first error (asked as f32) is the one reported when no numeric type fits.
    let first = match a.retrieve_array_subset::<Vec<f32>>(subset) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    macro_rules! as_f32 {
        ($($t:ty => $f:expr),*) => {{
            $(if let Ok(v) = a.retrieve_array_subset::<Vec<$t>>(subset) {
                return Ok(v.into_iter().map($f).collect());
            })*
        }};
    }
    as_f32!(
        half::f16 => |x: half::f16| x.to_f32(),
        i8 => |x: i8| x as f32,
        u8 => |x: u8| x as f32,
        i16 => |x: i16| x as f32,
        u16 => |x: u16| x as f32,
        i32 => |x: i32| x as f32,
        u32 => |x: u32| x as f32,
        f64 => |x: f64| x as f32
    );
    // Not a numeric type capsid reads: report what the array is.
    Err(err(path, first))
}

/// The values of `subset` of a float32 `array`, decoded chunk by chunk (in parallel, by
/// `zarrs`) into one output buffer.
fn retrieve_f32_into(
    a: &Array<FilesystemStore>,
    subset: &ArraySubset,
) -> Result<Vec<f32>, zarrs::array::ArrayError> {
    use zarrs::array::{ArrayBytesDecodeIntoTarget, ArrayBytesFixedDisjointView};
    let shape: Vec<u64> = subset.shape().to_vec();
    let n = usize::try_from(subset.num_elements()).expect("a subset that fits in memory");
    let mut values = vec![0f32; n];
    {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut values);
        let cells = unsafe_cell_slice::UnsafeCellSlice::new(bytes);
        // SAFETY: the view covers the whole buffer, which nothing else touches meanwhile.
        let mut view = unsafe {
            ArrayBytesFixedDisjointView::new(
                cells,
                std::mem::size_of::<f32>(),
                &shape,
                ArraySubset::new_with_shape(shape.clone()),
            )
        }
        .map_err(|e| zarrs::array::ArrayError::Other(e.to_string()))?;
        a.retrieve_array_subset_into(subset, ArrayBytesDecodeIntoTarget::Fixed(&mut view))?;
    }
    Ok(values)
}

/// Whether `path` is a Zarr v3 array (its `zarr.json` says `node_type: array`).
fn is_array_v3(path: &Path) -> bool {
    std::fs::read_to_string(path.join("zarr.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.get("node_type")
                .and_then(Value::as_str)
                .map(|s| s == "array")
        })
        .unwrap_or(false)
}
