//! ISO BMFF (MP4, MOV, M4A): the label is a QuickTime metadata item in `moov/udta/meta` with
//! handler `mdta`, a `keys` entry `mdta` + `AIGC` and an `ilst` item (type = 1-based key index)
//! holding a UTF-8 `data` box with the bare JSON. Also read, and removed on write: other keys
//! containing `AIGC` (also in `moov/meta` and track metadata), iTunes `----` items named `AIGC`,
//! `udta` children named `AIGC`, and XMP in a top-level `uuid` box or a QuickTime `XMP_` box.
//!
//! Only `moov` (plus small boxes holding file offsets) is rebuilt; media data is kept by range.
//! When `moov` grows in front of the media data, every chunk offset (`stco`/`co64`) and fragment
//! offset (`tfhd`, `tfra`) pointing past it is shifted, unless a following `free` box absorbs it.

use crate::bytes::{be_u16, be_u32, be_u64, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use crate::xmp;
use aigc_core::{AigcRecord, Format};

const FORMAT: &str = "ISO BMFF";
/// The `uuid` user type of an XMP box (ISO/IEC 16684 / Adobe XMP part 3).
const XMP_UUID: [u8; 16] = [
    0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
];
/// The key we write, in namespace `mdta`.
const LABEL_KEY: &[u8] = b"AIGC";
/// `data` box well-known types.
const DATA_UTF8: u32 = 1;
const DATA_UTF16: u32 = 2;
/// `tfhd` flag: an explicit, absolute base data offset follows.
const TFHD_BASE_DATA_OFFSET: u32 = 0x1;
/// Rounds of rebuilding `moov` while `stco`→`co64` conversions change its size.
const MAX_LAYOUT_ROUNDS: usize = 8;

/// The MP4 / QuickTime / M4A carrier.
pub struct IsoBmffCarrier;

/// One box: its bytes `start..end`, the body after the header, its type and header form.
#[derive(Debug, Clone, Copy)]
struct BoxRef {
    start: usize,
    body: usize,
    end: usize,
    kind: [u8; 4],
    /// The header used a 64-bit `largesize`; rebuilt boxes keep that form.
    large: bool,
}

impl BoxRef {
    fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// The body's bytes; reads inside a box go through this so they never reach past its end.
    fn body<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        b.get(self.body..self.end).unwrap_or_default()
    }
}

/// The bytes `range` of `b`. Ranges come from parsed boxes, which lie inside the input; an
/// empty slice stands in for a broken invariant instead of a panic.
fn raw(b: &[u8], range: std::ops::Range<usize>) -> &[u8] {
    b.get(range).unwrap_or_default()
}

fn name(kind: &[u8]) -> String {
    kind.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else if c == 0xA9 {
                '©'
            } else {
                '?'
            }
        })
        .collect()
}

/// The boxes in `range` of `b`, and where unparsed trailing bytes (fewer than a header) begin.
fn boxes(
    b: &[u8],
    range: std::ops::Range<usize>,
    what: &str,
) -> Result<(Vec<BoxRef>, usize), MetaError> {
    let mut out = Vec::new();
    let mut at = range.start;
    while range.end.checked_sub(at).is_some_and(|left| left >= 8) {
        let size32 = be_u32(b, at, what)?;
        let kind: [u8; 4] = crate::bytes::array(b, at + 4, what)?;
        let (size, header, large) = match size32 {
            // Size 0 ("to the end of the file") is only meaningful for a top-level box; inside a
            // container it would swallow any box added after it.
            0 if range.start == 0 => (range.end - at, 8, false),
            0 => {
                return Err(MetaError::malformed(
                    FORMAT,
                    format!(
                        "{} box at byte {at} inside a container has size 0",
                        name(&kind)
                    ),
                ));
            }
            1 => {
                let large = be_u64(b, at + 8, what)?;
                let large = usize::try_from(large).map_err(|_| {
                    MetaError::unsupported(
                        FORMAT,
                        format!("{} box larger than memory", name(&kind)),
                    )
                })?;
                (large, 16, true)
            }
            n => (n as usize, 8, false),
        };
        if size < header {
            return Err(MetaError::malformed(
                FORMAT,
                format!(
                    "{} box at byte {at} has size {size}, smaller than its header",
                    name(&kind)
                ),
            ));
        }
        let end = at
            .checked_add(size)
            .filter(|end| *end <= range.end)
            .ok_or_else(|| MetaError::truncated(format!("{what} {}", name(&kind)), at))?;
        out.push(BoxRef {
            start: at,
            body: at + header,
            end,
            kind,
            large,
        });
        at = end;
    }
    Ok((out, at))
}

/// The children of a container box, and where its trailing bytes begin.
fn children(b: &[u8], parent: &BoxRef) -> Result<(Vec<BoxRef>, usize), MetaError> {
    boxes(
        b,
        parent.body..parent.end,
        &format!("{} child box", name(&parent.kind)),
    )
}

