//! Training data: patch sampling, split, augmentation, labels from particles.

use capsid_core::{ClassDef, ClassTable, Particle, Volume};
use capsid_nn::data::*;
use ndarray::Array3;
use std::collections::HashSet;

fn table() -> ClassTable {
    let c = |name: &str, label: u8, r: f64| ClassDef {
        name: name.into(),
        label,
        radius_a: None,
        radius_vox: Some(r),
        template: None,
        symmetry: None,
    };
    ClassTable {
        classes: vec![
            c("ribosome", 1, 4.0),
            c("proteasome", 2, 3.0),
            c("tiny", 3, 2.0),
        ],
    }
}

/// A tomogram whose voxel values encode their position, with particles of three classes.
fn tomo(shape: [usize; 3], seed: usize) -> (Volume<f32>, Vec<Particle>) {
    let data = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        ((z * 7919 + y * 104729 + x * 31 + seed) % 1000) as f32
    });
    let mut parts = Vec::new();
    let names = ["ribosome", "proteasome", "tiny"];
    for i in 0..12 {
        let x = (5 + (i * 13) % (shape[2] - 10)) as f64;
        let y = (5 + (i * 7) % (shape[1] - 10)) as f64;
        let z = (5 + (i * 11) % (shape[0] - 10)) as f64;
        parts.push(Particle::new(names[i % 3], x, y, z));
    }
    (Volume::new(data, 10.0), parts)
}

