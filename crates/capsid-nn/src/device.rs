//! Device selection (`--device`) and the CPU thread count.
//!
//! The default backend is Burn's `flex` (pure Rust, multi-threaded with rayon's global pool).
//! GPU backends exist only when the crate is built with the cargo feature of the same name
//! (`wgpu`, `vulkan`, `cuda`, `rocm`); asking for one that was not built is an error, not a
//! silent fallback.

use crate::NnError;
use burn::tensor::Device;

/// The device names `parse_device` accepts, for help texts.
pub const DEVICE_NAMES: &[&str] = &["flex", "cpu", "wgpu", "vulkan", "cuda", "rocm"];

/// Turns a `--device` value into a Burn device (without autodiff; call `.autodiff()` to train).
///
/// `flex` and `cpu` both mean Burn's pure-Rust CPU backend. `cuda` and `rocm` accept an
/// optional index, `cuda:1`.
pub fn parse_device(name: &str) -> Result<Device, NnError> {
    let lower = name.trim().to_ascii_lowercase();
    let (kind, index) = match lower.split_once(':') {
        Some((k, i)) => {
            let index: usize = i.parse().map_err(|_| NnError::Device {
                name: name.to_string(),
                reason: format!("'{i}' is not a device index"),
            })?;
            (k.to_string(), index)
        }
        None => (lower.clone(), 0),
    };
    let not_built = |feature: &str| NnError::Device {
        name: name.to_string(),
        reason: format!(
            "this capsid was built without the '{feature}' feature (rebuild with \
             `cargo build --release --features capsid-nn/{feature}`)"
        ),
    };
    let _ = index;
    match kind.as_str() {
        "flex" | "cpu" => Ok(Device::flex()),
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            {
                Ok(Device::wgpu(Default::default()))
            }
            #[cfg(not(feature = "wgpu"))]
            {
                Err(not_built("wgpu"))
            }
        }
        "vulkan" => {
            #[cfg(feature = "vulkan")]
            {
                Ok(Device::vulkan(Default::default()))
            }
            #[cfg(not(feature = "vulkan"))]
            {
                Err(not_built("vulkan"))
            }
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            {
                Ok(Device::cuda(index))
            }
            #[cfg(not(feature = "cuda"))]
            {
                Err(not_built("cuda"))
            }
        }
        "rocm" => {
            #[cfg(feature = "rocm")]
            {
                Ok(Device::rocm(index))
            }
            #[cfg(not(feature = "rocm"))]
            {
                Err(not_built("rocm"))
            }
        }
        _ => Err(NnError::Device {
            name: name.to_string(),
            reason: format!(
                "unknown device; expected one of {}",
                DEVICE_NAMES.join(", ")
            ),
        }),
    }
}

/// Sets the number of CPU threads the flex backend uses (rayon's global pool, which flex and
/// its matrix kernels use). Must be called before any tensor work; calling it again with the
/// same number is fine, with another number an error. `0` means rayon's default (all cores).
pub fn set_threads(threads: usize) -> Result<(), NnError> {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(e) => {
            let current = rayon::current_num_threads();
            if threads == 0 || current == threads {
                Ok(())
            } else {
                Err(NnError::Threads {
                    threads,
                    reason: format!("the thread pool already runs {current} threads ({e})"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_and_cpu_parse() {
        assert!(parse_device("flex").is_ok());
        assert!(parse_device("CPU").is_ok());
    }

    #[test]
    fn unknown_device_is_an_error() {
        let e = parse_device("tpu").unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("unknown"), "{e}");
        assert!(parse_device("cuda:x").is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn unbuilt_gpu_backend_is_an_error() {
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(e.contains("feature"), "{e}");
    }
}
