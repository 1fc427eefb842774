//! FLV: the label is the key `AIGC` of the `onMetaData` script tag (AMF0: the string
//! `onMetaData`, then an ECMA array or object), an AMF0 string holding the wrapped JSON (a long
//! string when over 65535 bytes). ffmpeg writes `-metadata AIGC=…` to the same place.
//!
//! The tag is rewritten (DataSize and the PreviousTagSize after it), so every later tag moves by
//! the size difference: the absolute positions in the metadata (`keyframes.filepositions`,
//! `lastkeyframelocation`) are shifted and `filesize` is updated. Without an `onMetaData` tag one
//! is inserted right after the header. `AIGC`-named keys in other script tags are read too, and
//! removed on write.

use crate::bytes::{array, be_u16, be_u32, be_u64, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::riff::is_label_id;
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

/// The FLV carrier.
pub struct FlvCarrier;

/// How deep AMF0 objects and arrays may nest before we give up.
const MAX_DEPTH: usize = 32;
/// The script data tag type.
const SCRIPT_TAG: u8 = 18;
/// The largest tag payload (DataSize is 24 bits).
const MAX_TAG_DATA: usize = 0xFF_FFFF;

/// An AMF0 value, kept exactly enough to be written back byte for byte.
#[derive(Debug, Clone, PartialEq)]
enum Amf {
    /// A double, kept as its bits.
    Number(u64),
    Boolean(u8),
    String(Vec<u8>),
    Object(Props),
    Null,
    Undefined,
    Reference(u16),
    /// An ECMA array with its declared (approximate) count.
    EcmaArray(u32, Props),
    StrictArray(Vec<Amf>),
    /// Milliseconds since the epoch (double bits) and the time-zone field.
    Date(u64, [u8; 2]),
    LongString(Vec<u8>),
    Unsupported,
    Xml(Vec<u8>),
    TypedObject(Vec<u8>, Props),
}

/// The properties of an object or ECMA array, and whether the end marker was present.
#[derive(Debug, Clone, PartialEq)]
struct Props {
    entries: Vec<(Vec<u8>, Amf)>,
    terminated: bool,
}

/// A cursor over one script tag's data.
struct AmfReader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> AmfReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MetaError> {
        let s = slice(self.b, self.at, n, "FLV AMF0 value")?;
        self.at += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, MetaError> {
        Ok(array::<1>(self.take(1)?, 0, "FLV AMF0 value")?[0])
    }

    fn u16(&mut self) -> Result<u16, MetaError> {
        be_u16(self.take(2)?, 0, "FLV AMF0 value")
    }

    fn u32(&mut self) -> Result<u32, MetaError> {
        be_u32(self.take(4)?, 0, "FLV AMF0 value")
    }

    fn u64(&mut self) -> Result<u64, MetaError> {
        be_u64(self.take(8)?, 0, "FLV AMF0 value")
    }

    fn short_bytes(&mut self) -> Result<Vec<u8>, MetaError> {
        let n = self.u16()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn long_bytes(&mut self) -> Result<Vec<u8>, MetaError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    fn value(&mut self, depth: usize) -> Result<Amf, MetaError> {
        if depth > MAX_DEPTH {
            return Err(MetaError::unsupported(
                "FLV",
                format!("AMF0 values nested deeper than {MAX_DEPTH}"),
            ));
        }
        Ok(match self.byte()? {
            0 => Amf::Number(self.u64()?),
            1 => Amf::Boolean(self.byte()?),
            2 => Amf::String(self.short_bytes()?),
            3 => Amf::Object(self.props(depth)?),
            5 => Amf::Null,
            6 => Amf::Undefined,
            7 => Amf::Reference(self.u16()?),
            8 => {
                let count = self.u32()?;
                Amf::EcmaArray(count, self.props(depth)?)
            }
            10 => {
                let count = self.u32()?;
                let mut items = Vec::new();
                // Every value takes at least one byte, so the count cannot outrun the input.
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf::StrictArray(items)
            }
            11 => Amf::Date(self.u64()?, array(self.take(2)?, 0, "FLV AMF0 date")?),
            12 => Amf::LongString(self.long_bytes()?),
            13 => Amf::Unsupported,
            15 => Amf::Xml(self.long_bytes()?),
            16 => {
                let class = self.short_bytes()?;
                Amf::TypedObject(class, self.props(depth)?)
            }
            other => {
                return Err(MetaError::unsupported(
                    "FLV",
                    format!("AMF0 type {other} in a script tag"),
                ));
            }
        })
    }

    fn props(&mut self, depth: usize) -> Result<Props, MetaError> {
        let mut entries = Vec::new();
        loop {
            // Some writers end an ECMA array with the tag instead of the 00 00 09 marker.
            if self.at == self.b.len() {
                return Ok(Props {
                    entries,
                    terminated: false,
                });
            }
            if self.b.get(self.at..self.at + 3) == Some(&[0, 0, 9]) {
                self.at += 3;
                return Ok(Props {
                    entries,
                    terminated: true,
                });
            }
            let key = self.short_bytes()?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
    }
}

fn put_short(out: &mut Vec<u8>, s: &[u8]) {
    // Keys and short strings were read with a 16-bit length or checked by the caller.
    out.extend_from_slice(&(s.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(
        s.get(..s.len().min(usize::from(u16::MAX)))
            .unwrap_or_default(),
    );
}

fn put_long(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_props(out: &mut Vec<u8>, p: &Props) {
    for (k, v) in &p.entries {
        put_short(out, k);
        encode(v, out);
    }
    if p.terminated {
        out.extend_from_slice(&[0, 0, 9]);
    }
}

fn encode(v: &Amf, out: &mut Vec<u8>) {
    match v {
        Amf::Number(bits) => {
            out.push(0);
            out.extend_from_slice(&bits.to_be_bytes());
        }
        Amf::Boolean(b) => out.extend_from_slice(&[1, *b]),
        Amf::String(s) => {
            out.push(2);
            put_short(out, s);
        }
        Amf::Object(p) => {
            out.push(3);
            put_props(out, p);
        }
        Amf::Null => out.push(5),
        Amf::Undefined => out.push(6),
        Amf::Reference(r) => {
            out.push(7);
            out.extend_from_slice(&r.to_be_bytes());
        }
        Amf::EcmaArray(count, p) => {
            out.push(8);
            out.extend_from_slice(&count.to_be_bytes());
            put_props(out, p);
        }
        Amf::StrictArray(items) => {
            out.push(10);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Amf::Date(ms, tz) => {
            out.push(11);
            out.extend_from_slice(&ms.to_be_bytes());
            out.extend_from_slice(tz);
        }
        Amf::LongString(s) => {
            out.push(12);
            put_long(out, s);
        }
        Amf::Unsupported => out.push(13),
        Amf::Xml(s) => {
            out.push(15);
            put_long(out, s);
        }
        Amf::TypedObject(class, p) => {
            out.push(16);
            put_short(out, class);
            put_props(out, p);
        }
    }
}

/// An AMF0 string value: short when it fits in 65535 bytes, long otherwise.
fn amf_string(s: &str) -> Amf {
    if s.len() <= usize::from(u16::MAX) {
        Amf::String(s.as_bytes().to_vec())
    } else {
        Amf::LongString(s.as_bytes().to_vec())
    }
}

fn text_of(v: &Amf) -> Option<String> {
    match v {
        Amf::String(s) | Amf::LongString(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

fn props_mut(v: &mut Amf) -> Option<&mut Props> {
    match v {
        Amf::Object(p) | Amf::EcmaArray(_, p) | Amf::TypedObject(_, p) => Some(p),
        _ => None,
    }
}

fn props_of(v: &Amf) -> Option<&Props> {
    match v {
        Amf::Object(p) | Amf::EcmaArray(_, p) | Amf::TypedObject(_, p) => Some(p),
        _ => None,
    }
}

/// One tag: the header at `start`, the next tag at `end` (after the PreviousTagSize field).
struct Tag {
    start: usize,
    end: usize,
}

/// A parsed script tag: its name (e.g. `onMetaData`), value and any bytes after the value.
struct Script {
    tag: Tag,
    name: Vec<u8>,
    value: Amf,
    rest: Vec<u8>,
}

/// Where the first tag starts, and every script tag (not encrypted) in file order.
fn parse(b: &[u8]) -> Result<(usize, Vec<Script>), MetaError> {
    if slice(b, 0, 3, "FLV header")? != b"FLV" {
        return Err(MetaError::malformed("FLV", "missing FLV signature"));
    }
    let header_len = be_u32(b, 5, "FLV header")? as usize;
    if header_len < 9 {
        return Err(MetaError::malformed("FLV", "header size below 9"));
    }
    let first = header_len
        .checked_add(4)
        .filter(|f| *f <= b.len())
        .ok_or_else(|| MetaError::truncated("FLV PreviousTagSize0", header_len))?;
    let mut scripts = Vec::new();
    let mut at = first;
    while at < b.len() {
        let header = slice(b, at, 11, "FLV tag header")?;
        let kind = header.first().copied().unwrap_or_default();
        let size = (be_u32(header, 0, "FLV tag header")? & MAX_TAG_DATA as u32) as usize;
        let data = at + 11..at + 11 + size;
        let end = data.end + 4;
        slice(
            b,
            data.start,
            size + 4,
            &format!("FLV tag (type {})", kind & 0x1F),
        )?;
        // Script tags that are not encrypted (filter bit 0x20) may hold metadata.
        if kind == SCRIPT_TAG {
            let mut r = AmfReader {
                b: slice(b, data.start, size, "FLV script tag")?,
                at: 0,
            };
            let name = r.value(0)?;
            let value = r.value(0)?;
            let rest = r.b.get(r.at..).unwrap_or_default().to_vec();
            if let Amf::String(name) | Amf::LongString(name) = name {
                scripts.push(Script {
                    tag: Tag { start: at, end },
                    name,
                    value,
                    rest,
                });
            }
        }
        at = end;
    }
    Ok((first, scripts))
}

/// A script tag with `name` and `value`, copying timestamp and stream id from `header`.
fn script_tag(header: &[u8], name: &[u8], value: &Amf, rest: &[u8]) -> Result<Vec<u8>, MetaError> {
    let mut data = Vec::new();
    encode(&Amf::String(name.to_vec()), &mut data);
    encode(value, &mut data);
    data.extend_from_slice(rest);
    if data.len() > MAX_TAG_DATA {
        return Err(MetaError::unsupported(
            "FLV",
            "the script tag would exceed the 16 MiB tag size",
        ));
    }
    let mut tag = Vec::with_capacity(data.len() + 15);
    tag.push(SCRIPT_TAG);
    tag.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    tag.extend_from_slice(header.get(4..11).unwrap_or(&[0; 7]));
    tag.extend_from_slice(&data);
    tag.extend_from_slice(&(data.len() as u32 + 11).to_be_bytes());
    Ok(tag)
}

/// A rewritten script tag: the input tag it replaces (empty range: inserted), its new content.
struct Edit {
    range: Range<usize>,
    header: Vec<u8>,
    name: Vec<u8>,
    value: Amf,
    rest: Vec<u8>,
    new_len: usize,
}

/// Where input offset `off` lands in the output: after every edit that ends at or before it.
fn map(edits: &[Edit], off: f64) -> f64 {
    let shift: i128 = edits
        .iter()
        .filter(|e| e.range.end as f64 <= off)
        .map(|e| e.new_len as i128 - e.range.len() as i128)
        .sum();
    off + shift as f64
}

/// Applies `f` to a number when it is a plain byte position (a non-negative integer).
fn shift_position(v: &mut Amf, f: impl Fn(f64) -> f64) {
    if let Amf::Number(bits) = v {
        let x = f64::from_bits(*bits);
        if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 {
            *bits = f(x).max(0.0).to_bits();
        }
    }
}

/// Shifts the byte positions and the file size that metadata holds.
fn shift_positions(props: &mut Props, edits: &[Edit], total_delta: f64) {
    for (key, v) in &mut props.entries {
        match key.as_slice() {
            b"filesize" => {
                if matches!(v, Amf::Number(bits) if f64::from_bits(*bits) > 0.0) {
                    shift_position(v, |x| x + total_delta);
                }
            }
            b"lastkeyframelocation" => shift_position(v, |x| map(edits, x)),
            b"keyframes" => {
                let Some(kf) = props_mut(v) else { continue };
                for (k, positions) in &mut kf.entries {
                    if let (b"filepositions", Amf::StrictArray(items)) = (k.as_slice(), positions) {
                        for item in items {
                            shift_position(item, |x| map(edits, x));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Carrier for FlvCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Flv]
    }

    fn placement(&self) -> &'static str {
        "onMetaData AMF0 key AIGC"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let (_, scripts) = parse(input)?;
        let mut found = Vec::new();
        for s in &scripts {
            let Some(props) = props_of(&s.value) else {
                continue;
            };
            let name = String::from_utf8_lossy(&s.name);
            for (key, value) in &props.entries {
                if let (true, Some(text)) = (is_label_id(key), text_of(value)) {
                    found.push(FoundLabel::new(
                        format!("FLV {name} {}", String::from_utf8_lossy(key)),
                        s.name == b"onMetaData" && key == b"AIGC",
                        text,
                    ));
                }
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let (first, scripts) = parse(input)?;
        let label = amf_string(&record.to_wrapped_json());
        let mut edits = Vec::new();
        let mut placed = false;
        for s in &scripts {
            let is_target = !placed && s.name == b"onMetaData" && props_of(&s.value).is_some();
            let mut value = s.value.clone();
            let Some(props) = props_mut(&mut value) else {
                continue;
            };
            let old_len = props.entries.len();
            let first_label = props.entries.iter().position(|(k, _)| is_label_id(k));
            props.entries.retain(|(k, _)| !is_label_id(k));
            if is_target {
                let at = first_label.unwrap_or(props.entries.len());
                props.entries.insert(at, (b"AIGC".to_vec(), label.clone()));
                placed = true;
            } else if first_label.is_none() {
                continue;
            }
            let new_len = props.entries.len();
            if let Amf::EcmaArray(count, _) = &mut value {
                // Keep a writer's odd count; correct an exact one.
                if *count as usize == old_len {
                    *count = new_len as u32;
                }
            }
            let header = slice(input, s.tag.start, 11, "FLV tag header")?.to_vec();
            edits.push(Edit {
                range: s.tag.start..s.tag.end,
                header,
                name: s.name.clone(),
                value,
                rest: s.rest.clone(),
                new_len: 0,
            });
        }
        if !placed {
            let props = Props {
                entries: vec![(b"AIGC".to_vec(), label)],
                terminated: true,
            };
            edits.insert(
                0,
                Edit {
                    range: first..first,
                    header: vec![SCRIPT_TAG, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    name: b"onMetaData".to_vec(),
                    value: Amf::EcmaArray(1, props),
                    rest: Vec::new(),
                    new_len: 0,
                },
            );
        }
        // Sizes first (numbers are fixed-size, so shifting them cannot change a tag's length).
        for e in &mut edits {
            e.new_len = script_tag(&e.header, &e.name, &e.value, &e.rest)?.len();
        }
        let total_delta: i128 = edits
            .iter()
            .map(|e| e.new_len as i128 - e.range.len() as i128)
            .sum();
        let mut tags = Vec::with_capacity(edits.len());
        for e in &edits {
            let mut value = e.value.clone();
            if let Some(props) = props_mut(&mut value) {
                shift_positions(props, &edits, total_delta as f64);
            }
            tags.push(script_tag(&e.header, &e.name, &value, &e.rest)?);
        }
        let mut out = Rewrite::new();
        let mut at = 0;
        for (e, tag) in edits.iter().zip(tags) {
            out.keep(at..e.range.start);
            out.insert(tag);
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

    const FLV: &str = "video.flv";

    /// The end of the first tag (ffmpeg's onMetaData) in a file with a 9-byte header.
    fn first_tag_end(b: &[u8]) -> usize {
        let size = u32::from_be_bytes([0, b[14], b[15], b[16]]) as usize;
        13 + 11 + size + 4
    }

    /// Checks ffprobe and exiftool read the label, the file decodes and the packets are equal.
    fn assert_tools_agree(input: &[u8], out: &[u8], rec: &AigcRecord) -> serde_json::Value {
        let before = temp_file("in.flv", input);
        let after = temp_file("out.flv", out);
        assert_eq!(ffprobe_format_tags(&after)["AIGC"], rec.to_wrapped_json());
        // exiftool names an unknown onMetaData key after the key: Flash:AIGC.
        let tags = exiftool(&after, &["-u", "-b"]);
        assert_eq!(tags["Flash:AIGC"], rec.to_wrapped_json(), "{tags}");
        assert_same_media(&before, &after);
        tags
    }

    #[test]
    fn flv_write_read_and_relabel_keep_one_label() {
        let input = sample(FLV);
        let rec = record("flv-1");
        let out = write(&FlvCarrier, &input, &rec);
        assert_one_label_as(&FlvCarrier, &out, &rec, Form::Wrapped);
        // Only the metadata tag changed; every later tag is the same bytes.
        assert_eq!(out[first_tag_end(&out)..], input[first_tag_end(&input)..]);
        let rec2 = record_with_reserved("flv-2", 10);
        let again = write(&FlvCarrier, &out, &rec2);
        assert_one_label_as(&FlvCarrier, &again, &rec2, Form::Wrapped);
        let tags = assert_tools_agree(&input, &again, &rec2);
        // ffmpeg's filesize is kept true.
        assert_eq!(tags["Flash:FileSizeBytes"], again.len());
        assert_eq!(tags["Flash:Encoder"], "Lavf59.27.100");
    }

    #[test]
    fn flv_reads_and_replaces_a_label_written_by_ffmpeg() {
        let old = record("by-ffmpeg").to_wrapped_json();
        let input = ffmpeg_copy(
            "src.flv",
            &sample(FLV),
            &["-metadata", &format!("AIGC={old}")],
        );
        let found = FlvCarrier.read(&input).expect("read");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].placement, "FLV onMetaData AIGC");
        assert_eq!(found[0].value, old);
        let rec = record("ours");
        let out = write(&FlvCarrier, &input, &rec);
        assert_one_label_as(&FlvCarrier, &out, &rec, Form::Wrapped);
        assert_tools_agree(&input, &out, &rec);
    }

    #[test]
    fn flv_keyframe_positions_follow_the_moved_tags() {
        let input = ffmpeg_copy(
            "src.flv",
            &sample(FLV),
            &["-flvflags", "add_keyframe_index"],
        );
        let rec = record_with_reserved("flv-kf", 300);
        let out = write(&FlvCarrier, &input, &rec);
        assert_one_label_as(&FlvCarrier, &out, &rec, Form::Wrapped);
        let delta = out.len() as i64 - input.len() as i64;
        assert!(delta > 300);
        let before = temp_file("kf.flv", &input);
        let old = exiftool(&before, &["-u", "-b"]);
        let tags = assert_tools_agree(&input, &out, &rec);
        let positions = tags["Flash:KeyFramePositions"]
            .as_array()
            .expect("positions");
        assert_eq!(positions.len(), 2);
        for (p, o) in positions
            .iter()
            .zip(old["Flash:KeyFramePositions"].as_array().expect("old"))
        {
            let (p, o) = (p.as_i64().expect("n") as usize, o.as_i64().expect("n"));
            assert_eq!(p as i64, o + delta);
            // A video tag holding a key frame (frame type 1 in the high nibble).
            assert_eq!(out[p] & 0x1F, 9, "tag at {p}");
            assert_eq!(out[p + 11] >> 4, 1, "key frame at {p}");
        }
        assert_eq!(
            tags["Flash:Lastkeyframelocation"].as_i64(),
            old["Flash:Lastkeyframelocation"]
                .as_i64()
                .map(|o| o + delta)
        );
        assert_eq!(tags["Flash:FileSizeBytes"], out.len());
    }

    #[test]
    fn flv_without_metadata_gets_an_onmetadata_tag() {
        let full = sample(FLV);
        let mut input = full[..13].to_vec();
        input.extend_from_slice(&full[first_tag_end(&full)..]);
        assert!(FlvCarrier.read(&input).expect("read").is_empty());
        let rec = record("flv-new");
        let out = write(&FlvCarrier, &input, &rec);
        assert_one_label_as(&FlvCarrier, &out, &rec, Form::Wrapped);
        assert_eq!(out[first_tag_end(&out)..], input[13..]);
        assert_tools_agree(&input, &out, &rec);
    }

    #[test]
    fn flv_long_label_is_an_amf_long_string() {
        let input = sample(FLV);
        let rec = record_with_reserved("flv-long", 70_000);
        let out = write(&FlvCarrier, &input, &rec);
        assert_one_label_as(&FlvCarrier, &out, &rec, Form::Wrapped);
        let at = out
            .windows(6)
            .position(|w| w == b"\0\x04AIGC")
            .expect("key")
            + 6;
        assert_eq!(out[at], 12, "long string marker");
        let again = write(&FlvCarrier, &out, &record("short"));
        assert_one_label_as(&FlvCarrier, &again, &record("short"), Form::Wrapped);
        assert_eq!(
            again[first_tag_end(&again)..],
            input[first_tag_end(&input)..]
        );
    }

    #[test]
    fn flv_labels_in_other_script_tags_are_removed_and_amf_round_trips() {
        // A second script tag with every AMF0 type and an aigc key, after the first tag.
        let full = sample(FLV);
        let mut data = Vec::new();
        encode(&Amf::String(b"onCuePoint".to_vec()), &mut data);
        let nested = Amf::StrictArray(vec![
            Amf::Boolean(1),
            Amf::Null,
            Amf::Undefined,
            Amf::Reference(3),
            Amf::Date(0x4000_0000_0000_0000, [0, 8]),
            Amf::LongString(b"long".to_vec()),
            Amf::Unsupported,
            Amf::Xml(b"<x/>".to_vec()),
            Amf::TypedObject(
                b"C".to_vec(),
                Props {
                    entries: vec![],
                    terminated: true,
                },
            ),
        ]);
        let old = record("old").to_wrapped_json();
        let value = Amf::Object(Props {
            entries: vec![
                (b"list".to_vec(), nested),
                (b"my_aigc".to_vec(), Amf::String(old.clone().into_bytes())),
            ],
            terminated: true,
        });
        encode(&value, &mut data);
        let mut r = AmfReader { b: &data, at: 0 };
        r.value(0).expect("name");
        assert_eq!(r.value(0).expect("value"), value);
        assert_eq!(r.at, data.len());
        let tag = script_tag(
            &[SCRIPT_TAG, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            b"onCuePoint",
            &value,
            &[],
        )
        .expect("tag");
        let split = first_tag_end(&full);
        let mut input = full[..split].to_vec();
        input.extend(tag);
        input.extend_from_slice(&full[split..]);
        let found = FlvCarrier.read(&input).expect("read");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].placement, "FLV onCuePoint my_aigc");
        assert!(!found[0].primary);
        let rec = record("new");
        let out = write(&FlvCarrier, &input, &rec);
        assert_one_label_as(&FlvCarrier, &out, &rec, Form::Wrapped);
        assert!(String::from_utf8_lossy(&out).contains("onCuePoint"));
    }

    #[test]
    fn flv_hostile_input_never_panics() {
        let input = sample(FLV);
        HostileInputs::new(2000, 7)
            .hot(0..700)
            .assert_never_panic(&FlvCarrier, &input);
        let kf = ffmpeg_copy("src.flv", &input, &["-flvflags", "add_keyframe_index"]);
        let small = &kf[..2000];
        HostileInputs::new(3000, 1)
            .hot(0..700)
            .assert_never_panic(&FlvCarrier, small);
        // Deep nesting is refused, not followed.
        let mut deep = full_header();
        let mut data = Vec::new();
        encode(&Amf::String(b"onMetaData".to_vec()), &mut data);
        data.extend(
            std::iter::repeat_n(10u8, 1)
                .chain([0, 0, 0, 1])
                .cycle()
                .take(5 * 100),
        );
        deep.push(SCRIPT_TAG);
        deep.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        deep.extend_from_slice(&[0; 7]);
        deep.extend_from_slice(&data);
        deep.extend_from_slice(&(data.len() as u32 + 11).to_be_bytes());
        let err = FlvCarrier.read(&deep).expect_err("too deep");
        assert!(err.to_string().contains("nested"), "{err}");
    }

    fn full_header() -> Vec<u8> {
        sample(FLV)[..13].to_vec()
    }
}
