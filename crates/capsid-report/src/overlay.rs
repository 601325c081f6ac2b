//! Slice images: contrast stretch, per-voxel TP/FP/FN overlays of a predicted label map on the
//! ground truth (the seed's Figs 6–7), and circles at particles.
//!
//! All 2D arrays here are `[row, column]`: an XY slice is `[y, x]`, an XZ slice is `[z, x]`.
//! Images are `image::RgbImage` with pixel `(column, row)`.

use capsid_core::Particle;
use image::{Rgb, RgbImage};
use ndarray::{Array2, Array3, ArrayView2, Axis};

/// Colour of true-positive voxels and picks (green).
pub const TP_COLOUR: Rgb<u8> = Rgb([40, 200, 60]);
/// Colour of false-positive voxels and picks (red).
pub const FP_COLOUR: Rgb<u8> = Rgb([235, 50, 40]);
/// Colour of false-negative voxels and missed particles (blue).
pub const FN_COLOUR: Rgb<u8> = Rgb([40, 110, 255]);
/// Colour of voxels that are foreground in both maps but of another class (orange).
pub const WRONG_CLASS_COLOUR: Rgb<u8> = Rgb([255, 165, 0]);
/// Colour of picks that could not be scored because there is no ground truth (yellow).
pub const UNSCORED_COLOUR: Rgb<u8> = Rgb([250, 230, 40]);

/// Which labels an overlay looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassSelect {
    /// All classes: a voxel is TP when both maps carry the same non-zero label, "wrong class" when
    /// both are non-zero but differ, FP when only the prediction is non-zero, FN when only the
    /// truth is.
    All,
    /// One class label: positive means "equals this label" in each map.
    Label(u8),
}

/// What one voxel of a prediction is, compared with the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    TrueNegative,
    TruePositive,
    FalsePositive,
    FalseNegative,
    /// Foreground in both maps, but another class (only with [`ClassSelect::All`]).
    WrongClass,
}

impl Outcome {
    /// The overlay colour, `None` for true negatives (left uncoloured).
    pub fn colour(self) -> Option<Rgb<u8>> {
        match self {
            Outcome::TrueNegative => None,
            Outcome::TruePositive => Some(TP_COLOUR),
            Outcome::FalsePositive => Some(FP_COLOUR),
            Outcome::FalseNegative => Some(FN_COLOUR),
            Outcome::WrongClass => Some(WRONG_CLASS_COLOUR),
        }
    }
}

/// The outcome of one voxel with truth label `truth` and predicted label `pred`.
pub fn voxel_outcome(truth: u8, pred: u8, select: ClassSelect) -> Outcome {
    match select {
        ClassSelect::All => match (truth, pred) {
            (0, 0) => Outcome::TrueNegative,
            (0, _) => Outcome::FalsePositive,
            (_, 0) => Outcome::FalseNegative,
            (t, p) if t == p => Outcome::TruePositive,
            _ => Outcome::WrongClass,
        },
        ClassSelect::Label(l) => match (truth == l, pred == l) {
            (true, true) => Outcome::TruePositive,
            (false, true) => Outcome::FalsePositive,
            (true, false) => Outcome::FalseNegative,
            (false, false) => Outcome::TrueNegative,
        },
    }
}

/// Per-voxel outcomes of two label slices of the same shape (`[row, column]`).
/// Returns `None` when the shapes differ.
pub fn slice_outcomes(
    truth: ArrayView2<u8>,
    pred: ArrayView2<u8>,
    select: ClassSelect,
) -> Option<Array2<Outcome>> {
    if truth.shape() != pred.shape() {
        return None;
    }
    Some(
        ndarray::Zip::from(&truth)
            .and(&pred)
            .map_collect(|&t, &p| voxel_outcome(t, p, select)),
    )
}

/// Counts of (TP, FP, FN, wrong class) voxels in a slice of outcomes.
pub fn count_outcomes(outcomes: &Array2<Outcome>) -> [usize; 4] {
    let mut c = [0usize; 4];
    for o in outcomes {
        match o {
            Outcome::TruePositive => c[0] += 1,
            Outcome::FalsePositive => c[1] += 1,
            Outcome::FalseNegative => c[2] += 1,
            Outcome::WrongClass => c[3] += 1,
            Outcome::TrueNegative => {}
        }
    }
    c
}

