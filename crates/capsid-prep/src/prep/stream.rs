//! The slab-streaming driver: slab sources and sinks of `[z_len, y, x]` slabs ([`SlabSource`],
//! [`SlabSink`]), the binning and low-pass stages as sources, and [`prep_stream`] /
//! [`prep_volume`], which run bin → low-pass → normalise without holding a big tomogram whole.

use super::binning::{bin_mean, fourier_crop_xy, fourier_crop_z, FourierCrop};
use super::lowpass::{blur_xy, blur_z, gaussian_kernel, halo_range, stack_of};
use super::normalize::{apply_clip, apply_zscore, Histogram, RunningStats};
use super::{plan, BinMethod, Normalize, PrepConfig, PrepPlan};
use capsid_core::error::CoreError;
use capsid_core::volume::Volume;
use ndarray::{s, Array2, Array3, ArrayView3, Axis};
use rayon::prelude::*;

/// Something that yields slabs `[z_len, y, x]` of a volume, in any order.
pub trait SlabSource {
    /// Shape `[z, y, x]`.
    fn shape_zyx(&self) -> [usize; 3];
    /// Slices `z_start .. z_start + z_len`.
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError>;
}

/// Something that takes slabs in z order.
pub trait SlabSink {
    fn write_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError>;
}

/// A volume in memory as a slab source.
pub struct ArraySource<'a>(pub ArrayView3<'a, f32>);

impl SlabSource for ArraySource<'_> {
    fn shape_zyx(&self) -> [usize; 3] {
        let (z, y, x) = self.0.dim();
        [z, y, x]
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        let nz = self.0.dim().0;
        if z_start + z_len > nz {
            return Err(CoreError::Invalid(format!(
                "slab {z_start}+{z_len} beyond {nz} slices"
            )));
        }
        Ok(self
            .0
            .slice(s![z_start..z_start + z_len, .., ..])
            .to_owned())
    }
}

/// Collects slabs into one array (for tests and for whole-volume use).
#[derive(Default)]
pub struct CollectSink(pub Vec<Array3<f32>>);

impl SlabSink for CollectSink {
    fn write_slab(&mut self, slab: &Array3<f32>) -> Result<(), CoreError> {
        self.0.push(slab.clone());
        Ok(())
    }
}

impl CollectSink {
    /// The slabs stacked along z.
    pub fn into_array(self) -> Result<Array3<f32>, CoreError> {
        let views: Vec<_> = self.0.iter().map(|a| a.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map_err(|e| CoreError::Invalid(format!("stacking slabs: {e}")))
    }
}

struct MeanBinSource<'a> {
    inner: Box<dyn SlabSource + 'a>,
    f: usize,
}

impl SlabSource for MeanBinSource<'_> {
    fn shape_zyx(&self) -> [usize; 3] {
        self.inner.shape_zyx().map(|n| n / self.f)
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        let slab = self.inner.read_slab(z_start * self.f, z_len * self.f)?;
        Ok(bin_mean(slab.view(), self.f))
    }
}

struct MemorySource(Array3<f32>);

impl SlabSource for MemorySource {
    fn shape_zyx(&self) -> [usize; 3] {
        let (z, y, x) = self.0.dim();
        [z, y, x]
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        ArraySource(self.0.view()).read_slab(z_start, z_len)
    }
}

/// Fourier binning: crops x-y slab by slab, keeps the cropped stack, crops z at the end.
fn fourier_bin_stream(
    inner: &mut dyn SlabSource,
    f: usize,
    slab: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Array3<f32>, CoreError> {
    let [nz, ny, nx] = inner.shape_zyx();
    let (cx, cy, cz) = (
        FourierCrop::new(nx, f),
        FourierCrop::new(ny, f),
        FourierCrop::new(nz, f),
    );
    let mut stack = Array3::<f32>::zeros((cz.n, cy.m, cx.m));
    let step = (slab * f).max(1);
    let mut z0 = 0;
    while z0 < cz.n {
        let len = step.min(cz.n - z0);
        let data = inner.read_slab(z0, len)?;
        let slices: Vec<Array2<f32>> = data
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|sl| fourier_crop_xy(sl, &cx, &cy))
            .collect();
        for (j, sl) in slices.into_iter().enumerate() {
            stack.index_axis_mut(Axis(0), z0 + j).assign(&sl);
        }
        progress(len as u64);
        z0 += len;
    }
    progress((nz - cz.n) as u64);
    Ok(fourier_crop_z(&stack, &cz))
}

