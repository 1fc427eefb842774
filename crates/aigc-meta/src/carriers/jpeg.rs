//! JPEG: the label goes in XMP inside an APP1 segment (`http://ns.adobe.com/xap/1.0/\0`), placed
//! after SOI and the leading JFIF APP0 / Exif APP1 segments. An existing XMP packet is merged,
//! never replaced. Labels in Extended XMP and in EXIF UserComment / ImageDescription (the guide's
//! alternative) are read; on write, Extended XMP loses its label properties and EXIF label text
//! is blanked in place so that one label remains. Segments are parsed up to SOS only: the
//! entropy-coded data and everything after it are kept verbatim.

use crate::bytes::{be_u16, be_u32, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::exif::{self, Tiff};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use crate::xmp;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

const SOI: [u8; 2] = [0xFF, 0xD8];
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const SOS: u8 = 0xDA;
const EOI: u8 = 0xD9;
const XMP_SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const EXT_XMP_SIG: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
const EXIF_SIG: &[u8] = b"Exif\0\0";
/// GUID (32 hex digits), full length and chunk offset that precede each Extended XMP chunk.
const EXT_XMP_HEADER: usize = 32 + 4 + 4;
/// The largest segment payload a 16-bit length allows (the length counts its own two bytes).
const MAX_SEGMENT_DATA: usize = 0xFFFF - 2;
/// Extended XMP chunk size Adobe's toolkit uses; leaves room for the signature and header.
const EXT_XMP_CHUNK: usize = 65400;

/// The JPEG carrier.
pub struct JpegCarrier;

/// What a segment holds, as far as labels are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Xmp,
    ExtendedXmp,
    Exif,
    Other,
}

/// One marker segment before SOS: where it lies (fill bytes included) and its payload.
struct Segment {
    marker: u8,
    kind: Kind,
    range: Range<usize>,
    data: Range<usize>,
}

/// The segments between SOI and SOS (or EOI), and where the kept-verbatim tail starts.
fn segments(b: &[u8]) -> Result<(Vec<Segment>, usize), MetaError> {
    if !b.starts_with(&SOI) {
        return Err(MetaError::malformed("JPEG", "missing SOI marker"));
    }
    let mut out = Vec::new();
    let mut at = SOI.len();
    loop {
        if slice(b, at, 1, "JPEG marker")? != [0xFF] {
            return Err(MetaError::malformed(
                "JPEG",
                format!("expected a marker at byte {at}"),
            ));
        }
        // Any number of 0xFF fill bytes may precede the marker code.
        let mut code_at = at + 1;
        let marker = loop {
            let [code] = crate::bytes::array::<1>(b, code_at, "JPEG marker")?;
            if code != 0xFF {
                break code;
            }
            code_at += 1;
        };
        if marker == SOS || marker == EOI {
            return Ok((out, at));
        }
        let after_code = code_at + 1;
        let (data, end) = if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            // Standalone markers (RSTn, TEM) have no length.
            (after_code..after_code, after_code)
        } else if marker == 0x00 || marker == SOI[1] {
            return Err(MetaError::malformed(
                "JPEG",
                format!("unexpected marker 0xFF{marker:02X} at byte {at}"),
            ));
        } else {
            let len = be_u16(b, after_code, "JPEG segment length")? as usize;
            let data_len = len.checked_sub(2).ok_or_else(|| {
                MetaError::malformed("JPEG", format!("segment length {len} at byte {at}"))
            })?;
            let data_at = after_code + 2;
            (data_at..data_at + data_len, data_at + data_len)
        };
        let payload = slice(
            b,
            data.start,
            data.len(),
            &format!("JPEG 0xFF{marker:02X} segment"),
        )?;
        let kind = match marker {
            APP1 if payload.starts_with(XMP_SIG) => Kind::Xmp,
            APP1 if payload.starts_with(EXT_XMP_SIG) => Kind::ExtendedXmp,
            APP1 if payload.starts_with(EXIF_SIG) => Kind::Exif,
            _ => Kind::Other,
        };
        out.push(Segment {
            marker,
            kind,
            range: at..end,
            data,
        });
        at = end;
    }
}

