//! Finding our own drawn image label again, after re-encoding and scaling.
//!
//! The label's geometry is a function of the image size (text height 5 % of the shorter side,
//! at least 20 px; padding, border and margin derived from it), so for every plausible original
//! size the detector renders the plate exactly as [`crate::overlay`] would, scales it to the
//! image as it is now, and compares it with each corner and edge by normalised
//! cross-correlation over a few pixels of slack. The absolute correlation is used, so the dark
//! and the light plate both match. The image is first reduced to a working size (shorter side
//! [`WORK_SHORT_SIDE`] px), which makes the search cost independent of the image size.

use crate::ExplicitError;
use crate::overlay::{FrameMut, LabelLayout, LabelSpec, PixelLayout, Position, Rect};
use crate::wording::meets_wording_rule;
use aigc_core::Format;
use image::{DynamicImage, GrayImage, ImageDecoder, imageops};
use serde::Serialize;
use std::io::Cursor;
use std::sync::{Arc, Mutex, OnceLock};

/// The wordings looked for by default.
pub const DEFAULT_TEXTS: [&str; 4] = ["AI生成", "AI合成", "人工智能生成", "人工智能合成"];
/// The shorter side images are reduced to before searching.
pub const WORK_SHORT_SIDE: u32 = 320;
/// The correlation above which a label counts as found (calibrated on unlabelled images: see
/// the measurement in tests/explicit_labels.rs and the README).
pub const MATCH_THRESHOLD: f64 = 0.6;
/// Positions searched: every corner and edge the overlay can use.
const POSITIONS: [Position; 8] = [
    Position::TopLeft,
    Position::TopRight,
    Position::BottomLeft,
    Position::BottomRight,
    Position::Top,
    Position::Bottom,
    Position::Left,
    Position::Right,
];

/// What the search found in one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLabelScan {
    /// Whether a label was found (best correlation ≥ [`MATCH_THRESHOLD`]).
    pub found: bool,
    /// The best correlation (0–1) over every wording, size and position tried.
    pub score: f64,
    /// The best-matching wording.
    pub text: String,
    /// Where the best match is (a corner or an edge).
    pub position: Position,
    /// The plate's box in the displayed image, in pixels.
    pub plate: Rect,
    /// The estimated text (ink) height in pixels.
    pub ink_height: f64,
    /// The ink height over the shorter displayed side.
    pub ink_share: f64,
    /// Whether the text height is at least 5 % of the shorter side (half a pixel of slack for
    /// resampling).
    pub meets_size: bool,
    /// Whether the wording names AI and generation/synthesis.
    pub meets_wording: bool,
    /// The displayed image size.
    pub image_size: (u32, u32),
}

/// One candidate appearance: a plate image at working scale and where it is expected.
struct Candidate {
    text: usize,
    position: Position,
    template: Vec<f32>,
    width: u32,
    height: u32,
    x: i64,
    y: i64,
    /// Ink height at working scale.
    ink: f64,
}

/// Renders `layout`'s plate alone (dark plate, white text) on a plate-sized grey canvas.
fn render_plate(layout: &LabelLayout) -> Result<GrayImage, ExplicitError> {
    let mut plate = layout.clone();
    let (w, h) = (plate.plate_size().0, plate.plate_size().1);
    plate.move_plate(0, 0);
    let mut data = vec![0u8; (w * h) as usize];
    let mut frame = FrameMut::new(&mut data, w, h, w as usize, PixelLayout::Luma)?;
    plate.draw(&mut frame)?;
    GrayImage::from_raw(w, h, data)
        .ok_or_else(|| ExplicitError::Frame("plate buffer size mismatch".into()))
}

