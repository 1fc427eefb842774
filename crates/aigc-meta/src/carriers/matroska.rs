//! Matroska and WebM: the label is `Segment/Tags/Tag/SimpleTag` with `TagName` `AIGC` and
//! `TagString` the wrapped JSON, in a `Tag` whose `Targets` is empty (the whole segment).
//! SimpleTags whose name contains `AIGC` anywhere in any `Tags` (track-targeted or nested) are
//! read, and removed on write.
//!
//! Writing never moves a Cluster: the new `Tags` replaces the old one when it fits (the rest
//! becomes an EBML Void), or else the old one becomes a Void and the new one is appended to the
//! Segment (which must be the last element), growing its size field and re-pointing the
//! SeekHead's Tags entry. CRC-32 elements of rewritten elements are recomputed.

use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

const FORMAT: &str = "Matroska";

const EBML_HEADER: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const CUES: u32 = 0x1C53_BB6B;
const ATTACHMENTS: u32 = 0x1941_A469;
const CHAPTERS: u32 = 0x1043_A770;
const TAGS: u32 = 0x1254_C367;
const TAG: u32 = 0x7373;
const TARGETS: u32 = 0x63C0;
const SIMPLE_TAG: u32 = 0x67C8;
const TAG_NAME: u32 = 0x45A3;
const TAG_STRING: u32 = 0x4487;
const TAG_BINARY: u32 = 0x4485;
/// TagTrackUID, TagEditionUID, TagChapterUID, TagAttachmentUID: a Tag with any non-zero one
/// applies to part of the segment only.
const TARGET_UIDS: [u32; 4] = [0x63C5, 0x63C9, 0x63C4, 0x63C6];
const VOID: u32 = 0xEC;
const CRC32: u32 = 0xBF;
/// Elements that may follow a Cluster in a Segment: they end an unknown-size Cluster.
const LEVEL1: [u32; 10] = [
    SEEK_HEAD,
    INFO,
    TRACKS,
    CLUSTER,
    CUES,
    ATTACHMENTS,
    CHAPTERS,
    TAGS,
    EBML_HEADER,
    SEGMENT,
];
/// The name we write.
const LABEL_NAME: &str = "AIGC";
/// Deepest SimpleTag nesting we follow; hostile files could otherwise exhaust the stack.
const MAX_NESTING: usize = 32;

fn check_depth(depth: usize, at: usize) -> Result<(), MetaError> {
    if depth > MAX_NESTING {
        return Err(MetaError::unsupported(
            FORMAT,
            format!("SimpleTags nested deeper than {MAX_NESTING} at byte {at}"),
        ));
    }
    Ok(())
}

/// The Matroska / WebM carrier.
pub struct MatroskaCarrier;

/// One EBML element: its bytes `start..end`, its body and how its size was written.
#[derive(Debug, Clone, Copy)]
struct Element {
    id: u32,
    start: usize,
    body: usize,
    end: usize,
    /// Bytes of the size field (1 to 8).
    size_len: usize,
    /// The size field held the reserved "unknown" value.
    unknown: bool,
}

impl Element {
    fn range(&self) -> Range<usize> {
        self.start..self.end
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// The body's bytes; reads inside an element go through this so they stay inside it.
    fn body<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        b.get(self.body..self.end).unwrap_or_default()
    }
}

/// The bytes `range` of `b`. Ranges come from parsed elements, which lie inside the input; an
/// empty slice stands in for a broken invariant instead of a panic.
fn raw(b: &[u8], range: Range<usize>) -> &[u8] {
    b.get(range).unwrap_or_default()
}

fn byte(b: &[u8], at: usize, what: &str) -> Result<u8, MetaError> {
    b.get(at)
        .copied()
        .ok_or_else(|| MetaError::truncated(what, at))
}

/// An element ID (marker bits kept) and its length.
fn read_id(b: &[u8], at: usize) -> Result<(u32, usize), MetaError> {
    let first = byte(b, at, "EBML element ID")?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Err(MetaError::malformed(
            FORMAT,
            format!("invalid EBML element ID at byte {at}"),
        ));
    }
    let mut id = 0u32;
    for i in 0..len {
        id = id << 8 | u32::from(byte(b, at + i, "EBML element ID")?);
    }
    Ok((id, len))
}

