//! TIFF-structured metadata (EXIF blobs in JPEG and WebP, and TIFF files themselves): walking
//! IFDs, finding label text in EXIF UserComment and ImageDescription, and blanking that text in
//! place so that no offset in the structure moves.

use crate::bytes;
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use std::ops::Range;

/// IFD0 `ImageDescription` (ASCII).
pub const TAG_IMAGE_DESCRIPTION: u16 = 0x010E;
/// IFD0 `XMLPacket` (XMP, BYTE or UNDEFINED).
pub const TAG_XMP: u16 = 0x02BC;
/// IFD0 pointer to the Exif IFD.
pub const TAG_EXIF_IFD: u16 = 0x8769;
/// Exif IFD `UserComment` (UNDEFINED with an 8-byte charset prefix).
pub const TAG_USER_COMMENT: u16 = 0x9286;

/// The byte order a TIFF structure declares in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// `II`: least significant byte first.
    Little,
    /// `MM`: most significant byte first.
    Big,
}

/// A TIFF structure: the bytes from its header on, and their byte order.
#[derive(Debug, Clone, Copy)]
pub struct Tiff<'a> {
    /// The structure, starting at the `II`/`MM` header; offsets inside are relative to it.
    pub data: &'a [u8],
    /// The declared byte order.
    pub order: ByteOrder,
    /// Where IFD0 starts.
    pub ifd0: usize,
}

/// One 12-byte IFD entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfdEntry {
    /// Where the entry starts.
    pub at: usize,
    /// The tag number.
    pub tag: u16,
    /// The field type (1 BYTE, 2 ASCII, 7 UNDEFINED, …).
    pub kind: u16,
    /// The number of values.
    pub count: u32,
    /// Where the value bytes lie (inline in the entry when they fit in four bytes); `None` when
    /// the type is unknown or the size overflows, so that the value cannot be read.
    pub value: Option<Range<usize>>,
}

/// One image file directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ifd {
    /// Where the directory starts (its entry count).
    pub at: usize,
    /// Its entries, as stored.
    pub entries: Vec<IfdEntry>,
    /// The offset of the next IFD (0 when there is none).
    pub next: u32,
}

/// Size in bytes of one value of a TIFF field type, for the types TIFF 6 and EXIF define.
fn type_size(kind: u16) -> Option<usize> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}

impl<'a> Tiff<'a> {
    /// Parses the 8-byte header of `data`; `format` names the container in errors.
    pub fn parse(data: &'a [u8], format: &'static str) -> Result<Self, MetaError> {
        let order = match bytes::array::<2>(data, 0, "TIFF byte order")? {
            [b'I', b'I'] => ByteOrder::Little,
            [b'M', b'M'] => ByteOrder::Big,
            _ => {
                return Err(MetaError::malformed(
                    format,
                    "TIFF header lacks the II/MM byte order mark",
                ));
            }
        };
        let partial = Tiff {
            data,
            order,
            ifd0: 0,
        };
        match partial.u16(2, "TIFF magic number")? {
            42 => {}
            43 => {
                return Err(MetaError::unsupported(
                    format,
                    "BigTIFF (64-bit offsets) is not supported; convert to classic TIFF",
                ));
            }
            other => {
                return Err(MetaError::malformed(
                    format,
                    format!("TIFF magic number is {other}, not 42"),
                ));
            }
        }
        let ifd0 = partial.u32(4, "TIFF IFD0 offset")? as usize;
        Ok(Tiff { ifd0, ..partial })
    }

    /// A u16 at `at` in the declared byte order.
    pub fn u16(&self, at: usize, what: &str) -> Result<u16, MetaError> {
        match self.order {
            ByteOrder::Little => bytes::le_u16(self.data, at, what),
            ByteOrder::Big => bytes::be_u16(self.data, at, what),
        }
    }

    /// A u32 at `at` in the declared byte order.
    pub fn u32(&self, at: usize, what: &str) -> Result<u32, MetaError> {
        match self.order {
            ByteOrder::Little => bytes::le_u32(self.data, at, what),
            ByteOrder::Big => bytes::be_u32(self.data, at, what),
        }
    }

