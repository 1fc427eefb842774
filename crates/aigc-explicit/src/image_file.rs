//! Image files labelled in their own format: decode once, draw the label, encode once, carry
//! the input's colour profile and metadata over.

use crate::ExplicitError;
use crate::jpeg_quality::JpegHeader;
use crate::overlay::{FrameMut, LabelLayout, LabelSpec, Orientation, PixelLayout, Placement};
use aigc_core::Format;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageEncoder};
use serde::Serialize;
use std::io::Cursor;

/// An image file with its explicit label drawn.
#[derive(Debug, Clone, Serialize)]
pub struct LabelledImage {
    /// The encoded output, same format as the input.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Where the label is (on the first frame; every frame has it in the same place).
    pub placement: Placement,
    /// Frames labelled (1 except for animated GIF).
    pub frames: usize,
    /// The EXIF orientation the label was drawn for.
    pub orientation: u8,
    /// For JPEG: the quality estimated from the input and used for the output.
    pub jpeg_quality: Option<u8>,
    /// For lossy WebP: the libwebp quality estimated from the input and used for the output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webp_quality: Option<u8>,
    /// What could not be kept exactly (e.g. GIF re-quantised).
    pub notes: Vec<String>,
}

/// Formats whose pixels this module can label.
pub fn supports(format: Format) -> bool {
    matches!(
        format,
        Format::Jpeg | Format::Png | Format::WebP | Format::Gif | Format::Tiff | Format::Bmp
    )
}

fn decode_err(format: Format) -> impl Fn(image::ImageError) -> ExplicitError {
    move |e| match e {
        // A valid file in a layout the decoder lacks (e.g. YCbCr TIFF) is not damage.
        image::ImageError::Unsupported(u) => ExplicitError::Unsupported(format!(
            "the {format} image uses a layout the decoder does not support: {u}"
        )),
        e => ExplicitError::Image(format!(
            "the {format} image cannot be decoded (damaged or truncated): {e}"
        )),
    }
}

fn encode_err(format: Format) -> impl Fn(image::ImageError) -> ExplicitError {
    move |e| ExplicitError::Image(format!("cannot encode the {format} image: {e}"))
}

/// Labels an image file of `format` (as sniffed), returning the re-encoded bytes.
pub fn label_image(
    input: &[u8],
    format: Format,
    spec: &LabelSpec,
) -> Result<LabelledImage, ExplicitError> {
    let edited = edit_image(input, format, Some(spec), None)?;
    let placement = edited
        .placement
        .ok_or_else(|| ExplicitError::Image("the image has no frames".into()))?;
    Ok(LabelledImage {
        bytes: edited.bytes,
        placement,
        frames: edited.frames,
        orientation: edited.orientation,
        jpeg_quality: edited.jpeg_quality,
        webp_quality: edited.webp_quality,
        notes: edited.notes,
    })
}

/// One decoded frame handed to a [`PixelStep`], in stored pixel order (packed rows).
pub struct FrameEdit<'a> {
    /// The pixels, `width × height × channels` bytes.
    pub data: &'a mut [u8],
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per pixel and their meaning.
    pub layout: PixelLayout,
    /// Frame number (0 for stills).
    pub index: usize,
}

