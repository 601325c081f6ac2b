//! Dynamic routing of capsule votes (3D-UCaps, after SegCaps), fused into one pass per tile of
//! 16 voxels, with its gradient.
//!
//! Votes are `[batch, in_caps, out_caps, atoms, positions]` (contiguous, row-major; `positions`
//! = z·y·x of the capsule map, x fastest), the bias `[out_caps, atoms]`, the output capsules
//! `[batch, out_caps, atoms, positions]`. Per voxel, with `u[i][j]` the vote of input capsule
//! `i` for output capsule `j` (a vector of `atoms`):
//! logits `b = 0`; for each of `iters` iterations: `c[i] = softmax_j(b[i])`,
//! `s[j] = Σ_i c[i][j]·u[i][j] + bias[j]`, `v[j] = squash(s[j])`, and, except after the last
//! iteration, `b[i][j] += ⟨u[i][j], v[j]⟩`. `squash(s) = |s|²/(1+|s|²) · s/√(|s|²+1e-8)`.
//!
//! Written as tensor operations this makes about ten passes over the votes per iteration
//! (broadcast products, sums, softmax, squash) and, under autodiff, keeps each intermediate;
//! here a tile of 16 voxels is gathered once into a small buffer that stays in cache and every
//! iteration runs on it, 16 voxels per vector operation. The gradient recomputes the forward
//! iterations of the tile (nothing is stored between the passes) and runs them backwards.
//! Results do not depend on the thread count (the bias gradient is summed per tile, then in tile
//! order).

mod backward;
mod forward;
mod ops;

pub use backward::routing_backward;
pub use forward::routing_forward;

/// Voxels handled together, one per vector lane.
const LANES: usize = 16;
type Lane = [f32; LANES];

/// `ε` inside the square root of the squash (as the reference implementation).
const SQUASH_EPS: f32 = 1e-8;

/// Sizes of one routing step; see the module docs for the layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routing {
    pub batch: usize,
    pub in_caps: usize,
    pub out_caps: usize,
    /// Atoms (vector length) of the output capsules.
    pub atoms: usize,
    /// Voxels per capsule map (z·y·x).
    pub positions: usize,
    /// Routing iterations (at least 1).
    pub iters: usize,
}

impl Routing {
    /// Number of vote values, `batch·in_caps·out_caps·atoms·positions`.
    pub fn votes_len(&self) -> usize {
        self.batch * self.in_caps * self.out_caps * self.atoms * self.positions
    }

    /// Number of output values, `batch·out_caps·atoms·positions`.
    pub fn out_len(&self) -> usize {
        self.batch * self.out_caps * self.atoms * self.positions
    }

    /// Number of bias values, `out_caps·atoms`.
    pub fn bias_len(&self) -> usize {
        self.out_caps * self.atoms
    }

    fn tiles_per_map(&self) -> usize {
        self.positions.div_ceil(LANES)
    }

    fn check(&self, votes: &[f32], bias: &[f32]) {
        assert!(self.iters >= 1, "routing needs at least one iteration");
        assert_eq!(votes.len(), self.votes_len(), "votes length");
        assert_eq!(bias.len(), self.bias_len(), "bias length");
    }
}

/// Copies `src` (1 to 16 values) into the first lanes of `lane`, zeros after.
#[inline(always)]
fn load_lane(lane: &mut Lane, src: &[f32]) {
    match <&Lane>::try_from(src) {
        Ok(full) => *lane = *full,
        Err(_) => {
            lane[..src.len()].copy_from_slice(src);
            lane[src.len()..].fill(0.0);
        }
    }
}

/// Writes the first `n` lanes of `lane` to `dst`.
///
/// # Safety
/// `dst..dst + n` must be valid for writes and not accessed by anyone else meanwhile.
#[inline(always)]
unsafe fn store_lane(lane: &Lane, dst: *mut f32, n: usize) {
    // SAFETY: the caller guarantees `dst..dst + n` is writable and ours alone; an unaligned
    // write of a whole lane covers exactly `n == LANES` floats, a copy covers `n ≤ LANES`.
    unsafe {
        if n == LANES {
            (dst as *mut Lane).write_unaligned(*lane);
        } else {
            std::ptr::copy_nonoverlapping(lane.as_ptr(), dst, n);
        }
    }
}

/// Batch index, first voxel and number of voxels (1..=16) of tile `tile`.
fn tile_span(r: &Routing, tile: usize) -> (usize, usize, usize) {
    let per_map = r.tiles_per_map();
    let (b, t) = (tile / per_map, tile % per_map);
    let p0 = t * LANES;
    (b, p0, LANES.min(r.positions - p0))
}

