//! capsid-report: PNG figures and one self-contained HTML page for a capsid run directory.
//!
//! [`build_report`] reads what a run left in its folder (layout in [`layout`]) and writes
//! `report/index.html` with, where their inputs exist:
//!
//! * the evaluation tables (per-class precision, recall, F1, Fβ, … from `eval/summary.json`),
//! * the wall time of each stage (`timings.json`; the seed's Table 5),
//! * central XY and XZ slices of the tomogram with the predicted label map laid over the ground
//!   truth, voxels coloured TP green, FP red, FN blue, wrong class orange (the seed's Figs 6–7),
//! * the same slices with picks drawn as circles of the class radius (TP green, FP red, missed
//!   particles blue),
//! * learning curves (`train/<model>/metrics.csv`) and precision–recall curves,
//! * the run's configuration files.
//!
//! Figures are also written as PNG files beside the page; the page embeds them as base64 `data:`
//! URIs and needs no other file. Sections whose inputs are absent are replaced by a note.
//!
//! Modules: [`overlay`] (slices, TP/FP/FN colouring, circles; pure functions on arrays),
//! [`figure`] (panel layout, text, PNG), [`curves`] (line charts), [`summary`] (evaluation and
//! timing JSON), [`html`] (the page), [`layout`] (finding and reading inputs). Main types:
//! [`ReportOptions`], [`ReportSummary`], [`ReportError`].
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod curves;
pub mod error;
pub mod figure;
pub mod html;
pub mod layout;
pub mod overlay;
pub mod summary;

pub use error::ReportError;

use capsid_core::{ClassTable, Particle};
use figure::{LegendEntry, Panel};
use html::Section;
use image::RgbImage;
use overlay::{ClassSelect, Plane};
use std::path::{Path, PathBuf};
use summary::Table;

/// Options of [`build_report`]. `Default` writes to `RUN_DIR/report`, shows all classes and
/// picks the magnification itself.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Output folder; `None` means `RUN_DIR/report`.
    pub out_dir: Option<PathBuf>,
    /// Show only this class in the overlays and pick figures (a class-table name).
    pub class: Option<String>,
    /// Tomogram to show when the data folder holds several (its folder name).
    pub tomogram: Option<String>,
    /// Magnification of slice images (1–8); `None` chooses 1–4 so a slice is about 500 px wide.
    pub scale: Option<u32>,
}

/// What [`build_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// The HTML page.
    pub html: PathBuf,
    /// The PNG figures written beside it.
    pub figures: Vec<PathBuf>,
    /// Why sections are missing or partial (the same notes appear on the page).
    pub notes: Vec<String>,
}

/// Radius used for circles when no class table gives one, in voxels.
const FALLBACK_RADIUS_VOX: f64 = 5.0;

/// Magnification of slice images: `requested` (clamped to 1..=8) or the largest factor up to 4
/// that keeps the widest slice side at or under 512 pixels (at least 1).
pub fn slice_scale(requested: Option<u32>, shape_zyx: [usize; 3]) -> u32 {
    if let Some(s) = requested {
        return s.clamp(1, 8);
    }
    let widest = shape_zyx.iter().copied().max().unwrap_or(1).max(1);
    ((512 / widest) as u32).clamp(1, 4)
}

