//! Writing maps (label maps, probability maps) as OME-Zarr 0.4 multiscale images: a Zarr v2
//! group (`.zgroup`, `.zattrs` with `multiscales`), one array per level (`0`, `1`, …, each
//! half the previous one along every axis), chunks `/`-separated and blosc-lz4 compressed —
//! the layout of the CZ cryoET Data Portal's and copick's segmentations, read by zarr-python,
//! ome-zarr-py, napari and capsid itself.
//!
//! The source is read band by band (one chunk of sections at a time) and every coarser level is
//! made from the level above it the same way, so memory stays near one band whatever the map's
//! size. The image is written into a hidden folder beside `out` and renamed into place.

use super::{err, retrieve_f32, ZarrLevel};
use crate::error::IoError;
use crate::volume_source::VolumeSource;
use ndarray::{Array3, ArrayView3};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;

/// What a map holds: decides the stored type and how coarser levels are made.
#[derive(Debug, Clone, PartialEq)]
pub enum MapKind {
    /// Class labels 0..=255 (0 = background), stored as uint8; coarser levels take every second
    /// voxel (nearest neighbour), so they hold labels too. `classes[k]` names label `k + 1`
    /// (written as OME `image-label` properties). `relabel[v]`, when given, is the value stored
    /// for label `v` (e.g. a copick project's object labels); empty keeps the labels.
    Labels {
        classes: Vec<String>,
        relabel: Vec<u8>,
    },
    /// Continuous values (probabilities), stored as float32, or float16 when the source is an
    /// MRC of mode 12; coarser levels are the mean of 2 × 2 × 2 blocks.
    Values,
}

/// The blosc compressor of the chunks (byte shuffle, level 5 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// blosc-lz4: zarr-python 2's default, what the CZ cryoET Data Portal stores; fast to read.
    BloscLz4,
    /// blosc-zstd: ome-zarr-py's default; smaller, slower to read.
    BloscZstd,
}

impl Compressor {
    /// blosc's `cname`.
    fn cname(self) -> &'static str {
        match self {
            Compressor::BloscLz4 => "lz4",
            Compressor::BloscZstd => "zstd",
        }
    }
}

/// Options of [`write_ome_zarr`].
#[derive(Debug, Clone, PartialEq)]
pub struct OmeZarrOptions {
    /// Chunk side, voxels (chunks are cubes, cut to the level's shape). The portal stores 256³;
    /// capsid writes 64³ by default, since it writes one chunk of sections at a time.
    pub chunk: usize,
    /// The chunks' compressor.
    pub compressor: Compressor,
    /// At most this many levels (level 0 is the source's own sampling).
    pub max_levels: usize,
    /// A coarser level is made only while its smallest side stays at least this many voxels.
    pub min_side: usize,
    /// The image's `name` in its multiscales metadata.
    pub name: String,
    /// Replace an existing `out`.
    pub overwrite: bool,
}

impl Default for OmeZarrOptions {
    fn default() -> Self {
        Self {
            chunk: 64,
            compressor: Compressor::BloscLz4,
            max_levels: 3,
            min_side: 16,
            name: String::new(),
            overwrite: false,
        }
    }
}

/// The shapes `[z, y, x]` of the levels of an image of `shape`: each level half the previous
/// one (rounded up) along every axis, at most `max_levels`, while the smallest side stays at
/// least `min_side` (level 0 always).
pub fn level_shapes(shape: [usize; 3], max_levels: usize, min_side: usize) -> Vec<[usize; 3]> {
    let mut shapes = vec![shape];
    while shapes.len() < max_levels {
        let next = shapes[shapes.len() - 1].map(|n| n.div_ceil(2));
        if next.iter().any(|&n| n < min_side) {
            break;
        }
        shapes.push(next);
    }
    shapes
}

/// Every second voxel of `src` along each axis, starting at the first: `[⌈z/2⌉, ⌈y/2⌉, ⌈x/2⌉]`.
pub fn downsample_nearest(src: ArrayView3<f32>) -> Array3<f32> {
    src.slice(ndarray::s![..;2, ..;2, ..;2]).to_owned()
}