/// A change applied to every decoded frame after the label is drawn and before the one
/// encode (the invisible watermark uses it).
pub type PixelStep<'s> = &'s mut dyn FnMut(FrameEdit<'_>) -> Result<(), ExplicitError>;

/// An image file decoded once, edited, and re-encoded once in its own format.
#[derive(Debug, Clone)]
pub struct EditedImage {
    /// The encoded output, same format as the input.
    pub bytes: Vec<u8>,
    /// Where the label is, when one was drawn.
    pub placement: Option<Placement>,
    /// Frames edited (1 except for animated GIF).
    pub frames: usize,
    /// The EXIF orientation the label was drawn for.
    pub orientation: u8,
    /// For JPEG: the quality estimated from the input and used for the output.
    pub jpeg_quality: Option<u8>,
    /// For lossy WebP: the libwebp quality estimated from the input and used for the output.
    pub webp_quality: Option<u8>,
    /// What the re-encode could not keep exactly.
    pub notes: Vec<String>,
}

/// Decodes an image file of `format`, draws the label `spec` (when given), applies `step` to
/// every frame (when given) and re-encodes it the way [`label_image`] does: same format, JPEG
/// quality from the input's tables and its chroma subsampling, metadata and colour profile kept.
pub fn edit_image(
    input: &[u8],
    format: Format,
    spec: Option<&LabelSpec>,
    step: Option<PixelStep<'_>>,
) -> Result<EditedImage, ExplicitError> {
    let mut edit = Edit { spec, step };
    match format {
        Format::Jpeg => label_jpeg(input, &mut edit),
        Format::Png => label_png(input, &mut edit),
        Format::WebP => label_webp(input, &mut edit),
        Format::Gif => label_gif(input, &mut edit),
        Format::Tiff => label_tiff(input, &mut edit),
        Format::Bmp => label_bmp(input, &mut edit),
        other => Err(ExplicitError::Unsupported(format!(
            "{other} files get no drawn label in this version"
        ))),
    }
}

/// What to do to each decoded frame.
struct Edit<'a, 's> {
    spec: Option<&'a LabelSpec>,
    step: Option<PixelStep<'s>>,
}

impl Edit<'_, '_> {
    /// Draws the label (when asked) and applies the step to a still image.
    fn apply(
        &mut self,
        px: &mut Pixels,
        orientation: Orientation,
    ) -> Result<Option<Placement>, ExplicitError> {
        let placement = match self.spec {
            Some(spec) => {
                let mut p = px.draw(spec, orientation)?;
                p.text = spec.text().to_string();
                Some(p)
            }
            None => None,
        };
        self.step_on(&mut px.data, px.width, px.height, px.layout, 0)?;
        Ok(placement)
    }

    fn step_on(
        &mut self,
        data: &mut [u8],
        width: u32,
        height: u32,
        layout: PixelLayout,
        index: usize,
    ) -> Result<(), ExplicitError> {
        match &mut self.step {
            Some(step) => step(FrameEdit {
                data,
                width,
                height,
                layout,
                index,
            }),
            None => Ok(()),
        }
    }
}

/// A decoded still image in one of the layouts the overlay draws on.
struct Pixels {
    data: Vec<u8>,
    width: u32,
    height: u32,
    layout: PixelLayout,
}

impl Pixels {
    /// Keeps 8-bit grey, RGB and RGBA as they are; converts the rest (noted).
    fn from_image(img: DynamicImage, notes: &mut Vec<String>) -> Self {
        let (width, height) = (img.width(), img.height());
        let (data, layout) = match img {
            DynamicImage::ImageLuma8(b) => (b.into_raw(), PixelLayout::Luma),
            DynamicImage::ImageRgb8(b) => (b.into_raw(), PixelLayout::Rgb),
            DynamicImage::ImageRgba8(b) => (b.into_raw(), PixelLayout::Rgba),
            other => {
                notes.push(format!(
                    "pixels converted from {:?} to 8-bit {}",
                    other.color(),
                    if other.color().has_alpha() {
                        "RGBA"
                    } else {
                        "RGB"
                    }
                ));
                if other.color().has_alpha() {
                    (other.to_rgba8().into_raw(), PixelLayout::Rgba)
                } else {
                    (other.to_rgb8().into_raw(), PixelLayout::Rgb)
                }
            }
        };
        Pixels {
            data,
            width,
            height,
            layout,
        }
    }

    fn colour_type(&self) -> image::ExtendedColorType {
        match self.layout {
            PixelLayout::Luma => image::ExtendedColorType::L8,
            PixelLayout::Rgb => image::ExtendedColorType::Rgb8,
            PixelLayout::Rgba => image::ExtendedColorType::Rgba8,
        }
    }

    fn draw(
        &mut self,
        spec: &LabelSpec,
        orientation: Orientation,
    ) -> Result<Placement, ExplicitError> {
        crate::overlay::draw_label_rgb(
            &mut self.data,
            self.width,
            self.height,
            self.layout,
            orientation,
            spec,
        )
    }
}

fn orientation_of(o: image::metadata::Orientation) -> Orientation {
    Orientation::from_exif(o.to_exif())
}

fn label_jpeg(input: &[u8], edit: &mut Edit<'_, '_>) -> Result<EditedImage, ExplicitError> {
    let header = JpegHeader::parse(input)?;
    let mut decoder = image::codecs::jpeg::JpegDecoder::new(Cursor::new(input))
        .map_err(decode_err(Format::Jpeg))?;
    let orientation = orientation_of(decoder.orientation().map_err(decode_err(Format::Jpeg))?);
    let img = DynamicImage::from_decoder(decoder).map_err(decode_err(Format::Jpeg))?;
    let mut notes = Vec::new();
    let mut px = Pixels::from_image(img, &mut notes);
    let placement = edit.apply(&mut px, orientation)?;
    let quality = header.estimated_quality().unwrap_or(90);
    let (w, h) = (
        u16::try_from(px.width)
            .map_err(|_| ExplicitError::Image("JPEG wider than 65535".into()))?,
        u16::try_from(px.height)
            .map_err(|_| ExplicitError::Image("JPEG taller than 65535".into()))?,
    );
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    // Standard Huffman tables here, optimised afterwards by our own pass (see jpeg_huffman):
    // jpeg-encoder's optimised files have one scan per component, which zune-jpeg misdecodes.
    if let Some((hs, vs)) = header.chroma_subsampling() {
        match jpeg_encoder::SamplingFactor::from_factors(hs, vs) {
            Some(s) => enc.set_sampling_factor(s),
            None => notes.push(format!(
                "chroma subsampling {hs}×{vs} not available; 4:2:0 used"
            )),
        }
    }
    for (n, payload) in &header.app_segments {
        // APP0 (JFIF) is written by the encoder; APP14 (Adobe) describes a colour transform
        // that no longer applies to the re-encoded YCbCr data.
        if *n == 0 || *n == 14 {
            continue;
        }
        enc.add_app_segment(*n, payload.clone())
            .map_err(|e| ExplicitError::Image(format!("cannot copy APP{n} segment: {e}")))?;
    }
    let colour = match px.layout {
        PixelLayout::Luma => jpeg_encoder::ColorType::Luma,
        PixelLayout::Rgb => jpeg_encoder::ColorType::Rgb,
        PixelLayout::Rgba => jpeg_encoder::ColorType::Rgba,
    };
    enc.encode(&px.data, w, h, colour)
        .map_err(|e| ExplicitError::Image(format!("cannot encode the JPEG image: {e}")))?;
    // Tables built for this image keep the output about as small as an optimised input.
    match crate::jpeg_huffman::optimise_huffman(&out) {
        Ok(optimised) => out = optimised,
        Err(e) => notes.push(format!("standard Huffman tables kept: {e}")),
    }
    Ok(EditedImage {
        bytes: out,
        placement,
        frames: 1,
        orientation: orientation.exif(),
        jpeg_quality: Some(quality),
        webp_quality: None,
        notes,
    })
}

/// PNG chunk types that describe colour or carry metadata independent of the pixel encoding.
const PNG_KEPT_CHUNKS: [&[u8; 4]; 10] = [
    b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME",
];

/// Complete chunks (length, type, data, CRC) of a PNG, with their type.
fn png_chunks(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 8usize;
    while let Some(head) = b.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(end) = at.checked_add(12).and_then(|x| x.checked_add(len)) else {
            break;
        };
        let Some(whole) = b.get(at..end) else { break };
        out.push(([head[4], head[5], head[6], head[7]], whole));
        at = end;
    }
    out
}

