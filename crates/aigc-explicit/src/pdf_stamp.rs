//! The visible 「AI生成」 stamp on PDF pages.
//!
//! The stamp is appended as an incremental update (the original bytes stay an exact prefix):
//! each stamped page gets a new version whose content runs the original streams inside `q … Q`
//! and then ours, which draws a light plate with a thin border and the label text in a corner of
//! the page *as displayed* (crop box and `/Rotate` honoured).
//!
//! The text uses an embedded Type 3 font made from the bundled font's outlines for exactly the
//! label's characters (a subset of a few kilobytes), with a `/ToUnicode` CMap so that text
//! extraction (pdftotext, copy and paste, screen readers) yields the label text. A Type 3 font
//! renders the same in every viewer, needs no CJK font on the reader's system, and avoids
//! subsetting the CFF font program.

use crate::ExplicitError;
use crate::font::label_font;
use crate::overlay::{LabelSpec, Position};
use ab_glyph::{Font, OutlineCurve, Point};
use aigc_meta::carriers::pdf::{PdfPage, PdfUpdate};
use serde::Serialize;

/// The smallest stamp font size, in points (body text is 10–12 pt).
pub const MIN_FONT_SIZE_PT: f64 = 12.0;
/// The stamp font size as a share of the page's shorter displayed side (17.9 pt on A4).
pub const FONT_SIZE_SHARE: f64 = 0.03;
/// The resource name the stamp font gets (a digit is added when a page already uses it).
const FONT_RESOURCE: &str = "AIGCStamp";
/// Plate grey (`F5F5F5`) and ink (black): the 19:1 contrast of the image label's light plate.
const PLATE_GREY: f64 = 0.96;
const BORDER_GREY: f64 = 0.45;

/// Which pages get the stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StampPages {
    /// The first page only.
    First,
    /// Every page.
    All,
}

impl StampPages {
    /// Parses a CLI name (`first` or `all`).
    pub fn parse(name: &str) -> Result<Self, ExplicitError> {
        match name {
            "first" => Ok(StampPages::First),
            "all" => Ok(StampPages::All),
            other => Err(ExplicitError::BadOption(format!(
                "unknown page selection {other:?}: use first or all"
            ))),
        }
    }
}

/// Where and how the stamp went on one page.
#[derive(Debug, Clone, Serialize)]
pub struct StampedPage {
    /// The page number, from 1.
    pub page: usize,
    /// The corner or edge, as displayed (never `Auto`).
    pub position: Position,
    /// The font size in points.
    pub font_size_pt: f64,
    /// The height of the text's ink in points.
    pub ink_height_pt: f64,
    /// The plate `[x0, y0, x1, y1]` in points, in displayed page coordinates (origin bottom-left).
    pub plate: [f64; 4],
    /// The displayed page size in points (width, height).
    pub page_size: (f64, f64),
    /// The page's `/Rotate`.
    pub rotate: u16,
}

/// A stamped PDF.
#[derive(Debug, Clone)]
pub struct StampedPdf {
    /// The whole output file.
    pub bytes: Vec<u8>,
    /// What was drawn on each stamped page.
    pub pages: Vec<StampedPage>,
}

/// The label text as a Type 3 font: one glyph procedure per distinct character.
struct StampFont {
    /// Distinct characters; the code of `chars[i]` is `i + 1`.
    chars: Vec<char>,
    /// Advance widths in font units, by code.
    widths: Vec<f64>,
    /// Glyph procedures (content streams), by code.
    procs: Vec<Vec<u8>>,
    /// Ink bounds over the label's glyphs in font units: (x_min, y_min, x_max, y_max).
    bbox: (f64, f64, f64, f64),
    units_per_em: f64,
}

