//! The visible label drawn over a frame buffer: plate + anti-aliased text, placed by the
//! GB 45438 rules (edge or corner, text height ≥ 5 % of the shortest side and ≥ 20 px).
//!
//! Works on any interleaved 8-bit buffer (RGB, RGBA, or a single luma plane) so that video can
//! call it per frame. Positions are in *displayed* coordinates: with an EXIF orientation the
//! label is drawn rotated/mirrored into the stored pixels so that it appears upright where it was
//! asked for once the viewer applies the orientation.

use crate::ExplicitError;
use crate::font::{LabelFont, label_font};
use ab_glyph::{Font, Glyph, PxScale, ScaleFont, point};
use serde::Serialize;

/// The smallest text (ink) height allowed, in pixels (TC260 2023 guide).
pub const MIN_INK_PX: u32 = 20;
/// The text (ink) height as a share of the shortest displayed side (GB 45438 §5).
pub const MIN_INK_SHARE: f64 = 0.05;

/// Where the label goes, as the image is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    /// The corner whose background is most uniform (most legible).
    Auto,
    /// Top-left corner.
    TopLeft,
    /// Top-right corner.
    TopRight,
    /// Bottom-left corner.
    BottomLeft,
    /// Bottom-right corner.
    BottomRight,
    /// Centre of the top edge.
    Top,
    /// Centre of the bottom edge.
    Bottom,
    /// Middle of the left edge.
    Left,
    /// Middle of the right edge.
    Right,
}

impl Position {
    /// The corners `Auto` chooses from, in order of preference on ties.
    pub const CORNERS: [Position; 4] = [
        Position::BottomRight,
        Position::BottomLeft,
        Position::TopRight,
        Position::TopLeft,
    ];

    /// Parses a CLI name (`top-left`, `bottom`, `auto`, …).
    pub fn parse(name: &str) -> Result<Self, ExplicitError> {
        Ok(match name {
            "auto" => Position::Auto,
            "top-left" => Position::TopLeft,
            "top-right" => Position::TopRight,
            "bottom-left" => Position::BottomLeft,
            "bottom-right" => Position::BottomRight,
            "top" => Position::Top,
            "bottom" => Position::Bottom,
            "left" => Position::Left,
            "right" => Position::Right,
            other => {
                return Err(ExplicitError::BadOption(format!(
                    "unknown position {other:?}: use auto, top-left, top-right, bottom-left, bottom-right, top, bottom, left or right"
                )));
            }
        })
    }
}

/// How the stored pixels are turned for display (EXIF orientation 1–8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Orientation(u8);

impl Orientation {
    /// Stored as displayed.
    pub const UPRIGHT: Orientation = Orientation(1);

    /// From the EXIF value; values outside 1–8 mean upright (as viewers treat them).
    pub fn from_exif(value: u8) -> Self {
        if (1..=8).contains(&value) {
            Orientation(value)
        } else {
            Orientation::UPRIGHT
        }
    }

    /// The EXIF value.
    pub fn exif(self) -> u8 {
        self.0
    }

    /// Whether display swaps width and height.
    pub fn swaps_axes(self) -> bool {
        self.0 >= 5
    }

    /// Maps displayed (x, y) to stored (x, y) for a stored image of `w`×`h`.
    fn to_stored(self, x: u32, y: u32, w: u32, h: u32) -> (u32, u32) {
        match self.0 {
            2 => (w - 1 - x, y),
            3 => (w - 1 - x, h - 1 - y),
            4 => (x, h - 1 - y),
            5 => (y, x),
            6 => (y, h - 1 - x),
            7 => (w - 1 - y, h - 1 - x),
            8 => (w - 1 - y, x),
            _ => (x, y),
        }
    }
}

/// The pixel layout of a frame buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// 3 bytes per pixel, sRGB.
    Rgb,
    /// 4 bytes per pixel, sRGB + alpha (the plate is made opaque).
    Rgba,
    /// 1 byte per pixel: a grey image or the Y plane of a full-range YUV frame. Callers with
    /// chroma planes should set chroma under [`Placement::stored_plate`] to neutral.
    Luma,
}

impl PixelLayout {
    fn channels(self) -> usize {
        match self {
            PixelLayout::Rgb => 3,
            PixelLayout::Rgba => 4,
            PixelLayout::Luma => 1,
        }
    }
}

/// A mutable view of one frame.
pub struct FrameMut<'a> {
    data: &'a mut [u8],
    width: u32,
    height: u32,
    stride: usize,
    layout: PixelLayout,
    orientation: Orientation,
}