/// Builds the report of `run_dir`: writes the PNG figures and `index.html` into the output folder
/// (created if needed) and returns their paths and the notes about missing inputs.
///
/// Fails with the file named when an input that is present cannot be read or parsed, when
/// `--class` names a class the class table lacks, or when the output cannot be written. Inputs
/// are never modified; each output is written atomically.
pub fn build_report(run_dir: &Path, opts: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let inputs = layout::discover(run_dir, opts.tomogram.as_deref())?;
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("report"));
    let mut notes: Vec<String> = Vec::new();
    let mut figures: Vec<(String, Vec<u8>)> = Vec::new(); // (file name, PNG)
    let mut sections: Vec<Section> = Vec::new();

    let classes = match &inputs.class_table {
        Some(p) => Some(ClassTable::load(p)?),
        None => None,
    };
    let select = match (&opts.class, &classes) {
        (None, _) => ClassSelect::All,
        (Some(name), Some(t)) => ClassSelect::Label(t.get(name)?.label),
        (Some(name), None) => {
            return Err(ReportError::Invalid(format!(
                "--class {name}: no class table found in {} (looked for class_table.toml in the run and data folders)",
                run_dir.display()
            )))
        }
    };

    sections.push(results_section(&inputs, &mut notes)?);
    sections.push(timings_section(&inputs, &mut notes)?);
    sections.push(slices_section(
        &inputs,
        classes.as_ref(),
        select,
        opts,
        &mut figures,
        &mut notes,
    )?);
    sections.push(learning_section(&inputs, &mut figures, &mut notes)?);
    sections.push(pr_section(&inputs, &mut figures, &mut notes)?);
    sections.push(config_section(&inputs, &mut notes)?);

    std::fs::create_dir_all(&out_dir).map_err(|source| ReportError::Io {
        path: out_dir.clone(),
        source,
    })?;
    let mut figure_paths = Vec::new();
    for (name, png) in &figures {
        let p = out_dir.join(name);
        capsid_core::write_atomically(&p, |w| std::io::Write::write_all(w, png))?;
        figure_paths.push(p);
    }
    let meta = format!(
        "Run folder {} · tomogram {} · class {} · capsid {}",
        run_dir.display(),
        inputs.tomo_name.as_deref().unwrap_or("—"),
        opts.class.as_deref().unwrap_or("all"),
        capsid_core::VERSION
    );
    let page = html::page("capsid run report", &meta, &sections);
    let html_path = out_dir.join("index.html");
    capsid_core::write_atomically(&html_path, |w| {
        std::io::Write::write_all(w, page.as_bytes())
    })?;
    Ok(ReportSummary {
        html: html_path,
        figures: figure_paths,
        notes,
    })
}

/// Adds `text` to the notes and returns it as an HTML note.
fn note(notes: &mut Vec<String>, text: String) -> String {
    let h = html::note(&text);
    notes.push(text);
    h
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn results_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    if inputs.evaluations.is_empty() {
        body.push_str(&note(
            notes,
            "No evaluation summary (eval/summary.json): no results table.".into(),
        ));
    }
    for (name, path) in &inputs.evaluations {
        let r = summary::read_evaluation(path)?;
        let s = summary::eval_summary(&r);
        body.push_str(&format!("<h3>{}</h3>\n", html::escape(name)));
        // The short table first (per class P/R/F1 and the headline score), the confusion matrix
        // and look-alikes; every column below, collapsed.
        body.push_str(&headline(&r));
        let mut details = String::new();
        for (title, table) in &s.tables {
            if s.tables.len() > 1 {
                details.push_str(&format!("<h4>{}</h4>\n", html::escape(title)));
            }
            details.push_str(&html::table(table));
        }
        if !s.settings.is_empty() {
            let rows: Vec<Vec<String>> = s
                .settings
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect();
            details.push_str("<h4>Settings</h4>\n");
            details.push_str(&html::table(&summary::Table {
                header: vec!["setting".into(), "value".into()],
                rows,
            }));
        }
        body.push_str(&format!(
            "<details><summary>Every column and setting</summary>\n{details}</details>\n"
        ));
        if r.classes.is_empty() {
            body.push_str(&note(
                notes,
                format!("{}: no per-class rows.", path.display()),
            ));
        }
    }
    Ok(Section {
        id: "results".into(),
        title: "Results".into(),
        body,
    })
}