fn label_png(input: &[u8], edit: &mut Edit<'_, '_>) -> Result<EditedImage, ExplicitError> {
    let mut decoder =
        image::codecs::png::PngDecoder::new(Cursor::new(input)).map_err(decode_err(Format::Png))?;
    let orientation = orientation_of(decoder.orientation().map_err(decode_err(Format::Png))?);
    let img = DynamicImage::from_decoder(decoder).map_err(decode_err(Format::Png))?;
    let mut notes = Vec::new();
    let mut px = Pixels::from_image(img, &mut notes);
    let placement = edit.apply(&mut px, orientation)?;
    let mut encoded = Vec::new();
    image::codecs::png::PngEncoder::new(&mut encoded)
        .write_image(&px.data, px.width, px.height, px.colour_type())
        .map_err(encode_err(Format::Png))?;
    // Re-insert the input's colour and metadata chunks right after IHDR (before IDAT).
    let kept: Vec<u8> = png_chunks(input)
        .into_iter()
        .filter(|(t, _)| PNG_KEPT_CHUNKS.contains(&t))
        .flat_map(|(_, whole)| whole.iter().copied())
        .collect();
    let chunks = png_chunks(&encoded);
    let mut out = Vec::with_capacity(encoded.len() + kept.len());
    out.extend_from_slice(&encoded[..8]);
    for (t, whole) in chunks {
        // Drop chunks the encoder wrote that the input supplies itself.
        if &t != b"IHDR" && !kept.is_empty() && PNG_KEPT_CHUNKS.contains(&&t) {
            continue;
        }
        out.extend_from_slice(whole);
        if &t == b"IHDR" {
            out.extend_from_slice(&kept);
        }
    }
    Ok(EditedImage {
        bytes: out,
        placement,
        frames: 1,
        orientation: orientation.exif(),
        jpeg_quality: None,
        webp_quality: None,
        notes,
    })
}

