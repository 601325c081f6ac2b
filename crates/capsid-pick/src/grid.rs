//! [`PointGrid`]: a uniform hash grid over points `[x, y, z]` for radius and nearest-neighbour
//! queries (cell size ≈ the query radius, so a radius query visits 27 cells).

/// A uniform grid of cubic cells of side `cell` (voxels) holding point indices.
#[derive(Debug, Clone)]
pub struct PointGrid {
    cell: f64,
    points: Vec<[f64; 3]>,
    /// Point indices sorted by cell (cells in z, y, x order over the box `lo..=hi`).
    ids: Vec<u32>,
    /// `start[c]..start[c + 1]` are the entries of `ids` in cell `c`.
    start: Vec<u32>,
    /// Bounding box of the occupied cells (min, max, inclusive).
    lo: [i64; 3],
    hi: [i64; 3],
}

impl PointGrid {
    /// Builds a grid over `points` (`[x, y, z]` voxels, finite) with cells of side `cell` (> 0).
    /// The cell is enlarged when the occupied box would need more than about 4 cells per point
    /// (plus 2^20), which keeps memory bounded for sparse point sets.
    pub fn new(points: Vec<[f64; 3]>, cell: f64) -> Self {
        let mut cell = if cell > 0.0 && cell.is_finite() {
            cell
        } else {
            1.0
        };
        let budget = 4 * points.len() as u64 + (1 << 20);
        let (lo, hi) = loop {
            let (mut lo, mut hi) = ([0i64; 3], [-1i64; 3]);
            if let Some(p0) = points.first() {
                lo = key(p0, cell);
                hi = lo;
            }
            for p in &points {
                let k = key(p, cell);
                for a in 0..3 {
                    lo[a] = lo[a].min(k[a]);
                    hi[a] = hi[a].max(k[a]);
                }
            }
            let n: u64 = (0..3).map(|a| (hi[a] - lo[a] + 1).max(0) as u64).product();
            if n <= budget {
                break (lo, hi);
            }
            cell *= 2.0;
        };
        let ext = [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1];
        let n_cells = (ext[0].max(0) * ext[1].max(0) * ext[2].max(0)) as usize;
        let flat = |k: [i64; 3]| {
            (((k[2] - lo[2]) * ext[1] + (k[1] - lo[1])) * ext[0] + (k[0] - lo[0])) as usize
        };
        let mut start = vec![0u32; n_cells + 1];
        for p in &points {
            start[flat(key(p, cell)) + 1] += 1;
        }
        for c in 0..n_cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut ids = vec![0u32; points.len()];
        for (i, p) in points.iter().enumerate() {
            let c = flat(key(p, cell));
            ids[fill[c] as usize] = i as u32;
            fill[c] += 1;
        }
        Self {
            cell,
            points,
            ids,
            start,
            lo,
            hi,
        }
    }

    /// Point indices in cell `k` (empty outside the box).
    fn cell_ids(&self, k: [i64; 3]) -> &[u32] {
        if (0..3).any(|a| k[a] < self.lo[a] || k[a] > self.hi[a]) {
            return &[];
        }
        let ext = [self.hi[0] - self.lo[0] + 1, self.hi[1] - self.lo[1] + 1];
        let c = (((k[2] - self.lo[2]) * ext[1] + (k[1] - self.lo[1])) * ext[0]
            + (k[0] - self.lo[0])) as usize;
        &self.ids[self.start[c] as usize..self.start[c + 1] as usize]
    }

    /// The points, in the order given.
    pub fn points(&self) -> &[[f64; 3]] {
        &self.points
    }

