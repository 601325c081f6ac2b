//! Electron optics shared by the simulator (imaging) and template matching (the template's CTF).

/// Electron wavelength in Å at `voltage_kv` kV (relativistic).
pub fn electron_wavelength_a(voltage_kv: f64) -> f64 {
    let v = voltage_kv * 1e3;
    12.264_259 / (v * (1.0 + 0.978_466e-6 * v)).sqrt()
}

/// The CTF's modulation `√(1−A²)·sin χ + A·cos χ` at spatial frequency `k` (1/Å), with
/// `χ = π λ Δf k² − (π/2) Cs λ³ k⁴`: defocus `Δf` in µm (positive = underfocus), voltage in kV,
/// spherical aberration in mm, amplitude contrast `A` as a fraction. Positive at low frequency;
/// the image's CTF is its negative (protein dark).
pub fn ctf_modulation(
    k: f64,
    defocus_um: f64,
    voltage_kv: f64,
    cs_mm: f64,
    amplitude_contrast: f64,
) -> f64 {
    let lambda = electron_wavelength_a(voltage_kv);
    let df = defocus_um * 1e4;
    let cs = cs_mm * 1e7;
    let k2 = k * k;
    let chi = std::f64::consts::PI * lambda * df * k2
        - std::f64::consts::FRAC_PI_2 * cs * lambda.powi(3) * k2 * k2;
    let a = amplitude_contrast;
    (1.0 - a * a).sqrt() * chi.sin() + a * chi.cos()
}