impl<'a> FrameMut<'a> {
    /// Wraps `data` (rows of `stride` bytes) as a `width`×`height` stored frame.
    pub fn new(
        data: &'a mut [u8],
        width: u32,
        height: u32,
        stride: usize,
        layout: PixelLayout,
    ) -> Result<Self, ExplicitError> {
        let row = (width as usize)
            .checked_mul(layout.channels())
            .ok_or_else(|| ExplicitError::Frame("frame width overflows".into()))?;
        let needed = stride
            .checked_mul(height as usize)
            .ok_or_else(|| ExplicitError::Frame("frame size overflows".into()))?;
        if stride < row || data.len() < needed || width == 0 || height == 0 {
            return Err(ExplicitError::Frame(format!(
                "a {width}×{height} {layout:?} frame with stride {stride} needs {needed} bytes, got {}",
                data.len()
            )));
        }
        Ok(FrameMut {
            data,
            width,
            height,
            stride,
            layout,
            orientation: Orientation::UPRIGHT,
        })
    }

    /// The same frame, displayed with `orientation`.
    pub fn with_orientation(mut self, orientation: Orientation) -> Self {
        self.orientation = orientation;
        self
    }

    /// Displayed width and height.
    pub fn display_size(&self) -> (u32, u32) {
        if self.orientation.swaps_axes() {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    fn offset(&self, dx: u32, dy: u32) -> usize {
        let (sx, sy) = self.orientation.to_stored(dx, dy, self.width, self.height);
        sy as usize * self.stride + sx as usize * self.layout.channels()
    }

    /// Relative luminance (WCAG) of the displayed pixel.
    fn luminance(&self, dx: u32, dy: u32) -> f64 {
        let o = self.offset(dx, dy);
        match self.layout {
            PixelLayout::Luma => relative_luminance([self.data[o]; 3]),
            _ => relative_luminance([self.data[o], self.data[o + 1], self.data[o + 2]]),
        }
    }

    /// Blends `colour` over the displayed pixel with `coverage` in 0..=1.
    fn blend(&mut self, dx: u32, dy: u32, colour: [u8; 3], coverage: f32) {
        let o = self.offset(dx, dy);
        let mix = |under: u8, over: u8| -> u8 {
            (f32::from(under) * (1.0 - coverage) + f32::from(over) * coverage).round() as u8
        };
        match self.layout {
            PixelLayout::Luma => {
                self.data[o] = mix(self.data[o], luma_of(colour));
            }
            PixelLayout::Rgb | PixelLayout::Rgba => {
                for (c, over) in colour.iter().enumerate() {
                    self.data[o + c] = mix(self.data[o + c], *over);
                }
                if self.layout == PixelLayout::Rgba {
                    self.data[o + 3] = 255;
                }
            }
        }
    }
}

/// An axis-aligned rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct LabelSpec {
    text: String,
    /// Where to put it.
    pub position: Position,
}

impl LabelSpec {
    /// A label with `text` (checked against the wording rule and the font) at `position`.
    pub fn new(text: &str, position: Position) -> Result<Self, ExplicitError> {
        crate::wording::validate_label_text(text)?;
        label_font().check_coverage(text)?;
        Ok(LabelSpec {
            text: text.trim().to_string(),
            position,
        })
    }

    /// The default 「AI生成」 label in the most legible corner.
    pub fn default_label() -> Self {
        LabelSpec {
            text: crate::wording::DEFAULT_IMAGE_TEXT.to_string(),
            position: Position::Auto,
        }
    }

