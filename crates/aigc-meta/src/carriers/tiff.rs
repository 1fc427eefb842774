//! TIFF: the label goes in XMP in IFD0 tag 700 (0x02BC). Nothing in the file moves: the merged
//! packet and a copy of IFD0 with tag 700 added or replaced are appended at the end, and the
//! header's IFD0 offset is pointed at the copy, so every other offset stays valid. The old
//! packet (now unreferenced) and EXIF UserComment / ImageDescription labels are blanked in
//! place. Classic TIFF in both byte orders; BigTIFF is refused.

use crate::bytes::slice;
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::exif::{self, TAG_XMP, Tiff};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use crate::xmp;
use aigc_core::{AigcRecord, Format};

/// TIFF field type UNDEFINED, which the XMP spec names for tag 700 (BYTE is also allowed).
const UNDEFINED: u16 = 7;
const BYTE: u16 = 1;

/// The TIFF carrier.
pub struct TiffCarrier;

impl Carrier for TiffCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Tiff]
    }

    fn placement(&self) -> &'static str {
        "XMP TC260:AIGC in IFD0 tag 700 (XMLPacket)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let tiff = Tiff::parse(input, "TIFF")?;
        let ifd0 = tiff.ifd(tiff.ifd0)?;
        // (offset in the file, label), sorted into file order at the end.
        let mut found = Vec::new();
        for entry in ifd0.entries.iter().filter(|e| e.tag == TAG_XMP) {
            let value = tiff.value(entry)?;
            let at = entry.value.as_ref().map_or(0, |r| r.start);
            for l in xmp::find_labels(xmp::packet_text(value)?)? {
                found.push((
                    at,
                    FoundLabel::new(
                        format!("XMP (IFD0 tag 700) {}", l.qualified_name),
                        l.tc260,
                        l.value,
                    ),
                ));
            }
        }
        for l in exif::find_text_labels(&tiff)? {
            let placement = match l.field {
                "UserComment" => "EXIF UserComment",
                _ => "IFD0 ImageDescription",
            };
            found.push((l.text.start, FoundLabel::new(placement, false, l.value)));
        }
        found.sort_by_key(|(at, _)| *at);
        Ok(found.into_iter().map(|(_, l)| l).collect())
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let tiff = Tiff::parse(input, "TIFF")?;
        let ifd0 = tiff.ifd(tiff.ifd0)?;
        let old_xmp: Vec<_> = ifd0.entries.iter().filter(|e| e.tag == TAG_XMP).collect();
        let packet = match old_xmp.first() {
            Some(e) => xmp::merge_packet(xmp::packet_text(tiff.value(e)?)?, Some(record))?,
            None => xmp::new_packet(record),
        };
        let kind = match old_xmp.first() {
            Some(e) if e.kind == BYTE => BYTE,
            _ => UNDEFINED,
        };
        // Label text in EXIF fields and the old packets is blanked where it lies; the old
        // packets are no longer referenced, but a byte scan should not find a stale label.
        let mut patches: Vec<(usize, Vec<u8>)> = exif::find_text_labels(&tiff)?
            .into_iter()
            .map(|l| (l.text.start, l.blank))
            .collect();
        for e in &old_xmp {
            if let Some(r) = e.value.as_ref().filter(|r| r.len() > 4) {
                patches.push((r.start, vec![b' '; r.len()]));
            }
        }

        // Appended after the file: padding to a word boundary, the packet, padding, new IFD0.
        let too_big = || {
            MetaError::unsupported(
                "TIFF",
                "the labelled file would pass 4 GiB, beyond classic TIFF's 32-bit offsets",
            )
        };
        let packet_at = input.len() + input.len() % 2;
        let packet_len = u32::try_from(packet.len()).map_err(|_| too_big())?;
        let ifd_at = packet_at + packet.len() + packet.len() % 2;
        let kept = ifd0.entries.len() - old_xmp.len();
        let count = u16::try_from(kept + 1).map_err(|_| {
            MetaError::unsupported("TIFF", "IFD0 already holds 65535 entries; no room for XMP")
        })?;
        let ifd_end = ifd_at + 2 + 12 * usize::from(count) + 4;
        let (packet_offset, ifd_offset) = (
            u32::try_from(packet_at).map_err(|_| too_big())?,
            u32::try_from(ifd_at).map_err(|_| too_big())?,
        );
        u32::try_from(ifd_end).map_err(|_| too_big())?;

        // IFD0 entries are copied verbatim (inline values included), sorted by tag with the new
        // XMP entry in its place.
        let mut entries: Vec<(u16, Vec<u8>)> = Vec::with_capacity(kept + 1);
        for e in ifd0.entries.iter().filter(|e| e.tag != TAG_XMP) {
            entries.push((e.tag, slice(input, e.at, 12, "TIFF IFD entry")?.to_vec()));
        }
        let mut xmp_entry = tiff.u16_bytes(TAG_XMP).to_vec();
        xmp_entry.extend(tiff.u16_bytes(kind));
        xmp_entry.extend(tiff.u32_bytes(packet_len));
        xmp_entry.extend(tiff.u32_bytes(packet_offset));
        entries.push((TAG_XMP, xmp_entry));
        entries.sort_by_key(|(tag, _)| *tag);
        let mut ifd = tiff.u16_bytes(count).to_vec();
        for (_, bytes) in entries {
            ifd.extend(bytes);
        }
        ifd.extend(tiff.u32_bytes(ifd0.next));

        let mut out = Rewrite::new();
        out.keep(0..4).insert(tiff.u32_bytes(ifd_offset));
        exif::keep_patched(&mut out, 8..input.len(), &patches);
        out.insert(vec![0; packet_at - input.len()])
            .insert(packet.as_bytes())
            .insert(vec![0; ifd_at - packet_at - packet.len()])
            .insert(ifd);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carriers::exif::{ByteOrder, TAG_IMAGE_DESCRIPTION};
    use crate::test_support::*;

    /// A 4x2 uncompressed RGB TIFF in `order`, with `description` as ImageDescription.
    fn tiny_tiff(order: ByteOrder, description: &str) -> Vec<u8> {
        let t = Tiff {
            data: &[],
            order,
            ifd0: 8,
        };
        let pixels: Vec<u8> = (0..24).map(|i| (i * 10) as u8).collect();
        let desc = format!("{description}\0");
        let entries: [(u16, u16, u32, u32); 10] = [
            (256, 3, 1, 4),
            (257, 3, 1, 2),
            (258, 3, 3, 0), // offset patched below
            (259, 3, 1, 1),
            (262, 3, 1, 2),
            (TAG_IMAGE_DESCRIPTION, 2, desc.len() as u32, 0),
            (273, 4, 1, 0),
            (277, 3, 1, 3),
            (278, 3, 1, 2),
            (279, 4, 1, pixels.len() as u32),
        ];
        let ifd_len = 2 + entries.len() * 12 + 4;
        let bps_at = 8 + ifd_len as u32;
        let desc_at = bps_at + 6;
        let pix_at = desc_at + desc.len() as u32 + desc.len() as u32 % 2;
        let mut b = match order {
            ByteOrder::Little => b"II".to_vec(),
            ByteOrder::Big => b"MM".to_vec(),
        };
        b.extend(t.u16_bytes(42));
        b.extend(t.u32_bytes(8));
        b.extend(t.u16_bytes(entries.len() as u16));
        for (tag, kind, count, value) in entries {
            b.extend(t.u16_bytes(tag));
            b.extend(t.u16_bytes(kind));
            b.extend(t.u32_bytes(count));
            match (tag, kind, count) {
                (258, ..) => b.extend(t.u32_bytes(bps_at)),
                (TAG_IMAGE_DESCRIPTION, ..) => b.extend(t.u32_bytes(desc_at)),
                (273, ..) => b.extend(t.u32_bytes(pix_at)),
                (_, 3, 1) => {
                    b.extend(t.u16_bytes(value as u16));
                    b.extend([0, 0]);
                }
                _ => b.extend(t.u32_bytes(value)),
            }
        }
        b.extend(t.u32_bytes(0));
        for _ in 0..3 {
            b.extend(t.u16_bytes(8));
        }
        b.extend(desc.as_bytes());
        b.resize(pix_at as usize, 0);
        b.extend(pixels);
        b
    }

    #[test]
    fn tiff_write_reads_back_one_label() {
        let input = sample("image.tif");
        let out = write_and_check(&TiffCarrier, &input, &record("tif"));
        // Only the IFD0 offset changed; everything else is appended.
        assert_eq!(out[..4], input[..4]);
        assert_eq!(out[8..input.len()], input[8..]);
        let tiff = Tiff::parse(&out, "TIFF").expect("header");
        assert_eq!(tiff.ifd0 % 2, 0);
        let tags: Vec<u16> = tiff
            .ifd(tiff.ifd0)
            .expect("ifd0")
            .entries
            .iter()
            .map(|e| e.tag)
            .collect();
        assert!(tags.windows(2).all(|w| w[0] < w[1]), "{tags:?}");
        assert!(tags.contains(&TAG_XMP));
    }

    #[test]
    fn tiff_both_byte_orders_and_description_labels() {
        let theirs = record("in-description");
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let input = tiny_tiff(order, &theirs.to_wrapped_json());
            let labels = TiffCarrier.read(&input).expect("read");
            assert_eq!(labels.len(), 1, "{labels:#?}");
            assert_eq!(labels[0].placement, "IFD0 ImageDescription");
            assert_eq!(labels[0].parsed.record.as_ref(), Some(&theirs));
            let ours = record("ours");
            let out = write_and_check(&TiffCarrier, &input, &ours);
            assert_exiftool_reads_xmp_label("order.tif", &out, &ours);
            assert_eq!(
                decoded_frames_md5("in.tif", &input),
                decoded_frames_md5("out.tif", &out)
            );
        }
    }

    #[test]
    fn tiff_exiftool_reads_our_label() {
        let input = sample("image.tif");
        let rec = record("exiftool-check");
        let out = write(&TiffCarrier, &input, &rec);
        let tags = assert_exiftool_reads_xmp_label("label.tif", &out, &rec);
        assert_eq!(tags["IFD0:ImageWidth"], 320);
    }

    #[test]
    fn tiff_reads_and_merges_exiftool_written_labels() {
        let Replaced { theirs, ours, out } =
            assert_replaces_exiftool_xmp_label(&TiffCarrier, "et.tif", &sample("image.tif"));
        // The replaced packet is blanked, so no stale label is left in the bytes.
        let json = theirs.to_bare_json().replace('"', "&quot;");
        let stale = |b: &[u8]| b.windows(json.len()).any(|w| w == json.as_bytes());
        assert!(!stale(&out));
        // A label exiftool put in EXIF UserComment is read and blanked.
        let comment = format!("-EXIF:UserComment={}", theirs.to_wrapped_json());
        let input = exiftool_write("uc.tif", &sample("image.tif"), &[&comment]);
        let labels = TiffCarrier.read(&input).expect("read");
        assert_eq!(labels.len(), 1, "{labels:#?}");
        assert_eq!(labels[0].placement, "EXIF UserComment");
        write_and_check(&TiffCarrier, &input, &ours);
    }

    #[test]
    fn tiff_payload_is_untouched() {
        let input = sample("image.tif");
        let out = write(&TiffCarrier, &input, &record("payload"));
        assert_eq!(
            decoded_frames_md5("in.tif", &input),
            decoded_frames_md5("out.tif", &out)
        );
    }

    #[test]
    fn bigtiff_is_refused() {
        let big = b"II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0";
        for err in [
            TiffCarrier.read(big).map(|_| ()).unwrap_err(),
            TiffCarrier
                .write(big, &record("x"))
                .map(|_| ())
                .unwrap_err(),
        ] {
            assert!(err.to_string().contains("BigTIFF"), "{err}");
        }
    }

    #[test]
    fn tiff_hostile_input_never_panics() {
        let input = sample("image.tif");
        let labelled = write(&TiffCarrier, &input, &record("fuzz"));
        let tiny = tiny_tiff(ByteOrder::Big, r#"{"AIGC":1}"#);
        for b in [input, labelled, tiny] {
            assert_hostile_inputs_never_panic(&TiffCarrier, &b, 1500, 1);
        }
    }
}
