//! Fast CPU f32 3D convolutions for capsid's networks (DeepFinder 3D-UNet, 3D-UCaps), no Burn.
//!
//! Tensors are contiguous row-major NCDHW slices (`[batch, channels, z, y, x]`, x fastest).
//! [`Conv3dGeometry`] describes a convolution (weights `[c_out, c_in / groups, kz, ky, kx]`),
//! [`ConvTranspose3dGeometry`] a transposed one (weights `[c_in, c_out / groups, kz, ky, kx]`, as
//! PyTorch's `ConvTranspose3d` and Burn's `conv_transpose3d`). Each has a forward pass and the
//! three backward passes (data, weight, bias).
//!
//! The kernels lower the convolution to matrix products over the `gemm` crate: blocked im2col per
//! tile of output rows (the column buffer stays in cache), `[c_out × K]·[K × tile]` products written
//! straight into the NCDHW output, 1×1×1 kernels as plain GEMMs, stride-1 3×3×3 kernels with enough
//! channels by Winograd F(2×2×2, 3×3×3) (64 GEMMs over transformed tiles, 3.375× fewer multiplies;
//! [`ConvSettings::winograd`] turns it off); backward-data is the forward pass
//! with flipped weights for stride 1 and GEMM + col2im otherwise; backward-weight sums per-tile
//! products in a fixed order, so every result is deterministic whatever the thread count. Work runs
//! on rayon's global pool (the caller sets its size). [`naive`] holds plain-loop references.

pub mod activation;
pub mod bf16;
mod common;
pub mod cpu;
mod fast;
mod im2col;
pub mod naive;
pub mod pool;
pub mod routing;
mod winograd;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Kernel choices of this crate, for the whole process: the caller sets them once
/// ([`set_settings`], e.g. from `capsid --conv`) before computing; the defaults are the fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSettings {
    /// Winograd F(2×2×2, 3×3×3) for stride-1 3×3×3 convolutions with enough channels (default
    /// on; off runs the direct implicit GEMM, for benchmarking it).
    pub winograd: bool,
    /// Positions per tile of the implicit GEMM before it is halved to give every thread work
    /// (a multiple of 16; default 512).
    pub implicit_tile: usize,
    /// The precision of the convolutions' matrix products (default f32). With bf16 the factors
    /// are rounded to bfloat16 and summed in f32 ([`bf16`]) where the CPU has AVX512-BF16;
    /// elsewhere the products stay f32 ([`Precision::in_use`] says which).
    pub precision: Precision,
}

/// The precision of the convolutions' matrix products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 factors and sums.
    #[default]
    F32,
    /// bf16 factors (rounded to nearest even), f32 products and sums; f32 weights, activations
    /// and gradients.
    Bf16,
}

impl Precision {
    /// The name used on the command line and in configs: "f32" or "bf16".
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Parses [`Precision::name`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(Precision::F32),
            "bf16" => Some(Precision::Bf16),
            _ => None,
        }
    }

    /// The precision the kernels actually run at when `self` is asked for on this CPU (bf16
    /// needs AVX512-BF16).
    pub fn in_use(self) -> Self {
        if self == Precision::Bf16 && bf16::available() {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }
}

impl Default for ConvSettings {
    fn default() -> Self {
        Self {
            winograd: true,
            implicit_tile: 512,
            precision: Precision::F32,
        }
    }
}

static WINOGRAD: AtomicBool = AtomicBool::new(true);
/// Whether bf16 products were asked for ([`ConvSettings::precision`]).
static BF16_ASKED: AtomicBool = AtomicBool::new(false);
/// Whether the convolutions' products run in bf16 (asked for and available).
static BF16: AtomicBool = AtomicBool::new(false);
static IMPLICIT_TILE: AtomicUsize = AtomicUsize::new(512);

/// Sets the kernel choices for every later call (any thread). A tile below 16 counts as 16.
pub fn set_settings(s: ConvSettings) {
    WINOGRAD.store(s.winograd, Ordering::Relaxed);
    IMPLICIT_TILE.store(s.implicit_tile.max(16), Ordering::Relaxed);
    BF16_ASKED.store(s.precision == Precision::Bf16, Ordering::Relaxed);
    BF16.store(s.precision.in_use() == Precision::Bf16, Ordering::Relaxed);
}