/// The packet text of an XMP APP1 segment.
fn xmp_text<'a>(b: &'a [u8], seg: &Segment) -> Result<&'a str, MetaError> {
    xmp::packet_text(
        b.get(seg.data.start + XMP_SIG.len()..seg.data.end)
            .unwrap_or_default(),
    )
}

/// The TIFF structure inside an Exif APP1 segment, and where it starts in the file.
fn exif_tiff<'a>(b: &'a [u8], seg: &Segment) -> Result<(Tiff<'a>, usize), MetaError> {
    let start = seg.data.start + EXIF_SIG.len();
    let data = b.get(start..seg.data.end).unwrap_or_default();
    Ok((Tiff::parse(data, "JPEG EXIF")?, start))
}

/// One Extended XMP serialisation, reassembled from its chunks.
struct Extended {
    guid: [u8; 32],
    /// Indexes of its segments.
    segments: Vec<usize>,
    text: String,
}

/// Every Extended XMP serialisation, grouped by GUID in order of first appearance.
fn extended_xmp(b: &[u8], segs: &[Segment]) -> Result<Vec<Extended>, MetaError> {
    // (guid, segment indexes, full length, bytes its chunks carry)
    let mut groups: Vec<([u8; 32], Vec<usize>, usize, usize)> = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        if seg.kind != Kind::ExtendedXmp {
            continue;
        }
        let chunk_len = seg
            .data
            .len()
            .checked_sub(EXT_XMP_SIG.len() + EXT_XMP_HEADER)
            .ok_or_else(|| {
                MetaError::malformed("JPEG", "Extended XMP segment too short for its header")
            })?;
        let at = seg.data.start + EXT_XMP_SIG.len();
        let guid: [u8; 32] = crate::bytes::array(b, at, "JPEG Extended XMP GUID")?;
        let full = be_u32(b, at + 32, "JPEG Extended XMP length")? as usize;
        match groups.iter_mut().find(|g| g.0 == guid) {
            Some(g) => {
                g.1.push(i);
                g.3 += chunk_len;
            }
            None => groups.push((guid, vec![i], full, chunk_len)),
        }
    }
    let mut out = Vec::new();
    for (guid, indexes, full, carried) in groups {
        // Chunks must cover the whole text, which bounds the buffers by the file's size.
        if full > carried {
            return Err(MetaError::malformed(
                "JPEG",
                format!("Extended XMP claims {full} bytes but its chunks carry {carried}"),
            ));
        }
        let mut buf = vec![0u8; full];
        for &i in &indexes {
            let seg = &segs[i];
            let at = seg.data.start + EXT_XMP_SIG.len();
            let offset = be_u32(b, at + 36, "JPEG Extended XMP offset")? as usize;
            let chunk = slice(
                b,
                at + EXT_XMP_HEADER,
                seg.data.end.saturating_sub(at + EXT_XMP_HEADER),
                "JPEG Extended XMP chunk",
            )?;
            let dest = offset
                .checked_add(chunk.len())
                .and_then(|end| buf.get_mut(offset..end))
                .ok_or_else(|| {
                    MetaError::malformed("JPEG", "Extended XMP chunk lies outside its full length")
                })?;
            dest.copy_from_slice(chunk);
        }
        let text = xmp::packet_text(&buf)?.to_string();
        out.push(Extended {
            guid,
            segments: indexes,
            text,
        });
    }
    Ok(out)
}

