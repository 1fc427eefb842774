//! Ogg Vorbis and Ogg Opus: the label is the entry `AIGC=<wrapped JSON>` in the comment header,
//! the stream's second packet (`\x03vorbis` + comment list + framing bit, or `OpusTags` + list).
//! Labels are read from every Vorbis/Opus stream of the file. Writing (single-stream files only)
//! repacketises the comment header, and for Vorbis the setup header that shares its pages, into
//! new pages, renumbers the later pages of the stream and recomputes the CRC of every changed
//! page; the audio pages' payloads stay byte for byte.

use crate::bytes::{array, le_u32, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::vorbis_comment;
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

const FORMAT: &str = "Ogg";
const CAPTURE: &[u8; 4] = b"OggS";
const PAGE_HEADER_LEN: usize = 27;
const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;
/// Granule position of a page on which no packet ends.
const NO_GRANULE: u64 = u64::MAX;
/// Offsets within the page header.
const SEQ_AT: usize = 18;
const CRC_AT: usize = 22;

/// The Ogg Vorbis / Ogg Opus carrier.
pub struct OggCarrier;

/// The Ogg CRC-32 table: polynomial 0x04C11DB7, MSB first, unlike zlib's reflected CRC.
static CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04C1_1DB7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// Continues an Ogg CRC (initial value 0, no final xor) over `data`.
fn crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)];
    }
    crc
}

/// A page's CRC, with the header's CRC field taken as zero.
fn page_crc(header: &[u8], rest: &[u8]) -> u32 {
    let mut crc = crc_update(0, header.get(..CRC_AT).unwrap_or_default());
    crc = crc_update(crc, &[0; 4]);
    crc = crc_update(crc, header.get(CRC_AT + 4..).unwrap_or_default());
    crc_update(crc, rest)
}

/// One page as found.
struct Page {
    start: usize,
    end: usize,
    flags: u8,
    serial: u32,
    seq: u32,
    lacing: Range<usize>,
    body: Range<usize>,
}

fn pages(input: &[u8]) -> Result<Vec<Page>, MetaError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < input.len() {
        let header: [u8; PAGE_HEADER_LEN] = array(input, at, "Ogg page header")?;
        if &header[..4] != CAPTURE {
            return Err(MetaError::malformed(
                FORMAT,
                format!("no OggS capture pattern at byte {at}"),
            ));
        }
        if header[4] != 0 {
            return Err(MetaError::unsupported(
                FORMAT,
                format!("page version {} at byte {at}", header[4]),
            ));
        }
        let nseg = usize::from(header[26]);
        let lacing_at = at + PAGE_HEADER_LEN;
        let lacing = slice(input, lacing_at, nseg, "Ogg lacing table")?;
        let body_len: usize = lacing.iter().map(|v| usize::from(*v)).sum();
        let body_at = lacing_at + nseg;
        slice(input, body_at, body_len, "Ogg page body")?;
        let end = body_at + body_len;
        out.push(Page {
            start: at,
            end,
            flags: header[5],
            serial: le_u32(&header, 14, "Ogg serial number")?,
            seq: le_u32(&header, SEQ_AT, "Ogg page sequence number")?,
            lacing: lacing_at..body_at,
            body: body_at..end,
        });
        at = end;
    }
    if out.is_empty() {
        return Err(MetaError::malformed(FORMAT, "no Ogg page"));
    }
    Ok(out)
}

/// A packet assembled from its pages.
struct Packet {
    data: Vec<u8>,
    /// Index (into the page list) of the page it ends on.
    last_page: usize,
    /// Whether it is the last packet finishing on that page, nothing following on it.
    ends_page: bool,
}

/// The first packets of one logical stream.
struct Stream {
    serial: u32,
    /// Where its first page starts.
    start: usize,
    packets: Vec<Packet>,
    /// A packet still open at the end of the last page seen.
    pending: Option<Vec<u8>>,
}

