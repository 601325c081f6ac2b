//! Connected components: DeePiCt's picking rule (threshold → connected components → min/max size
//! → centroids).
//!
//! A component is a maximal set of voxels with the same class label that are connected through
//! faces (6-connectivity) or faces, edges and corners (26-connectivity). Each kept component
//! gives one [`Particle`] at the centroid of its voxels (mean of the voxel positions, voxels of the
//! map). Components are found by flood fill in memory order (z, then y, then x), which fixes the
//! output order.

use crate::{check_sizes, class_radii, PickError};
use capsid_core::{ClassDef, ClassTable, Particle, Volume};
use ndarray::ArrayView3;
use serde::{Deserialize, Serialize};

/// Which neighbours connect voxels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// Face neighbours only (6).
    Six,
    /// Face, edge and corner neighbours (26), scipy.ndimage's `generate_binary_structure(3, 3)`.
    #[default]
    TwentySix,
}

/// Parameters of [`connected_components`] and [`connected_components_prob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComponentParams {
    /// Default 26-connectivity.
    pub connectivity: Connectivity,
    /// Drop components with fewer voxels. Default 0.
    pub min_size: usize,
    /// Drop components with more voxels. Default none.
    pub max_size: Option<usize>,
}

impl Default for ComponentParams {
    fn default() -> Self {
        Self {
            connectivity: Connectivity::TwentySix,
            min_size: 0,
            max_size: None,
        }
    }
}

/// One connected component: its key (class label, or 1 for a thresholded map), voxel count, sum of
/// voxel positions `[x, y, z]` and sum of the map's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub key: u8,
    pub size: usize,
    pub sum_xyz: [f64; 3],
    pub sum_value: f64,
}

impl Component {
    /// Centroid `[x, y, z]` in voxels.
    pub fn centroid_xyz(&self) -> [f64; 3] {
        let n = self.size as f64;
        [
            self.sum_xyz[0] / n,
            self.sum_xyz[1] / n,
            self.sum_xyz[2] / n,
        ]
    }
}