/// An APP1 segment holding `payload` after `signature`.
fn app1(signature: &[u8], payload: &[&[u8]]) -> Result<Vec<u8>, MetaError> {
    let data_len = signature.len() + payload.iter().map(|p| p.len()).sum::<usize>();
    if data_len > MAX_SEGMENT_DATA {
        return Err(MetaError::unsupported(
            "JPEG",
            format!(
                "the XMP packet needs {data_len} bytes, more than one APP1 segment holds ({MAX_SEGMENT_DATA})"
            ),
        ));
    }
    let mut out = Vec::with_capacity(data_len + 4);
    out.extend_from_slice(&[0xFF, APP1]);
    out.extend_from_slice(&((data_len + 2) as u16).to_be_bytes());
    out.extend_from_slice(signature);
    for p in payload {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// Extended XMP segments holding `text`, chunked under `guid`.
fn extended_segments(guid: &[u8; 32], text: &str) -> Result<Vec<u8>, MetaError> {
    let full = u32::try_from(text.len())
        .map_err(|_| MetaError::unsupported("JPEG", "Extended XMP over 4 GiB"))?;
    let mut out = Vec::new();
    for (n, chunk) in text.as_bytes().chunks(EXT_XMP_CHUNK).enumerate() {
        // Chunk offsets are below `full`, which fits in u32.
        let offset = (n * EXT_XMP_CHUNK) as u32;
        out.extend(app1(
            EXT_XMP_SIG,
            &[guid, &full.to_be_bytes(), &offset.to_be_bytes(), chunk],
        )?);
    }
    Ok(out)
}

impl Carrier for JpegCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Jpeg]
    }

    fn placement(&self) -> &'static str {
        "XMP TC260:AIGC in APP1 http://ns.adobe.com/xap/1.0/ (after JFIF/Exif)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let (segs, _) = segments(input)?;
        let extended = extended_xmp(input, &segs)?;
        let mut found = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            match seg.kind {
                Kind::Xmp => {
                    for l in xmp::find_labels(xmp_text(input, seg)?)? {
                        found.push(FoundLabel::new(
                            format!("XMP (APP1) {}", l.qualified_name),
                            l.tc260,
                            l.value,
                        ));
                    }
                }
                Kind::Exif => {
                    let (tiff, _) = exif_tiff(input, seg)?;
                    for l in exif::find_text_labels(&tiff)? {
                        found.push(FoundLabel::new(
                            format!("EXIF (APP1) {}", l.field),
                            false,
                            l.value,
                        ));
                    }
                }
                Kind::ExtendedXmp => {
                    // Reported where the serialisation's first chunk is.
                    for ext in extended.iter().filter(|e| e.segments.first() == Some(&i)) {
                        for l in xmp::find_labels(&ext.text)? {
                            found.push(FoundLabel::new(
                                format!("Extended XMP (APP1) {}", l.qualified_name),
                                false,
                                l.value,
                            ));
                        }
                    }
                }
                Kind::Other => {}
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let (segs, tail) = segments(input)?;
        let first_xmp = segs.iter().position(|s| s.kind == Kind::Xmp);
        let packet = match first_xmp {
            Some(i) => xmp::merge_packet(xmp_text(input, &segs[i])?, Some(record))?,
            None => xmp::new_packet(record),
        };
        let new_xmp = app1(XMP_SIG, &[packet.as_bytes()])?;
        // A new packet goes after the leading JFIF/JFXX APP0 and Exif APP1 segments.
        let insert_at = first_xmp.unwrap_or_else(|| {
            segs.iter()
                .position(|s| !(s.marker == APP0 || s.kind == Kind::Exif))
                .unwrap_or(segs.len())
        });
        // EXIF label text is blanked in place, so that no EXIF offset moves.
        let mut patches = Vec::new();
        for seg in segs.iter().filter(|s| s.kind == Kind::Exif) {
            let (tiff, base) = exif_tiff(input, seg)?;
            for l in exif::find_text_labels(&tiff)? {
                patches.push((base + l.text.start, l.blank));
            }
        }
        // Extended XMP that holds labels is rewritten without them (same GUID, as readers match
        // it against the main packet's xmpNote:HasExtendedXMP).
        let mut replaced: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut dropped: Vec<usize> = Vec::new();
        for ext in extended_xmp(input, &segs)? {
            if xmp::find_labels(&ext.text)?.is_empty() {
                continue;
            }
            let stripped = xmp::merge_packet(&ext.text, None)?;
            if let Some(&first) = ext.segments.first() {
                replaced.push((first, extended_segments(&ext.guid, &stripped)?));
            }
            dropped.extend(&ext.segments);
        }
        let mut out = Rewrite::new();
        out.keep(0..SOI.len());
        for (i, seg) in segs.iter().enumerate() {
            if i == insert_at {
                out.insert(&new_xmp);
            }
            if let Some((_, bytes)) = replaced.iter().find(|r| r.0 == i) {
                out.insert(bytes);
            }
            if seg.kind == Kind::Xmp || dropped.contains(&i) {
                continue;
            }
            exif::keep_patched(&mut out, seg.range.clone(), &patches);
        }
        if insert_at == segs.len() {
            out.insert(&new_xmp);
        }
        out.keep(tail..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn jpeg_write_reads_back_one_label() {
        for name in ["image.jpg", "image-exif-xmp.jpg"] {
            let input = sample(name);
            let rec = record(name);
            let out = write_and_check_idempotent(&JpegCarrier, &input, &rec);
            // The new segment lands after JFIF (and Exif), before everything else.
            let (segs, _) = segments(&out).expect("segments");
            assert_eq!(segs[0].marker, APP0);
            let xmp_at = segs.iter().position(|s| s.kind == Kind::Xmp).expect("xmp");
            assert!(
                segs[..xmp_at]
                    .iter()
                    .all(|s| s.marker == APP0 || s.kind == Kind::Exif)
            );
            assert_eq!(segs.iter().filter(|s| s.kind == Kind::Xmp).count(), 1);
        }
    }

    #[test]
    fn jpeg_exiftool_reads_our_label_and_keeps_other_metadata() {
        let input = sample("image-exif-xmp.jpg");
        let rec = record("exiftool-check");
        let out = write(&JpegCarrier, &input, &rec);
        let tags = assert_exiftool_reads_xmp_label("label.jpg", &out, &rec);
        assert_eq!(tags["IFD0:Make"], "SampleCam");
        assert_eq!(tags["IFD0:Model"], "Gen1");
        assert_eq!(tags["XMP-dc:Title"], "sample title");
        assert_eq!(tags["XMP-dc:Creator"], "aigc-mark samples");
    }

    #[test]
    fn jpeg_reads_and_merges_exiftool_written_xmp() {
        // A label exiftool wrote (TC260 namespace defined in a config file) is read by ours.
        let theirs = record("by-exiftool");
        let labelled = exiftool_xmp_labelled("et.jpg", &sample("image.jpg"), &theirs, &[]);
        assert_one_label(&JpegCarrier, &labelled, &theirs);
        // Ours replaces it, merging into exiftool's packet.
        let titled = exiftool_write("title.jpg", &labelled, &["-XMP-dc:Title=x"]);
        let ours = record("ours");
        let out = write_and_check(&JpegCarrier, &titled, &ours);
        let tags = assert_exiftool_reads_xmp_label("merged.jpg", &out, &ours);
        assert_eq!(tags["XMP-dc:Title"], "x");
    }

    #[test]
    fn jpeg_user_comment_label_is_read_then_replaced() {
        let theirs = record("in-user-comment");
        let value = format!("-EXIF:UserComment={}", theirs.to_wrapped_json());
        let input = exiftool_write("uc.jpg", &sample("image-exif-xmp.jpg"), &[&value]);
        let labels = JpegCarrier.read(&input).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert!(!labels[0].primary && labels[0].placement.contains("UserComment"));
        assert_eq!(labels[0].parsed.record.as_ref(), Some(&theirs));
        let ours = record("ours");
        let out = write_and_check(&JpegCarrier, &input, &ours);
        let tags = assert_exiftool_reads_xmp_label("uc-out.jpg", &out, &ours);
        let comment = tags["ExifIFD:UserComment"].as_str().unwrap_or_default();
        assert!(!comment.contains("AIGC"), "{comment:?}");
        assert_eq!(tags["IFD0:Make"], "SampleCam");
    }

    #[test]
    fn jpeg_image_description_and_unicode_comment_labels_are_read() {
        let theirs = record("in-description");
        let desc = format!("-IFD0:ImageDescription={}", theirs.to_wrapped_json());
        let input = exiftool_write("desc.jpg", &sample("image-exif-xmp.jpg"), &[&desc]);
        let labels = JpegCarrier.read(&input).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert!(labels[0].placement.contains("ImageDescription"));
        assert_eq!(labels[0].parsed.record.as_ref(), Some(&theirs));
        write_and_check(&JpegCarrier, &input, &record("ours"));
        // A non-ASCII comment makes exiftool store it as UNICODE (UTF-16).
        let comment = format!(
            "-EXIF:UserComment={}",
            r#"{"AIGC":{"Label":"1","note":"生成"}}"#
        );
        let input = exiftool_write("uni.jpg", &sample("image-exif-xmp.jpg"), &[&comment]);
        let labels = JpegCarrier.read(&input).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert!(labels[0].value.contains("生成"), "{labels:#?}");
        write_and_check(&JpegCarrier, &input, &record("ours"));
    }

    #[test]
    fn jpeg_extended_xmp_labels_are_read_and_stripped() {
        let label = record("extended");
        let body = format!(
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
             <rdf:Description rdf:about=\"\" xmlns:TC260=\"{}\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
             <TC260:AIGC>{}</TC260:AIGC><dc:source>{}</dc:source></rdf:Description></rdf:RDF></x:xmpmeta>",
            xmp::TC260_NS,
            label.to_bare_json().replace('"', "&quot;"),
            "y".repeat(70_000)
        );
        let guid = [b'A'; 32];
        let ext = extended_segments(&guid, &body).expect("chunks");
        let input = sample("image.jpg");
        let mut with_ext = input[..20].to_vec();
        with_ext.extend(&ext);
        with_ext.extend(&input[20..]);
        let labels = JpegCarrier.read(&with_ext).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert!(labels[0].placement.starts_with("Extended XMP"));
        let out = write_and_check(&JpegCarrier, &with_ext, &record("ours"));
        let (segs, _) = segments(&out).expect("segments");
        let rest = extended_xmp(&out, &segs).expect("extended");
        assert_eq!(rest.len(), 1);
        assert!(rest[0].text.contains(&"y".repeat(70_000)));
    }

    #[test]
    fn jpeg_exiftool_extended_xmp_is_kept() {
        // exiftool moves an 80 kB description into Extended XMP; ours must leave it readable.
        let description = "d".repeat(80_000);
        let input = exiftool_write(
            "ext.jpg",
            &sample("image.jpg"),
            &[&format!("-XMP-dc:Description={description}")],
        );
        let ours = record("ours");
        let out = write_and_check(&JpegCarrier, &input, &ours);
        let tags = assert_exiftool_reads_xmp_label("ext-out.jpg", &out, &ours);
        assert_eq!(tags["XMP-dc:Description"], description);
        assert!(
            tags.get("ExifTool:Warning").is_none(),
            "{:?}",
            tags["ExifTool:Warning"]
        );
        // A label too big for the main packet lands in Extended XMP: read, then stripped.
        let mut big = record("big");
        big.reserved_code1 = "s".repeat(70_000);
        let labelled = exiftool_xmp_labelled("ext-label.jpg", &input, &big, &[]);
        let labels = JpegCarrier.read(&labelled).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert!(
            labels[0].placement.starts_with("Extended XMP"),
            "{labels:#?}"
        );
        assert_eq!(labels[0].parsed.record.as_ref(), Some(&big));
        let out = write_and_check(&JpegCarrier, &labelled, &ours);
        let tags = assert_exiftool_reads_xmp_label("ext-label-out.jpg", &out, &ours);
        assert_eq!(tags["XMP-dc:Description"], description);
    }

    #[test]
    fn jpeg_payload_is_untouched() {
        for name in ["image.jpg", "image-exif-xmp.jpg"] {
            let input = sample(name);
            let out = write(&JpegCarrier, &input, &record("payload"));
            let (_, in_tail) = segments(&input).expect("segments");
            let (_, out_tail) = segments(&out).expect("segments");
            assert_eq!(input[in_tail..], out[out_tail..], "scan data differs");
            assert_eq!(
                decoded_frames_md5("in.jpg", &input),
                decoded_frames_md5("out.jpg", &out)
            );
        }
    }

    #[test]
    fn jpeg_hostile_input_never_panics() {
        for name in ["image.jpg", "image-exif-xmp.jpg"] {
            let input = sample(name);
            let (_, scan) = segments(&input).expect("segments");
            // Every cut inside the segments, every 7th in the scan data (which is only kept);
            // flips aim at the segments (3 in 4 of them, so 3400 cases put 2500+ there).
            HostileInputs::new(3400, 7)
                .hot(0..scan + 2)
                .cut_hot_densely()
                .assert_never_panic(&JpegCarrier, &input);
        }
    }
}