/// A number as short PDF source text.
fn num(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn pt(p: Point) -> String {
    format!("{} {}", num(f64::from(p.x)), num(f64::from(p.y)))
}

impl StampFont {
    fn new(text: &str) -> Result<Self, ExplicitError> {
        let font = label_font().font();
        let units_per_em = f64::from(font.units_per_em().unwrap_or(1000.0));
        let mut chars: Vec<char> = Vec::new();
        for c in text.chars() {
            if !chars.contains(&c) {
                chars.push(c);
            }
        }
        if chars.len() > 255 {
            return Err(ExplicitError::BadOption(format!(
                "the stamp text has {} distinct characters; at most 255 fit one PDF font",
                chars.len()
            )));
        }
        let mut widths = Vec::new();
        let mut procs = Vec::new();
        let mut bbox = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &c in &chars {
            let id = font.glyph_id(c);
            let advance = f64::from(font.h_advance_unscaled(id));
            widths.push(advance);
            let mut proc = Vec::new();
            match font.outline(id) {
                Some(outline) => {
                    // ab_glyph stores bounds as min = (x_min, y_max), max = (x_max, y_min).
                    let (x0, y1, x1, y0) = (
                        f64::from(outline.bounds.min.x),
                        f64::from(outline.bounds.min.y),
                        f64::from(outline.bounds.max.x),
                        f64::from(outline.bounds.max.y),
                    );
                    bbox = (
                        bbox.0.min(x0),
                        bbox.1.min(y0),
                        bbox.2.max(x1),
                        bbox.3.max(y1),
                    );
                    // d1: the glyph takes its colour from the text state.
                    proc.extend_from_slice(
                        format!(
                            "{} 0 {} {} {} {} d1\n",
                            num(advance),
                            num(x0),
                            num(y0),
                            num(x1),
                            num(y1)
                        )
                        .as_bytes(),
                    );
                    let mut current: Option<Point> = None;
                    for curve in &outline.curves {
                        let (start, end) = match *curve {
                            OutlineCurve::Line(a, b) => (a, b),
                            OutlineCurve::Quad(a, _, b) => (a, b),
                            OutlineCurve::Cubic(a, _, _, b) => (a, b),
                        };
                        if current != Some(start) {
                            if current.is_some() {
                                proc.extend_from_slice(b"h\n");
                            }
                            proc.extend_from_slice(format!("{} m\n", pt(start)).as_bytes());
                        }
                        let op = match *curve {
                            OutlineCurve::Line(_, b) => format!("{} l\n", pt(b)),
                            OutlineCurve::Quad(a, c, b) => {
                                // A quadratic Bézier as the equivalent cubic.
                                let toward = |p: Point| {
                                    ab_glyph::point(
                                        p.x + (c.x - p.x) * (2.0 / 3.0),
                                        p.y + (c.y - p.y) * (2.0 / 3.0),
                                    )
                                };
                                let (c1, c2) = (toward(a), toward(b));
                                format!("{} {} {} c\n", pt(c1), pt(c2), pt(b))
                            }
                            OutlineCurve::Cubic(_, c1, c2, b) => {
                                format!("{} {} {} c\n", pt(c1), pt(c2), pt(b))
                            }
                        };
                        proc.extend_from_slice(op.as_bytes());
                        current = Some(end);
                    }
                    // Nonzero winding, as CFF outlines are drawn.
                    proc.extend_from_slice(b"h f\n");
                }
                // Spaces and other blank characters: an advance and nothing to draw.
                None => {
                    proc.extend_from_slice(format!("{} 0 0 0 0 0 d1\n", num(advance)).as_bytes())
                }
            }
            procs.push(proc);
        }
        if bbox.0 > bbox.2 {
            return Err(ExplicitError::BadOption(
                "the stamp text has no visible character".into(),
            ));
        }
        Ok(Self {
            chars,
            widths,
            procs,
            bbox,
            units_per_em,
        })
    }

    fn code(&self, c: char) -> u8 {
        // Every character of the text is in `chars`, which holds at most 255.
        self.chars
            .iter()
            .position(|&x| x == c)
            .map_or(0, |i| (i + 1) as u8)
    }

    /// The text as a hex string of codes.
    fn encode(&self, text: &str) -> String {
        let mut s = String::from("<");
        for c in text.chars() {
            s.push_str(&format!("{:02X}", self.code(c)));
        }
        s.push('>');
        s
    }

    /// The advance of `text` in font units.
    fn advance(&self, text: &str) -> f64 {
        text.chars()
            .map(|c| {
                self.widths
                    .get(usize::from(self.code(c)).wrapping_sub(1))
                    .copied()
                    .unwrap_or(0.0)
            })
            .sum()
    }

    /// The ToUnicode CMap mapping each code to its character.
    fn to_unicode(&self) -> Vec<u8> {
        let mut s = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
             /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
             /CMapName /AIGCStamp-UCS def\n/CMapType 2 def\n\
             1 begincodespacerange\n<00> <FF>\nendcodespacerange\n",
        );
        for (block, chunk) in self.chars.chunks(100).enumerate() {
            s.push_str(&format!("{} beginbfchar\n", chunk.len()));
            for (i, c) in chunk.iter().enumerate() {
                let mut units = [0u16; 2];
                let hex: String = c
                    .encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("{u:04X}"))
                    .collect();
                s.push_str(&format!("<{:02X}> <{hex}>\n", block * 100 + i + 1));
            }
            s.push_str("endbfchar\n");
        }
        s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
        s.into_bytes()
    }

    /// Adds the font and its parts to `update`; returns the font object's number.
    fn write(&self, update: &mut PdfUpdate) -> Result<u32, ExplicitError> {
        let mut char_procs = String::from("<<");
        for (i, proc) in self.procs.iter().enumerate() {
            let n = update.add_stream("", proc)?;
            char_procs.push_str(&format!(" /g{} {n} 0 R", i + 1));
        }
        char_procs.push_str(" >>");
        let to_unicode = update.add_stream("", &self.to_unicode())?;
        let differences: String = (1..=self.chars.len()).map(|i| format!(" /g{i}")).collect();
        let widths: Vec<String> = self.widths.iter().map(|w| num(*w)).collect();
        let scale = num(1.0 / self.units_per_em);
        let (x0, y0, x1, y1) = self.bbox;
        let font = update.allocate();
        update.set_object(
            font,
            format!(
                "<< /Type /Font /Subtype /Type3 /FontBBox [{} {} {} {}] /FontMatrix [{scale} 0 0 {scale} 0 0] \
                 /CharProcs {char_procs} /Encoding << /Type /Encoding /Differences [1{differences}] >> \
                 /FirstChar 1 /LastChar {} /Widths [{}] /Resources << >> /ToUnicode {to_unicode} 0 R >>",
                num(x0),
                num(y0),
                num(x1),
                num(y1),
                self.chars.len(),
                widths.join(" ")
            )
            .into_bytes(),
        );
        Ok(font)
    }
}

