//! A whole run written to disk: every output file agrees with the masks and with each other, the
//! class templates turned by the recorded angles match the density placed in the volume, and the
//! same seed gives the same files bit for bit.

use capsid_core::{ClassTable, EulerAngles};
use capsid_io::mrc::read_volume;
use capsid_sim::library::ClassModel;
use capsid_sim::metrics::pearson;
use capsid_sim::SimConfig;
use std::path::Path;

/// The tiny preset made smaller still (2 tomograms of 32×64×64 at 20 Å) so the test runs in a second.
fn small_config(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::preset("tiny").unwrap();
    cfg.shape_zyx = [32, 64, 64];
    cfg.slab_thickness_vox = 30;
    cfg.tomograms = 2;
    cfg.seed = seed;
    cfg.classes[0].count = Some(8);
    cfg.classes[1].count = Some(8);
    cfg.classes[2].count = Some(10);
    cfg.outputs.tilt_series = true;
    cfg.outputs.preview = true;
    cfg
}

struct Line {
    class: String,
    xyz: [usize; 3],
    angles: [f64; 3],
}

fn read_locations(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 7, "{l}");
            Line {
                class: f[0].to_string(),
                xyz: [
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                ],
                angles: [
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                    f[6].parse().unwrap(),
                ],
            }
        })
        .collect()
}