/// Whether the convolutions' products run in bf16 now.
pub(crate) fn bf16_products() -> bool {
    BF16.load(Ordering::Relaxed)
}

/// The kernel choices in force (`precision` as asked for; [`Precision::in_use`] gives what runs).
pub fn settings() -> ConvSettings {
    ConvSettings {
        winograd: WINOGRAD.load(Ordering::Relaxed),
        implicit_tile: IMPLICIT_TILE.load(Ordering::Relaxed),
        precision: if BF16_ASKED.load(Ordering::Relaxed) {
            Precision::Bf16
        } else {
            Precision::F32
        },
    }
}

/// Geometry of one 3D convolution; tensors are contiguous row-major NCDHW ([batch, channels, z, y, x],
/// x fastest); weights [c_out, c_in / groups, kz, ky, kx]. Padding is symmetric zero padding per axis
/// (z, y, x), as Burn's ConvOptions. All sizes in voxels; every triple is ordered (z, y, x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3dGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub in_dhw: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub padding: [usize; 3],
    pub dilation: [usize; 3],
    pub groups: usize,
}

impl Conv3dGeometry {
    /// Output size (z, y, x): `(in + 2·padding − dilation·(kernel − 1) − 1) / stride + 1`, or 0
    /// along an axis where the dilated kernel does not fit in the padded input.
    pub fn out_dhw(&self) -> [usize; 3] {
        std::array::from_fn(|a| {
            let span = self.dilation[a] * (self.kernel[a].max(1) - 1) + 1;
            let padded = self.in_dhw[a] + 2 * self.padding[a];
            if padded < span || self.stride[a] == 0 {
                0
            } else {
                (padded - span) / self.stride[a] + 1
            }
        })
    }

    /// Floating-point operations of the forward pass: 2 × multiply-adds (taps on the padding
    /// counted, as is usual). Each backward pass (data, weight) costs the same.
    pub fn flops(&self) -> f64 {
        let out: usize = self.out_dhw().iter().product();
        let kvol: usize = self.kernel.iter().product();
        2.0 * (self.batch * self.c_out * out) as f64
            * ((self.c_in / self.groups.max(1)) * kvol) as f64
    }

    /// Checks that the geometry describes a computable convolution: nonzero sizes, strides and
    /// dilations, channels divisible by `groups`, and a kernel that fits in the padded input.
    pub fn validate(&self) -> Result<(), GeometryError> {
        validate_common(
            self.batch,
            self.c_in,
            self.c_out,
            self.groups,
            [self.in_dhw, self.kernel, self.stride, self.dilation],
        )?;
        if self.out_dhw().contains(&0) {
            return Err(GeometryError(format!(
                "kernel {:?} (dilation {:?}) does not fit in input {:?} padded by {:?}",
                self.kernel, self.dilation, self.in_dhw, self.padding
            )));
        }
        Ok(())
    }

    /// Number of values in `x`: batch · c_in · z · y · x.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.in_dhw.iter().product::<usize>()
    }

    /// Number of values in `y` / `dy`: batch · c_out · out_dhw.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_dhw().iter().product::<usize>()
    }

    /// Number of values in `w`: c_out · c_in / groups · kz · ky · kx.
    pub fn weight_len(&self) -> usize {
        self.c_out * (self.c_in / self.groups.max(1)) * self.kernel.iter().product::<usize>()
    }

    pub(crate) fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("capsid-conv: invalid Conv3dGeometry {self:?}: {e}");
        }
    }
}