/// The matrix that maps displayed page coordinates (origin at the displayed bottom-left, in
/// points) to the page's default user space, for a visible box and a clockwise `/Rotate`.
fn display_to_user(visible: [f64; 4], rotate: u16) -> [f64; 6] {
    let [x0, y0, x1, y1] = visible;
    match rotate {
        // Displayed +x runs along user +y, displayed +y along user −x.
        90 => [0.0, 1.0, -1.0, 0.0, x1, y0],
        180 => [-1.0, 0.0, 0.0, -1.0, x1, y1],
        270 => [0.0, -1.0, 1.0, 0.0, x0, y1],
        _ => [1.0, 0.0, 0.0, 1.0, x0, y0],
    }
}

/// The stamp layout on one page, in displayed coordinates.
struct PageLayout {
    font_size: f64,
    plate: [f64; 4],
    /// Where the text's origin (baseline start) goes.
    origin: (f64, f64),
    position: Position,
    size: (f64, f64),
}

fn layout(
    font: &StampFont,
    text: &str,
    page: &PdfPage,
    position: Position,
    page_number: usize,
) -> Result<PageLayout, ExplicitError> {
    let visible = page.visible_box();
    let (w, h) = (visible[2] - visible[0], visible[3] - visible[1]);
    let (w, h) = if page.rotate % 180 == 90 {
        (h, w)
    } else {
        (w, h)
    };
    let short = w.min(h);
    let font_size = (short * FONT_SIZE_SHARE).max(MIN_FONT_SIZE_PT);
    let scale = font_size / font.units_per_em;
    let (ix0, iy0, _, iy1) = font.bbox;
    let text_w = font.advance(text) * scale;
    let pad = 0.35 * font_size;
    let plate_w = text_w + 2.0 * pad;
    let plate_h = (iy1 - iy0) * scale + 2.0 * pad;
    let margin = (0.02 * short).max(0.5 * font_size);
    if plate_w + 2.0 * margin > w || plate_h + 2.0 * margin > h {
        return Err(ExplicitError::PdfPageTooSmall {
            page: page_number,
            width: w.round() as u32,
            height: h.round() as u32,
            need_w: (plate_w + 2.0 * margin).ceil() as u32,
            need_h: (plate_h + 2.0 * margin).ceil() as u32,
        });
    }
    // Documents often carry running heads at the top and page numbers at the bottom centre;
    // the top-right corner is the usual place for a stamp.
    let position = if position == Position::Auto {
        Position::TopRight
    } else {
        position
    };
    let left = margin;
    let right = w - margin - plate_w;
    let centre_x = (w - plate_w) / 2.0;
    let bottom = margin;
    let top = h - margin - plate_h;
    let centre_y = (h - plate_h) / 2.0;
    let (px, py) = match position {
        Position::TopLeft => (left, top),
        Position::TopRight | Position::Auto => (right, top),
        Position::BottomLeft => (left, bottom),
        Position::BottomRight => (right, bottom),
        Position::Top => (centre_x, top),
        Position::Bottom => (centre_x, bottom),
        Position::Left => (left, centre_y),
        Position::Right => (right, centre_y),
    };
    Ok(PageLayout {
        font_size,
        plate: [px, py, px + plate_w, py + plate_h],
        // The left side bearing of the first glyph is part of the advance: start at the pad.
        origin: (px + pad - ix0.min(0.0) * scale, py + pad - iy0 * scale),
        position,
        size: (w, h),
    })
}