/// The XY slice at depth `z` of a `[z, y, x]` volume, as `[y, x]`. `z` is clamped into range.
pub fn xy_slice<T: Clone>(data: &Array3<T>, z: usize) -> Array2<T> {
    let z = z.min(data.shape()[0].saturating_sub(1));
    data.index_axis(Axis(0), z).to_owned()
}

/// The XZ slice at row `y` of a `[z, y, x]` volume, as `[z, x]` (z grows downwards in the
/// image). `y` is clamped into range.
pub fn xz_slice<T: Clone>(data: &Array3<T>, y: usize) -> Array2<T> {
    let y = y.min(data.shape()[1].saturating_sub(1));
    data.index_axis(Axis(1), y).to_owned()
}

/// σ (pixels) of the low-pass that display slices get: at cryo-ET's SNR a raw slice is mostly
/// noise, and particles of a few voxels' radius show once it is smoothed at about their scale.
pub const DISPLAY_SIGMA_PX: f64 = 1.5;

pub use capsid_prep::prep::gaussian_blur_2d;

/// Maps a float slice to 8-bit grey: the `lo_pct` and `hi_pct` percentiles (0–100) of its
/// finite values become 0 and 255, values between are scaled linearly and values outside are
/// clipped. Non-finite values become 0; a constant slice becomes mid-grey (128).
pub fn percentile_stretch(slice: ArrayView2<f32>, lo_pct: f64, hi_pct: f64) -> Array2<u8> {
    let mut finite: Vec<f32> = slice.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Array2::zeros(slice.raw_dim());
    }
    finite.sort_by(|a, b| a.total_cmp(b));
    let at = |pct: f64| {
        let pos = (pct.clamp(0.0, 100.0) / 100.0 * (finite.len() - 1) as f64).round() as usize;
        finite[pos.min(finite.len() - 1)]
    };
    let (lo, hi) = (at(lo_pct), at(hi_pct));
    if hi <= lo {
        return slice.mapv(|v| if v.is_finite() { 128 } else { 0 });
    }
    let scale = 255.0 / (hi - lo);
    slice.mapv(|v| {
        if v.is_finite() {
            ((v - lo) * scale).round().clamp(0.0, 255.0) as u8
        } else {
            0
        }
    })
}

/// A grey image of an 8-bit slice (`[row, column]`), one pixel per voxel.
pub fn grey_image(grey: &Array2<u8>) -> RgbImage {
    let (rows, cols) = grey.dim();
    RgbImage::from_fn(cols as u32, rows as u32, |c, r| {
        let g = grey[[r as usize, c as usize]];
        Rgb([g, g, g])
    })
}

/// The grey slice with each voxel that is not a true negative tinted with its outcome colour:
/// `out = (1 - alpha) * grey + alpha * colour`. `alpha` in 0..=1. Returns `None` when the shapes
/// differ.
pub fn overlay_image(
    grey: &Array2<u8>,
    outcomes: &Array2<Outcome>,
    alpha: f32,
) -> Option<RgbImage> {
    if grey.dim() != outcomes.dim() {
        return None;
    }
    let a = alpha.clamp(0.0, 1.0);
    let mut img = grey_image(grey);
    for ((r, c), o) in outcomes.indexed_iter() {
        if let Some(col) = o.colour() {
            let p = img.get_pixel_mut(c as u32, r as u32);
            for k in 0..3 {
                p.0[k] = ((1.0 - a) * p.0[k] as f32 + a * col.0[k] as f32).round() as u8;
            }
        }
    }
    Some(img)
}

/// Scales an image up by an integer `factor` (nearest neighbour: each voxel becomes a
/// `factor × factor` block).
pub fn upscale_nearest(img: &RgbImage, factor: u32) -> RgbImage {
    let f = factor.max(1);
    RgbImage::from_fn(img.width() * f, img.height() * f, |c, r| {
        *img.get_pixel(c / f, r / f)
    })
}

/// The pixel coordinate of the centre of voxel coordinate `v` in an image upscaled by `factor`
/// (voxel centres are at integer coordinates; pixel centres at `i + 0.5`).
pub fn voxel_to_pixel(v: f64, factor: u32) -> f64 {
    (v + 0.5) * factor as f64
}