/// Geometry of one transposed 3D convolution (PyTorch `ConvTranspose3d` / Burn `conv_transpose3d`):
/// input `[batch, c_in, in_dhw]`, weights `[c_in, c_out / groups, kz, ky, kx]`, output
/// `[batch, c_out, out_dhw]`. `padding_out` (PyTorch's `output_padding`) adds voxels at the end of
/// each axis of the output; it must be smaller than the stride or the dilation. Triples are (z, y, x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose3dGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub in_dhw: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub padding: [usize; 3],
    pub padding_out: [usize; 3],
    pub dilation: [usize; 3],
    pub groups: usize,
}

impl ConvTranspose3dGeometry {
    /// Output size (z, y, x): `(in − 1)·stride − 2·padding + dilation·(kernel − 1) + padding_out + 1`,
    /// or 0 along an axis where that is not positive.
    pub fn out_dhw(&self) -> [usize; 3] {
        std::array::from_fn(|a| {
            let full = self.in_dhw[a].saturating_sub(1) * self.stride[a]
                + self.dilation[a] * (self.kernel[a].max(1) - 1)
                + self.padding_out[a]
                + 1;
            full.saturating_sub(2 * self.padding[a])
        })
    }

    /// Floating-point operations of the forward pass: 2 × multiply-adds, taps that fall outside
    /// the output (cropped by the padding) counted. Each backward pass costs the same.
    pub fn flops(&self) -> f64 {
        let inp: usize = self.in_dhw.iter().product();
        let kvol: usize = self.kernel.iter().product();
        2.0 * (self.batch * self.c_in * inp) as f64
            * ((self.c_out / self.groups.max(1)) * kvol) as f64
    }

    /// Checks that the geometry is computable: nonzero sizes, channels divisible by `groups`,
    /// `padding_out` smaller than stride or dilation, a nonempty output.
    pub fn validate(&self) -> Result<(), GeometryError> {
        validate_common(
            self.batch,
            self.c_in,
            self.c_out,
            self.groups,
            [self.in_dhw, self.kernel, self.stride, self.dilation],
        )?;
        for a in 0..3 {
            if self.padding_out[a] >= self.stride[a].max(self.dilation[a]) {
                return Err(GeometryError(format!(
                    "padding_out {:?} must be smaller than stride {:?} or dilation {:?}",
                    self.padding_out, self.stride, self.dilation
                )));
            }
        }
        if self.out_dhw().contains(&0) {
            return Err(GeometryError(format!(
                "padding {:?} crops away the whole output",
                self.padding
            )));
        }
        Ok(())
    }

    /// Number of values in `x`: batch · c_in · in_dhw.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.in_dhw.iter().product::<usize>()
    }

    /// Number of values in `y` / `dy`: batch · c_out · out_dhw.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.out_dhw().iter().product::<usize>()
    }

    /// Number of values in `w`: c_in · c_out / groups · kz · ky · kx.
    pub fn weight_len(&self) -> usize {
        self.c_in * (self.c_out / self.groups.max(1)) * self.kernel.iter().product::<usize>()
    }

    pub(crate) fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("capsid-conv: invalid ConvTranspose3dGeometry {self:?}: {e}");
        }
    }

    /// The ordinary convolution whose data-backward this transposed convolution is: it maps this
    /// one's output space back to its input space with the same weights.
    fn adjoint_dims(&self) -> common::Dims {
        common::Dims {
            batch: self.batch,
            c_in: self.c_out,
            c_out: self.c_in,
            groups: self.groups,
            in_dhw: self.out_dhw(),
            out_dhw: self.in_dhw,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }
}

/// Why a geometry cannot be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeometryError(pub String);

impl std::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GeometryError {}

fn validate_common(
    batch: usize,
    c_in: usize,
    c_out: usize,
    groups: usize,
    [in_dhw, kernel, stride, dilation]: [[usize; 3]; 4],
) -> Result<(), GeometryError> {
    let err = |m: String| Err(GeometryError(m));
    if batch == 0 || c_in == 0 || c_out == 0 || in_dhw.contains(&0) {
        return err(format!(
            "empty tensor: batch {batch}, c_in {c_in}, c_out {c_out}, in_dhw {in_dhw:?}"
        ));
    }
    if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
        return err(format!(
            "kernel {kernel:?}, stride {stride:?} and dilation {dilation:?} must be ≥ 1"
        ));
    }
    if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
        return err(format!(
            "groups {groups} must divide c_in {c_in} and c_out {c_out}"
        ));
    }
    Ok(())
}