/// RIFF chunks of a WebP file: (fourcc, payload).
fn webp_chunks(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 12usize;
    while let Some(head) = b.get(at..at + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let Some(payload) = b.get(at + 8..at + 8 + len) else {
            break;
        };
        out.push(([head[0], head[1], head[2], head[3]], payload));
        at += 8 + len + (len & 1);
    }
    out
}

fn riff_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

fn label_webp(input: &[u8], edit: &mut Edit<'_, '_>) -> Result<EditedImage, ExplicitError> {
    let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(input))
        .map_err(decode_err(Format::WebP))?;
    if decoder.has_animation() {
        return Err(ExplicitError::Unsupported(
            "animated WebP gets no drawn label in this version (use --no-explicit)".into(),
        ));
    }
    let orientation = orientation_of(decoder.orientation().map_err(decode_err(Format::WebP))?);
    let img = DynamicImage::from_decoder(decoder).map_err(decode_err(Format::WebP))?;
    let mut notes = Vec::new();
    let mut px = Pixels::from_image(img, &mut notes);
    if px.layout == PixelLayout::Luma {
        px = Pixels::from_image(
            DynamicImage::ImageLuma8(
                image::GrayImage::from_raw(px.width, px.height, px.data)
                    .ok_or_else(|| ExplicitError::Image("WebP pixel buffer size".into()))?,
            )
            .into_rgb8()
            .into(),
            &mut notes,
        );
    }
    let placement = edit.apply(&mut px, orientation)?;
    let input_chunks = webp_chunks(input);
    let lossy = input_chunks.iter().find(|(t, _)| t == b"VP8 ");
    let mut webp_quality = None;
    let encoded = match lossy {
        // Lossy stays lossy at the input's estimated quality (libwebp); lossless stays lossless.
        Some((_, vp8)) => {
            let quality = crate::webp_quality::estimate_quality(vp8).unwrap_or_else(|| {
                notes.push("WebP quality not readable from the VP8 header; 80 used".into());
                80
            });
            webp_quality = Some(quality);
            encode_webp(&px, Some(quality))?
        }
        None => encode_webp(&px, None)?,
    };
    let extra: Vec<([u8; 4], &[u8])> = input_chunks
        .iter()
        .filter(|(t, _)| [b"ICCP", b"EXIF", b"XMP "].contains(&t))
        .copied()
        .collect();
    if extra.is_empty() {
        return Ok(EditedImage {
            bytes: encoded,
            placement,
            frames: 1,
            orientation: orientation.exif(),
            jpeg_quality: None,
            webp_quality,
            notes,
        });
    }
    // Rebuild as extended WebP: VP8X, ICCP, image, EXIF, XMP (the container's required order).
    let image_chunks: Vec<([u8; 4], &[u8])> = webp_chunks(&encoded)
        .into_iter()
        .filter(|(t, _)| t == b"VP8L" || t == b"VP8 " || t == b"ALPH")
        .collect();
    let has = |t: &[u8; 4]| extra.iter().any(|(x, _)| x == t);
    let mut flags = 0u8;
    if has(b"ICCP") {
        flags |= 0x20;
    }
    if px.layout == PixelLayout::Rgba {
        flags |= 0x10;
    }
    if has(b"EXIF") {
        flags |= 0x08;
    }
    if has(b"XMP ") {
        flags |= 0x04;
    }
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&(px.width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(px.height - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x);
    for (t, p) in extra.iter().filter(|(t, _)| t == b"ICCP") {
        riff_chunk(&mut body, t, p);
    }
    for (t, p) in &image_chunks {
        riff_chunk(&mut body, t, p);
    }
    for (t, p) in extra.iter().filter(|(t, _)| t != b"ICCP") {
        riff_chunk(&mut body, t, p);
    }
    let mut out = b"RIFF".to_vec();
    let size = u32::try_from(body.len())
        .map_err(|_| ExplicitError::Image("WebP output larger than 4 GiB".into()))?;
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(EditedImage {
        bytes: out,
        placement,
        frames: 1,
        orientation: orientation.exif(),
        jpeg_quality: None,
        webp_quality,
        notes,
    })
}