/// Draws a circle outline of radius `radius_px` around `(cx, cy)` (pixel coordinates, pixel
/// centres at `i + 0.5`), `thickness_px` wide, clipped to the image.
pub fn draw_circle(
    img: &mut RgbImage,
    cx: f64,
    cy: f64,
    radius_px: f64,
    thickness_px: f64,
    colour: Rgb<u8>,
) {
    if !(radius_px.is_finite() && cx.is_finite() && cy.is_finite()) || radius_px <= 0.0 {
        return;
    }
    let half = (thickness_px.max(0.5)) / 2.0;
    let (r_in, r_out) = ((radius_px - half).max(0.0), radius_px + half);
    let (w, h) = (img.width() as f64, img.height() as f64);
    let x0 = (cx - r_out).floor().max(0.0) as u32;
    let x1 = (cx + r_out).ceil().min(w) as u32;
    let y0 = (cy - r_out).floor().max(0.0) as u32;
    let y1 = (cy + r_out).ceil().min(h) as u32;
    for py in y0..y1 {
        for px in x0..x1 {
            let (dx, dy) = (px as f64 + 0.5 - cx, py as f64 + 0.5 - cy);
            let d = (dx * dx + dy * dy).sqrt();
            if d >= r_in && d <= r_out {
                img.put_pixel(px, py, colour);
            }
        }
    }
}

/// How a particle marker is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickStatus {
    /// A pick matched to a ground-truth particle.
    TruePositive,
    /// A pick with no ground-truth particle within the class radius.
    FalsePositive,
    /// A ground-truth particle no pick matched.
    FalseNegative,
    /// A pick with no ground truth to score it against.
    Unscored,
}

impl PickStatus {
    /// Marker colour.
    pub fn colour(self) -> Rgb<u8> {
        match self {
            PickStatus::TruePositive => TP_COLOUR,
            PickStatus::FalsePositive => FP_COLOUR,
            PickStatus::FalseNegative => FN_COLOUR,
            PickStatus::Unscored => UNSCORED_COLOUR,
        }
    }
}

/// A particle to draw: centre `[x, y, z]` in voxels, sphere radius in voxels, status.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub center_xyz: [f64; 3],
    pub radius_vox: f64,
    pub status: PickStatus,
}