/// Panics with a clear message when a slice does not have the length its geometry implies.
pub(crate) fn check_len(what: &str, got: usize, want: usize) {
    assert!(
        got == want,
        "capsid-conv: `{what}` has {got} values, the geometry needs {want}"
    );
}

/// Forward convolution: `y[n, co] = bias[co] + Σ_{ci in co's group, taps} w · x`, shape
/// `[batch, c_out, out_dhw]`.
///
/// # Panics
/// If the geometry is invalid ([`Conv3dGeometry::validate`]) or a slice has the wrong length.
pub fn conv3d_forward(g: &Conv3dGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("w", w.len(), g.weight_len());
    if let Some(b) = bias {
        check_len("bias", b.len(), g.c_out);
    }
    fast::forward(&common::Dims::from_conv(g), x, w, bias)
}

/// dL/dx given dL/dy ([batch, c_out, out_dhw]); shape of `x`.
///
/// # Panics
/// If the geometry is invalid or a slice has the wrong length.
pub fn conv3d_backward_data(g: &Conv3dGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    check_len("w", w.len(), g.weight_len());
    fast::backward_data(&common::Dims::from_conv(g), dy, w)
}

/// dL/dw, shape of w. Deterministic (fixed-order reduction across threads, independent of the
/// thread count).
///
/// # Panics
/// If the geometry is invalid or a slice has the wrong length.
pub fn conv3d_backward_weight(g: &Conv3dGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("dy", dy.len(), g.output_len());
    fast::backward_weight(&common::Dims::from_conv(g), x, dy)
}

/// dL/dbias = sum of dy over batch and space, per output channel.
///
/// # Panics
/// If the geometry is invalid or `dy` has the wrong length.
pub fn conv3d_backward_bias(g: &Conv3dGeometry, dy: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    fast::channel_sums(dy, g.batch, g.c_out)
}

/// Transposed convolution forward: `[batch, c_in, in_dhw]` → `[batch, c_out, out_dhw]` (the
/// data-backward of the convolution that maps the output space to the input space).
///
/// # Panics
/// If the geometry is invalid or a slice has the wrong length.
pub fn conv_transpose3d_forward(
    g: &ConvTranspose3dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("w", w.len(), g.weight_len());
    if let Some(b) = bias {
        check_len("bias", b.len(), g.c_out);
    }
    let mut y = fast::backward_data(&g.adjoint_dims(), x, w);
    if let Some(b) = bias {
        fast::add_channel_bias(&mut y, g.batch, b);
    }
    y
}

/// dL/dx of a transposed convolution given dL/dy; shape of `x` (a forward convolution of `dy`).
///
/// # Panics
/// If the geometry is invalid or a slice has the wrong length.
pub fn conv_transpose3d_backward_data(
    g: &ConvTranspose3dGeometry,
    dy: &[f32],
    w: &[f32],
) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    check_len("w", w.len(), g.weight_len());
    fast::forward(&g.adjoint_dims(), dy, w, None)
}

/// dL/dw of a transposed convolution, shape of `w` ([c_in, c_out / groups, kz, ky, kx]).
/// Deterministic.
///
/// # Panics
/// If the geometry is invalid or a slice has the wrong length.
pub fn conv_transpose3d_backward_weight(
    g: &ConvTranspose3dGeometry,
    x: &[f32],
    dy: &[f32],
) -> Vec<f32> {
    g.assert_valid();
    check_len("x", x.len(), g.input_len());
    check_len("dy", dy.len(), g.output_len());
    fast::backward_weight(&g.adjoint_dims(), dy, x)
}

