//! The global search: for every position of the tomogram and every rotation, the local
//! correlation coefficient (Roseman's FLCF) between the turned, filtered template and the
//! tomogram under the template's mask; the maximum over rotations and the rotation that gives it.
//!
//! For a template `t` normalised under its mask `m` (zero mean, `Σ m t² = N = Σ m`), the score
//! at a position is `Σ t · I / (N · σ)`, where `σ` is the standard deviation of the tomogram `I`
//! under the mask there: 1 for a perfect match, about 0 for noise. The sums are cross-
//! correlations computed with FFTs. With a radial mask (a sphere), `σ` is the same for every
//! rotation and is computed once per tile; otherwise it is recomputed for every rotation (three
//! times the work).
//!
//! Every voxel is a position: the tomogram is extended by its mean beyond its faces, so a
//! particle near a face is scored on the part of its box that lies inside (its score is lower
//! than it would be in the middle). Memory stays bounded by tiling: the extended tomogram is cut
//! into tiles of at most `tile` voxels a side (FFT-friendly sizes), overlapping by the template
//! side − 1, so that every position is scored exactly once. Rotations run in parallel (rayon),
//! one set of buffers per thread; results do not depend on the number of threads.

use crate::fft3::{good_size, Fft3, Scratch};
use crate::template::{Template, TemplateScratch};
use crate::MatchError;
use capsid_core::Rotation;
use ndarray::{Array3, ArrayView3};
use rayon::prelude::*;
use rustfft::num_complex::Complex32;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How the search is cut up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Largest FFT side of a tile in voxels (a tile's memory per thread is about
    /// `16 · tile³` bytes, and as much again without a radial mask).
    pub tile: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self { tile: 320 }
    }
}

/// What the search found.
#[derive(Debug, Clone)]
pub struct MatchMaps {
    /// Best score over rotations at each position (`[z, y, x]`, particle centres).
    pub scores: Array3<f32>,
    /// Index (into the rotation list) of the rotation with that score.
    pub best: Array3<u32>,
    /// Mean and standard deviation of the score over every scored position and rotation (the
    /// noise level that false-alarm thresholds use).
    pub mean: f64,
    pub std: f64,
    /// Number of scored positions (per rotation).
    pub positions: u64,
    /// Tiles and their FFT shape `[nz, ny, nx]`.
    pub tiles: usize,
    pub fft_shape: [usize; 3],
}

/// FFT length and tiles along one axis of length `dim` for a template of side `b`: each tile is
/// `(start, lo, hi)`: it reads the tomogram from `start` and owns the positions (template
/// corners) `start + lo .. start + hi`; owned ranges cover `0 ..= dim − b` once.
fn axis_plan(dim: usize, b: usize, tile: usize) -> (usize, Vec<(usize, usize, usize)>) {
    let n = if good_size(dim) <= tile {
        good_size(dim)
    } else {
        // The largest FFT-friendly size within the limit (at least twice the template).
        let mut n = tile.max(2 * b);
        while good_size(n) != n {
            n -= 1;
        }
        n.min(dim)
    };
    let positions = dim - b + 1;
    let per_tile = n - b + 1;
    let mut tiles = Vec::new();
    let mut from = 0;
    while from < positions {
        // The last tile ends at the tomogram's end when the FFT is no longer than it.
        let start = if n <= dim { from.min(dim - n) } else { 0 };
        let hi = (start + per_tile).min(positions);
        tiles.push((start, from - start, hi - start));
        from = hi;
    }
    (n, tiles)
}

/// Number of tiles [`search`] cuts a tomogram of shape `[nz, ny, nx]` into for a template of
/// side `b` and tiles of at most `tile` voxels a side.
pub fn tile_count(shape_zyx: [usize; 3], b: usize, tile: usize) -> usize {
    shape_zyx
        .iter()
        .map(|&d| {
            if d < b {
                0
            } else {
                axis_plan(d, b, tile.max(2 * b)).1.len()
            }
        })
        .product()
}

/// Per-thread buffers.
struct Worker {
    tbuf: Vec<f32>,
    spec: Vec<Complex32>,
    fft: Scratch,
    tmpl: TemplateScratch,
    boxed: Vec<f32>,
    mask_box: Vec<f32>,
    /// Only without a radial mask: the turned mask's correlations.
    mbuf: Vec<f32>,
    s2buf: Vec<f32>,
    mspec: Vec<Complex32>,
    spec2: Vec<Complex32>,
    best: Vec<f32>,
    arg: Vec<u32>,
}