/// An element size (`None` when unknown) and its length.
fn read_size(b: &[u8], at: usize) -> Result<(Option<u64>, usize), MetaError> {
    let first = byte(b, at, "EBML element size")?;
    if first == 0 {
        return Err(MetaError::malformed(
            FORMAT,
            format!("invalid EBML size at byte {at}"),
        ));
    }
    let len = first.leading_zeros() as usize + 1;
    let mut value = u64::from(first & 0xFFu8.checked_shr(len as u32).unwrap_or(0));
    for i in 1..len {
        value = value << 8 | u64::from(byte(b, at + i, "EBML element size")?);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Ok(((value != all_ones).then_some(value), len))
}

fn id_name(id: u32) -> String {
    match id {
        SEGMENT => "Segment".into(),
        SEEK_HEAD => "SeekHead".into(),
        CLUSTER => "Cluster".into(),
        TAGS => "Tags".into(),
        TAG => "Tag".into(),
        SIMPLE_TAG => "SimpleTag".into(),
        _ => format!("element 0x{id:X}"),
    }
}

/// The element at `at`, which must end by `limit`; an unknown size runs to `limit`.
fn element_at(b: &[u8], at: usize, limit: usize) -> Result<Element, MetaError> {
    let (id, id_len) = read_id(b, at)?;
    let (size, size_len) = read_size(b, at + id_len)?;
    let body = at + id_len + size_len;
    if body > limit {
        return Err(MetaError::truncated(format!("{} header", id_name(id)), at));
    }
    let end = match size {
        None => limit,
        Some(size) => usize::try_from(size)
            .ok()
            .and_then(|s| body.checked_add(s))
            .filter(|end| *end <= limit)
            .ok_or_else(|| MetaError::truncated(id_name(id), at))?,
    };
    Ok(Element {
        id,
        start: at,
        body,
        end,
        size_len,
        unknown: size.is_none(),
    })
}

/// The children of `parent`; an unknown size is an error below the Segment level.
fn children(b: &[u8], parent: &Element) -> Result<Vec<Element>, MetaError> {
    let mut out = Vec::new();
    let mut at = parent.body;
    while at < parent.end {
        let el = element_at(b, at, parent.end)?;
        if el.unknown {
            return Err(MetaError::malformed(
                FORMAT,
                format!(
                    "{} at byte {at} inside {} has an unknown size",
                    id_name(el.id),
                    id_name(parent.id)
                ),
            ));
        }
        at = el.end;
        out.push(el);
    }
    Ok(out)
}

/// Where an unknown-size Cluster ends: at the next Segment-level element, or at `limit`.
fn cluster_end(b: &[u8], cluster: &Element) -> Result<usize, MetaError> {
    let mut at = cluster.body;
    while at < cluster.end {
        let (id, _) = read_id(b, at)?;
        if LEVEL1.contains(&id) {
            return Ok(at);
        }
        let el = element_at(b, at, cluster.end)?;
        if el.unknown {
            return Err(MetaError::unsupported(
                FORMAT,
                format!("unknown-size element inside an unknown-size Cluster at byte {at}"),
            ));
        }
        at = el.end;
    }
    Ok(cluster.end)
}

/// The Segment and its top-level children.
struct Document {
    segment: Element,
    level1: Vec<Element>,
    /// Nothing follows the Segment, so it can grow at the end of the file.
    segment_is_last: bool,
}

fn parse(b: &[u8]) -> Result<Document, MetaError> {
    let header = element_at(b, 0, b.len())?;
    if header.id != EBML_HEADER || header.unknown {
        return Err(MetaError::malformed(FORMAT, "missing EBML header"));
    }
    let mut at = header.end;
    let segment = loop {
        if at >= b.len() {
            return Err(MetaError::malformed(FORMAT, "no Segment element"));
        }
        let el = element_at(b, at, b.len())?;
        if el.id == SEGMENT {
            break el;
        }
        if el.unknown {
            return Err(MetaError::malformed(
                FORMAT,
                format!("{} before the Segment has an unknown size", id_name(el.id)),
            ));
        }
        at = el.end;
    };
    let mut level1 = Vec::new();
    let mut at = segment.body;
    while at < segment.end {
        let mut el = element_at(b, at, segment.end)?;
        if el.unknown {
            if el.id != CLUSTER {
                return Err(MetaError::unsupported(
                    FORMAT,
                    format!(
                        "{} at byte {at} has an unknown size (only Clusters may)",
                        id_name(el.id)
                    ),
                ));
            }
            el.end = cluster_end(b, &el)?;
        }
        if el.end <= at {
            return Err(MetaError::malformed(FORMAT, "empty unknown-size Cluster"));
        }
        at = el.end;
        level1.push(el);
    }
    Ok(Document {
        segment,
        level1,
        segment_is_last: segment.end == b.len(),
    })
}

fn is_label_name(name: &str) -> bool {
    name.as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

/// An EBML string: UTF-8, possibly padded with NULs.
fn string(b: &[u8], el: &Element) -> String {
    let body = el.body(b);
    let end = body.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(body.get(..end).unwrap_or_default()).into_owned()
}

fn unsigned(b: &[u8], el: &Element) -> Result<u64, MetaError> {
    let body = el.body(b);
    if body.len() > 8 {
        return Err(MetaError::malformed(
            FORMAT,
            format!(
                "unsigned integer at byte {} is longer than 8 bytes",
                el.start
            ),
        ));
    }
    Ok(body.iter().fold(0u64, |v, c| v << 8 | u64::from(*c)))
}

/// A SimpleTag's name and value.
fn simple_tag(b: &[u8], st: &Element) -> Result<(String, String, Vec<Element>), MetaError> {
    let kids = children(b, st)?;
    let mut name = String::new();
    let mut value = None;
    for k in &kids {
        match k.id {
            TAG_NAME => name = string(b, k),
            TAG_STRING => value = Some(string(b, k)),
            TAG_BINARY if value.is_none() => value = Some(string(b, k)),
            _ => {}
        }
    }
    Ok((name, value.unwrap_or_default(), kids))
}

/// Whether a Tag applies to the whole segment: no Targets, or Targets without non-zero UIDs.
fn is_global(b: &[u8], tag_kids: &[Element]) -> Result<bool, MetaError> {
    for t in tag_kids.iter().filter(|k| k.id == TARGETS) {
        for uid in children(b, t)?
            .iter()
            .filter(|u| TARGET_UIDS.contains(&u.id))
        {
            if unsigned(b, uid)? != 0 {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn read_simple_tag(
    b: &[u8],
    st: &Element,
    path: &str,
    primary_place: bool,
    depth: usize,
    found: &mut Vec<FoundLabel>,
) -> Result<(), MetaError> {
    check_depth(depth, st.start)?;
    let (name, value, kids) = simple_tag(b, st)?;
    if is_label_name(&name) {
        found.push(FoundLabel::new(
            format!("{path} {name}"),
            primary_place && name == LABEL_NAME,
            value,
        ));
    }
    for nested in kids.iter().filter(|k| k.id == SIMPLE_TAG) {
        read_simple_tag(
            b,
            nested,
            &format!("{path}/SimpleTag"),
            false,
            depth + 1,
            found,
        )?;
    }
    Ok(())
}

fn read_tags(b: &[u8], tags: &Element, found: &mut Vec<FoundLabel>) -> Result<(), MetaError> {
    for tag in children(b, tags)?.iter().filter(|t| t.id == TAG) {
        let kids = children(b, tag)?;
        let global = is_global(b, &kids)?;
        let path = if global {
            "Segment/Tags/Tag/SimpleTag"
        } else {
            "Segment/Tags/Tag(targeted)/SimpleTag"
        };
        for st in kids.iter().filter(|k| k.id == SIMPLE_TAG) {
            read_simple_tag(b, st, path, global, 0, found)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The bytes of an element ID (its marker bits are part of the value).
fn id_bytes(id: u32) -> Vec<u8> {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|c| **c == 0).count().min(3);
    bytes.get(skip..).unwrap_or_default().to_vec()
}

/// `size` as an EBML size of at least `min_len` bytes, or `None` when it needs more than 8.
fn size_bytes(size: usize, min_len: usize) -> Option<Vec<u8>> {
    let size = size as u64;
    let len = (min_len.max(1)..=8).find(|len| size < (1u64 << (7 * len)) - 1)?;
    let marked = size | 1u64 << (7 * len);
    Some(marked.to_be_bytes().get(8 - len..)?.to_vec())
}

/// An element with a size field of at least `min_size_len` bytes.
fn element(id: u32, body: &[u8], min_size_len: usize) -> Result<Vec<u8>, MetaError> {
    let size = size_bytes(body.len(), min_size_len).ok_or_else(|| {
        MetaError::unsupported(FORMAT, format!("{} is too large to encode", id_name(id)))
    })?;
    let mut out = id_bytes(id);
    out.extend(size);
    out.extend_from_slice(body);
    Ok(out)
}

/// An element whose body starts with a CRC-32 of the rest, when `crc` is asked for.
fn element_with_crc(
    id: u32,
    content: &[u8],
    crc: bool,
    min_size_len: usize,
) -> Result<Vec<u8>, MetaError> {
    if !crc {
        return element(id, content, min_size_len);
    }
    let mut body = vec![0xBF, 0x84];
    body.extend_from_slice(&crc32fast::hash(content).to_le_bytes());
    body.extend_from_slice(content);
    element(id, &body, min_size_len)
}

/// A Void element exactly `len` bytes long (`len` ≥ 2).
fn void(len: usize) -> Result<Vec<u8>, MetaError> {
    let mut out = match len {
        0 | 1 => {
            return Err(MetaError::unsupported(
                FORMAT,
                "cannot pad a single byte with a Void element",
            ));
        }
        2..=128 => vec![0xEC, 0x80 | (len - 2) as u8],
        _ => {
            let mut v = vec![0xEC, 0x01];
            v.extend_from_slice(&((len - 9) as u64).to_be_bytes()[1..]);
            v
        }
    };
    out.resize(len, 0);
    Ok(out)
}

/// The element built by `build(min_size_len)` padded with a Void to exactly `space` bytes, or
/// `None` when it does not fit. A one-byte gap is closed by widening the size field.
fn fit(
    space: usize,
    size_len: usize,
    build: impl Fn(usize) -> Result<Vec<u8>, MetaError>,
) -> Result<Option<Vec<u8>>, MetaError> {
    for len in size_len..=8 {
        let mut bytes = build(len)?;
        match space.checked_sub(bytes.len()) {
            None => return Ok(None),
            Some(0) => return Ok(Some(bytes)),
            Some(1) => continue,
            Some(gap) => {
                bytes.extend(void(gap)?);
                return Ok(Some(bytes));
            }
        }
    }
    Ok(None)
}

/// A SimpleTag without nested label SimpleTags, or `None` when it is a label itself.
fn strip_simple_tag(b: &[u8], st: &Element, depth: usize) -> Result<Option<Vec<u8>>, MetaError> {
    check_depth(depth, st.start)?;
    let (name, _, kids) = simple_tag(b, st)?;
    if is_label_name(&name) {
        return Ok(None);
    }
    let mut body = Vec::with_capacity(st.end - st.body);
    let mut changed = false;
    for k in &kids {
        if k.id == SIMPLE_TAG {
            match strip_simple_tag(b, k, depth + 1)? {
                Some(kept) => {
                    changed |= kept.as_slice() != raw(b, k.range());
                    body.extend(kept);
                }
                None => changed = true,
            }
        } else {
            body.extend_from_slice(raw(b, k.range()));
        }
    }
    if !changed {
        return Ok(Some(raw(b, st.range()).to_vec()));
    }
    element(SIMPLE_TAG, &body, st.size_len).map(Some)
}

/// A Tag without label SimpleTags, or `None` when none of its SimpleTags is left.
fn strip_tag(b: &[u8], tag: &Element) -> Result<Option<Vec<u8>>, MetaError> {
    let kids = children(b, tag)?;
    let mut body = Vec::with_capacity(tag.end - tag.body);
    let mut changed = false;
    let mut simple_tags = 0;
    for k in &kids {
        if k.id == SIMPLE_TAG {
            match strip_simple_tag(b, k, 0)? {
                Some(kept) => {
                    simple_tags += 1;
                    changed |= kept.as_slice() != raw(b, k.range());
                    body.extend(kept);
                }
                None => changed = true,
            }
        } else {
            body.extend_from_slice(raw(b, k.range()));
        }
    }
    if simple_tags == 0 {
        return Ok(None);
    }
    if !changed {
        return Ok(Some(raw(b, tag.range()).to_vec()));
    }
    element(TAG, &body, tag.size_len).map(Some)
}

/// A Tags element's content without label SimpleTags (and without its CRC-32 and Voids),
/// whether it had a CRC-32, and whether anything was removed.
fn strip_tags(b: &[u8], tags: &Element) -> Result<(Vec<u8>, bool, bool), MetaError> {
    let mut content = Vec::with_capacity(tags.end - tags.body);
    let mut crc = false;
    let mut changed = false;
    for k in children(b, tags)? {
        match k.id {
            CRC32 => crc = true,
            VOID => {}
            TAG => match strip_tag(b, &k)? {
                Some(kept) => {
                    changed |= kept.as_slice() != raw(b, k.range());
                    content.extend(kept);
                }
                None => changed = true,
            },
            _ => content.extend_from_slice(raw(b, k.range())),
        }
    }
    Ok((content, crc, changed))
}

/// The Tag we add: empty Targets (whole segment) and one SimpleTag.
fn label_tag(json: &str) -> Result<Vec<u8>, MetaError> {
    let mut simple = element(TAG_NAME, LABEL_NAME.as_bytes(), 1)?;
    simple.extend(element(TAG_STRING, json.as_bytes(), 1)?);
    let mut tag = element(TARGETS, &[], 1)?;
    tag.extend(element(SIMPLE_TAG, &simple, 1)?);
    element(TAG, &tag, 1)
}

/// Input bytes `range` replaced by new bytes.
type Edit = (Range<usize>, Vec<u8>);

/// One SeekHead entry.
struct SeekEntry {
    seek: Element,
    id: Vec<u8>,
    position: Option<(Element, u64)>,
}

fn seek_entries(b: &[u8], head: &Element) -> Result<(Vec<Element>, Vec<SeekEntry>), MetaError> {
    let kids = children(b, head)?;
    let mut entries = Vec::new();
    for seek in kids.iter().filter(|k| k.id == SEEK) {
        let mut id = Vec::new();
        let mut position = None;
        for k in children(b, seek)? {
            match k.id {
                SEEK_ID => id = k.body(b).to_vec(),
                SEEK_POSITION => position = Some((k, unsigned(b, &k)?)),
                _ => {}
            }
        }
        entries.push(SeekEntry {
            seek: *seek,
            id,
            position,
        });
    }
    Ok((kids, entries))
}

/// Edits that point the SeekHead's Tags entry (the one at `old`, if any) at `new`: in place
/// when the position field is wide enough, else a rebuilt SeekHead that grows into the Void
/// right after it.
fn repoint_seek_head(
    b: &[u8],
    doc: &Document,
    old: Option<u64>,
    new: u64,
) -> Result<Vec<Edit>, MetaError> {
    let at = doc
        .level1
        .iter()
        .position(|e| e.id == SEEK_HEAD)
        .ok_or_else(|| {
            MetaError::unsupported(
                FORMAT,
                "the new Tags must be appended but there is no SeekHead to point at them",
            )
        })?;
    let head = doc.level1[at];
    let (kids, entries) = seek_entries(b, &head)?;
    let tags_id = id_bytes(TAGS);
    let target = entries
        .iter()
        .find(|e| e.id == tags_id && old.is_some() && e.position.as_ref().map(|p| p.1) == old);
    let has_crc = kids.first().is_some_and(|k| k.id == CRC32);
    // The SeekHead's content after its CRC-32, built from its children.
    let content = |replace: Option<(&Element, Vec<u8>)>, append: Option<Vec<u8>>| {
        let mut c = Vec::with_capacity(head.end - head.body + 32);
        for k in &kids {
            match &replace {
                _ if k.id == CRC32 => {}
                Some((seek, bytes)) if seek.start == k.start => c.extend_from_slice(bytes),
                _ => c.extend_from_slice(raw(b, k.range())),
            }
        }
        if let Some(extra) = append {
            c.extend(extra);
        }
        c
    };
    if let Some((pos_el, _)) = target.and_then(|t| t.position.as_ref()) {
        let width = pos_el.end - pos_el.body;
        if width >= 8 || (width > 0 && new < 1u64 << (8 * width)) {
            // Same layout: rewrite the position bytes and the CRC.
            let mut bytes = raw(b, head.range()).to_vec();
            let rel = pos_el.body - head.start;
            let value = new.to_be_bytes();
            let field = bytes
                .get_mut(rel..rel + width)
                .ok_or_else(|| MetaError::truncated("SeekPosition", pos_el.start))?;
            field.fill(0);
            let n = width.min(8);
            field[width - n..].copy_from_slice(&value[8 - n..]);
            if let Some(crc) = kids.first().filter(|k| k.id == CRC32 && k.len() == 6) {
                let sum = crc32fast::hash(bytes.get(crc.end - head.start..).unwrap_or_default());
                let at = crc.body - head.start;
                if let Some(field) = bytes.get_mut(at..at + 4) {
                    field.copy_from_slice(&sum.to_le_bytes());
                }
            }
            return Ok(vec![(head.range(), bytes)]);
        }
    }
    let mut seek_body = element(SEEK_ID, &tags_id, 1)?;
    seek_body.extend(element(SEEK_POSITION, &minimal_uint(new), 1)?);
    let new_seek = element(SEEK, &seek_body, 1)?;
    let new_content = match target {
        Some(t) => content(Some((&t.seek, new_seek)), None),
        None => content(None, Some(new_seek)),
    };
    let build = |len| element_with_crc(SEEK_HEAD, &new_content, has_crc, len);
    let following_void = doc.level1.get(at + 1).filter(|e| e.id == VOID);
    let space = head.len() + following_void.map_or(0, |v| v.len());
    let end = following_void.map_or(head.end, |v| v.end);
    match fit(space, head.size_len, build)? {
        Some(bytes) => Ok(vec![(head.start..end, bytes)]),
        None => Err(MetaError::unsupported(
            FORMAT,
            "the SeekHead has no room for the moved Tags entry (no Void after it to grow into)",
        )),
    }
}

/// The edit that gives the Segment a body of `body_len` bytes, in its size field's width
/// (none for an unknown-size Segment, which runs to the end of the file anyway).
fn segment_size(doc: &Document, body_len: usize) -> Result<Option<Edit>, MetaError> {
    let seg = &doc.segment;
    if seg.unknown {
        return Ok(None);
    }
    let field = size_bytes(body_len, seg.size_len)
        .filter(|f| f.len() == seg.size_len)
        .ok_or_else(|| {
            MetaError::unsupported(
                FORMAT,
                "the Segment's size field is too narrow for new Tags",
            )
        })?;
    Ok(Some((seg.body - seg.size_len..seg.body, field)))
}

fn minimal_uint(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|c| **c == 0).count().min(7);
    bytes.get(skip..).unwrap_or_default().to_vec()
}

impl Carrier for MatroskaCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Mkv, Format::WebM]
    }

    fn placement(&self) -> &'static str {
        "Segment/Tags/Tag (whole segment)/SimpleTag TagName AIGC, TagString"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let doc = parse(input)?;
        let mut found = Vec::new();
        for tags in doc.level1.iter().filter(|e| e.id == TAGS) {
            read_tags(input, tags, &mut found)?;
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let doc = parse(input)?;
        let ours = label_tag(&record.to_wrapped_json())?;
        let mut edits: Vec<Edit> = Vec::new();
        let all_tags: Vec<(usize, Element)> = doc
            .level1
            .iter()
            .enumerate()
            .filter(|(_, e)| e.id == TAGS)
            .map(|(i, e)| (i, *e))
            .collect();
        // Every Tags element but the first loses its labels in place.
        for (_, tags) in all_tags.iter().skip(1) {
            let (content, crc, changed) = strip_tags(input, tags)?;
            if !changed {
                continue;
            }
            let bytes = if content.is_empty() {
                void(tags.len())?
            } else {
                fit(tags.len(), tags.size_len, |len| {
                    element_with_crc(TAGS, &content, crc, len)
                })?
                .ok_or_else(|| MetaError::malformed(FORMAT, "stripped Tags grew"))?
            };
            edits.push((tags.range(), bytes));
        }
        let seek_head_crc = match doc.level1.iter().find(|e| e.id == SEEK_HEAD) {
            Some(h) => children(input, h)?.first().is_some_and(|k| k.id == CRC32),
            None => false,
        };
        let mut append = None;
        match all_tags.first() {
            Some((i, main)) => {
                let (mut content, crc, _) = strip_tags(input, main)?;
                content.extend_from_slice(&ours);
                // The space of the old Tags and any Voids right after it.
                let end = doc.level1[i + 1..]
                    .iter()
                    .take_while(|e| e.id == VOID)
                    .last()
                    .map_or(main.end, |v| v.end);
                let build = |len| element_with_crc(TAGS, &content, crc, len);
                if end == doc.segment.end && doc.segment_is_last {
                    // Already at the end of the file: it can grow (or shrink) where it is.
                    let bytes = build(main.size_len)?;
                    let body_len = (main.start - doc.segment.body) + bytes.len();
                    edits.extend(segment_size(&doc, body_len)?);
                    edits.push((main.start..end, bytes));
                } else {
                    match fit(end - main.start, main.size_len, build)? {
                        Some(bytes) => edits.push((main.start..end, bytes)),
                        None => {
                            edits.push((main.range(), void(main.len())?));
                            let old = (main.start - doc.segment.body) as u64;
                            append = Some((Some(old), element_with_crc(TAGS, &content, crc, 1)?));
                        }
                    }
                }
            }
            None => append = Some((None, element_with_crc(TAGS, &ours, seek_head_crc, 1)?)),
        }
        if let Some((old, tags)) = &append {
            if !doc.segment_is_last {
                return Err(MetaError::unsupported(
                    FORMAT,
                    "the new Tags do not fit in place and the Segment is not the last element, \
                     so they cannot be appended",
                ));
            }
            let new = (doc.segment.end - doc.segment.body) as u64;
            edits.extend(repoint_seek_head(input, &doc, *old, new)?);
            edits.extend(segment_size(
                &doc,
                doc.segment.end - doc.segment.body + tags.len(),
            )?);
        }
        edits.sort_by_key(|(r, _)| r.start);
        let mut out = Rewrite::new();
        let mut at = 0;
        for (range, bytes) in edits {
            if range.start < at {
                return Err(MetaError::malformed(FORMAT, "overlapping element rewrites"));
            }
            out.keep(at..range.start);
            out.insert(bytes);
            at = range.end;
        }
        out.keep(at..input.len());
        if let Some((_, tags)) = append {
            out.insert(tags);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLES: [&str; 2] = ["video.mkv", "video.webm"];

    /// Every Cluster's bytes, with where it starts.
    fn clusters(file: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let doc = parse(file).expect("parse");
        doc.level1
            .iter()
            .filter(|e| e.id == CLUSTER)
            .map(|e| (e.start, file[e.range()].to_vec()))
            .collect()
    }

    #[test]
    fn writes_exactly_one_label_and_rewrites_it() {
        for name in SAMPLES {
            let input = sample(name);
            assert!(MatroskaCarrier.read(&input).expect("read").is_empty());
            let first = record("label-id-1");
            let out = write(&MatroskaCarrier, &input, &first);
            let label = only_label(&MatroskaCarrier, &out);
            assert_eq!(label.parsed.record.as_ref(), Some(&first), "{name}");
            assert_eq!(label.value, first.to_wrapped_json());
            assert_eq!(label.placement, "Segment/Tags/Tag/SimpleTag AIGC");
            // The grown Tags went to the end of the Segment; the old one became a Void.
            let doc = parse(&out).expect("parse");
            assert_eq!(doc.level1.last().map(|e| e.id), Some(TAGS), "{name}");
            let second = record("label-id-2");
            let again = write(&MatroskaCarrier, &out, &second);
            assert_eq!(
                only_label(&MatroskaCarrier, &again).parsed.record,
                Some(second),
                "{name}"
            );
            // Same-size label: replaced in place, nothing appended.
            assert_eq!(again.len(), out.len(), "{name}");
            // A longer one grows the Tags at the end where they are.
            let longer = write(
                &MatroskaCarrier,
                &again,
                &record("a-much-longer-produce-id-than-before-0123456789"),
            );
            only_label(&MatroskaCarrier, &longer);
            assert_eq!(longer.len(), out.len() + 2 * 37, "{name}");
            assert_eq!(
                clusters(&input),
                clusters(&longer),
                "{name}: clusters moved"
            );
        }
    }

    #[test]
    fn ffprobe_and_exiftool_read_our_label_and_media_is_untouched() {
        for name in SAMPLES {
            let input = sample(name);
            let r = record("tool-check");
            let out = write(&MatroskaCarrier, &input, &r);
            let in_path = temp_file(name, &input);
            let out_path = temp_file(&format!("out-{name}"), &out);
            let tags = ffprobe_format_tags(&out_path);
            assert_eq!(tags["AIGC"], r.to_wrapped_json(), "{name}: ffprobe {tags}");
            // exiftool stops at the first Cluster unless -ee, and the grown Tags follow them.
            let exif = exiftool(&out_path, &["-ee"]);
            assert_eq!(exif["Matroska:Aigc"], r.to_wrapped_json(), "{name}: {exif}");
            assert_format_tags_kept(&in_path, &tags);
            assert_same_media(&in_path, &out_path);
        }
    }

    #[test]
    fn reads_and_replaces_a_label_written_by_ffmpeg() {
        for name in SAMPLES {
            let FfmpegReplaced { ours, out } =
                assert_replaces_ffmpeg_label(&MatroskaCarrier, name, &[], Form::Wrapped, "ENCODER");
            // Our shorter label replaced ffmpeg's in place, before the Clusters, where even
            // exiftool's default scan (which stops at the first Cluster) finds it.
            let exif = exiftool(&out, &[]);
            assert_eq!(
                exif["Matroska:Aigc"],
                ours.to_wrapped_json(),
                "{name}: {exif}"
            );
        }
    }

    /// `file` with one SimpleTag element replaced, the enclosing elements' sizes kept valid
    /// by rebuilding the given Tags element in place (the result may differ in length).
    fn with_tags(file: &[u8], extra_tags: &[u8]) -> Vec<u8> {
        let doc = parse(file).expect("parse");
        let tags = doc.level1.iter().find(|e| e.id == TAGS).expect("tags");
        let mut content = Vec::new();
        for k in children(file, tags).expect("kids") {
            if k.id != CRC32 {
                content.extend_from_slice(&file[k.range()]);
            }
        }
        content.extend_from_slice(extra_tags);
        let new = element_with_crc(TAGS, &content, true, 2).expect("tags");
        // Put it at the end of the segment (the sample's Segment is last) and void the old.
        let mut out = file.to_vec();
        out.splice(tags.range(), void(tags.len()).expect("void"));
        out.extend_from_slice(&new);
        let seg = doc.segment;
        let size = seg.end - seg.body + new.len();
        let field = size_bytes(size, seg.size_len).expect("size");
        out.splice(seg.body - seg.size_len..seg.body, field);
        // Point the SeekHead at it (same width: the samples use 2-3 byte positions).
        let edits = repoint_seek_head(
            file,
            &doc,
            Some((tags.start - seg.body) as u64),
            (seg.end - seg.body) as u64,
        )
        .expect("seek");
        for (range, bytes) in edits {
            out.splice(range, bytes);
        }
        out
    }

    fn simple(name: &str, value: &str, nested: &[u8]) -> Vec<u8> {
        let mut body = element(TAG_NAME, name.as_bytes(), 1).expect("e");
        body.extend(element(TAG_STRING, value.as_bytes(), 1).expect("e"));
        body.extend_from_slice(nested);
        element(SIMPLE_TAG, &body, 1).expect("e")
    }

    #[test]
    fn reads_and_removes_targeted_and_nested_labels() {
        let value = record("alt").to_wrapped_json();
        // A track-targeted Tag with an AIGC SimpleTag, and a nested one under TITLE.
        let mut targets = element(0x63C5, &[1], 1).expect("uid");
        targets = element(TARGETS, &targets, 1).expect("targets");
        let mut tag = targets;
        tag.extend(simple("com.example.AIGC", &value, &[]));
        tag.extend(simple("TITLE", "kept", &simple("AIGC", &value, &[])));
        let tag = element(TAG, &tag, 1).expect("tag");
        let input = with_tags(&sample("video.mkv"), &tag);
        let found = MatroskaCarrier.read(&input).expect("read");
        let places = placements(&found);
        assert_eq!(
            places,
            [
                "Segment/Tags/Tag(targeted)/SimpleTag com.example.AIGC",
                "Segment/Tags/Tag(targeted)/SimpleTag/SimpleTag AIGC",
            ]
        );
        assert!(found.iter().all(|f| !f.primary && f.parsed.is_valid()));
        let out = write(&MatroskaCarrier, &input, &record("ours"));
        only_label(&MatroskaCarrier, &out);
        let a = temp_file("in.mkv", &input);
        let b = temp_file("out.mkv", &out);
        assert_eq!(
            ffprobe_format_tags(&b)["ENCODER"],
            ffprobe_format_tags(&a)["ENCODER"]
        );
        assert_same_media(&a, &b);
        // TITLE survives without its nested label, in its targeted Tag.
        let doc = parse(&out).expect("parse");
        let mut names = Vec::new();
        for tags in doc.level1.iter().filter(|e| e.id == TAGS) {
            for tag in children(&out, tags)
                .expect("tags")
                .iter()
                .filter(|t| t.id == TAG)
            {
                let kids = children(&out, tag).expect("tag");
                for st in kids.iter().filter(|k| k.id == SIMPLE_TAG) {
                    let (name, value, _) = simple_tag(&out, st).expect("simple tag");
                    names.push((is_global(&out, &kids).expect("targets"), name, value));
                }
            }
        }
        assert!(
            names.contains(&(false, "TITLE".into(), "kept".into())),
            "{names:?}"
        );
    }

    #[test]
    fn adds_a_seek_entry_and_handles_unknown_sizes() {
        // No Tags entry in the SeekHead: re-label its Tags Seek as Chapters.
        let mut no_entry = sample("video.mkv");
        let doc = parse(&no_entry).expect("parse");
        let head = doc.level1[0];
        let (_, entries) = seek_entries(&no_entry, &head).expect("entries");
        let tags_entry = entries
            .iter()
            .find(|e| e.id == id_bytes(TAGS))
            .expect("tags entry");
        let (id_at, _) = children(&no_entry, &tags_entry.seek)
            .expect("kids")
            .iter()
            .find(|k| k.id == SEEK_ID)
            .map(|k| (k.body, k.end))
            .expect("seek id");
        no_entry[id_at..id_at + 4].copy_from_slice(&CHAPTERS.to_be_bytes());
        // Live WebM: the Segment has an unknown size.
        let live = ffmpeg_copy(
            "live.webm",
            &sample("video.webm"),
            &["-live", "1", "-f", "webm"],
        );
        assert!(parse(&live).expect("parse").segment.unknown);
        // A live stream's Cluster with an unknown size (all-ones size field, same width).
        let mut open_cluster = live.clone();
        let doc = parse(&open_cluster).expect("parse");
        let c = doc
            .level1
            .iter()
            .find(|e| e.id == CLUSTER)
            .expect("cluster");
        let size_at = c.body - c.size_len;
        let ones = size_bytes(0, c.size_len).expect("s");
        for (i, byte) in ones.iter().enumerate() {
            open_cluster[size_at + i] = if i == 0 { byte | (byte - 1) } else { 0xFF };
        }
        assert!(
            parse(&open_cluster)
                .expect("parse")
                .level1
                .iter()
                .any(|e| e.unknown)
        );
        for (name, input) in [
            ("no-entry.mkv", no_entry),
            ("live.webm", live),
            ("open-cluster.webm", open_cluster),
        ] {
            let out = write(&MatroskaCarrier, &input, &record("seek-check"));
            only_label(&MatroskaCarrier, &out);
            let a = temp_file(&format!("in-{name}"), &input);
            let b = temp_file(&format!("out-{name}"), &out);
            let tags = ffprobe_format_tags(&b);
            assert_eq!(
                tags["AIGC"],
                record("seek-check").to_wrapped_json(),
                "{name}"
            );
            assert_same_media(&a, &b);
            only_label(
                &MatroskaCarrier,
                &write(&MatroskaCarrier, &out, &record("again")),
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut st = simple("AIGC", "x", &[]);
        for _ in 0..10_000 {
            st = simple("N", "", &st);
        }
        let tag = element(TAG, &st, 1).expect("tag");
        let input = with_tags(&sample("video.mkv"), &tag);
        assert!(MatroskaCarrier.read(&input).is_err());
        assert!(MatroskaCarrier.write(&input, &record("x")).is_err());
    }

    #[test]
    fn ebml_numbers_round_trip() {
        for (size, len) in [(0usize, 1usize), (126, 1), (127, 2), (16382, 2), (16383, 3)] {
            let bytes = size_bytes(size, 1).expect("size");
            assert_eq!(bytes.len(), len, "{size}");
            assert_eq!(
                read_size(&bytes, 0).expect("read"),
                (Some(size as u64), len)
            );
        }
        assert_eq!(read_size(&[0xFF], 0).expect("read"), (None, 1));
        for len in [2, 3, 128, 129, 130, 1000] {
            let v = void(len).expect("void");
            assert_eq!(v.len(), len);
            let el = element_at(&v, 0, v.len()).expect("element");
            assert_eq!((el.id, el.end), (VOID, len));
        }
        assert!(void(1).is_err());
        assert_eq!(id_bytes(TAGS), [0x12, 0x54, 0xC3, 0x67]);
        assert_eq!(id_bytes(VOID), [0xEC]);
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let ours = write(&MatroskaCarrier, &sample("video.webm"), &record("fuzz"));
        for input in SAMPLES.iter().map(|n| sample(n)).chain([ours]) {
            // The metadata sits in the first kilobyte and (once labelled) the last few hundred
            // bytes: every cut there, every 7th elsewhere; flips mostly there.
            HostileInputs::new(1500, 7)
                .hot(0..1024)
                .hot(input.len().saturating_sub(512)..input.len())
                .cut_hot_densely()
                .assert_never_panic_and(&MatroskaCarrier, &input, |_, out| {
                    assert!(out.len() >= 8);
                });
        }
    }
}
