//! `capsid info`: summarise a volume (MRC header) or a particle list.

use super::convert::{load_classes, tomogram_geometry};
use crate::grammar::parse_shape_xyz;
use anyhow::Context;
use capsid_core::Particle;
use capsid_io::particles::{read_particles, Format, ReadOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `capsid info`.
#[derive(clap::Args)]
#[command(after_help = "\
Volumes (.mrc .rec .map .st .ccp4 .mrcs, also gzipped): shape, mode, voxel size, origin, extended
header, labels and the header's density statistics (--stats computes them from the data).
Particle lists (.star .csv .txt .xml .json): particles per class and per tomogram, coordinate
ranges, angles and scores.

Examples:
  capsid info tomo.mrc
  capsid info tomo.mrc --stats --json
  capsid info particle_locations.txt
  capsid info run_data.star --classes classes.toml --voxel-size 10 \\
      --tomo-shape 630,630,200")]
pub struct Args {
    /// Volume or particle list.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Volumes: compute min, max, mean and RMS from the data (reads the whole volume).
    #[arg(long)]
    pub stats: bool,
    /// Particle lists: format (star, csv, shrec, deepfinder, copick); default: from the extension.
    #[arg(long = "from", value_name = "FMT")]
    pub from: Option<Format>,
    /// Particle lists: class table (TOML) naming numeric classes.
    #[arg(long, value_name = "TOML")]
    pub classes: Option<PathBuf>,
    /// Particle lists: voxel size in Å (copick, RELION 5).
    #[arg(long, value_name = "A")]
    pub voxel_size: Option<f64>,
    /// Particle lists: tomogram shape X,Y,Z in voxels (RELION 5; checks particles lie inside).
    #[arg(long, visible_alias = "shape-xyz", value_name = "X,Y,Z", value_parser = parse_shape_xyz)]
    pub tomo_shape: Option<[usize; 3]>,
}

/// True when the file name looks like a volume (MRC family, optionally gzipped).
pub fn is_volume(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".mrc", ".rec", ".map", ".st", ".ccp4", ".mrcs", ".ali"]
        .iter()
        .any(|e| name.ends_with(e))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let summary = if capsid_io::zarr::is_zarr(&args.file) {
        zarr_info(&args)?
    } else if is_volume(&args.file) {
        volume_info(&args)?
    } else {
        particle_info(&args)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_text(&summary, 0);
    }
    Ok(())
}

/// An `f32` as the `f64` its shortest text gives (0.44825, not 0.4482499957084656).
fn f32_value(v: f32) -> Value {
    json!(format!("{v}").parse::<f64>().unwrap_or(f64::from(v)))
}

fn f32s(v: [f32; 3]) -> Value {
    Value::Array(v.iter().map(|x| f32_value(*x)).collect())
}

fn volume_info(args: &Args) -> anyhow::Result<Value> {
    let h = capsid_io::mrc::read_header(&args.file)?;
    let [z, y, x] = h.shape_zyx();
    let exttyp: String = h
        .exttyp
        .iter()
        .filter(|b| b.is_ascii_graphic())
        .map(|b| *b as char)
        .collect();
    let mut v = json!({
        "file": args.file.display().to_string(),
        "kind": "volume",
        "shape_xyz": [x, y, z],
        "mode": h.mode,
        "data_type": h.data_type().map(|t| format!("{t:?}")).unwrap_or_else(|| "unsupported".into()),
        "voxel_size_a_xyz": f32s(h.voxel_size_a),
        "origin_a_xyz": f32s(h.origin_a),
        "axis_order_mapc_mapr_maps": h.axis_map,
        "space_group": h.ispg,
        "nversion": h.nversion,
        "byte_order": if h.little_endian { "little-endian" } else { "big-endian" },
        "ext_header_bytes": h.ext_header.len(),
        "ext_header_type": exttyp,
        "labels": h.labels,
        "header_stats": {"min": f32_value(h.dmin), "max": f32_value(h.dmax), "mean": f32_value(h.dmean), "rms": f32_value(h.rms)},
    });
    if args.stats {
        let vol = capsid_io::mrc::read_volume(&args.file)?;
        let s = capsid_core::volume::stats(vol.data.iter().map(|v| f64::from(*v)));
        v["data_stats"] = json!({"min": s.min, "max": s.max, "mean": s.mean, "rms": s.rms});
    }
    Ok(v)
}

