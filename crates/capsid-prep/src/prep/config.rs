//! Preprocessing settings ([`PrepConfig`]: bin factor and method, low-pass cut-off in Å,
//! normalisation, slab size) and the output grid they give ([`plan`], [`PrepPlan`]): shapes are
//! `[z, y, x]`, voxel sizes and origins `[x, y, z]` in Å.

use super::lowpass_sigma_vox;
use capsid_core::error::CoreError;
use serde::{Deserialize, Serialize};

/// How to bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinMethod {
    /// Fourier cropping (needs `1/f²` of the volume in memory).
    #[default]
    Fourier,
    /// Block mean (streams).
    Mean,
}

/// How to normalise.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Normalize {
    /// Leave values as they are.
    #[default]
    None,
    /// Mean 0, standard deviation 1.
    Zscore,
    /// Clip to the `low_pct`/`high_pct` percentiles and rescale to `[0, 1]`.
    Clip { low_pct: f64, high_pct: f64 },
}

/// Preprocessing settings; every field has a default (no-op except the slab size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepConfig {
    /// Integer binning factor (1 = none).
    pub bin: usize,
    pub bin_method: BinMethod,
    /// Low-pass cut-off in Å (where the filter's amplitude is 0.5); `None` = no low-pass.
    pub lowpass_a: Option<f64>,
    pub normalize: Normalize,
    /// Slices per slab of the output grid when streaming.
    pub slab: usize,
}

impl Default for PrepConfig {
    fn default() -> Self {
        Self {
            bin: 1,
            bin_method: BinMethod::default(),
            lowpass_a: None,
            normalize: Normalize::None,
            slab: 32,
        }
    }
}

impl PrepConfig {
    /// Checks the settings; the message says what is wrong.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::Invalid(m));
        if self.bin == 0 {
            return bad("bin factor must be at least 1".into());
        }
        if self.slab == 0 {
            return bad("slab size must be at least 1 slice".into());
        }
        if let Some(c) = self.lowpass_a {
            if !(c > 0.0 && c.is_finite()) {
                return bad(format!(
                    "low-pass cut-off must be a positive number of Å, got {c}"
                ));
            }
        }
        if let Normalize::Clip { low_pct, high_pct } = self.normalize {
            if !((0.0..100.0).contains(&low_pct) && low_pct < high_pct && high_pct <= 100.0) {
                return bad(format!("clip percentiles must satisfy 0 <= low < high <= 100, got {low_pct},{high_pct}"));
            }
        }
        Ok(())
    }
}

/// The output grid of a preprocessing run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrepPlan {
    pub config: PrepConfig,
    /// Input shape `[z, y, x]`.
    pub in_shape_zyx: [usize; 3],
    /// Output shape `[z, y, x]`.
    pub shape_zyx: [usize; 3],
    /// Output voxel size `[x, y, z]` in Å.
    pub voxel_size_a: [f32; 3],
    /// Output origin `[x, y, z]` in Å (centre of voxel 0).
    pub origin_a: [f32; 3],
    /// Low-pass σ in output voxels, if any.
    pub sigma_vox: Option<f64>,
}

impl PrepPlan {
    /// Passes over the output grid the streaming driver makes (1, 2 for z-score, 3 for clip).
    pub fn passes(&self) -> usize {
        match self.config.normalize {
            Normalize::None => 1,
            Normalize::Zscore => 2,
            Normalize::Clip { .. } => 3,
        }
    }

    /// Work units reported to the progress callback: input slices gathered for Fourier binning
    /// plus output slices of every pass.
    pub fn steps(&self) -> u64 {
        let gather = if self.config.bin > 1 && self.config.bin_method == BinMethod::Fourier {
            self.in_shape_zyx[0]
        } else {
            0
        };
        (gather + self.passes() * self.shape_zyx[0]) as u64
    }
}

/// Works out the output grid of `config` applied to a volume of shape `shape_zyx`, voxel size
/// `voxel_size_a` and origin `origin_a` (both `[x, y, z]`, Å).
pub fn plan(
    shape_zyx: [usize; 3],
    voxel_size_a: [f32; 3],
    origin_a: [f32; 3],
    config: &PrepConfig,
) -> Result<PrepPlan, CoreError> {
    config.validate()?;
    let f = config.bin;
    let out = shape_zyx.map(|n| n / f);
    if out.contains(&0) {
        return Err(CoreError::Invalid(format!(
            "volume of {}×{}×{} voxels (x×y×z) is smaller than the bin factor {f}",
            shape_zyx[2], shape_zyx[1], shape_zyx[0]
        )));
    }
    let shift = match config.bin_method {
        BinMethod::Mean => (f as f32 - 1.0) / 2.0,
        BinMethod::Fourier => 0.0,
    };
    let vs = voxel_size_a.map(|v| v * f as f32);
    let origin = [0, 1, 2].map(|a| origin_a[a] + shift * voxel_size_a[a]);
    let sigma_vox = match config.lowpass_a {
        None => None,
        Some(c) => {
            if vs[0].is_nan() || vs[0] <= 0.0 {
                return Err(CoreError::Invalid(
                    "the voxel size is unknown (0), so a low-pass cut-off in Å cannot be applied"
                        .into(),
                ));
            }
            Some(lowpass_sigma_vox(c, vs[0] as f64))
        }
    };
    Ok(PrepPlan {
        config: *config,
        in_shape_zyx: shape_zyx,
        shape_zyx: out,
        voxel_size_a: vs,
        origin_a: origin,
        sigma_vox,
    })
}
