//! Real 3D FFTs of `[z, y, x]` volumes (x fastest) in single precision, with the pruning that
//! template matching needs: a forward transform of a template that is zero outside a small box
//! at the origin skips the rows and planes it knows are zero, and an inverse transform produces
//! only the planes and rows of the positions that are scored.
//!
//! The spectrum is the half spectrum along x (`nx / 2 + 1` bins), stored `[z][y][kx]` with kx
//! fastest, unnormalised both ways (forward then inverse multiplies by `nz · ny · nx`). Built on
//! `realfft` (real ↔ complex along x) and `rustfft` (complex along y and z, through transposes so
//! that every 1D transform runs on contiguous memory). One [`Fft3`] is shared by all threads;
//! each thread brings its own [`Scratch`].

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// A good FFT length ≥ `n`: the smallest number of the form 2^a 3^b 5^c 7^d.
pub fn good_size(n: usize) -> usize {
    let mut m = n.max(1);
    loop {
        let mut k = m;
        for p in [2, 3, 5, 7] {
            while k.is_multiple_of(p) {
                k /= p;
            }
        }
        if k == 1 {
            return m;
        }
        m += 1;
    }
}

/// Plans for one shape.
pub struct Fft3 {
    shape: [usize; 3],
    nxh: usize,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    fwd_y: Arc<dyn Fft<f32>>,
    inv_y: Arc<dyn Fft<f32>>,
    fwd_z: Arc<dyn Fft<f32>>,
    inv_z: Arc<dyn Fft<f32>>,
}

/// Per-thread working memory of an [`Fft3`].
pub struct Scratch {
    cplx: Vec<Complex32>,
    block: Vec<Complex32>,
}

impl Fft3 {
    /// Plans for real volumes of shape `[nz, ny, nx]` (each ≥ 1).
    pub fn new(shape: [usize; 3]) -> Self {
        let [nz, ny, nx] = shape;
        let mut rp = RealFftPlanner::<f32>::new();
        let mut cp = FftPlanner::<f32>::new();
        Self {
            shape,
            nxh: nx / 2 + 1,
            r2c: rp.plan_fft_forward(nx),
            c2r: rp.plan_fft_inverse(nx),
            fwd_y: cp.plan_fft_forward(ny),
            inv_y: cp.plan_fft_inverse(ny),
            fwd_z: cp.plan_fft_forward(nz),
            inv_z: cp.plan_fft_inverse(nz),
        }
    }

    /// The real shape `[nz, ny, nx]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of real values, `nz · ny · nx`.
    pub fn real_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of spectrum values, `nz · ny · (nx / 2 + 1)`.
    pub fn spectrum_len(&self) -> usize {
        self.shape[0] * self.shape[1] * self.nxh
    }

    /// Half-spectrum shape `[nz, ny, nx / 2 + 1]`.
    pub fn spectrum_shape(&self) -> [usize; 3] {
        [self.shape[0], self.shape[1], self.nxh]
    }