/// Everything a tile shares between threads.
struct Tile<'a> {
    fft: &'a Fft3,
    n: [usize; 3],
    /// Owned positions `lo..hi` per axis, relative to the tile's start.
    lo: [usize; 3],
    hi: [usize; 3],
    f_i: Vec<Complex32>,
    f_i2: Vec<Complex32>,
    /// `1 / (N σ · n_fft)` per valid position (radial mask only).
    inv_den: Option<Vec<f32>>,
}

/// Copies `b³` values of `boxed` into the corner of `buf` (`n`), zeroing the rest of each row it
/// touches (the rows outside are never read by a forward transform with extent `b`).
fn place_corner(buf: &mut [f32], boxed: &[f32], b: usize, n: [usize; 3]) {
    let [_, ny, nx] = n;
    for z in 0..b {
        for y in 0..b {
            let row = &mut buf[(z * ny + y) * nx..(z * ny + y + 1) * nx];
            row[..b].copy_from_slice(&boxed[(z * b + y) * b..(z * b + y + 1) * b]);
            row[b..].fill(0.0);
        }
    }
}

/// `a ← f · conj(a)` elementwise.
fn times_conj(f: &[Complex32], a: &mut [Complex32]) {
    for (a, f) in a.iter_mut().zip(f) {
        *a = f * a.conj();
    }
}

/// `1 / (N σ n_fft)` from the raw (unnormalised) correlations `s1 = n_fft Σ m I` and
/// `s2 = n_fft Σ m I²`; 0 where the tomogram is flat under the mask (σ² below `floor`).
#[inline]
fn inv_denominator(s1: f32, s2: f32, n_mask: f64, n_fft: f64, floor: f64) -> f32 {
    let (c1, c2) = (s1 as f64 / n_fft, s2 as f64 / n_fft);
    let mean = c1 / n_mask;
    let var = c2 / n_mask - mean * mean;
    if var > floor {
        (1.0 / (n_mask * var.sqrt() * n_fft)) as f32
    } else {
        0.0
    }
}