/// WebP through libwebp: lossy (VP8, plus a losslessly compressed alpha plane for RGBA) at
/// `quality`, or lossless (VP8L, every pixel exact, also under transparency) when `None`.
fn encode_webp(px: &Pixels, quality: Option<u8>) -> Result<Vec<u8>, ExplicitError> {
    let layout = match px.layout {
        PixelLayout::Rgb => webp::PixelLayout::Rgb,
        PixelLayout::Rgba => webp::PixelLayout::Rgba,
        PixelLayout::Luma => {
            return Err(ExplicitError::Image(
                "WebP encoding needs RGB or RGBA pixels".into(),
            ));
        }
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| ExplicitError::Image("libwebp rejected its default settings".into()))?;
    match quality {
        Some(q) => {
            config.lossless = 0;
            config.alpha_compression = 1;
            config.quality = f32::from(q);
        }
        None => {
            config.lossless = 1;
            config.exact = 1;
        }
    }
    webp::Encoder::new(&px.data, layout, px.width, px.height)
        .encode_advanced(&config)
        .map(|m| m.to_vec())
        .map_err(|e| ExplicitError::Image(format!("cannot encode the WebP image: {e:?}")))
}

fn label_gif(input: &[u8], edit: &mut Edit<'_, '_>) -> Result<EditedImage, ExplicitError> {
    let decoder =
        image::codecs::gif::GifDecoder::new(Cursor::new(input)).map_err(decode_err(Format::Gif))?;
    let repeat = match decoder.loop_count() {
        image::metadata::LoopCount::Infinite => image::codecs::gif::Repeat::Infinite,
        image::metadata::LoopCount::Finite(n) => {
            image::codecs::gif::Repeat::Finite(u16::try_from(n.get()).unwrap_or(u16::MAX))
        }
    };
    let frames = decoder
        .into_frames()
        .collect_frames()
        .map_err(decode_err(Format::Gif))?;
    if frames.is_empty() {
        return Err(ExplicitError::Image("the GIF has no frames".into()));
    }
    let mut layout: Option<LabelLayout> = None;
    let mut placement = None;
    let mut labelled = Vec::with_capacity(frames.len());
    for (index, frame) in frames.into_iter().enumerate() {
        let (left, top, delay) = (frame.left(), frame.top(), frame.delay());
        let mut buf = frame.into_buffer();
        let (w, h) = buf.dimensions();
        if let Some(spec) = edit.spec {
            let stride = (w as usize) * 4;
            let mut view = FrameMut::new(&mut buf, w, h, stride, PixelLayout::Rgba)?;
            // Plan once on the first frame so the label stays put for the whole animation.
            let planned = match &layout {
                Some(l) => l.clone(),
                None => {
                    let l = LabelLayout::plan(spec, &view)?;
                    layout = Some(l.clone());
                    l
                }
            };
            let mut p = planned.draw(&mut view)?;
            p.text = spec.text().to_string();
            placement.get_or_insert(p);
        }
        edit.step_on(&mut buf, w, h, PixelLayout::Rgba, index)?;
        labelled.push(image::Frame::from_parts(buf, left, top, delay));
    }
    let count = labelled.len();
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(repeat).map_err(encode_err(Format::Gif))?;
        enc.encode_frames(labelled)
            .map_err(encode_err(Format::Gif))?;
    }
    Ok(EditedImage {
        bytes: out,
        placement,
        frames: count,
        orientation: 1,
        jpeg_quality: None,
        webp_quality: None,
        notes: vec!["GIF re-quantised per frame; comment and other extensions are not kept".into()],
    })
}