/// An OME-Zarr tomogram: its levels and the one read (the first, or the level the path names).
fn zarr_info(args: &Args) -> anyhow::Result<Value> {
    let t = capsid_io::zarr::ZarrTomogram::open(&args.file)?;
    let levels: Vec<Value> = t
        .levels
        .iter()
        .map(|l| {
            let [z, y, x] = l.shape_zyx;
            json!({"path": l.path, "shape_xyz": [x, y, z], "voxel_size_a_xyz": f32s(l.voxel_size_a), "origin_a_xyz": f32s(l.origin_a)})
        })
        .collect();
    let l = t.current();
    let [z, y, x] = l.shape_zyx;
    let mut v = json!({
        "file": args.file.display().to_string(),
        "kind": "volume (OME-Zarr)",
        "level": l.path,
        "shape_xyz": [x, y, z],
        "voxel_size_a_xyz": f32s(l.voxel_size_a),
        "origin_a_xyz": f32s(l.origin_a),
        "data_type_and_chunks": t.describe(),
        "levels": levels,
    });
    if args.stats {
        let vol = t.read_volume()?;
        let s = capsid_core::volume::stats(vol.data.iter().map(|v| f64::from(*v)));
        v["data_stats"] = json!({"min": s.min, "max": s.max, "mean": s.mean, "rms": s.rms});
    }
    Ok(v)
}

fn particle_info(args: &Args) -> anyhow::Result<Value> {
    if args.from.is_none() && Format::from_path(&args.file).is_none() {
        anyhow::bail!(
            "{}: not a known volume (.mrc .rec .map .st .ccp4 .mrcs) or particle list (.star .csv .txt .xml .json)",
            args.file.display()
        );
    }
    let (voxel_size_a, tomo_shape_xyz) = tomogram_geometry(args.voxel_size, args.tomo_shape, None)?;
    let opts = ReadOptions {
        format: args.from,
        voxel_size_a,
        tomo_shape_xyz,
        classes: load_classes(args.classes.as_deref())?,
        default_class: Some("unclassified".into()),
        class_numbers_as_names: true,
        allow_empty: true,
        ..Default::default()
    };
    let particles =
        read_particles(&args.file, &opts).with_context(|| "reading the particle list")?;
    let format = Format::resolve(&args.file, args.from)?;
    Ok(particle_summary(&args.file, format, &particles))
}

/// The summary `capsid info` prints for a particle list.
pub fn particle_summary(path: &Path, format: Format, particles: &[Particle]) -> Value {
    let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut tomograms: BTreeMap<&str, usize> = BTreeMap::new();
    for p in particles {
        *classes.entry(&p.class).or_default() += 1;
        *tomograms
            .entry(p.tomogram.as_deref().unwrap_or("(none)"))
            .or_default() += 1;
    }
    let range = |f: &dyn Fn(&Particle) -> Option<f64>| -> Value {
        let vals: Vec<f64> = particles.iter().filter_map(f).collect();
        if vals.is_empty() {
            return Value::Null;
        }
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        json!([min, max])
    };
    let mut conventions: BTreeMap<&str, usize> = BTreeMap::new();
    for a in particles.iter().filter_map(|p| p.angles) {
        *conventions.entry(a.convention.name()).or_default() += 1;
    }
    json!({
        "file": path.display().to_string(),
        "kind": "particle list",
        "format": format.name(),
        "particles": particles.len(),
        "classes": classes,
        "tomograms": tomograms,
        "x_range_vox": range(&|p| Some(p.x)),
        "y_range_vox": range(&|p| Some(p.y)),
        "z_range_vox": range(&|p| Some(p.z)),
        "with_angles": particles.iter().filter(|p| p.angles.is_some()).count(),
        "angle_conventions": conventions,
        "with_score": particles.iter().filter(|p| p.score.is_some()).count(),
        "score_range": range(&|p| p.score),
    })
}

/// The order top-level keys are printed in; others follow alphabetically.
const KEY_ORDER: [&str; 14] = [
    "file",
    "kind",
    "format",
    "particles",
    "classes",
    "tomograms",
    "x_range_vox",
    "y_range_vox",
    "z_range_vox",
    "with_angles",
    "angle_conventions",
    "shape_xyz",
    "mode",
    "data_type",
];

/// Prints a JSON summary as indented `key: value` lines.
fn print_text(v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    if let Value::Object(map) = v {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by_key(|k| {
            KEY_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(KEY_ORDER.len())
        });
        for k in keys {
            let val = &map[k.as_str()];
            match val {
                Value::Object(m) if !m.is_empty() => {
                    println!("{pad}{k}:");
                    print_text(val, indent + 2);
                }
                Value::Array(items) if items.iter().all(|i| i.is_string()) && !items.is_empty() => {
                    println!("{pad}{k}:");
                    for i in items {
                        println!("{pad}  {}", i.as_str().unwrap_or(""));
                    }
                }
                Value::String(s) => println!("{pad}{k}: {s}"),
                Value::Null => println!("{pad}{k}: -"),
                other => println!("{pad}{k}: {other}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        for n in [
            "a.mrc", "A.MRC", "t.rec", "m.map.gz", "s.st", "x.ccp4", "x.mrc.gz",
        ] {
            assert!(is_volume(Path::new(n)), "{n}");
        }
        for n in ["a.star", "b.csv", "c.txt", "gz"] {
            assert!(!is_volume(Path::new(n)), "{n}");
        }
    }
}