    /// The text drawn.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The size and colours of a label, fixed once for a sequence of frames of one size.
#[derive(Debug, Clone)]
pub struct LabelLayout {
    glyphs: Vec<Glyph>,
    /// Offset that moves the ink box's top-left to (0, 0).
    ink_origin: (f32, f32),
    /// The ink (text) box size in pixels.
    ink_size: (u32, u32),
    padding: u32,
    border: u32,
    margin: u32,
    plate: Rect,
    /// Where the plate went.
    pub position: Position,
    /// The plate colour.
    pub plate_rgb: [u8; 3],
    /// The text colour.
    pub ink_rgb: [u8; 3],
}

/// Where and how a label was drawn.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    /// The text drawn.
    pub text: String,
    /// The position used (never `Auto`).
    pub position: Position,
    /// The plate in displayed coordinates.
    pub plate: Rect,
    /// The plate in stored coordinates.
    pub stored_plate: Rect,
    /// The text's ink height in pixels (from the glyph outlines).
    pub ink_height: u32,
    /// The required minimum ink height for this image.
    pub required_ink_height: u32,
    /// The plate colour.
    pub plate_rgb: [u8; 3],
    /// The text colour.
    pub ink_rgb: [u8; 3],
    /// WCAG contrast ratio of text against plate.
    pub contrast: f64,
}

/// Dark plate with white text (for light backgrounds) and light plate with black text.
const DARK_PLATE: ([u8; 3], [u8; 3]) = ([0x1A, 0x1A, 0x1A], [0xFF, 0xFF, 0xFF]);
const LIGHT_PLATE: ([u8; 3], [u8; 3]) = ([0xF5, 0xF5, 0xF5], [0x00, 0x00, 0x00]);

/// WCAG 2 relative luminance of an sRGB colour.
pub fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// WCAG 2 contrast ratio between two relative luminances (≥ 1).
pub fn contrast_ratio(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    (hi + 0.05) / (lo + 0.05)
}

fn luma_of(rgb: [u8; 3]) -> u8 {
    // BT.709 weights, so a grey written to a Y plane keeps its brightness.
    (0.2126 * f64::from(rgb[0]) + 0.7152 * f64::from(rgb[1]) + 0.0722 * f64::from(rgb[2])).round()
        as u8
}

/// The ink height required on a displayed image of `width`×`height`.
pub fn required_ink_height(width: u32, height: u32) -> u32 {
    let short = f64::from(width.min(height));
    ((short * MIN_INK_SHARE).ceil() as u32).max(MIN_INK_PX)
}

/// Glyphs of `text` at `scale`, and the exact ink box (min x, min y, max x, max y).
fn shape(font: &LabelFont, text: &str, scale: PxScale) -> (Vec<Glyph>, Option<[f32; 4]>) {
    let f = font.font();
    let scaled = f.as_scaled(scale);
    let mut caret = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::new();
    let mut ink: Option<[f32; 4]> = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, point(caret, scaled.ascent()));
        caret += scaled.h_advance(id);
        prev = Some(id);
        if let Some(outline) = f.outline_glyph(glyph.clone()) {
            let b = outline.px_bounds();
            // px_bounds is rounded outwards; the outline's own bounds give the true ink.
            let ob =
                outline_exact_bounds(f, &glyph).unwrap_or([b.min.x, b.min.y, b.max.x, b.max.y]);
            ink = Some(match ink {
                None => ob,
                Some(i) => [
                    i[0].min(ob[0]),
                    i[1].min(ob[1]),
                    i[2].max(ob[2]),
                    i[3].max(ob[3]),
                ],
            });
        }
        glyphs.push(glyph);
    }
    (glyphs, ink)
}

/// The exact ink bounds of one positioned glyph, from its outline in font units.
fn outline_exact_bounds<F: Font>(f: &F, glyph: &Glyph) -> Option<[f32; 4]> {
    let outline = f.outline(glyph.id)?;
    let scale = glyph.scale;
    let units = f.height_unscaled();
    let sx = scale.x / units;
    let sy = scale.y / units;
    let b = outline.bounds;
    Some([
        glyph.position.x + b.min.x * sx,
        // ab_glyph's outline bounds keep font units (y up): min.y is the top.
        glyph.position.y - b.min.y * sy,
        glyph.position.x + b.max.x * sx,
        glyph.position.y - b.max.y * sy,
    ])
}