/// The short results of a capsid evaluation: per class picks / true, precision, recall, F1 at the
/// evaluation's tolerance, the macro average as the headline, then the confusion matrix (true
/// class × picked class, from class-blind matching) and the look-alikes picked as targets.
fn headline(r: &capsid_eval::EvaluationReport) -> String {
    let f3 = |v: f64| format!("{v:.3}");
    let mut rows: Vec<Vec<String>> = r
        .classes
        .iter()
        .map(|c| {
            vec![
                c.class.clone(),
                format!("{} / {}", c.n_picks, c.n_truth),
                f3(c.precision),
                f3(c.recall),
                f3(c.f1),
            ]
        })
        .collect();
    rows.push(vec![
        "macro average".into(),
        format!("{} / {}", r.n_picks, r.n_truth),
        f3(r.macro_avg.precision),
        f3(r.macro_avg.recall),
        f3(r.macro_avg.f1),
    ]);
    let mut s = format!(
        "<p><b>Macro F1 {:.3}</b> over {} class(es), matches within {} × the class radius.</p>\n",
        r.macro_avg.f1, r.macro_avg.n_classes, r.params.tolerance_fraction
    );
    s.push_str(&html::table(&summary::Table {
        header: ["class", "picks / true", "precision", "recall", "F1"]
            .map(String::from)
            .to_vec(),
        rows,
    }));
    let cm = &r.confusion;
    if !cm.counts.is_empty() {
        let mut header = vec!["true \\ picked".to_string()];
        header.extend(cm.picked_classes.iter().cloned());
        let rows = cm
            .true_classes
            .iter()
            .zip(&cm.counts)
            .map(|(name, row)| {
                let mut cells = vec![name.clone()];
                cells.extend(row.iter().map(|n| n.to_string()));
                cells
            })
            .collect();
        s.push_str("<h4>Confusion matrix</h4>\n<p class=\"meta\">Rows: the true class of each particle (background: picks on no particle); columns: the class it was picked as (missed: no pick).</p>\n");
        s.push_str(&html::table(&summary::Table { header, rows }));
    }
    if let Some(d) = &r.decoys {
        let rows = d
            .decoys
            .iter()
            .map(|p| {
                vec![
                    p.decoy_class.clone(),
                    format!("{} / {}", p.picked, p.n),
                    format!("{:.1}", 100.0 * p.share_picked),
                ]
            })
            .collect();
        s.push_str(&format!(
            "<h4>Look-alikes picked as targets: {} of {} ({:.1} %)</h4>\n",
            d.decoys_picked,
            d.n_decoys,
            100.0 * d.share_decoys_picked
        ));
        s.push_str(&html::table(&summary::Table {
            header: ["look-alike class", "picked / present", "%"]
                .map(String::from)
                .to_vec(),
            rows,
        }));
    }
    s
}

fn timings_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let body = match &inputs.timings {
        None => note(notes, "No timings.json: stage wall times unknown.".into()),
        Some(p) => {
            let stages = summary::parse_timings(&read_text(p)?, p)?;
            let mut t = Table {
                header: vec![
                    "stage".into(),
                    "seconds".into(),
                    "wall time".into(),
                    "details".into(),
                ],
                rows: Vec::new(),
            };
            for s in &stages {
                t.rows.push(vec![
                    s.name.clone(),
                    format!("{:.1}", s.seconds),
                    summary::human_duration(s.seconds),
                    s.details.clone(),
                ]);
            }
            let total: f64 = stages.iter().map(|s| s.seconds).sum();
            t.rows.push(vec![
                "total".into(),
                format!("{total:.1}"),
                summary::human_duration(total),
                String::new(),
            ]);
            html::table(&t)
        }
    };
    Ok(Section {
        id: "timings".into(),
        title: "Stage wall times".into(),
        body,
    })
}

/// The class radius in voxels for `class` (fallback when unknown).
fn radius_fn(classes: Option<&ClassTable>, voxel_size_a: f64) -> impl Fn(&str) -> f64 + '_ {
    move |c: &str| {
        classes
            .and_then(|t| t.get(c).ok())
            .map(|d| d.radius_voxels(voxel_size_a))
            .unwrap_or(FALLBACK_RADIUS_VOX)
    }
}

fn png_name(prefix: &str, set: &str) -> String {
    let clean: String = set
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}_{clean}.png")
}

