//! What the CPU offers and which kernel paths this crate takes on it, so every speed figure can
//! say where it came from (`capsid bench` prints it).

/// The CPU's model name, the instruction sets detected at run time, and the paths chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuReport {
    /// The processor brand string (CPUID), e.g. "Intel(R) Xeon(R) Processor"; "unknown" elsewhere.
    pub model: String,
    /// Instruction sets of interest that are present (and enabled by the OS), in a fixed order.
    pub features: Vec<&'static str>,
    /// The Winograd kernel used for stride-1 3×3×3 convolutions: "avx512", "avx2" or "generic".
    pub winograd: &'static str,
    /// The `gemm` crate's f32 micro-kernel (im2col convolutions, routing): "avx512", "fma" or
    /// "scalar".
    pub gemm: &'static str,
    /// The precision of the convolutions' products in force: "f32", or "bf16" (AVX512-BF16
    /// `vdpbf16ps`, f32 sums) when asked for and available.
    pub products: &'static str,
}

impl CpuReport {
    /// One line: `model; isa: …; kernels: winograd …, gemm …`.
    pub fn line(&self) -> String {
        format!(
            "{}; isa: {}; kernels: winograd {}, gemm {}, products {}",
            self.model,
            if self.features.is_empty() {
                "none detected".to_string()
            } else {
                self.features.join(" ")
            },
            self.winograd,
            self.gemm,
            self.products
        )
    }
}

/// Detects the CPU (see [`CpuReport`]).
pub fn cpu_report() -> CpuReport {
    CpuReport {
        model: brand_string().unwrap_or_else(|| "unknown".to_string()),
        features: features(),
        winograd: match crate::winograd::kernel_name() {
            "avx512" => "avx512",
            "avx2" => "avx2",
            _ => "generic",
        },
        gemm: gemm_path(),
        products: crate::settings().precision.in_use().name(),
    }
}

/// The `gemm` crate's choice, by the same tests it makes.
fn gemm_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "fma";
        }
    }
    "scalar"
}

#[cfg(target_arch = "x86_64")]
fn features() -> Vec<&'static str> {
    use std::arch::is_x86_feature_detected as has;
    let mut out = Vec::new();
    for (name, present) in [
        ("sse4.2", has!("sse4.2")),
        ("avx", has!("avx")),
        ("avx2", has!("avx2")),
        ("fma", has!("fma")),
        ("avx512f", has!("avx512f")),
        ("avx512vl", has!("avx512vl")),
        ("avx512bw", has!("avx512bw")),
        ("avx512vnni", has!("avx512vnni")),
        ("avx512bf16", has!("avx512bf16")),
        ("avx512fp16", has!("avx512fp16")),
    ] {
        if present {
            out.push(name);
        }
    }
    let amx = amx_support();
    for (name, present) in [
        ("amx-tile", amx.tile),
        ("amx-bf16", amx.bf16),
        ("amx-int8", amx.int8),
    ] {
        if present {
            out.push(name);
        }
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
fn features() -> Vec<&'static str> {
    Vec::new()
}

/// AMX units the CPU reports (CPUID leaf 7) and the OS has enabled for tile state (XCR0 bits 17
/// and 18). A process must still ask Linux for permission before using them.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Default, Clone, Copy)]
struct Amx {
    tile: bool,
    bf16: bool,
    int8: bool,
}

#[cfg(target_arch = "x86_64")]
fn amx_support() -> Amx {
    use std::arch::x86_64::__cpuid_count;
    // CPUID leaf 7 exists only when leaf 0 says so.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID is available on every x86_64 CPU.
    let max_leaf = unsafe { __cpuid_count(0, 0) }.eax;
    if max_leaf < 7 || !std::arch::is_x86_feature_detected!("xsave") {
        return Amx::default();
    }
    #[allow(unused_unsafe)]
    // SAFETY: leaf 7 is supported (checked above).
    let edx = unsafe { __cpuid_count(7, 0) }.edx;
    // SAFETY: XGETBV is available when the CPU has XSAVE and the OS enabled it (OSXSAVE), which
    // `is_x86_feature_detected!("xsave")` checked.
    let xcr0 = unsafe { xgetbv0() };
    let os_tiles = xcr0 & (0b11 << 17) == 0b11 << 17;
    Amx {
        tile: os_tiles && edx & (1 << 24) != 0,
        bf16: os_tiles && edx & (1 << 22) != 0,
        int8: os_tiles && edx & (1 << 25) != 0,
    }
}

/// XCR0, the OS-enabled state components.
///
/// # Safety
/// The CPU must support XSAVE with OSXSAVE set.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller guarantees XSAVE with OSXSAVE.
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// The CPUID processor brand string (leaves 0x8000_0002..4), trimmed.
#[cfg(target_arch = "x86_64")]
fn brand_string() -> Option<String> {
    use std::arch::x86_64::__cpuid;
    #[allow(unused_unsafe)]
    // SAFETY: CPUID is available on every x86_64 CPU; the extended leaves are read only when
    // leaf 0x8000_0000 reports them.
    let max_ext = unsafe { __cpuid(0x8000_0000) }.eax;
    if max_ext < 0x8000_0004 {
        return None;
    }
    let mut bytes = Vec::with_capacity(48);
    for leaf in 0x8000_0002u32..=0x8000_0004 {
        #[allow(unused_unsafe)]
        // SAFETY: as above.
        let r = unsafe { __cpuid(leaf) };
        for w in [r.eax, r.ebx, r.ecx, r.edx] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
    }
    let s = String::from_utf8_lossy(&bytes)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(not(target_arch = "x86_64"))]
fn brand_string() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_agrees_with_the_runtime_checks() {
        let r = cpu_report();
        assert!(!r.model.is_empty());
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                r.features.contains(&"avx512f"),
                std::arch::is_x86_feature_detected!("avx512f")
            );
            // The Winograd AVX-512 kernel needs AVX-512F and VL; gemm's needs F.
            if r.winograd == "avx512" {
                assert!(r.features.contains(&"avx512vl") && r.gemm == "avx512");
            }
            // AMX BF16 without tiles cannot be.
            assert!(!r.features.contains(&"amx-bf16") || r.features.contains(&"amx-tile"));
        }
        let line = r.line();
        assert!(
            line.contains("winograd") && line.contains(&r.model),
            "{line}"
        );
    }
}
