//! The Vorbis comment list shared by FLAC (`VORBIS_COMMENT` block) and the Ogg Vorbis / Opus
//! comment headers: a vendor string, then `NAME=value` entries, every length 32-bit
//! little-endian. Field names are case-insensitive; a label is an entry whose name contains
//! `AIGC`.

use crate::bytes::{le_u32, slice};
use crate::error::MetaError;

/// The field name we write.
pub const LABEL_FIELD: &str = "AIGC";

/// A parsed comment list, borrowing the input.
#[derive(Debug, Clone)]
pub struct CommentList<'a> {
    /// The vendor string as stored.
    pub vendor: &'a [u8],
    /// The entries as stored, in order.
    pub entries: Vec<&'a [u8]>,
    /// How many bytes of the input the list occupies.
    pub len: usize,
}

/// A label entry: its field name as written and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentLabel {
    /// The field name as written (e.g. `AIGC` or `aigc`).
    pub name: String,
    /// The value after `=`.
    pub value: String,
}

impl CommentLabel {
    /// Whether the field is the one we write (`AIGC`, in any case).
    pub fn is_primary_field(&self) -> bool {
        self.name.eq_ignore_ascii_case(LABEL_FIELD)
    }
}

/// Parses a comment list at the start of `b`; `what` names the enclosing structure in errors.
pub fn parse<'a>(b: &'a [u8], what: &str) -> Result<CommentList<'a>, MetaError> {
    let vendor_len = le_u32(b, 0, &format!("{what} vendor length"))? as usize;
    let vendor = slice(b, 4, vendor_len, &format!("{what} vendor string"))?;
    let mut at = 4usize
        .checked_add(vendor_len)
        .ok_or_else(|| MetaError::truncated(format!("{what} vendor string"), 4))?;
    let count = le_u32(b, at, &format!("{what} comment count"))? as usize;
    at += 4;
    // Each entry needs at least its 4-byte length, so the input length bounds the count.
    let mut entries = Vec::with_capacity(count.min(b.len() / 4));
    for _ in 0..count {
        let len = le_u32(b, at, &format!("{what} comment length"))? as usize;
        let start = at + 4;
        entries.push(slice(b, start, len, &format!("{what} comment"))?);
        // `slice` succeeded, so `start + len` is within the input and cannot overflow.
        at = start + len;
    }
    Ok(CommentList {
        vendor,
        entries,
        len: at,
    })
}

/// The field name and value of an entry, when it has the `NAME=value` form.
fn split_entry(entry: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = entry.iter().position(|c| *c == b'=')?;
    Some((entry.get(..eq)?, entry.get(eq + 1..)?))
}

/// Whether a field name marks a label (contains `AIGC`, any case).
pub fn is_label_name(name: &[u8]) -> bool {
    name.windows(4).any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

fn is_label_entry(entry: &[u8]) -> bool {
    split_entry(entry).is_some_and(|(name, _)| is_label_name(name))
}

/// The label entries of a list, in order.
pub fn labels(list: &CommentList) -> Vec<CommentLabel> {
    list.entries
        .iter()
        .filter_map(|e| split_entry(e))
        .filter(|(name, _)| is_label_name(name))
        .map(|(name, value)| CommentLabel {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
        })
        .collect()
}

/// Whether the list holds any label entry.
pub fn has_labels(list: &CommentList) -> bool {
    list.entries.iter().any(|e| is_label_entry(e))
}

fn push_string(out: &mut Vec<u8>, s: &[u8], what: &str) -> Result<(), MetaError> {
    let len = u32::try_from(s.len())
        .map_err(|_| MetaError::unsupported("Vorbis comment", format!("{what} over 4 GiB")))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s);
    Ok(())
}

/// The list serialised again without its label entries, plus `AIGC=<label>` when `label` is
/// given: in place of the first removed entry, else at the end. Other entries keep their bytes.
pub fn rebuild(list: &CommentList, label: Option<&str>) -> Result<Vec<u8>, MetaError> {
    build(list.vendor, &list.entries, label)
}

/// A new list with only `vendor` and the label entry.
pub fn new_list(vendor: &str, label: &str) -> Result<Vec<u8>, MetaError> {
    build(vendor.as_bytes(), &[], Some(label))
}

fn build(vendor: &[u8], entries: &[&[u8]], label: Option<&str>) -> Result<Vec<u8>, MetaError> {
    let label_entry = label.map(|v| format!("{LABEL_FIELD}={v}").into_bytes());
    let mut kept: Vec<&[u8]> = Vec::with_capacity(entries.len() + 1);
    let mut placed = false;
    for e in entries {
        if is_label_entry(e) {
            if let (Some(l), false) = (&label_entry, placed) {
                kept.push(l);
                placed = true;
            }
        } else {
            kept.push(e);
        }
    }
    if let (Some(l), false) = (&label_entry, placed) {
        kept.push(l);
    }
    let mut out =
        Vec::with_capacity(8 + vendor.len() + kept.iter().map(|e| e.len() + 4).sum::<usize>());
    push_string(&mut out, vendor, "vendor string")?;
    let count = u32::try_from(kept.len())
        .map_err(|_| MetaError::unsupported("Vorbis comment", "more than 2^32 comments"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for e in kept {
        push_string(&mut out, e, "comment")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_bytes(vendor: &str, entries: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        b.extend_from_slice(vendor.as_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            b.extend_from_slice(&(e.len() as u32).to_le_bytes());
            b.extend_from_slice(e.as_bytes());
        }
        b
    }

    #[test]
    fn labels_are_found_and_replaced_in_place() {
        let b = list_bytes(
            "v",
            &["TITLE=t", "aigc={}", "X_AIGC_OLD=1", "NOEQUALS", "A=b"],
        );
        let list = parse(&b, "test").expect("parse");
        assert_eq!(list.len, b.len());
        let found = labels(&list);
        assert_eq!(found.len(), 2);
        assert!(found[0].is_primary_field() && !found[1].is_primary_field());
        let out = rebuild(&list, Some("{\"AIGC\":{}}")).expect("rebuild");
        assert_eq!(
            out,
            list_bytes("v", &["TITLE=t", "AIGC={\"AIGC\":{}}", "NOEQUALS", "A=b"])
        );
        let stripped = rebuild(&list, None).expect("rebuild");
        assert_eq!(stripped, list_bytes("v", &["TITLE=t", "NOEQUALS", "A=b"]));
    }

    #[test]
    fn hostile_counts_and_lengths_are_errors() {
        let mut b = list_bytes("v", &[]);
        b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&b, "test").is_err());
        let b = [0xFF, 0xFF, 0xFF, 0xFF, 0];
        assert!(parse(&b, "test").is_err());
        for cut in 0..20 {
            let b = list_bytes("vendor", &["A=b"]);
            let _ = parse(b.get(..cut).unwrap_or(&b), "test");
        }
    }
}
