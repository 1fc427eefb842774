//! WebP: the label goes in XMP inside a RIFF `XMP ` chunk, which needs the extended (VP8X)
//! layout: a simple VP8/VP8L file gets a VP8X header chunk (canvas size from the bitstream
//! header), and the XMP flag is set. The chunk is placed where the container spec orders it:
//! after the image data (VP8/VP8L/ALPH or ANIM/ANMF frames) and EXIF. An existing packet is
//! merged; EXIF UserComment / ImageDescription labels are read and blanked in place on write.

use crate::bytes::{array, le_u16, le_u32, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::exif::{self, Tiff};
use crate::error::MetaError;
use crate::rewrite::{Piece, Rewrite};
use crate::xmp;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

/// VP8X flag bits (WebP container spec).
const FLAG_ICC: u8 = 0x20;
const FLAG_ALPHA: u8 = 0x10;
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;
/// RIFF header: `RIFF`, size, `WEBP`.
const HEADER_LEN: usize = 12;

/// The WebP carrier.
pub struct WebPCarrier;

/// One RIFF chunk: where it lies (padding included), its FourCC and its payload.
struct Chunk {
    range: Range<usize>,
    fourcc: [u8; 4],
    data: Range<usize>,
}

/// The chunks of the RIFF body, and where the RIFF ends (bytes after it are kept verbatim).
fn chunks(b: &[u8]) -> Result<(Vec<Chunk>, usize), MetaError> {
    if slice(b, 0, 4, "RIFF header")? != b"RIFF" || slice(b, 8, 4, "RIFF form type")? != b"WEBP" {
        return Err(MetaError::malformed("WebP", "missing RIFF/WEBP header"));
    }
    let riff_size = le_u32(b, 4, "RIFF size")? as usize;
    let riff_end = riff_size
        .checked_add(8)
        .filter(|end| *end >= HEADER_LEN)
        .ok_or_else(|| MetaError::malformed("WebP", format!("RIFF size {riff_size}")))?;
    slice(b, 0, riff_end, "WebP RIFF body")?;
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < riff_end {
        let fourcc: [u8; 4] = array(b, at, "WebP chunk FourCC")?;
        let size = le_u32(b, at + 4, "WebP chunk size")? as usize;
        let data_at = at + 8;
        // Odd-sized chunks are followed by one padding byte.
        let end = data_at
            .checked_add(size)
            .and_then(|e| e.checked_add(size & 1))
            .filter(|e| *e <= riff_end)
            .ok_or_else(|| {
                MetaError::truncated(
                    format!("WebP {} chunk", String::from_utf8_lossy(&fourcc)),
                    at,
                )
            })?;
        out.push(Chunk {
            range: at..end,
            fourcc,
            data: data_at..data_at + size,
        });
        at = end;
    }
    Ok((out, riff_end))
}

/// The payload of `chunk`.
fn data<'a>(b: &'a [u8], chunk: &Chunk) -> &'a [u8] {
    // `chunks` checked that every payload lies inside the RIFF body.
    b.get(chunk.data.clone()).unwrap_or_default()
}

/// The TIFF structure of an EXIF chunk (some writers keep JPEG's `Exif\0\0` prefix), and where
/// it starts in the file.
fn exif_tiff<'a>(b: &'a [u8], chunk: &Chunk) -> Result<(Tiff<'a>, usize), MetaError> {
    let payload = data(b, chunk);
    let skip = if payload.starts_with(b"Exif\0\0") {
        6
    } else {
        0
    };
    let tiff = Tiff::parse(payload.get(skip..).unwrap_or_default(), "WebP EXIF")?;
    Ok((tiff, chunk.data.start + skip))
}

/// Canvas width and height (each at least 1) and whether alpha is used, from a VP8 or VP8L
/// bitstream header.
fn canvas(b: &[u8], chunk: &Chunk) -> Result<(u32, u32, bool), MetaError> {
    let d = data(b, chunk);
    match &chunk.fourcc {
        b"VP8 " => {
            // Frame tag (3 bytes), start code 9D 01 2A, then 14-bit width and height; only a
            // key frame (tag bit 0 clear) has them.
            if slice(d, 0, 1, "VP8 frame tag")?
                .first()
                .is_some_and(|t| t & 1 == 1)
            {
                return Err(MetaError::malformed("WebP", "VP8 frame is not a key frame"));
            }
            if slice(d, 3, 3, "VP8 start code")? != [0x9D, 0x01, 0x2A] {
                return Err(MetaError::malformed(
                    "WebP",
                    "VP8 frame lacks its start code",
                ));
            }
            let width = le_u16(d, 6, "VP8 width")? & 0x3FFF;
            let height = le_u16(d, 8, "VP8 height")? & 0x3FFF;
            Ok((width.into(), height.into(), false))
        }
        b"VP8L" => {
            if slice(d, 0, 1, "VP8L signature")? != [0x2F] {
                return Err(MetaError::malformed("WebP", "VP8L signature is not 0x2F"));
            }
            // 14 bits width - 1, 14 bits height - 1, 1 bit alpha, 3 bits version.
            let bits = le_u32(d, 1, "VP8L header")?;
            let width = (bits & 0x3FFF) + 1;
            let height = ((bits >> 14) & 0x3FFF) + 1;
            Ok((width, height, (bits >> 28) & 1 == 1))
        }
        other => Err(MetaError::unsupported(
            "WebP",
            format!(
                "first chunk is {}, not VP8X, VP8 or VP8L",
                String::from_utf8_lossy(other)
            ),
        )),
    }
}