fn voxel_legend(select: ClassSelect) -> Vec<LegendEntry> {
    let mut v = vec![
        LegendEntry {
            colour: overlay::TP_COLOUR,
            text: "true positive".into(),
            ring: false,
        },
        LegendEntry {
            colour: overlay::FP_COLOUR,
            text: "false positive".into(),
            ring: false,
        },
        LegendEntry {
            colour: overlay::FN_COLOUR,
            text: "false negative".into(),
            ring: false,
        },
    ];
    if select == ClassSelect::All {
        v.push(LegendEntry {
            colour: overlay::WRONG_CLASS_COLOUR,
            text: "wrong class".into(),
            ring: false,
        });
    }
    v
}

fn pick_legend(scored: bool) -> Vec<LegendEntry> {
    if scored {
        vec![
            LegendEntry {
                colour: overlay::TP_COLOUR,
                text: "pick, matched".into(),
                ring: true,
            },
            LegendEntry {
                colour: overlay::FP_COLOUR,
                text: "pick, false positive".into(),
                ring: true,
            },
            LegendEntry {
                colour: overlay::FN_COLOUR,
                text: "missed particle".into(),
                ring: true,
            },
        ]
    } else {
        vec![LegendEntry {
            colour: overlay::UNSCORED_COLOUR,
            text: "pick (no ground truth)".into(),
            ring: true,
        }]
    }
}