/// The first `max` packets of every logical stream, in order of their first pages, in one pass
/// over the pages. A beginning-of-stream page starts a new stream even if its serial was used.
fn streams(input: &[u8], pages: &[Page], max: usize) -> Result<Vec<Stream>, MetaError> {
    let mut out: Vec<Stream> = Vec::new();
    let mut by_serial = std::collections::HashMap::new();
    for (index, page) in pages.iter().enumerate() {
        let known = by_serial.get(&page.serial).copied();
        let s = match known {
            Some(s) if page.flags & FLAG_BOS == 0 => s,
            _ => {
                by_serial.insert(page.serial, out.len());
                out.push(Stream {
                    serial: page.serial,
                    start: page.start,
                    packets: Vec::new(),
                    pending: None,
                });
                out.len() - 1
            }
        };
        let Some(stream) = out.get_mut(s) else {
            continue;
        };
        if stream.packets.len() >= max {
            continue;
        }
        let continued = page.flags & FLAG_CONTINUED != 0;
        if continued != stream.pending.is_some() {
            return Err(MetaError::malformed(
                FORMAT,
                format!(
                    "page {} of stream {:#x} breaks packet continuation",
                    page.seq, page.serial
                ),
            ));
        }
        let lacing = input.get(page.lacing.clone()).unwrap_or_default();
        let mut at = page.body.start;
        let mut current = stream.pending.take().unwrap_or_default();
        for (i, &v) in lacing.iter().enumerate() {
            let len = usize::from(v);
            current.extend_from_slice(slice(input, at, len, "Ogg packet segment")?);
            at += len;
            if v < 255 {
                stream.packets.push(Packet {
                    data: std::mem::take(&mut current),
                    last_page: index,
                    ends_page: i + 1 == lacing.len(),
                });
                if stream.packets.len() >= max {
                    break;
                }
            }
        }
        // A packet still open at the end of the page continues on the next one.
        if stream.packets.len() < max && lacing.last().is_some_and(|v| *v == 255) {
            stream.pending = Some(current);
        }
    }
    Ok(out)
}

/// The codec of a stream, from its first packet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Vorbis,
    Opus,
}

impl Codec {
    fn of(first_packet: &[u8]) -> Option<Self> {
        if first_packet.starts_with(b"\x01vorbis") {
            Some(Codec::Vorbis)
        } else if first_packet.starts_with(b"OpusHead") {
            Some(Codec::Opus)
        } else {
            None
        }
    }

    /// The comment header's magic.
    fn comment_magic(self) -> &'static [u8] {
        match self {
            Codec::Vorbis => b"\x03vorbis",
            Codec::Opus => b"OpusTags",
        }
    }

    /// How many header packets precede the audio.
    fn header_packets(self) -> usize {
        match self {
            Codec::Vorbis => 3,
            Codec::Opus => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Vorbis => "Vorbis comment",
            Codec::Opus => "OpusTags",
        }
    }
}

/// The comment list inside a comment header packet.
fn comment_list(codec: Codec, packet: &[u8]) -> Result<vorbis_comment::CommentList<'_>, MetaError> {
    let magic = codec.comment_magic();
    let list = packet.strip_prefix(magic).ok_or_else(|| {
        MetaError::malformed(
            FORMAT,
            format!("second packet is not a {} header", codec.name()),
        )
    })?;
    vorbis_comment::parse(list, codec.name())
}

/// Lays `packets` out on new pages of stream `serial`, numbered from `first_seq`: at most 255
/// lacing values per page, granule 0 where a header packet ends (-1 where none does).
fn paginate(packets: &[&[u8]], serial: u32, first_seq: u32, eos: bool) -> Vec<Vec<u8>> {
    // (packet index, segment length, whether the segment ends its packet)
    let mut segments = Vec::new();
    for (p, packet) in packets.iter().enumerate() {
        let full = packet.len() / 255;
        segments.extend(std::iter::repeat_n((p, 255u8, false), full));
        segments.push((p, (packet.len() % 255) as u8, true));
    }
    let mut offsets = vec![0usize; packets.len()];
    let chunks: Vec<_> = segments.chunks(255).collect();
    let mut pages = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let starts_packet = chunk.first().is_some_and(|(p, _, _)| offsets[*p] == 0);
        let ends_packet = chunk.iter().any(|(_, _, last)| *last);
        let mut flags = if starts_packet { 0 } else { FLAG_CONTINUED };
        if eos && i + 1 == chunks.len() {
            flags |= FLAG_EOS;
        }
        let granule = if ends_packet { 0 } else { NO_GRANULE };
        let mut page = Vec::with_capacity(PAGE_HEADER_LEN + 255 + 255 * 255);
        page.extend_from_slice(CAPTURE);
        page.extend_from_slice(&[0, flags]);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&serial.to_le_bytes());
        page.extend_from_slice(&first_seq.wrapping_add(i as u32).to_le_bytes());
        page.extend_from_slice(&[0; 4]);
        page.push(chunk.len() as u8);
        page.extend(chunk.iter().map(|(_, len, _)| *len));
        for &(p, len, _) in chunk.iter() {
            let len = usize::from(len);
            let from = offsets[p];
            page.extend_from_slice(packets[p].get(from..from + len).unwrap_or_default());
            offsets[p] = from + len;
        }
        let crc = page_crc(&page, &[]);
        page[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        pages.push(page);
    }
    pages
}