/// Every candidate appearance of `texts` on a working image of `w`×`h`.
fn candidates(texts: &[LabelSpec], w: u32, h: u32) -> Vec<Candidate> {
    let short = f64::from(w.min(h));
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen: Vec<(usize, u32, u32, u32, u32)> = Vec::new();
    // g: the scale from the original (labelled) image to the working image. Above an original
    // shorter side of 400 px the label is a fixed share of it, so originals up to 4× the
    // working size (2.5× here, 800 px) cover every case to within half a percent of rounding;
    // smaller originals hit the 20 px floor and are searched finely.
    let mut g = 1.3f64;
    while g >= 0.4 {
        let (w0, h0) = (
            (f64::from(w) / g).round() as u32,
            (f64::from(h) / g).round() as u32,
        );
        g *= 0.94;
        if short / g < 40.0 {
            continue;
        }
        for (ti, spec) in texts.iter().enumerate() {
            let Ok(layout) = LabelLayout::sized(spec, w0, h0) else {
                continue;
            };
            let gg = f64::from(w) / f64::from(w0);
            let (pw, ph) = layout.plate_size();
            let tw = (f64::from(pw) * gg).round() as u32;
            let th = (f64::from(ph) * gg).round() as u32;
            if tw < 8 || th < 6 {
                continue;
            }
            let margin = (f64::from(layout.margin_px()) * gg).round() as u32;
            if seen.contains(&(ti, tw, th, margin, w0)) {
                continue;
            }
            if seen
                .iter()
                .any(|s| (s.0, s.1, s.2, s.3) == (ti, tw, th, margin))
            {
                continue;
            }
            seen.push((ti, tw, th, margin, w0));
            let Ok(plate) = render_plate(&layout) else {
                continue;
            };
            let small = imageops::resize(&plate, tw, th, imageops::FilterType::Triangle);
            let template: Vec<f32> = small.pixels().map(|p| f32::from(p.0[0])).collect();
            for position in POSITIONS {
                let r = layout.rect_at(position, w0, h0);
                out.push(Candidate {
                    text: ti,
                    position,
                    template: template.clone(),
                    width: tw,
                    height: th,
                    x: (f64::from(r.x) * gg).round() as i64,
                    y: (f64::from(r.y) * gg).round() as i64,
                    ink: f64::from(layout.ink_px()) * gg,
                });
            }
        }
    }
    out
}

/// Candidates for a working size, cached: a batch of same-size images renders them once.
fn cached_candidates(texts: &[LabelSpec], w: u32, h: u32) -> Arc<Vec<Candidate>> {
    type Cache = Mutex<Vec<((u32, u32, Vec<String>), Arc<Vec<Candidate>>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (w, h, texts.iter().map(|t| t.text().to_string()).collect());
    let cache = CACHE.get_or_init(Cache::default);
    // A poisoned lock only means another thread panicked mid-search: compute afresh.
    if let Ok(c) = cache.lock()
        && let Some((_, hit)) = c.iter().find(|(k, _)| *k == key)
    {
        return hit.clone();
    }
    let fresh = Arc::new(candidates(texts, w, h));
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 16 {
            c.remove(0);
        }
        c.push((key, fresh.clone()));
    }
    fresh
}

/// The best absolute normalised cross-correlation of `c` around its expected place in `img`,
/// with the top-left where it was reached.
fn best_match(img: &[f32], w: u32, h: u32, c: &Candidate) -> (f64, i64, i64) {
    let n = (c.width * c.height) as usize;
    let mean = c.template.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
    let t: Vec<f64> = c.template.iter().map(|v| f64::from(*v) - mean).collect();
    let t_norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
    if t_norm < 1e-6 {
        return (0.0, c.x, c.y);
    }
    // Rounding across scales moves the plate by at most a couple of pixels.
    let slack = 3i64;
    let mut best = (0.0, c.x, c.y);
    for dy in -slack..=slack {
        for dx in -slack..=slack {
            let (x0, y0) = (c.x + dx, c.y + dy);
            if x0 < 0
                || y0 < 0
                || x0 + i64::from(c.width) > i64::from(w)
                || y0 + i64::from(c.height) > i64::from(h)
            {
                continue;
            }
            let (mut s, mut s2, mut st) = (0.0f64, 0.0f64, 0.0f64);
            for ty in 0..c.height as usize {
                let row = (y0 as usize + ty) * w as usize + x0 as usize;
                let trow = ty * c.width as usize;
                for tx in 0..c.width as usize {
                    let v = f64::from(img[row + tx]);
                    s += v;
                    s2 += v * v;
                    st += v * t[trow + tx];
                }
            }
            let var = s2 - s * s / n as f64;
            if var <= 1e-6 {
                continue;
            }
            let score = (st / (var.sqrt() * t_norm)).abs();
            if score > best.0 {
                best = (score, x0, y0);
            }
        }
    }
    best
}