    /// `v` encoded in the declared byte order.
    pub fn u16_bytes(&self, v: u16) -> [u8; 2] {
        match self.order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    /// `v` encoded in the declared byte order.
    pub fn u32_bytes(&self, v: u32) -> [u8; 4] {
        match self.order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    /// The IFD at `offset`.
    pub fn ifd(&self, offset: usize) -> Result<Ifd, MetaError> {
        let count = self.u16(offset, "TIFF IFD entry count")? as usize;
        let first = offset
            .checked_add(2)
            .ok_or_else(|| MetaError::truncated("TIFF IFD", offset))?;
        // Checks the whole directory at once, so the entry reads below stay in bounds.
        bytes::slice(self.data, first, count * 12 + 4, "TIFF IFD")?;
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = first + i * 12;
            let tag = self.u16(at, "TIFF IFD entry tag")?;
            let kind = self.u16(at + 2, "TIFF IFD entry type")?;
            let count = self.u32(at + 4, "TIFF IFD entry count")?;
            let size = type_size(kind).and_then(|s| s.checked_mul(count as usize));
            let value = match size {
                Some(size) if size <= 4 => Some(at + 8..at + 8 + size),
                Some(size) => {
                    let start = self.u32(at + 8, "TIFF IFD entry offset")? as usize;
                    start.checked_add(size).map(|end| start..end)
                }
                None => None,
            };
            entries.push(IfdEntry {
                at,
                tag,
                kind,
                count,
                value,
            });
        }
        let next = self.u32(first + count * 12, "TIFF next IFD offset")?;
        Ok(Ifd {
            at: offset,
            entries,
            next,
        })
    }

    /// The value bytes of `entry`.
    pub fn value(&self, entry: &IfdEntry) -> Result<&'a [u8], MetaError> {
        let what = format!("TIFF tag 0x{:04X} value", entry.tag);
        let range = entry
            .value
            .clone()
            .ok_or_else(|| MetaError::truncated(what.clone(), entry.at))?;
        self.data
            .get(range.clone())
            .ok_or_else(|| MetaError::truncated(what, range.start))
    }

    /// The first entry of `ifd` with `tag` that points to a sub-IFD, followed.
    fn sub_ifd(&self, ifd: &Ifd, tag: u16) -> Result<Option<Ifd>, MetaError> {
        let Some(entry) = ifd.entries.iter().find(|e| e.tag == tag) else {
            return Ok(None);
        };
        if !matches!(entry.kind, 4 | 13) || entry.count == 0 {
            return Ok(None);
        }
        let offset = self.u32(entry.at + 8, "TIFF sub-IFD offset")? as usize;
        self.ifd(offset).map(Some)
    }
}

/// A label found in EXIF text, with the bytes that blank it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextLabel {
    /// `UserComment` or `ImageDescription`.
    pub field: &'static str,
    /// The decoded text.
    pub value: String,
    /// Where the text bytes lie in the TIFF structure (after any charset prefix).
    pub text: Range<usize>,
    /// Spaces in the text's encoding, as long as `text`.
    pub blank: Vec<u8>,
}

/// Whether a text field holds a label: a JSON object that mentions `AIGC` (Annex E's field name).
pub fn is_label_text(text: &str) -> bool {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    t.starts_with('{')
        && t.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

/// Text bytes without the NULs that pad or terminate them.
fn trim_nuls(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|x| *x != 0).map_or(0, |i| i + 1);
    b.get(..end).unwrap_or_default()
}

/// Decodes a UserComment value: 8-byte charset prefix then text. Returns the text's offset in
/// the value, the text, and whether it is UTF-16 (big-endian when `Some(true)`).
fn user_comment(value: &[u8], order: ByteOrder) -> Option<(usize, String, Option<bool>)> {
    let (prefix, body) = (value.get(..8)?, value.get(8..)?);
    match prefix {
        // Undefined charset (all NULs) is read as ASCII, as exiftool does.
        b"ASCII\0\0\0" | [0, 0, 0, 0, 0, 0, 0, 0] => Some((
            8,
            String::from_utf8_lossy(trim_nuls(body)).into_owned(),
            None,
        )),
        b"UNICODE\0" => {
            // UCS-2 in the EXIF byte order unless a byte order mark says otherwise.
            let (big, skip) = match body {
                [0xFE, 0xFF, ..] => (true, 2),
                [0xFF, 0xFE, ..] => (false, 2),
                _ => (order == ByteOrder::Big, 0),
            };
            let units: Vec<u16> = body
                .get(skip..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|p| {
                    let pair = [p[0], p[1]];
                    if big {
                        u16::from_be_bytes(pair)
                    } else {
                        u16::from_le_bytes(pair)
                    }
                })
                .collect();
            let end = units.iter().rposition(|u| *u != 0).map_or(0, |i| i + 1);
            let text = String::from_utf16_lossy(units.get(..end).unwrap_or_default());
            Some((8, text, Some(big)))
        }
        _ => None,
    }
}

/// Spaces filling `len` bytes: UTF-16 spaces when `utf16_big` is given, else ASCII spaces.
fn spaces(len: usize, utf16_big: Option<bool>) -> Vec<u8> {
    match utf16_big {
        None => vec![b' '; len],
        Some(big) => {
            let unit: [u8; 2] = if big { [0, b' '] } else { [b' ', 0] };
            (0..len).map(|i| unit[i % 2]).collect()
        }
    }
}