/// Matches picks to ground-truth particles for display: pairs of the same class whose centres
/// are at most that class's radius (`radius_vox(class)`, voxels) apart, taken greedily from the
/// closest pair on (ties broken by list order), each particle used once. Returns, for each pick,
/// whether it was matched, and for each truth particle, whether it was found.
///
/// This is the display matching of the figures; the numbers in the tables come from
/// `capsid evaluate`.
pub fn match_for_display(
    truth: &[Particle],
    picks: &[Particle],
    radius_vox: &dyn Fn(&str) -> f64,
) -> (Vec<bool>, Vec<bool>) {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, p) in picks.iter().enumerate() {
        let r = radius_vox(&p.class);
        for (j, t) in truth.iter().enumerate() {
            if t.class != p.class {
                continue;
            }
            let d = p.distance_to(t.position_xyz());
            if d <= r {
                pairs.push((d, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut pick_hit, mut truth_hit) = (vec![false; picks.len()], vec![false; truth.len()]);
    for (_, i, j) in pairs {
        if !pick_hit[i] && !truth_hit[j] {
            pick_hit[i] = true;
            truth_hit[j] = true;
        }
    }
    (pick_hit, truth_hit)
}

/// Markers for picks (TP/FP, or unscored when `truth` is `None`) and for missed truth particles
/// (FN).
pub fn markers(
    truth: Option<&[Particle]>,
    picks: &[Particle],
    radius_vox: &dyn Fn(&str) -> f64,
) -> Vec<Marker> {
    let mk = |p: &Particle, status| Marker {
        center_xyz: p.position_xyz(),
        radius_vox: radius_vox(&p.class),
        status,
    };
    match truth {
        None => picks.iter().map(|p| mk(p, PickStatus::Unscored)).collect(),
        Some(truth) => {
            let (pick_hit, truth_hit) = match_for_display(truth, picks, radius_vox);
            let mut out: Vec<Marker> = picks
                .iter()
                .zip(&pick_hit)
                .map(|(p, &hit)| {
                    mk(
                        p,
                        if hit {
                            PickStatus::TruePositive
                        } else {
                            PickStatus::FalsePositive
                        },
                    )
                })
                .collect();
            out.extend(
                truth
                    .iter()
                    .zip(&truth_hit)
                    .filter(|(_, &hit)| !hit)
                    .map(|(t, _)| mk(t, PickStatus::FalseNegative)),
            );
            out
        }
    }
}

/// Which plane a slice image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The XY plane at depth `z` (image columns x, rows y).
    Xy { z: usize },
    /// The XZ plane at row `y` (image columns x, rows z).
    Xz { y: usize },
}

/// The circle a marker's sphere cuts in `plane`: `(column, row, radius)` in voxels, or `None` when
/// the sphere does not reach the plane or its cut is under half a voxel across.
pub fn marker_circle(marker: &Marker, plane: Plane) -> Option<(f64, f64, f64)> {
    let [x, y, z] = marker.center_xyz;
    let (col, row, depth) = match plane {
        Plane::Xy { z: z0 } => (x, y, z - z0 as f64),
        Plane::Xz { y: y0 } => (x, z, y - y0 as f64),
    };
    let r2 = marker.radius_vox * marker.radius_vox - depth * depth;
    if r2 <= 0.25 {
        return None;
    }
    Some((col, row, r2.sqrt()))
}

/// Draws the markers that cut `plane` onto an image of that plane upscaled by `factor`, as
/// circles of the radius of the sphere's cut (the class radius at the particle's centre plane).
/// Missed particles are drawn first so picks stay on top. Returns how many circles were drawn.
pub fn draw_markers(img: &mut RgbImage, markers: &[Marker], plane: Plane, factor: u32) -> usize {
    let mut n = 0;
    let thickness = (factor as f64 * 0.6).max(2.0);
    let order = [
        PickStatus::FalseNegative,
        PickStatus::Unscored,
        PickStatus::FalsePositive,
        PickStatus::TruePositive,
    ];
    for status in order {
        for m in markers.iter().filter(|m| m.status == status) {
            if let Some((c, r, rad)) = marker_circle(m, plane) {
                let f = factor as f64;
                draw_circle(
                    img,
                    voxel_to_pixel(c, factor),
                    voxel_to_pixel(r, factor),
                    rad * f,
                    thickness,
                    status.colour(),
                );
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_blur_smooths_noise_and_keeps_the_mean() {
        // A checkerboard (pure high frequency) flattens; a constant stays; σ 0 is the identity.
        let chk = Array2::from_shape_fn(
            (20, 30),
            |(y, x)| if (x + y) % 2 == 0 { 1.0f32 } else { -1.0 },
        );
        let b = gaussian_blur_2d(chk.view(), 1.5);
        assert_eq!(b.dim(), (20, 30));
        let inner = b.slice(ndarray::s![5..15, 5..25]);
        assert!(inner.iter().all(|v| v.abs() < 0.05), "{inner:?}");
        let flat = Array2::from_elem((5, 7), 3.0f32);
        assert!(gaussian_blur_2d(flat.view(), 2.0)
            .iter()
            .all(|v| (v - 3.0).abs() < 1e-5));
        assert_eq!(gaussian_blur_2d(chk.view(), 0.0), chk);
        // A bright dot spreads symmetrically.
        let mut dot = Array2::<f32>::zeros((9, 9));
        dot[[4, 4]] = 1.0;
        let d = gaussian_blur_2d(dot.view(), 1.0);
        assert!(d[[4, 4]] < 1.0 && d[[4, 4]] > d[[4, 5]] && (d[[4, 5]] - d[[5, 4]]).abs() < 1e-6);
    }
    use ndarray::{array, Array3};

    #[test]
    fn voxel_outcomes_for_one_class_and_all() {
        let l = ClassSelect::Label(2);
        assert_eq!(voxel_outcome(2, 2, l), Outcome::TruePositive);
        assert_eq!(voxel_outcome(0, 2, l), Outcome::FalsePositive);
        assert_eq!(voxel_outcome(1, 2, l), Outcome::FalsePositive);
        assert_eq!(voxel_outcome(2, 0, l), Outcome::FalseNegative);
        assert_eq!(voxel_outcome(2, 1, l), Outcome::FalseNegative);
        assert_eq!(voxel_outcome(1, 1, l), Outcome::TrueNegative);
        let a = ClassSelect::All;
        assert_eq!(voxel_outcome(1, 1, a), Outcome::TruePositive);
        assert_eq!(voxel_outcome(1, 2, a), Outcome::WrongClass);
        assert_eq!(voxel_outcome(0, 3, a), Outcome::FalsePositive);
        assert_eq!(voxel_outcome(3, 0, a), Outcome::FalseNegative);
        assert_eq!(voxel_outcome(0, 0, a), Outcome::TrueNegative);
    }

    #[test]
    fn overlay_colours_known_voxels() {
        // Truth and prediction 3D label maps [z, y, x]; look at the XY slice z = 1.
        let mut truth = Array3::<u8>::zeros((3, 4, 5));
        let mut pred = Array3::<u8>::zeros((3, 4, 5));
        truth[[1, 0, 0]] = 1; // TP at (x 0, y 0)
        pred[[1, 0, 0]] = 1;
        pred[[1, 1, 2]] = 1; // FP at (x 2, y 1)
        truth[[1, 3, 4]] = 1; // FN at (x 4, y 3)
        truth[[1, 2, 1]] = 2; // wrong class at (x 1, y 2)
        pred[[1, 2, 1]] = 1;
        truth[[0, 0, 0]] = 1; // other slice: must not show
        let t = xy_slice(&truth, 1);
        let p = xy_slice(&pred, 1);
        let out = slice_outcomes(t.view(), p.view(), ClassSelect::All).unwrap();
        assert_eq!(count_outcomes(&out), [1, 1, 1, 1]);
        let grey = Array2::<u8>::from_elem((4, 5), 100);
        let img = overlay_image(&grey, &out, 1.0).unwrap();
        assert_eq!(*img.get_pixel(0, 0), TP_COLOUR);
        assert_eq!(*img.get_pixel(2, 1), FP_COLOUR);
        assert_eq!(*img.get_pixel(4, 3), FN_COLOUR);
        assert_eq!(*img.get_pixel(1, 2), WRONG_CLASS_COLOUR);
        assert_eq!(*img.get_pixel(3, 3), Rgb([100, 100, 100]));
        // Class 2 only: the wrong-class voxel is a FN of class 2, the class-1 voxels are negatives.
        let out2 = slice_outcomes(t.view(), p.view(), ClassSelect::Label(2)).unwrap();
        assert_eq!(count_outcomes(&out2), [0, 0, 1, 0]);
        assert_eq!(out2[[2, 1]], Outcome::FalseNegative);
        // Half-transparent tint lies between grey and the colour.
        let half = overlay_image(&grey, &out, 0.5).unwrap();
        assert_eq!(
            half.get_pixel(0, 0).0[1],
            ((100.0 + TP_COLOUR.0[1] as f32) / 2.0).round() as u8
        );
        // Shape mismatch is refused.
        assert!(slice_outcomes(
            t.view(),
            Array2::<u8>::zeros((2, 2)).view(),
            ClassSelect::All
        )
        .is_none());
    }

    #[test]
    fn xz_slice_is_z_by_x() {
        let v = Array3::from_shape_fn((3, 4, 5), |(z, y, x)| (z * 100 + y * 10 + x) as u16);
        let s = xz_slice(&v, 2);
        assert_eq!(s.dim(), (3, 5));
        assert_eq!(s[[1, 4]], 124);
        let s = xy_slice(&v, 99); // clamped
        assert_eq!(s[[3, 4]], 234);
    }

    #[test]
    fn stretch_clips_percentiles() {
        let s = Array2::from_shape_fn((10, 10), |(r, c)| (r * 10 + c) as f32);
        let g = percentile_stretch(s.view(), 10.0, 90.0);
        assert_eq!(g[[0, 0]], 0);
        assert_eq!(g[[1, 0]], 0); // value 10 is near the 10th percentile
        assert_eq!(g[[9, 9]], 255);
        assert!(g[[5, 0]] > 100 && g[[5, 0]] < 160, "{}", g[[5, 0]]);
        let flat = percentile_stretch(Array2::from_elem((3, 3), 7.0f32).view(), 1.0, 99.0);
        assert!(flat.iter().all(|&v| v == 128));
        let nan = percentile_stretch(array![[f32::NAN, 1.0], [2.0, 3.0]].view(), 0.0, 100.0);
        assert_eq!(nan[[0, 0]], 0);
        assert_eq!(nan[[1, 1]], 255);
    }

    #[test]
    fn circle_outline_at_radius() {
        let mut img = RgbImage::new(40, 40);
        let red = Rgb([255, 0, 0]);
        draw_circle(&mut img, 20.0, 20.0, 10.0, 2.0, red);
        // On the circle (right, left, top, bottom) and not at the centre nor far outside.
        assert_eq!(*img.get_pixel(29, 19), red);
        assert_eq!(*img.get_pixel(10, 20), red);
        assert_eq!(*img.get_pixel(19, 10), red);
        assert_eq!(*img.get_pixel(20, 29), red);
        assert_eq!(*img.get_pixel(20, 20), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(20, 24), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(33, 20), Rgb([0, 0, 0]));
        let lit = img.pixels().filter(|p| **p == red).count();
        // Ring area 2π·r·thickness ≈ 126 pixels.
        assert!((100..=150).contains(&lit), "{lit}");
        // Clipped at the border without panicking.
        draw_circle(&mut img, 0.0, 0.0, 30.0, 3.0, red);
        draw_circle(&mut img, f64::NAN, 0.0, 3.0, 1.0, red);
    }

    #[test]
    fn display_matching_and_markers() {
        let truth = vec![
            Particle::new("a", 10.0, 10.0, 5.0),
            Particle::new("a", 30.0, 10.0, 5.0),
            Particle::new("b", 50.0, 50.0, 5.0),
        ];
        let picks = vec![
            Particle::new("a", 11.0, 10.0, 5.0), // TP (truth 0)
            Particle::new("a", 10.0, 12.0, 5.0), // second pick near truth 0: FP
            Particle::new("b", 30.0, 10.0, 5.0), // right place, wrong class: FP
            Particle::new("b", 50.0, 54.0, 5.0), // TP within radius 4 of class b
        ];
        let radius = |c: &str| if c == "a" { 3.0 } else { 4.0 };
        let (ph, th) = match_for_display(&truth, &picks, &radius);
        assert_eq!(ph, vec![true, false, false, true]);
        assert_eq!(th, vec![true, false, true]);
        let m = markers(Some(&truth), &picks, &radius);
        let st: Vec<PickStatus> = m.iter().map(|m| m.status).collect();
        use PickStatus::*;
        assert_eq!(
            st,
            vec![
                TruePositive,
                FalsePositive,
                FalsePositive,
                TruePositive,
                FalseNegative
            ]
        );
        assert_eq!(m[4].center_xyz, [30.0, 10.0, 5.0]);
        let un = markers(None, &picks, &radius);
        assert!(un.iter().all(|m| m.status == Unscored));
    }

    #[test]
    fn marker_circles_cut_the_plane() {
        let m = Marker {
            center_xyz: [10.0, 20.0, 5.0],
            radius_vox: 5.0,
            status: PickStatus::TruePositive,
        };
        assert_eq!(
            marker_circle(&m, Plane::Xy { z: 5 }),
            Some((10.0, 20.0, 5.0))
        );
        let (_, _, r) = marker_circle(&m, Plane::Xy { z: 8 }).unwrap();
        assert!((r - 4.0).abs() < 1e-12);
        assert_eq!(marker_circle(&m, Plane::Xy { z: 11 }), None);
        assert_eq!(
            marker_circle(&m, Plane::Xz { y: 20 }),
            Some((10.0, 5.0, 5.0))
        );
        // Drawn on an image upscaled ×2: the ring passes through pixel column (10+0.5+5)*2 = 31.
        let mut img = RgbImage::new(60, 60);
        assert_eq!(draw_markers(&mut img, &[m], Plane::Xy { z: 5 }, 2), 1);
        assert_eq!(*img.get_pixel(30, 41), TP_COLOUR);
        assert_eq!(*img.get_pixel(21, 41), Rgb([0, 0, 0]));
    }

    #[test]
    fn upscale_makes_blocks() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(1, 0, Rgb([9, 9, 9]));
        let up = upscale_nearest(&img, 3);
        assert_eq!((up.width(), up.height()), (6, 3));
        assert_eq!(*up.get_pixel(2, 2), Rgb([0, 0, 0]));
        assert_eq!(*up.get_pixel(3, 0), Rgb([9, 9, 9]));
        assert_eq!(voxel_to_pixel(0.0, 3), 1.5);
    }
}
