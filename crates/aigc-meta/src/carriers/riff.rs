//! RIFF chunk walking shared by the WAV and AVI carriers, and the two label placements both
//! formats know: `LIST/INFO` sub-chunks and an XMP packet in a `_PMX` chunk.

use crate::bytes::{array, le_u32, slice};
use crate::carrier::FoundLabel;
use crate::error::MetaError;
use crate::xmp;
use aigc_core::{LabelForm, parse_label_value};
use std::ops::Range;

/// One chunk: the header at `start`, the payload in `data`, the next chunk at `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the four-character id.
    pub start: usize,
    /// The four-character id.
    pub id: [u8; 4],
    /// The payload (for `RIFF`/`LIST`, starting with the form type).
    pub data: Range<usize>,
    /// Where the next chunk starts: after the payload and its pad byte.
    pub end: usize,
    /// An odd-sized last chunk whose pad byte is missing (the parent ends right after it).
    pub pad_missing: bool,
}

impl Chunk {
    /// The form type of a `RIFF` or `LIST` chunk.
    pub fn form(&self, b: &[u8]) -> Option<[u8; 4]> {
        if &self.id != b"RIFF" && &self.id != b"LIST" {
            return None;
        }
        array(b, self.data.start, "RIFF form type").ok()
    }

    /// Whether this is a `LIST` of the given form type.
    pub fn is_list(&self, b: &[u8], form: &[u8; 4]) -> bool {
        &self.id == b"LIST" && self.form(b).as_ref() == Some(form)
    }

    /// The sub-chunk area of a `RIFF`/`LIST` chunk (after the form type).
    pub fn body(&self) -> Range<usize> {
        self.data.start.saturating_add(4).min(self.data.end)..self.data.end
    }

    /// The id for messages and placements.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.id).into_owned()
    }

    /// The whole chunk as stored, with a pad byte restored if it was missing.
    pub fn bytes<'a>(&self, b: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, MetaError> {
        let raw = slice(
            b,
            self.start,
            self.end.saturating_sub(self.start),
            "RIFF chunk",
        )?;
        Ok(if self.pad_missing {
            let mut owned = raw.to_vec();
            owned.push(0);
            owned.into()
        } else {
            raw.into()
        })
    }
}

/// Resolves the real size of an RF64 chunk whose 32-bit size is `0xFFFFFFFF`.
pub type LargeSize<'a> = &'a dyn Fn(&[u8; 4]) -> Option<u64>;

/// The chunks that fill `range` of `b`, in order. A size running past `range` is a truncation.
pub fn walk(
    b: &[u8],
    range: Range<usize>,
    what: &str,
    large: Option<LargeSize>,
) -> Result<Vec<Chunk>, MetaError> {
    if range.end > b.len() {
        return Err(MetaError::truncated(what, range.start));
    }
    let mut out = Vec::new();
    let mut at = range.start;
    while at < range.end {
        if range.end - at < 8 {
            return Err(MetaError::truncated(format!("{what} chunk header"), at));
        }
        let id: [u8; 4] = array(b, at, "RIFF chunk id")?;
        let size32 = le_u32(b, at + 4, "RIFF chunk size")?;
        let size = match large {
            Some(resolve) if size32 == u32::MAX => resolve(&id).ok_or_else(|| {
                MetaError::malformed(
                    "RF64",
                    format!(
                        "chunk {} has size 0xFFFFFFFF but no ds64 entry",
                        String::from_utf8_lossy(&id)
                    ),
                )
            })?,
            _ => u64::from(size32),
        };
        let data_start = at + 8;
        let data_end = usize::try_from(size)
            .ok()
            .and_then(|s| data_start.checked_add(s))
            .filter(|e| *e <= range.end)
            .ok_or_else(|| {
                MetaError::truncated(format!("{what} {} chunk", String::from_utf8_lossy(&id)), at)
            })?;
        let odd = size % 2 == 1;
        let pad_missing = odd && data_end == range.end;
        let end = if odd && !pad_missing {
            data_end + 1
        } else {
            data_end
        };
        out.push(Chunk {
            start: at,
            id,
            data: data_start..data_end,
            end,
            pad_missing,
        });
        at = end;
    }
    Ok(out)
}