/// A box of `kind` around `body`, in the 64-bit header form when asked or needed.
fn box_bytes(kind: &[u8; 4], large: bool, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    match u32::try_from(body.len() + 8) {
        Ok(size) if !large => out.extend_from_slice(&size.to_be_bytes()),
        _ => {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
            out.extend_from_slice(body);
            return out;
        }
    }
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn is_label_name(k: &[u8]) -> bool {
    k.windows(4).any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

/// Where a `meta` box's children start: after version/flags in MP4, directly in QuickTime.
fn meta_children(b: &[u8], meta: &BoxRef) -> Result<(Vec<BoxRef>, usize, usize), MetaError> {
    let plain = meta.body(b).get(4..8) == Some(b"hdlr".as_slice());
    let first = if plain { meta.body } else { meta.body + 4 };
    if first > meta.end {
        return Err(MetaError::truncated("meta box header", meta.start));
    }
    let (kids, tail) = boxes(b, first..meta.end, "meta child box")?;
    Ok((kids, first, tail))
}

/// One `keys` entry.
struct Key {
    namespace: [u8; 4],
    name: Vec<u8>,
    /// The entry's bytes as stored.
    raw: std::ops::Range<usize>,
}

fn parse_keys(b: &[u8], keys: &BoxRef) -> Result<Vec<Key>, MetaError> {
    let body = keys.body(b);
    let count = be_u32(body, 4, "keys entry count")?;
    let mut out = Vec::new();
    let mut at = 8usize;
    for _ in 0..count {
        let size = be_u32(body, at, "keys entry")? as usize;
        if size < 8 {
            return Err(MetaError::malformed(
                FORMAT,
                format!("keys entry at byte {} has size {size}", keys.body + at),
            ));
        }
        let entry = slice(body, at, size, "keys entry")?;
        out.push(Key {
            namespace: crate::bytes::array(entry, 4, "keys entry namespace")?,
            name: entry.get(8..).unwrap_or_default().to_vec(),
            raw: keys.body + at..keys.body + at + size,
        });
        at += size;
    }
    Ok(out)
}

/// A `data` box's value as text.
fn data_value(b: &[u8], data: &BoxRef) -> Result<String, MetaError> {
    let body = data.body(b);
    let kind = be_u32(body, 0, "data box type")? & 0x00FF_FFFF;
    let value = body
        .get(8..)
        .ok_or_else(|| MetaError::truncated("data box value", data.start))?;
    Ok(match kind {
        DATA_UTF16 => {
            let units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(value).into_owned(),
    })
}

/// The `data` values of an `ilst` item.
fn item_values(b: &[u8], item: &BoxRef) -> Result<Vec<String>, MetaError> {
    let (kids, _) = children(b, item)?;
    kids.iter()
        .filter(|k| &k.kind == b"data")
        .map(|k| data_value(b, k))
        .collect()
}

/// A freeform `----` item's `mean` and `name` strings.
fn freeform_names(b: &[u8], item: &BoxRef) -> Result<(String, String), MetaError> {
    let (kids, _) = children(b, item)?;
    let text = |kind: &[u8; 4]| {
        kids.iter()
            .find(|k| &k.kind == kind)
            .and_then(|k| k.body(b).get(4..))
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default()
    };
    Ok((text(b"mean"), text(b"name")))
}

/// What a `meta` box holds.
struct Meta {
    kids: Vec<BoxRef>,
    /// Where the children start (after version/flags in a full box).
    first: usize,
    /// Where bytes after the last child start.
    tail: usize,
    handler: Option<[u8; 4]>,
    keys: Vec<Key>,
}

impl Meta {
    fn parse(b: &[u8], meta: &BoxRef) -> Result<Self, MetaError> {
        let (kids, first, tail) = meta_children(b, meta)?;
        let mut handler = None;
        let mut keys = Vec::new();
        for k in &kids {
            match &k.kind {
                b"hdlr" if handler.is_none() => {
                    handler = Some(crate::bytes::array(k.body(b), 8, "hdlr handler type")?);
                }
                b"keys" if keys.is_empty() => keys = parse_keys(b, k)?,
                _ => {}
            }
        }
        Ok(Self {
            kids,
            first,
            tail,
            handler,
            keys,
        })
    }

    fn is_mdta(&self) -> bool {
        self.handler.as_ref() == Some(b"mdta")
    }

    /// The key an `ilst` item type refers to, when the item is keyed by index.
    fn key_of(&self, item: &BoxRef) -> Option<(usize, &Key)> {
        if !self.is_mdta() {
            return None;
        }
        let index = u32::from_be_bytes(item.kind) as usize;
        let key = self.keys.get(index.checked_sub(1)?)?;
        Some((index, key))
    }
}

/// Why an `ilst` item is a label, described for a report; `None` when it is not one.
fn item_label(b: &[u8], meta: &Meta, item: &BoxRef) -> Result<Option<(String, bool)>, MetaError> {
    if let Some((_, key)) = meta.key_of(item) {
        if !is_label_name(&key.name) {
            return Ok(None);
        }
        let primary = &key.namespace == b"mdta" && key.name == LABEL_KEY;
        return Ok(Some((
            format!(
                "keys {}:{}",
                name(&key.namespace),
                String::from_utf8_lossy(&key.name)
            ),
            primary,
        )));
    }
    if &item.kind == b"----" {
        let (mean, label) = freeform_names(b, item)?;
        if is_label_name(label.as_bytes()) {
            return Ok(Some((format!("ilst ----:{mean}:{label}"), false)));
        }
        return Ok(None);
    }
    if is_label_name(&item.kind) {
        return Ok(Some((format!("ilst {}", name(&item.kind)), false)));
    }
    Ok(None)
}

fn read_meta(
    b: &[u8],
    meta_box: &BoxRef,
    path: &str,
    primary_place: bool,
    found: &mut Vec<FoundLabel>,
) -> Result<(), MetaError> {
    let meta = Meta::parse(b, meta_box)?;
    for ilst in meta.kids.iter().filter(|k| &k.kind == b"ilst") {
        let (items, _) = children(b, ilst)?;
        for item in &items {
            if let Some((what, primary)) = item_label(b, &meta, item)? {
                for value in item_values(b, item)? {
                    found.push(FoundLabel::new(
                        format!("{path} {what}"),
                        primary && primary_place,
                        value,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Text of a `udta` child: a `data` box, a QuickTime international string, or raw bytes.
fn udta_text(b: &[u8], child: &BoxRef) -> Result<String, MetaError> {
    let body = child.body(b);
    if body.get(4..8) == Some(b"data".as_slice()) {
        let values = item_values(b, child)?;
        return Ok(values.concat());
    }
    if let (Ok(len), Some(text)) = (be_u16(body, 0, "udta string length"), body.get(4..))
        && len as usize == text.len()
    {
        return Ok(String::from_utf8_lossy(text).into_owned());
    }
    Ok(String::from_utf8_lossy(body).into_owned())
}

fn read_xmp(bytes: &[u8], placement: &str, found: &mut Vec<FoundLabel>) -> Result<(), MetaError> {
    let text = xmp::packet_text(bytes)?;
    for l in xmp::find_labels(text)? {
        found.push(FoundLabel::new(
            format!("XMP ({placement}) {}", l.qualified_name),
            false,
            l.value,
        ));
    }
    Ok(())
}

fn read_udta(
    b: &[u8],
    udta: &BoxRef,
    path: &str,
    found: &mut Vec<FoundLabel>,
) -> Result<(), MetaError> {
    let (kids, _) = children(b, udta)?;
    for k in &kids {
        match &k.kind {
            b"meta" => read_meta(b, k, &format!("{path}/meta"), path == "moov/udta", found)?,
            b"XMP_" => read_xmp(k.body(b), &format!("{path}/XMP_"), found)?,
            kind if is_label_name(kind) => found.push(FoundLabel::new(
                format!("{path}/{}", name(kind)),
                false,
                udta_text(b, k)?,
            )),
            _ => {}
        }
    }
    Ok(())
}

/// Labels in `moov`'s and each track's `udta` and `meta`.
fn read_moov(b: &[u8], moov: &BoxRef, found: &mut Vec<FoundLabel>) -> Result<(), MetaError> {
    let (kids, _) = children(b, moov)?;
    for k in &kids {
        match &k.kind {
            b"udta" => read_udta(b, k, "moov/udta", found)?,
            b"meta" => read_meta(b, k, "moov/meta", false, found)?,
            b"trak" => {
                let (parts, _) = children(b, k)?;
                for p in &parts {
                    match &p.kind {
                        b"udta" => read_udta(b, p, "moov/trak/udta", found)?,
                        b"meta" => read_meta(b, p, "moov/trak/meta", false, found)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The packet bytes of an XMP `uuid` box, or `None` for any other box.
fn xmp_uuid_packet<'a>(b: &'a [u8], bx: &BoxRef) -> Option<&'a [u8]> {
    if &bx.kind != b"uuid" {
        return None;
    }
    bx.body(b).strip_prefix(XMP_UUID.as_slice())
}

/// The top-level boxes, checking that there is exactly one `moov`.
fn top_level(b: &[u8]) -> Result<(Vec<BoxRef>, usize, usize), MetaError> {
    let (top, tail) = boxes(b, 0..b.len(), "top-level box")?;
    let mut moovs = top.iter().enumerate().filter(|(_, x)| &x.kind == b"moov");
    let moov = moovs
        .next()
        .map(|(i, _)| i)
        .ok_or_else(|| MetaError::malformed(FORMAT, "no moov box"))?;
    if moovs.next().is_some() {
        return Err(MetaError::unsupported(FORMAT, "more than one moov box"));
    }
    Ok((top, moov, tail))
}

// ---------------------------------------------------------------------------------------------
// Writing

/// How file offsets move: input regions that end at `old_end` changed size by `delta`.
#[derive(Debug, Default, Clone)]
struct Shift {
    moves: Vec<(usize, i64)>,
}

impl Shift {
    fn is_none(&self) -> bool {
        self.moves.iter().all(|(_, d)| *d == 0)
    }

    /// Where data at input offset `o` lands in the output.
    fn map(&self, o: u64) -> Result<u64, MetaError> {
        let mut delta: i64 = 0;
        for (end, d) in &self.moves {
            if *end as u64 <= o {
                delta = delta
                    .checked_add(*d)
                    .ok_or_else(|| MetaError::unsupported(FORMAT, "offset shift overflows"))?;
            }
        }
        o.checked_add_signed(delta).ok_or_else(|| {
            MetaError::malformed(FORMAT, format!("file offset {o} moves out of range"))
        })
    }
}

/// A chunk offset table with every offset moved; `co64` when an offset needs 64 bits.
fn patch_chunk_offsets(b: &[u8], table: &BoxRef, shift: &Shift) -> Result<Vec<u8>, MetaError> {
    let wide = &table.kind == b"co64";
    let what = if wide { "co64 table" } else { "stco table" };
    let old = table.body(b);
    let count = be_u32(old, 4, what)? as usize;
    let width = if wide { 8 } else { 4 };
    let len = count
        .checked_mul(width)
        .ok_or_else(|| MetaError::malformed(FORMAT, format!("{what} entry count overflows")))?;
    let entries = slice(old, 8, len, what)?;
    if shift.is_none() {
        return Ok(raw(b, table.range()).to_vec());
    }
    let mut offsets = Vec::with_capacity(count);
    for raw in entries.chunks_exact(width) {
        let o = if wide {
            be_u64(raw, 0, what)?
        } else {
            u64::from(be_u32(raw, 0, what)?)
        };
        offsets.push(shift.map(o)?);
    }
    let need_wide = wide || offsets.iter().any(|o| *o > u64::from(u32::MAX));
    let mut body = Vec::with_capacity(8 + count * 8);
    body.extend_from_slice(old.get(..8).unwrap_or_default());
    for o in &offsets {
        match u32::try_from(*o) {
            Ok(short) if !need_wide => body.extend_from_slice(&short.to_be_bytes()),
            _ => body.extend_from_slice(&o.to_be_bytes()),
        }
    }
    // Whatever followed the entries (normally nothing) is kept.
    body.extend_from_slice(old.get(8 + len..).unwrap_or_default());
    let kind = if need_wide { b"co64" } else { &table.kind };
    Ok(box_bytes(kind, table.large, &body))
}

/// The label to add: the bare JSON of the record.
struct NewLabel<'a> {
    json: &'a str,
}

fn data_box(text: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(text.len() + 8);
    body.extend_from_slice(&DATA_UTF8.to_be_bytes());
    body.extend_from_slice(&0u32.to_be_bytes());
    body.extend_from_slice(text.as_bytes());
    box_bytes(b"data", false, &body)
}

fn key_entry(namespace: &[u8; 4], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 8);
    out.extend_from_slice(&((key.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(namespace);
    out.extend_from_slice(key);
    out
}

fn mdta_hdlr() -> Vec<u8> {
    let mut body = vec![0u8; 8];
    body.extend_from_slice(b"mdta");
    body.extend_from_slice(&[0u8; 12]);
    body.push(0);
    box_bytes(b"hdlr", false, &body)
}

/// A new `meta` box holding only the label. It is a full box even in QuickTime files, as ffmpeg
/// writes it: exiftool reads a plain one in `udta` as truncated.
fn new_meta(label: &NewLabel) -> Vec<u8> {
    let mut keys = vec![0u8; 4];
    keys.extend_from_slice(&1u32.to_be_bytes());
    keys.extend(key_entry(b"mdta", LABEL_KEY));
    let item = box_bytes(&1u32.to_be_bytes(), false, &data_box(label.json));
    let mut body = vec![0u8; 4];
    body.extend(mdta_hdlr());
    body.extend(box_bytes(b"keys", false, &keys));
    body.extend(box_bytes(b"ilst", false, &item));
    box_bytes(b"meta", false, &body)
}

/// `meta` without label items and keys; with `label`, the label key and item are added
/// (the meta must then be an `mdta` one). Unchanged metas come back byte for byte.
fn rebuild_meta(
    b: &[u8],
    meta_box: &BoxRef,
    label: Option<&NewLabel>,
) -> Result<Vec<u8>, MetaError> {
    let meta = Meta::parse(b, meta_box)?;
    // Keys that name labels are dropped; the others are renumbered in order.
    let mut new_index = Vec::with_capacity(meta.keys.len());
    let mut kept_keys = 0u32;
    for key in &meta.keys {
        if is_label_name(&key.name) && meta.is_mdta() {
            new_index.push(None);
        } else {
            kept_keys += 1;
            new_index.push(Some(kept_keys));
        }
    }
    let label_index = kept_keys + 1;
    let mut body = raw(b, meta_box.body..meta.first).to_vec();
    let has_keys = meta.kids.iter().any(|k| &k.kind == b"keys");
    let mut placed = false;
    let keys_box = |kept: &[&Key], source: Option<&BoxRef>| {
        let mut kb = match source {
            Some(k) => k.body(b).get(..4).unwrap_or(&[0; 4]).to_vec(),
            None => vec![0u8; 4],
        };
        let count = kept.len() as u32 + u32::from(label.is_some());
        kb.extend_from_slice(&count.to_be_bytes());
        for k in kept {
            kb.extend_from_slice(raw(b, k.raw.clone()));
        }
        if label.is_some() {
            kb.extend(key_entry(b"mdta", LABEL_KEY));
        }
        box_bytes(b"keys", source.is_some_and(|s| s.large), &kb)
    };
    let kept: Vec<&Key> = meta
        .keys
        .iter()
        .zip(&new_index)
        .filter(|(_, n)| n.is_some())
        .map(|(k, _)| k)
        .collect();
    let mut keys_done = false;
    for kid in &meta.kids {
        match &kid.kind {
            b"keys" if !keys_done => {
                keys_done = true;
                body.extend(keys_box(&kept, Some(kid)));
            }
            b"ilst" => {
                if label.is_some() && !has_keys && !keys_done {
                    keys_done = true;
                    body.extend(keys_box(&[], None));
                }
                let (items, tail) = children(b, kid)?;
                let mut ib = Vec::with_capacity(kid.end - kid.body + 64);
                for item in &items {
                    if item_label(b, &meta, item)?.is_some() {
                        continue;
                    }
                    match meta.key_of(item) {
                        Some((index, _)) => {
                            let new = new_index
                                .get(index.saturating_sub(1))
                                .copied()
                                .flatten()
                                .unwrap_or(0);
                            ib.extend(box_bytes(
                                &new.to_be_bytes(),
                                item.large,
                                raw(b, item.body..item.end),
                            ));
                        }
                        None => ib.extend_from_slice(raw(b, item.range())),
                    }
                }
                if let Some(l) = label.filter(|_| !placed) {
                    placed = true;
                    ib.extend(box_bytes(
                        &label_index.to_be_bytes(),
                        false,
                        &data_box(l.json),
                    ));
                }
                ib.extend_from_slice(raw(b, tail..kid.end));
                body.extend(box_bytes(b"ilst", kid.large, &ib));
            }
            _ => body.extend_from_slice(raw(b, kid.range())),
        }
    }
    if let Some(l) = label.filter(|_| !placed) {
        if !keys_done {
            body.extend(keys_box(&[], None));
        }
        let item = box_bytes(&label_index.to_be_bytes(), false, &data_box(l.json));
        body.extend(box_bytes(b"ilst", false, &item));
    }
    body.extend_from_slice(raw(b, meta.tail..meta_box.end));
    let out = box_bytes(b"meta", meta_box.large, &body);
    Ok(if out == raw(b, meta_box.range()) {
        raw(b, meta_box.range()).to_vec()
    } else {
        out
    })
}

/// An XMP packet with its label properties removed, padded to `len` bytes when shorter.
fn strip_xmp(bytes: &[u8], len: usize) -> Result<Option<Vec<u8>>, MetaError> {
    let text = xmp::packet_text(bytes)?;
    if xmp::find_labels(text)?.is_empty() {
        return Ok(None);
    }
    let mut stripped = xmp::merge_packet(text, None)?;
    if let Some(pad) = len.checked_sub(stripped.len()) {
        // Padding whitespace goes before the trailer, where XMP expects it.
        let at = stripped.rfind("<?xpacket end").unwrap_or(stripped.len());
        stripped.insert_str(at, &" ".repeat(pad));
    }
    Ok(Some(stripped.into_bytes()))
}

/// `udta` without label children; with `label`, the label is written into its first `mdta` meta
/// or a new meta appended to it.
fn rebuild_udta(b: &[u8], udta: &BoxRef, label: Option<&NewLabel>) -> Result<Vec<u8>, MetaError> {
    let (kids, tail) = children(b, udta)?;
    let mut target = None;
    if label.is_some() {
        for (i, k) in kids.iter().enumerate() {
            if &k.kind == b"meta" && Meta::parse(b, k)?.is_mdta() {
                target = Some(i);
                break;
            }
        }
    }
    let mut body = Vec::with_capacity(udta.end - udta.body + 256);
    for (i, k) in kids.iter().enumerate() {
        match &k.kind {
            b"meta" => body.extend(rebuild_meta(b, k, label.filter(|_| target == Some(i)))?),
            b"XMP_" => match strip_xmp(raw(b, k.body..k.end), k.end - k.body)? {
                Some(x) => body.extend(box_bytes(b"XMP_", k.large, &x)),
                None => body.extend_from_slice(raw(b, k.range())),
            },
            kind if is_label_name(kind) => {}
            _ => body.extend_from_slice(raw(b, k.range())),
        }
    }
    if let Some(l) = label.filter(|_| target.is_none()) {
        // Before any trailing bytes, such as QuickTime's 32-bit zero terminator.
        body.extend(new_meta(l));
    }
    body.extend_from_slice(raw(b, tail..udta.end));
    Ok(box_bytes(b"udta", udta.large, &body))
}

/// A track (or one of its media containers) with labels removed and chunk offsets moved.
/// `depth` counts nested containers: a real track has three, a hostile one could have millions.
fn rebuild_track_part(
    b: &[u8],
    bx: &BoxRef,
    shift: &Shift,
    depth: usize,
) -> Result<Vec<u8>, MetaError> {
    if depth > 8 {
        return Err(MetaError::malformed(
            FORMAT,
            format!("track boxes nested too deeply at byte {}", bx.start),
        ));
    }
    let (kids, tail) = children(b, bx)?;
    let mut body = Vec::with_capacity(bx.end - bx.body);
    for k in &kids {
        match &k.kind {
            b"mdia" | b"minf" | b"stbl" => body.extend(rebuild_track_part(b, k, shift, depth + 1)?),
            b"stco" | b"co64" => body.extend(patch_chunk_offsets(b, k, shift)?),
            b"udta" if &bx.kind == b"trak" => body.extend(rebuild_udta(b, k, None)?),
            b"meta" if &bx.kind == b"trak" => body.extend(rebuild_meta(b, k, None)?),
            _ => body.extend_from_slice(raw(b, k.range())),
        }
    }
    body.extend_from_slice(raw(b, tail..bx.end));
    Ok(box_bytes(&bx.kind, bx.large, &body))
}

/// The new `moov`: labels removed, the label in `moov/udta/meta`, chunk offsets moved.
fn rebuild_moov(
    b: &[u8],
    moov: &BoxRef,
    label: &NewLabel,
    shift: &Shift,
) -> Result<Vec<u8>, MetaError> {
    let (kids, tail) = children(b, moov)?;
    let mut body = Vec::with_capacity(moov.end - moov.body + 512);
    let mut placed = false;
    for k in &kids {
        match &k.kind {
            b"trak" => body.extend(rebuild_track_part(b, k, shift, 0)?),
            b"udta" => {
                body.extend(rebuild_udta(b, k, Some(label).filter(|_| !placed))?);
                placed = true;
            }
            b"meta" => body.extend(rebuild_meta(b, k, None)?),
            _ => body.extend_from_slice(raw(b, k.range())),
        }
    }
    if !placed {
        body.extend(box_bytes(b"udta", false, &new_meta(label)));
    }
    body.extend_from_slice(raw(b, tail..moov.end));
    Ok(box_bytes(b"moov", moov.large, &body))
}

/// A `moof` with its explicit `tfhd` base data offsets moved.
fn patch_moof(b: &[u8], moof: &BoxRef, shift: &Shift) -> Result<Vec<u8>, MetaError> {
    let mut out = raw(b, moof.range()).to_vec();
    let (trafs, _) = children(b, moof)?;
    for traf in trafs.iter().filter(|t| &t.kind == b"traf") {
        let (kids, _) = children(b, traf)?;
        for tfhd in kids.iter().filter(|t| &t.kind == b"tfhd") {
            let body = tfhd.body(b);
            let flags = be_u32(body, 0, "tfhd flags")? & 0x00FF_FFFF;
            if flags & TFHD_BASE_DATA_OFFSET != 0 {
                let o = be_u64(body, 8, "tfhd base data offset")?;
                let rel = tfhd.body + 8 - moof.start;
                if let Some(field) = out.get_mut(rel..rel + 8) {
                    field.copy_from_slice(&shift.map(o)?.to_be_bytes());
                }
            }
        }
    }
    Ok(out)
}

/// An `mfra` with every `tfra` entry's `moof` offset moved.
fn patch_mfra(b: &[u8], mfra: &BoxRef, shift: &Shift) -> Result<Vec<u8>, MetaError> {
    let mut out = raw(b, mfra.range()).to_vec();
    let (kids, _) = children(b, mfra)?;
    for tfra in kids.iter().filter(|t| &t.kind == b"tfra") {
        let body = tfra.body(b);
        let version = be_u32(body, 0, "tfra version")? >> 24;
        let sizes = be_u32(body, 8, "tfra field sizes")?;
        let count = be_u32(body, 12, "tfra entry count")?;
        // traf, trun and sample numbers take 1 to 4 bytes each.
        let numbers =
            ((sizes >> 4) & 3) as usize + ((sizes >> 2) & 3) as usize + (sizes & 3) as usize + 3;
        let word = if version == 1 { 8 } else { 4 };
        let mut at = 16usize;
        for _ in 0..count {
            let offset_at = at + word;
            slice(body, at, 2 * word + numbers, "tfra entry")?;
            let rel = tfra.body + offset_at - mfra.start;
            let field = out
                .get_mut(rel..rel + word)
                .ok_or_else(|| MetaError::truncated("tfra entry", tfra.body + at))?;
            if word == 8 {
                let new = shift.map(be_u64(body, offset_at, "tfra moof offset")?)?;
                field.copy_from_slice(&new.to_be_bytes());
            } else {
                let old = u64::from(be_u32(body, offset_at, "tfra moof offset")?);
                let new = u32::try_from(shift.map(old)?).map_err(|_| {
                    MetaError::unsupported(FORMAT, "tfra moof offset no longer fits 32 bits")
                })?;
                field.copy_from_slice(&new.to_be_bytes());
            }
            at = offset_at + word + numbers;
        }
    }
    Ok(out)
}

/// What happens to a `free`/`skip` box right after `moov` when `moov` changes size by `growth`.
enum Padding {
    /// No free box follows, or it cannot absorb the change: data after `moov` shifts.
    Shift,
    /// The following free box is resized to this many bytes (0: removed) and nothing shifts.
    Resize(usize),
    /// A new free box of this size follows `moov` and nothing shifts.
    Insert(usize),
}

fn padding(growth: i64, next_free: Option<&BoxRef>, moov_is_last: bool) -> Padding {
    if growth == 0 || moov_is_last {
        return Padding::Shift;
    }
    if let Some(free) = next_free {
        let size = (free.end - free.start) as i64;
        let left = size - growth;
        if left == 0 || (left >= 8 && left <= i64::from(u32::MAX)) {
            return Padding::Resize(left as usize);
        }
    }
    if growth <= -8 && -growth <= i64::from(u32::MAX) {
        return Padding::Insert((-growth) as usize);
    }
    Padding::Shift
}

/// A `free` box of `size` bytes ending with the last bytes of `old` (so those stay in place).
fn free_box(b: &[u8], old: Option<&BoxRef>, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(old.map_or(b"free", |f| &f.kind));
    let payload = size.saturating_sub(8);
    match old {
        Some(f) => {
            let old_payload = raw(b, f.body..f.end);
            let keep = payload.min(old_payload.len());
            out.resize(size - keep, 0);
            out.extend_from_slice(&old_payload[old_payload.len() - keep..]);
        }
        None => out.resize(size, 0),
    }
    out
}

impl Carrier for IsoBmffCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Mp4, Format::Mov, Format::M4a]
    }

    fn placement(&self) -> &'static str {
        "moov/udta/meta (hdlr mdta): keys mdta:AIGC, ilst item with a UTF-8 data box"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let (top, _, _) = top_level(input)?;
        let mut found = Vec::new();
        for bx in &top {
            if &bx.kind == b"moov" {
                read_moov(input, bx, &mut found)?;
            } else if let Some(packet) = xmp_uuid_packet(input, bx) {
                read_xmp(packet, "uuid", &mut found)?;
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let (top, moov_at, tail) = top_level(input)?;
        let moov = top[moov_at];
        let json = record.to_bare_json();
        let label = NewLabel { json: &json };
        // Top-level XMP boxes lose their labels, at the same size when the packet allows it.
        let mut replaced: Vec<Option<Vec<u8>>> = vec![None; top.len()];
        let mut moves = Vec::new();
        for (i, bx) in top.iter().enumerate() {
            if let Some(packet) = xmp_uuid_packet(input, bx)
                && let Some(x) = strip_xmp(packet, packet.len())?
            {
                let mut body = XMP_UUID.to_vec();
                body.extend(x);
                let new = box_bytes(b"uuid", bx.large, &body);
                moves.push((bx.end, new.len() as i64 - (bx.end - bx.start) as i64));
                replaced[i] = Some(new);
            }
        }
        let next_free = top
            .get(moov_at + 1)
            .filter(|f| matches!(&f.kind, b"free" | b"skip") && !f.large);
        let old_len = (moov.end - moov.start) as i64;
        // Growing moov can turn stco into co64, which grows it again: rebuild until it settles.
        let mut growth = 0i64;
        let mut settled = None;
        for _ in 0..MAX_LAYOUT_ROUNDS {
            let pad = padding(growth, next_free, moov_at + 1 == top.len());
            let mut shift = Shift {
                moves: moves.clone(),
            };
            if let Padding::Shift = pad {
                shift.moves.push((moov.end, growth));
            }
            let new_moov = rebuild_moov(input, &moov, &label, &shift)?;
            let new_growth = new_moov.len() as i64 - old_len;
            if new_growth == growth {
                settled = Some((new_moov, pad, shift));
                break;
            }
            growth = new_growth;
        }
        let (new_moov, pad, shift) = settled.ok_or_else(|| {
            MetaError::unsupported(FORMAT, "chunk offsets do not settle after moov grows")
        })?;
        if !shift.is_none() {
            for (i, bx) in top.iter().enumerate() {
                match &bx.kind {
                    b"moof" => replaced[i] = Some(patch_moof(input, bx, &shift)?),
                    b"mfra" => replaced[i] = Some(patch_mfra(input, bx, &shift)?),
                    b"meta" => {
                        return Err(MetaError::unsupported(
                            FORMAT,
                            "a top-level meta box (item locations) would need its offsets moved",
                        ));
                    }
                    _ => {}
                }
            }
        }
        let mut out = Rewrite::new();
        for (i, bx) in top.iter().enumerate() {
            if i == moov_at {
                out.insert(&new_moov);
                if let Padding::Insert(size) = pad {
                    out.insert(free_box(input, None, size));
                }
            } else if i == moov_at + 1 && next_free.is_some() {
                match pad {
                    Padding::Resize(0) => {}
                    Padding::Resize(size) => {
                        out.insert(free_box(input, next_free, size));
                    }
                    _ => {
                        out.keep(bx.range());
                    }
                }
            } else if let Some(new) = &replaced[i] {
                out.insert(new);
            } else {
                out.keep(bx.range());
            }
        }
        out.keep(tail..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLES: [&str; 4] = ["video.mp4", "video-moov-last.mp4", "video.mov", "audio.m4a"];

    /// The `mdat` bytes of a file.
    fn mdat(file: &[u8]) -> Vec<u8> {
        let (top, _) = boxes(file, 0..file.len(), "top").expect("boxes");
        top.iter()
            .filter(|x| &x.kind == b"mdat")
            .flat_map(|x| file[x.body..x.end].to_vec())
            .collect()
    }

    #[test]
    fn writes_exactly_one_label_and_rewrites_it() {
        for name in SAMPLES {
            let input = sample(name);
            assert!(
                IsoBmffCarrier.read(&input).expect("read").is_empty(),
                "{name}"
            );
            let first = record("first-id");
            let out = write(&IsoBmffCarrier, &input, &first);
            let label = only_label(&IsoBmffCarrier, &out);
            assert_eq!(label.parsed.record.as_ref(), Some(&first), "{name}");
            assert_eq!(label.value, first.to_bare_json());
            assert_eq!(label.placement, "moov/udta/meta keys mdta:AIGC");
            let second = record("second-and-longer-produce-id");
            let again = write(&IsoBmffCarrier, &out, &second);
            assert_eq!(
                only_label(&IsoBmffCarrier, &again).parsed.record,
                Some(second),
                "{name}"
            );
            assert_eq!(mdat(&input), mdat(&again), "{name}: media data changed");
        }
    }

    #[test]
    fn ffprobe_and_exiftool_read_our_label_and_media_is_untouched() {
        for name in SAMPLES {
            let input = sample(name);
            let r = record("tool-check");
            let out = write(&IsoBmffCarrier, &input, &r);
            let in_path = temp_file(name, &input);
            let out_path = temp_file(&format!("out-{name}"), &out);
            let tags = ffprobe_format_tags(&out_path);
            assert_eq!(tags["AIGC"], r.to_bare_json(), "{name}: ffprobe {tags}");
            let exif = exiftool(&out_path, &[]);
            assert_eq!(
                exif["Keys:AIGC"],
                r.to_bare_json(),
                "{name}: exiftool {exif}"
            );
            // Other metadata stays: every tag ffprobe saw before is still there.
            assert_format_tags_kept(&in_path, &tags);
            assert_same_media(&in_path, &out_path);
        }
    }

    #[test]
    fn reads_and_replaces_a_label_written_by_ffmpeg() {
        for name in SAMPLES {
            // ffmpeg's other keys (e.g. encoder) survive the renumbering.
            assert_replaces_ffmpeg_label(
                &IsoBmffCarrier,
                name,
                &["-movflags", "use_metadata_tags"],
                Form::Bare,
                "encoder",
            );
        }
    }

    /// Chunk offsets: where `video.mp4`'s first chunk of each track starts.
    fn chunk_offsets(file: &[u8]) -> Vec<u64> {
        let (top, _) = boxes(file, 0..file.len(), "top").expect("boxes");
        let mut out = Vec::new();
        let mut stack: Vec<BoxRef> = top.into_iter().filter(|x| &x.kind == b"moov").collect();
        while let Some(bx) = stack.pop() {
            let (kids, _) = children(file, &bx).expect("children");
            for k in kids {
                match &k.kind {
                    b"trak" | b"mdia" | b"minf" | b"stbl" => stack.push(k),
                    b"stco" => out.push(u64::from(be_u32(file, k.body + 8, "t").expect("o"))),
                    b"co64" => out.push(be_u64(file, k.body + 8, "t").expect("o")),
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn mdat_start(file: &[u8]) -> usize {
        let (top, _) = boxes(file, 0..file.len(), "top").expect("boxes");
        top.iter().find(|x| &x.kind == b"mdat").expect("mdat").start
    }

    #[test]
    fn faststart_shifts_chunk_offsets_or_uses_free_space() {
        let input = sample("video.mp4");
        let out = write(
            &IsoBmffCarrier,
            &input,
            &record("a-long-produce-id-that-grows-moov-0123456789"),
        );
        let moved = mdat_start(&out) - mdat_start(&input);
        assert!(moved > 0);
        let shifted: Vec<u64> = chunk_offsets(&input)
            .iter()
            .map(|o| o + moved as u64)
            .collect();
        assert_eq!(chunk_offsets(&out), shifted);
        // A shorter label leaves a free box instead of moving the media back.
        let shorter = write(&IsoBmffCarrier, &out, &record("short"));
        assert_eq!(mdat_start(&shorter), mdat_start(&out));
        assert_eq!(chunk_offsets(&shorter), chunk_offsets(&out));
        // A longer one again is absorbed by that free box.
        let longer = write(&IsoBmffCarrier, &shorter, &record("a-longer-id-0123"));
        assert_eq!(mdat_start(&longer), mdat_start(&out));
        assert_eq!(chunk_offsets(&longer), chunk_offsets(&out));
        only_label(&IsoBmffCarrier, &longer);
        let a = temp_file("in.mp4", &input);
        for (n, f) in [("s.mp4", &shorter), ("l.mp4", &longer)] {
            let b = temp_file(n, f);
            assert_same_media(&a, &b);
        }
    }

    #[test]
    fn fragmented_and_oddly_sized_boxes_keep_their_media() {
        let mp4 = sample("video.mp4");
        let frag = ffmpeg_copy("frag.mp4", &mp4, &["-movflags", "frag_keyframe+empty_moov"]);
        let ismv = ffmpeg_copy("frag.ismv", &mp4, &["-f", "ismv"]);
        // mdat of size 0 (to the end of the file) after a faststart moov.
        let mut zero = sample("video.mp4");
        let at = mdat_start(&zero);
        zero[at..at + 4].copy_from_slice(&[0; 4]);
        // moov with a 64-bit largesize header at the end of the file.
        let mut large = sample("video-moov-last.mp4");
        let (top, _) = boxes(&large, 0..large.len(), "top").expect("boxes");
        let moov = top.iter().find(|x| &x.kind == b"moov").expect("moov");
        let body = large[moov.body..moov.end].to_vec();
        large.truncate(moov.start);
        large.extend(box_bytes(b"moov", true, &body));
        let cases = [
            ("frag.mp4", frag),
            ("frag.ismv", ismv),
            ("zero.mp4", zero),
            ("large.mp4", large),
        ];
        for (name, input) in cases {
            let in_path = temp_file(&format!("in-{name}"), &input);
            let out = write(
                &IsoBmffCarrier,
                &input,
                &record("fragment-check-with-a-long-id"),
            );
            only_label(&IsoBmffCarrier, &out);
            let out_path = temp_file(&format!("out-{name}"), &out);
            assert_same_media(&in_path, &out_path);
            let again = write(&IsoBmffCarrier, &out, &record("x"));
            only_label(&IsoBmffCarrier, &again);
        }
    }

    /// `video-moov-last.mp4` with `extra` appended inside `moov/udta` and `after` after `moov`.
    fn with_extras(extra_in_udta: &[u8], after: &[u8]) -> Vec<u8> {
        let input = sample("video-moov-last.mp4");
        let (top, _) = boxes(&input, 0..input.len(), "top").expect("boxes");
        let moov = top.iter().find(|x| &x.kind == b"moov").expect("moov");
        let (kids, _) = children(&input, moov).expect("kids");
        let mut body = Vec::new();
        for k in kids {
            if &k.kind == b"udta" {
                let mut udta = input[k.body..k.end].to_vec();
                udta.extend_from_slice(extra_in_udta);
                body.extend(box_bytes(b"udta", false, &udta));
            } else {
                body.extend_from_slice(&input[k.range()]);
            }
        }
        let mut out = input[..moov.start].to_vec();
        out.extend(box_bytes(b"moov", false, &body));
        out.extend_from_slice(after);
        out
    }

    #[test]
    fn reads_and_removes_every_other_placement() {
        let legacy = record("alt").to_wrapped_json();
        // An iTunes freeform item in a second, mdir-handled meta.
        let mut item = box_bytes(b"mean", false, b"\0\0\0\0com.apple.iTunes");
        item.extend(box_bytes(b"name", false, b"\0\0\0\0AIGC"));
        item.extend(data_box(&legacy));
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"mdirappl");
        hdlr.extend_from_slice(&[0; 9]);
        let mut meta = vec![0u8; 4];
        meta.extend(box_bytes(b"hdlr", false, &hdlr));
        meta.extend(box_bytes(b"ilst", false, &box_bytes(b"----", false, &item)));
        let mut udta = box_bytes(b"meta", false, &meta);
        // A QuickTime string box named AIGC.
        let mut qt = (legacy.len() as u16).to_be_bytes().to_vec();
        qt.extend_from_slice(&[0x15, 0xC7]);
        qt.extend_from_slice(legacy.as_bytes());
        udta.extend(box_bytes(b"AIGC", false, &qt));
        // QuickTime XMP in udta, and a top-level XMP uuid box after moov.
        let packet = xmp::new_packet(&record("xmp"));
        udta.extend(box_bytes(b"XMP_", false, packet.as_bytes()));
        let mut uuid = XMP_UUID.to_vec();
        uuid.extend_from_slice(packet.as_bytes());
        let uuid = box_bytes(b"uuid", false, &uuid);
        let input = with_extras(&udta, &uuid);
        let found = IsoBmffCarrier.read(&input).expect("read");
        let places = placements(&found);
        assert_eq!(
            places,
            [
                "moov/udta/meta ilst ----:com.apple.iTunes:AIGC",
                "moov/udta/AIGC",
                "XMP (moov/udta/XMP_) TC260:AIGC",
                "XMP (uuid) TC260:AIGC",
            ]
        );
        assert!(found.iter().all(|f| f.parsed.is_valid() && !f.primary));
        let out = write(&IsoBmffCarrier, &input, &record("ours"));
        only_label(&IsoBmffCarrier, &out);
        // The uuid box keeps its size (its packet is padded), so nothing after it moves.
        let last = |f: &[u8]| {
            let (top, _) = boxes(f, 0..f.len(), "top").expect("boxes");
            top.last().map(|x| (x.kind, x.end - x.start))
        };
        assert_eq!(last(&out), last(&input));
        assert!(out.ends_with(b"<?xpacket end=\"w\"?>"));
        assert_eq!(mdat(&input), mdat(&out));
    }

    #[test]
    fn stco_becomes_co64_when_offsets_pass_4_gib() {
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(&100u32.to_be_bytes());
        body.extend_from_slice(&(u32::MAX - 10).to_be_bytes());
        let table = box_bytes(b"stco", false, &body);
        let (bx, _) = boxes(&table, 0..table.len(), "t").expect("box");
        let shift = Shift {
            moves: vec![(50, 20)],
        };
        let out = patch_chunk_offsets(&table, &bx[0], &shift).expect("patch");
        assert_eq!(&out[4..8], b"co64");
        assert_eq!(be_u64(&out, 16, "o").ok(), Some(120));
        assert_eq!(be_u64(&out, 24, "o").ok(), Some(u64::from(u32::MAX) + 10));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut inner = box_bytes(b"stbl", false, &[]);
        for _ in 0..10_000 {
            inner = box_bytes(b"mdia", false, &inner);
        }
        let mut file = box_bytes(b"ftyp", false, b"isom\0\0\0\0");
        file.extend(box_bytes(
            b"moov",
            false,
            &box_bytes(b"trak", false, &inner),
        ));
        assert!(IsoBmffCarrier.read(&file).expect("read").is_empty());
        assert!(IsoBmffCarrier.write(&file, &record("x")).is_err());
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let ours = write(&IsoBmffCarrier, &sample("video.mp4"), &record("fuzz"));
        for input in SAMPLES.iter().map(|n| sample(n)).chain([ours]) {
            let (top, _) = boxes(&input, 0..input.len(), "top").expect("boxes");
            let moov = top
                .iter()
                .find(|x| &x.kind == b"moov")
                .expect("moov")
                .range();
            // Every cut inside moov, where the parser looks; every 7th elsewhere. Flips mostly
            // inside moov.
            HostileInputs::new(1000, 7)
                .hot(moov)
                .cut_hot_densely()
                .assert_never_panic_and(&IsoBmffCarrier, &input, |_, out| {
                    assert!(out.len() >= 8);
                });
        }
    }
}