/// Runs the search of `template` over `rotations` on `tomo` (`[z, y, x]`). `progress` is called
/// with 1 after each rotation of each tile (`tiles × rotations` calls in all).
pub fn search(
    tomo: ArrayView3<f32>,
    template: &Template,
    rotations: &[Rotation],
    opts: &SearchOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<MatchMaps, MatchError> {
    let b = template.side();
    let (dz, dy, dx) = tomo.dim();
    if dz == 0 || dy == 0 || dx == 0 {
        return Err(MatchError::Invalid("the tomogram is empty".into()));
    }
    if rotations.is_empty() {
        return Err(MatchError::Invalid("no rotation to search".into()));
    }
    if rotations.len() > u32::MAX as usize {
        return Err(MatchError::Invalid("too many rotations".into()));
    }
    if tomo.iter().any(|v| !v.is_finite()) {
        return Err(MatchError::Invalid(
            "the tomogram holds non-finite values".into(),
        ));
    }
    // The tomogram is extended by its mean, `b / 2` voxels before and `b − 1 − b / 2` after
    // on each axis, so that every voxel is a position (a template corner in the extended
    // volume is the particle centre in the tomogram).
    let tile = opts.tile.max(2 * b);
    let (nz, sz) = axis_plan(dz + b - 1, b, tile);
    let (ny, sy) = axis_plan(dy + b - 1, b, tile);
    let (nx, sx) = axis_plan(dx + b - 1, b, tile);
    let n = [nz, ny, nx];
    let fft = Fft3::new(n);
    let (mut s, mut s2) = (0.0f64, 0.0f64);
    for &v in tomo.iter() {
        s += v as f64;
        s2 += (v as f64) * (v as f64);
    }
    let count = tomo.len() as f64;
    let tomo_mean = (s / count) as f32;
    // Flat-region floor: a millionth of the tomogram's variance.
    let floor = 1e-6 * (s2 / count - (s / count).powi(2)).max(1e-30);

    let mut scores = Array3::<f32>::zeros((dz, dy, dx));
    let mut best = Array3::<u32>::zeros((dz, dy, dx));
    // Per rotation, per tile: (Σ cc, Σ cc²), summed in a fixed order at the end.
    let mut sums = vec![(0.0f64, 0.0f64); rotations.len()];
    let mut positions = 0u64;
    let mut tiles = 0usize;
    let mut scratch = fft.scratch();
    let mask_box: Vec<f32> = template.mask().to_vec();
    let n_mask_radial: f64 = mask_box.iter().map(|&v| v as f64).sum();
    for &(z0, zl, zh) in &sz {
        for &(y0, yl, yh) in &sy {
            for &(x0, xl, xh) in &sx {
                tiles += 1;
                let (lo, hi) = ([zl, yl, xl], [zh, yh, xh]);
                let tile = prepare_tile(
                    &fft,
                    (tomo, tomo_mean),
                    [z0, y0, x0],
                    (lo, hi),
                    template,
                    &mask_box,
                    n_mask_radial,
                    floor,
                    &mut scratch,
                );
                let (maps, tile_sums) = run_tile(&tile, template, rotations, floor, progress)?;
                for (acc, t) in sums.iter_mut().zip(&tile_sums) {
                    acc.0 += t.0;
                    acc.1 += t.1;
                }
                let own = [zh - zl, yh - yl, xh - xl];
                positions += (own[0] * own[1] * own[2]) as u64;
                let (tbest, targ) = maps;
                for z in 0..own[0] {
                    for y in 0..own[1] {
                        for x in 0..own[2] {
                            let i = (z * own[1] + y) * own[2] + x;
                            let p = [z0 + zl + z, y0 + yl + y, x0 + xl + x];
                            scores[p] = tbest[i];
                            best[p] = targ[i];
                        }
                    }
                }
            }
        }
    }
    let total = positions as f64 * rotations.len() as f64;
    let (s1, s2) = sums.iter().fold((0.0, 0.0), |a, t| (a.0 + t.0, a.1 + t.1));
    let mean = s1 / total;
    let std = (s2 / total - mean * mean).max(0.0).sqrt();
    Ok(MatchMaps {
        scores,
        best,
        mean,
        std,
        positions,
        tiles,
        fft_shape: n,
    })
}

/// The tile's spectra (tomogram and its square) and, with a radial mask, the denominators.
#[allow(clippy::too_many_arguments)]
fn prepare_tile<'a>(
    fft: &'a Fft3,
    (tomo, fill): (ArrayView3<f32>, f32),
    start: [usize; 3],
    (lo, hi): ([usize; 3], [usize; 3]),
    template: &Template,
    mask_box: &[f32],
    n_mask: f64,
    floor: f64,
    scratch: &mut Scratch,
) -> Tile<'a> {
    let n = fft.shape();
    let [nz, ny, nx] = n;
    let (dz, dy, dx) = tomo.dim();
    let c = (template.side() / 2) as i64;
    // Extended-volume index → tomogram index, `None` outside.
    let at = |start: usize, i: usize, d: usize| {
        let t = (start + i) as i64 - c;
        (t >= 0 && t < d as i64).then_some(t as usize)
    };
    let mut real = vec![fill; fft.real_len()];
    for z in 0..nz {
        let Some(tz) = at(start[0], z, dz) else {
            continue;
        };
        for y in 0..ny {
            let Some(ty) = at(start[1], y, dy) else {
                continue;
            };
            let row = &mut real[(z * ny + y) * nx..(z * ny + y + 1) * nx];
            for (x, v) in row.iter_mut().enumerate() {
                if let Some(tx) = at(start[2], x, dx) {
                    *v = tomo[[tz, ty, tx]];
                }
            }
        }
    }
    let mut f_i = vec![Complex32::default(); fft.spectrum_len()];
    let mut f_i2 = f_i.clone();
    let mut work = real.clone();
    fft.forward(&mut work, &mut f_i, n, scratch);
    for (w, r) in work.iter_mut().zip(&real) {
        *w = r * r;
    }
    fft.forward(&mut work, &mut f_i2, n, scratch);
    // Both real buffers are free now: they take the mask's sums of the tomogram and its square.
    let (mut s1, mut s2) = (real, work);
    let inv_den = template.mask_is_radial().then(|| {
        let b = template.side();
        let mut f_m = vec![Complex32::default(); fft.spectrum_len()];
        place_corner(&mut s1, mask_box, b, n);
        fft.forward(&mut s1, &mut f_m, [b, b, b], scratch);
        let mut a = f_m.clone();
        times_conj(&f_i, &mut a);
        fft.inverse(&mut a, &mut s1, [hi[0], hi[1]], scratch);
        times_conj(&f_i2, &mut f_m);
        fft.inverse(&mut f_m, &mut s2, [hi[0], hi[1]], scratch);
        let n_fft = fft.real_len() as f64;
        let mut out = Vec::with_capacity((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
        for z in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                for x in lo[2]..hi[2] {
                    let i = (z * ny + y) * nx + x;
                    out.push(inv_denominator(s1[i], s2[i], n_mask, n_fft, floor));
                }
            }
        }
        out
    });
    Tile {
        fft,
        n,
        lo,
        hi,
        f_i,
        f_i2,
        inv_den,
    }
}