/// Searches a displayed grey image (`width`×`height`, rows packed) for our label in any of
/// `texts` (each must pass the wording rule and the font).
pub fn scan_luma(
    pixels: &[u8],
    width: u32,
    height: u32,
    texts: &[&str],
) -> Result<ImageLabelScan, ExplicitError> {
    let img = GrayImage::from_raw(width, height, pixels.to_vec()).ok_or_else(|| {
        ExplicitError::Frame(format!(
            "a {width}×{height} grey image needs {} bytes, got {}",
            u64::from(width) * u64::from(height),
            pixels.len()
        ))
    })?;
    let specs = texts
        .iter()
        .map(|t| LabelSpec::new(t, Position::Auto))
        .collect::<Result<Vec<_>, _>>()?;
    let short = width.min(height);
    let work = if short > WORK_SHORT_SIDE {
        let k = f64::from(WORK_SHORT_SIDE) / f64::from(short);
        imageops::resize(
            &img,
            ((f64::from(width) * k).round() as u32).max(1),
            ((f64::from(height) * k).round() as u32).max(1),
            imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let (ww, wh) = work.dimensions();
    let k = f64::from(ww) / f64::from(width);
    let data: Vec<f32> = work.pixels().map(|p| f32::from(p.0[0])).collect();
    let mut best: Option<(f64, i64, i64, &Candidate)> = None;
    let all = cached_candidates(&specs, ww, wh);
    for c in all.iter() {
        let (score, x, y) = best_match(&data, ww, wh, c);
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, x, y, c));
        }
    }
    let short = f64::from(short);
    let Some((score, x, y, c)) = best else {
        // Too small for any label: nothing can be there.
        return Ok(ImageLabelScan {
            found: false,
            score: 0.0,
            text: texts.first().map(|t| t.to_string()).unwrap_or_default(),
            position: Position::BottomRight,
            plate: Rect {
                x: 0,
                y: 0,
                width: 0,
                height: 0,
            },
            ink_height: 0.0,
            ink_share: 0.0,
            meets_size: false,
            meets_wording: false,
            image_size: (width, height),
        });
    };
    let text = specs
        .get(c.text)
        .map(|s| s.text().to_string())
        .unwrap_or_default();
    let ink_height = c.ink / k;
    Ok(ImageLabelScan {
        found: score >= MATCH_THRESHOLD,
        score,
        meets_wording: meets_wording_rule(&text),
        text,
        position: c.position,
        plate: Rect {
            x: (x as f64 / k).round() as u32,
            y: (y as f64 / k).round() as u32,
            width: (f64::from(c.width) / k).round() as u32,
            height: (f64::from(c.height) / k).round() as u32,
        },
        ink_height,
        ink_share: ink_height / short,
        meets_size: ink_height + 0.5 >= short * crate::overlay::MIN_INK_SHARE,
        image_size: (width, height),
    })
}

