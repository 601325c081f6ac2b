//! Mean-shift clustering of label maps, as DeepFinder does it with scikit-learn's `MeanShift`.
//!
//! The algorithm follows scikit-learn (`sklearn.cluster.MeanShift`, flat kernel):
//! 1. **Bin seeding**: voxel positions are rounded to a grid of side `bandwidth`; every bin holding
//!    at least `min_bin_freq` voxels gives one seed at the bin's position.
//! 2. **Shift**: each seed moves to the mean of the class voxels within `bandwidth` (inclusive) of
//!    it, until it moves by at most `1e-3 × bandwidth` or `max_iter` iterations pass. Seeds whose
//!    window is empty are dropped. The map itself is the neighbour index, stored as runs of
//!    class voxels along x ([`RowRuns`]): a window sums whole runs clipped to the ball row by row,
//!    so one step costs O(bandwidth²) (exact integer sums, identical to visiting every voxel).
//! 3. **Merge**: converged modes are sorted by the number of voxels in their last window
//!    (descending; ties by position, descending, as scikit-learn) and each kept mode suppresses
//!    the later ones within `bandwidth`.
//! 4. **Assign**: every voxel joins its nearest mode (ties to the earlier mode).
//!
//! Seeds are shifted in parallel (rayon) but collected in seed order, and all sums are taken in a
//! fixed voxel order, so the output does not depend on the thread count.
//!
//! Two modes: **per class** (default; each class's voxels clustered alone with bandwidth = its
//! radius) and **joint** (DeepFinder: all foreground voxels at once with one bandwidth, each
//! cluster labelled by the majority class of its voxels). A cluster becomes one
//! [`Particle`] at its mode with `score` = cluster size in voxels of the input map (after
//! binning, each binned voxel counts `bin³`); clusters outside `min_size..=max_size` are dropped.