type TileMaps = (Vec<f32>, Vec<u32>);
/// One thread's result over a tile: its maps and `(rotation, Σ score, Σ score²)` per rotation run.
type ThreadResult = Result<(TileMaps, Vec<(usize, f64, f64)>), MatchError>;

/// All rotations over one tile, in parallel: each thread pulls the next rotation index, keeps
/// its own best map, and the maps are merged (higher score wins; ties go to the lower rotation
/// index, so the result does not depend on which thread ran what).
fn run_tile(
    tile: &Tile,
    template: &Template,
    rotations: &[Rotation],
    floor: f64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(TileMaps, Vec<(f64, f64)>), MatchError> {
    let nv = (0..3).map(|a| tile.hi[a] - tile.lo[a]).product::<usize>();
    let threads = rayon::current_num_threads().min(rotations.len()).max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<ThreadResult> = (0..threads)
        .into_par_iter()
        .map(|_| {
            let mut w = new_worker(tile, template, nv);
            let mut sums = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= rotations.len() {
                    break;
                }
                let (a, b) = one_rotation(tile, template, &rotations[i], i as u32, floor, &mut w)?;
                sums.push((i, a, b));
                progress(1);
            }
            Ok(((w.best, w.arg), sums))
        })
        .collect();
    let mut best = vec![f32::NEG_INFINITY; nv];
    let mut arg = vec![0u32; nv];
    let mut sums = vec![(0.0, 0.0); rotations.len()];
    for r in results {
        let ((b, a), s) = r?;
        for i in 0..nv {
            if b[i] > best[i] || (b[i] == best[i] && a[i] < arg[i]) {
                best[i] = b[i];
                arg[i] = a[i];
            }
        }
        for (i, x, y) in s {
            sums[i] = (x, y);
        }
    }
    Ok(((best, arg), sums))
}

fn new_worker(tile: &Tile, template: &Template, nv: usize) -> Worker {
    let b = template.side();
    let radial = template.mask_is_radial();
    let real = tile.fft.real_len();
    let spec = tile.fft.spectrum_len();
    let extra = |len: usize| if radial { 0 } else { len };
    Worker {
        tbuf: vec![0.0; real],
        spec: vec![Complex32::default(); spec],
        fft: tile.fft.scratch(),
        tmpl: template.scratch(),
        boxed: vec![0.0; b * b * b],
        mask_box: vec![0.0; extra(b * b * b)],
        mbuf: vec![0.0; extra(real)],
        s2buf: vec![0.0; extra(real)],
        mspec: vec![Complex32::default(); extra(spec)],
        spec2: vec![Complex32::default(); extra(spec)],
        best: vec![f32::NEG_INFINITY; nv],
        arg: vec![0; nv],
    }
}

