//! GIF: the label goes in XMP inside an application extension `XMP DataXMP`, placed before the
//! first graphic control extension or image descriptor. The packet is stored raw, followed by
//! the 258-byte "magic trailer" that makes readers walking it as sub-blocks land on the
//! terminator. An existing packet is merged and every XMP extension is replaced by the new one;
//! all other blocks (every frame) are kept byte for byte.

use crate::bytes::{array, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use crate::xmp;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

const EXTENSION: u8 = 0x21;
const IMAGE: u8 = 0x2C;
const TRAILER: u8 = 0x3B;
const APPLICATION: u8 = 0xFF;
const GRAPHIC_CONTROL: u8 = 0xF9;
/// Application identifier and authentication code of the XMP extension.
const XMP_APP_ID: &[u8; 11] = b"XMP DataXMP";
/// Header + logical screen descriptor.
const HEADER_LEN: usize = 13;
/// Magic trailer length: 0x01, 0xFF down to 0x00, then the block terminator.
const MAGIC_LEN: usize = 258;

/// The GIF carrier.
pub struct GifCarrier;

/// One block between the header and the trailer.
struct Block {
    range: Range<usize>,
    /// The block introducer (0x21 or 0x2C).
    introducer: u8,
    /// The extension label, for extensions.
    label: u8,
    /// Whether it is an XMP application extension.
    xmp: bool,
}

/// The 258 bytes after an XMP packet: 0x01, 0xFF, 0xFE, …, 0x00, then the terminator 0x00.
fn magic_trailer() -> Vec<u8> {
    let mut t = Vec::with_capacity(MAGIC_LEN);
    t.push(0x01);
    t.extend((0..=255u8).rev());
    t.push(0x00);
    t
}

/// Where a run of data sub-blocks starting at `at` ends (after its zero-length terminator).
fn skip_sub_blocks(b: &[u8], mut at: usize) -> Result<usize, MetaError> {
    loop {
        let [len] = array::<1>(b, at, "GIF data sub-block")?;
        at += 1;
        if len == 0 {
            return Ok(at);
        }
        slice(b, at, len.into(), "GIF data sub-block")?;
        at += usize::from(len);
    }
}

/// Size of a color table from a packed field (bit 7: present; bits 0-2: size exponent).
fn color_table_len(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        3 << ((packed & 0x07) + 1)
    }
}

/// The blocks up to the trailer, and where the trailer starts (it and anything after it are
/// kept verbatim).
fn blocks(b: &[u8]) -> Result<(Vec<Block>, usize), MetaError> {
    let sig = slice(b, 0, 6, "GIF header")?;
    if sig != b"GIF87a" && sig != b"GIF89a" {
        return Err(MetaError::malformed(
            "GIF",
            "missing GIF87a/GIF89a signature",
        ));
    }
    let [packed] = array::<1>(b, 10, "GIF logical screen descriptor")?;
    let mut at = HEADER_LEN + color_table_len(packed);
    slice(b, 0, at, "GIF global color table")?;
    let mut out = Vec::new();
    loop {
        let start = at;
        let [introducer] = array::<1>(b, at, "GIF block")?;
        let (label, xmp, end) = match introducer {
            TRAILER => return Ok((out, start)),
            EXTENSION => {
                let [label] = array::<1>(b, at + 1, "GIF extension label")?;
                let xmp = label == APPLICATION
                    && b.get(at + 2..at + 14)
                        .is_some_and(|id| id.split_first() == Some((&11, &XMP_APP_ID[..])));
                (label, xmp, skip_sub_blocks(b, at + 2)?)
            }
            IMAGE => {
                // Separator, left, top, width, height (2 bytes each), packed field.
                let [packed] = array::<1>(b, at + 9, "GIF image descriptor")?;
                let data_at = at + 10 + color_table_len(packed);
                // LZW minimum code size, then the image data sub-blocks.
                slice(b, data_at, 1, "GIF image data")?;
                (0, false, skip_sub_blocks(b, data_at + 1)?)
            }
            other => {
                return Err(MetaError::malformed(
                    "GIF",
                    format!("unknown block introducer 0x{other:02X} at byte {at}"),
                ));
            }
        };
        out.push(Block {
            range: start..end,
            introducer,
            label,
            xmp,
        });
        at = end;
    }
}

/// The packet of an XMP application extension.
fn xmp_packet<'a>(b: &'a [u8], block: &Block) -> Result<&'a str, MetaError> {
    // Introducer, label, block size 11, identifier: 14 bytes before the raw packet.
    let start = block.range.start + 14;
    let end = block
        .range
        .end
        .checked_sub(MAGIC_LEN)
        .filter(|e| *e >= start);
    let bytes = end.and_then(|e| b.get(start..e));
    let trailer = end.and_then(|e| b.get(e..block.range.end));
    match (bytes, trailer) {
        (Some(bytes), Some(trailer)) if trailer == magic_trailer() => xmp::packet_text(bytes),
        _ => Err(MetaError::malformed(
            "GIF",
            "XMP application extension lacks the 258-byte magic trailer",
        )),
    }
}