fn samples() -> Vec<TrainSample> {
    (0..3)
        .map(|k| {
            let (v, p) = tomo([40, 48, 56], k);
            make_sample(
                &format!("t{k}"),
                v,
                &p,
                None,
                &table(),
                &["proteasome".into(), "ribosome".into()],
                1.0,
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn labels_from_particles_remap_targets_in_given_order() {
    let s = &samples()[0];
    // proteasome → 1, ribosome → 2, tiny → background.
    assert_eq!(s.particles.len(), 8);
    let (_, parts) = tomo([40, 48, 56], 0);
    for p in &parts {
        let l = s.labels[[p.z as usize, p.y as usize, p.x as usize]];
        let want = match p.class.as_str() {
            "proteasome" => 1,
            "ribosome" => 2,
            _ => 0,
        };
        assert_eq!(l, want, "{}", p.class);
    }
    assert!(s.labels.iter().all(|&l| l <= 2));
    // A given label map is remapped the same way.
    let map = Array3::from_elem((40, 48, 56), 3u8);
    let (v, p) = tomo([40, 48, 56], 0);
    let m = make_sample("m", v, &p, Some(map), &table(), &["tiny".into()], 1.0).unwrap();
    assert!(m.labels.iter().all(|&l| l == 1));
    // Unknown target and mismatched label map shape are errors naming the problem.
    let (v, p) = tomo([40, 48, 56], 0);
    let e = make_sample("m", v, &p, None, &table(), &["nope".into()], 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let (v, p) = tomo([40, 48, 56], 0);
    let e = make_sample(
        "m",
        v,
        &p,
        Some(Array3::zeros((2, 2, 2))),
        &table(),
        &[],
        1.0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("shape"), "{e}");
}

#[test]
fn same_seed_same_patches_other_seed_other_patches() {
    let s = samples();
    let cfg = DataConfig {
        patch: 16,
        max_shift: 4,
        background_ratio: 0.3,
        augment: true,
        ..DataConfig::default()
    };
    let sp = split(&s, &cfg, 7);
    let a = training_patches(&s, &sp, &cfg, 8, 7, 3);
    assert_eq!(a, training_patches(&s, &sp, &cfg, 8, 7, 3));
    assert_ne!(a, training_patches(&s, &sp, &cfg, 8, 8, 3));
    assert_ne!(a, training_patches(&s, &sp, &cfg, 8, 7, 4));
    let b1 = make_batch(&s, &a, 16, 3);
    let b2 = make_batch(&s, &training_patches(&s, &sp, &cfg, 8, 7, 3), 16, 3);
    assert_eq!(b1, b2);
    assert_eq!(b1.x.len(), 8 * 16 * 16 * 16);
    assert_eq!(b1.y.len(), 8 * 16 * 16 * 16);
}

#[test]
fn particle_patches_are_centred_within_the_shift() {
    let s = samples();
    let cfg = DataConfig {
        patch: 16,
        max_shift: 3,
        background_ratio: 0.0,
        ..DataConfig::default()
    };
    let sp = split(&s, &cfg, 1);
    let mut shifts = HashSet::new();
    for step in 0..40 {
        for spec in training_patches(&s, &sp, &cfg, 4, 1, step) {
            let sample = &s[spec.sample];
            let shape = sample.tomogram.shape_zyx();
            // Some particle must sit within patch/2 ± max_shift of the corner, unless clamped at a
            // border (then the patch lies flush with it).
            let ok = sample.particles.iter().any(|p| {
                let c = [p.center_xyz[2], p.center_xyz[1], p.center_xyz[0]];
                (0..3).all(|ax| {
                    let off = c[ax].round() as isize - spec.corner_zyx[ax];
                    let centred = (off - 8).abs() <= 3;
                    let clamped =
                        spec.corner_zyx[ax] == 0 || spec.corner_zyx[ax] as usize == shape[ax] - 16;
                    centred || (clamped && (0..16).contains(&off))
                })
            });
            assert!(ok, "{spec:?}");
            for (&c, &n) in spec.corner_zyx.iter().zip(shape.iter()) {
                assert!(c >= 0 && c as usize + 16 <= n);
            }
            // Record the shift seen relative to the nearest particle.
            let p = sample
                .particles
                .iter()
                .min_by_key(|p| {
                    let c = [p.center_xyz[2], p.center_xyz[1], p.center_xyz[0]];
                    (0..3)
                        .map(|ax| (c[ax].round() as isize - 8 - spec.corner_zyx[ax]).abs())
                        .sum::<isize>()
                })
                .unwrap();
            shifts.insert(p.center_xyz[0].round() as isize - 8 - spec.corner_zyx[2]);
        }
    }
    // The shift is random, not fixed.
    assert!(shifts.len() >= 4, "{shifts:?}");
}

#[test]
fn background_ratio_is_respected() {
    let s = samples();
    // Background patches: a ratio of 0 gives none; 0.5 gives about half. A particle patch with
    // max_shift 0 has its corner at particle - patch/2 (or flush with a border).
    let is_particle_patch = |spec: &PatchSpec| {
        let shape = s[spec.sample].tomogram.shape_zyx();
        s[spec.sample].particles.iter().any(|p| {
            let c = [p.center_xyz[2], p.center_xyz[1], p.center_xyz[0]];
            (0..3).all(|ax| {
                let want = (c[ax].round() as isize - 8).clamp(0, shape[ax] as isize - 16);
                spec.corner_zyx[ax] == want
            })
        })
    };
    for (ratio, lo, hi) in [(0.0, 1.0, 1.0), (0.5, 0.4, 0.6), (0.9, 0.03, 0.2)] {
        let cfg = DataConfig {
            patch: 16,
            max_shift: 0,
            background_ratio: ratio,
            ..DataConfig::default()
        };
        let sp = split(&s, &cfg, 3);
        let specs: Vec<PatchSpec> = (0..100)
            .flat_map(|st| training_patches(&s, &sp, &cfg, 8, 3, st))
            .collect();
        let frac =
            specs.iter().filter(|p| is_particle_patch(p)).count() as f64 / specs.len() as f64;
        assert!(
            frac >= lo && frac <= hi,
            "ratio {ratio}: particle fraction {frac}"
        );
    }
}

#[test]
fn kfold_split_is_disjoint_and_covers() {
    let s = samples();
    let all: HashSet<(usize, usize)> = s
        .iter()
        .enumerate()
        .flat_map(|(k, t)| (0..t.particles.len()).map(move |i| (k, i)))
        .collect();
    let mut seen_val = HashSet::new();
    for fold in 0..6 {
        let cfg = DataConfig {
            folds: 6,
            val_fold: fold,
            ..DataConfig::default()
        };
        let sp = split(&s, &cfg, 11);
        let tr: HashSet<_> = sp.train_particles.iter().copied().collect();
        let va: HashSet<_> = sp.val_particles.iter().copied().collect();
        assert!(tr.is_disjoint(&va));
        assert_eq!(tr.union(&va).copied().collect::<HashSet<_>>(), all);
        assert!(
            seen_val.is_disjoint(&va),
            "a particle validates in two folds"
        );
        seen_val.extend(va);
    }
    assert_eq!(seen_val, all);
    // By tomogram: whole tomograms go to validation.
    let cfg = DataConfig {
        folds: 3,
        val_fold: 1,
        split_by: SplitBy::Tomogram,
        ..DataConfig::default()
    };
    let sp = split(&s, &cfg, 11);
    assert_eq!(sp.val_samples.len(), 1);
    assert!(sp
        .val_particles
        .iter()
        .all(|(k, _)| sp.val_samples.contains(k)));
    assert!(sp
        .train_particles
        .iter()
        .all(|(k, _)| !sp.val_samples.contains(k)));
    assert!(sp.train_samples.iter().all(|k| !sp.val_samples.contains(k)));
    // One fold: no validation.
    let sp = split(
        &s,
        &DataConfig {
            folds: 1,
            ..DataConfig::default()
        },
        11,
    );
    assert!(sp.val_particles.is_empty());
    assert_eq!(sp.train_particles.len(), all.len());
    // Validation patches are fixed by the seed and never augmented.
    let cfg = DataConfig {
        patch: 16,
        augment: true,
        ..DataConfig::default()
    };
    let sp = split(&s, &cfg, 5);
    let v = validation_patches(&s, &sp, &cfg, 5);
    assert_eq!(v, validation_patches(&s, &sp, &cfg, 5));
    assert!(v.iter().all(|p| p.augment == Augment::NONE));
    assert_eq!(v.len(), sp.val_particles.len());
}

#[test]
fn augmentation_keeps_volume_and_labels_aligned_and_is_off_when_disabled() {
    let s = samples();
    // With augmentation off, every patch is untransformed.
    let cfg = DataConfig {
        patch: 16,
        max_shift: 2,
        background_ratio: 0.2,
        ..DataConfig::default()
    };
    let sp = split(&s, &cfg, 2);
    assert!((0..20)
        .flat_map(|st| training_patches(&s, &sp, &cfg, 4, 2, st))
        .all(|p| p.augment == Augment::NONE));
    // With it on, transforms occur, and a transformed patch equals the transform of the plain one
    // for both the volume and the labels.
    let cfg = DataConfig {
        augment: true,
        rot90_z: true,
        ..cfg
    };
    let specs: Vec<PatchSpec> = (0..20)
        .flat_map(|st| training_patches(&s, &sp, &cfg, 4, 2, st))
        .collect();
    assert!(specs.iter().any(|p| p.augment != Augment::NONE));
    assert!(specs.iter().any(|p| p.augment.rot90_z != 0));
    for spec in specs.iter().take(12) {
        let plain = PatchSpec {
            augment: Augment::NONE,
            ..*spec
        };
        let (x0, y0) = extract_patch(&s[spec.sample], &plain, 16);
        let (x1, y1) = extract_patch(&s[spec.sample], spec, 16);
        assert_eq!(x1, spec.augment.apply(x0.clone()));
        assert_eq!(y1, spec.augment.apply(y0.clone()));
        // Each (value, label) pair of the plain patch is still there after the transform.
        let mut a: Vec<(u32, u8)> = x0
            .iter()
            .zip(y0.iter())
            .map(|(v, l)| (v.to_bits(), *l))
            .collect();
        let mut b: Vec<(u32, u8)> = x1
            .iter()
            .zip(y1.iter())
            .map(|(v, l)| (v.to_bits(), *l))
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}

#[test]
fn patches_near_borders_and_small_tomograms_are_padded() {
    let (v, p) = tomo([12, 20, 20], 0);
    let p: Vec<Particle> = p
        .into_iter()
        .filter(|q| v.contains_xyz(q.x, q.y, q.z))
        .collect();
    let s = vec![make_sample("small", v, &p, None, &table(), &[], 1.0).unwrap()];
    let cfg = DataConfig {
        patch: 16,
        max_shift: 2,
        background_ratio: 0.5,
        ..DataConfig::default()
    };
    let sp = split(
        &s,
        &DataConfig {
            folds: 1,
            ..cfg.clone()
        },
        0,
    );
    let specs = training_patches(&s, &sp, &cfg, 6, 0, 0);
    let b = make_batch(&s, &specs, 16, 0);
    assert!(b.x.iter().all(|v| v.is_finite()));
    // z is 12 < 16: 4 padded slices per patch, all zero in the normalised data and labels.
    for k in 0..specs.len() {
        let x = &b.x[k * 4096..(k + 1) * 4096];
        assert!(x[12 * 256..].iter().all(|&v| v == 0.0));
    }
}

/// The corner a patch centred (shift 0) on `c = [x, y, z]` gets, `[z, y, x]`.
fn corner_of(c: [f64; 3], patch: usize, shape: [usize; 3]) -> [isize; 3] {
    [
        patch_corner(c[2], 0, patch, shape[0]),
        patch_corner(c[1], 0, patch, shape[1]),
        patch_corner(c[0], 0, patch, shape[2]),
    ]
}

#[test]
fn hard_negative_patches_come_at_their_share_and_centre_on_negatives() {
    let mut s = samples();
    let negatives = [[30.0, 20.0, 25.0], [40.0, 30.0, 12.0]];
    for t in &mut s {
        t.negatives = negatives.to_vec();
    }
    let cfg = DataConfig {
        patch: 16,
        max_shift: 0,
        negative_ratio: 0.4,
        background_ratio: 0.1,
        folds: 1,
        ..DataConfig::default()
    };
    cfg.validate().unwrap();
    let sp = split(&s, &cfg, 3);
    let shape = s[0].tomogram.shape_zyx();
    let neg_corners: Vec<[isize; 3]> = negatives
        .iter()
        .map(|&c| corner_of(c, cfg.patch, shape))
        .collect();
    let particle_corners: HashSet<[isize; 3]> = s
        .iter()
        .flat_map(|t| {
            t.particles
                .iter()
                .map(|p| corner_of(p.center_xyz, cfg.patch, shape))
        })
        .collect();
    let (mut on_neg, mut total) = (0usize, 0usize);
    for step in 0..500 {
        for spec in training_patches(&s, &sp, &cfg, 4, 9, step) {
            total += 1;
            if neg_corners.contains(&spec.corner_zyx)
                && !particle_corners.contains(&spec.corner_zyx)
            {
                on_neg += 1;
            }
        }
    }
    let share = on_neg as f64 / total as f64;
    assert!((share - 0.4).abs() < 0.04, "negative share {share}");
    // Without negatives found, the ratio asks for nothing: only particles and background.
    for t in &mut s {
        t.negatives.clear();
    }
    let specs = training_patches(&s, &sp, &cfg, 64, 9, 1);
    assert!(specs
        .iter()
        .all(|p| !neg_corners.contains(&p.corner_zyx) || particle_corners.contains(&p.corner_zyx)));
    // Ratios that leave no room for particles are refused.
    let bad = DataConfig {
        negative_ratio: 0.95,
        background_ratio: 0.1,
        ..DataConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("negative_ratio"));
}

#[test]
fn class_balanced_sampling_sees_each_class_equally_often() {
    // Five ribosomes (label 2) for every proteasome (label 1).
    let (v, _) = tomo([40, 48, 56], 0);
    let mut parts = Vec::new();
    for i in 0..12 {
        let name = if i % 6 == 0 { "proteasome" } else { "ribosome" };
        parts.push(Particle::new(name, 8.0 + 3.0 * i as f64, 20.0, 20.0));
    }
    let s = vec![make_sample(
        "t",
        v,
        &parts,
        None,
        &table(),
        &["proteasome".into(), "ribosome".into()],
        1.0,
    )
    .unwrap()];
    let count = |balanced: bool| {
        let cfg = DataConfig {
            patch: 16,
            max_shift: 0,
            folds: 1,
            class_balanced: balanced,
            ..DataConfig::default()
        };
        let sp = split(&s, &cfg, 1);
        let mut by_label = [0usize; 3];
        for step in 0..400 {
            for spec in training_patches(&s, &sp, &cfg, 4, 2, step) {
                // The particle whose centred patch this is.
                let p = s[0]
                    .particles
                    .iter()
                    .find(|p| corner_of(p.center_xyz, 16, [40, 48, 56]) == spec.corner_zyx)
                    .unwrap();
                by_label[p.label as usize] += 1;
            }
        }
        by_label[1] as f64 / (by_label[1] + by_label[2]) as f64
    };
    let plain = count(false);
    let balanced = count(true);
    assert!(
        (plain - 2.0 / 12.0).abs() < 0.04,
        "uniform over particles: {plain}"
    );
    assert!((balanced - 0.5).abs() < 0.04, "class-balanced: {balanced}");
}

#[test]
fn smaller_targets_keep_centres_and_hard_negatives_stay_outside_particles() {
    // One ribosome (radius 4 voxels) at the centre of a 32³ tomogram, bright at its centre and
    // at a lobe 4 voxels off it, and one bright blob far from every particle.
    let mut data = Array3::<f32>::zeros((32, 32, 32));
    for [z, y, x] in [[16, 16, 16], [16, 16, 20], [26, 16, 16]] {
        data[[z, y, x]] = 10.0;
    }
    let parts = vec![Particle::new("ribosome", 16.0, 16.0, 16.0)];
    let sample = |scale: f64| {
        make_sample(
            "t",
            Volume::new(data.clone(), 10.0),
            &parts,
            None,
            &table(),
            &[],
            scale,
        )
        .unwrap()
    };
    let count = |s: &TrainSample| s.labels.iter().filter(|&&l| l == 1).count();
    let (whole, centre) = (sample(1.0), sample(0.25));
    assert_eq!(centre.labels[[16, 16, 16]], 1);
    assert_eq!(centre.labels[[16, 16, 19]], 0, "beyond 0.25 × 4 voxels");
    assert_eq!(whole.labels[[16, 16, 19]], 1);
    assert!(
        count(&centre) * 20 < count(&whole),
        "{} vs {}",
        count(&centre),
        count(&whole)
    );
    // The lobe lies outside the centre target but inside the particle: not a hard negative.
    // The far blob is one.
    let mut s = vec![centre];
    add_negatives(&mut s, &[4.0, 3.0, 2.0], 16.0, NegativeScales::Smallest);
    assert_eq!(s[0].negatives, vec![[16.0, 16.0, 26.0]]);
}

#[test]
fn negatives_at_every_class_scale_find_a_large_look_alike_among_specks() {
    // An unlabelled ball of the ribosome's radius (4 voxels) among 128 bright one-voxel specks,
    // and one labelled ribosome. At the smallest class's scale the specks outrank the ball; a
    // search at each class's radius finds the ball at the ribosome's scale.
    let shape = (48, 64, 64);
    let ball = |c: [usize; 3]| {
        move |z: usize, y: usize, x: usize| {
            let d2 = (x as f64 - c[0] as f64).powi(2)
                + (y as f64 - c[1] as f64).powi(2)
                + (z as f64 - c[2] as f64).powi(2);
            d2 <= 16.0
        }
    };
    let (look_alike, ribosome) = (ball([48, 48, 24]), ball([16, 16, 24]));
    let mut data = Array3::from_shape_fn(shape, |(z, y, x)| {
        if look_alike(z, y, x) || ribosome(z, y, x) {
            1.0f32
        } else {
            0.0
        }
    });
    for z in [8usize, 40] {
        for y in (4..64).step_by(8) {
            for x in (4..64).step_by(8) {
                data[[z, y, x]] = 30.0;
            }
        }
    }
    let parts = vec![Particle::new("ribosome", 16.0, 16.0, 24.0)];
    let sample = make_sample(
        "t",
        Volume::new(data, 10.0),
        &parts,
        None,
        &table(),
        &[],
        1.0,
    )
    .unwrap();
    let radii = [4.0, 3.0, 2.0];
    let finds_ball = |negatives: &[[f64; 3]]| {
        negatives
            .iter()
            .any(|n| (0..3).all(|i| (n[i] - [48.0, 48.0, 24.0][i]).abs() <= 1.0))
    };
    let mut smallest = vec![sample.clone()];
    add_negatives(&mut smallest, &radii, 2.0, NegativeScales::Smallest);
    assert_eq!(smallest[0].negatives.len(), 16);
    assert!(
        !finds_ball(&smallest[0].negatives),
        "{:?}",
        smallest[0].negatives
    );
    let mut classes = vec![sample];
    add_negatives(&mut classes, &radii, 2.0, NegativeScales::Classes);
    assert!(
        finds_ball(&classes[0].negatives),
        "{:?}",
        classes[0].negatives
    );
    assert!(classes[0].negatives.len() <= 18, "6 per scale at most");
    assert_eq!(
        negative_scale_radii(&[4.0, 3.0, 3.02, 2.0], NegativeScales::Classes),
        vec![4.0, 3.0, 2.0]
    );
    assert_eq!(
        negative_scale_radii(&[4.0, 3.0, 2.0], NegativeScales::Smallest),
        vec![2.0]
    );
}