use crate::grid::{dist2, PointGrid};
use crate::{check_sizes, class_radii, PickError};
use capsid_core::{ClassTable, Particle, Volume};
use ndarray::{Array3, ArrayView3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Parameters of [`mean_shift`]. Every field has a default (see [`MeanShiftParams::default`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanShiftParams {
    /// Cluster all foreground voxels together with one bandwidth and label each cluster by majority
    /// vote (DeepFinder), instead of clustering each class alone. Default false.
    pub joint: bool,
    /// Bandwidth in voxels of the input map. Default: per class, the class radius; in joint mode,
    /// the mean radius of the classes in the table.
    pub bandwidth_vox: Option<f64>,
    /// Bin the label map by this factor before clustering (DeepFinder uses 2). Default 1.
    pub bin: usize,
    /// Minimum number of voxels in a seeding bin for it to give a seed. Default 1.
    pub min_bin_freq: usize,
    /// Maximum number of mean-shift iterations per seed. Default 300 (scikit-learn).
    pub max_iter: usize,
    /// Drop clusters smaller than this many voxels (of the input map). Default 0.
    pub min_size: usize,
    /// Drop clusters larger than this many voxels (of the input map). Default none.
    pub max_size: Option<usize>,
}

impl Default for MeanShiftParams {
    fn default() -> Self {
        Self {
            joint: false,
            bandwidth_vox: None,
            bin: 1,
            min_bin_freq: 1,
            max_iter: 300,
            min_size: 0,
            max_size: None,
        }
    }
}

impl MeanShiftParams {
    /// Checks the ranges of the parameters.
    pub fn validate(&self) -> Result<(), PickError> {
        if self.bin == 0 || self.bin > 8 {
            return Err(PickError::Invalid(format!(
                "bin must be 1..=8, got {}",
                self.bin
            )));
        }
        if self.min_bin_freq == 0 {
            return Err(PickError::Invalid("min_bin_freq must be at least 1".into()));
        }
        if self.max_iter == 0 {
            return Err(PickError::Invalid("max_iter must be at least 1".into()));
        }
        if let Some(b) = self.bandwidth_vox {
            if !(b > 0.0 && b.is_finite()) {
                return Err(PickError::Invalid(format!(
                    "bandwidth must be positive, got {b}"
                )));
            }
        }
        check_sizes(self.min_size, self.max_size)
    }
}

/// One cluster found by [`cluster_map`]: its mode `[x, y, z]` (voxels of the clustered map) and the
/// indices of its member points.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub mode_xyz: [f64; 3],
    pub members: Vec<u32>,
}

/// Mean-shift picking on a label map (`[z, y, x]`, 0 = background, class labels from `classes`).
/// Returns one particle per kept cluster, in class-table order, then by decreasing window count
/// of the mode (scikit-learn's order). Positions are in voxels of `label_map`; `score` is the
/// cluster size in voxels. Labels not in the table are treated as background.
pub fn mean_shift(
    label_map: &Volume<u8>,
    classes: &ClassTable,
    params: &MeanShiftParams,
) -> Result<Vec<Particle>, PickError> {
    params.validate()?;
    let radii = class_radii(label_map, classes);
    if radii.is_empty() {
        return Err(PickError::Invalid("the class table has no classes".into()));
    }
    let binned;
    let map: ArrayView3<u8> = if params.bin > 1 {
        binned = bin_label_map(&label_map.data, params.bin);
        binned.view()
    } else {
        label_map.data.view()
    };
    let map = map.as_standard_layout().into_owned();
    let f = params.bin as f64;
    let voxels_per_point = params.bin.pow(3);
    let to_input = |c: f64| c * f + (f - 1.0) / 2.0;
    let mut in_table = [false; 256];
    for (label, _, _) in &radii {
        in_table[*label as usize] = true;
    }
    let points = collect_points(map.view(), &in_table);
    let keep = |n_points: usize| {
        let size = n_points * voxels_per_point;
        size >= params.min_size && params.max_size.is_none_or(|m| size <= m)
    };
    let mut out = Vec::new();
    if params.joint {
        let bw = params
            .bandwidth_vox
            .unwrap_or(radii.iter().map(|r| r.2).sum::<f64>() / radii.len() as f64);
        let all: Vec<[u32; 3]> = radii
            .iter()
            .flat_map(|(l, _, _)| points[*l as usize].iter().copied())
            .collect();
        let labels: Vec<u8> = all
            .iter()
            .map(|p| map[[p[2] as usize, p[1] as usize, p[0] as usize]])
            .collect();
        let clusters = cluster_map(
            map.view(),
            &in_table,
            &all,
            bw / f,
            params.min_bin_freq,
            params.max_iter,
        );
        let mut found = Vec::new();
        for c in clusters {
            if !keep(c.members.len()) {
                continue;
            }
            let mut votes = [0u32; 256];
            for &m in &c.members {
                votes[labels[m as usize] as usize] += 1;
            }
            // Majority vote; ties go to the class earlier in the table.
            let mut best = 0usize;
            for (i, (l, _, _)) in radii.iter().enumerate() {
                if votes[*l as usize] > votes[radii[best].0 as usize] {
                    best = i;
                }
            }
            found.push((
                best,
                particle(
                    &radii[best].1,
                    c.mode_xyz,
                    c.members.len() * voxels_per_point,
                    &to_input,
                ),
            ));
        }
        found.sort_by_key(|(class_idx, _)| *class_idx);
        out.extend(found.into_iter().map(|(_, p)| p));
    } else {
        for (label, name, radius) in &radii {
            let pts = &points[*label as usize];
            if pts.is_empty() {
                continue;
            }
            let mut member = [false; 256];
            member[*label as usize] = true;
            let bw = params.bandwidth_vox.unwrap_or(*radius);
            for c in cluster_map(
                map.view(),
                &member,
                pts,
                bw / f,
                params.min_bin_freq,
                params.max_iter,
            ) {
                if keep(c.members.len()) {
                    out.push(particle(
                        name,
                        c.mode_xyz,
                        c.members.len() * voxels_per_point,
                        &to_input,
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn particle(class: &str, mode: [f64; 3], size: usize, to_input: &impl Fn(f64) -> f64) -> Particle {
    let mut p = Particle::new(
        class,
        to_input(mode[0]),
        to_input(mode[1]),
        to_input(mode[2]),
    );
    p.score = Some(size as f64);
    p
}

/// Positions `[x, y, z]` of the voxels of each label (index = label), in memory order.
fn collect_points(map: ArrayView3<u8>, wanted: &[bool; 256]) -> Vec<Vec<[u32; 3]>> {
    let mut points = vec![Vec::new(); 256];
    for ((z, y, x), &v) in map.indexed_iter() {
        if wanted[v as usize] {
            points[v as usize].push([x as u32, y as u32, z as u32]);
        }
    }
    points
}

/// Mean shift over `points` (`[x, y, z]`, all voxels of `map` whose value is marked in `member`)
/// with a flat kernel of radius `bandwidth` (voxels of `map`). Returns the clusters in
/// scikit-learn's order (descending intensity); clusters with no members are dropped.
pub fn cluster_map(
    map: ArrayView3<u8>,
    member: &[bool; 256],
    points: &[[u32; 3]],
    bandwidth: f64,
    min_bin_freq: usize,
    max_iter: usize,
) -> Vec<Cluster> {
    if points.is_empty() || bandwidth.is_nan() || bandwidth <= 0.0 {
        return Vec::new();
    }
    let map = map.as_standard_layout();
    let runs = RowRuns::new(map.view(), member);
    let seeds = bin_seeds(points, bandwidth, min_bin_freq);
    let shifted: Vec<Option<([f64; 3], usize)>> = seeds
        .par_iter()
        .map(|s| shift_seed(&runs, *s, bandwidth, max_iter))
        .collect();
    let modes = merge_modes(shifted.into_iter().flatten().collect(), bandwidth);
    let grid = PointGrid::new(modes, bandwidth);
    let assignment: Vec<u32> = points
        .par_iter()
        .map(|p| {
            let q = [p[0] as f64, p[1] as f64, p[2] as f64];
            grid.nearest(q).map_or(0, |(i, _)| i as u32)
        })
        .collect();
    let mut clusters: Vec<Cluster> = grid
        .points()
        .iter()
        .map(|m| Cluster {
            mode_xyz: *m,
            members: Vec::new(),
        })
        .collect();
    for (i, a) in assignment.iter().enumerate() {
        clusters[*a as usize].members.push(i as u32);
    }
    clusters.retain(|c| !c.members.is_empty());
    clusters
}

/// scikit-learn's `get_bin_seeds`: points rounded to a grid of side `bin_size`; bins with at
/// least `min_bin_freq` points give seeds at `bin × bin_size`, in bin order (z, y, x). When every
/// point has its own bin, the points themselves are the seeds (as scikit-learn).
pub fn bin_seeds(points: &[[u32; 3]], bin_size: f64, min_bin_freq: usize) -> Vec<[f64; 3]> {
    let mut counts: HashMap<[i64; 3], usize> = HashMap::new();
    for p in points {
        let k = [
            (p[2] as f64 / bin_size).round() as i64,
            (p[1] as f64 / bin_size).round() as i64,
            (p[0] as f64 / bin_size).round() as i64,
        ];
        *counts.entry(k).or_default() += 1;
    }
    if counts.len() == points.len() {
        return points
            .iter()
            .map(|p| [p[0] as f64, p[1] as f64, p[2] as f64])
            .collect();
    }
    let mut bins: Vec<[i64; 3]> = counts
        .into_iter()
        .filter(|(_, n)| *n >= min_bin_freq)
        .map(|(k, _)| k)
        .collect();
    bins.sort_unstable();
    bins.into_iter()
        .map(|k| {
            [
                k[2] as f64 * bin_size,
                k[1] as f64 * bin_size,
                k[0] as f64 * bin_size,
            ]
        })
        .collect()
}

/// The member voxels of a map as runs along x: for each row `(z, y)`, the inclusive x intervals
/// `[start, end]` of consecutive member voxels (CSR layout). A window sum then costs one step per
/// row and run instead of one per voxel.
#[derive(Debug, Clone)]
pub struct RowRuns {
    shape_zyx: [usize; 3],
    /// `start[z * ny + y] .. start[z * ny + y + 1]` index `runs`.
    start: Vec<u32>,
    runs: Vec<[u32; 2]>,
}

impl RowRuns {
    /// Runs of the voxels of `map` (`[z, y, x]`) whose value is marked in `member`.
    pub fn new(map: ArrayView3<u8>, member: &[bool; 256]) -> Self {
        let (nz, ny, nx) = map.dim();
        let mut start = Vec::with_capacity(nz * ny + 1);
        let mut runs = Vec::new();
        start.push(0u32);
        for z in 0..nz {
            for y in 0..ny {
                let row = map.slice(ndarray::s![z, y, ..]);
                let mut open: Option<u32> = None;
                for (x, &v) in row.iter().enumerate() {
                    match (member[v as usize], open) {
                        (true, None) => open = Some(x as u32),
                        (false, Some(a)) => {
                            runs.push([a, x as u32 - 1]);
                            open = None;
                        }
                        _ => {}
                    }
                }
                if let Some(a) = open {
                    runs.push([a, nx as u32 - 1]);
                }
                start.push(runs.len() as u32);
            }
        }
        Self {
            shape_zyx: [nz, ny, nx],
            start,
            runs,
        }
    }

    fn row(&self, z: usize, y: usize) -> &[[u32; 2]] {
        let i = z * self.shape_zyx[1] + y;
        &self.runs[self.start[i] as usize..self.start[i + 1] as usize]
    }

    /// Sum of positions `[x, y, z]` and count of the member voxels within `radius` (inclusive) of
    /// `c` (`[x, y, z]`). Sums of integer coordinates, so exact and order-independent.
    pub fn window(&self, c: [f64; 3], radius: f64) -> ([f64; 3], usize) {
        let [nz, ny, nx] = self.shape_zyx;
        let r2 = radius * radius;
        let (mut sum, mut n) = ([0.0f64; 3], 0usize);
        let range = |center: f64, half: f64, len: usize| -> Option<(usize, usize)> {
            let lo = (center - half - 1e-9).ceil().max(0.0);
            let hi = (center + half + 1e-9).floor().min(len as f64 - 1.0);
            (hi >= lo).then_some((lo as usize, hi as usize))
        };
        let Some((z0, z1)) = range(c[2], radius, nz) else {
            return (sum, 0);
        };
        for z in z0..=z1 {
            let dz = z as f64 - c[2];
            let rem_z = r2 - dz * dz;
            if rem_z < 0.0 {
                continue;
            }
            let Some((y0, y1)) = range(c[1], rem_z.sqrt(), ny) else {
                continue;
            };
            for y in y0..=y1 {
                let runs = self.row(z, y);
                if runs.is_empty() {
                    continue;
                }
                let dy = y as f64 - c[1];
                let rem_y = rem_z - dy * dy;
                if rem_y < 0.0 {
                    continue;
                }
                let Some((mut x0, mut x1)) = range(c[0], rem_y.sqrt(), nx) else {
                    continue;
                };
                // Tighten the (slightly widened) ends with the exact test.
                let inside = |x: usize| {
                    let dx = x as f64 - c[0];
                    dx * dx + dy * dy + dz * dz <= r2
                };
                while x0 <= x1 && !inside(x0) {
                    x0 += 1;
                }
                while x1 >= x0 && !inside(x1) {
                    if x1 == 0 {
                        break;
                    }
                    x1 -= 1;
                }
                if x0 > x1 || !inside(x1) {
                    continue;
                }
                for &[a, b] in runs {
                    let (a, b) = (a as usize, b as usize);
                    if b < x0 {
                        continue;
                    }
                    if a > x1 {
                        break;
                    }
                    let (lo, hi) = (a.max(x0), b.min(x1));
                    let k = hi - lo + 1;
                    sum[0] += ((lo + hi) * k / 2) as f64;
                    sum[1] += (y * k) as f64;
                    sum[2] += (z * k) as f64;
                    n += k;
                }
            }
        }
        (sum, n)
    }
}

/// Reference for [`RowRuns::window`]: the same sum visiting every voxel of the ball's rows.
#[cfg(test)]
fn window(
    map: ArrayView3<u8>,
    member: &[bool; 256],
    c: [f64; 3],
    radius: f64,
) -> ([f64; 3], usize) {
    let (nz, ny, nx) = map.dim();
    let r2 = radius * radius;
    let (mut sum, mut n) = ([0.0f64; 3], 0usize);
    let range = |center: f64, half: f64, len: usize| -> Option<(usize, usize)> {
        let lo = (center - half - 1e-9).ceil().max(0.0);
        let hi = (center + half + 1e-9).floor().min(len as f64 - 1.0);
        (hi >= lo).then_some((lo as usize, hi as usize))
    };
    let Some((z0, z1)) = range(c[2], radius, nz) else {
        return (sum, 0);
    };
    for z in z0..=z1 {
        let dz = z as f64 - c[2];
        let rem_z = r2 - dz * dz;
        if rem_z < 0.0 {
            continue;
        }
        let Some((y0, y1)) = range(c[1], rem_z.sqrt(), ny) else {
            continue;
        };
        for y in y0..=y1 {
            let dy = y as f64 - c[1];
            let rem_y = rem_z - dy * dy;
            if rem_y < 0.0 {
                continue;
            }
            let Some((x0, x1)) = range(c[0], rem_y.sqrt(), nx) else {
                continue;
            };
            let row = map.slice(ndarray::s![z, y, x0..=x1]);
            for (i, &v) in row.iter().enumerate() {
                if member[v as usize] {
                    let x = (x0 + i) as f64;
                    let dx = x - c[0];
                    if dx * dx + dy * dy + dz * dz <= r2 {
                        sum[0] += x;
                        sum[1] += y as f64;
                        sum[2] += z as f64;
                        n += 1;
                    }
                }
            }
        }
    }
    (sum, n)
}

/// Shifts one seed to convergence (scikit-learn's `_mean_shift_single_seed`). Returns the mode and
/// the number of voxels in its last window, or `None` when the first window is empty.
fn shift_seed(
    runs: &RowRuns,
    seed: [f64; 3],
    bw: f64,
    max_iter: usize,
) -> Option<([f64; 3], usize)> {
    let stop = 1e-3 * bw;
    let mut mean = seed;
    let mut iteration = 0;
    loop {
        let (sum, n) = runs.window(mean, bw);
        if n == 0 {
            return None;
        }
        let old = mean;
        mean = [sum[0] / n as f64, sum[1] / n as f64, sum[2] / n as f64];
        if dist2(&mean, &old).sqrt() <= stop || iteration == max_iter {
            return Some((mean, n));
        }
        iteration += 1;
    }
}

/// scikit-learn's mode merging: identical modes counted once, sorted by intensity then position
/// (both descending); each kept mode suppresses later modes within `bw` (inclusive).
fn merge_modes(mut modes: Vec<([f64; 3], usize)>, bw: f64) -> Vec<[f64; 3]> {
    modes.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.0[0].total_cmp(&a.0[0]))
            .then(b.0[1].total_cmp(&a.0[1]))
            .then(b.0[2].total_cmp(&a.0[2]))
    });
    modes.dedup_by(|a, b| a.0 == b.0);
    let centers: Vec<[f64; 3]> = modes.iter().map(|m| m.0).collect();
    let grid = PointGrid::new(centers.clone(), bw);
    let mut unique = vec![true; centers.len()];
    for i in 0..centers.len() {
        if unique[i] {
            for j in grid.within(centers[i], bw) {
                unique[j] = false;
            }
            unique[i] = true;
        }
    }
    centers
        .into_iter()
        .zip(unique)
        .filter(|(_, u)| *u)
        .map(|(c, _)| c)
        .collect()
}

/// Bins a label map (`[z, y, x]`) by `factor` along each axis: each output voxel takes the most
/// frequent value of its `factor³` block (blocks at the far edges may be partial, so the output
/// shape is `ceil(n / factor)`). Ties go to foreground over background, then to the lower label.
/// Output voxel `i` covers input voxels `factor·i ..< factor·(i+1)`; its centre is at input
/// coordinate `factor·i + (factor − 1)/2`.
pub fn bin_label_map(labels: &Array3<u8>, factor: usize) -> Array3<u8> {
    let factor = factor.max(1);
    let (nz, ny, nx) = labels.dim();
    let (bz, by, bx) = (
        nz.div_ceil(factor),
        ny.div_ceil(factor),
        nx.div_ceil(factor),
    );
    let mut out = Array3::<u8>::zeros((bz, by, bx));
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(oz, mut plane)| {
            let mut block: Vec<u8> = Vec::with_capacity(factor.pow(3));
            for oy in 0..by {
                for ox in 0..bx {
                    block.clear();
                    for z in oz * factor..((oz + 1) * factor).min(nz) {
                        for y in oy * factor..((oy + 1) * factor).min(ny) {
                            for x in ox * factor..((ox + 1) * factor).min(nx) {
                                block.push(labels[[z, y, x]]);
                            }
                        }
                    }
                    block.sort_unstable();
                    let (mut best, mut best_n) = (0u8, 0usize);
                    let mut i = 0;
                    while i < block.len() {
                        let v = block[i];
                        let mut j = i;
                        while j < block.len() && block[j] == v {
                            j += 1;
                        }
                        let n = j - i;
                        // Values come in increasing order: a strictly larger count wins, and on a tie a
                        // foreground value beats background (0 comes first).
                        if n > best_n || (n == best_n && best == 0 && v != 0) {
                            best = v;
                            best_n = n;
                        }
                        i = j;
                    }
                    plane[[oy, ox]] = best;
                }
            }
        });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use capsid_core::ClassDef;

    pub(crate) fn table(entries: &[(&str, u8, f64)]) -> ClassTable {
        ClassTable {
            classes: entries
                .iter()
                .map(|(n, l, r)| ClassDef {
                    name: n.to_string(),
                    label: *l,
                    radius_a: None,
                    radius_vox: Some(*r),
                    template: None,
                    symmetry: None,
                })
                .collect(),
        }
    }

    /// Paints a ball of `label` with radius `r` at `c` (`[x, y, z]`); returns its voxel count.
    pub(crate) fn paint_ball(map: &mut Array3<u8>, c: [f64; 3], r: f64, label: u8) -> usize {
        let mut n = 0;
        for ((z, y, x), v) in map.indexed_iter_mut() {
            let d = [x as f64 - c[0], y as f64 - c[1], z as f64 - c[2]];
            if d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= r * r {
                *v = label;
                n += 1;
            }
        }
        n
    }

    /// A ball: centre `[x, y, z]`, label, voxel count.
    type Ball = ([f64; 3], u8, usize);

    fn blobs() -> (Volume<u8>, Vec<Ball>) {
        let mut m = Array3::<u8>::zeros((40, 48, 56));
        let spec = [
            ([10.0, 10.0, 10.0], 5.0, 1),
            ([30.0, 12.0, 20.0], 5.0, 1),
            ([20.0, 35.0, 28.0], 3.0, 2),
            ([44.0, 30.0, 12.0], 5.0, 1),
        ];
        let mut truth = Vec::new();
        for (c, r, l) in spec {
            let n = paint_ball(&mut m, c, r, l);
            truth.push((c, l, n));
        }
        (Volume::new(m, 10.0), truth)
    }

    fn assert_found(picks: &[Particle], truth: &[([f64; 3], u8, usize)], names: &[&str], tol: f64) {
        assert_eq!(picks.len(), truth.len(), "{picks:?}");
        for (c, l, n) in truth {
            let p = picks
                .iter()
                .find(|p| p.distance_to(*c) <= tol)
                .unwrap_or_else(|| panic!("no pick near {c:?} in {picks:?}"));
            assert_eq!(p.class, names[*l as usize - 1]);
            assert_eq!(p.score, Some(*n as f64));
        }
    }

    #[test]
    fn per_class_mean_shift_finds_ball_centres_and_sizes() {
        let (vol, truth) = blobs();
        let t = table(&[("big", 1, 5.0), ("small", 2, 3.0)]);
        let picks = mean_shift(&vol, &t, &MeanShiftParams::default()).unwrap();
        assert_found(&picks, &truth, &["big", "small"], 1.0);
        // Class-table order: the three "big" balls first.
        assert_eq!(
            picks.iter().map(|p| p.class.as_str()).collect::<Vec<_>>(),
            ["big", "big", "big", "small"]
        );
    }

    #[test]
    fn joint_mean_shift_labels_by_majority_vote() {
        let (mut vol, truth) = blobs();
        // Sprinkle a few voxels of class 2 inside a class-1 ball: the cluster stays "big".
        vol.data[[10, 10, 10]] = 2;
        vol.data[[10, 10, 11]] = 2;
        let t = table(&[("big", 1, 5.0), ("small", 2, 3.0)]);
        // Bandwidth = the largest radius: with a flat kernel smaller than the ball, modes stop up to
        // one voxel off centre (where the window fits inside the ball).
        let params = MeanShiftParams {
            joint: true,
            bandwidth_vox: Some(5.0),
            ..Default::default()
        };
        let picks = mean_shift(&vol, &t, &params).unwrap();
        assert_eq!(picks.len(), 4, "{picks:?}");
        for (c, l, _) in &truth {
            let p = picks
                .iter()
                .find(|p| p.distance_to(*c) <= 1.0)
                .unwrap_or_else(|| panic!("no pick near {c:?}: {picks:?}"));
            assert_eq!(p.class, ["big", "small"][*l as usize - 1]);
        }
    }

    #[test]
    fn size_filter_drops_small_and_large_clusters() {
        let (vol, truth) = blobs();
        let t = table(&[("big", 1, 5.0), ("small", 2, 3.0)]);
        let small = truth[2].2; // the radius-3 ball
        let big = truth[0].2;
        let only_big = MeanShiftParams {
            min_size: small + 1,
            ..Default::default()
        };
        let p = mean_shift(&vol, &t, &only_big).unwrap();
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|p| p.class == "big"));
        let only_small = MeanShiftParams {
            max_size: Some(big - 1),
            ..Default::default()
        };
        let p = mean_shift(&vol, &t, &only_small).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].class, "small");
        let bad = MeanShiftParams {
            min_size: 10,
            max_size: Some(5),
            ..Default::default()
        };
        assert!(mean_shift(&vol, &t, &bad)
            .unwrap_err()
            .to_string()
            .contains("below"));
    }

    #[test]
    fn binned_mean_shift_maps_back_to_input_voxels() {
        let (vol, truth) = blobs();
        let t = table(&[("big", 1, 5.0), ("small", 2, 3.0)]);
        let params = MeanShiftParams {
            bin: 2,
            ..Default::default()
        };
        let picks = mean_shift(&vol, &t, &params).unwrap();
        assert_eq!(picks.len(), 4, "{picks:?}");
        for (c, _, n) in &truth {
            let p = picks
                .iter()
                .find(|p| p.distance_to(*c) <= 1.5)
                .expect("pick near centre");
            // Size is counted in input voxels (8 per binned voxel): close to the true size.
            let s = p.score.unwrap();
            assert!(
                s % 8.0 == 0.0 && (s - *n as f64).abs() < 0.5 * *n as f64,
                "{s} vs {n}"
            );
        }
    }

    #[test]
    fn touching_balls_are_two_clusters() {
        let mut m = Array3::<u8>::zeros((24, 24, 40));
        paint_ball(&mut m, [12.0, 12.0, 12.0], 5.0, 1);
        paint_ball(&mut m, [22.0, 12.0, 12.0], 5.0, 1);
        let picks = mean_shift(
            &Volume::new(m, 1.0),
            &table(&[("a", 1, 5.0)]),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(picks.len(), 2, "{picks:?}");
        let mut xs: Vec<f64> = picks.iter().map(|p| p.x).collect();
        xs.sort_by(f64::total_cmp);
        assert!(
            (xs[0] - 12.0).abs() <= 1.0 && (xs[1] - 22.0).abs() <= 1.0,
            "{xs:?}"
        );
    }

    #[test]
    fn run_window_equals_voxel_window() {
        let (vol, _) = blobs();
        let mut member = [false; 256];
        member[1] = true;
        let runs = RowRuns::new(vol.data.view(), &member);
        let mut checked = 0;
        for i in 0..400 {
            let f = i as f64;
            // Centres on and off the voxel grid, some near the edges.
            let c = [
                (f * 7.37) % 58.0 - 1.0,
                (f * 3.11) % 50.0 - 1.0,
                (f * 5.3) % 42.0 - 1.0,
            ];
            for r in [1.0, 2.5, 4.0, 5.0, 7.3] {
                let a = runs.window(c, r);
                let b = window(vol.data.view(), &member, c, r);
                assert_eq!(a, b, "centre {c:?} radius {r}");
                checked += usize::from(a.1 > 0);
            }
        }
        assert!(checked > 100, "too few non-empty windows: {checked}");
        // Integer centres with a ball boundary exactly on voxels (d² = r²).
        for c in [[10.0, 10.0, 10.0], [5.0, 10.0, 10.0], [30.0, 12.0, 15.0]] {
            assert_eq!(
                runs.window(c, 5.0),
                window(vol.data.view(), &member, c, 5.0)
            );
        }
    }

    #[test]
    fn output_does_not_depend_on_thread_count() {
        let (vol, _) = blobs();
        let t = table(&[("big", 1, 5.0), ("small", 2, 3.0)]);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let a = mean_shift(&vol, &t, &MeanShiftParams::default()).unwrap();
                let b = mean_shift(
                    &vol,
                    &t,
                    &MeanShiftParams {
                        joint: true,
                        bin: 2,
                        ..Default::default()
                    },
                )
                .unwrap();
                (a, b)
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn bin_label_map_takes_block_majority() {
        let mut m = Array3::<u8>::zeros((2, 2, 3));
        // Block x 0..2: 5 voxels of 3, 3 of 0 → 3. Partial block x 2: 2 of 1, 2 of 0 → 1 (tie to foreground).
        for (z, y, x) in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0), (1, 1, 1)] {
            m[[z, y, x]] = 3;
        }
        m[[0, 0, 2]] = 1;
        m[[1, 1, 2]] = 1;
        let b = bin_label_map(&m, 2);
        assert_eq!(b.dim(), (1, 1, 2));
        assert_eq!(b[[0, 0, 0]], 3);
        assert_eq!(b[[0, 0, 1]], 1);
    }

    #[test]
    fn empty_map_gives_no_picks_and_bad_params_are_refused() {
        let vol = Volume::new(Array3::<u8>::zeros((8, 8, 8)), 1.0);
        let t = table(&[("a", 1, 3.0)]);
        assert!(mean_shift(&vol, &t, &Default::default())
            .unwrap()
            .is_empty());
        for bad in [
            MeanShiftParams {
                bin: 0,
                ..Default::default()
            },
            MeanShiftParams {
                bandwidth_vox: Some(-1.0),
                ..Default::default()
            },
            MeanShiftParams {
                max_iter: 0,
                ..Default::default()
            },
        ] {
            assert!(mean_shift(&vol, &t, &bad).is_err());
        }
        assert!(mean_shift(&vol, &ClassTable::default(), &Default::default()).is_err());
    }
}