/// Per-task buffers of one tile, each value a lane of 16 voxels. Index orders: votes and their
/// gradient `[in_caps][out_caps][atoms]`, logits and couplings `[in_caps][out_caps]`, capsule
/// vectors `[out_caps][atoms]`; the per-iteration ones are stacked `[iters][…]`.
struct Work {
    u: Vec<Lane>,
    /// Logits `b` (forward) or their gradient (backward).
    b: Vec<Lane>,
    /// Couplings `c` of every iteration.
    c: Vec<Lane>,
    /// Routed sums `s` of every iteration.
    s: Vec<Lane>,
    /// Squashed outputs `v` of every iteration.
    v: Vec<Lane>,
    /// Output gradient of the tile, then the gradient with respect to `v` of the iteration.
    gv: Vec<Lane>,
    gs: Vec<Lane>,
    gc: Vec<Lane>,
    gu: Vec<Lane>,
    gbias: Vec<Lane>,
}

impl Work {
    fn new(r: &Routing) -> Self {
        let (ci, co, a, t) = (r.in_caps, r.out_caps, r.atoms, r.iters);
        let z = |n: usize| vec![[0.0f32; LANES]; n];
        Self {
            u: z(ci * co * a),
            b: z(ci * co),
            c: z(t * ci * co),
            s: z(t * co * a),
            v: z(t * co * a),
            gv: z(co * a),
            gs: z(co * a),
            gc: z(ci * co),
            gu: z(ci * co * a),
            gbias: z(co * a),
        }
    }

    /// Copies the votes of voxels `p0..p0 + n` of batch item `b`; lanes past `n` are zero.
    fn gather_votes(&mut self, r: &Routing, votes: &[f32], b: usize, p0: usize, n: usize) {
        let rows = r.in_caps * r.out_caps * r.atoms;
        let src = &votes[b * rows * r.positions..(b + 1) * rows * r.positions];
        for (row, lane) in self.u.iter_mut().enumerate() {
            let at = row * r.positions + p0;
            load_lane(lane, &src[at..at + n]);
        }
    }

    /// Copies the output gradient of voxels `p0..p0 + n` of batch item `b` into `gv`.
    fn gather_grad(&mut self, r: &Routing, grad: &[f32], b: usize, p0: usize, n: usize) {
        let rows = r.out_caps * r.atoms;
        let src = &grad[b * rows * r.positions..(b + 1) * rows * r.positions];
        for (row, lane) in self.gv.iter_mut().enumerate() {
            let at = row * r.positions + p0;
            load_lane(lane, &src[at..at + n]);
        }
    }

    /// The output capsules of the last iteration, `[out_caps][atoms]`.
    fn last_v(&self, r: &Routing) -> &[Lane] {
        let n = r.out_caps * r.atoms;
        &self.v[(r.iters - 1) * n..r.iters * n]
    }
}

