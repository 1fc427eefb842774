//! MP3: the label is an ID3v2 `TXXX` frame with description `AIGC` holding the wrapped JSON
//! (UTF-8 in v2.4; Latin-1 or UTF-16 with BOM in v2.3). Every `TXXX` whose description contains
//! `AIGC` and every `COMM` whose description names `AIGC` or whose text is a label is read, in
//! all text encodings; v2.2 `TXX`/`COM` are read too. Writing rebuilds the tag keeping every
//! other frame byte for byte and reusing the padding when the new frames fit, so the audio does
//! not move. The extended header, if any, is dropped on write (its CRC and padding size would be
//! stale). v2.2 tags and tags with tag-level unsynchronisation are read but not written.

use crate::bytes::{MAX_INFLATED, array, be_u32, inflate_zlib, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format, LabelForm, parse_label_value};
use std::borrow::Cow;
use std::ops::Range;

const FORMAT: &str = "ID3v2";
const HEADER_LEN: usize = 10;
/// The largest value a 28-bit syncsafe size can hold.
const MAX_SYNCSAFE: usize = (1 << 28) - 1;
/// The TXXX description we write.
const LABEL_DESCRIPTION: &str = "AIGC";

/// Tag header flags.
const FLAG_UNSYNC: u8 = 0x80;
const FLAG_EXTENDED: u8 = 0x40;
const FLAG_FOOTER: u8 = 0x10;

/// The MP3 carrier.
pub struct Mp3Carrier;

/// A 28-bit syncsafe integer (7 bits per byte), or `None` when a byte has its high bit set.
fn syncsafe(b: [u8; 4]) -> Option<usize> {
    if b.iter().any(|x| x & 0x80 != 0) {
        return None;
    }
    Some(b.iter().fold(0usize, |acc, x| (acc << 7) | *x as usize))
}

fn to_syncsafe(n: usize) -> Result<[u8; 4], MetaError> {
    if n > MAX_SYNCSAFE {
        return Err(MetaError::unsupported(
            FORMAT,
            format!("{n} bytes do not fit a 28-bit syncsafe size"),
        ));
    }
    Ok([
        (n >> 21) as u8 & 0x7F,
        (n >> 14) as u8 & 0x7F,
        (n >> 7) as u8 & 0x7F,
        n as u8 & 0x7F,
    ])
}

/// Undoes unsynchronisation: every `FF 00` becomes `FF`.
fn deunsync(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut prev_ff = false;
    for &x in b {
        if !(prev_ff && x == 0) {
            out.push(x);
        }
        prev_ff = x == 0xFF;
    }
    out
}

/// One frame of a tag.
struct Frame {
    /// The whole frame (header and data) within the tag's frame area.
    raw: Range<usize>,
    /// The label it holds, if any.
    label: Option<FoundLabel>,
}

/// One ID3v2 tag at the start of the file.
struct Tag {
    start: usize,
    end: usize,
    major: u8,
    flags: u8,
    /// The size field: bytes between the header and the footer (frames, padding, ext header).
    size: usize,
    /// Where the frame area starts in the input, when its bytes are the input's (not when a
    /// v2.3 tag was de-unsynchronised as a whole).
    frames_at: Option<usize>,
    frames: Vec<Frame>,
}

impl Tag {
    fn has_labels(&self) -> bool {
        self.frames.iter().any(|f| f.label.is_some())
    }
}

/// Every ID3v2 tag at the start of `input` (writers sometimes stack several).
struct Id3Tags {
    tags: Vec<Tag>,
}

impl Id3Tags {
    fn parse(input: &[u8]) -> Result<Self, MetaError> {
        let mut tags = Vec::new();
        let mut at = 0usize;
        while input.get(at..).is_some_and(|rest| rest.starts_with(b"ID3")) {
            let tag = parse_tag(input, at)?;
            at = tag.end;
            tags.push(tag);
        }
        Ok(Self { tags })
    }

