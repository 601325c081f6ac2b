//! Shared by the interop tests.

/// The Python of `CAPSID_PYTHON` (with the reference packages: mrcfile, starfile, zarr), or
/// `None` after saying the test is skipped; without it, `CAPSID_REQUIRE_INTEROP` (as CI sets it)
/// makes the test fail instead. `needs` names what the skipped test would have used.
pub fn interop_python(needs: &str) -> Option<String> {
    interop_python_of("CAPSID_PYTHON", needs)
}

/// Like [`interop_python`], for the Python named by the environment variable `var` (e.g.
/// `CAPSID_COPICK_PYTHON`, the one with copick and ome-zarr).
pub fn interop_python_of(var: &str, needs: &str) -> Option<String> {
    if let Ok(python) = std::env::var(var) {
        return Some(python);
    }
    let required = std::env::var("CAPSID_REQUIRE_INTEROP").is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "CAPSID_REQUIRE_INTEROP is set but {var} is not");
    eprintln!("skipped: set {var} to a Python with {needs}");
    None
}