/// A chunk with `fourcc` holding `payload`, padded to even length.
fn chunk_bytes(fourcc: &[u8; 4], payload: &[u8]) -> Result<Vec<u8>, MetaError> {
    let size = u32::try_from(payload.len())
        .map_err(|_| MetaError::unsupported("WebP", "chunk over 4 GiB"))?;
    let mut out = Vec::with_capacity(payload.len() + 9);
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
    Ok(out)
}

/// A VP8X chunk for a canvas of `width` x `height` with `flags`.
fn vp8x(flags: u8, width: u32, height: u32) -> Result<Vec<u8>, MetaError> {
    let (w, h) = width
        .checked_sub(1)
        .zip(height.checked_sub(1))
        .ok_or_else(|| MetaError::malformed("WebP", "VP8 frame has a zero width or height"))?;
    let mut payload = vec![flags, 0, 0, 0];
    payload.extend_from_slice(&w.to_le_bytes()[..3]);
    payload.extend_from_slice(&h.to_le_bytes()[..3]);
    chunk_bytes(b"VP8X", &payload)
}

impl Carrier for WebPCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::WebP]
    }

    fn placement(&self) -> &'static str {
        "XMP TC260:AIGC in the RIFF XMP chunk (VP8X layout, after image data and EXIF)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let (chunks, _) = chunks(input)?;
        let mut found = Vec::new();
        for c in &chunks {
            match &c.fourcc {
                b"XMP " => {
                    for l in xmp::find_labels(xmp::packet_text(data(input, c))?)? {
                        found.push(FoundLabel::new(
                            format!("XMP (RIFF XMP chunk) {}", l.qualified_name),
                            l.tc260,
                            l.value,
                        ));
                    }
                }
                b"EXIF" => {
                    let (tiff, _) = exif_tiff(input, c)?;
                    for l in exif::find_text_labels(&tiff)? {
                        found.push(FoundLabel::new(
                            format!("EXIF (RIFF EXIF chunk) {}", l.field),
                            false,
                            l.value,
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let (chunks, riff_end) = chunks(input)?;
        let first = chunks
            .first()
            .ok_or_else(|| MetaError::malformed("WebP", "RIFF body holds no chunk"))?;
        let packet = match chunks.iter().find(|c| &c.fourcc == b"XMP ") {
            Some(c) => xmp::merge_packet(xmp::packet_text(data(input, c))?, Some(record))?,
            None => xmp::new_packet(record),
        };
        let xmp_chunk = chunk_bytes(b"XMP ", packet.as_bytes())?;
        let mut patches = Vec::new();
        for c in chunks.iter().filter(|c| &c.fourcc == b"EXIF") {
            let (tiff, base) = exif_tiff(input, c)?;
            for l in exif::find_text_labels(&tiff)? {
                patches.push((base + l.text.start, l.blank));
            }
        }
        let mut body = Rewrite::new();
        if &first.fourcc == b"VP8X" {
            // Set the XMP flag in place; the flags are the payload's first byte.
            let [flags] = array::<1>(input, first.data.start, "VP8X flags")?;
            patches.push((first.data.start, vec![flags | FLAG_XMP]));
        } else {
            // A simple file becomes extended: VP8X first, describing what the file holds.
            let (width, height, alpha) = canvas(input, first)?;
            let mut flags = FLAG_XMP;
            for (fourcc, flag) in [(b"EXIF", FLAG_EXIF), (b"ICCP", FLAG_ICC)] {
                if chunks.iter().any(|c| &c.fourcc == fourcc) {
                    flags |= flag;
                }
            }
            if alpha {
                flags |= FLAG_ALPHA;
            }
            body.insert(vp8x(flags, width, height)?);
        }
        // XMP follows the last header, image or EXIF chunk; unknown chunks come after it.
        let insert_after = chunks.iter().rposition(|c| {
            matches!(
                &c.fourcc,
                b"VP8X" | b"ICCP" | b"ANIM" | b"ANMF" | b"ALPH" | b"VP8 " | b"VP8L" | b"EXIF"
            )
        });
        if insert_after.is_none() {
            body.insert(&xmp_chunk);
        }
        for (i, c) in chunks.iter().enumerate() {
            if &c.fourcc != b"XMP " {
                exif::keep_patched(&mut body, c.range.clone(), &patches);
            }
            if Some(i) == insert_after {
                body.insert(&xmp_chunk);
            }
        }
        let riff_size = u32::try_from(body.len() + 4)
            .map_err(|_| MetaError::unsupported("WebP", "labelled file would exceed 4 GiB"))?;
        let mut out = Rewrite::new();
        out.insert(b"RIFF")
            .insert(riff_size.to_le_bytes())
            .insert(b"WEBP");
        for piece in body.pieces() {
            match piece {
                Piece::Keep(r) => out.keep(r.clone()),
                Piece::Insert(bytes) => out.insert(bytes),
            };
        }
        out.keep(riff_end..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLES: [&str; 2] = ["image.webp", "image-lossy.webp"];

    /// FourCCs of the output's chunks, in order.
    fn layout(b: &[u8]) -> Vec<String> {
        let (chunks, _) = chunks(b).expect("chunks");
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.fourcc).into_owned())
            .collect()
    }

    #[test]
    fn webp_write_reads_back_one_label() {
        for name in SAMPLES {
            let input = sample(name);
            let out = write_and_check_idempotent(&WebPCarrier, &input, &record(name));
            let layout = layout(&out);
            assert_eq!(layout[0], "VP8X", "{layout:?}");
            assert_eq!(layout.last().map(String::as_str), Some("XMP "));
            let (chunks, riff_end) = chunks(&out).expect("chunks");
            assert_eq!(riff_end, out.len());
            // Canvas size is 320x240 (not swapped) and the XMP flag is set.
            let d = data(&out, &chunks[0]);
            assert_eq!(d[0] & FLAG_XMP, FLAG_XMP);
            assert_eq!(d[4..10], [63, 1, 0, 239, 0, 0]);
        }
    }

    #[test]
    fn webp_exiftool_reads_our_label() {
        for name in SAMPLES {
            let rec = record(name);
            let out = WebPCarrier
                .write(&sample(name), &rec)
                .expect("write")
                .to_vec(&sample(name));
            let tags = assert_exiftool_reads_xmp_label(name, &out, &rec);
            assert_eq!(tags["RIFF:ImageWidth"], 320);
            assert_eq!(tags["RIFF:ImageHeight"], 240);
        }
    }

    #[test]
    fn webp_reads_exiftool_labels_and_keeps_their_metadata() {
        let Replaced { theirs, ours, .. } =
            assert_replaces_exiftool_xmp_label(&WebPCarrier, "et.webp", &sample("image.webp"));
        // A label exiftool put in EXIF UserComment is read, then blanked by our write.
        let comment = format!("-EXIF:UserComment={}", theirs.to_wrapped_json());
        let input = exiftool_write(
            "uc.webp",
            &sample("image-lossy.webp"),
            &[&comment, "-EXIF:Make=Cam"],
        );
        let labels = WebPCarrier.read(&input).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert_eq!(labels[0].parsed.record.as_ref(), Some(&theirs));
        let out = write_and_check(&WebPCarrier, &input, &ours);
        assert_eq!(layout(&out), ["VP8X", "VP8 ", "EXIF", "XMP "]);
        let tags = assert_exiftool_reads_xmp_label("uc-out.webp", &out, &ours);
        assert_eq!(tags["IFD0:Make"], "Cam");
        assert!(
            !tags["ExifIFD:UserComment"]
                .as_str()
                .unwrap_or_default()
                .contains("AIGC")
        );
    }

    #[test]
    fn webp_payload_is_untouched() {
        for name in SAMPLES {
            let input = sample(name);
            let out = write(&WebPCarrier, &input, &record("payload"));
            let image = |b: &[u8]| {
                let (chunks, _) = chunks(b).expect("chunks");
                chunks
                    .iter()
                    .find(|c| c.fourcc.starts_with(b"VP8") && &c.fourcc != b"VP8X")
                    .map(|c| b[c.range.clone()].to_vec())
            };
            assert_eq!(image(&input), image(&out));
            assert_eq!(
                decoded_frames_md5(name, &input),
                decoded_frames_md5(name, &out)
            );
        }
    }

    #[test]
    fn webp_hostile_input_never_panics() {
        for name in SAMPLES {
            let input = sample(name);
            // The labelled file has VP8X and XMP chunks for the flips to hit too.
            let labelled = write(&WebPCarrier, &input, &record("fuzz"));
            for b in [input, labelled] {
                assert_hostile_inputs_never_panic(&WebPCarrier, &b, 1500, 1);
            }
        }
    }
}
