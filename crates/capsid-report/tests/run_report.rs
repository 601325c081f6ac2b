//! build_report on a synthetic run folder (tests/common): files written, page content, figure
//! colours, missing inputs, bad inputs.

mod common;

use capsid_report::{build_report, overlay, ReportOptions};
use std::path::Path;

fn count_colour(png: &Path, colour: image::Rgb<u8>) -> usize {
    let img = image::open(png).unwrap().to_rgb8();
    img.pixels().filter(|p| **p == colour).count()
}

#[test]
fn full_run_folder_gives_page_and_figures() {
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    let s = build_report(d.path(), &ReportOptions::default()).unwrap();
    assert_eq!(s.html, d.path().join("report/index.html"));
    let names: Vec<String> = s
        .figures
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for n in [
        "overlay_ucaps.png",
        "overlay_unet.png",
        "picks_ucaps.png",
        "picks_unet.png",
        "learning_ucaps.png",
        "learning_unet.png",
        "pr_ucaps.png",
        "pr_unet.png",
        "slices_raw.png",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    assert!(s.notes.is_empty(), "{:?}", s.notes);
    let html = std::fs::read_to_string(&s.html).unwrap();
    // One data URI per figure (the raw slices behind a click), nothing external.
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 9);
    assert!(html.contains("<details><summary>Raw central slices (no low-pass)</summary>"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    // Tables: evaluation rows and stage wall times with a total.
    assert!(html.contains("<th>precision</th>") && html.contains("<th>fbeta</th>"));
    assert!(
        html.contains("<td>ribosome</td>")
            && html.contains("<td>pooled</td>")
            && html.contains("<td>macro_avg</td>")
    );
    assert!(html.contains("<td>train ucaps</td><td class=\"num\">7325.0</td><td>2 h 2 min</td>"));
    assert!(html.contains("<td>total</td>"));
    // Config shown verbatim.
    assert!(html.contains("learning_rate = 0.001"));
    assert!(html.contains("radius_a = 60.0"));

    // Overlays: ucaps under-segments (blue rings of FN), unet over-segments (red rings of FP) and
    // calls one proteasome a ribosome (orange). Count tinted pixels by their dominant channel.
    let tint = |p: &Path| {
        let img = image::open(p).unwrap().to_rgb8();
        let (mut red, mut blue, mut orange) = (0, 0, 0);
        for px in img.pixels() {
            let [r, g, b] = px.0.map(|v| v as i32);
            if b > r + 60 && b > g + 30 {
                blue += 1;
            } else if r > g + 80 && r > b + 80 {
                red += 1;
            } else if r > b + 80 && g > b + 40 && r > g {
                orange += 1;
            }
        }
        (red, blue, orange)
    };
    let (u_red, u_blue, _) = tint(&d.path().join("report/overlay_ucaps.png"));
    let (n_red, n_blue, n_orange) = tint(&d.path().join("report/overlay_unet.png"));
    assert!(u_blue > 2 * n_blue, "ucaps FN {u_blue} vs unet {n_blue}");
    assert!(n_red > 2 * u_red, "unet FP {n_red} vs ucaps {u_red}");
    assert!(n_orange > 50, "wrong-class pixels {n_orange}");
    // Pick figures: circles in the pick colours (exact colours: circles are opaque).
    let picks = d.path().join("report/picks_unet.png");
    assert!(count_colour(&picks, overlay::TP_COLOUR) > 200);
    assert!(count_colour(&picks, overlay::FP_COLOUR) > 100);
    assert!(count_colour(&picks, overlay::FN_COLOUR) > 20);
    // Same input, same bytes.
    let first = std::fs::read(d.path().join("report/overlay_unet.png")).unwrap();
    let out2 = d.path().join("again");
    build_report(
        d.path(),
        &ReportOptions {
            out_dir: Some(out2.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first, std::fs::read(out2.join("overlay_unet.png")).unwrap());
}

#[test]
fn one_class_only() {
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    let opts = ReportOptions {
        class: Some("proteasome".into()),
        ..Default::default()
    };
    let s = build_report(d.path(), &opts).unwrap();
    let html = std::fs::read_to_string(&s.html).unwrap();
    assert!(html.contains("(class proteasome)"));
    // ucaps' only false pick is a ribosome: with proteasomes only, red is left in the legend
    // swatch alone, fewer pixels than with all classes.
    let all = d.path().join("all");
    build_report(
        d.path(),
        &ReportOptions {
            out_dir: Some(all.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let fp_one = count_colour(&d.path().join("report/picks_ucaps.png"), overlay::FP_COLOUR);
    let fp_all = count_colour(&all.join("picks_ucaps.png"), overlay::FP_COLOUR);
    assert!(fp_all > fp_one + 100, "{fp_all} vs {fp_one}");
    assert!(count_colour(&d.path().join("report/picks_ucaps.png"), overlay::TP_COLOUR) > 100);
    let e = build_report(
        d.path(),
        &ReportOptions {
            class: Some("nope".into()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown class 'nope'"), "{e}");
}

#[test]
fn missing_inputs_become_notes() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("timings.json"),
        r#"{"stages":[{"name":"simulate","seconds":3}]}"#,
    )
    .unwrap();
    let s = build_report(d.path(), &ReportOptions::default()).unwrap();
    assert!(s.figures.is_empty());
    let html = std::fs::read_to_string(&s.html).unwrap();
    assert!(html.contains("<td>simulate</td>"));
    for needle in [
        "No evaluation summary",
        "No tomogram",
        "No training metrics",
        "No precision–recall",
    ] {
        assert!(html.contains(needle), "{needle}");
        assert!(s.notes.iter().any(|n| n.contains(needle)), "{needle}");
    }
    // Only predictions' picks, no ground truth: picks drawn unscored.
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    std::fs::remove_file(d.path().join("sim/model_0/particle_locations.txt")).unwrap();
    std::fs::remove_file(d.path().join("sim/model_0/class_mask.mrc")).unwrap();
    let s = build_report(d.path(), &ReportOptions::default()).unwrap();
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("No ground-truth label map")));
    assert!(
        count_colour(
            &d.path().join("report/picks_unet.png"),
            overlay::UNSCORED_COLOUR
        ) > 100
    );
    assert!(!d.path().join("report/overlay_unet.png").exists());
}

#[test]
fn bad_inputs_name_the_file_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    std::fs::write(
        d.path().join("train/unet/metrics.csv"),
        "epoch,loss\n1,2,3\n",
    )
    .unwrap();
    let e = build_report(d.path(), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("metrics.csv") && e.contains("header"), "{e}");
    assert!(!d.path().join("report/index.html").exists());

    // A summary.json that is not capsid evaluate's.
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    std::fs::write(
        d.path().join("eval/unet/summary.json"),
        r#"{"classes": [{"class": "ribosome", "f1": 0.5}]}"#,
    )
    .unwrap();
    let e = build_report(d.path(), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("summary.json") && e.contains("capsid evaluate"),
        "{e}"
    );
    assert!(!d.path().join("report/index.html").exists());

    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    std::fs::write(
        d.path().join("segment/unet/model_0_labels.mrc"),
        b"not an mrc",
    )
    .unwrap();
    let e = build_report(d.path(), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("model_0_labels.mrc"), "{e}");
    assert!(!d.path().join("report").exists());

    let e = build_report(&d.path().join("absent"), &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent"), "{e}");
}

#[test]
fn shape_mismatch_is_a_note() {
    let d = tempfile::tempdir().unwrap();
    common::write_run(d.path());
    let small = capsid_core::Volume::new(ndarray::Array3::<u8>::zeros((4, 4, 4)), 10.0);
    capsid_io::mrc::write_labels(
        &d.path().join("segment/unet/model_0_labels.mrc"),
        &small,
        capsid_io::mrc::LabelMode::Uint8Mode0,
    )
    .unwrap();
    let s = build_report(d.path(), &ReportOptions::default()).unwrap();
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("differs from the tomogram")),
        "{:?}",
        s.notes
    );
    assert!(!d.path().join("report/overlay_unet.png").exists());
    assert!(d.path().join("report/overlay_ucaps.png").exists());
}