fn label_tiff(input: &[u8], edit: &mut Edit<'_, '_>) -> Result<EditedImage, ExplicitError> {
    let mut notes = vec![
        "TIFF tags other than the image structure (ICC, EXIF, orientation) are not carried over"
            .into(),
    ];
    let (mut img, orientation) = if crate::tiff_ycbcr::is_plain_ycbcr(input) {
        let (w, h, rgb) = crate::tiff_ycbcr::read_rgb(input)?;
        let img = image::RgbImage::from_raw(w, h, rgb)
            .ok_or_else(|| ExplicitError::Image("TIFF pixel buffer size".into()))?;
        notes.push("YCbCr pixels converted to RGB".into());
        let orientation = crate::tiff_ycbcr::orientation(input);
        (DynamicImage::ImageRgb8(img), orientation)
    } else {
        let mut decoder = image::codecs::tiff::TiffDecoder::new(Cursor::new(input))
            .map_err(decode_err(Format::Tiff))?;
        let orientation = decoder.orientation().map_err(decode_err(Format::Tiff))?;
        let img = DynamicImage::from_decoder(decoder).map_err(decode_err(Format::Tiff))?;
        (img, orientation)
    };
    // The orientation tag is not written back, so turn the pixels upright instead.
    if orientation != image::metadata::Orientation::NoTransforms {
        img.apply_orientation(orientation);
        notes.push("EXIF orientation applied to the pixels".into());
    }
    let mut px = Pixels::from_image(img, &mut notes);
    let placement = edit.apply(&mut px, Orientation::UPRIGHT)?;
    let mut out = Cursor::new(Vec::new());
    image::codecs::tiff::TiffEncoder::new(&mut out)
        .write_image(&px.data, px.width, px.height, px.colour_type())
        .map_err(encode_err(Format::Tiff))?;
    Ok(EditedImage {
        bytes: out.into_inner(),
        placement,
        frames: 1,
        orientation: 1,
        jpeg_quality: None,
        webp_quality: None,
        notes,
    })
}

fn label_bmp(input: &[u8], edit: &mut Edit<'_, '_>) -> Result<EditedImage, ExplicitError> {
    let img = image::load_from_memory_with_format(input, image::ImageFormat::Bmp)
        .map_err(decode_err(Format::Bmp))?;
    let mut notes = Vec::new();
    let mut px = Pixels::from_image(img, &mut notes);
    let placement = edit.apply(&mut px, Orientation::UPRIGHT)?;
    let mut out = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut out)
        .write_image(&px.data, px.width, px.height, px.colour_type())
        .map_err(encode_err(Format::Bmp))?;
    Ok(EditedImage {
        bytes: out,
        placement,
        frames: 1,
        orientation: 1,
        jpeg_quality: None,
        webp_quality: None,
        notes,
    })
}