impl LabelLayout {
    /// Sizes `spec` for a displayed frame of `width`×`height`; the position and colours are
    /// chosen later from the pixels ([`LabelLayout::place`]).
    pub(crate) fn sized(spec: &LabelSpec, width: u32, height: u32) -> Result<Self, ExplicitError> {
        let font = label_font();
        let required = required_ink_height(width, height);
        // One extra pixel so that even the faint anti-aliased top/bottom rows are a bonus.
        let target = required as f32 + 1.0;
        let probe = PxScale::from(100.0);
        let (_, probe_ink) = shape(font, &spec.text, probe);
        let probe_ink = probe_ink.ok_or_else(|| ExplicitError::Wording {
            text: spec.text.clone(),
            detail: "the label has no visible glyphs".into(),
        })?;
        let probe_h = probe_ink[3] - probe_ink[1];
        let mut px = 100.0 * target / probe_h;
        let (mut glyphs, mut ink) = shape(font, &spec.text, PxScale::from(px));
        // Float rounding: grow until the exact ink height reaches the target.
        for _ in 0..8 {
            let h = ink.map(|i| i[3] - i[1]).unwrap_or(0.0);
            if h >= target {
                break;
            }
            px *= 1.01;
            (glyphs, ink) = shape(font, &spec.text, PxScale::from(px));
        }
        let ink = ink.unwrap_or(probe_ink);
        let ink_w = (ink[2] - ink[0]).ceil() as u32 + 1;
        let ink_h = (ink[3] - ink[1]).ceil() as u32 + 1;
        let padding = (required * 3 / 10).max(4);
        let border = (required / 16).max(1);
        let margin = (required / 5).max(2);
        let plate_w = ink_w + 2 * (padding + border);
        let plate_h = ink_h + 2 * (padding + border);
        let need_w = plate_w + 2 * margin;
        let need_h = plate_h + 2 * margin;
        if need_w > width || need_h > height {
            return Err(ExplicitError::TooSmall {
                width,
                height,
                text: spec.text.clone(),
                ink: required,
                need_w,
                need_h,
            });
        }
        Ok(LabelLayout {
            glyphs,
            ink_origin: (ink[0], ink[1]),
            ink_size: (ink_w, ink_h),
            padding,
            border,
            margin,
            plate: Rect {
                x: 0,
                y: 0,
                width: plate_w,
                height: plate_h,
            },
            position: spec.position,
            plate_rgb: DARK_PLATE.0,
            ink_rgb: DARK_PLATE.1,
        })
    }

    /// The plate's width and height in pixels.
    pub(crate) fn plate_size(&self) -> (u32, u32) {
        (self.plate.width, self.plate.height)
    }

    /// Moves the plate's top-left to (x, y) (the detector renders plates on their own).
    pub(crate) fn move_plate(&mut self, x: u32, y: u32) {
        self.plate.x = x;
        self.plate.y = y;
    }

    /// The margin between the plate and the image edge, in pixels.
    pub(crate) fn margin_px(&self) -> u32 {
        self.margin
    }

    /// The ink height as reported in [`Placement::ink_height`].
    pub(crate) fn ink_px(&self) -> u32 {
        self.ink_size.1.saturating_sub(1)
    }

    pub(crate) fn rect_at(&self, position: Position, width: u32, height: u32) -> Rect {
        let (w, h, m) = (self.plate.width, self.plate.height, self.margin);
        let left = m;
        let right = width - m - w;
        let top = m;
        let bottom = height - m - h;
        let cx = (width - w) / 2;
        let cy = (height - h) / 2;
        let (x, y) = match position {
            Position::TopLeft => (left, top),
            Position::TopRight => (right, top),
            Position::BottomLeft => (left, bottom),
            Position::BottomRight | Position::Auto => (right, bottom),
            Position::Top => (cx, top),
            Position::Bottom => (cx, bottom),
            Position::Left => (left, cy),
            Position::Right => (right, cy),
        };
        Rect {
            x,
            y,
            width: w,
            height: h,
        }
    }

    /// Plans the label for `frame`: size, position (the most uniform corner for `Auto`) and the
    /// plate colour that reads against the background there.
    pub fn plan(spec: &LabelSpec, frame: &FrameMut<'_>) -> Result<Self, ExplicitError> {
        let (w, h) = frame.display_size();
        let mut layout = Self::sized(spec, w, h)?;
        let stats = |r: Rect| region_stats(frame, r);
        let position = match spec.position {
            Position::Auto => {
                let mut best = (f64::INFINITY, Position::BottomRight);
                for p in Position::CORNERS {
                    let (_, var) = stats(layout.rect_at(p, w, h));
                    // Strictly better only, so ties keep the conventional bottom-right.
                    if var < best.0 - 1e-9 {
                        best = (var, p);
                    }
                }
                best.1
            }
            p => p,
        };
        layout.position = position;
        layout.plate = layout.rect_at(position, w, h);
        let (mean, _) = stats(layout.plate);
        // Dark plate on light ground, light plate on dark ground: the crossover where both
        // plates contrast equally is L = sqrt(1.05 × 0.05) − 0.05 ≈ 0.179.
        let (plate, ink) = if mean > 0.179 {
            DARK_PLATE
        } else {
            LIGHT_PLATE
        };
        layout.plate_rgb = plate;
        layout.ink_rgb = ink;
        Ok(layout)
    }

