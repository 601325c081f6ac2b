//! The report page in headless Chromium at 1,280 × 900 (the width of a laptop screen): every
//! figure decodes, nothing makes the page scroll sideways, and the results come first.
//! Uses capsid-view's DevTools client; skips without Chromium unless CI=true (CI installs it).

#[path = "../../capsid-view/tests/common/mod.rs"]
mod browser;
mod common;

use capsid_report::{build_report, ReportOptions};

#[test]
fn report_fits_1280_pixels_and_every_figure_loads() {
    let Some(chrome) = browser::chromium() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    let s = build_report(d.path(), &ReportOptions::default()).unwrap();
    let mut b = browser::Browser::launch(&chrome, 1280, 900);
    b.navigate(&format!("file://{}", s.html.display()));
    b.wait_for("Array.from(document.images).every(i => i.complete)", 30.0);
    // Every figure decoded (closed <details> included: their images load too).
    let loaded =
        b.eval("Array.from(document.images).map(i => i.naturalWidth > 0 && i.naturalHeight > 0)");
    let loaded: Vec<bool> = serde_json::from_value(loaded).unwrap();
    assert_eq!(loaded.len(), s.figures.len(), "{loaded:?}");
    assert!(loaded.iter().all(|&l| l), "{loaded:?}");
    // No horizontal overflow: the page is no wider than the window, and no element outside a
    // scrolling box sticks out to the right.
    let widths: Vec<f64> = serde_json::from_value(
        b.eval("[document.documentElement.scrollWidth, document.documentElement.clientWidth]"),
    )
    .unwrap();
    assert!(
        widths[0] <= widths[1],
        "page {} px wide in a {} px window",
        widths[0],
        widths[1]
    );
    let sticking_out: Vec<String> = serde_json::from_value(b.eval(
        "Array.from(document.querySelectorAll('body *')).filter(e => !e.closest('.scroll, pre') \
         && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1) \
         .map(e => e.tagName + ' ' + e.className)",
    ))
    .unwrap();
    assert!(sticking_out.is_empty(), "{sticking_out:?}");
    // The results come first: their section is the first one on the page.
    let first: String =
        serde_json::from_value(b.eval("document.querySelector('section').id")).unwrap();
    assert_eq!(first, "results");
    // The screenshot is the window: 1,280 pixels wide, with dark text on a white page.
    let png = b.screenshot();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(img.width(), 1280);
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 80)).count();
    let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    let n = (img.width() * img.height()) as usize;
    assert!(
        dark > 500 && white > n / 2,
        "dark {dark}, white {white} of {n}"
    );
}