    /// Where the data after the tags starts.
    fn end(&self) -> usize {
        self.tags.last().map_or(0, |t| t.end)
    }

    fn labels(&self) -> impl Iterator<Item = &FoundLabel> {
        self.tags
            .iter()
            .flat_map(|t| t.frames.iter().filter_map(|f| f.label.as_ref()))
    }

    /// Appends the tags to `out` with every label frame removed and, when `label` is given, a
    /// new `TXXX:AIGC` in the first tag. Tags without labels that need no change are kept as is.
    fn write_to(
        &self,
        input: &[u8],
        label: Option<&str>,
        out: &mut Rewrite,
    ) -> Result<(), MetaError> {
        for (i, tag) in self.tags.iter().enumerate() {
            let new_label = if i == 0 { label } else { None };
            if new_label.is_none() && !tag.has_labels() {
                out.keep(tag.start..tag.end);
            } else {
                rebuild_tag(input, tag, new_label, out)?;
            }
        }
        Ok(())
    }
}

fn parse_tag(input: &[u8], start: usize) -> Result<Tag, MetaError> {
    let header: [u8; HEADER_LEN] = array(input, start, "ID3v2 header")?;
    let major = header[3];
    let flags = header[5];
    let size = syncsafe([header[6], header[7], header[8], header[9]])
        .ok_or_else(|| MetaError::malformed(FORMAT, "tag size is not syncsafe"))?;
    if !(2..=4).contains(&major) {
        return Err(MetaError::unsupported(
            FORMAT,
            format!("ID3v2.{major} tags (only 2.2, 2.3 and 2.4 exist)"),
        ));
    }
    let body_at = start + HEADER_LEN;
    let body = slice(input, body_at, size, "ID3v2 tag")?;
    let footer = if major == 4 && flags & FLAG_FOOTER != 0 {
        let f: [u8; HEADER_LEN] = array(input, body_at + size, "ID3v2 footer")?;
        if &f[..3] != b"3DI" {
            return Err(MetaError::malformed(
                FORMAT,
                "footer flag set but no 3DI footer",
            ));
        }
        HEADER_LEN
    } else {
        0
    };
    let end = body_at + size + footer;
    if major == 2 && flags & 0x40 != 0 {
        return Err(MetaError::unsupported(FORMAT, "compressed ID3v2.2 tag"));
    }
    // v2.3 unsynchronises the whole tag body; v2.2 too. v2.4 does it per frame.
    let whole_unsync = major < 4 && flags & FLAG_UNSYNC != 0;
    let body: Cow<[u8]> = if whole_unsync {
        Cow::Owned(deunsync(body))
    } else {
        Cow::Borrowed(body)
    };
    let ext_len = if major >= 3 && flags & FLAG_EXTENDED != 0 {
        let raw: [u8; 4] = array(&body, 0, "ID3v2 extended header size")?;
        let len = if major == 3 {
            // v2.3 counts the header without its own 4-byte size.
            (u32::from_be_bytes(raw) as usize).checked_add(4)
        } else {
            syncsafe(raw)
        }
        .ok_or_else(|| MetaError::malformed(FORMAT, "bad extended header size"))?;
        slice(&body, 0, len, "ID3v2 extended header")?;
        len
    } else {
        0
    };
    let frames = parse_frames(&body, ext_len, major, flags & FLAG_UNSYNC != 0)?;
    Ok(Tag {
        start,
        end,
        major,
        flags,
        size,
        frames_at: (!whole_unsync).then_some(body_at),
        frames,
    })
}