    /// Draws the planned label into `frame` (which must have the planned display size).
    pub fn draw(&self, frame: &mut FrameMut<'_>) -> Result<Placement, ExplicitError> {
        let (w, h) = frame.display_size();
        let p = self.plate;
        if p.x + p.width > w || p.y + p.height > h {
            return Err(ExplicitError::Frame(format!(
                "the label was planned for a larger frame than {w}×{h}"
            )));
        }
        // Plate, with a border in the text colour so its edge reads against any background.
        for y in p.y..p.y + p.height {
            for x in p.x..p.x + p.width {
                let edge = x < p.x + self.border
                    || x >= p.x + p.width - self.border
                    || y < p.y + self.border
                    || y >= p.y + p.height - self.border;
                let c = if edge { self.ink_rgb } else { self.plate_rgb };
                frame.blend(x, y, c, 1.0);
            }
        }
        let ox = (p.x + self.border + self.padding) as f32 - self.ink_origin.0;
        let oy = (p.y + self.border + self.padding) as f32 - self.ink_origin.1;
        let font = label_font().font();
        let ink_h = self.ink_size.1;
        for g in &self.glyphs {
            let mut g = g.clone();
            g.position = point(g.position.x + ox.floor(), g.position.y + oy.floor());
            let Some(outline) = font.outline_glyph(g) else {
                continue;
            };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                let x = b.min.x as i64 + i64::from(gx);
                let y = b.min.y as i64 + i64::from(gy);
                // Stay inside the ink box (never over the border or off the frame).
                let inside = x >= i64::from(p.x + self.border)
                    && y >= i64::from(p.y + self.border)
                    && x < i64::from(p.x + p.width - self.border)
                    && y < i64::from(p.y + p.height - self.border);
                if inside && cov > 0.0 {
                    frame.blend(x as u32, y as u32, self.ink_rgb, cov.min(1.0));
                }
            });
        }
        let (a, b) = (
            frame
                .orientation
                .to_stored(p.x, p.y, frame.width, frame.height),
            frame.orientation.to_stored(
                p.x + p.width - 1,
                p.y + p.height - 1,
                frame.width,
                frame.height,
            ),
        );
        let stored_plate = Rect {
            x: a.0.min(b.0),
            y: a.1.min(b.1),
            width: a.0.abs_diff(b.0) + 1,
            height: a.1.abs_diff(b.1) + 1,
        };
        let (dw, dh) = (w, h);
        Ok(Placement {
            text: String::new(),
            position: self.position,
            plate: p,
            stored_plate,
            ink_height: ink_h.saturating_sub(1),
            required_ink_height: required_ink_height(dw, dh),
            plate_rgb: self.plate_rgb,
            ink_rgb: self.ink_rgb,
            contrast: contrast_ratio(
                relative_luminance(self.plate_rgb),
                relative_luminance(self.ink_rgb),
            ),
        })
    }
}