struct LowpassSource<'a> {
    inner: Box<dyn SlabSource + 'a>,
    kernel: Vec<f32>,
}

impl SlabSource for LowpassSource<'_> {
    fn shape_zyx(&self) -> [usize; 3] {
        self.inner.shape_zyx()
    }
    fn read_slab(&mut self, z_start: usize, z_len: usize) -> Result<Array3<f32>, CoreError> {
        let [nz, ny, nx] = self.inner.shape_zyx();
        let (start, len) = halo_range(z_start, z_len, nz, self.kernel.len() / 2);
        let data = self.inner.read_slab(start, len)?;
        let k = &self.kernel;
        let stack = stack_of(
            data.axis_iter(Axis(0))
                .into_par_iter()
                .map(|sl| blur_xy(sl, k))
                .collect(),
            (len, ny, nx),
        );
        Ok(blur_z(&stack, start, nz, z_start, z_len, k))
    }
}

/// A normalisation applied to each output slab.
type SlabTransform = Box<dyn Fn(&mut Array3<f32>)>;

/// Runs `plan` on `source`, writing the output slab by slab (z order) to `sink`. `progress` is
/// called with the number of work units done ([`PrepPlan::steps`] in total).
pub fn prep_stream<'a>(
    source: Box<dyn SlabSource + 'a>,
    plan: &PrepPlan,
    sink: &mut dyn SlabSink,
    progress: &mut dyn FnMut(u64),
) -> Result<(), CoreError> {
    let cfg = &plan.config;
    if source.shape_zyx() != plan.in_shape_zyx {
        return Err(CoreError::Invalid(
            "prep plan does not match the input shape".into(),
        ));
    }
    let mut src: Box<dyn SlabSource + 'a> = source;
    if cfg.bin > 1 {
        src = match cfg.bin_method {
            BinMethod::Mean => Box::new(MeanBinSource {
                inner: src,
                f: cfg.bin,
            }),
            BinMethod::Fourier => Box::new(MemorySource(fourier_bin_stream(
                src.as_mut(),
                cfg.bin,
                cfg.slab,
                progress,
            )?)),
        };
    }
    if let Some(sigma) = plan.sigma_vox {
        src = Box::new(LowpassSource {
            inner: src,
            kernel: gaussian_kernel(sigma),
        });
    }
    let nz = plan.shape_zyx[0];
    let slabs: Vec<(usize, usize)> = (0..nz)
        .step_by(cfg.slab)
        .map(|z| (z, cfg.slab.min(nz - z)))
        .collect();
    let mut transform: SlabTransform = Box::new(|_| {});
    match cfg.normalize {
        Normalize::None => {}
        Normalize::Zscore => {
            let mut st = RunningStats::default();
            for &(z, len) in &slabs {
                st.add_slab(&src.read_slab(z, len)?)?;
                progress(len as u64);
            }
            transform = Box::new(move |d| apply_zscore(d, &st));
        }
        Normalize::Clip { low_pct, high_pct } => {
            let mut st = RunningStats::default();
            for &(z, len) in &slabs {
                st.add_slab(&src.read_slab(z, len)?)?;
                progress(len as u64);
            }
            let mut h = Histogram::new(st.min, st.max);
            for &(z, len) in &slabs {
                h.add(src.read_slab(z, len)?.view());
                progress(len as u64);
            }
            let (lo, hi) = (h.percentile(low_pct), h.percentile(high_pct));
            transform = Box::new(move |d| apply_clip(d, lo, hi));
        }
    }
    for &(z, len) in &slabs {
        let mut d = src.read_slab(z, len)?;
        transform(&mut d);
        sink.write_slab(&d)?;
        progress(len as u64);
    }
    Ok(())
}

/// Preprocesses a whole volume in memory (the streaming driver on an in-memory source).
pub fn prep_volume(vol: &Volume<f32>, config: &PrepConfig) -> Result<Volume<f32>, CoreError> {
    let p = plan(vol.shape_zyx(), vol.voxel_size_a, vol.origin_a, config)?;
    let mut sink = CollectSink::default();
    prep_stream(
        Box::new(ArraySource(vol.data.view())),
        &p,
        &mut sink,
        &mut |_| {},
    )?;
    Ok(Volume {
        data: sink.into_array()?,
        voxel_size_a: p.voxel_size_a,
        origin_a: p.origin_a,
    })
}