/// One rotation over one tile: updates the worker's best map; returns (Σ score, Σ score²) over
/// the tile's positions.
fn one_rotation(
    tile: &Tile,
    template: &Template,
    rot: &Rotation,
    index: u32,
    floor: f64,
    w: &mut Worker,
) -> Result<(f64, f64), MatchError> {
    let b = template.side();
    let n = tile.n;
    let [_, ny, nx] = n;
    let radial = tile.inv_den.is_some();
    let n_mask = if radial {
        template.prepare(rot, &mut w.boxed, None, &mut w.tmpl)?
    } else {
        template.prepare(rot, &mut w.boxed, Some(&mut w.mask_box), &mut w.tmpl)?
    };
    place_corner(&mut w.tbuf, &w.boxed, b, n);
    tile.fft
        .forward(&mut w.tbuf, &mut w.spec, [b, b, b], &mut w.fft);
    times_conj(&tile.f_i, &mut w.spec);
    let (lo, hi) = (tile.lo, tile.hi);
    tile.fft
        .inverse(&mut w.spec, &mut w.tbuf, [hi[0], hi[1]], &mut w.fft);
    if !radial {
        place_corner(&mut w.mbuf, &w.mask_box, b, n);
        tile.fft
            .forward(&mut w.mbuf, &mut w.mspec, [b, b, b], &mut w.fft);
        w.spec2.copy_from_slice(&w.mspec);
        times_conj(&tile.f_i, &mut w.mspec);
        times_conj(&tile.f_i2, &mut w.spec2);
        tile.fft
            .inverse(&mut w.mspec, &mut w.mbuf, [hi[0], hi[1]], &mut w.fft);
        tile.fft
            .inverse(&mut w.spec2, &mut w.s2buf, [hi[0], hi[1]], &mut w.fft);
    }
    let n_fft = tile.fft.real_len() as f64;
    let (oy, ox) = (hi[1] - lo[1], hi[2] - lo[2]);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for z in lo[0]..hi[0] {
        for y in lo[1]..hi[1] {
            let row = (z * ny + y) * nx;
            let out = ((z - lo[0]) * oy + (y - lo[1])) * ox;
            let mut r1 = 0.0f64;
            let mut r2 = 0.0f64;
            for (j, x) in (lo[2]..hi[2]).enumerate() {
                let inv = match &tile.inv_den {
                    Some(d) => d[out + j],
                    None => {
                        inv_denominator(w.mbuf[row + x], w.s2buf[row + x], n_mask, n_fft, floor)
                    }
                };
                let cc = w.tbuf[row + x] * inv;
                r1 += cc as f64;
                r2 += (cc as f64) * (cc as f64);
                let o = out + j;
                if cc > w.best[o] {
                    w.best[o] = cc;
                    w.arg[o] = index;
                }
            }
            s1 += r1;
            s2 += r2;
        }
    }
    Ok((s1, s2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{rotate_cube, TemplateFilter};
    use rand::{Rng, SeedableRng};

    /// An asymmetric template: three blobs of different sizes off the centre.
    fn blobs(b: usize) -> Array3<f32> {
        let c = (b / 2) as f64;
        let parts = [
            ([3.0, 0.0, 0.0], 2.0, 1.0),
            ([-2.0, 3.0, 1.0], 1.5, 0.8),
            ([0.0, -1.0, 3.5], 1.2, 0.6),
        ];
        Array3::from_shape_fn((b, b, b), |(z, y, x)| {
            let p = [x as f64 - c, y as f64 - c, z as f64 - c];
            parts
                .iter()
                .map(|(q, s, a)| {
                    let d2: f64 = (0..3).map(|i| (p[i] - q[i]).powi(2)).sum();
                    a * (-d2 / (2.0 * s * s)).exp()
                })
                .sum::<f64>() as f32
        })
    }

    /// A noisy tomogram with the template planted, turned, at `sites` (`[z, y, x]` centres).
    fn planted(
        shape: [usize; 3],
        t: &Array3<f32>,
        sites: &[([usize; 3], Rotation)],
        noise: f32,
    ) -> Array3<f32> {
        let b = t.dim().0;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut tomo = Array3::from_shape_fn((shape[0], shape[1], shape[2]), |_| {
            noise * rng.gen_range(-1.0f32..1.0)
        });
        let flat: Vec<f32> = t.iter().copied().collect();
        let mut turned = vec![0.0; b * b * b];
        for (centre, r) in sites {
            rotate_cube(&flat, b, r, &mut turned);
            for z in 0..b {
                for y in 0..b {
                    for x in 0..b {
                        // A particle at a face is cut by it.
                        let p = [
                            (centre[0] + z).wrapping_sub(b / 2),
                            (centre[1] + y).wrapping_sub(b / 2),
                            (centre[2] + x).wrapping_sub(b / 2),
                        ];
                        if let Some(v) = tomo.get_mut(p) {
                            *v += turned[(z * b + y) * b + x];
                        }
                    }
                }
            }
        }
        tomo
    }

    #[test]
    fn scores_equal_the_local_correlation_computed_directly() {
        let b = 11;
        let t = blobs(b);
        let template = Template::new(&t, None, false, &TemplateFilter::default()).unwrap();
        let rot = Rotation::rx(0.7).mul(&Rotation::rz(0.2));
        let tomo = planted([30, 28, 26], &t, &[([14, 13, 12], rot)], 0.3);
        let maps = search(
            tomo.view(),
            &template,
            &[rot],
            &SearchOptions::default(),
            &|_| {},
        )
        .unwrap();
        let mut prepared = vec![0.0f32; b * b * b];
        let mut ws = template.scratch();
        let n = template
            .prepare(&rot, &mut prepared, None, &mut ws)
            .unwrap();
        let mask = template.mask();
        for centre in [[14usize, 13, 12], [5, 5, 5], [20, 9, 17], [24, 22, 20]] {
            let o = [centre[0] - b / 2, centre[1] - b / 2, centre[2] - b / 2];
            let (mut st, mut sm, mut sm2) = (0.0f64, 0.0f64, 0.0f64);
            for z in 0..b {
                for y in 0..b {
                    for x in 0..b {
                        let i = (z * b + y) * b + x;
                        let v = tomo[[o[0] + z, o[1] + y, o[2] + x]] as f64;
                        st += prepared[i] as f64 * v;
                        sm += mask[i] as f64 * v;
                        sm2 += mask[i] as f64 * v * v;
                    }
                }
            }
            let sigma = (sm2 / n - (sm / n).powi(2)).sqrt();
            let direct = st / (n * sigma);
            let got = maps.scores[centre] as f64;
            assert!((got - direct).abs() < 1e-4, "{centre:?}: {got} vs {direct}");
        }
        // The planted copy scores high (its noise keeps it below 1), noise far below.
        assert!(
            maps.scores[[14, 13, 12]] > 0.7,
            "{}",
            maps.scores[[14, 13, 12]]
        );
        assert!(maps.scores[[5, 5, 5]] < 0.3);
        // Positions near a face are scored too, on the part of their box inside.
        assert!(maps.scores[[0, 13, 12]] != 0.0);
    }

    #[test]
    fn planted_particles_are_found_with_their_rotations_whatever_the_tiles_and_threads() {
        let b = 13;
        let t = blobs(b);
        let template = Template::new(&t, None, false, &TemplateFilter::default()).unwrap();
        let rotations = crate::so3::uniform_rotations(30.0);
        let sites = [
            ([12, 14, 40], rotations[17]),
            ([30, 44, 15], rotations[250]),
        ];
        let tomo = planted([44, 58, 56], &t, &sites, 0.5);
        let run = |tile: usize, threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    search(
                        tomo.view(),
                        &template,
                        &rotations,
                        &SearchOptions { tile },
                        &|_| {},
                    )
                    .unwrap()
                })
        };
        let whole = run(256, 2);
        assert_eq!(whole.tiles, 1);
        for (centre, r) in &sites {
            let found = rotations[whole.best[*centre] as usize];
            assert!(found.angle_to_deg(r) < 1e-6, "{centre:?}");
            assert!(whole.scores[*centre] > 0.5, "{}", whole.scores[*centre]);
        }
        let tiled = run(30, 3);
        assert!(tiled.tiles > 4, "{}", tiled.tiles);
        let mut worst = 0.0f32;
        for (a, b) in whole.scores.iter().zip(tiled.scores.iter()) {
            worst = worst.max((a - b).abs());
        }
        assert!(worst < 1e-4, "tiling changed scores by {worst}");
        // Rounding differs between tile sizes, so near-ties between rotations may flip at
        // noise positions; at the particles the rotation is the same.
        for (centre, _) in &sites {
            assert_eq!(whole.best[*centre], tiled.best[*centre]);
        }
        let differ = whole
            .best
            .iter()
            .zip(tiled.best.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ * 100 < whole.best.len(), "{differ} positions differ");
        assert!((whole.std - tiled.std).abs() < 1e-6 && whole.std > 0.0);
    }

    #[test]
    fn tiles_cover_every_position_once() {
        for (dim, b, tile) in [(100, 10, 32), (64, 16, 256), (50, 7, 20), (33, 33, 64)] {
            let (n, tiles) = axis_plan(dim, b, tile);
            assert!(n >= b);
            let mut covered = vec![0; dim - b + 1];
            for &(s, lo, hi) in &tiles {
                assert!(lo < hi && hi <= n - b + 1, "{dim} {b} {tile}: {tiles:?}");
                assert!(n > dim || s + n <= dim, "{dim} {b} {tile}: {tiles:?}");
                for c in &mut covered[s + lo..s + hi] {
                    *c += 1;
                }
            }
            assert!(
                covered.iter().all(|&c| c == 1),
                "{dim} {b} {tile}: {tiles:?}"
            );
        }
    }
}