fn parse_frames(
    body: &[u8],
    mut at: usize,
    major: u8,
    tag_unsync: bool,
) -> Result<Vec<Frame>, MetaError> {
    let (id_len, header_len) = if major == 2 { (3, 6) } else { (4, 10) };
    let mut frames = Vec::new();
    while let Some(header) = body.get(at..at + header_len) {
        if header[0] == 0 {
            break; // padding
        }
        let id = &header[..id_len];
        if !id
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(MetaError::malformed(
                FORMAT,
                format!(
                    "bad frame id {:?} at byte {at} of the tag",
                    String::from_utf8_lossy(id)
                ),
            ));
        }
        let size = match major {
            2 => {
                usize::from(header[3]) << 16 | usize::from(header[4]) << 8 | usize::from(header[5])
            }
            3 => be_u32(header, 4, "ID3v2.3 frame size")? as usize,
            _ => syncsafe([header[4], header[5], header[6], header[7]]).ok_or_else(|| {
                MetaError::malformed(FORMAT, format!("frame size at byte {at} is not syncsafe"))
            })?,
        };
        let data_at = at + header_len;
        let data = slice(body, data_at, size, "ID3v2 frame")?;
        let frame_flags = if major == 2 {
            [0, 0]
        } else {
            [header[8], header[9]]
        };
        let label = frame_label(id, frame_flags, data, major, tag_unsync)?;
        let end = data_at + size;
        frames.push(Frame {
            raw: at..end,
            label,
        });
        at = end;
    }
    Ok(frames)
}

/// The frame's data with grouping/encryption/length prefixes, unsynchronisation and compression
/// undone; `None` for encrypted frames, which cannot be read.
fn frame_content(
    flags: [u8; 2],
    data: &[u8],
    major: u8,
    tag_unsync: bool,
) -> Result<Option<Vec<u8>>, MetaError> {
    let format = flags[1];
    let (compressed, encrypted, skip, unsync) = match major {
        3 => {
            let c = format & 0x80 != 0;
            let e = format & 0x40 != 0;
            let g = format & 0x20 != 0;
            (
                c,
                e,
                4 * usize::from(c) + usize::from(e) + usize::from(g),
                false,
            )
        }
        4 => {
            let g = format & 0x40 != 0;
            let e = format & 0x04 != 0;
            let dli = format & 0x01 != 0;
            let u = format & 0x02 != 0 || tag_unsync;
            (
                format & 0x08 != 0,
                e,
                usize::from(g) + usize::from(e) + 4 * usize::from(dli),
                u,
            )
        }
        _ => (false, false, 0, false),
    };
    if encrypted {
        return Ok(None);
    }
    let rest = data
        .get(skip..)
        .ok_or_else(|| MetaError::truncated("ID3v2 frame flag data", skip))?;
    let rest = if unsync {
        deunsync(rest)
    } else {
        rest.to_vec()
    };
    if compressed {
        return inflate_zlib(&rest, MAX_INFLATED, "ID3v2 compressed frame").map(Some);
    }
    Ok(Some(rest))
}

/// Splits at the first terminator of the encoding (one NUL, or an aligned NUL pair for UTF-16).
fn split_terminated(encoding: u8, b: &[u8]) -> (&[u8], &[u8]) {
    if matches!(encoding, 1 | 2) {
        let pos = (0..b.len() / 2)
            .map(|i| i * 2)
            .find(|&i| b.get(i..i + 2) == Some(&[0, 0]));
        match pos {
            Some(i) => (
                b.get(..i).unwrap_or_default(),
                b.get(i + 2..).unwrap_or_default(),
            ),
            None => (b, &[]),
        }
    } else {
        match b.iter().position(|c| *c == 0) {
            Some(i) => (
                b.get(..i).unwrap_or_default(),
                b.get(i + 1..).unwrap_or_default(),
            ),
            None => (b, &[]),
        }
    }
}