fn slices_section(
    inputs: &layout::RunInputs,
    classes: Option<&ClassTable>,
    select: ClassSelect,
    opts: &ReportOptions,
    figures: &mut Vec<(String, Vec<u8>)>,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    let section = |body| Section {
        id: "slices".into(),
        title: "Slices: prediction vs ground truth".into(),
        body,
    };
    let Some(tomo_path) = &inputs.tomogram else {
        body.push_str(&note(
            notes,
            "No tomogram (sim/…/reconstruction.mrc): no slice figures.".into(),
        ));
        return Ok(section(body));
    };
    if inputs.predictions.is_empty() {
        body.push_str(&note(
            notes,
            "No predictions (segment/…_labels.mrc or pick/…_picks.*): no slice figures.".into(),
        ));
        return Ok(section(body));
    }
    let header = capsid_io::mrc::read_header(tomo_path)
        .map_err(|e| ReportError::input(e.path().to_path_buf(), e.to_string()))?;
    let voxel_size_a = header.voxel_size_a[0] as f64;
    let layout::CentralSlices {
        xy: tomo_xy,
        xz: tomo_xz,
        shape_zyx: shape,
    } = layout::central_slices(tomo_path)?;
    let [nz, ny, _] = shape;
    let (z0, y0) = (nz / 2, ny / 2);
    let scale = slice_scale(opts.scale, shape);
    // Display slices are low-passed (particles show at cryo-ET's SNR); the raw ones are a click
    // away at the end of the section.
    let shown = |s: &ndarray::Array2<f32>| {
        overlay::percentile_stretch(
            overlay::gaussian_blur_2d(s.view(), overlay::DISPLAY_SIGMA_PX).view(),
            1.0,
            99.0,
        )
    };
    let grey_xy = shown(&tomo_xy);
    let grey_xz = shown(&tomo_xz);
    let class_text = match (select, &opts.class) {
        (ClassSelect::Label(_), Some(n)) => format!("class {n}"),
        _ => "all classes".to_string(),
    };
    let xy_cap = format!("XY, z = {z0}");
    let xz_cap = format!("XZ, y = {y0}");

    let truth_labels = match &inputs.truth_labels {
        Some(p) => {
            let layout::CentralSlices {
                xy,
                xz,
                shape_zyx: s,
            } = layout::central_slices(p)?;
            if s != shape {
                body.push_str(&note(
                    notes,
                    format!("{}: shape {:?} (z, y, x) differs from the tomogram's {:?}; overlays skipped.", p.display(), s, shape),
                ));
                None
            } else {
                Some((layout::to_labels(&xy), layout::to_labels(&xz)))
            }
        }
        None => {
            body.push_str(&note(
                notes,
                "No ground-truth label map (class_mask.mrc): voxel overlays skipped.".into(),
            ));
            None
        }
    };
    let truth_particles: Option<Vec<Particle>> = match &inputs.truth_particles {
        Some(p) => Some(layout::read_particles(p, classes)?),
        None => {
            body.push_str(&note(
                notes,
                "No ground-truth particle list (particle_locations.txt): picks are not scored."
                    .into(),
            ));
            None
        }
    };
    if classes.is_none() {
        body.push_str(&note(
            notes,
            format!("No class table: circles drawn with a radius of {FALLBACK_RADIUS_VOX} voxels."),
        ));
    }
    let wanted = |p: &Particle| match (&opts.class, select) {
        (Some(n), ClassSelect::Label(_)) => &p.class == n,
        _ => true,
    };
    let radius = radius_fn(classes, voxel_size_a);

    for set in &inputs.predictions {
        body.push_str(&format!("<h3>{}</h3>\n", html::escape(&set.name)));
        // Voxel overlay.
        match (&set.labels, &truth_labels) {
            (Some(lp), Some((t_xy, t_xz))) => {
                let layout::CentralSlices {
                    xy: p_xy,
                    xz: p_xz,
                    shape_zyx: s,
                } = layout::central_slices(lp)?;
                if s != shape {
                    body.push_str(&note(
                        notes,
                        format!("{}: shape {:?} (z, y, x) differs from the tomogram's {:?}; overlay skipped.", lp.display(), s, shape),
                    ));
                } else {
                    let (p_xy, p_xz) = (layout::to_labels(&p_xy), layout::to_labels(&p_xz));
                    let mut panels = Vec::new();
                    let mut counts = Vec::new();
                    for (cap, grey, t, p) in [
                        (&xy_cap, &grey_xy, t_xy, &p_xy),
                        (&xz_cap, &grey_xz, t_xz, &p_xz),
                    ] {
                        let out = overlay::slice_outcomes(t.view(), p.view(), select)
                            .ok_or_else(|| ReportError::figure("overlay", "slice shapes differ"))?;
                        let c = overlay::count_outcomes(&out);
                        counts.push(format!(
                            "{cap}: TP {} · FP {} · FN {} · wrong class {} voxels",
                            c[0], c[1], c[2], c[3]
                        ));
                        let img = overlay::overlay_image(grey, &out, 0.55)
                            .ok_or_else(|| ReportError::figure("overlay", "slice shapes differ"))?;
                        panels.push(Panel {
                            caption: cap.clone(),
                            image: overlay::upscale_nearest(&img, scale),
                        });
                    }
                    let title = format!(
                        "{}: predicted labels over ground truth ({class_text})",
                        set.name
                    );
                    let fig = figure::compose(&title, &[panels], &voxel_legend(select))?;
                    let name = png_name("overlay", &set.name);
                    let png = figure::png_bytes(&fig)?;
                    body.push_str(&html::figure(
                        &png,
                        &title,
                        &format!("{title}. Central slices, low-passed for display (Gaussian, σ = {} pixels), ×{scale}. {}.", overlay::DISPLAY_SIGMA_PX, counts.join("; ")),
                    ));
                    figures.push((name, png));
                }
            }
            (None, _) => body.push_str(&note(
                notes,
                format!("{}: no predicted label map.", set.name),
            )),
            (Some(_), None) => {}
        }
        // Picks.
        if let Some(pp) = &set.picks {
            let picks: Vec<Particle> = layout::read_particles(pp, classes)?
                .into_iter()
                .filter(|p| wanted(p))
                .collect();
            let truth: Option<Vec<Particle>> = truth_particles
                .as_ref()
                .map(|t| t.iter().filter(|p| wanted(p)).cloned().collect());
            let markers = overlay::markers(truth.as_deref(), &picks, &radius);
            let mut panels = Vec::new();
            let mut drawn = Vec::new();
            for (cap, grey, plane) in [
                (&xy_cap, &grey_xy, Plane::Xy { z: z0 }),
                (&xz_cap, &grey_xz, Plane::Xz { y: y0 }),
            ] {
                let mut img: RgbImage = overlay::upscale_nearest(&overlay::grey_image(grey), scale);
                let n = overlay::draw_markers(&mut img, &markers, plane, scale);
                drawn.push(format!("{cap}: {n} circles"));
                panels.push(Panel {
                    caption: cap.clone(),
                    image: img,
                });
            }
            let count = |s| markers.iter().filter(|m| m.status == s).count();
            let title = format!("{}: picks ({class_text})", set.name);
            let fig = figure::compose(&title, &[panels], &pick_legend(truth.is_some()))?;
            let png = figure::png_bytes(&fig)?;
            let tally = if truth.is_some() {
                format!(
                    "Picks matched: {}; false picks: {}; particles missed: {} (display matching: same class, centre within the whole class radius, looser than the results table's tolerance, so these counts can exceed its TP)",
                    count(overlay::PickStatus::TruePositive),
                    count(overlay::PickStatus::FalsePositive),
                    count(overlay::PickStatus::FalseNegative)
                )
            } else {
                format!("{} picks, not scored", picks.len())
            };
            body.push_str(&html::figure(
                &png,
                &title,
                &format!("{title}. Circles are the class-radius sphere cut by the slice plane. {tally}. {}.", drawn.join("; ")),
            ));
            figures.push((png_name("picks", &set.name), png));
        } else {
            body.push_str(&note(notes, format!("{}: no picks.", set.name)));
        }
    }
    // The raw central slices (no low-pass), behind a click.
    let raw_panels: Vec<figure::Panel> = [(&xy_cap, &tomo_xy), (&xz_cap, &tomo_xz)]
        .into_iter()
        .map(|(cap, s)| figure::Panel {
            caption: cap.clone(),
            image: overlay::upscale_nearest(
                &overlay::grey_image(&overlay::percentile_stretch(s.view(), 1.0, 99.0)),
                scale,
            ),
        })
        .collect();
    let raw_title = "Raw central slices (no low-pass)";
    let png = figure::png_bytes(&figure::compose(raw_title, &[raw_panels], &[])?)?;
    body.push_str(&format!(
        "<details><summary>{raw_title}</summary>\n{}</details>\n",
        html::figure(
            &png,
            raw_title,
            &format!(
                "The tomogram's central slices as stored, ×{scale}, 1st–99th percentile stretch; the figures above show them low-passed (Gaussian, σ = {} pixels).",
                overlay::DISPLAY_SIGMA_PX
            )
        )
    ));
    figures.push(("slices_raw.png".into(), png));
    Ok(section(body))
}