#[cfg(test)]
mod tests {
    use super::ops::Ops;
    use super::*;
    use pulp::{Arch, Simd, WithSimd};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
    }

    /// Plain per-voxel loops in f64, as the module docs state the routing.
    fn reference(r: &Routing, votes: &[f32], bias: &[f32]) -> Vec<f64> {
        let (ci, co, a, p) = (r.in_caps, r.out_caps, r.atoms, r.positions);
        let mut out = vec![0.0f64; r.out_len()];
        for b in 0..r.batch {
            for x in 0..p {
                let u = |i: usize, j: usize, k: usize| {
                    votes[(((b * ci + i) * co + j) * a + k) * p + x] as f64
                };
                let mut logits = vec![0.0f64; ci * co];
                let mut v = vec![0.0f64; co * a];
                for t in 0..r.iters {
                    for j in 0..co {
                        let mut s: Vec<f64> = (0..a).map(|k| bias[j * a + k] as f64).collect();
                        for i in 0..ci {
                            let m = (0..co).map(|q| logits[i * co + q]).fold(f64::MIN, f64::max);
                            let z: f64 = (0..co).map(|q| (logits[i * co + q] - m).exp()).sum();
                            let c = (logits[i * co + j] - m).exp() / z;
                            for (k, sk) in s.iter_mut().enumerate() {
                                *sk += c * u(i, j, k);
                            }
                        }
                        let n2: f64 = s.iter().map(|x| x * x).sum();
                        let scale = n2 / (1.0 + n2) / (n2 + 1e-8).sqrt();
                        for k in 0..a {
                            v[j * a + k] = s[k] * scale;
                        }
                    }
                    if t + 1 < r.iters {
                        for i in 0..ci {
                            for j in 0..co {
                                logits[i * co + j] +=
                                    (0..a).map(|k| u(i, j, k) * v[j * a + k]).sum::<f64>();
                            }
                        }
                    }
                }
                for j in 0..co * a {
                    out[(b * co * a + j) * p + x] = v[j];
                }
            }
        }
        out
    }

    fn shapes() -> Vec<Routing> {
        let r = |batch, in_caps, out_caps, atoms, positions, iters| Routing {
            batch,
            in_caps,
            out_caps,
            atoms,
            positions,
            iters,
        };
        vec![
            r(1, 2, 3, 4, 5, 3),
            r(2, 3, 2, 5, 37, 2),
            r(1, 1, 4, 3, 16, 1),
            r(2, 4, 1, 2, 21, 3),
            r(1, 5, 3, 8, 70, 4),
        ]
    }

    #[test]
    fn forward_matches_per_voxel_loops() {
        for (n, r) in shapes().into_iter().enumerate() {
            let votes = random(r.votes_len(), n as u64, 2.0);
            let bias = random(r.bias_len(), 100 + n as u64, 0.5);
            let got = routing_forward(&r, &votes, &bias);
            let want = reference(&r, &votes, &bias);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 + 1e-5 * w.abs(),
                    "{r:?} [{i}]: {g} vs {w}"
                );
            }
        }
    }

    /// `e^x` of a lane through the dispatched vector code.
    struct ExpOfLane(Lane);

    impl WithSimd for ExpOfLane {
        type Output = Lane;

        fn with_simd<S: Simd>(self, simd: S) -> Lane {
            Ops(simd).exp_of_difference(&self.0, &[0.0; LANES])
        }
    }

    #[test]
    fn exp_matches_std() {
        let xs: Vec<f32> = (0..400).map(|i| -0.25 * i as f32).collect();
        for chunk in xs.chunks(LANES) {
            let mut lane = [0.0f32; LANES];
            lane[..chunk.len()].copy_from_slice(chunk);
            let e = Arch::new().dispatch(ExpOfLane(lane));
            for (x, got) in chunk.iter().zip(e) {
                let want = (*x as f64).exp();
                if *x >= -87.0 {
                    assert!(
                        (got as f64 - want).abs() <= 3e-7 * want,
                        "exp({x}) = {got}, want {want}"
                    );
                } else {
                    assert!(got <= 1.7e-38, "exp({x}) = {got}, want ≈ 0");
                }
            }
        }
    }

    /// Central differences in f64 of the reference loops against the analytic gradient.
    #[test]
    fn backward_matches_finite_differences() {
        for (n, r) in shapes().into_iter().enumerate() {
            let votes = random(r.votes_len(), 10 + n as u64, 1.5);
            let bias = random(r.bias_len(), 20 + n as u64, 0.5);
            let proj = random(r.out_len(), 30 + n as u64, 1.0);
            let (gv, gb) = routing_backward(&r, &votes, &bias, &proj);
            let loss = |votes: &[f32], bias: &[f32]| -> f64 {
                let out = reference(&r, votes, bias);
                out.iter().zip(&proj).map(|(o, p)| o * *p as f64).sum()
            };
            let eps = 1e-3f32;
            let check = |what: &str, i: usize, analytic: f32, plus: f64, minus: f64| {
                let fd = (plus - minus) / (2.0 * eps as f64);
                assert!(
                    (fd - analytic as f64).abs() <= 2e-3 + 1e-2 * fd.abs(),
                    "{r:?} {what}[{i}]: analytic {analytic}, finite difference {fd}"
                );
            };
            for i in (0..votes.len()).step_by(7) {
                let (mut p, mut m) = (votes.clone(), votes.clone());
                p[i] += eps;
                m[i] -= eps;
                check("votes", i, gv[i], loss(&p, &bias), loss(&m, &bias));
            }
            for i in 0..bias.len() {
                let (mut p, mut m) = (bias.clone(), bias.clone());
                p[i] += eps;
                m[i] -= eps;
                check("bias", i, gb[i], loss(&votes, &p), loss(&votes, &m));
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let r = Routing {
            batch: 3,
            in_caps: 4,
            out_caps: 3,
            atoms: 4,
            positions: 150,
            iters: 3,
        };
        let votes = random(r.votes_len(), 1, 2.0);
        let bias = random(r.bias_len(), 2, 0.5);
        let grad = random(r.out_len(), 3, 1.0);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                (
                    routing_forward(&r, &votes, &bias),
                    routing_backward(&r, &votes, &bias, &grad),
                )
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    #[should_panic(expected = "votes length")]
    fn wrong_votes_length_panics() {
        let r = shapes()[0];
        routing_forward(&r, &[0.0; 3], &vec![0.0; r.bias_len()]);
    }
}