/// An XMP application extension holding `packet`.
fn xmp_extension(packet: &str) -> Result<Vec<u8>, MetaError> {
    // A NUL would end the sub-block walk that readers use to skip the packet.
    if packet.as_bytes().contains(&0) {
        return Err(MetaError::unsupported(
            "GIF",
            "the XMP packet contains a NUL byte, which GIF's XMP extension cannot hold",
        ));
    }
    let mut out = vec![EXTENSION, APPLICATION, 11];
    out.extend_from_slice(XMP_APP_ID);
    out.extend_from_slice(packet.as_bytes());
    out.extend(magic_trailer());
    Ok(out)
}

impl Carrier for GifCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Gif]
    }

    fn placement(&self) -> &'static str {
        "XMP TC260:AIGC in the application extension XMP DataXMP (before the first image)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let (blocks, _) = blocks(input)?;
        let mut found = Vec::new();
        for block in blocks.iter().filter(|b| b.xmp) {
            for l in xmp::find_labels(xmp_packet(input, block)?)? {
                found.push(FoundLabel::new(
                    format!("XMP (GIF XMP Data extension) {}", l.qualified_name),
                    l.tc260,
                    l.value,
                ));
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let (blocks, trailer) = blocks(input)?;
        let packet = match blocks.iter().find(|b| b.xmp) {
            Some(block) => xmp::merge_packet(xmp_packet(input, block)?, Some(record))?,
            None => xmp::new_packet(record),
        };
        let extension = xmp_extension(&packet)?;
        let insert_at = blocks
            .iter()
            .position(|b| {
                b.introducer == IMAGE || (b.introducer == EXTENSION && b.label == GRAPHIC_CONTROL)
            })
            .unwrap_or(blocks.len());
        let mut out = Rewrite::new();
        if input.starts_with(b"GIF87a") {
            // Extensions came with GIF89a; the version must say so.
            out.insert(b"GIF89a").keep(6..HEADER_LEN);
        } else {
            out.keep(0..HEADER_LEN);
        }
        let first_block = blocks.first().map_or(trailer, |b| b.range.start);
        out.keep(HEADER_LEN..first_block);
        for (i, block) in blocks.iter().enumerate() {
            if i == insert_at {
                out.insert(&extension);
            }
            if !block.xmp {
                out.keep(block.range.clone());
            }
        }
        if insert_at == blocks.len() {
            out.insert(&extension);
        }
        out.keep(trailer..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLES: [&str; 2] = ["image.gif", "image-animated.gif"];

    /// The image and graphic control blocks' bytes, which hold every frame.
    fn frames(b: &[u8]) -> Vec<Vec<u8>> {
        let (blocks, _) = blocks(b).expect("blocks");
        blocks
            .iter()
            .filter(|bl| bl.introducer == IMAGE || bl.label == GRAPHIC_CONTROL)
            .map(|bl| b[bl.range.clone()].to_vec())
            .collect()
    }

    #[test]
    fn gif_write_reads_back_one_label() {
        for name in SAMPLES {
            let input = sample(name);
            let out = write_and_check_idempotent(&GifCarrier, &input, &record(name));
            let (blocks, _) = blocks(&out).expect("blocks");
            let xmp_at = blocks.iter().position(|b| b.xmp).expect("xmp block");
            assert!(
                blocks[..xmp_at]
                    .iter()
                    .all(|b| b.introducer == EXTENSION && b.label != GRAPHIC_CONTROL)
            );
            assert_eq!(blocks.iter().filter(|b| b.xmp).count(), 1);
        }
    }

    #[test]
    fn gif_exiftool_reads_our_label() {
        for name in SAMPLES {
            let rec = record(name);
            let input = sample(name);
            let out = write(&GifCarrier, &input, &rec);
            assert_exiftool_reads_xmp_label(name, &out, &rec);
        }
    }

    #[test]
    fn gif_reads_and_merges_exiftool_written_xmp() {
        assert_replaces_exiftool_xmp_label(&GifCarrier, "et.gif", &sample("image-animated.gif"));
    }

    #[test]
    fn gif_payload_is_untouched() {
        for name in SAMPLES {
            let input = sample(name);
            let out = write(&GifCarrier, &input, &record("payload"));
            assert_eq!(frames(&input), frames(&out));
            assert_eq!(input[..HEADER_LEN], out[..HEADER_LEN]);
            let md5 = decoded_frames_md5(name, &out);
            assert_eq!(decoded_frames_md5(name, &input), md5);
            if name == "image-animated.gif" {
                assert_eq!(md5.lines().filter(|l| !l.starts_with('#')).count(), 5);
            }
        }
    }

    #[test]
    fn gif87a_is_upgraded_for_the_extension() {
        let mut input = sample("image.gif");
        input[..6].copy_from_slice(b"GIF87a");
        let out = write_and_check(&GifCarrier, &input, &record("87a"));
        assert!(out.starts_with(b"GIF89a"));
    }

    #[test]
    fn gif_hostile_input_never_panics() {
        for name in SAMPLES {
            let input = sample(name);
            let labelled = write(&GifCarrier, &input, &record("fuzz"));
            for b in [input, labelled] {
                assert_hostile_inputs_never_panic(&GifCarrier, &b, 1000, 1);
            }
        }
    }
}