fn learning_section(
    inputs: &layout::RunInputs,
    figures: &mut Vec<(String, Vec<u8>)>,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    if inputs.training.is_empty() {
        body.push_str(&note(
            notes,
            "No training metrics (train/<model>/metrics.csv): no learning curves.".into(),
        ));
    }
    for (model, path) in &inputs.training {
        let table =
            curves::MetricsTable::from_run(&capsid_core::run_metrics::RunMetrics::read(path)?);
        match curves::learning_curve_figure(model, &table)? {
            Some(img) => {
                let png = figure::png_bytes(&img)?;
                body.push_str(&html::figure(
                    &png,
                    &format!("{model} learning curves"),
                    &format!("{model}: learning curves from {}.", path.display()),
                ));
                figures.push((png_name("learning", model), png));
            }
            None => body.push_str(&note(
                notes,
                format!("{}: no curve columns.", path.display()),
            )),
        }
    }
    Ok(Section {
        id: "learning".into(),
        title: "Learning curves".into(),
        body,
    })
}

fn pr_section(
    inputs: &layout::RunInputs,
    figures: &mut Vec<(String, Vec<u8>)>,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    let mut body = String::new();
    let mut any = false;
    for (name, path) in &inputs.evaluations {
        let s = summary::eval_summary(&summary::read_evaluation(path)?);
        if s.pr_curves.is_empty() {
            continue;
        }
        any = true;
        let title = format!("{name}: precision–recall");
        let png = figure::png_bytes(&curves::pr_curve_figure(&title, &s.pr_curves)?)?;
        body.push_str(&html::figure(
            &png,
            &title,
            &format!("{title}, one curve per class, from {}.", path.display()),
        ));
        figures.push((png_name("pr", name), png));
    }
    if !any {
        body.push_str(&note(
            notes,
            "No precision–recall curves in the evaluation summaries.".into(),
        ));
    }
    Ok(Section {
        id: "pr".into(),
        title: "Precision–recall curves".into(),
        body,
    })
}

