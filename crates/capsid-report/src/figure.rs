//! Composing panels into one figure with a title, panel captions and a colour legend, and
//! encoding figures as PNG.
//!
//! Text is drawn by plotters with DejaVu Sans embedded in the binary (the `dejavu` crate), so
//! figures look the same on a headless machine without system fonts.

use crate::error::ReportError;
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use std::sync::Once;

/// The font family name figures use (registered once with plotters).
pub(crate) const FONT: &str = "sans-serif";

static FONT_INIT: Once = Once::new();

/// Registers the embedded DejaVu Sans with plotters (idempotent).
pub(crate) fn ensure_font() {
    FONT_INIT.call_once(|| {
        // The font is a valid TTF shipped inside the `dejavu` crate; if registration failed anyway,
        // text would be missing from figures but drawing would still work.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// One entry of a figure legend: a colour swatch and its text.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    pub colour: Rgb<u8>,
    pub text: String,
    /// Drawn as a ring (picks) instead of a filled square (voxels).
    pub ring: bool,
}

/// A captioned image in a figure.
#[derive(Debug, Clone)]
pub struct Panel {
    pub caption: String,
    pub image: RgbImage,
}

const MARGIN: u32 = 12;
const TITLE_H: u32 = 34;
const CAPTION_H: u32 = 22;
const LEGEND_ROW_H: u32 = 24;

/// Lays out `rows` of panels under a title, each panel under its caption, with the legend below.
/// White background, panels left-aligned in each row.
pub fn compose(
    title: &str,
    rows: &[Vec<Panel>],
    legend: &[LegendEntry],
) -> Result<RgbImage, ReportError> {
    ensure_font();
    let row_heights: Vec<u32> = rows
        .iter()
        .map(|r| r.iter().map(|p| p.image.height()).max().unwrap_or(0))
        .collect();
    let row_widths: Vec<u32> = rows
        .iter()
        .map(|r| r.iter().map(|p| p.image.width() + MARGIN).sum::<u32>() + MARGIN)
        .collect();
    let legend_w: u32 = legend
        .iter()
        .map(|e| 40 + 8 * e.text.chars().count() as u32)
        .sum::<u32>()
        + MARGIN;
    let width = row_widths
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(legend_w)
        .max(480);
    let legend_h = if legend.is_empty() {
        0
    } else {
        LEGEND_ROW_H + MARGIN
    };
    let height = TITLE_H
        + row_heights
            .iter()
            .map(|h| h + CAPTION_H + MARGIN)
            .sum::<u32>()
        + legend_h
        + MARGIN;

    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    // Blit panels; remember where captions go.
    let mut captions: Vec<(String, i32, i32)> = Vec::new();
    let mut y = TITLE_H;
    for (row, h) in rows.iter().zip(&row_heights) {
        let mut x = MARGIN;
        for p in row {
            captions.push((p.caption.clone(), x as i32, y as i32 + 3));
            image::imageops::replace(&mut canvas, &p.image, x as i64, (y + CAPTION_H) as i64);
            x += p.image.width() + MARGIN;
        }
        y += h + CAPTION_H + MARGIN;
    }
    let legend_y = y as i32;

    let (w, h) = (canvas.width(), canvas.height());
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| ReportError::figure(title, e);
        let title_style =
            TextStyle::from((FONT, 20).into_font().style(FontStyle::Bold)).color(&BLACK);
        root.draw_text(title, &title_style, (MARGIN as i32, 8))
            .map_err(err)?;
        let cap_style = TextStyle::from((FONT, 16).into_font()).color(&RGBColor(40, 40, 40));
        for (text, x, y) in &captions {
            root.draw_text(text, &cap_style, (*x, *y)).map_err(err)?;
        }
        let leg_style = TextStyle::from((FONT, 16).into_font()).color(&BLACK);
        let mut x = MARGIN as i32;
        for e in legend {
            let c = RGBColor(e.colour.0[0], e.colour.0[1], e.colour.0[2]);
            let (cy, cx) = (legend_y + 10, x + 9);
            if e.ring {
                root.draw(&Circle::new((cx, cy), 8, c.stroke_width(3)))
                    .map_err(err)?;
            } else {
                root.draw(&Rectangle::new([(x, cy - 8), (x + 18, cy + 8)], c.filled()))
                    .map_err(err)?;
            }
            root.draw_text(&e.text, &leg_style, (x + 26, legend_y + 2))
                .map_err(err)?;
            x += 40 + 8 * e.text.chars().count() as i32;
        }
        root.present().map_err(err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| ReportError::figure(title, "canvas size mismatch"))
}

/// Encodes an image as PNG bytes.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>, ReportError> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ReportError::figure("png", e))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_places_panels_and_draws_text() {
        let red = RgbImage::from_pixel(50, 40, Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(30, 20, Rgb([0, 0, 255]));
        let rows = vec![vec![
            Panel {
                caption: "XY".into(),
                image: red,
            },
            Panel {
                caption: "XZ".into(),
                image: blue,
            },
        ]];
        let legend = vec![LegendEntry {
            colour: Rgb([0, 200, 0]),
            text: "TP".into(),
            ring: false,
        }];
        let fig = compose("Title", &rows, &legend).unwrap();
        assert!(fig.width() >= 480);
        // First panel at (MARGIN, TITLE_H + CAPTION_H); second to its right.
        assert_eq!(
            *fig.get_pixel(MARGIN + 5, TITLE_H + CAPTION_H + 5),
            Rgb([255, 0, 0])
        );
        assert_eq!(
            *fig.get_pixel(MARGIN + 50 + MARGIN + 5, TITLE_H + CAPTION_H + 5),
            Rgb([0, 0, 255])
        );
        // The title band contains dark text pixels (the font rendered).
        let dark = (0..fig.width())
            .flat_map(|x| (0..TITLE_H).map(move |y| (x, y)))
            .filter(|&(x, y)| fig.get_pixel(x, y).0.iter().all(|&v| v < 100))
            .count();
        assert!(dark > 20, "title text missing: {dark} dark pixels");
        // Legend swatch colour present.
        assert!(fig.pixels().any(|p| *p == Rgb([0, 200, 0])));
        let png = png_bytes(&fig).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
