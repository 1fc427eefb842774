//! AVI: the label is a `LIST/INFO` item with id `AIGC` holding the wrapped JSON (a
//! NUL-terminated INFO string), in the INFO list of the first RIFF (created before `LIST movi`
//! when there is none). Other INFO items (ffmpeg's `ISFT`, …) are kept.
//!
//! The payload should not move: when the INFO list, together with a `JUNK` chunk right after it
//! (ffmpeg reserves one) or right before `movi`, has room, the new list is written in place and
//! the JUNK shrinks or grows to fill the same bytes. Otherwise the list grows and every absolute
//! offset that points past it is shifted: `idx1` entries when they are file offsets (detected
//! from the first entry; ffmpeg writes them relative to `movi`, which moves as a whole), OpenDML
//! `indx` super-index `qwOffset`s and `ix##` `qwBaseOffset`s (also in `RIFF AVIX` extensions),
//! plus the sizes of every enclosing `RIFF`/`LIST`.
//!
//! Also read, and removed on write: INFO items named `AIGC` or whose text holds a label (ffmpeg
//! writes `-metadata comment=` as `ICMT`) in any INFO list, and label properties in XMP `_PMX`.

use crate::bytes::{array, le_u16, le_u32, le_u64, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::riff::{self, Chunk};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

/// The AVI carrier.
pub struct AviCarrier;

/// How deep `LIST`s are followed (real files nest three levels: RIFF, hdrl, strl).
const MAX_DEPTH: usize = 8;

/// A place that may hold labels, in file order.
enum Item {
    /// A `LIST/INFO` with its items; `top` when it is a direct child of the first RIFF.
    Info {
        list: Chunk,
        items: Vec<Chunk>,
        top: bool,
    },
    /// An XMP `_PMX` chunk.
    Xmp(Chunk),
}

/// What the writer needs to know about the file.
#[derive(Default)]
struct Avi {
    /// `RIFF AVI ` and any `RIFF AVIX` extensions, followed by bytes kept as they are.
    riffs: Vec<Chunk>,
    /// The children of the first RIFF (to find `movi`, `idx1`, `JUNK` next to INFO).
    top: Vec<Chunk>,
    /// Every `RIFF`/`LIST` walked into, whose size grows with what is edited inside.
    containers: Vec<Chunk>,
    /// INFO lists and XMP chunks.
    items: Vec<Item>,
    /// OpenDML `indx` chunks.
    indexes: Vec<Chunk>,
}

/// One top-level chunk at `at` (`RIFF` expected), which must fit in the file.
fn top_chunk(b: &[u8], at: usize) -> Result<Chunk, MetaError> {
    let id: [u8; 4] = array(b, at, "AVI RIFF header")?;
    let size = le_u32(b, at + 4, "AVI RIFF header")? as usize;
    let data = at + 8
        ..(at + 8)
            .checked_add(size)
            .filter(|e| *e <= b.len())
            .ok_or_else(|| MetaError::truncated("AVI RIFF chunk", at))?;
    let end = (data.end + size % 2).min(b.len());
    Ok(Chunk {
        start: at,
        id,
        data,
        end,
        pad_missing: false,
    })
}

fn visit(
    b: &[u8],
    chunks: &[Chunk],
    depth: usize,
    in_first_riff: bool,
    avi: &mut Avi,
) -> Result<(), MetaError> {
    for c in chunks {
        if c.is_list(b, b"INFO") {
            avi.items.push(Item::Info {
                list: c.clone(),
                items: riff::info_items(b, c, "AVI")?,
                top: depth == 1 && in_first_riff,
            });
        } else if &c.id == b"_PMX" {
            avi.items.push(Item::Xmp(c.clone()));
        } else if &c.id == b"indx" {
            avi.indexes.push(c.clone());
        } else if &c.id == b"LIST" && !c.is_list(b, b"movi") && depth < MAX_DEPTH {
            avi.containers.push(c.clone());
            let inner = riff::walk(b, c.body(), "AVI LIST", None)?;
            visit(b, &inner, depth + 1, in_first_riff, avi)?;
        }
    }
    Ok(())
}

fn parse(b: &[u8]) -> Result<Avi, MetaError> {
    let first = top_chunk(b, 0)?;
    if &first.id != b"RIFF" || first.form(b).as_ref() != Some(b"AVI ") {
        return Err(MetaError::malformed("AVI", "missing RIFF AVI header"));
    }
    let mut avi = Avi::default();
    let mut at = first.end;
    avi.riffs.push(first);
    // OpenDML extensions follow as further RIFF AVIX chunks; anything else is trailing data.
    while b.get(at..at + 4) == Some(b"RIFF") && b.get(at + 8..at + 12) == Some(b"AVIX") {
        let next = top_chunk(b, at)?;
        at = next.end;
        avi.riffs.push(next);
    }
    for i in 0..avi.riffs.len() {
        let r = avi.riffs[i].clone();
        let children = riff::walk(b, r.body(), "AVI RIFF", None)?;
        if i == 0 {
            avi.top = children.clone();
        }
        avi.containers.push(r);
        visit(b, &children, 1, i == 0, &mut avi)?;
    }
    Ok(avi)
}

/// A replacement of input `range` by `bytes` (an empty range inserts).
struct Edit {
    range: Range<usize>,
    bytes: Vec<u8>,
}

impl Edit {
    fn delta(&self) -> i128 {
        self.bytes.len() as i128 - self.range.len() as i128
    }
}

/// Where input offset `off` lands in the output: after every edit that ends at or before it.
fn map(edits: &[Edit], off: u64) -> Option<u64> {
    let shift: i128 = edits
        .iter()
        .filter(|e| e.range.end as u64 <= off)
        .map(Edit::delta)
        .sum();
    u64::try_from(i128::from(off) + shift).ok()
}

/// `bytes` followed by a `JUNK` chunk so that together they fill exactly `room` bytes.
fn fill_with_junk(mut bytes: Vec<u8>, room: usize) -> Option<Vec<u8>> {
    let rest = room.checked_sub(bytes.len())?;
    if rest == 0 {
        return Some(bytes);
    }
    if rest < 8 || rest % 2 == 1 {
        return None;
    }
    bytes.extend_from_slice(b"JUNK");
    bytes.extend_from_slice(&u32::try_from(rest - 8).ok()?.to_le_bytes());
    bytes.resize(room, 0);
    Some(bytes)
}

fn unsupported(detail: &str) -> MetaError {
    MetaError::unsupported("AVI", detail.to_string())
}

/// The metadata edits: label items removed everywhere, the label written into the target INFO.
fn label_edits(b: &[u8], avi: &Avi, value: &str) -> Result<Vec<Edit>, MetaError> {
    let mut edits = Vec::new();
    let mut target = None;
    for item in &avi.items {
        match item {
            Item::Info { list, items, top } => {
                let kept: Vec<&Chunk> = items
                    .iter()
                    .filter(|i| !riff::is_info_label(b, i))
                    .collect();
                if *top && target.is_none() {
                    target = Some((list, kept));
                } else if kept.len() < items.len() {
                    let bytes = if kept.is_empty() {
                        Vec::new()
                    } else {
                        riff::info_list(b, &kept, None)?
                    };
                    edits.push(Edit {
                        range: list.start..list.end,
                        bytes,
                    });
                }
            }
            Item::Xmp(c) => {
                if let Some(bytes) = riff::xmp_without_labels(b, c)? {
                    edits.push(Edit {
                        range: c.start..c.end,
                        bytes,
                    });
                }
            }
        }
    }
    let junk_at = |at: usize| avi.top.iter().find(|c| c.start == at && &c.id == b"JUNK");
    let (info, region) = match target {
        Some((list, kept)) => {
            let info = riff::info_list(b, &kept, Some(value))?;
            // The INFO list and the JUNK right after it are the room to write in.
            let end = junk_at(list.end).map_or(list.end, |j| j.end);
            (info, list.start..end)
        }
        None => {
            let info = riff::info_list(b, &[], Some(value))?;
            let movi = avi
                .top
                .iter()
                .find(|c| c.is_list(b, b"movi"))
                .ok_or_else(|| MetaError::malformed("AVI", "no LIST movi in the first RIFF"))?;
            // A JUNK right before movi is room for a new list; otherwise insert before movi.
            let junk = avi
                .top
                .iter()
                .find(|c| c.end == movi.start && &c.id == b"JUNK");
            (
                info,
                junk.map_or(movi.start..movi.start, |j| j.start..j.end),
            )
        }
    };
    let bytes = fill_with_junk(info.clone(), region.len()).unwrap_or(info);
    edits.push(Edit {
        range: region,
        bytes,
    });
    Ok(edits)
}

/// The new `qwBaseOffset` of a standard index (OpenDML `ix##`, or an `indx` of chunks) whose
/// data is `data`, after checking that its chunks all move with the base; `None` if unmoved.
fn standard_index_base(data: &[u8], edits: &[Edit]) -> Result<Option<u64>, MetaError> {
    let longs = le_u16(data, 0, "AVI standard index header")? as usize;
    let entries = le_u32(data, 4, "AVI standard index header")? as usize;
    let base = le_u64(data, 12, "AVI standard index qwBaseOffset")?;
    let new_base = map(edits, base).ok_or_else(|| unsupported("index offset out of range"))?;
    if new_base == base {
        return Ok(None);
    }
    // Entries are { dwOffset, dwSize[, dwOffsetField2] } from byte 24, relative to the base.
    let entry_size = longs.saturating_mul(4).max(4);
    let count = entries.min(data.len().saturating_sub(24) / entry_size);
    for i in 0..count {
        let off = u64::from(le_u32(
            data,
            24 + i * entry_size,
            "AVI standard index entry",
        )?);
        if map(edits, base.saturating_add(off)) != new_base.checked_add(off) {
            return Err(unsupported(
                "an OpenDML standard index has chunks on both sides of the rewritten metadata",
            ));
        }
    }
    Ok(Some(new_base))
}

/// Edits that keep every absolute offset pointing at the same bytes after `edits`.
fn offset_edits(b: &[u8], avi: &Avi, edits: &[Edit]) -> Result<Vec<Edit>, MetaError> {
    let mut out = Vec::new();
    let patch = |out: &mut Vec<Edit>, at: usize, old: &[u8], new: Vec<u8>| {
        if old != new.as_slice() {
            out.push(Edit {
                range: at..at + old.len(),
                bytes: new,
            });
        }
    };
    // Container sizes grow by what was edited inside them.
    for c in &avi.containers {
        let body = c.body();
        let inside = |e: &&Edit| {
            if e.range.is_empty() {
                body.start <= e.range.start && e.range.start < c.data.end
            } else {
                body.start <= e.range.start && e.range.end <= c.data.end
            }
        };
        let delta: i128 = edits.iter().filter(inside).map(Edit::delta).sum();
        if delta != 0 {
            let size = u32::try_from(c.data.len() as i128 + delta)
                .map_err(|_| unsupported("the labelled RIFF would pass 4 GiB"))?;
            let old = slice(b, c.start + 4, 4, "AVI chunk size")?;
            patch(&mut out, c.start + 4, old, size.to_le_bytes().to_vec());
        }
    }
    // idx1 holds offsets relative to the movi list (nothing to do) or file offsets.
    let movi = avi.top.iter().find(|c| c.is_list(b, b"movi"));
    let idx1 = avi.top.iter().find(|c| &c.id == b"idx1");
    if let (Some(movi), Some(idx1)) = (movi, idx1) {
        let data = slice(b, idx1.data.start, idx1.data.len(), "AVI idx1")?;
        if let (Ok(id), Ok(off)) = (array::<4>(data, 0, ""), le_u32(data, 8, "")) {
            let off = off as usize;
            let at_relative = movi
                .data
                .start
                .checked_add(off)
                .and_then(|p| b.get(p..p.saturating_add(4)));
            let absolute =
                at_relative != Some(&id[..]) && b.get(off..off.saturating_add(4)) == Some(&id[..]);
            if absolute {
                let mut new = data.to_vec();
                for entry in new.chunks_exact_mut(16) {
                    let old = le_u32(entry, 8, "AVI idx1 entry")?;
                    let moved = map(edits, u64::from(old))
                        .and_then(|o| u32::try_from(o).ok())
                        .ok_or_else(|| unsupported("an idx1 offset would pass 4 GiB"))?;
                    if let Some(field) = entry.get_mut(8..12) {
                        field.copy_from_slice(&moved.to_le_bytes());
                    }
                }
                patch(&mut out, idx1.data.start, data, new);
            }
        }
    }
    // OpenDML super indexes point at ix## chunks, which hold a base offset of their chunks.
    let mut standard = Vec::new();
    for index in &avi.indexes {
        let data = slice(b, index.data.start, index.data.len(), "AVI indx")?;
        let longs = le_u16(data, 0, "AVI indx header")? as usize;
        let kind = *data
            .get(3)
            .ok_or_else(|| MetaError::truncated("AVI indx header", index.data.start))?;
        let entries = le_u32(data, 4, "AVI indx header")? as usize;
        match kind {
            // AVI_INDEX_OF_INDEXES: { qwOffset, dwSize, dwDuration } from byte 24.
            0 => {
                let entry_size = longs.saturating_mul(4);
                if entry_size < 8 {
                    continue;
                }
                let count = entries.min(data.len().saturating_sub(24) / entry_size);
                let mut new = data.to_vec();
                for i in 0..count {
                    let at = 24 + i * entry_size;
                    let old = le_u64(data, at, "AVI indx entry")?;
                    if old == 0 {
                        continue;
                    }
                    standard.push(usize::try_from(old).unwrap_or(usize::MAX));
                    let moved =
                        map(edits, old).ok_or_else(|| unsupported("indx offset out of range"))?;
                    if let Some(field) = new.get_mut(at..at + 8) {
                        field.copy_from_slice(&moved.to_le_bytes());
                    }
                }
                patch(&mut out, index.data.start, data, new);
            }
            // AVI_INDEX_OF_CHUNKS kept directly in indx.
            1 => {
                if let Some(base) = standard_index_base(data, edits)? {
                    let at = index.data.start + 12;
                    patch(
                        &mut out,
                        at,
                        slice(b, at, 8, "")?,
                        base.to_le_bytes().to_vec(),
                    );
                }
            }
            _ => {}
        }
    }
    standard.sort_unstable();
    standard.dedup();
    for at in standard {
        let is_ix = |id: &[u8]| id.starts_with(b"ix") || id.ends_with(b"ix");
        let Some(id) = b.get(at..at.saturating_add(4)) else {
            continue;
        };
        // Only a chunk of indexes (type 1) has a base offset; anything else is left alone.
        if !is_ix(id) || b.get(at + 11) != Some(&1) {
            continue;
        }
        let size = le_u32(b, at + 4, "AVI ix## chunk")? as usize;
        let data = slice(b, at + 8, size, "AVI ix## chunk")?;
        if let Some(base) = standard_index_base(data, edits)? {
            let field = at + 20;
            patch(
                &mut out,
                field,
                slice(b, field, 8, "AVI ix## qwBaseOffset")?,
                base.to_le_bytes().to_vec(),
            );
        }
    }
    Ok(out)
}

impl Carrier for AviCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Avi]
    }

    fn placement(&self) -> &'static str {
        "LIST/INFO item AIGC (before LIST movi, in JUNK room when there is some)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let avi = parse(input)?;
        let mut found = Vec::new();
        for item in &avi.items {
            match item {
                Item::Info { items, .. } => riff::info_labels(input, items, true, &mut found),
                Item::Xmp(c) => riff::xmp_labels(input, c, &mut found)?,
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let avi = parse(input)?;
        let mut edits = label_edits(input, &avi, &record.to_wrapped_json())?;
        edits.sort_by_key(|e| (e.range.start, e.range.end));
        let fixes = offset_edits(input, &avi, &edits)?;
        edits.extend(fixes);
        edits.sort_by_key(|e| (e.range.start, e.range.end));
        let mut out = Rewrite::new();
        let mut at = 0;
        for e in &edits {
            // A hostile index could point into metadata we rewrite: refuse rather than garble.
            if e.range.start < at || e.range.end > input.len() {
                return Err(MetaError::malformed(
                    "AVI",
                    "an index points into a rewritten metadata chunk",
                ));
            }
            out.keep(at..e.range.start);
            out.insert(&e.bytes);
            at = e.range.end;
        }
        out.keep(at..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const AVI: &str = "video.avi";

    fn ck(id: &[u8; 4], data: &[u8]) -> Vec<u8> {
        riff::chunk_bytes(id, data).expect("chunk")
    }

    fn list(form: &[u8; 4], parts: &[Vec<u8>]) -> Vec<u8> {
        let mut data = form.to_vec();
        for p in parts {
            data.extend_from_slice(p);
        }
        ck(b"LIST", &data)
    }

    fn find_all(b: &[u8], needle: &[u8]) -> Vec<usize> {
        b.windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i)
            .collect()
    }

    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize
    }

    fn u64_at(b: &[u8], at: usize) -> usize {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) as usize
    }

    /// (movi fourcc position, idx1 data position, entry count) of a one-RIFF file.
    fn movi_and_idx1(b: &[u8]) -> (usize, usize, usize) {
        let movi = find_all(b, b"movi")[0];
        let idx1 = *find_all(b, b"idx1").last().expect("idx1");
        (movi, idx1 + 8, u32_at(b, idx1 + 4) / 16)
    }

    /// Asserts every idx1 entry points at a chunk with its id and size, relative to movi or
    /// absolute as `absolute` says.
    fn assert_idx1_points_at_chunks(b: &[u8], absolute: bool) {
        let (movi, idx1, n) = movi_and_idx1(b);
        assert!(n > 10);
        for i in 0..n {
            let e = idx1 + i * 16;
            let at = u32_at(b, e + 8) + if absolute { 0 } else { movi };
            assert_eq!(b[at..at + 4], b[e..e + 4], "idx1 entry {i}");
            assert_eq!(u32_at(b, at + 4), u32_at(b, e + 12), "idx1 entry {i} size");
        }
    }

    /// Writes a label and checks the independent readers, decoding and the packet hashes.
    fn assert_tools_agree(input: &[u8], out: &[u8], rec: &AigcRecord) {
        let before = temp_file("in.avi", input);
        let after = temp_file("out.avi", out);
        // exiftool 12.57 names an unknown INFO id after itself: RIFF:Unknown_AIGC (with -u).
        let tags = exiftool(&after, &["-u", "-b"]);
        assert_eq!(tags["RIFF:Unknown_AIGC"], rec.to_wrapped_json(), "{tags}");
        assert_eq!(ffprobe_format_tags(&after)["AIGC"], rec.to_wrapped_json());
        assert_same_media(&before, &after);
    }

    #[test]
    fn avi_label_fits_in_junk_and_nothing_moves() {
        let input = sample(AVI);
        let rec = record("avi-1");
        let out = write(&AviCarrier, &input, &rec);
        assert_one_label_as(&AviCarrier, &out, &rec, Form::Wrapped);
        // ffmpeg's INFO list starts at 8926 and its JUNK ends at movi (9984).
        assert_eq!(out.len(), input.len());
        assert_eq!(out[..8926], input[..8926]);
        assert_eq!(out[9984..], input[9984..]);
        assert!(String::from_utf8_lossy(&out[8926..9984]).contains("ISFT"));
        let rec2 = record_with_reserved("avi-2", 100);
        let again = write(&AviCarrier, &out, &rec2);
        assert_one_label_as(&AviCarrier, &again, &rec2, Form::Wrapped);
        assert_eq!(again[9984..], input[9984..]);
        assert_tools_agree(&input, &again, &rec2);
    }

    #[test]
    fn avi_large_label_is_inserted_and_relative_idx1_still_holds() {
        let input = sample(AVI);
        // 3000 bytes do not fit the 1016-byte JUNK: the INFO list grows and movi moves.
        let rec = record_with_reserved("avi-big", 3000);
        let out = write(&AviCarrier, &input, &rec);
        assert_one_label_as(&AviCarrier, &out, &rec, Form::Wrapped);
        assert!(out.len() > input.len());
        assert_eq!(u32_at(&out, 4), out.len() - 8);
        assert_idx1_points_at_chunks(&out, false);
        assert_tools_agree(&input, &out, &rec);
        let again = write(&AviCarrier, &out, &record_with_reserved("avi-big", 2990));
        assert_one_label_as(
            &AviCarrier,
            &again,
            &record_with_reserved("avi-big", 2990),
            Form::Wrapped,
        );
        assert_eq!(
            again.len(),
            out.len(),
            "a smaller label fits where the old one was"
        );
    }

    #[test]
    fn avi_absolute_idx1_offsets_are_shifted() {
        let mut input = sample(AVI);
        let (movi, idx1, n) = movi_and_idx1(&input);
        for i in 0..n {
            let at = idx1 + i * 16 + 8;
            let abs = (u32_at(&input, at) + movi) as u32;
            input[at..at + 4].copy_from_slice(&abs.to_le_bytes());
        }
        assert_idx1_points_at_chunks(&input, true);
        let rec = record_with_reserved("avi-abs", 3000);
        let out = write(&AviCarrier, &input, &rec);
        assert_idx1_points_at_chunks(&out, true);
        assert_tools_agree(&input, &out, &rec);
    }

    #[test]
    fn avi_reads_and_replaces_labels_written_by_ffmpeg() {
        let old = record("by-ffmpeg").to_wrapped_json();
        let comment = format!("comment={old}");
        let input = ffmpeg_copy("ff.avi", &sample(AVI), &["-metadata", &comment]);
        let found = AviCarrier.read(&input).expect("read");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].placement, "LIST/INFO ICMT");
        assert_eq!(found[0].value, old);
        let rec = record("ours");
        let out = write(&AviCarrier, &input, &rec);
        assert_one_label_as(&AviCarrier, &out, &rec, Form::Wrapped);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("ISFT") && !text.contains("ICMT"));
        assert_tools_agree(&input, &out, &rec);
    }

    /// A small OpenDML file: a super index in strl, ix00 standard indexes in the movi of the
    /// first RIFF and of a RIFF AVIX, an absolute idx1, and an XMP `_PMX` with a label between
    /// the two RIFFs. Offsets are patched in after the layout is built.
    fn opendml(old: &AigcRecord) -> Vec<u8> {
        let frames: [&[u8]; 3] = [b"frame-zero", b"frame-one!", b"frame-two!"];
        let mut super_index = vec![4, 0, 0, 0, 2, 0, 0, 0];
        super_index.extend_from_slice(b"00dc");
        super_index.resize(24 + 2 * 16, 0);
        let std_index = |n: usize| {
            let mut d = vec![2, 0, 0, 1, n as u8, 0, 0, 0];
            d.extend_from_slice(b"00dc");
            d.resize(24 + n * 8, 0);
            d
        };
        let hdrl = list(
            b"hdrl",
            &[
                ck(b"avih", &[0; 56]),
                list(
                    b"strl",
                    &[
                        ck(b"strh", &[0; 56]),
                        ck(b"strf", &[0; 40]),
                        ck(b"indx", &super_index),
                    ],
                ),
            ],
        );
        let info = list(b"INFO", &[ck(b"ISFT", b"synth\0")]);
        let movi = list(
            b"movi",
            &[
                ck(b"00dc", frames[0]),
                ck(b"00dc", frames[1]),
                ck(b"ix00", &std_index(2)),
            ],
        );
        let mut idx1 = Vec::new();
        for _ in 0..2 {
            idx1.extend_from_slice(b"00dc");
            idx1.extend_from_slice(&[0x10, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0]);
        }
        let pmx = ck(b"_PMX", crate::xmp::new_packet(old).as_bytes());
        let mut first = b"AVI ".to_vec();
        for p in [hdrl, info, movi, ck(b"idx1", &idx1), pmx] {
            first.extend(p);
        }
        let mut b = ck(b"RIFF", &first);
        let avix_movi = list(
            b"movi",
            &[ck(b"00dc", frames[2]), ck(b"ix00", &std_index(1))],
        );
        let mut avix = b"AVIX".to_vec();
        avix.extend(avix_movi);
        b.extend(ck(b"RIFF", &avix));

        let movis: Vec<usize> = find_all(&b, b"movi").iter().map(|m| m - 8).collect();
        let frames_at = find_all(&b, b"00dc")
            .into_iter()
            .filter(|&p| b[p + 4] == 10)
            .collect::<Vec<_>>();
        let ix = find_all(&b, b"ix00");
        let indx = find_all(&b, b"indx")[0] + 8;
        for (i, (&at, size)) in ix.iter().zip([48u32, 40]).enumerate() {
            let e = indx + 24 + i * 16;
            b[e..e + 8].copy_from_slice(&(at as u64).to_le_bytes());
            b[e + 8..e + 12].copy_from_slice(&size.to_le_bytes());
            b[e + 12..e + 16].copy_from_slice(&1u32.to_le_bytes());
            let base = movis[i];
            b[at + 20..at + 28].copy_from_slice(&(base as u64).to_le_bytes());
            let chunks: &[usize] = if i == 0 {
                &frames_at[..2]
            } else {
                &frames_at[2..]
            };
            for (k, &f) in chunks.iter().enumerate() {
                let e = at + 32 + k * 8;
                b[e..e + 4].copy_from_slice(&((f + 8 - base) as u32).to_le_bytes());
                b[e + 4..e + 8].copy_from_slice(&10u32.to_le_bytes());
            }
        }
        let idx1_at = find_all(&b, b"idx1")[0] + 8;
        for (k, &frame) in frames_at.iter().take(2).enumerate() {
            let e = idx1_at + k * 16 + 8;
            b[e..e + 4].copy_from_slice(&(frame as u32).to_le_bytes());
        }
        b
    }

    /// Follows every index of an OpenDML file from scratch and checks it lands on its frame.
    fn assert_opendml_indexes_hold(b: &[u8]) {
        let frames: [&[u8]; 3] = [b"frame-zero", b"frame-one!", b"frame-two!"];
        let riff_end = u32_at(b, 4) + 8;
        assert_eq!(&b[riff_end..riff_end + 4], b"RIFF");
        assert_eq!(riff_end + 8 + u32_at(b, riff_end + 4), b.len());
        let indx = find_all(b, b"indx")[0] + 8;
        let mut seen = Vec::new();
        for i in 0..2 {
            let at = u64_at(b, indx + 24 + i * 16);
            assert_eq!(&b[at..at + 4], b"ix00");
            let base = u64_at(b, at + 20);
            for k in 0..b[at + 12] as usize {
                let data = base + u32_at(b, at + 32 + k * 8);
                assert_eq!(&b[data - 8..data - 4], b"00dc");
                seen.push(&b[data..data + 10]);
            }
        }
        assert_eq!(seen, frames);
        let idx1 = find_all(b, b"idx1")[0] + 8;
        for (k, frame) in frames.iter().take(2).enumerate() {
            let at = u32_at(b, idx1 + k * 16 + 8);
            assert_eq!(&&b[at + 8..at + 18], frame);
        }
    }

    #[test]
    fn avi_opendml_and_avix_offsets_follow_the_moved_data() {
        let old = record("old");
        let input = opendml(&old);
        assert_opendml_indexes_hold(&input);
        let found = AviCarrier.read(&input).expect("read");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].placement, "XMP (_PMX) TC260:AIGC");
        let rec = record("new");
        let out = write(&AviCarrier, &input, &rec);
        assert_one_label_as(&AviCarrier, &out, &rec, Form::Wrapped);
        assert_ne!(out.len(), input.len());
        assert_opendml_indexes_hold(&out);
        let again = write(&AviCarrier, &out, &record_with_reserved("newer", 500));
        assert_one_label_as(
            &AviCarrier,
            &again,
            &record_with_reserved("newer", 500),
            Form::Wrapped,
        );
        assert_opendml_indexes_hold(&again);
        assert!(String::from_utf8_lossy(&again).contains("synth"));
    }

    #[test]
    fn avi_hostile_input_never_panics() {
        let input = sample(AVI);
        HostileInputs::new(3000, 7)
            .hot(0..10_000)
            .assert_never_panic(&AviCarrier, &input);
        let odml = opendml(&record("old"));
        assert_hostile_inputs_never_panic(&AviCarrier, &odml, 4000, 1);
        // A super index pointing into the INFO list must not produce a garbled file.
        let mut hostile = odml.clone();
        let indx = find_all(&hostile, b"indx")[0] + 8;
        let info = find_all(&hostile, b"INFO")[0] - 8;
        hostile[indx + 24..indx + 32].copy_from_slice(&(info as u64).to_le_bytes());
        let _ = AviCarrier.write(&hostile, &record_with_reserved("x", 3000));
    }
}
