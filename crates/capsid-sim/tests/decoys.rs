//! Unlabelled decoys (`decoy = true`, `scrambled_from`): placed in the tomogram but absent from
//! every label, occupancy and particle file; their positions in decoys.star / decoy_locations.txt.

use capsid_core::ClassTable;
use capsid_io::mrc::read_volume;
use capsid_io::particles::{read_particles, ReadOptions};
use capsid_sim::{ClassSpec, SimConfig};

/// Two labelled classes and two decoys in one small tomogram at 20 Å.
fn config() -> SimConfig {
    let mut cfg = SimConfig::preset("tiny").unwrap();
    cfg.shape_zyx = [40, 80, 80];
    cfg.slab_thickness_vox = 36;
    cfg.classes = vec![
        ClassSpec::builtin("ribosome", 6),
        ClassSpec::builtin("proteasome", 6),
        ClassSpec::scrambled_decoy("ribosome_decoy", "ribosome", 6),
        ClassSpec {
            decoy: true,
            ..ClassSpec::builtin("tric", 4)
        },
    ];
    cfg
}

#[test]
fn decoys_are_placed_but_never_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let cfg = config();
    let summaries = capsid_sim::run(&cfg, out, &mut |_| {}).unwrap();
    assert_eq!(summaries[0].placed, vec![6, 6, 6, 4]);

    let table = ClassTable::load(&out.join("class_table.toml")).unwrap();
    assert_eq!(table.names(), vec!["ribosome", "proteasome"]);
    let decoy_table = ClassTable::load(&out.join("decoy_table.toml")).unwrap();
    assert_eq!(decoy_table.names(), vec!["ribosome_decoy", "tric"]);

    let truth = read_particles(
        &out.join("particle_locations.txt"),
        &ReadOptions {
            classes: Some(table.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(truth.len(), 12);
    let decoys = read_particles(
        &out.join("decoys.star"),
        &ReadOptions {
            classes: Some(decoy_table.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(decoys.len(), 10);
    assert!(decoys
        .iter()
        .all(|d| d.class == "ribosome_decoy" || d.class == "tric"));
    let decoy_txt = std::fs::read_to_string(out.join("decoy_locations.txt")).unwrap();
    assert_eq!(decoy_txt.lines().count(), 10);

    // Labels 0..=2 only, and 0 at every decoy centre; each labelled particle's centre holds its
    // own label, and the occupancy mask numbers the labelled particles in file order.
    let labels = read_volume(&out.join("class_mask.mrc")).unwrap();
    let occ = read_volume(&out.join("occupancy_mask.mrc")).unwrap();
    let at = |v: &capsid_core::Volume<f32>, x: f64, y: f64, z: f64| {
        v.data[[z as usize, y as usize, x as usize]]
    };
    assert!(labels.data.iter().all(|&l| l <= 2.0));
    for d in &decoys {
        assert_eq!(at(&labels, d.x, d.y, d.z), 0.0, "decoy {d:?} is labelled");
        assert_eq!(
            at(&occ, d.x, d.y, d.z),
            0.0,
            "decoy {d:?} is in the occupancy mask"
        );
    }
    // Per occupancy id: the label under its voxels and the centroid of its voxels (hollow
    // particles need not cover their own centre).
    let mut sums = vec![([0.0f64; 3], 0usize, std::collections::BTreeSet::new()); 13];
    for ((z, y, x), &id) in occ.data.indexed_iter() {
        if id > 0.0 {
            let e = &mut sums[id as usize];
            e.0[0] += x as f64;
            e.0[1] += y as f64;
            e.0[2] += z as f64;
            e.1 += 1;
            e.2.insert(labels.data[[z, y, x]] as u8);
        }
    }
    for (i, t) in truth.iter().enumerate() {
        let (sum, n, under) = &sums[i + 1];
        assert!(*n > 0, "{t:?} has no voxel in the occupancy mask");
        let label = table.get(&t.class).unwrap().label;
        assert_eq!(
            under.iter().copied().collect::<Vec<_>>(),
            vec![label],
            "{t:?}"
        );
        let c = [sum[0] / *n as f64, sum[1] / *n as f64, sum[2] / *n as f64];
        let d = ((c[0] - t.x).powi(2) + (c[1] - t.y).powi(2) + (c[2] - t.z).powi(2)).sqrt();
        assert!(d < 3.0, "{t:?}: its voxels centre on {c:?}");
    }
    let max_id = occ.data.iter().cloned().fold(0.0f32, f32::max);
    assert_eq!(max_id, 12.0);

    // The decoys are in the density: the grand model is non-zero at their centres.
    let grand = read_volume(&out.join("grandmodel.mrc")).unwrap();
    for d in &decoys {
        // The largest density within 4 voxels of the centre (hollow particles, e.g. TRiC).
        let mut max = 0.0f32;
        for dz in -4i64..=4 {
            for dy in -4i64..=4 {
                for dx in -4i64..=4 {
                    let (x, y, z) = (d.x as i64 + dx, d.y as i64 + dy, d.z as i64 + dz);
                    if let Some(v) = grand.data.get([z as usize, y as usize, x as usize]) {
                        max = max.max(*v);
                    }
                }
            }
        }
        assert!(max > 0.3, "no density at decoy {d:?}");
    }
}

#[test]
fn hard_preset_pairs_every_target_with_a_decoy() {
    let cfg = SimConfig::preset("hard").unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.voxel_size_a, 10.0);
    assert_eq!(cfg.noise.snr, 0.02);
    assert!(cfg.tomograms >= 4);
    assert!(cfg.shape_zyx[0] >= 128 && cfg.shape_zyx[1] >= 256 && cfg.shape_zyx[2] >= 256);
    let classes = capsid_sim::build_classes(&cfg).unwrap();
    let targets: Vec<_> = classes.iter().filter(|c| !c.decoy).collect();
    assert_eq!(targets.len(), 3);
    for t in &targets {
        let d = classes
            .iter()
            .find(|c| c.decoy && c.name == format!("{}_decoy", t.name))
            .unwrap_or_else(|| panic!("no decoy of {}", t.name));
        let mass = |m: &capsid_sim::ClassModel| m.density.iter().map(|&v| v as f64).sum::<f64>();
        let dm = (mass(d) - mass(t)).abs() / mass(t);
        let dr = (d.radius_a() - t.radius_a()).abs() / t.radius_a();
        assert!(
            dm <= 0.10 && dr <= 0.10,
            "{}: mass {dm}, radius {dr}",
            t.name
        );
    }
    // The tiny class: about 3 voxels in radius.
    let tiny = targets.iter().find(|c| c.name == "globule").unwrap();
    let r = tiny.radius_a() / cfg.voxel_size_a;
    assert!((2.0..=4.0).contains(&r), "tiny radius {r} voxels");
}

#[test]
fn a_decoy_of_an_unknown_or_map_class_is_refused() {
    let mut cfg = config();
    cfg.classes[2].scrambled_from = Some("nope".into());
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("ribosome_decoy") && e.contains("nope"), "{e}");
    let mut cfg = config();
    for c in &mut cfg.classes {
        c.decoy = true;
    }
    assert!(cfg.validate().unwrap_err().to_string().contains("decoy"));
}