/// Every label in IFD0 `ImageDescription` and Exif IFD `UserComment`, ordered by position.
pub fn find_text_labels(tiff: &Tiff) -> Result<Vec<TextLabel>, MetaError> {
    let ifd0 = tiff.ifd(tiff.ifd0)?;
    let mut found = Vec::new();
    for entry in ifd0
        .entries
        .iter()
        .filter(|e| e.tag == TAG_IMAGE_DESCRIPTION)
    {
        let value = tiff.value(entry)?;
        let text = trim_nuls(value);
        let decoded = String::from_utf8_lossy(text).into_owned();
        if is_label_text(&decoded) {
            // Parsing gave `value` a range, and `text` is a prefix of it.
            let start = entry.value.as_ref().map_or(0, |r| r.start);
            found.push(TextLabel {
                field: "ImageDescription",
                value: decoded,
                text: start..start + text.len(),
                blank: spaces(text.len(), None),
            });
        }
    }
    if let Some(exif) = tiff.sub_ifd(&ifd0, TAG_EXIF_IFD)? {
        for entry in exif.entries.iter().filter(|e| e.tag == TAG_USER_COMMENT) {
            let value = tiff.value(entry)?;
            let Some((skip, decoded, utf16)) = user_comment(value, tiff.order) else {
                continue;
            };
            if is_label_text(&decoded) {
                let start = entry.value.as_ref().map_or(0, |r| r.start) + skip;
                let len = value.len() - skip;
                found.push(TextLabel {
                    field: "UserComment",
                    value: decoded,
                    text: start..start + len,
                    blank: spaces(len, utf16),
                });
            }
        }
    }
    found.sort_by_key(|l| l.text.start);
    Ok(found)
}

/// Keeps `range` of the input, writing `patches` (absolute offset, replacement bytes) over it.
/// Patches are clipped to the range and to each other, so overlapping ones cannot panic.
pub fn keep_patched(out: &mut Rewrite, range: Range<usize>, patches: &[(usize, Vec<u8>)]) {
    let mut sorted: Vec<&(usize, Vec<u8>)> = patches.iter().collect();
    sorted.sort_by_key(|p| p.0);
    let mut at = range.start;
    for (start, bytes) in sorted {
        let end = start.saturating_add(bytes.len()).min(range.end);
        let from = (*start).max(at);
        if from >= end {
            continue;
        }
        if let Some(part) = bytes.get(from - start..end - start) {
            out.keep(at..from);
            out.insert(part);
            at = end;
        }
    }
    out.keep(at..range.end);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little TIFF structure with IFD0 → Exif IFD holding `comment` as UserComment.
    fn exif_with_comment(order: ByteOrder, comment: &[u8]) -> Vec<u8> {
        let t = Tiff {
            data: &[],
            order,
            ifd0: 8,
        };
        let mut b = match order {
            ByteOrder::Little => b"II".to_vec(),
            ByteOrder::Big => b"MM".to_vec(),
        };
        b.extend(t.u16_bytes(42));
        b.extend(t.u32_bytes(8));
        // IFD0: one entry pointing to the Exif IFD at 26.
        b.extend(t.u16_bytes(1));
        b.extend(t.u16_bytes(TAG_EXIF_IFD));
        b.extend(t.u16_bytes(4));
        b.extend(t.u32_bytes(1));
        b.extend(t.u32_bytes(26));
        b.extend(t.u32_bytes(0));
        // Exif IFD at 26: UserComment with its value at 44.
        b.extend(t.u16_bytes(1));
        b.extend(t.u16_bytes(TAG_USER_COMMENT));
        b.extend(t.u16_bytes(7));
        b.extend(t.u32_bytes(comment.len() as u32));
        b.extend(t.u32_bytes(44));
        b.extend(t.u32_bytes(0));
        b.extend_from_slice(comment);
        b
    }

    #[test]
    fn user_comment_ascii_and_unicode_are_found_and_blanked() {
        let json = r#"{"AIGC":{"Label":"1"}}"#;
        let mut ascii = b"ASCII\0\0\0".to_vec();
        ascii.extend_from_slice(json.as_bytes());
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let mut unicode = b"UNICODE\0".to_vec();
            for u in json.encode_utf16() {
                unicode.extend(match order {
                    ByteOrder::Little => u.to_le_bytes(),
                    ByteOrder::Big => u.to_be_bytes(),
                });
            }
            for comment in [&ascii, &unicode] {
                let blob = exif_with_comment(order, comment);
                let tiff = Tiff::parse(&blob, "EXIF").expect("header");
                let found = find_text_labels(&tiff).expect("labels");
                assert_eq!(found.len(), 1);
                assert_eq!(found[0].value, json);
                let mut out = Rewrite::new();
                keep_patched(
                    &mut out,
                    0..blob.len(),
                    &[(found[0].text.start, found[0].blank.clone())],
                );
                let blanked = out.to_vec(&blob);
                assert_eq!(blanked.len(), blob.len());
                let tiff = Tiff::parse(&blanked, "EXIF").expect("header");
                assert!(find_text_labels(&tiff).expect("labels").is_empty());
            }
        }
    }

    #[test]
    fn overlapping_patches_are_clipped() {
        let mut out = Rewrite::new();
        keep_patched(
            &mut out,
            2..10,
            &[
                (4, b"xxxx".to_vec()),
                (0, b"yyyy".to_vec()),
                (5, b"zz".to_vec()),
            ],
        );
        assert_eq!(out.to_vec(b"0123456789"), b"yyxxxx89");
    }

    #[test]
    fn bigtiff_is_unsupported() {
        let err = Tiff::parse(b"II+\0\x08\0\0\0\0\0\0\0\0\0\0\0", "TIFF").unwrap_err();
        assert!(matches!(err, MetaError::Unsupported { .. }), "{err}");
    }
}