/// A chunk with `id` holding `data`, with its pad byte.
pub fn chunk_bytes(id: &[u8; 4], data: &[u8]) -> Result<Vec<u8>, MetaError> {
    let size = u32::try_from(data.len()).map_err(|_| {
        MetaError::unsupported(
            "RIFF",
            format!(
                "a {} chunk of {} bytes exceeds the 32-bit chunk size",
                String::from_utf8_lossy(id),
                data.len()
            ),
        )
    })?;
    let mut out = Vec::with_capacity(data.len() + 9);
    out.extend_from_slice(id);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    Ok(out)
}

/// Text of a metadata chunk: trailing NULs (C strings, padding) dropped, invalid UTF-8 replaced.
pub fn chunk_text(data: &[u8]) -> String {
    let end = data.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(data.get(..end).unwrap_or_default()).into_owned()
}

/// Whether a field id names a label (`AIGC` in any case).
pub fn is_label_id(id: &[u8]) -> bool {
    id.windows(4).any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

/// Whether a free-text field (e.g. a comment) holds a label: JSON that mentions `AIGC` and
/// parses as a known label schema.
pub fn holds_label(text: &str) -> bool {
    text.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"AIGC"))
        && parse_label_value(text).form != LabelForm::Unrecognised
}

/// The sub-chunks of a `LIST/INFO` chunk.
pub fn info_items(b: &[u8], list: &Chunk, format: &str) -> Result<Vec<Chunk>, MetaError> {
    walk(b, list.body(), &format!("{format} LIST/INFO"), None)
}

/// Whether an INFO item is a label: its id is `AIGC` or its text holds a label.
pub fn is_info_label(b: &[u8], item: &Chunk) -> bool {
    is_label_id(&item.id)
        || b.get(item.data.clone())
            .is_some_and(|d| holds_label(&chunk_text(d)))
}

/// Labels among INFO items; an `AIGC` item is primary when `aigc_is_primary`.
pub fn info_labels(b: &[u8], items: &[Chunk], aigc_is_primary: bool, out: &mut Vec<FoundLabel>) {
    for item in items.iter().filter(|i| is_info_label(b, i)) {
        let text = chunk_text(b.get(item.data.clone()).unwrap_or_default());
        out.push(FoundLabel::new(
            format!("LIST/INFO {}", item.name()),
            aigc_is_primary && &item.id == b"AIGC",
            text,
        ));
    }
}

/// A `LIST/INFO` chunk holding `kept` items as they were and, if given, an `AIGC` item with
/// `label` as a NUL-terminated string (the INFO ZSTR form).
pub fn info_list(b: &[u8], kept: &[&Chunk], label: Option<&str>) -> Result<Vec<u8>, MetaError> {
    let mut body = b"INFO".to_vec();
    for item in kept {
        body.extend_from_slice(&item.bytes(b)?);
    }
    if let Some(label) = label {
        let mut text = label.as_bytes().to_vec();
        text.push(0);
        body.extend(chunk_bytes(b"AIGC", &text)?);
    }
    chunk_bytes(b"LIST", &body)
}

/// Whether a `_PMX` chunk may hold a label (checked before parsing, so that a broken packet
/// without labels never fails a read).
pub fn xmp_mentions_label(b: &[u8], chunk: &Chunk) -> bool {
    b.get(chunk.data.clone()).is_some_and(is_label_id)
}

/// Labels in the XMP packet of a `_PMX` chunk (never primary for RIFF formats).
pub fn xmp_labels(b: &[u8], chunk: &Chunk, out: &mut Vec<FoundLabel>) -> Result<(), MetaError> {
    if !xmp_mentions_label(b, chunk) {
        return Ok(());
    }
    let text = xmp::packet_text(slice(b, chunk.data.start, chunk.data.len(), "_PMX chunk")?)?;
    for l in xmp::find_labels(text)? {
        out.push(FoundLabel::new(
            format!("XMP (_PMX) {}", l.qualified_name),
            false,
            l.value,
        ));
    }
    Ok(())
}

/// The `_PMX` chunk with every label property removed, or `None` when it holds none.
pub fn xmp_without_labels(b: &[u8], chunk: &Chunk) -> Result<Option<Vec<u8>>, MetaError> {
    if !xmp_mentions_label(b, chunk) {
        return Ok(None);
    }
    let text = xmp::packet_text(slice(b, chunk.data.start, chunk.data.len(), "_PMX chunk")?)?;
    if xmp::find_labels(text)?.is_empty() {
        return Ok(None);
    }
    let stripped = xmp::merge_packet(text, None)?;
    chunk_bytes(b"_PMX", stripped.as_bytes()).map(Some)
}