fn config_section(
    inputs: &layout::RunInputs,
    notes: &mut Vec<String>,
) -> Result<Section, ReportError> {
    const MAX_CHARS: usize = 20_000;
    let mut body = String::new();
    let mut files: Vec<(String, String)> = vec![
        ("tomogram".into(), opt_path(&inputs.tomogram)),
        ("ground-truth labels".into(), opt_path(&inputs.truth_labels)),
        (
            "ground-truth particles".into(),
            opt_path(&inputs.truth_particles),
        ),
        ("class table".into(), opt_path(&inputs.class_table)),
        ("timings".into(), opt_path(&inputs.timings)),
    ];
    for p in &inputs.predictions {
        files.push((format!("{} labels", p.name), opt_path(&p.labels)));
        files.push((format!("{} picks", p.name), opt_path(&p.picks)));
    }
    let t = Table {
        header: vec!["input".into(), "file".into()],
        rows: files.into_iter().map(|(a, b)| vec![a, b]).collect(),
    };
    body.push_str(&html::table(&t));
    if inputs.configs.is_empty() && inputs.class_table.is_none() {
        body.push_str(&note(
            notes,
            "No configuration files (*.toml) in the run folder.".into(),
        ));
    }
    for p in inputs.class_table.iter().chain(&inputs.configs) {
        let mut text = read_text(p)?;
        if text.len() > MAX_CHARS {
            let cut = (0..=MAX_CHARS)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text.push_str("\n… (cut)");
        }
        let shown = p.strip_prefix(&inputs.run_dir).unwrap_or(p);
        body.push_str(&html::pre(&shown.display().to_string(), &text));
    }
    Ok(Section {
        id: "config".into(),
        title: "Inputs and configuration".into(),
        body,
    })
}

fn opt_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "— (absent)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_choice() {
        assert_eq!(slice_scale(None, [64, 64, 64]), 4);
        assert_eq!(slice_scale(None, [200, 200, 200]), 2);
        assert_eq!(slice_scale(None, [200, 512, 512]), 1);
        assert_eq!(slice_scale(None, [100, 1000, 1000]), 1);
        assert_eq!(slice_scale(Some(20), [64, 64, 64]), 8);
        assert_eq!(slice_scale(Some(0), [64, 64, 64]), 1);
    }

    /// capsid evaluate's summary gives the short table, the headline and the confusion matrix.
    #[test]
    fn headline_of_a_capsid_evaluation() {
        use capsid_core::Particle;
        let truth = vec![
            Particle::new("ribosome", 10.0, 10.0, 10.0),
            Particle::new("proteasome", 30.0, 30.0, 30.0),
        ];
        // The ribosome found; the proteasome picked as a ribosome; one pick on nothing.
        let picks = vec![
            Particle::new("ribosome", 10.5, 10.0, 10.0),
            Particle::new("ribosome", 30.0, 30.5, 30.0),
            Particle::new("proteasome", 50.0, 50.0, 50.0),
        ];
        let r = summary::tests::evaluate_two_classes(&picks, &truth);
        // Through JSON, as the report reads it.
        let back: capsid_eval::EvaluationReport =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        let h = headline(&back);
        assert!(h.contains("Macro F1 0.333"), "{h}");
        assert!(
            h.contains("<td>ribosome</td><td>2 / 1</td><td class=\"num\">0.500</td>"),
            "{h}"
        );
        assert!(h.contains("Confusion matrix"), "{h}");
        // Row proteasome: picked once as ribosome (column 1), none as proteasome, none missed.
        assert!(
            h.contains("<td>proteasome</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">0</td>"),
            "{h}"
        );
    }
}