/// dL/dbias of a transposed convolution: sum of dy over batch and space, per output channel.
///
/// # Panics
/// If the geometry is invalid or `dy` has the wrong length.
pub fn conv_transpose3d_backward_bias(g: &ConvTranspose3dGeometry, dy: &[f32]) -> Vec<f32> {
    g.assert_valid();
    check_len("dy", dy.len(), g.output_len());
    fast::channel_sums(dy, g.batch, g.c_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    /// max |a − b| ≤ 1e-4·(1 + max |b|), with a message naming the pass and geometry.
    fn assert_close(what: &str, geom: &dyn std::fmt::Debug, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}: length");
        let scale = 1.0 + b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            diff <= 1e-4 * scale,
            "{what}: max abs diff {diff} > 1e-4·{scale} for {geom:?}"
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        batch: usize,
        c_in: usize,
        c_out: usize,
        in_dhw: [usize; 3],
        kernel: [usize; 3],
        stride: [usize; 3],
        padding: [usize; 3],
        dilation: [usize; 3],
        groups: usize,
    ) -> Conv3dGeometry {
        Conv3dGeometry {
            batch,
            c_in,
            c_out,
            in_dhw,
            kernel,
            stride,
            padding,
            dilation,
            groups,
        }
    }

    /// Shapes covering odd sizes, strides 2, padding 0/1/2, dilation 2, groups 2/4, batch 1,
    /// c_in 1, 1×1×1 and 2×2×2 kernels, anisotropic everything.
    fn conv_cases() -> Vec<Conv3dGeometry> {
        vec![
            conv(2, 3, 4, [7, 5, 9], [3; 3], [1; 3], [1; 3], [1; 3], 1),
            conv(1, 1, 5, [7, 5, 9], [3; 3], [1; 3], [0; 3], [1; 3], 1),
            conv(2, 4, 6, [7, 6, 9], [3; 3], [2; 3], [1; 3], [1; 3], 2),
            conv(1, 4, 8, [9, 7, 5], [5; 3], [1; 3], [2; 3], [1; 3], 4),
            conv(2, 3, 2, [9, 8, 7], [3; 3], [1; 3], [2; 3], [2; 3], 1),
            conv(3, 6, 3, [5, 4, 6], [1; 3], [1; 3], [0; 3], [1; 3], 1),
            conv(1, 4, 4, [5, 4, 6], [1; 3], [2; 3], [1; 3], [1; 3], 2),
            conv(2, 2, 3, [6, 5, 7], [2; 3], [1; 3], [0; 3], [1; 3], 1),
            conv(2, 2, 3, [6, 5, 7], [2; 3], [2; 3], [0; 3], [1; 3], 1),
            conv(
                1,
                2,
                2,
                [8, 7, 6],
                [3, 2, 1],
                [2, 1, 3],
                [1, 0, 2],
                [1, 2, 1],
                2,
            ),
            conv(2, 8, 8, [9, 9, 9], [3; 3], [2; 3], [1; 3], [1; 3], 4),
            conv(1, 3, 3, [4, 5, 6], [3; 3], [1; 3], [3, 0, 3], [1; 3], 1),
            conv(4, 5, 7, [6, 6, 6], [3; 3], [1; 3], [1; 3], [1; 3], 1),
            conv(2, 16, 16, [8, 8, 8], [3; 3], [1; 3], [1; 3], [1; 3], 1),
            // Stride-1 implicit GEMM (c_in / groups ≥ 8): groups, dilation, padding 0/2,
            // anisotropic kernels, batch 1.
            conv(2, 16, 8, [7, 5, 9], [3; 3], [1; 3], [2; 3], [2, 1, 2], 2),
            conv(
                1,
                8,
                4,
                [6, 7, 5],
                [3, 2, 4],
                [1; 3],
                [1, 0, 2],
                [1, 2, 1],
                1,
            ),
            conv(1, 32, 16, [5, 6, 7], [5; 3], [1; 3], [2; 3], [1; 3], 4),
            conv(2, 12, 6, [5, 5, 6], [2; 3], [1; 3], [0; 3], [1; 3], 1),
        ]
    }

    #[test]
    fn conv3d_all_passes_match_naive() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for g in conv_cases() {
            let x = random(g.input_len(), &mut rng);
            let w = random(g.weight_len(), &mut rng);
            let b = random(g.c_out, &mut rng);
            let dy = random(g.output_len(), &mut rng);
            assert_close(
                "forward",
                &g,
                &conv3d_forward(&g, &x, &w, Some(&b)),
                &naive::conv3d_forward(&g, &x, &w, Some(&b)),
            );
            assert_close(
                "forward no bias",
                &g,
                &conv3d_forward(&g, &x, &w, None),
                &naive::conv3d_forward(&g, &x, &w, None),
            );
            assert_close(
                "backward_data",
                &g,
                &conv3d_backward_data(&g, &dy, &w),
                &naive::conv3d_backward_data(&g, &dy, &w),
            );
            assert_close(
                "backward_weight",
                &g,
                &conv3d_backward_weight(&g, &x, &dy),
                &naive::conv3d_backward_weight(&g, &x, &dy),
            );
            assert_close(
                "backward_bias",
                &g,
                &conv3d_backward_bias(&g, &dy),
                &naive::conv3d_backward_bias(&g, &dy),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tconv(
        batch: usize,
        c_in: usize,
        c_out: usize,
        in_dhw: [usize; 3],
        k: usize,
        s: usize,
        p: usize,
        po: usize,
        dil: usize,
        groups: usize,
    ) -> ConvTranspose3dGeometry {
        ConvTranspose3dGeometry {
            batch,
            c_in,
            c_out,
            in_dhw,
            kernel: [k; 3],
            stride: [s; 3],
            padding: [p; 3],
            padding_out: [po; 3],
            dilation: [dil; 3],
            groups,
        }
    }

    #[test]
    fn conv_transpose3d_all_passes_match_naive() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut cases = vec![
            tconv(2, 4, 3, [3, 4, 5], 2, 2, 0, 0, 1, 1),
            tconv(1, 1, 2, [5, 3, 4], 3, 2, 1, 1, 1, 1),
            tconv(2, 4, 6, [3, 5, 3], 3, 1, 1, 0, 1, 2),
            tconv(1, 4, 4, [4, 3, 5], 3, 2, 2, 1, 2, 4),
            tconv(3, 2, 2, [3, 3, 3], 1, 1, 0, 0, 1, 1),
            tconv(1, 3, 2, [4, 4, 3], 2, 1, 0, 1, 2, 1),
            tconv(2, 6, 4, [2, 3, 4], 5, 3, 2, 2, 1, 2),
            // Stride 1 with output padding (dilation 2) and ≥ 8 channels per group: the adjoint
            // convolution's grid is clipped.
            tconv(1, 8, 16, [4, 5, 3], 3, 1, 1, 1, 2, 1),
            tconv(2, 16, 16, [3, 4, 5], 3, 1, 2, 0, 1, 2),
        ];
        let mut aniso = tconv(1, 2, 4, [3, 4, 5], 1, 1, 0, 0, 1, 2);
        aniso.kernel = [2, 3, 1];
        aniso.stride = [2, 1, 3];
        aniso.padding = [0, 1, 0];
        aniso.padding_out = [1, 0, 2];
        cases.push(aniso);
        for g in cases {
            g.validate().unwrap();
            let x = random(g.input_len(), &mut rng);
            let w = random(g.weight_len(), &mut rng);
            let b = random(g.c_out, &mut rng);
            let dy = random(g.output_len(), &mut rng);
            assert_close(
                "t forward",
                &g,
                &conv_transpose3d_forward(&g, &x, &w, Some(&b)),
                &naive::conv_transpose3d_forward(&g, &x, &w, Some(&b)),
            );
            assert_close(
                "t backward_data",
                &g,
                &conv_transpose3d_backward_data(&g, &dy, &w),
                &naive::conv_transpose3d_backward_data(&g, &dy, &w),
            );
            assert_close(
                "t backward_weight",
                &g,
                &conv_transpose3d_backward_weight(&g, &x, &dy),
                &naive::conv_transpose3d_backward_weight(&g, &x, &dy),
            );
            assert_close(
                "t backward_bias",
                &g,
                &conv_transpose3d_backward_bias(&g, &dy),
                &naive::conv_transpose3d_backward_bias(&g, &dy),
            );
        }
    }

    #[test]
    fn tiled_paths_match_naive_on_larger_volumes() {
        // Big enough for several tiles per item and gemm's own blocking (K = 16·27 = 432).
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for g in [
            conv(2, 16, 12, [12, 14, 16], [3; 3], [1; 3], [1; 3], [1; 3], 1),
            conv(1, 16, 32, [13, 12, 11], [3; 3], [2; 3], [1; 3], [1; 3], 1),
        ] {
            let x = random(g.input_len(), &mut rng);
            let w = random(g.weight_len(), &mut rng);
            let dy = random(g.output_len(), &mut rng);
            assert_close(
                "forward",
                &g,
                &conv3d_forward(&g, &x, &w, None),
                &naive::conv3d_forward(&g, &x, &w, None),
            );
            assert_close(
                "backward_data",
                &g,
                &conv3d_backward_data(&g, &dy, &w),
                &naive::conv3d_backward_data(&g, &dy, &w),
            );
            assert_close(
                "backward_weight",
                &g,
                &conv3d_backward_weight(&g, &x, &dy),
                &naive::conv3d_backward_weight(&g, &x, &dy),
            );
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let g = conv(2, 8, 8, [10, 9, 8], [3; 3], [1; 3], [1; 3], [1; 3], 1);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = random(g.input_len(), &mut rng);
        let w = random(g.weight_len(), &mut rng);
        let dy = random(g.output_len(), &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                (
                    conv3d_forward(&g, &x, &w, None),
                    conv3d_backward_data(&g, &dy, &w),
                    conv3d_backward_weight(&g, &x, &dy),
                    conv3d_backward_bias(&g, &dy),
                )
            })
        };
        let one = run(1);
        assert!(one == run(3), "results differ between 1 and 3 threads");
        assert!(one == run(1), "results differ between two runs");
    }

    #[test]
    fn geometry_sizes_and_validation() {
        let g = conv(4, 32, 48, [32, 32, 32], [3; 3], [1; 3], [1; 3], [1; 3], 1);
        assert_eq!(g.out_dhw(), [32, 32, 32]);
        assert_eq!(g.flops(), 2.0 * 4.0 * 48.0 * 32768.0 * 32.0 * 27.0);
        let s2 = conv(1, 4, 4, [9, 8, 7], [3; 3], [2; 3], [1; 3], [1; 3], 1);
        assert_eq!(s2.out_dhw(), [5, 4, 4]);
        let dil = conv(1, 1, 1, [9, 9, 9], [3; 3], [1; 3], [0; 3], [2; 3], 1);
        assert_eq!(dil.out_dhw(), [5, 5, 5]);
        assert!(conv(1, 3, 4, [5; 3], [3; 3], [1; 3], [1; 3], [1; 3], 2)
            .validate()
            .is_err());
        assert!(conv(1, 1, 1, [2; 3], [5; 3], [1; 3], [0; 3], [1; 3], 1)
            .validate()
            .is_err());
        assert!(conv(1, 1, 1, [2; 3], [1; 3], [0; 3], [0; 3], [1; 3], 1)
            .validate()
            .is_err());
        let t = tconv(1, 2, 2, [16; 3], 2, 2, 0, 0, 1, 1);
        assert_eq!(t.out_dhw(), [32; 3]);
        assert_eq!(tconv(1, 1, 1, [5; 3], 3, 2, 1, 1, 1, 1).out_dhw(), [10; 3]);
        assert!(tconv(1, 1, 1, [5; 3], 3, 2, 1, 2, 1, 1).validate().is_err());
    }

    #[test]
    #[should_panic(expected = "`w` has 3 values")]
    fn wrong_weight_length_panics_with_message() {
        let g = conv(1, 1, 1, [3; 3], [3; 3], [1; 3], [1; 3], [1; 3], 1);
        conv3d_forward(&g, &[0.0; 27], &[0.0; 3], None);
    }
}
