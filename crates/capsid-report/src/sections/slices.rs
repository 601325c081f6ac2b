//! The slices section: central XY and XZ slices of the tomogram (`[z, y, x]`, low-passed for
//! display), the predicted label map over the ground truth coloured TP / FP / FN / wrong class,
//! picks drawn as circles of the class radius (in voxels), and the raw slices behind a click.

use super::{note, png_name};
use crate::figure::{self, LegendEntry, Panel};
use crate::html::{self, Section};
use crate::overlay::{self, ClassSelect, Plane};
use crate::{layout, slice_scale, ReportError, ReportOptions};
use capsid_core::{ClassTable, Particle};
use image::RgbImage;

/// Radius used for circles when no class table gives one, in voxels.
const FALLBACK_RADIUS_VOX: f64 = 5.0;

/// The class radius in voxels for `class` (fallback when unknown).
fn radius_fn(classes: Option<&ClassTable>, voxel_size_a: f64) -> impl Fn(&str) -> f64 + '_ {
    move |c: &str| {
        classes
            .and_then(|t| t.get(c).ok())
            .map(|d| d.radius_voxels(voxel_size_a))
            .unwrap_or(FALLBACK_RADIUS_VOX)
    }
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

pub(crate) fn slices_section(
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