    /// Working memory for one thread.
    pub fn scratch(&self) -> Scratch {
        let [nz, ny, _] = self.shape;
        let cplx = [
            self.r2c.get_scratch_len(),
            self.c2r.get_scratch_len(),
            self.fwd_y.get_inplace_scratch_len(),
            self.inv_y.get_inplace_scratch_len(),
            self.fwd_z.get_inplace_scratch_len(),
            self.inv_z.get_inplace_scratch_len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Scratch {
            cplx: vec![Complex32::default(); cplx],
            block: vec![Complex32::default(); self.nxh * ny.max(nz)],
        }
    }

    /// Forward transform of `real` (`[nz, ny, nx]`, overwritten: used as scratch) into `spec`
    /// (`[nz, ny, nx/2+1]`). `extent = [ez, ey, ex]`: the caller promises that `real` is zero
    /// outside `[0, ez) × [0, ey) × [0, ex)`; rows and planes outside are not read.
    pub fn forward(
        &self,
        real: &mut [f32],
        spec: &mut [Complex32],
        extent: [usize; 3],
        scratch: &mut Scratch,
    ) {
        let [nz, ny, nx] = self.shape;
        let nxh = self.nxh;
        assert_eq!(real.len(), nz * ny * nx);
        assert_eq!(spec.len(), nz * ny * nxh);
        let (ez, ey) = (extent[0].min(nz), extent[1].min(ny));
        let plane = ny * nxh;
        // x: real rows → half-spectrum rows; known-zero rows and planes are cleared.
        for z in 0..nz {
            let sp = &mut spec[z * plane..(z + 1) * plane];
            if z >= ez {
                sp.fill(Complex32::default());
                continue;
            }
            for y in 0..ny {
                let out = &mut sp[y * nxh..(y + 1) * nxh];
                if y >= ey {
                    out.fill(Complex32::default());
                    continue;
                }
                let row = &mut real[(z * ny + y) * nx..(z * ny + y + 1) * nx];
                // The lengths are the plan's, so this cannot fail.
                let _ = self.r2c.process_with_scratch(row, out, &mut scratch.cplx);
            }
        }
        // y: within each non-zero plane, through a transpose.
        for z in 0..ez {
            let sp = &mut spec[z * plane..(z + 1) * plane];
            self.along_y(sp, &self.fwd_y, ny, scratch);
        }
        // z: every (y, kx) column.
        self.along_z(spec, &self.fwd_z, nz, scratch);
    }

    /// Inverse transform of `spec` (overwritten) into `real`. Only the planes `z < out_extent[0]`
    /// and, within them, the rows `y < out_extent[1]` of `real` are written (all x); the rest of
    /// `real` is left as it was.
    pub fn inverse(
        &self,
        spec: &mut [Complex32],
        real: &mut [f32],
        out_extent: [usize; 2],
        scratch: &mut Scratch,
    ) {
        let [nz, ny, nx] = self.shape;
        let nxh = self.nxh;
        assert_eq!(real.len(), nz * ny * nx);
        assert_eq!(spec.len(), nz * ny * nxh);
        let (oz, oy) = (out_extent[0].min(nz), out_extent[1].min(ny));
        let plane = ny * nxh;
        self.along_z(spec, &self.inv_z, nz, scratch);
        for z in 0..oz {
            let sp = &mut spec[z * plane..(z + 1) * plane];
            self.along_y(sp, &self.inv_y, ny, scratch);
            for y in 0..oy {
                let row = &mut sp[y * nxh..(y + 1) * nxh];
                // A Hermitian spectrum's DC (and Nyquist) bins are real; rounding leaves a
                // trace of imaginary part that realfft would refuse.
                row[0].im = 0.0;
                if nx % 2 == 0 {
                    row[nxh - 1].im = 0.0;
                }
                let out = &mut real[(z * ny + y) * nx..(z * ny + y + 1) * nx];
                let _ = self.c2r.process_with_scratch(row, out, &mut scratch.cplx);
            }
        }
    }

    /// 1D transforms along y of one plane `[ny][nxh]` through a transpose into `[nxh][ny]`.
    fn along_y(&self, sp: &mut [Complex32], fft: &Arc<dyn Fft<f32>>, ny: usize, s: &mut Scratch) {
        let nxh = self.nxh;
        let block = &mut s.block[..nxh * ny];
        transpose(sp, block, ny, nxh);
        fft.process_with_scratch(block, &mut s.cplx);
        transpose(block, sp, nxh, ny);
    }

    /// 1D transforms along z: for each y, the `[nz][nxh]` block of rows (stride one plane) is
    /// gathered transposed into `[nxh][nz]`, transformed and scattered back.
    fn along_z(&self, spec: &mut [Complex32], fft: &Arc<dyn Fft<f32>>, nz: usize, s: &mut Scratch) {
        let nxh = self.nxh;
        let ny = self.shape[1];
        let plane = ny * nxh;
        let block = &mut s.block[..nxh * nz];
        for y in 0..ny {
            for z in 0..nz {
                let row = &spec[z * plane + y * nxh..z * plane + (y + 1) * nxh];
                for (k, &v) in row.iter().enumerate() {
                    block[k * nz + z] = v;
                }
            }
            fft.process_with_scratch(block, &mut s.cplx);
            for z in 0..nz {
                let row = &mut spec[z * plane + y * nxh..z * plane + (y + 1) * nxh];
                for (k, v) in row.iter_mut().enumerate() {
                    *v = block[k * nz + z];
                }
            }
        }
    }
}

/// Out-of-place transpose of `src` (`rows × cols`, row-major) into `dst` (`cols × rows`), in
/// 16 × 16 tiles.
fn transpose(src: &[Complex32], dst: &mut [Complex32], rows: usize, cols: usize) {
    const T: usize = 16;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Plain DFT of a real volume at one frequency.
    fn dft(v: &[f32], shape: [usize; 3], k: [usize; 3]) -> (f64, f64) {
        let [nz, ny, nx] = shape;
        let (mut re, mut im) = (0.0, 0.0);
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let ph = -std::f64::consts::TAU
                        * ((k[0] * z) as f64 / nz as f64
                            + (k[1] * y) as f64 / ny as f64
                            + (k[2] * x) as f64 / nx as f64);
                    let a = v[(z * ny + y) * nx + x] as f64;
                    re += a * ph.cos();
                    im += a * ph.sin();
                }
            }
        }
        (re, im)
    }

    #[test]
    fn good_sizes() {
        assert_eq!(good_size(97), 98);
        assert_eq!(good_size(128), 128);
        assert_eq!(good_size(131), 135);
        assert_eq!(good_size(1), 1);
    }

    #[test]
    fn forward_matches_the_dft_and_inverse_round_trips() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for shape in [[6, 10, 9], [8, 7, 12], [5, 5, 5]] {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let f = Fft3::new(shape);
            let mut s = f.scratch();
            let mut spec = vec![Complex32::default(); f.spectrum_len()];
            let mut work = v.clone();
            f.forward(&mut work, &mut spec, shape, &mut s);
            let [_, ny, nx] = shape;
            let nxh = nx / 2 + 1;
            for k in [
                [0, 0, 0],
                [1, 2, 1],
                [shape[0] - 1, ny - 1, nxh - 1],
                [2, 0, 1],
            ] {
                let (re, im) = dft(&v, shape, k);
                let got = spec[(k[0] * ny + k[1]) * nxh + k[2]];
                assert!(
                    (got.re as f64 - re).abs() < 1e-3 && (got.im as f64 - im).abs() < 1e-3,
                    "{shape:?} {k:?}: {got} vs {re} {im}"
                );
            }
            let mut back = vec![0.0f32; n];
            f.inverse(&mut spec, &mut back, [shape[0], ny], &mut s);
            for (a, b) in v.iter().zip(&back) {
                assert!((a - b / n as f32).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn pruned_forward_equals_the_full_one() {
        let shape = [12, 10, 14];
        let n: usize = shape.iter().product();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut v = vec![0.0f32; n];
        for z in 0..4 {
            for y in 0..5 {
                for x in 0..3 {
                    v[(z * 10 + y) * 14 + x] = rng.gen_range(-1.0..1.0);
                }
            }
        }
        let f = Fft3::new(shape);
        let mut s = f.scratch();
        let mut a = vec![Complex32::default(); f.spectrum_len()];
        let mut b = a.clone();
        // Garbage where the input is promised zero must not matter: the pruned call does not
        // read it.
        let mut w1 = v.clone();
        f.forward(&mut w1, &mut a, shape, &mut s);
        let mut w2 = v.clone();
        for z in 4..12 {
            w2[z * 140] = 99.0;
        }
        f.forward(&mut w2, &mut b, [4, 5, 3], &mut s);
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).norm() < 1e-4);
        }
    }
}