#[test]
fn files_agree_with_masks_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let cfg = small_config(11);
    let summaries = capsid_sim::run(&cfg, out, &mut |_| {}).unwrap();
    assert_eq!(summaries.len(), 2);
    let table = ClassTable::load(&out.join("class_table.toml")).unwrap();
    assert_eq!(table.names(), vec!["ribosome", "rubisco", "globule"]);
    for tomo in ["tomo_000", "tomo_001"] {
        let d = out.join(tomo);
        for f in [
            "reconstruction.mrc",
            "grandmodel.mrc",
            "class_mask.mrc",
            "occupancy_mask.mrc",
            "particles.star",
            "tiltseries.mrc",
            "tiltseries.tlt",
            "preview_xy.png",
            "preview_xz.png",
        ] {
            assert!(d.join(f).is_file(), "{tomo}/{f} missing");
        }
        let lines = read_locations(&d.join("particle_locations.txt"));
        assert!(lines.len() >= 20, "{} particles", lines.len());
        let occ = read_volume(&d.join("occupancy_mask.mrc")).unwrap();
        let cls = read_volume(&d.join("class_mask.mrc")).unwrap();
        let grand = read_volume(&d.join("grandmodel.mrc")).unwrap();
        let rec = read_volume(&d.join("reconstruction.mrc")).unwrap();
        assert_eq!(rec.shape_zyx(), [32, 64, 64]);
        assert_eq!(rec.voxel_size_a, [20.0; 3]);
        // Ids 1..P are exactly the particles listed, each voxel of id i carries i's class label.
        let max_id = occ.data.iter().cloned().fold(0.0f32, f32::max) as usize;
        assert_eq!(max_id, lines.len());
        let mut seen = vec![0usize; lines.len() + 1];
        for (o, c) in occ.data.iter().zip(cls.data.iter()) {
            let id = *o as usize;
            seen[id] += 1;
            if id == 0 {
                assert_eq!(*c, 0.0, "class label outside every particle");
            } else {
                let want = table.get(&lines[id - 1].class).unwrap().label as f32;
                assert_eq!(*c, want, "particle {id}");
            }
        }
        // STAR lines: same order, coordinates and rotation.
        let star = std::fs::read_to_string(d.join("particles.star")).unwrap();
        let rows: Vec<Vec<&str>> = star
            .lines()
            .filter(|l| l.starts_with(tomo))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), lines.len());
        for (i, l) in lines.iter().enumerate() {
            assert!(seen[i + 1] > 0, "particle {} has no voxel", i + 1);
            let [x, y, z] = l.xyz;
            assert_eq!(
                occ.data[[z, y, x]] as usize,
                i + 1,
                "centre of particle {} is not its own voxel",
                i + 1
            );
            let r = &rows[i];
            assert_eq!(
                [r[1], r[2], r[3]].map(|v| v.parse::<f64>().unwrap()),
                [x as f64, y as f64, z as f64]
            );
            assert_eq!(r[8], l.class);
            let rel = EulerAngles::relion(
                r[4].parse().unwrap(),
                r[5].parse().unwrap(),
                r[6].parse().unwrap(),
            );
            let zxz = EulerAngles::zxz(l.angles[0], l.angles[1], l.angles[2]);
            assert!(rel.rotation().angle_to_deg(&zxz.rotation()) < 0.01);
        }
        // The class template (read from the run's templates/) turned by the recorded angles
        // matches the density placed, inside the particle's own mask; a wrong rotation does not.
        let mut tested = 0;
        for (i, l) in lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.class == "ribosome")
        {
            let def = table.get(&l.class).unwrap();
            let tpl = read_volume(def.template.as_ref().unwrap()).unwrap();
            let model = ClassModel::new(&l.class, "file".into(), tpl.data, 20.0, 0.3);
            let rot = EulerAngles::zxz(l.angles[0], l.angles[1], l.angles[2]).rotation();
            let h = model.half() as i64;
            let compare = |turned: &ndarray::Array3<f32>| {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for ((z, y, x), &v) in turned.indexed_iter() {
                    let p = [
                        l.xyz[2] as i64 + z as i64 - h,
                        l.xyz[1] as i64 + y as i64 - h,
                        l.xyz[0] as i64 + x as i64 - h,
                    ];
                    if p.iter()
                        .zip(occ.shape_zyx())
                        .any(|(&c, n)| c < 0 || c >= n as i64)
                    {
                        continue;
                    }
                    let q = [p[0] as usize, p[1] as usize, p[2] as usize];
                    if occ.data[q] as usize == i + 1 {
                        a.push(v);
                        b.push(grand.data[q]);
                    }
                }
                pearson(a, b)
            };
            let right = compare(&model.rotated(&rot));
            let wrong = compare(&model.rotated(&rot.transpose()));
            assert!(
                right > 0.95,
                "particle {}: correlation {right} with the recorded angles",
                i + 1
            );
            assert!(
                wrong < right - 0.2,
                "particle {}: wrong rotation correlates {wrong} vs {right}",
                i + 1
            );
            tested += 1;
        }
        assert!(tested >= 5);
    }
    let tlt = std::fs::read_to_string(out.join("tomo_000/tiltseries.tlt")).unwrap();
    assert_eq!(tlt.lines().count(), 41);
    let cfg_text = std::fs::read_to_string(out.join("simulate_config.toml")).unwrap();
    assert!(cfg_text.contains(capsid_core::VERSION));
    let back = SimConfig::from_toml_str(&cfg_text, &out.join("simulate_config.toml")).unwrap();
    assert_eq!(back.seed, 11);
}

fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn same_seed_same_bytes_other_seed_other_files() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut cfg = small_config(5);
    cfg.tomograms = 1;
    capsid_sim::run(&cfg, a.path(), &mut |_| {}).unwrap();
    capsid_sim::run(&cfg, b.path(), &mut |_| {}).unwrap();
    let (fa, fb) = (all_bytes(a.path()), all_bytes(b.path()));
    assert_eq!(fa.len(), fb.len());
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.0, y.0);
        assert!(
            x.1 == y.1,
            "{} differs between two runs with the same seed",
            x.0
        );
    }
    cfg.seed = 6;
    capsid_sim::run(&cfg, c.path(), &mut |_| {}).unwrap();
    let fc = all_bytes(c.path());
    let rec = |f: &Vec<(String, Vec<u8>)>| {
        f.iter()
            .find(|x| x.0 == "reconstruction.mrc")
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(rec(&fa), rec(&fc));
}