/// Decodes an image file (first frame; EXIF orientation applied) and searches it for our label.
pub fn scan_image_file(
    input: &[u8],
    format: Format,
    texts: &[&str],
) -> Result<ImageLabelScan, ExplicitError> {
    let bad = |e: image::ImageError| {
        ExplicitError::Image(format!("the {format} image cannot be decoded: {e}"))
    };
    let reader = image::ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| ExplicitError::Image(format!("the {format} image cannot be read: {e}")))?;
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let orientation = decoder.orientation().map_err(bad)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(bad)?;
    img.apply_orientation(orientation);
    let grey = img.to_luma8();
    let (w, h) = grey.dimensions();
    scan_luma(grey.as_raw(), w, h, texts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::{Orientation, draw_label_rgb};
    use image::{ImageEncoder, RgbImage};

    /// A small deterministic generator (xorshift64*), so the image set is the same every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    const KINDS: [&str; 8] = [
        "flat", "dark", "gradient", "noise", "busy", "photo", "text", "bright",
    ];

    /// One test picture of `kind` at `w`×`h`.
    fn picture(kind: &str, w: u32, h: u32, seed: u64) -> RgbImage {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let base = [r.unit() * 255.0, r.unit() * 255.0, r.unit() * 255.0];
        // Smooth blobs for the photo-like kind.
        let blobs: Vec<(f64, f64, f64, [f64; 3])> = (0..12)
            .map(|_| {
                (
                    r.unit() * f64::from(w),
                    r.unit() * f64::from(h),
                    (0.05 + r.unit() * 0.3) * f64::from(w.min(h)),
                    [r.unit() * 255.0, r.unit() * 255.0, r.unit() * 255.0],
                )
            })
            .collect();
        let strokes: Vec<(u32, u32, u32, u32)> = (0..400)
            .map(|_| {
                let x = (r.unit() * f64::from(w)) as u32;
                let y = (r.unit() * f64::from(h)) as u32;
                (
                    x,
                    y,
                    2 + (r.unit() * 30.0) as u32,
                    1 + (r.unit() * 3.0) as u32,
                )
            })
            .collect();
        let period = 2.0 + r.unit() * 6.0;
        let mut img = RgbImage::new(w, h);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let n = r.unit() - 0.5;
            let c: [f64; 3] = match kind {
                "flat" => base,
                "dark" => [8.0 + n * 16.0, 10.0 + n * 16.0, 14.0 + n * 16.0],
                "bright" => [245.0 + n * 10.0, 247.0 + n * 10.0, 240.0 + n * 10.0],
                "gradient" => {
                    let t = (fx / f64::from(w) + fy / f64::from(h)) / 2.0;
                    [
                        base[0] * (1.0 - t) + 255.0 * t,
                        base[1] * t,
                        255.0 - base[2] * t,
                    ]
                }
                "noise" => [
                    128.0 + n * 255.0,
                    128.0 + (r.unit() - 0.5) * 255.0,
                    128.0 + (r.unit() - 0.5) * 255.0,
                ],
                "busy" => {
                    let s = ((fx / period).sin() * (fy / (period * 1.3)).cos() > 0.0) as u8 as f64;
                    [s * 255.0, (1.0 - s) * 200.0 + n * 40.0, 128.0 + n * 200.0]
                }
                "photo" => {
                    let mut acc = [40.0, 60.0, 80.0];
                    for (bx, by, br, bc) in &blobs {
                        let d2 = ((fx - bx).powi(2) + (fy - by).powi(2)) / (br * br);
                        let wgt = (-d2).exp();
                        for (a, b) in acc.iter_mut().zip(bc) {
                            *a = *a * (1.0 - wgt) + b * wgt;
                        }
                    }
                    [acc[0] + n * 12.0, acc[1] + n * 12.0, acc[2] + n * 12.0]
                }
                _ => [235.0 + n * 8.0, 235.0 + n * 8.0, 230.0 + n * 8.0],
            };
            p.0 = c.map(|v| v.clamp(0.0, 255.0) as u8);
        }
        if kind == "text" {
            for (x, y, len, thick) in strokes {
                for dy in 0..thick {
                    for dx in 0..len {
                        if x + dx < w && y + dy < h {
                            img.put_pixel(x + dx, y + dy, image::Rgb([20, 20, 30]));
                        }
                    }
                }
            }
        }
        img
    }

    fn jpeg_q50(img: &RgbImage) -> RgbImage {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 50)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("encode");
        image::load_from_memory(&out).expect("decode").to_rgb8()
    }

    fn half(img: &RgbImage, filter: imageops::FilterType) -> RgbImage {
        imageops::resize(img, img.width() / 2, img.height() / 2, filter)
    }

    fn scan(img: &RgbImage) -> ImageLabelScan {
        let grey = DynamicImage::ImageRgb8(img.clone()).to_luma8();
        scan_luma(grey.as_raw(), img.width(), img.height(), &DEFAULT_TEXTS).expect("scan")
    }

    /// Labels `kinds` × `sizes` varied images (every position in turn), attacks them, and
    /// counts detections; the same images unlabelled count false detections. Prints the table
    /// quoted in the report and asserts ≥ 95 % found, none falsely.
    fn measure_detection(kinds: &[&str], sizes: &[(u32, u32)]) {
        let positions = [
            Position::Auto,
            Position::TopLeft,
            Position::TopRight,
            Position::BottomLeft,
            Position::BottomRight,
            Position::Top,
            Position::Bottom,
            Position::Left,
            Position::Right,
        ];
        let filters = [
            imageops::FilterType::Triangle,
            imageops::FilterType::Lanczos3,
            imageops::FilterType::CatmullRom,
            imageops::FilterType::Nearest,
        ];
        let attacks = ["none", "jpeg q50", "50% scale", "50% scale + jpeg q50"];
        let mut hits = [0usize; 4];
        let mut false_hits = [0usize; 4];
        let mut total = 0usize;
        let mut min_hit = [f64::MAX; 4];
        let mut max_clean = [0f64; 4];
        let mut wrong_position = 0;
        for (ki, kind) in kinds.iter().enumerate() {
            for (si, (w, h)) in sizes.iter().enumerate() {
                let i = ki * sizes.len() + si;
                let seed = i as u64 + 1 + (*w as u64) * 7;
                let clean = picture(kind, *w, *h, seed);
                let mut labelled = clean.clone();
                let spec = LabelSpec::new("AI生成", positions[i % positions.len()]).expect("spec");
                let placement = draw_label_rgb(
                    &mut labelled,
                    *w,
                    *h,
                    PixelLayout::Rgb,
                    Orientation::UPRIGHT,
                    &spec,
                )
                .expect("draw");
                let filter = filters[i % filters.len()];
                total += 1;
                for (a, attack) in attacks.iter().enumerate() {
                    let apply = |img: &RgbImage| match a {
                        0 => img.clone(),
                        1 => jpeg_q50(img),
                        2 => half(img, filter),
                        _ => jpeg_q50(&half(img, filter)),
                    };
                    let attacked = apply(&labelled);
                    let s = scan(&attacked);
                    if s.found {
                        hits[a] += 1;
                        min_hit[a] = min_hit[a].min(s.score);
                        if s.position != placement.position {
                            wrong_position += 1;
                        }
                        assert!(s.meets_size && s.meets_wording, "{kind} {attack}: {s:?}");
                    } else {
                        eprintln!(
                            "missed: {kind} {w}x{h} {:?} {attack}: {:.3}",
                            placement.position, s.score
                        );
                    }
                    let c = scan(&apply(&clean));
                    max_clean[a] = max_clean[a].max(c.score);
                    if c.found {
                        false_hits[a] += 1;
                        eprintln!("false: {kind} {w}x{h} {attack}: {c:?}");
                    }
                }
            }
        }
        eprintln!(
            "| attack | labelled found | lowest score found | unlabelled found | highest unlabelled score |"
        );
        eprintln!("|---|---|---|---|---|");
        for (a, attack) in attacks.iter().enumerate() {
            eprintln!(
                "| {attack} | {}/{total} | {:.3} | {}/{total} | {:.3} |",
                hits[a], min_hit[a], false_hits[a], max_clean[a]
            );
        }
        assert_eq!(wrong_position, 0, "a label was found at the wrong position");
        assert_eq!(false_hits, [0; 4], "false detections on unlabelled images");
        for (a, attack) in attacks.iter().enumerate() {
            assert!(hits[a] * 100 >= total * 95, "{attack}: {}/{total}", hits[a]);
        }
    }

    /// A quick subset: two images per kind.
    #[test]
    fn label_found_after_jpeg_q50_and_half_scale_and_not_on_clean_images() {
        measure_detection(&KINDS, &[(480, 360), (360, 480)]);
    }

    /// The full measurement (32 images); run with
    /// `cargo test -p aigc-explicit detection_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "slow: the full measurement for the report"]
    fn detection_rate_after_jpeg_q50_and_half_scale() {
        measure_detection(&KINDS, &[(640, 480), (480, 640), (1280, 720), (1024, 1024)]);
    }

    #[test]
    fn too_small_and_mismatched_inputs() {
        // Too small for any label: nothing found, no panic.
        let s = scan_luma(&[128; 30 * 20], 30, 20, &DEFAULT_TEXTS).expect("scan");
        assert!(!s.found && s.score == 0.0);
        assert!(scan_luma(&[0; 10], 30, 20, &DEFAULT_TEXTS).is_err());
        assert!(scan_luma(&[0; 600], 30, 20, &["由AI提供"]).is_err());
        assert!(scan_image_file(b"\xFF\xD8\xFF", Format::Jpeg, &DEFAULT_TEXTS).is_err());
    }
}