    /// Indices of the points within distance `r` (inclusive) of `p`, in increasing order.
    pub fn within(&self, p: [f64; 3], r: f64) -> Vec<usize> {
        let mut out = Vec::new();
        if self.points.is_empty() {
            return out;
        }
        let lo = key(&[p[0] - r, p[1] - r, p[2] - r], self.cell);
        let hi = key(&[p[0] + r, p[1] + r, p[2] + r], self.cell);
        let r2 = r * r;
        for kz in lo[2].max(self.lo[2])..=hi[2].min(self.hi[2]) {
            for ky in lo[1].max(self.lo[1])..=hi[1].min(self.hi[1]) {
                for kx in lo[0].max(self.lo[0])..=hi[0].min(self.hi[0]) {
                    {
                        for &i in self.cell_ids([kx, ky, kz]) {
                            if dist2(&self.points[i as usize], &p) <= r2 {
                                out.push(i as usize);
                            }
                        }
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The index of the point nearest to `p` and its squared distance; ties go to the lower index.
    /// `None` when the grid is empty.
    pub fn nearest(&self, p: [f64; 3]) -> Option<(usize, f64)> {
        if self.points.is_empty() {
            return None;
        }
        let c = key(&p, self.cell);
        let mut best: Option<(usize, f64)> = None;
        // Search shells of cells at Chebyshev distance s around c; a point in shell s is at least
        // (s - 1) * cell away, so stop once that exceeds the best distance.
        let max_shell = (0..3)
            .map(|a| (c[a] - self.lo[a]).abs().max((self.hi[a] - c[a]).abs()))
            .max()
            .unwrap_or(0);
        for s in 0..=max_shell {
            if let Some((_, d2)) = best {
                let reach = (s - 1).max(0) as f64 * self.cell;
                if reach * reach > d2 {
                    break;
                }
            }
            for kz in c[2] - s..=c[2] + s {
                for ky in c[1] - s..=c[1] + s {
                    for kx in c[0] - s..=c[0] + s {
                        let on_shell = (kz - c[2]).abs() == s
                            || (ky - c[1]).abs() == s
                            || (kx - c[0]).abs() == s;
                        if !on_shell {
                            continue;
                        }
                        {
                            for &i in self.cell_ids([kx, ky, kz]) {
                                let d2 = dist2(&self.points[i as usize], &p);
                                let better = match best {
                                    None => true,
                                    Some((bi, bd)) => d2 < bd || (d2 == bd && (i as usize) < bi),
                                };
                                if better {
                                    best = Some((i as usize, d2));
                                }
                            }
                        }
                    }
                }
            }
        }
        best
    }
}

fn key(p: &[f64; 3], cell: f64) -> [i64; 3] {
    [
        (p[0] / cell).floor() as i64,
        (p[1] / cell).floor() as i64,
        (p[2] / cell).floor() as i64,
    ]
}

/// Squared Euclidean distance.
pub fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let d = [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_points(n: usize) -> Vec<[f64; 3]> {
        // A fixed low-discrepancy-ish sequence; no RNG needed.
        (0..n)
            .map(|i| {
                let f = i as f64;
                [(f * 7.31) % 50.0, (f * 3.17) % 40.0, (f * 11.7) % 30.0]
            })
            .collect()
    }

    #[test]
    fn within_and_nearest_match_brute_force() {
        let pts = pseudo_points(500);
        let g = PointGrid::new(pts.clone(), 4.0);
        for q in [
            [0.0, 0.0, 0.0],
            [25.3, 20.1, 14.9],
            [49.0, 1.0, 29.0],
            [-30.0, 80.0, 5.0],
        ] {
            let brute: Vec<usize> = (0..pts.len())
                .filter(|&i| dist2(&pts[i], &q) <= 16.0)
                .collect();
            assert_eq!(g.within(q, 4.0), brute);
            let mut bi = 0;
            for i in 0..pts.len() {
                if dist2(&pts[i], &q) < dist2(&pts[bi], &q) {
                    bi = i;
                }
            }
            let (ni, nd) = g.nearest(q).unwrap();
            assert_eq!(ni, bi, "query {q:?}");
            assert_eq!(nd, dist2(&pts[bi], &q));
        }
        assert!(PointGrid::new(vec![], 1.0).nearest([0.0; 3]).is_none());
    }
}
