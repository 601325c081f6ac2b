//! Tomogram preprocessing: binning, Gaussian low-pass, normalisation — as pure functions on whole
//! arrays and as a slab-streaming driver that never holds a big tomogram whole in memory.
//!
//! All arrays are `[z, y, x]`. Steps run in this order: **bin → low-pass → normalise**.
//!
//! * **Binning** by an integer factor `f`. Each axis is first cut to `m·f` voxels,
//!   `m = floor(n / f)` (the last `n mod f` voxels are dropped), so the new voxel size is exactly
//!   `f ×` the old one.
//!   * [`BinMethod::Mean`]: block mean of `f × f × f` voxels. Output voxel `i` is centred at old
//!     position `i·f + (f − 1)/2`, so the origin moves by `(f − 1)/2` old voxels. Streams in slabs of
//!     `f` slices.
//!   * [`BinMethod::Fourier`]: Fourier cropping — keep the lowest `m` frequencies of the `m·f`-point
//!     DFT along each axis (an ideal low-pass plus sampling). Output voxel `i` is the band-limited
//!     interpolant at old position `i·f`, so the origin does not move. For even `m` the output
//!     Nyquist coefficient is the sum of the two input coefficients at `±m/2` (a sinusoid at that
//!     frequency is then sampled exactly). The DFT is separable, so the driver crops x and y slice by
//!     slice while streaming, keeps the x-y-cropped stack (`1/f²` of the input, float32) in memory,
//!     and then crops along z: **Fourier binning holds `nz × ny/f × nx/f` floats in memory**, e.g.
//!     52 MB for a 512×512×200 tomogram binned by 2.
//! * **Low-pass** ([`lowpass_sigma_vox`]): a Gaussian whose Fourier transform is
//!   `H(k) = exp(−k² / (2σ_k²))` with `H = 0.5` at `k = 1 / cutoff_a` (k in 1/Å), i.e.
//!   `σ_k = 1 / (cutoff_a · √(2 ln 2))`; in real space the kernel's standard deviation is
//!   `σ = 1 / (2π σ_k) = cutoff_a · √(2 ln 2) / (2π) ≈ 0.187 · cutoff_a` Å. It is applied as a
//!   separable real-space convolution (x, then y, then z), truncated at `⌈4σ⌉` voxels and normalised
//!   to sum 1, with mirror boundaries (`d c b a | a b c d`). The streamed version reads slabs with a
//!   halo of `⌈4σ⌉` slices and gives the same numbers as the whole-volume one.
//! * **Normalisation**: [`Normalize::Zscore`] subtracts the mean and divides by the (population)
//!   standard deviation over the whole volume (two passes when streaming; a constant volume becomes
//!   0). [`Normalize::Clip`] clips to the `low`/`high` percentiles and rescales that range to
//!   `[0, 1]`; percentiles come from a 65,536-bin histogram between the volume's min and max (three
//!   passes when streaming), exact to within one bin width. Statistics are accumulated slice by
//!   slice in a fixed order, so the result does not depend on the slab size.
//!
//! When streaming, passes over the binned / low-passed data recompute those steps from the input
//! (CPU time instead of memory).

mod binning;
mod config;
mod lowpass;
mod normalize;
mod stream;
#[cfg(test)]
mod tests;

pub use binning::{bin_fourier, bin_mean};
pub use config::{plan, BinMethod, Normalize, PrepConfig, PrepPlan};
pub use lowpass::{gaussian_blur_2d, gaussian_kernel, gaussian_lowpass, lowpass_sigma_vox};
pub use normalize::{percentile_clip, zscore, Histogram, RunningStats};
pub use stream::{prep_stream, prep_volume, ArraySource, CollectSink, SlabSink, SlabSource};
