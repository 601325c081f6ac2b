//! Unit tests: label remapping, augmentation, padded crops, patch normalisation and folds.

use super::*;
use capsid_core::Volume;
use ndarray::Array3;

fn sample(shape: [usize; 3], centers: &[[f64; 3]]) -> TrainSample {
    let data = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(z, y, x)| {
        (z * 10000 + y * 100 + x) as f32
    });
    let mut labels = Array3::<u8>::zeros((shape[0], shape[1], shape[2]));
    for c in centers {
        labels[[c[2] as usize, c[1] as usize, c[0] as usize]] = 1;
    }
    TrainSample {
        name: "t".into(),
        tomogram: Volume::new(data, 10.0),
        labels,
        particles: centers
            .iter()
            .map(|&c| TargetParticle {
                label: 1,
                center_xyz: c,
            })
            .collect(),
        negatives: Vec::new(),
    }
}

#[test]
fn remap_keeps_targets_in_order() {
    let lut = remap_table(&[3, 1]);
    let a = Array3::from_shape_vec((1, 1, 4), vec![0u8, 1, 2, 3]).unwrap();
    assert_eq!(
        remap_labels(&a, &lut).into_raw_vec_and_offset().0,
        vec![0, 2, 0, 1]
    );
}

#[test]
fn augment_rot90_four_times_is_identity_and_flips_pair_up() {
    let a = Array3::from_shape_fn((3, 4, 4), |(z, y, x)| (z * 16 + y * 4 + x) as i32);
    let r = Augment {
        rot90_z: 1,
        ..Augment::NONE
    };
    let mut b = a.clone();
    for _ in 0..4 {
        b = r.apply(b);
    }
    assert_eq!(a, b);
    let once = r.apply(a.clone());
    assert_ne!(once, a);
    // One turn moves (y, x) to (x, n-1-y).
    assert_eq!(once[[1, 2, 3 - 1]], a[[1, 1, 2]]);
    let f = Augment {
        flip_x: true,
        flip_z: true,
        ..Augment::NONE
    };
    assert_eq!(f.apply(f.apply(a.clone())), a);
    assert_eq!(f.apply(a.clone())[[0, 1, 0]], a[[2, 1, 3]]);
}

#[test]
fn crop_pads_outside() {
    let v = Array3::from_shape_fn((4, 4, 4), |(z, y, x)| (z * 16 + y * 4 + x) as f32);
    let c = crop_padded(&v.view(), [-1, 2, 0], [2, 3, 2], -1.0);
    assert_eq!(c[[0, 0, 0]], -1.0);
    assert_eq!(c[[1, 0, 1]], v[[0, 2, 1]]);
    assert_eq!(c[[1, 2, 0]], -1.0);
}

#[test]
fn normalised_patch_has_zero_mean_unit_sd() {
    let s = sample([20, 20, 20], &[[10.0, 10.0, 10.0]]);
    let spec = PatchSpec {
        sample: 0,
        corner_zyx: [2, 2, 2],
        augment: Augment::NONE,
    };
    let (x, _) = extract_patch(&s, &spec, 8);
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 1e-4, "{mean}");
    assert!((var - 1.0).abs() < 1e-3, "{var}");
}

#[test]
fn folds_are_balanced_and_seeded() {
    let f = fold_assignment(20, 6, 1);
    for k in 0..6 {
        let n = f.iter().filter(|&&x| x == k).count();
        assert!(n == 3 || n == 4);
    }
    assert_eq!(f, fold_assignment(20, 6, 1));
    assert_ne!(f, fold_assignment(20, 6, 2));
}