/// Connected components of a label map, per class of `classes` (labels not in the table are
/// background). Returns particles in class-table order, then in the order their first voxel comes
/// in memory. `score` = component size in voxels.
pub fn connected_components(
    label_map: &Volume<u8>,
    classes: &ClassTable,
    params: &ComponentParams,
) -> Result<Vec<Particle>, PickError> {
    check_sizes(params.min_size, params.max_size)?;
    let radii = class_radii(label_map, classes);
    let mut in_table = [false; 256];
    for (l, _, _) in &radii {
        in_table[*l as usize] = true;
    }
    let data = label_map.data.as_standard_layout();
    let comps = label_components(
        data.view(),
        |v: u8| if in_table[v as usize] { v } else { 0 },
        |v| v as f64,
        params.connectivity,
    );
    let mut out = Vec::new();
    for (label, name, _) in &radii {
        for c in comps.iter().filter(|c| c.key == *label) {
            if keep(c.size, params) {
                let [x, y, z] = c.centroid_xyz();
                let mut p = Particle::new(name.clone(), x, y, z);
                p.score = Some(c.size as f64);
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Connected components of the voxels of a probability map with value ≥ `threshold` (DeePiCt uses
/// 0.5), as particles of `class`, in memory order of their first voxel. `score` = mean probability
/// over the component's voxels. NaN voxels are below any threshold.
pub fn connected_components_prob(
    prob_map: &Volume<f32>,
    class: &ClassDef,
    threshold: f32,
    params: &ComponentParams,
) -> Result<Vec<Particle>, PickError> {
    check_sizes(params.min_size, params.max_size)?;
    if !threshold.is_finite() {
        return Err(PickError::Invalid(format!(
            "threshold must be finite, got {threshold}"
        )));
    }
    let data = prob_map.data.as_standard_layout();
    let comps = label_components(
        data.view(),
        |v: f32| u8::from(v >= threshold),
        |v| v as f64,
        params.connectivity,
    );
    Ok(comps
        .iter()
        .filter(|c| keep(c.size, params))
        .map(|c| {
            let [x, y, z] = c.centroid_xyz();
            let mut p = Particle::new(class.name.clone(), x, y, z);
            p.score = Some(c.sum_value / c.size as f64);
            p
        })
        .collect())
}

fn keep(size: usize, params: &ComponentParams) -> bool {
    size >= params.min_size && params.max_size.is_none_or(|m| size <= m)
}

/// Labels the connected components of `map` (standard layout, `[z, y, x]`): voxels with the same
/// non-zero `key(value)` that touch under `connectivity` form one component. `value` gives the
/// number summed into [`Component::sum_value`]. Components come in memory order of their first
/// voxel; the fill is iterative (no recursion), with a visited bit per voxel.
pub fn label_components<T: Copy>(
    map: ArrayView3<T>,
    key: impl Fn(T) -> u8,
    value: impl Fn(T) -> f64,
    connectivity: Connectivity,
) -> Vec<Component> {
    let (nz, ny, nx) = map.dim();
    let Some(data) = map.as_slice() else {
        let owned = map.as_standard_layout().into_owned();
        return label_components(owned.view(), key, value, connectivity);
    };
    let n = data.len();
    let mut visited = vec![0u64; n.div_ceil(64)];
    let is_visited = |v: &Vec<u64>, i: usize| v[i >> 6] >> (i & 63) & 1 == 1;
    let offsets: Vec<(i64, i64, i64)> = {
        let mut o = Vec::new();
        for dz in -1i64..=1 {
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let manhattan = dz.abs() + dy.abs() + dx.abs();
                    let ok = match connectivity {
                        Connectivity::Six => manhattan == 1,
                        Connectivity::TwentySix => manhattan >= 1,
                    };
                    if ok {
                        o.push((dz, dy, dx));
                    }
                }
            }
        }
        o
    };
    let mut out = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for start in 0..n {
        let k = key(data[start]);
        if k == 0 || is_visited(&visited, start) {
            continue;
        }
        visited[start >> 6] |= 1 << (start & 63);
        stack.push(start);
        let mut c = Component {
            key: k,
            size: 0,
            sum_xyz: [0.0; 3],
            sum_value: 0.0,
        };
        while let Some(i) = stack.pop() {
            let (z, rem) = (i / (ny * nx), i % (ny * nx));
            let (y, x) = (rem / nx, rem % nx);
            c.size += 1;
            c.sum_xyz[0] += x as f64;
            c.sum_xyz[1] += y as f64;
            c.sum_xyz[2] += z as f64;
            c.sum_value += value(data[i]);
            for &(dz, dy, dx) in &offsets {
                let (zz, yy, xx) = (z as i64 + dz, y as i64 + dy, x as i64 + dx);
                if zz < 0
                    || yy < 0
                    || xx < 0
                    || zz >= nz as i64
                    || yy >= ny as i64
                    || xx >= nx as i64
                {
                    continue;
                }
                let j = (zz as usize * ny + yy as usize) * nx + xx as usize;
                if !is_visited(&visited, j) && key(data[j]) == k {
                    visited[j >> 6] |= 1 << (j & 63);
                    stack.push(j);
                }
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meanshift::tests::{paint_ball, table};
    use ndarray::Array3;

    #[test]
    fn components_give_centroids_sizes_and_classes() {
        let mut m = Array3::<u8>::zeros((30, 30, 40));
        let n1 = paint_ball(&mut m, [8.0, 8.0, 8.0], 4.0, 1);
        let n2 = paint_ball(&mut m, [30.0, 20.0, 15.0], 3.0, 2);
        let n3 = paint_ball(&mut m, [25.0, 8.0, 22.0], 4.0, 1);
        paint_ball(&mut m, [10.0, 25.0, 25.0], 2.0, 7); // label not in the table: ignored
        let vol = Volume::new(m, 1.0);
        let t = table(&[("a", 1, 4.0), ("b", 2, 3.0)]);
        let p = connected_components(&vol, &t, &ComponentParams::default()).unwrap();
        assert_eq!(p.len(), 3, "{p:?}");
        let expect = [
            ([8.0, 8.0, 8.0], "a", n1),
            ([25.0, 8.0, 22.0], "a", n3),
            ([30.0, 20.0, 15.0], "b", n2),
        ];
        for (pick, (c, name, n)) in p.iter().zip(expect) {
            assert_eq!(pick.class, name);
            assert!(pick.distance_to(c) < 1e-9, "{pick:?} vs {c:?}");
            assert_eq!(pick.score, Some(n as f64));
        }
        let filtered = ComponentParams {
            min_size: n2 + 1,
            max_size: Some(n1.max(n3)),
            ..Default::default()
        };
        let p = connected_components(&vol, &t, &filtered).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| p.class == "a"));
        let none = ComponentParams {
            max_size: Some(n2 - 1),
            ..Default::default()
        };
        assert!(connected_components(&vol, &t, &none).unwrap().is_empty());
    }

    #[test]
    fn connectivity_six_splits_diagonal_neighbours() {
        let mut m = Array3::<u8>::zeros((3, 3, 3));
        m[[0, 0, 0]] = 1;
        m[[1, 1, 1]] = 1; // corner-touching
        m[[1, 1, 2]] = 1; // face-touching [1,1,1]
        let vol = Volume::new(m, 1.0);
        let t = table(&[("a", 1, 1.0)]);
        let six = ComponentParams {
            connectivity: Connectivity::Six,
            ..Default::default()
        };
        let p6 = connected_components(&vol, &t, &six).unwrap();
        assert_eq!(
            p6.iter().map(|p| p.score.unwrap()).collect::<Vec<_>>(),
            [1.0, 2.0]
        );
        let p26 = connected_components(&vol, &t, &ComponentParams::default()).unwrap();
        assert_eq!(p26.len(), 1);
        assert!((p26[0].x - 1.0).abs() < 1e-12 && (p26[0].y - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn adjacent_different_labels_are_different_components() {
        let mut m = Array3::<u8>::zeros((1, 1, 4));
        m[[0, 0, 0]] = 1;
        m[[0, 0, 1]] = 1;
        m[[0, 0, 2]] = 2;
        let t = table(&[("a", 1, 1.0), ("b", 2, 1.0)]);
        let p =
            connected_components(&Volume::new(m, 1.0), &t, &ComponentParams::default()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].class.as_str(), p[0].x), ("a", 0.5));
        assert_eq!((p[1].class.as_str(), p[1].x), ("b", 2.0));
    }

    #[test]
    fn thresholded_probability_components_score_by_mean_probability() {
        let mut m = Array3::<f32>::zeros((10, 10, 10));
        m[[2, 2, 2]] = 0.9;
        m[[2, 2, 3]] = 0.7;
        m[[2, 2, 4]] = 0.4; // below threshold: not part of it
        m[[7, 7, 7]] = f32::NAN;
        m[[8, 8, 8]] = 0.6;
        let t = table(&[("a", 1, 2.0)]);
        let p = connected_components_prob(
            &Volume::new(m, 1.0),
            &t.classes[0],
            0.5,
            &ComponentParams::default(),
        )
        .unwrap();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!((p[0].x - 2.5).abs() < 1e-12 && (p[0].score.unwrap() - 0.8).abs() < 1e-6);
        assert!((p[1].z - 8.0).abs() < 1e-12 && (p[1].score.unwrap() - 0.6).abs() < 1e-6);
    }
}