/// The mean of each 2 × 2 × 2 block of `src` (of the voxels that exist at odd edges):
/// `[⌈z/2⌉, ⌈y/2⌉, ⌈x/2⌉]`.
pub fn downsample_mean(src: ArrayView3<f32>) -> Array3<f32> {
    let (nz, ny, nx) = src.dim();
    Array3::from_shape_fn(
        (nz.div_ceil(2), ny.div_ceil(2), nx.div_ceil(2)),
        |(z, y, x)| {
            let block = src.slice(ndarray::s![
                2 * z..(2 * z + 2).min(nz),
                2 * y..(2 * y + 2).min(ny),
                2 * x..(2 * x + 2).min(nx)
            ]);
            block.iter().map(|&v| v as f64).sum::<f64>() as f32 / block.len() as f32
        },
    )
}

/// The stored type of a map.
#[derive(Clone, Copy, PartialEq)]
enum Stored {
    U8,
    F16,
    F32,
}

impl Stored {
    /// The Zarr v2 `dtype`.
    fn dtype(self) -> &'static str {
        match self {
            Stored::U8 => "|u1",
            Stored::F16 => "<f2",
            Stored::F32 => "<f4",
        }
    }
}

/// Writes the map read from `source` as an OME-Zarr multiscale image at `out` (a folder, e.g.
/// `tomo_labels.zarr`) and returns its levels. The source's voxel size and origin become level
/// 0's `scale` and `translation` (axes `z, y, x` in Å); level k has `scale` 2^k times level 0's
/// and a `translation` that puts its voxel centres where they sample the source (the same origin
/// for labels, moved by (2^k − 1) / 2 voxels for block means). A label map holding anything but
/// integers 0..=255 is an error naming the source. An existing `out` is an error unless
/// `opts.overwrite`.
pub fn write_ome_zarr(
    source: &VolumeSource,
    source_path: &Path,
    out: &Path,
    kind: &MapKind,
    opts: &OmeZarrOptions,
) -> Result<Vec<ZarrLevel>, IoError> {
    if out.exists() && !opts.overwrite {
        return Err(IoError::format(
            out,
            "already exists (use --force to replace it)",
        ));
    }
    let h = source.header();
    let stored = match kind {
        MapKind::Labels { .. } => Stored::U8,
        MapKind::Values if h.mode == 12 => Stored::F16,
        MapKind::Values => Stored::F32,
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image.zarr".into());
    let tmp = capsid_core::guard::temp_dir_in(parent, &name).map_err(|e| IoError::io(out, e))?;
    let result = write_into(source, source_path, &tmp, kind, stored, opts).and_then(|levels| {
        capsid_core::guard::mark_complete(&tmp).map_err(|e| err(out, e))?;
        Ok(levels)
    });
    let levels = match result {
        Ok(levels) => levels,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if out.exists() {
        let removed = if out.is_dir() {
            std::fs::remove_dir_all(out)
        } else {
            std::fs::remove_file(out)
        };
        removed.map_err(|e| IoError::io(out, e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| IoError::io(out, e))?;
    Ok(levels)
}

fn write_json(path: &Path, value: &Value) -> Result<(), IoError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| err(path, e))?;
    std::fs::write(path, text).map_err(|e| IoError::io(path, e))
}

/// Writes the group, every level and the metadata into `root`.
fn write_into(
    source: &VolumeSource,
    source_path: &Path,
    root: &Path,
    kind: &MapKind,
    stored: Stored,
    opts: &OmeZarrOptions,
) -> Result<Vec<ZarrLevel>, IoError> {
    let h = source.header();
    let chunk = opts.chunk.max(1);
    let shapes = level_shapes(h.shape_zyx(), opts.max_levels.max(1), opts.min_side);
    std::fs::create_dir_all(root).map_err(|e| IoError::io(root, e))?;
    write_json(&root.join(".zgroup"), &json!({ "zarr_format": 2 }))?;
    let store = Arc::new(FilesystemStore::new(root).map_err(|e| err(root, e))?);
    let mut arrays = Vec::new();
    for (k, shape) in shapes.iter().enumerate() {
        let dir = root.join(k.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| IoError::io(&dir, e))?;
        write_json(
            &dir.join(".zarray"),
            &json!({
                "zarr_format": 2,
                "shape": shape,
                "chunks": shape.map(|n| n.min(chunk)),
                "dtype": stored.dtype(),
                "compressor": {"id": "blosc", "cname": opts.compressor.cname(), "clevel": 5,
                               "shuffle": 1, "blocksize": 0},
                "fill_value": 0,
                "order": "C",
                "filters": null,
                "dimension_separator": "/",
            }),
        )?;
        arrays.push(Array::open(store.clone(), &format!("/{k}")).map_err(|e| err(root, e))?);
    }
    // Level 0 from the source, one chunk of sections at a time.
    let [nz, ny, _] = shapes[0];
    for z0 in (0..nz).step_by(chunk) {
        let n = chunk.min(nz - z0);
        let band = source.read_block(z0, n, 0, ny)?.data;
        let mut band = band;
        if let MapKind::Labels { relabel, .. } = kind {
            if let Some(v) = band
                .iter()
                .find(|v| v.fract() != 0.0 || !(0.0..=255.0).contains(*v))
            {
                return Err(IoError::format(
                    source_path,
                    format!("not a label map: holds the value {v} (labels are integers 0..=255)"),
                ));
            }
            if !relabel.is_empty() {
                if let Some(v) = band.iter().find(|v| **v as usize >= relabel.len()) {
                    return Err(IoError::format(
                        source_path,
                        format!(
                            "label {v} has no new label (labels 0..{} are mapped)",
                            relabel.len() - 1
                        ),
                    ));
                }
                band.mapv_inplace(|v| f32::from(relabel[v as usize]));
            }
        }
        store_band(&arrays[0], root, z0, band.view(), stored)?;
    }
    // Each coarser level from the one above it.
    for k in 1..shapes.len() {
        let [pz, py, px] = shapes[k - 1];
        for z0 in (0..shapes[k][0]).step_by(chunk) {
            let n = chunk.min(shapes[k][0] - z0);
            let (s0, s1) = (2 * z0, (2 * (z0 + n)).min(pz));
            let subset =
                ArraySubset::new_with_ranges(&[s0 as u64..s1 as u64, 0..py as u64, 0..px as u64]);
            let above = retrieve_f32(&arrays[k - 1], &subset, root)?;
            let above =
                Array3::from_shape_vec((s1 - s0, py, px), above).map_err(|e| err(root, e))?;
            let band = match kind {
                MapKind::Labels { .. } => downsample_nearest(above.view()),
                MapKind::Values => downsample_mean(above.view()),
            };
            store_band(&arrays[k], root, z0, band.view(), stored)?;
        }
    }
    let levels: Vec<ZarrLevel> = shapes
        .iter()
        .enumerate()
        .map(|(k, &shape)| {
            let f = (1u32 << k) as f32;
            // Block means are centred between the voxels they average.
            let shift = match kind {
                MapKind::Labels { .. } => 0.0,
                MapKind::Values => (f - 1.0) / 2.0,
            };
            ZarrLevel {
                path: k.to_string(),
                shape_zyx: shape,
                voxel_size_a: h.voxel_size_a.map(|v| v * f),
                origin_a: [0, 1, 2].map(|i| h.origin_a[i] + shift * h.voxel_size_a[i]),
            }
        })
        .collect();
    write_json(&root.join(".zattrs"), &attributes(&levels, kind, opts))?;
    Ok(levels)
}

/// Stores `band` (sections `z0 ..` of the level, every row and column) in `array`.
fn store_band(
    array: &Array<FilesystemStore>,
    root: &Path,
    z0: usize,
    band: ArrayView3<f32>,
    stored: Stored,
) -> Result<(), IoError> {
    let (n, ny, nx) = band.dim();
    let subset =
        ArraySubset::new_with_ranges(&[z0 as u64..(z0 + n) as u64, 0..ny as u64, 0..nx as u64]);
    let values = band.iter().copied();
    let stored_result = match stored {
        Stored::U8 => {
            array.store_array_subset(&subset, values.map(|v| v as u8).collect::<Vec<_>>())
        }
        Stored::F16 => {
            array.store_array_subset(&subset, values.map(half::f16::from_f32).collect::<Vec<_>>())
        }
        Stored::F32 => array.store_array_subset(&subset, values.collect::<Vec<_>>()),
    };
    stored_result.map_err(|e| err(root, e))
}

/// The group's `.zattrs`: OME 0.4 `multiscales` (axes z, y, x in Å, one dataset per level with
/// its scale and translation) and, for label maps, `image-label` naming each class.
fn attributes(levels: &[ZarrLevel], kind: &MapKind, opts: &OmeZarrOptions) -> Value {
    let zyx = |v: [f32; 3]| json!([v[2], v[1], v[0]]);
    let datasets: Vec<Value> = levels
        .iter()
        .map(|l| {
            json!({
                "path": l.path,
                "coordinateTransformations": [
                    {"type": "scale", "scale": zyx(l.voxel_size_a)},
                    {"type": "translation", "translation": zyx(l.origin_a)},
                ],
            })
        })
        .collect();
    let (method, classes) = match kind {
        MapKind::Labels { classes, relabel } => ("nearest", Some((classes, relabel))),
        MapKind::Values => ("mean of 2 × 2 × 2 blocks", None),
    };
    let axes = ["z", "y", "x"].map(|a| json!({"name": a, "type": "space", "unit": "angstrom"}));
    let mut attrs = json!({
        "multiscales": [{
            "version": "0.4",
            "name": opts.name,
            "axes": axes,
            "datasets": datasets,
            "type": method,
            "metadata": {"method": "capsid", "version": env!("CARGO_PKG_VERSION")},
        }]
    });
    if let Some((classes, relabel)) = classes {
        let properties: Vec<Value> = classes
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let value = relabel.get(k + 1).map_or(k + 1, |&v| usize::from(v));
                json!({"label-value": value, "class": c})
            })
            .collect();
        attrs["image-label"] = json!({"version": "0.4", "properties": properties});
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_shapes_halve_rounding_up_and_stop_at_the_smallest_side() {
        assert_eq!(
            level_shapes([40, 70, 33], 3, 16),
            vec![[40, 70, 33], [20, 35, 17]]
        );
        assert_eq!(level_shapes([64, 64, 64], 3, 16).len(), 3);
        assert_eq!(level_shapes([64, 64, 64], 1, 16), vec![[64, 64, 64]]);
        assert_eq!(level_shapes([8, 8, 8], 3, 16), vec![[8, 8, 8]]);
    }

    #[test]
    fn downsampling_by_nearest_and_by_block_mean() {
        let src = Array3::from_shape_fn((3, 2, 3), |(z, y, x)| (z * 100 + y * 10 + x) as f32);
        let near = downsample_nearest(src.view());
        assert_eq!(near.dim(), (2, 1, 2));
        assert_eq!(near[[1, 0, 1]], 202.0);
        let mean = downsample_mean(src.view());
        assert_eq!(mean.dim(), (2, 1, 2));
        // Block z 0..2, y 0..2, x 0..2: mean of z (0, 100), y (0, 10), x (0, 1).
        assert_eq!(mean[[0, 0, 0]], 50.0 + 5.0 + 0.5);
        // Edge block z 2, y 0..2, x 2: mean of 200 + (0, 10) + 2.
        assert_eq!(mean[[1, 0, 1]], 207.0);
    }
}