/// Decodes ID3v2 text in `encoding` (0 Latin-1, 1 UTF-16 with BOM, 2 UTF-16BE, 3 UTF-8).
fn decode_text(encoding: u8, b: &[u8]) -> String {
    let utf16 = |b: &[u8], big_endian: bool| {
        let units = b.chunks_exact(2).map(|c| {
            let pair = [c[0], c[1]];
            if big_endian {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            }
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    let text = match encoding {
        0 => b.iter().map(|&c| c as char).collect(),
        1 => match b {
            [0xFE, 0xFF, rest @ ..] => utf16(rest, true),
            [0xFF, 0xFE, rest @ ..] => utf16(rest, false),
            _ => utf16(b, false),
        },
        2 => utf16(b, true),
        _ => String::from_utf8_lossy(b).into_owned(),
    };
    // Writers often end values with one or more terminators.
    text.trim_end_matches('\0').to_string()
}

fn contains_aigc(s: &str) -> bool {
    s.to_ascii_uppercase().contains("AIGC")
}

/// The label a frame holds: a `TXXX`/`TXX` whose description contains `AIGC`, or a
/// `COMM`/`COM` whose description does or whose text is a label.
fn frame_label(
    id: &[u8],
    flags: [u8; 2],
    data: &[u8],
    major: u8,
    tag_unsync: bool,
) -> Result<Option<FoundLabel>, MetaError> {
    let is_txxx = id == b"TXXX" || id == b"TXX";
    let is_comm = id == b"COMM" || id == b"COM";
    if !is_txxx && !is_comm {
        return Ok(None);
    }
    let Some(content) = frame_content(flags, data, major, tag_unsync)? else {
        return Ok(None);
    };
    let Some((&encoding, rest)) = content.split_first() else {
        return Ok(None);
    };
    // COMM has a 3-byte language code before the description.
    let rest = if is_comm {
        rest.get(3..).unwrap_or_default()
    } else {
        rest
    };
    let (description, value) = split_terminated(encoding, rest);
    let description = decode_text(encoding, description);
    let value = decode_text(encoding, value);
    let id = String::from_utf8_lossy(id);
    let is_label = contains_aigc(&description)
        || (is_comm
            && contains_aigc(&value)
            && parse_label_value(&value).form != LabelForm::Unrecognised);
    if !is_label {
        return Ok(None);
    }
    let primary = id == "TXXX" && description.eq_ignore_ascii_case(LABEL_DESCRIPTION);
    Ok(Some(FoundLabel::new(
        format!("ID3v2.{major} {id}:{description}"),
        primary,
        value,
    )))
}

/// A `TXXX:AIGC` frame for ID3v2.`major` holding `value`.
fn label_frame(major: u8, value: &str) -> Result<Vec<u8>, MetaError> {
    let mut data = Vec::with_capacity(value.len() * 2 + 16);
    if major >= 4 {
        data.push(3);
        data.extend_from_slice(LABEL_DESCRIPTION.as_bytes());
        data.push(0);
        data.extend_from_slice(value.as_bytes());
    } else if value.is_ascii() {
        data.push(0);
        data.extend_from_slice(LABEL_DESCRIPTION.as_bytes());
        data.push(0);
        data.extend_from_slice(value.as_bytes());
    } else {
        // v2.3 has no UTF-8: UTF-16 with a byte-order mark before each string.
        data.push(1);
        for (i, s) in [LABEL_DESCRIPTION, value].into_iter().enumerate() {
            data.extend_from_slice(&[0xFF, 0xFE]);
            data.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
            if i == 0 {
                data.extend_from_slice(&[0, 0]);
            }
        }
    }
    let size = if major >= 4 {
        to_syncsafe(data.len())?
    } else {
        u32::try_from(data.len())
            .map_err(|_| MetaError::unsupported(FORMAT, "label over 4 GiB"))?
            .to_be_bytes()
    };
    let mut frame = Vec::with_capacity(data.len() + HEADER_LEN);
    frame.extend_from_slice(b"TXXX");
    frame.extend_from_slice(&size);
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&data);
    Ok(frame)
}

/// Padding left after the frames when a tag is created or grown: a later re-label fits without
/// moving the audio, and exiftool stops warning "Invalid ID3 frame size" when a large last frame
/// is followed directly by audio (it checks the next frame header to tell syncsafe sizes apart).
const GROWTH_PADDING: usize = 1024;

/// A new v2.4 tag holding only the label frame, and padding.
fn new_tag(value: &str) -> Result<Vec<u8>, MetaError> {
    let frame = label_frame(4, value)?;
    let mut tag = Vec::with_capacity(frame.len() + HEADER_LEN + GROWTH_PADDING);
    tag.extend_from_slice(b"ID3\x04\x00\x00");
    tag.extend_from_slice(&to_syncsafe(frame.len() + GROWTH_PADDING)?);
    tag.extend_from_slice(&frame);
    tag.resize(tag.len() + GROWTH_PADDING, 0);
    Ok(tag)
}

/// Appends `tag` rebuilt: label frames removed, `label` (if any) in place of the first of them
/// or after the last frame, other frames kept byte for byte, padding reused when it fits.
fn rebuild_tag(
    input: &[u8],
    tag: &Tag,
    label: Option<&str>,
    out: &mut Rewrite,
) -> Result<(), MetaError> {
    if tag.major == 2 {
        return Err(MetaError::unsupported(
            FORMAT,
            "ID3v2.2 tags are read only; convert the tag to v2.3 or v2.4 first",
        ));
    }
    let Some(frames_at) = tag.frames_at.filter(|_| tag.flags & FLAG_UNSYNC == 0) else {
        return Err(MetaError::unsupported(
            FORMAT,
            "writing into a tag with tag-level unsynchronisation",
        ));
    };
    let new_frame = label.map(|v| label_frame(tag.major, v)).transpose()?;
    // The new tag's frames as input ranges and the one inserted frame, in order.
    let mut pieces: Vec<Result<Range<usize>, &[u8]>> = Vec::with_capacity(tag.frames.len() + 1);
    let mut placed = false;
    for f in &tag.frames {
        if f.label.is_some() {
            if let (Some(n), false) = (&new_frame, placed) {
                pieces.push(Err(n));
                placed = true;
            }
        } else {
            // `raw` lies within the tag body, which lies within the input.
            pieces.push(Ok(frames_at + f.raw.start..frames_at + f.raw.end));
        }
    }
    if let (Some(n), false) = (&new_frame, placed) {
        pieces.push(Err(n));
    }
    let frames_len: usize = pieces
        .iter()
        .map(|p| match p {
            Ok(r) => r.len(),
            Err(b) => b.len(),
        })
        .sum();
    let has_footer = tag.major == 4 && tag.flags & FLAG_FOOTER != 0;
    // A tag with a footer must not have padding; otherwise keep the size so the audio stays put.
    let size = if has_footer {
        frames_len
    } else if frames_len > tag.size {
        frames_len + GROWTH_PADDING
    } else {
        tag.size
    };
    let flags = tag.flags & !FLAG_EXTENDED;
    let mut header = vec![b'I', b'D', b'3', tag.major, 0, flags];
    header[4] = input.get(tag.start + 4).copied().unwrap_or(0);
    header.extend_from_slice(&to_syncsafe(size)?);
    out.insert(&header);
    for p in pieces {
        match p {
            Ok(r) => out.keep(r),
            Err(b) => out.insert(b),
        };
    }
    out.insert(vec![0u8; size - frames_len]);
    if has_footer {
        header[..3].copy_from_slice(b"3DI");
        out.insert(&header);
    }
    Ok(())
}

/// Whether `b` starts with an MPEG audio frame sync (11 set bits).
fn starts_with_frame_sync(b: &[u8]) -> bool {
    matches!(b, [0xFF, second, ..] if second & 0xE0 == 0xE0)
}

/// Labels in ID3v2 tags at the start of a file, and where the tags end (used by FLAC too).
pub(crate) fn id3_prefix_labels(input: &[u8]) -> Result<(Vec<FoundLabel>, usize), MetaError> {
    let tags = Id3Tags::parse(input)?;
    Ok((tags.labels().cloned().collect(), tags.end()))
}

/// Appends the ID3v2 tags at the start of `input` with their labels removed (used by FLAC).
pub(crate) fn id3_prefix_without_labels(
    input: &[u8],
    out: &mut Rewrite,
) -> Result<usize, MetaError> {
    let tags = Id3Tags::parse(input)?;
    tags.write_to(input, None, out)?;
    Ok(tags.end())
}

impl Carrier for Mp3Carrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Mp3]
    }

    fn placement(&self) -> &'static str {
        "ID3v2 TXXX frame, description AIGC"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let tags = Id3Tags::parse(input)?;
        if tags.tags.is_empty() && !starts_with_frame_sync(input) {
            return Err(MetaError::malformed(
                "MP3",
                "no ID3v2 tag and no MPEG audio frame at the start",
            ));
        }
        Ok(tags.labels().cloned().collect())
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let value = record.to_wrapped_json();
        let tags = Id3Tags::parse(input)?;
        let mut out = Rewrite::new();
        if tags.tags.is_empty() {
            if !starts_with_frame_sync(input) {
                return Err(MetaError::malformed(
                    "MP3",
                    "no ID3v2 tag and no MPEG audio frame at the start",
                ));
            }
            out.insert(new_tag(&value)?);
        } else {
            tags.write_to(input, Some(&value), &mut out)?;
        }
        out.keep(tags.end()..input.len());
        Ok(out)
    }
}