/// Mean and variance of relative luminance over `r` (sampled on a grid for big regions).
fn region_stats(frame: &FrameMut<'_>, r: Rect) -> (f64, f64) {
    // About 64×64 samples are plenty to tell a busy corner from a calm one.
    let step_x = (r.width / 64).max(1);
    let step_y = (r.height / 64).max(1);
    let (mut n, mut sum, mut sq) = (0f64, 0f64, 0f64);
    let mut y = r.y;
    while y < r.y + r.height {
        let mut x = r.x;
        while x < r.x + r.width {
            let l = frame.luminance(x, y);
            n += 1.0;
            sum += l;
            sq += l * l;
            x += step_x;
        }
        y += step_y;
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = sum / n;
    (mean, (sq / n - mean * mean).max(0.0))
}

/// Plans and draws `spec` on one frame.
pub fn draw_label(spec: &LabelSpec, frame: &mut FrameMut<'_>) -> Result<Placement, ExplicitError> {
    let layout = LabelLayout::plan(spec, frame)?;
    let mut placement = layout.draw(frame)?;
    placement.text = spec.text.clone();
    Ok(placement)
}

/// Draws `spec` on an RGB or RGBA image buffer (rows packed), displayed with `orientation`.
pub fn draw_label_rgb(
    data: &mut [u8],
    width: u32,
    height: u32,
    layout: PixelLayout,
    orientation: Orientation,
    spec: &LabelSpec,
) -> Result<Placement, ExplicitError> {
    let stride = (width as usize)
        .checked_mul(layout.channels())
        .ok_or_else(|| ExplicitError::Frame("frame width overflows".into()))?;
    let mut frame =
        FrameMut::new(data, width, height, stride, layout)?.with_orientation(orientation);
    draw_label(spec, &mut frame)
}

/// Draws `spec` on the Y plane of a full-range YUV frame (`stride` bytes per row).
pub fn draw_label_luma(
    plane: &mut [u8],
    width: u32,
    height: u32,
    stride: usize,
    spec: &LabelSpec,
) -> Result<Placement, ExplicitError> {
    let mut frame = FrameMut::new(plane, width, height, stride, PixelLayout::Luma)?;
    draw_label(spec, &mut frame)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bounding box of pixels that differ from `bg` (the plate, when the background is uniform).
    pub(crate) fn changed_box(rgb: &[u8], w: u32, h: u32, bg: [u8; 3]) -> Option<Rect> {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..h {
            for x in 0..w {
                let o = (y * w + x) as usize * 3;
                if rgb[o..o + 3] != bg {
                    x0 = x0.min(x);
                    y0 = y0.min(y);
                    x1 = x1.max(x);
                    y1 = y1.max(y);
                }
            }
        }
        (x0 != u32::MAX).then(|| Rect {
            x: x0,
            y: y0,
            width: x1 - x0 + 1,
            height: y1 - y0 + 1,
        })
    }

    /// Measures ink inside the plate `r` of a packed RGB image: the plate colour is the most
    /// common colour inside; ink pixels are those at least half-way from plate to the colour
    /// farthest from it. Returns (ink rows from first to last, plate colour, ink colour).
    pub(crate) fn measure_ink(rgb: &[u8], w: u32, r: Rect) -> (u32, [u8; 3], [u8; 3]) {
        use std::collections::HashMap;
        let px = |x: u32, y: u32| {
            let o = (y * w + x) as usize * 3;
            [rgb[o], rgb[o + 1], rgb[o + 2]]
        };
        // Skip a ring of 3 px so the border is not counted as ink.
        let inner = Rect {
            x: r.x + 3,
            y: r.y + 3,
            width: r.width - 6,
            height: r.height - 6,
        };
        let mut counts: HashMap<[u8; 3], u32> = HashMap::new();
        for y in inner.y..inner.y + inner.height {
            for x in inner.x..inner.x + inner.width {
                *counts.entry(px(x, y)).or_default() += 1;
            }
        }
        let plate = counts
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(c, _)| *c)
            .unwrap_or([0; 3]);
        let dist = |c: [u8; 3]| -> i32 {
            (0..3)
                .map(|i| (i32::from(c[i]) - i32::from(plate[i])).abs())
                .sum()
        };
        let ink = counts
            .keys()
            .copied()
            .max_by_key(|c| dist(*c))
            .unwrap_or(plate);
        let half = dist(ink) / 2;
        let rows: Vec<u32> = (inner.y..inner.y + inner.height)
            .filter(|&y| (inner.x..inner.x + inner.width).any(|x| dist(px(x, y)) > half))
            .collect();
        let height = match (rows.first(), rows.last()) {
            (Some(a), Some(b)) => b - a + 1,
            _ => 0,
        };
        (height, plate, ink)
    }

    fn contrast_of(a: [u8; 3], b: [u8; 3]) -> f64 {
        contrast_ratio(relative_luminance(a), relative_luminance(b))
    }

    fn filled(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
        (0..w * h).flat_map(|_| c).collect()
    }

    fn label(rgb: &mut [u8], w: u32, h: u32, spec: &LabelSpec) -> Placement {
        draw_label_rgb(rgb, w, h, PixelLayout::Rgb, Orientation::UPRIGHT, spec).unwrap()
    }

    /// The smallest square that holds the default label (documented in the README).
    pub(crate) const MIN_SQUARE: u32 = 88;

    #[test]
    fn ink_height_meets_the_rule_from_the_minimum_to_large_images() {
        let bg = [200, 40, 40];
        let spec = LabelSpec::default_label();
        for (w, h) in [
            (MIN_SQUARE, MIN_SQUARE),
            (MIN_SQUARE, MIN_SQUARE / 2),
            (160, 120),
            (120, 160),
            (640, 480),
            (480, 640),
            (1000, 1000),
            (1920, 1080),
            (1080, 1920),
        ] {
            let mut img = filled(w, h, bg);
            let p = label(&mut img, w, h, &spec);
            let plate = changed_box(&img, w, h, bg).unwrap();
            assert_eq!(plate, p.plate, "{w}×{h}");
            let (ink, plate_c, ink_c) = measure_ink(&img, w, plate);
            let need = required_ink_height(w, h);
            assert!(ink >= need, "{w}×{h}: ink {ink} px < {need} px");
            assert!(ink >= 20 && f64::from(ink) >= 0.05 * f64::from(w.min(h)));
            assert!(contrast_of(plate_c, ink_c) >= 4.5);
            // Text is a single line: the plate is wider than tall.
            assert!(plate.width > plate.height);
        }
    }

    #[test]
    fn too_small_images_fail_clearly() {
        let spec = LabelSpec::default_label();
        for (w, h) in [
            (64, 64),
            (MIN_SQUARE - 1, MIN_SQUARE),
            (2000, 40),
            (40, 2000),
        ] {
            let mut img = filled(w, h, [0; 3]);
            let e = draw_label_rgb(
                &mut img,
                w,
                h,
                PixelLayout::Rgb,
                Orientation::UPRIGHT,
                &spec,
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("too small") && e.contains(&format!("{w}×{h}")),
                "{e}"
            );
        }
    }

    fn noisy(w: u32, h: u32, seed: u32) -> Vec<u8> {
        let mut s = seed;
        (0..w * h * 3)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    }

    fn gradient(w: u32, h: u32) -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [((x * 255) / w) as u8, ((y * 255) / h) as u8, 128])
            })
            .collect()
    }

    #[test]
    fn contrast_holds_on_white_black_noisy_and_gradient_images() {
        let (w, h) = (400, 300);
        let spec = LabelSpec::default_label();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("white", filled(w, h, [255; 3])),
            ("black", filled(w, h, [0; 3])),
            ("noisy", noisy(w, h, 7)),
            ("gradient", gradient(w, h)),
        ];
        for (name, original) in cases {
            let mut img = original.clone();
            let p = label(&mut img, w, h, &spec);
            let (ink, plate_c, ink_c) = measure_ink(&img, w, p.plate);
            let c = contrast_of(plate_c, ink_c);
            assert!(c >= 4.5, "{name}: text/plate contrast {c:.2}");
            assert!(ink >= required_ink_height(w, h), "{name}");
            // The plate against the mean of what it covers.
            let mut sum = 0.0;
            let r = p.plate;
            for y in r.y..r.y + r.height {
                for x in r.x..r.x + r.width {
                    let o = ((y * w + x) * 3) as usize;
                    sum += relative_luminance([original[o], original[o + 1], original[o + 2]]);
                }
            }
            let under = sum / f64::from(r.width * r.height);
            let pc = contrast_ratio(relative_luminance(plate_c), under);
            assert!(
                pc >= 4.5 || name == "noisy" || name == "gradient",
                "{name}: plate/background {pc:.2}"
            );
            assert!(pc >= 3.0, "{name}: plate/background {pc:.2}");
        }
    }

    #[test]
    fn auto_picks_the_calm_corner() {
        let (w, h) = (400, 300);
        let mut img = noisy(w, h, 3);
        // Make the top-left quadrant flat.
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                let o = ((y * w + x) * 3) as usize;
                img[o..o + 3].copy_from_slice(&[90, 120, 200]);
            }
        }
        let p = label(&mut img, w, h, &LabelSpec::default_label());
        assert_eq!(p.position, Position::TopLeft);
        let p = label(
            &mut filled(w, h, [9; 3]),
            w,
            h,
            &LabelSpec::new("AI生成", Position::Top).unwrap(),
        );
        assert_eq!(p.position, Position::Top);
        assert_eq!(p.plate.x, (w - p.plate.width) / 2);
    }

    /// Applies EXIF orientation `o` to a packed RGB image (stored → displayed), independently of
    /// the overlay's own mapping: each case is written out as the viewer's transform.
    fn display(rgb: &[u8], w: u32, h: u32, o: u8) -> (Vec<u8>, u32, u32) {
        let (dw, dh) = if o >= 5 { (h, w) } else { (w, h) };
        let mut out = vec![0u8; rgb.len()];
        for sy in 0..h {
            for sx in 0..w {
                let (dx, dy) = match o {
                    2 => (w - 1 - sx, sy),
                    3 => (w - 1 - sx, h - 1 - sy),
                    4 => (sx, h - 1 - sy),
                    5 => (sy, sx),
                    6 => (h - 1 - sy, sx),
                    7 => (h - 1 - sy, w - 1 - sx),
                    8 => (sy, w - 1 - sx),
                    _ => (sx, sy),
                };
                let s = ((sy * w + sx) * 3) as usize;
                let d = ((dy * dw + dx) * 3) as usize;
                out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
            }
        }
        (out, dw, dh)
    }

    #[test]
    fn every_exif_orientation_shows_the_label_upright_in_the_chosen_corner() {
        let bg = [30, 160, 60];
        let (w, h) = (360, 240);
        for position in [Position::BottomRight, Position::TopLeft, Position::Bottom] {
            let spec = LabelSpec::new("AI生成", position).unwrap();
            // Reference: the label drawn on an upright image of the displayed size.
            let reference = |dw: u32, dh: u32| {
                let mut img = filled(dw, dh, bg);
                label(&mut img, dw, dh, &spec);
                img
            };
            for o in 1..=8u8 {
                let mut stored = filled(w, h, bg);
                let p = draw_label_rgb(
                    &mut stored,
                    w,
                    h,
                    PixelLayout::Rgb,
                    Orientation::from_exif(o),
                    &spec,
                )
                .unwrap();
                let (shown, dw, dh) = display(&stored, w, h, o);
                assert_eq!(shown, reference(dw, dh), "orientation {o}, {position:?}");
                let plate = changed_box(&shown, dw, dh, bg).unwrap();
                assert_eq!(plate, p.plate);
                match position {
                    Position::BottomRight => {
                        assert!(
                            plate.x + plate.width > dw * 3 / 4
                                && plate.y + plate.height > dh * 3 / 4
                        )
                    }
                    Position::TopLeft => assert!(plate.x < dw / 4 && plate.y < dh / 4),
                    _ => assert!(plate.y + plate.height > dh * 3 / 4),
                }
                assert!(
                    plate.width > plate.height,
                    "upright text is wider than tall"
                );
                let (ink, _, _) = measure_ink(&shown, dw, plate);
                assert!(ink >= required_ink_height(dw, dh));
            }
        }
    }

    #[test]
    fn ink_height_holds_for_every_orientation_portrait_and_landscape() {
        let bg = [70, 70, 200];
        let spec = LabelSpec::default_label();
        for (w, h) in [(MIN_SQUARE, 150), (150, MIN_SQUARE), (640, 480), (480, 640)] {
            for o in 1..=8u8 {
                let mut stored = filled(w, h, bg);
                draw_label_rgb(
                    &mut stored,
                    w,
                    h,
                    PixelLayout::Rgb,
                    Orientation::from_exif(o),
                    &spec,
                )
                .unwrap();
                let (shown, dw, dh) = display(&stored, w, h, o);
                let plate = changed_box(&shown, dw, dh, bg).unwrap();
                assert!(
                    plate.width > plate.height,
                    "{w}×{h} orientation {o}: upright"
                );
                let (ink, plate_c, ink_c) = measure_ink(&shown, dw, plate);
                let need = required_ink_height(dw, dh);
                assert!(ink >= need, "{w}×{h} orientation {o}: ink {ink} < {need}");
                assert!(contrast_of(plate_c, ink_c) >= 4.5);
            }
        }
    }

    #[test]
    fn luma_plane_and_rgba_variants_draw_the_same_plate() {
        let (w, h) = (320, 200);
        let spec = LabelSpec::default_label();
        let mut y = vec![128u8; (w * h) as usize + 64 * h as usize];
        // Stride wider than the row, as decoders pad planes.
        let stride = w as usize + 64;
        let p = draw_label_luma(&mut y[..stride * h as usize], w, h, stride, &spec).unwrap();
        let mut rgba: Vec<u8> = (0..w * h).flat_map(|_| [128, 128, 128, 0]).collect();
        let q = draw_label_rgb(
            &mut rgba,
            w,
            h,
            PixelLayout::Rgba,
            Orientation::UPRIGHT,
            &spec,
        )
        .unwrap();
        assert_eq!(p.plate, q.plate);
        let r = p.plate;
        let inside = |x: u32, yy: u32| y[yy as usize * stride + x as usize];
        let lum: Vec<u8> = (r.y..r.y + r.height)
            .flat_map(|yy| (r.x..r.x + r.width).map(move |x| (x, yy)))
            .map(|(x, yy)| inside(x, yy))
            .collect();
        let min = *lum.iter().min().unwrap();
        let max = *lum.iter().max().unwrap();
        assert!(contrast_of([min; 3], [max; 3]) >= 4.5);
        assert_eq!(
            rgba[((r.y * w + r.x) * 4 + 3) as usize],
            255,
            "plate is opaque"
        );
        assert!(FrameMut::new(&mut y, w, h, 10, PixelLayout::Luma).is_err());
    }

    #[test]
    fn large_image_8000_by_6000() {
        let (w, h) = (8000, 6000);
        let bg = [250, 250, 250];
        let mut img = filled(w, h, bg);
        let p = label(&mut img, w, h, &LabelSpec::default_label());
        assert_eq!(p.required_ink_height, 300);
        let (ink, plate_c, ink_c) = measure_ink(&img, w, p.plate);
        assert!(ink >= 300, "ink {ink}");
        assert!(contrast_of(plate_c, ink_c) >= 4.5);
    }
}