/// The stamp's content stream for one page.
fn stamp_content(
    font: &StampFont,
    font_name: &str,
    text: &str,
    l: &PageLayout,
    matrix: [f64; 6],
) -> Vec<u8> {
    let [x0, y0, x1, y1] = l.plate;
    let border = (l.font_size / 24.0).max(0.5);
    let m: Vec<String> = matrix.iter().map(|v| num(*v)).collect();
    // Marked as a watermark artifact so tagged-PDF readers don't read it into the text flow of
    // the page's structure, while plain extraction still finds it.
    format!(
        "q\n/Artifact << /Type /Pagination /Subtype /Watermark >> BDC\n{} cm\n\
         {PLATE_GREY} g {BORDER_GREY} G {} w\n{} {} {} {} re B\n\
         0 g\nBT\n/{font_name} {} Tf\n{} {} Td\n{} Tj\nET\nEMC\nQ\n",
        m.join(" "),
        num(border),
        num(x0),
        num(y0),
        num(x1 - x0),
        num(y1 - y0),
        num(l.font_size),
        num(l.origin.0),
        num(l.origin.1),
        font.encode(text),
    )
    .into_bytes()
}

/// Stamps `spec`'s text on the first page (or every page) of the PDF `input`.
pub fn stamp_pdf(
    input: &[u8],
    spec: &LabelSpec,
    pages: StampPages,
) -> Result<StampedPdf, ExplicitError> {
    let text = spec.text();
    let font = StampFont::new(text)?;
    let mut update = PdfUpdate::open(input)?;
    let all = update.pages()?;
    let chosen: Vec<(usize, &PdfPage)> = match pages {
        StampPages::First => all.iter().take(1).enumerate().collect(),
        StampPages::All => all.iter().enumerate().collect(),
    };
    // Every layout is checked before anything is written.
    let layouts = chosen
        .iter()
        .map(|(i, p)| layout(&font, text, p, spec.position, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let font_object = font.write(&mut update)?;
    let mut report = Vec::new();
    for ((i, page), l) in chosen.iter().zip(&layouts) {
        let name = update.free_font_name(page, FONT_RESOURCE)?;
        let content = stamp_content(
            &font,
            &name,
            text,
            l,
            display_to_user(page.visible_box(), page.rotate),
        );
        update.stamp_page(page, &content, &name, font_object)?;
        let scale = l.font_size / font.units_per_em;
        report.push(StampedPage {
            page: i + 1,
            position: l.position,
            font_size_pt: l.font_size,
            ink_height_pt: (font.bbox.3 - font.bbox.1) * scale,
            plate: l.plate,
            page_size: l.size,
            rotate: page.rotate,
        });
    }
    let rewrite = update.finish()?;
    Ok(StampedPdf {
        bytes: rewrite.to_vec(input),
        pages: report,
    })
}

/// A stamp found on a PDF page (ours: a font resource named `AIGCStamp…` with a ToUnicode CMap).
#[derive(Debug, Clone, Serialize)]
pub struct FoundStamp {
    /// The page number, from 1.
    pub page: usize,
    /// The stamp's text, through the font's ToUnicode CMap.
    pub text: String,
    /// The font size in points.
    pub font_size_pt: f64,
    /// Whether the text meets the wording rule.
    pub wording_ok: bool,
    /// Whether the font size is at least [`MIN_FONT_SIZE_PT`].
    pub legible: bool,
}

/// The single-byte code → text map of a ToUnicode CMap's `bfchar` entries.
fn parse_bfchar(cmap: &[u8]) -> Vec<(u8, String)> {
    let text = String::from_utf8_lossy(cmap);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find("beginbfchar") {
        let block = &rest[at + "beginbfchar".len()..];
        let end = block.find("endbfchar").unwrap_or(block.len());
        let hexes: Vec<&str> = block[..end]
            .split(['<', '>'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        for pair in hexes.chunks(2) {
            let [code, uni] = pair else { break };
            let units: Vec<u16> = (0..uni.len() / 4)
                .filter_map(|k| uni.get(k * 4..k * 4 + 4))
                .filter_map(|h| u16::from_str_radix(h, 16).ok())
                .collect();
            if let Ok(c) = u8::from_str_radix(code, 16) {
                out.push((c, String::from_utf16_lossy(&units)));
            }
        }
        rest = &block[end..];
    }
    out
}

/// Text shown with font `/name` in `content`: (font size, hex string operand of Tj) pairs.
fn shown_with(content: &[u8], name: &str) -> Vec<(f64, Vec<u8>)> {
    let text = String::from_utf8_lossy(content);
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    let mut out = Vec::new();
    let key = format!("/{name}");
    for (i, t) in tokens.iter().enumerate() {
        if *t != key || tokens.get(i + 2) != Some(&"Tf") {
            continue;
        }
        let Some(size) = tokens.get(i + 1).and_then(|s| s.parse::<f64>().ok()) else {
            continue;
        };
        let Some(hex) = tokens
            .iter()
            .skip(i + 3)
            .take(8)
            .zip(tokens.iter().skip(i + 4))
            .find(|(_, op)| **op == "Tj")
            .map(|(h, _)| *h)
        else {
            continue;
        };
        let Some(hex) = hex.strip_prefix('<').and_then(|h| h.strip_suffix('>')) else {
            continue;
        };
        let codes = (0..hex.len() / 2)
            .filter_map(|k| hex.get(k * 2..k * 2 + 2))
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        out.push((size, codes));
    }
    out
}

/// The stamps of our kind on the pages of `input`.
pub fn find_pdf_stamps(input: &[u8]) -> Result<Vec<FoundStamp>, ExplicitError> {
    let update = PdfUpdate::open(input)?;
    let mut found = Vec::new();
    for (i, page) in update.pages()?.iter().enumerate() {
        let fonts = update.page_font_unicode_maps(page)?;
        let ours: Vec<(String, Vec<(u8, String)>)> = fonts
            .into_iter()
            .filter(|(name, _)| name.starts_with(FONT_RESOURCE))
            .filter_map(|(name, cmap)| cmap.map(|c| (name, parse_bfchar(&c))))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let content = update.page_content(page)?;
        for (name, map) in &ours {
            for (size, codes) in shown_with(&content, name) {
                let text: String = codes
                    .iter()
                    .filter_map(|c| map.iter().find(|(k, _)| k == c).map(|(_, s)| s.as_str()))
                    .collect();
                found.push(FoundStamp {
                    page: i + 1,
                    wording_ok: crate::wording::meets_wording_rule(&text),
                    legible: size >= MIN_FONT_SIZE_PT,
                    text,
                    font_size_pt: size,
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn sample(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples/media")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd} (installed by .ci/install-deps): {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Words that pdftotext finds on `page`, with their boxes in displayed coordinates
    /// (points, origin top-left): (text, x0, y0, x1, y1), and the page size.
    /// A word and its box: (text, x0, y0, x1, y1).
    type Word = (String, f64, f64, f64, f64);

    fn words(path: &Path, page: usize) -> (Vec<Word>, (f64, f64)) {
        let p = page.to_string();
        let (ok, html, err) = run(
            "pdftotext",
            &[
                "-bbox",
                "-f",
                &p,
                "-l",
                &p,
                path.to_str().unwrap_or_default(),
                "-",
            ],
        );
        assert!(ok, "pdftotext -bbox: {err}");
        let attr = |line: &str, name: &str| -> f64 {
            let key = format!("{name}=\"");
            let at = line.find(&key).map(|i| i + key.len()).expect("attribute");
            let end = line[at..].find('"').expect("quote") + at;
            line[at..end].parse().expect("number")
        };
        let mut out = Vec::new();
        let mut size = (0.0, 0.0);
        for line in html.lines() {
            if line.contains("<page ") {
                size = (attr(line, "width"), attr(line, "height"));
            }
            if let Some(start) = line.find("<word ") {
                let line = &line[start..];
                let text_at = line.find('>').expect(">") + 1;
                let text_end = line.find("</word>").expect("</word>");
                out.push((
                    line[text_at..text_end].to_string(),
                    attr(line, "xMin"),
                    attr(line, "yMin"),
                    attr(line, "xMax"),
                    attr(line, "yMax"),
                ));
            }
        }
        (out, size)
    }

    fn assert_valid(path: &Path) {
        let (ok, out, err) = run("qpdf", &["--check", path.to_str().unwrap_or_default()]);
        assert!(ok, "qpdf --check {}: {out}{err}", path.display());
        assert!(!err.contains("WARNING"), "qpdf warnings: {err}");
        let (ok, _, err) = run("pdfinfo", &[path.to_str().unwrap_or_default()]);
        assert!(ok && err.trim().is_empty(), "pdfinfo: {err}");
    }

    #[test]
    fn stamps_the_samples_and_pdftotext_reads_the_label() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["document.pdf", "document-xref-stream.pdf"] {
            let input = sample(name);
            let out =
                stamp_pdf(&input, &LabelSpec::default_label(), StampPages::First).expect("stamp");
            assert!(
                out.bytes.starts_with(&input),
                "{name}: not an incremental update"
            );
            let path = save(dir.path(), name, &out.bytes);
            assert_valid(&path);
            let (ok, text, err) = run("pdftotext", &[path.to_str().unwrap_or_default(), "-"]);
            assert!(ok, "{err}");
            assert!(text.contains("AI生成"), "{name}: pdftotext gave {text:?}");
            let (found, size) = words(&path, 1);
            let (_, x0, y0, x1, y1) = found
                .iter()
                .find(|w| w.0 == "AI生成")
                .unwrap_or_else(|| panic!("{name}: no AI生成 word in {found:?}"));
            eprintln!("{name}: {found:?} {size:?} {:?}", out.pages);
            // Top-right corner, as displayed.
            assert!(
                *x1 > size.0 * 0.8 && *y0 < size.1 * 0.1,
                "{name}: at {x0},{y0}"
            );
            assert!(
                y1 - y0 >= MIN_FONT_SIZE_PT,
                "{name}: text {} pt high",
                y1 - y0
            );
        }
    }

    /// A PDF with one page per entry: (MediaBox, CropBox, Rotate). Resources and a default
    /// MediaBox are inherited from the page tree root, as many writers do.
    fn make_pdf(pages: &[(&str, Option<&str>, u16)]) -> Vec<u8> {
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".into(),
            String::new(),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
        ];
        let mut kids = Vec::new();
        for (i, (media, crop, rotate)) in pages.iter().enumerate() {
            let content = format!(
                "BT /F1 20 Tf 1 0 0 1 100 300 Tm (Hello page {}) Tj ET 0.5 w",
                i + 1
            );
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ));
            let content_num = objects.len();
            let crop = crop.map(|c| format!(" /CropBox {c}")).unwrap_or_default();
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox {media}{crop} /Rotate {rotate} /Contents {content_num} 0 R >>"
            ));
            kids.push(format!("{} 0 R", objects.len()));
        }
        objects[1] = format!(
            "<< /Type /Pages /Kids [{}] /Count {} /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> >>",
            kids.join(" "),
            pages.len()
        );
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    /// Renders `page`'s crop box with pdftoppm at 72 dpi in grey and finds the stamp's plate (its F5 fill):
    /// the page size in pixels (= points) and the plate's box (origin top-left).
    fn plate_in_rendering(path: &Path, page: usize) -> (f64, f64, [f64; 4]) {
        let p = page.to_string();
        let out = Command::new("pdftoppm")
            .args([
                "-gray",
                "-cropbox",
                "-r",
                "72",
                "-f",
                &p,
                "-l",
                &p,
                path.to_str().unwrap_or_default(),
            ])
            .output()
            .expect("pdftoppm");
        assert!(out.status.success());
        let b = out.stdout;
        // P5 header: "P5\n<w> <h>\n255\n".
        let header: Vec<&[u8]> = b.splitn(4, |c| c.is_ascii_whitespace()).collect();
        let num = |s: &[u8]| -> usize { String::from_utf8_lossy(s).parse().expect("pgm header") };
        let (w, h) = (num(header[1]), num(header[2]));
        let pixels = &b[b.len() - w * h..];
        let plate = |v: u8| (240..=250).contains(&v);
        let rows: Vec<usize> = (0..h)
            .filter(|y| {
                pixels[y * w..(y + 1) * w]
                    .iter()
                    .filter(|v| plate(**v))
                    .count()
                    > 8
            })
            .collect();
        let cols: Vec<usize> = (0..w)
            .filter(|x| (0..h).filter(|y| plate(pixels[y * w + x])).count() > 8)
            .collect();
        assert!(
            !rows.is_empty() && !cols.is_empty(),
            "no plate on page {page}"
        );
        (
            w as f64,
            h as f64,
            [
                cols[0] as f64,
                rows[0] as f64,
                (cols[cols.len() - 1] + 1) as f64,
                (rows[rows.len() - 1] + 1) as f64,
            ],
        )
    }

    #[test]
    fn rotation_and_crop_box_put_the_stamp_upright_in_the_displayed_corner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pages = [
            ("[0 0 595 842]", None, 0),
            ("[0 0 595 842]", None, 90),
            ("[0 0 842 595]", Some("[100 50 700 500]"), 180),
            ("[-100 -200 495 642]", None, 270),
            ("[0 0 612 792]", Some("[50 60 400 700]"), 90),
        ];
        let input = make_pdf(&pages);
        let original = save(dir.path(), "in.pdf", &input);
        assert_valid(&original);
        for position in [Position::TopRight, Position::BottomLeft, Position::Top] {
            let spec = LabelSpec::new("AI生成", position).expect("spec");
            let out = stamp_pdf(&input, &spec, StampPages::All).expect("stamp");
            assert_eq!(out.pages.len(), pages.len());
            let path = save(dir.path(), "out.pdf", &out.bytes);
            assert_valid(&path);
            for (i, stamped) in out.pages.iter().enumerate() {
                let p = (i + 1).to_string();
                let (_, text, _) = run(
                    "pdftotext",
                    &["-f", &p, "-l", &p, path.to_str().unwrap_or_default(), "-"],
                );
                // The page's own text is still there, and the stamp reads back.
                assert!(
                    text.contains("Hello page") && text.contains("AI生成"),
                    "page {p}: {text:?}"
                );
                // Rendered as displayed (crop box, rotation) at 1 px per point.
                let (w, h, [x0, y0, x1, y1]) = plate_in_rendering(&path, i + 1);
                let (sw, sh) = stamped.page_size;
                assert!(
                    (w - sw).abs() <= 1.0 && (h - sh).abs() <= 1.0,
                    "page {p}: {w}x{h} vs {sw}x{sh}"
                );
                // Upright: the plate is wider than high, as laid out.
                let [px0, py0, px1, py1] = stamped.plate;
                assert!(
                    (x1 - x0 - (px1 - px0)).abs() <= 2.0 && (y1 - y0 - (py1 - py0)).abs() <= 2.0,
                    "page {p}: plate {x0},{y0}–{x1},{y1} vs {:?}",
                    stamped.plate
                );
                let (cx, cy) = ((x0 + x1) / 2.0 / w, (y0 + y1) / 2.0 / h);
                let ok = match position {
                    Position::TopRight => cx > 0.75 && cy < 0.15,
                    Position::BottomLeft => cx < 0.25 && cy > 0.85,
                    _ => (cx - 0.5).abs() < 0.05 && cy < 0.15,
                };
                assert!(
                    ok,
                    "{position:?} page {p} rotate {}: centre at ({cx:.2}, {cy:.2})",
                    stamped.rotate
                );
                assert!(stamped.font_size_pt >= MIN_FONT_SIZE_PT);
            }
        }
    }

    #[test]
    fn pdfs_from_other_writers_are_stamped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = save(dir.path(), "base.pdf", &sample("document.pdf"));
        let cairo = dir.path().join("cairo.pdf");
        let (ok, _, err) = run(
            "pdftocairo",
            &[
                "-pdf",
                base.to_str().unwrap_or_default(),
                cairo.to_str().unwrap_or_default(),
            ],
        );
        assert!(ok, "pdftocairo: {err}");
        let objstm = dir.path().join("objstm.pdf");
        let (ok, _, err) = run(
            "qpdf",
            &[
                "--object-streams=generate",
                "--rotate=+90:1",
                base.to_str().unwrap_or_default(),
                objstm.to_str().unwrap_or_default(),
            ],
        );
        assert!(ok, "qpdf: {err}");
        for made in [&cairo, &objstm] {
            let input = std::fs::read(made).expect("read");
            let out =
                stamp_pdf(&input, &LabelSpec::default_label(), StampPages::All).expect("stamp");
            let path = save(dir.path(), "out.pdf", &out.bytes);
            assert_valid(&path);
            let (ok, text, err) = run("pdftotext", &[path.to_str().unwrap_or_default(), "-"]);
            assert!(ok, "{err}");
            assert!(
                text.contains("AI生成") && text.contains("sample"),
                "{}: {text:?}",
                made.display()
            );
        }
    }

    #[test]
    fn small_pages_bad_files_and_wide_text() {
        let tiny = make_pdf(&[("[0 0 40 40]", None, 0)]);
        let e = stamp_pdf(&tiny, &LabelSpec::default_label(), StampPages::First).unwrap_err();
        assert!(
            matches!(e, ExplicitError::PdfPageTooSmall { page: 1, .. }),
            "{e}"
        );
        for bad in [&b"%PDF-1.4\n"[..], b"not a pdf", &tiny[..tiny.len() / 2]] {
            assert!(stamp_pdf(bad, &LabelSpec::default_label(), StampPages::First).is_err());
        }
        // A long custom text with a space and repeated characters still maps back exactly.
        let input = make_pdf(&[("[0 0 595 842]", None, 0)]);
        let spec = LabelSpec::new("本内容由 AI 生成，AI生成", Position::Bottom).expect("spec");
        let out = stamp_pdf(&input, &spec, StampPages::First).expect("stamp");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = save(dir.path(), "t.pdf", &out.bytes);
        let (_, text, _) = run("pdftotext", &[path.to_str().unwrap_or_default(), "-"]);
        assert!(text.contains("本内容由 AI 生成，AI生成"), "{text:?}");
    }

    #[test]
    fn our_stamps_are_found_again() {
        let input = make_pdf(&[("[0 0 595 842]", None, 0), ("[0 0 595 842]", None, 90)]);
        assert!(find_pdf_stamps(&input).expect("find").is_empty());
        assert!(
            find_pdf_stamps(&sample("document.pdf"))
                .expect("find")
                .is_empty()
        );
        let spec = LabelSpec::new("人工智能合成", Position::BottomRight).expect("spec");
        let out = stamp_pdf(&input, &spec, StampPages::All).expect("stamp");
        let found = find_pdf_stamps(&out.bytes).expect("find");
        assert_eq!(found.len(), 2, "{found:?}");
        for (i, f) in found.iter().enumerate() {
            assert_eq!((f.page, f.text.as_str()), (i + 1, "人工智能合成"));
            assert!(f.wording_ok && f.legible, "{f:?}");
            assert!((f.font_size_pt - out.pages[i].font_size_pt).abs() < 0.01);
        }
    }
}