/// Helpers the audio carriers' tests share: samples, temp files and the independent tools.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLE: &str = "audio.mp3";

    #[test]
    fn mp3_write_read_one_label_and_audio_stays_put() {
        let input = sample(SAMPLE);
        let record = record("mp3-1");
        let out = write_and_check_idempotent(&Mp3Carrier, &input, &record);
        // The sample's tag has room for the frame? If not, it grew; either way the audio bytes
        // after the tag are the input's, byte for byte.
        let in_end = Id3Tags::parse(&input).expect("tags").end();
        let out_end = Id3Tags::parse(&out).expect("tags").end();
        assert_eq!(input[in_end..], out[out_end..]);
        // Other frames are kept.
        let tags = Id3Tags::parse(&out).expect("tags");
        assert_eq!(tags.tags[0].major, 4);
        assert!(out.windows(11).any(|w| w == b"sample tone"));
    }

    #[test]
    fn mp3_independent_tools_read_our_label() {
        let record = record("mp3-tools");
        let out = write_and_check_idempotent(&Mp3Carrier, &sample(SAMPLE), &record);
        let path = temp_file("labelled.mp3", &out);
        let exif = exiftool(&path, &[]);
        assert_eq!(
            exif["ID3v2_4:UserDefinedText"],
            format!("(AIGC) {}", record.to_wrapped_json()),
            "{exif}"
        );
        assert_eq!(exif["ID3v2_4:Title"], "sample tone");
        let probe = ffprobe_tags(&path);
        assert_eq!(
            probe["format"]["tags"]["AIGC"],
            record.to_wrapped_json(),
            "{probe}"
        );
        assert_same_media(&temp_file("in.mp3", &sample(SAMPLE)), &path);
    }

    #[test]
    fn mp3_ffmpeg_labels_are_read_and_replaced_v24_and_v23() {
        let old = record("by-ffmpeg").to_wrapped_json();
        for (version, extra) in [(4, ["-id3v2_version", "4"]), (3, ["-id3v2_version", "3"])] {
            let labelled = ffmpeg_labelled("src.mp3", &sample(SAMPLE), &old, &extra);
            let found = Mp3Carrier.read(&labelled).expect("read");
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].value, old);
            assert_eq!(found[0].placement, format!("ID3v2.{version} TXXX:AIGC"));
            let record = record("replaced");
            let out = write_and_check_idempotent(&Mp3Carrier, &labelled, &record);
            let path = temp_file("replaced.mp3", &out);
            let key = format!("ID3v2_{version}:UserDefinedText");
            assert_eq!(
                exiftool(&path, &[])[key],
                format!("(AIGC) {}", record.to_wrapped_json())
            );
            assert_same_media(&temp_file("l.mp3", &labelled), &path);
        }
    }

    #[test]
    fn mp3_v23_non_ascii_label_is_utf16_and_exiftool_reads_it() {
        let labelled = ffmpeg_labelled("src.mp3", &sample(SAMPLE), "{}", &["-id3v2_version", "3"]);
        let record = record("产品-1");
        let out = write_and_check_idempotent(&Mp3Carrier, &labelled, &record);
        let path = temp_file("utf16.mp3", &out);
        assert_eq!(
            exiftool(&path, &[])["ID3v2_3:UserDefinedText"],
            format!("(AIGC) {}", record.to_wrapped_json())
        );
    }

    #[test]
    fn mp3_without_tag_gets_a_new_v24_tag() {
        let input = sample(SAMPLE);
        let audio = &input[Id3Tags::parse(&input).expect("tags").end()..];
        let record = record("no-tag");
        let out = write_and_check_idempotent(&Mp3Carrier, audio, &record);
        assert!(out.starts_with(b"ID3\x04"));
        assert!(out.ends_with(audio));
        let path = temp_file("new-tag.mp3", &out);
        assert_eq!(
            exiftool(&path, &[])["ID3v2_4:UserDefinedText"],
            format!("(AIGC) {}", record.to_wrapped_json())
        );
        assert_decodes(&path);
    }

    /// A v2.3 tag with the given frames, unsynchronised as a whole when asked.
    fn v23_tag(frames: &[(&[u8; 4], Vec<u8>)], padding: usize, unsync: bool) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, data) in frames {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes());
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(data);
        }
        body.extend(std::iter::repeat_n(0, padding));
        if unsync {
            let mut u = Vec::new();
            for (i, &x) in body.iter().enumerate() {
                u.push(x);
                if x == 0xFF && body.get(i + 1).is_none_or(|n| *n == 0 || *n >= 0xE0) {
                    u.push(0);
                }
            }
            body = u;
        }
        let mut tag = vec![b'I', b'D', b'3', 3, 0, if unsync { FLAG_UNSYNC } else { 0 }];
        tag.extend_from_slice(&to_syncsafe(body.len()).expect("size"));
        tag.extend(body);
        tag.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00, 1, 2, 3]);
        tag
    }

    #[test]
    fn mp3_all_encodings_comm_and_padding_reuse() {
        let json = record("enc").to_wrapped_json();
        let utf16le = |s: &str| {
            let mut v = vec![0xFF, 0xFE];
            v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
            v
        };
        let mut txxx_utf16 = vec![1];
        txxx_utf16.extend(utf16le("my aigc"));
        txxx_utf16.extend_from_slice(&[0, 0]);
        txxx_utf16.extend(utf16le(&json));
        txxx_utf16.extend_from_slice(&[0, 0]);
        let mut txxx_be = vec![2];
        txxx_be.extend("AIGC".encode_utf16().flat_map(u16::to_be_bytes));
        txxx_be.extend_from_slice(&[0, 0]);
        txxx_be.extend(json.encode_utf16().flat_map(u16::to_be_bytes));
        let comm = [b"\x03chi\x00".as_slice(), json.as_bytes()].concat();
        let comm_other = b"\x00engnote\x00just a comment".to_vec();
        let title = b"\x00title".to_vec();
        let input = v23_tag(
            &[
                (b"TIT2", title.clone()),
                (b"TXXX", txxx_utf16),
                (b"COMM", comm),
                (b"TXXX", txxx_be),
                (b"COMM", comm_other.clone()),
            ],
            600,
            false,
        );
        let found = Mp3Carrier.read(&input).expect("read");
        let places = placements(&found);
        assert_eq!(
            places,
            ["ID3v2.3 TXXX:my aigc", "ID3v2.3 COMM:", "ID3v2.3 TXXX:AIGC"]
        );
        assert!(found.iter().all(|l| l.value == json && l.parsed.is_valid()));
        assert_eq!(found.iter().filter(|l| l.primary).count(), 1);
        let record = record("new");
        let out = write_and_check_idempotent(&Mp3Carrier, &input, &record);
        // Same size: the padding absorbed the change, so the audio did not move.
        assert_eq!(out.len(), input.len());
        assert!(out.ends_with(&[0xFF, 0xFB, 0x90, 0x00, 1, 2, 3]));
        let with_title = [
            b"TIT2".as_slice(),
            &(title.len() as u32).to_be_bytes(),
            &[0, 0],
            &title,
        ]
        .concat();
        assert_eq!(out[10..10 + with_title.len()], with_title[..]);
        assert!(out.windows(comm_other.len()).any(|w| w == comm_other));
    }

    #[test]
    fn mp3_unsynchronised_v23_is_read_but_not_written() {
        let mut data = b"\x00AIGC\x00".to_vec();
        data.extend_from_slice(record("u").to_wrapped_json().as_bytes());
        let input = v23_tag(&[(b"TALB", vec![0, 0xFF, 0xE0]), (b"TXXX", data)], 0, true);
        let found = Mp3Carrier.read(&input).expect("read");
        assert_eq!(found.len(), 1);
        assert!(found[0].parsed.is_valid());
        let err = Mp3Carrier
            .write(&input, &record("x"))
            .expect_err("unsupported");
        assert!(err.to_string().contains("unsynchronisation"), "{err}");
    }

    #[test]
    fn mp3_v22_is_read_only() {
        let json = record("v22").to_wrapped_json();
        let mut data = b"\x00AIGC\x00".to_vec();
        data.extend_from_slice(json.as_bytes());
        let mut body = b"TXX".to_vec();
        body.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        body.extend(data);
        let mut input = b"ID3\x02\x00\x00".to_vec();
        input.extend_from_slice(&to_syncsafe(body.len()).expect("size"));
        input.extend(body);
        input.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        let found = Mp3Carrier.read(&input).expect("read");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].placement, "ID3v2.2 TXX:AIGC");
        let err = Mp3Carrier
            .write(&input, &record("x"))
            .expect_err("unsupported");
        assert!(err.to_string().contains("ID3v2.2"), "{err}");
    }

    #[test]
    fn mp3_footer_and_extended_header() {
        // v2.4 with an extended header (6 bytes, no flags) and a footer.
        let mut body = vec![0, 0, 0, 6, 1, 0];
        body.extend_from_slice(b"TIT2\x00\x00\x00\x03\x00\x00\x03ab");
        let mut input = b"ID3\x04\x00".to_vec();
        input.push(FLAG_EXTENDED | FLAG_FOOTER);
        input.extend_from_slice(&to_syncsafe(body.len()).expect("size"));
        input.extend(body.clone());
        input.extend_from_slice(b"3DI\x04\x00");
        input.push(FLAG_EXTENDED | FLAG_FOOTER);
        input.extend_from_slice(&to_syncsafe(body.len()).expect("size"));
        input.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        assert!(Mp3Carrier.read(&input).expect("read").is_empty());
        let out = write_and_check_idempotent(&Mp3Carrier, &input, &record("footer"));
        assert_eq!(out[5], FLAG_FOOTER);
        let tags = Id3Tags::parse(&out).expect("tags");
        let end = tags.end();
        assert_eq!(&out[end - 10..end - 7], b"3DI");
        assert_eq!(&out[end..], &[0xFF, 0xFB, 0x90, 0x00]);
    }

    #[test]
    fn mp3_hostile_input_never_panics() {
        let input = sample(SAMPLE);
        HostileInputs::head_first(3000, 1).assert_never_panic(&Mp3Carrier, &input);
        let labelled = write(&Mp3Carrier, &input, &record("f"));
        HostileInputs::head_first(2000, 1)
            .assert_never_panic(&Mp3Carrier, &labelled[..labelled.len().min(2048)]);
        for junk in [
            &b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f"[..],
            b"ID3\x03\x00\x40\x00\x00\x00\x04\xff\xff\xff\xff",
        ] {
            assert!(Mp3Carrier.read(junk).is_err());
        }
    }
}