impl Carrier for OggCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::OggVorbis, Format::OggOpus]
    }

    fn placement(&self) -> &'static str {
        "Vorbis comment AIGC in the comment header (Vorbis) or OpusTags (Opus)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let pages = pages(input)?;
        let mut found = Vec::new();
        let mut audio_streams = 0;
        // Every stream of the file: multiplexed and chained ones too.
        for stream in streams(input, &pages, 2)? {
            let Some(codec) = stream.packets.first().and_then(|p| Codec::of(&p.data)) else {
                continue;
            };
            audio_streams += 1;
            let Some(comment) = stream.packets.get(1) else {
                return Err(MetaError::truncated(
                    format!("Ogg {} header of stream {:#x}", codec.name(), stream.serial),
                    stream.start,
                ));
            };
            let list = comment_list(codec, &comment.data)?;
            for l in vorbis_comment::labels(&list) {
                found.push(FoundLabel::new(
                    format!("Ogg {} {}", codec.name(), l.name),
                    audio_streams == 1 && l.is_primary_field(),
                    l.value,
                ));
            }
        }
        if audio_streams == 0 {
            return Err(MetaError::unsupported(FORMAT, "no Vorbis or Opus stream"));
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let pages = pages(input)?;
        let first = pages
            .first()
            .ok_or_else(|| MetaError::malformed(FORMAT, "no Ogg page"))?;
        let serial = first.serial;
        if pages.iter().any(|p| p.serial != serial)
            || pages.iter().skip(1).any(|p| p.flags & FLAG_BOS != 0)
        {
            return Err(MetaError::unsupported(
                FORMAT,
                "multiplexed or chained Ogg streams (more than one logical stream) are read only",
            ));
        }
        if first.flags & FLAG_BOS == 0 {
            return Err(MetaError::malformed(
                FORMAT,
                "first page lacks the beginning-of-stream flag",
            ));
        }
        // Three packets cover the headers of both codecs (Opus has two).
        let mut headers = streams(input, &pages, 3)?
            .into_iter()
            .next()
            .map(|s| s.packets)
            .unwrap_or_default();
        let codec = headers
            .first()
            .and_then(|p| Codec::of(&p.data))
            .ok_or_else(|| {
                MetaError::unsupported(FORMAT, "the stream is neither Vorbis nor Opus")
            })?;
        headers.truncate(codec.header_packets());
        let [id, comment, rest @ ..] = headers.as_slice() else {
            return Err(MetaError::truncated(
                format!("Ogg {} headers", codec.name()),
                0,
            ));
        };
        if rest.len() + 2 != codec.header_packets() {
            return Err(MetaError::truncated(
                format!("Ogg {} headers", codec.name()),
                0,
            ));
        }
        if id.last_page != 0 || !id.ends_page {
            return Err(MetaError::malformed(
                FORMAT,
                "the identification header is not alone on the first page",
            ));
        }
        let last_header = rest.last().unwrap_or(comment);
        if !last_header.ends_page {
            return Err(MetaError::unsupported(
                FORMAT,
                "audio data shares a page with the last header packet",
            ));
        }
        let header_pages = last_header.last_page;
        // Rebuild the comment header: magic, new list, and whatever followed the list (the
        // Vorbis framing bit, or Opus's binary extra data) as it was.
        let list = comment_list(codec, &comment.data)?;
        let magic = codec.comment_magic();
        let after_list = comment
            .data
            .get(magic.len() + list.len..)
            .unwrap_or_default();
        let mut new_comment = magic.to_vec();
        new_comment.extend(vorbis_comment::rebuild(
            &list,
            Some(&record.to_wrapped_json()),
        )?);
        if codec == Codec::Vorbis && after_list.is_empty() {
            new_comment.push(1);
        } else {
            new_comment.extend_from_slice(after_list);
        }
        let mut new_packets: Vec<&[u8]> = vec![&new_comment];
        new_packets.extend(rest.iter().map(|p| p.data.as_slice()));
        let eos = pages
            .get(header_pages)
            .is_some_and(|p| p.flags & FLAG_EOS != 0);
        let new_pages = paginate(&new_packets, serial, first.seq.wrapping_add(1), eos);
        // Later pages move by the change in the number of header pages (modulo 2^32).
        let shift = (new_pages.len() as u32).wrapping_sub(header_pages as u32);
        let mut out = Rewrite::new();
        out.keep(first.start..first.end);
        for p in &new_pages {
            out.insert(p);
        }
        for page in pages.iter().skip(header_pages + 1) {
            if shift == 0 {
                out.keep(page.start..page.end);
                continue;
            }
            let mut header: [u8; PAGE_HEADER_LEN] = array(input, page.start, "Ogg page header")?;
            header[SEQ_AT..SEQ_AT + 4].copy_from_slice(&page.seq.wrapping_add(shift).to_le_bytes());
            let rest = input
                .get(page.lacing.start..page.end)
                .ok_or_else(|| MetaError::truncated("Ogg page", page.start))?;
            let crc = page_crc(&header, rest);
            header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
            out.insert(header);
            out.keep(page.lacing.start..page.end);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLES: [(&str, &str); 2] = [("audio.ogg", "ogg"), ("audio.opus", "opus")];

    /// The payload of every page after the header pages, which must never change.
    fn audio_pages(b: &[u8]) -> Vec<Vec<u8>> {
        let pages = pages(b).expect("pages");
        let mut headers = streams(b, &pages, 3).expect("streams").remove(0).packets;
        let codec = Codec::of(&headers[0].data).expect("codec");
        headers.truncate(codec.header_packets());
        let last = headers.last().expect("headers").last_page;
        pages[last + 1..]
            .iter()
            .map(|p| b[p.lacing.start..p.end].to_vec())
            .collect()
    }

    /// Asserts every page's stored CRC is right and the sequence numbers count up from 0.
    fn assert_pages_consistent(b: &[u8]) {
        for (i, p) in pages(b).expect("pages").iter().enumerate() {
            let header = &b[p.start..p.lacing.start];
            let stored =
                u32::from_le_bytes(header[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
            assert_eq!(
                page_crc(header, &b[p.lacing.start..p.end]),
                stored,
                "CRC of page {i}"
            );
            assert_eq!(p.seq, i as u32);
        }
    }

    #[test]
    fn ogg_crc_matches_the_samples() {
        for (name, _) in SAMPLES {
            assert_pages_consistent(&sample(name));
        }
    }

    #[test]
    fn ogg_write_read_one_label_and_audio_pages_untouched() {
        for (name, _) in SAMPLES {
            let input = sample(name);
            let record = record("ogg-1");
            let out = write_and_check_idempotent(&OggCarrier, &input, &record);
            assert_pages_consistent(&out);
            assert_eq!(audio_pages(&out), audio_pages(&input), "{name}");
            let found = OggCarrier.read(&out).expect("read");
            let expected = if name.ends_with("ogg") {
                "Ogg Vorbis comment AIGC"
            } else {
                "Ogg OpusTags AIGC"
            };
            assert_eq!(found[0].placement, expected);
        }
    }

    #[test]
    fn ogg_independent_tools_read_our_label() {
        for (name, ext) in SAMPLES {
            let input = sample(name);
            let record = record("ogg-tools");
            let out = write_and_check_idempotent(&OggCarrier, &input, &record);
            let path = temp_file(&format!("labelled.{ext}"), &out);
            let exif = exiftool(&path, &[]);
            assert_eq!(exif["Vorbis:Aigc"], record.to_wrapped_json(), "{exif}");
            assert_eq!(exif["Vorbis:Vendor"], "Lavf59.27.100");
            let probe = ffprobe_tags(&path);
            assert_eq!(
                probe["streams"][0]["tags"]["AIGC"],
                record.to_wrapped_json(),
                "{probe}"
            );
            assert!(
                probe["streams"][0]["tags"]["encoder"].is_string(),
                "{probe}"
            );
            assert_same_media(&temp_file(&format!("in.{ext}"), &input), &path);
        }
    }

    #[test]
    fn ogg_ffmpeg_labels_are_read_and_replaced() {
        for (name, ext) in SAMPLES {
            let old = record("by-ffmpeg").to_wrapped_json();
            let labelled = ffmpeg_labelled(&format!("src.{ext}"), &sample(name), &old, &[]);
            let found = OggCarrier.read(&labelled).expect("read");
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].value, old);
            let record = record("replaced");
            let out = write_and_check_idempotent(&OggCarrier, &labelled, &record);
            assert_pages_consistent(&out);
            let path = temp_file(&format!("replaced.{ext}"), &out);
            assert_eq!(
                exiftool(&path, &[])["Vorbis:Aigc"],
                record.to_wrapped_json()
            );
            assert_same_media(&temp_file(&format!("l.{ext}"), &labelled), &path);
        }
    }

    #[test]
    fn ogg_large_comment_spans_pages_and_renumbers_later_pages() {
        for (name, ext) in SAMPLES {
            let input = sample(name);
            // Over 255 * 255 bytes: the comment header needs two pages more than before.
            let record = record(&"P".repeat(70_000));
            let out = write_and_check_idempotent(&OggCarrier, &input, &record);
            assert_pages_consistent(&out);
            assert!(pages(&out).expect("pages").len() > pages(&input).expect("pages").len());
            assert_eq!(audio_pages(&out), audio_pages(&input));
            let path = temp_file(&format!("large.{ext}"), &out);
            assert_decodes(&path);
            assert_eq!(
                streamhash(&path),
                streamhash(&temp_file(&format!("in.{ext}"), &input))
            );
            let probe = ffprobe_tags(&path);
            assert_eq!(
                probe["streams"][0]["tags"]["AIGC"],
                record.to_wrapped_json()
            );
            // And back to a small one: the page count returns to the original.
            let small =
                write_and_check_idempotent(&OggCarrier, &out, &crate::test_support::record("s"));
            assert_eq!(
                pages(&small).expect("pages").len(),
                pages(&input).expect("pages").len()
            );
            assert_pages_consistent(&small);
        }
    }

    #[test]
    fn ogg_chained_streams_are_read_but_not_written() {
        let vorbis = OggCarrier
            .write(&sample("audio.ogg"), &record("a"))
            .expect("write")
            .to_vec(&sample("audio.ogg"));
        let opus = sample("audio.opus");
        let opus = OggCarrier
            .write(&opus, &record("b"))
            .expect("write")
            .to_vec(&opus);
        let chained = [vorbis, opus].concat();
        let found = OggCarrier.read(&chained).expect("read");
        let places: Vec<_> = found
            .iter()
            .map(|l| (l.placement.as_str(), l.primary))
            .collect();
        assert_eq!(
            places,
            [
                ("Ogg Vorbis comment AIGC", true),
                ("Ogg OpusTags AIGC", false)
            ]
        );
        let err = OggCarrier
            .write(&chained, &record("c"))
            .expect_err("unsupported");
        assert!(
            err.to_string().contains("more than one logical stream"),
            "{err}"
        );
    }

    #[test]
    fn ogg_hostile_input_never_panics() {
        for (name, _) in SAMPLES {
            let input = sample(name);
            let labelled = write(&OggCarrier, &input, &record("f"));
            HostileInputs::head_first(1500, 1).assert_never_panic(&OggCarrier, &labelled);
        }
        assert!(OggCarrier.read(b"OggS").is_err());
        assert!(OggCarrier.read(b"").is_err());
    }
}
