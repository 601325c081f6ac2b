//! The particle-list targets (STAR, CSV, SHREC txt, DeepFinder XML, copick JSON): parse, check
//! and write back in every format, seeded with a few particles written by capsid's writers.

use crate::class_table;
use capsid_core::Particle;
use capsid_io::particles::{self, Format, ReadOptions, WriteOptions};
use std::path::Path;

fn read_opts(format: Format) -> ReadOptions {
    ReadOptions {
        format: Some(format),
        voxel_size_a: Some(10.0),
        tomo_shape_xyz: Some([64, 64, 32]),
        allow_empty: true,
        ..ReadOptions::default()
    }
}

pub(crate) fn run_particles(bytes: &[u8], format: Format) {
    let text = String::from_utf8_lossy(bytes);
    let path = Path::new("fuzz.input");
    for opts in [
        read_opts(format),
        ReadOptions {
            classes: Some(class_table()),
            ..read_opts(format)
        },
        ReadOptions {
            voxel_size_a: None,
            tomo_shape_xyz: None,
            class_numbers_as_names: true,
            ..read_opts(format)
        },
    ] {
        if let Ok(located) = particles::parse_particles(&text, path, format, &opts) {
            if let Ok(ps) = particles::check_particles(path, located, &opts) {
                // Write what was read back in every format (the convert command's path).
                for to in [
                    Format::Star,
                    Format::Csv,
                    Format::ShrecTxt,
                    Format::CopickJson,
                ] {
                    let w = WriteOptions {
                        format: Some(to),
                        voxel_size_a: opts.voxel_size_a,
                        tomo_shape_xyz: opts.tomo_shape_xyz,
                        ..WriteOptions::default()
                    };
                    let _ = particles::render_particles(&ps, path, to, &w);
                }
            }
        }
    }
}

fn seed_particles() -> Vec<Particle> {
    (0..4)
        .map(|i| {
            let mut p = Particle::new(
                if i % 2 == 0 { "ribosome" } else { "rubisco" },
                5.0 + i as f64 * 7.0,
                6.5 + i as f64,
                3.25 * i as f64,
            );
            p.angles = Some(capsid_core::EulerAngles::zxz(10.0 * i as f64, 20.0, 30.0));
            p.score = Some(0.5);
            p.tomogram = Some("tomo_1".into());
            p
        })
        .collect()
}

pub(crate) fn seeds_particles(format: Format) -> Vec<Vec<u8>> {
    let mut ps = seed_particles();
    if format == Format::CopickJson {
        // A copick file holds one class.
        ps.retain(|p| p.class == "ribosome");
    }
    let mut out = Vec::new();
    for star in [
        particles::StarStyle::Relion31,
        particles::StarStyle::Relion5,
        particles::StarStyle::Warp,
    ] {
        if star == particles::StarStyle::Warp && format != Format::Star {
            continue;
        }
        let w = WriteOptions {
            format: Some(format),
            voxel_size_a: Some(10.0),
            tomo_shape_xyz: Some([64, 64, 32]),
            star,
            classes: Some(class_table()),
            ..WriteOptions::default()
        };
        if let Ok(text) = particles::render_particles(&ps, Path::new("seed"), format, &w) {
            out.push(text.into_bytes());
        }
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}
