//! PDF: the label is the Info dictionary key `/AIGC` (the wrapped JSON as a PDF string), mirrored
//! as `TC260:AIGC` into the Catalog's XMP `/Metadata` stream. Writing appends an incremental
//! update (new Info, Metadata and, if needed, Catalog object versions plus a cross-reference
//! section chained with `/Prev`), so the original bytes stay an exact prefix of the output.
//!
//! Reading reports the XMP copy that matches the Info label as part of that label (placement
//! `Info /AIGC (mirrored in XMP TC260:AIGC)`), so a file we wrote holds one label; any other XMP
//! label is reported on its own.
//!
//! The small object parser here reads what that needs: classic xref tables and xref streams
//! (FlateDecode, PNG predictors), objects in object streams, and the latest Info and Catalog.

use crate::bytes::{MAX_INFLATED, inflate_zlib};
use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use crate::xmp;
use aigc_core::{AigcRecord, Format};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::rc::Rc;

const FORMAT: &str = "PDF";
/// How deeply arrays and dictionaries may nest (hostile files could exhaust the stack).
const MAX_NESTING: usize = 64;
/// How many references may be followed to load one object (e.g. a stream's `/Length`).
const MAX_RESOLVE_DEPTH: usize = 8;
/// How many cross-reference sections a `/Prev` chain may hold.
const MAX_XREF_SECTIONS: usize = 1024;

/// The PDF carrier.
pub struct PdfCarrier;

fn malformed(detail: impl Into<String>) -> MetaError {
    MetaError::malformed(FORMAT, detail)
}

/// A PDF object as parsed (streams are kept apart, see [`Loaded`]).
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(u32, u16),
}

impl Obj {
    fn as_int(&self) -> Option<i64> {
        match self {
            Obj::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn as_usize(&self) -> Option<usize> {
        self.as_int().and_then(|i| usize::try_from(i).ok())
    }

    fn as_name(&self) -> Option<&[u8]> {
        match self {
            Obj::Name(n) => Some(n),
            _ => None,
        }
    }
}

/// One dictionary entry with its source text, so that it can be copied verbatim.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: Vec<u8>,
    value: Obj,
    raw_key: Vec<u8>,
    raw_value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Dict {
    entries: Vec<Entry>,
}

impl Dict {
    fn get(&self, key: &[u8]) -> Option<&Obj> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    fn entry(&self, key: &[u8]) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(c: u8) -> bool {
    !is_space(c) && !is_delimiter(c)
}

/// A tokenizer and object parser over one buffer (the file or a decoded object stream).
struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(b: &'a [u8], pos: usize) -> Self {
        Self { b, pos }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.pos.checked_add(ahead)?).copied()
    }

    /// Skips white space and comments.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if is_space(c) {
                self.pos += 1;
            } else if c == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\r' || c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn truncated(&self, what: &str) -> MetaError {
        MetaError::truncated(format!("PDF {what}"), self.pos)
    }

    /// A run of regular characters (a keyword or number), possibly empty.
    fn word(&mut self) -> &'a [u8] {
        self.skip_space();
        let start = self.pos;
        while self.peek().is_some_and(is_regular) {
            self.pos += 1;
        }
        self.b.get(start..self.pos).unwrap_or_default()
    }

    fn keyword(&mut self, expected: &[u8]) -> Result<(), MetaError> {
        let at = self.pos;
        let w = self.word();
        if w == expected {
            Ok(())
        } else if w.is_empty() && self.peek().is_none() {
            Err(self.truncated(&format!("'{}'", String::from_utf8_lossy(expected))))
        } else {
            Err(malformed(format!(
                "expected '{}' at byte {at}, found '{}'",
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(w.get(..w.len().min(20)).unwrap_or_default())
            )))
        }
    }

    fn unsigned(&mut self, what: &str) -> Result<u64, MetaError> {
        let at = self.pos;
        let w = self.word();
        if w.is_empty() && self.peek().is_none() {
            return Err(self.truncated(what));
        }
        std::str::from_utf8(w)
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                malformed(format!(
                    "expected {what} (an unsigned integer) at byte {at}"
                ))
            })
    }

    fn object(&mut self, depth: usize) -> Result<Obj, MetaError> {
        if depth > MAX_NESTING {
            return Err(malformed(format!(
                "objects nest more than {MAX_NESTING} deep at byte {}",
                self.pos
            )));
        }
        self.skip_space();
        let Some(c) = self.peek() else {
            return Err(self.truncated("object"));
        };
        match c {
            b'/' => self.name().map(Obj::Name),
            b'(' => self.literal_string().map(Obj::Str),
            b'<' if self.peek_at(1) == Some(b'<') => self.dict(depth).map(Obj::Dict),
            b'<' => self.hex_string().map(Obj::Str),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.peek() {
                        None => return Err(self.truncated("array")),
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Obj::Array(items));
                        }
                        Some(_) => items.push(self.object(depth + 1)?),
                    }
                }
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => self.number(),
            _ => {
                let at = self.pos;
                match self.word() {
                    b"true" => Ok(Obj::Bool(true)),
                    b"false" => Ok(Obj::Bool(false)),
                    b"null" => Ok(Obj::Null),
                    other => Err(malformed(format!(
                        "unexpected token '{}' at byte {at}",
                        String::from_utf8_lossy(other.get(..other.len().min(20)).unwrap_or(b"?"))
                    ))),
                }
            }
        }
    }

    /// A number, or a reference `num gen R` when one follows.
    fn number(&mut self) -> Result<Obj, MetaError> {
        let at = self.pos;
        let w = self.word();
        let s = std::str::from_utf8(w).unwrap_or_default();
        if let Ok(i) = s.parse::<i64>() {
            if let (Ok(num), Some(gen_ref)) = (u32::try_from(i), self.reference_tail()) {
                return Ok(Obj::Ref(num, gen_ref));
            }
            return Ok(Obj::Int(i));
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Obj::Real)
            .ok_or_else(|| malformed(format!("bad number at byte {at}")))
    }

    /// After an integer: `gen R` makes it a reference; otherwise nothing is consumed.
    fn reference_tail(&mut self) -> Option<u16> {
        let save = self.pos;
        let generation = self.word();
        let generation = std::str::from_utf8(generation)
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u16>().ok());
        if let Some(g) = generation
            && self.word() == b"R"
        {
            return Some(g);
        }
        self.pos = save;
        None
    }

    fn name(&mut self) -> Result<Vec<u8>, MetaError> {
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek().filter(|c| is_regular(*c)) {
            self.pos += 1;
            let hex = |c: Option<u8>| c.and_then(|c| (c as char).to_digit(16));
            if c == b'#'
                && let (Some(h), Some(l)) = (hex(self.peek()), hex(self.peek_at(1)))
            {
                out.push((h * 16 + l) as u8);
                self.pos += 2;
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn literal_string(&mut self) -> Result<Vec<u8>, MetaError> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut nesting = 0usize;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.truncated("literal string"));
            };
            self.pos += 1;
            match c {
                b'(' => {
                    nesting += 1;
                    out.push(c);
                }
                b')' if nesting == 0 => return Ok(out),
                b')' => {
                    nesting -= 1;
                    out.push(c);
                }
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.truncated("literal string"));
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xFF) as u8);
                        }
                        // A backslash before a line end continues the string on the next line.
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                // Any bare line end reads as a single LF.
                b'\r' => {
                    if self.peek() == Some(b'\n') {
                        self.pos += 1;
                    }
                    out.push(b'\n');
                }
                other => out.push(other),
            }
        }
    }

    fn hex_string(&mut self) -> Result<Vec<u8>, MetaError> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.truncated("hex string"));
            };
            self.pos += 1;
            if c == b'>' {
                if let Some(h) = high {
                    out.push(h << 4);
                }
                return Ok(out);
            }
            if is_space(c) {
                continue;
            }
            let d = (c as char).to_digit(16).ok_or_else(|| {
                malformed(format!("bad hex string digit at byte {}", self.pos - 1))
            })? as u8;
            match high.take() {
                Some(h) => out.push(h << 4 | d),
                None => high = Some(d),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Dict, MetaError> {
        self.pos += 2;
        let mut entries = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return Err(self.truncated("dictionary")),
                Some(b'>') if self.peek_at(1) == Some(b'>') => {
                    self.pos += 2;
                    return Ok(Dict { entries });
                }
                Some(b'/') => {
                    let key_start = self.pos;
                    let key = self.name()?;
                    let raw_key = self.b.get(key_start..self.pos).unwrap_or_default().to_vec();
                    self.skip_space();
                    let value_start = self.pos;
                    let value = self.object(depth + 1)?;
                    let raw_value = self
                        .b
                        .get(value_start..self.pos)
                        .unwrap_or_default()
                        .to_vec();
                    entries.push(Entry {
                        key,
                        value,
                        raw_key,
                        raw_value,
                    });
                }
                Some(_) => {
                    return Err(malformed(format!(
                        "dictionary key is not a name at byte {}",
                        self.pos
                    )));
                }
            }
        }
    }
}

/// A stream: its dictionary and where its (still encoded) data lies in the file.
#[derive(Debug, Clone)]
struct Stream {
    dict: Dict,
    data: Range<usize>,
}

/// An object loaded from the file.
#[derive(Debug, Clone)]
enum Loaded {
    Obj(Obj),
    Stream(Stream),
}

/// An indirect object `num gen obj …` as parsed.
struct Indirect {
    num: u32,
    value: Obj,
    /// Where the stream data starts, if the object is a stream.
    stream_start: Option<usize>,
}

fn parse_indirect(b: &[u8], at: usize) -> Result<Indirect, MetaError> {
    let mut p = Parser::new(b, at);
    let num = p.unsigned("object number")?;
    let generation = p.unsigned("generation number")?;
    p.keyword(b"obj")?;
    let value = p.object(0)?;
    let num = u32::try_from(num).map_err(|_| malformed("object number too large"))?;
    u16::try_from(generation).map_err(|_| malformed("generation too large"))?;
    let stream_start = if matches!(value, Obj::Dict(_)) && p.word() == b"stream" {
        // The keyword is followed by CRLF or LF (a lone CR is tolerated).
        match (p.peek(), p.peek_at(1)) {
            (Some(b'\r'), Some(b'\n')) => p.pos += 2,
            (Some(b'\r' | b'\n'), _) => p.pos += 1,
            _ => {}
        }
        Some(p.pos)
    } else {
        None
    };
    Ok(Indirect {
        num,
        value,
        stream_start,
    })
}

/// The first position of `needle` in `hay` (a first-byte scan: fast even in debug builds).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while let Some(i) = hay.get(at..)?.iter().position(|&c| c == first) {
        let start = at + i;
        if hay.get(start + 1..)?.starts_with(rest) {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

/// The last position of `needle` in `hay`.
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut end = hay.len();
    while let Some(start) = hay.get(..end)?.iter().rposition(|&c| c == first) {
        if hay.get(start + 1..)?.starts_with(rest) {
            return Some(start);
        }
        end = start;
    }
    None
}

/// The data range of a stream starting at `start`, trusting `length` only when `endstream`
/// follows it.
fn stream_range(b: &[u8], start: usize, length: Option<usize>) -> Result<Range<usize>, MetaError> {
    if let Some(end) = length.and_then(|l| start.checked_add(l))
        && end <= b.len()
    {
        let mut p = Parser::new(b, end);
        if p.word() == b"endstream" {
            return Ok(start..end);
        }
    }
    let rest = b.get(start..).unwrap_or_default();
    let at = find(rest, b"endstream")
        .ok_or_else(|| MetaError::truncated("PDF stream (no endstream)", start))?;
    // The line end before `endstream` is not data.
    let mut end = start + at;
    if end > start && b.get(end - 1) == Some(&b'\n') {
        end -= 1;
    }
    if end > start && b.get(end - 1) == Some(&b'\r') {
        end -= 1;
    }
    Ok(start..end)
}

/// The data of a stream after its filters (FlateDecode with PNG predictors; no filter).
fn decode_stream(b: &[u8], s: &Stream, what: &str) -> Result<Vec<u8>, MetaError> {
    let raw = b
        .get(s.data.clone())
        .ok_or_else(|| MetaError::truncated(format!("PDF {what} stream"), s.data.start))?;
    let filters: Vec<&Obj> = match s.dict.get(b"Filter") {
        None | Some(Obj::Null) => Vec::new(),
        Some(Obj::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
    };
    let parms: Vec<Option<&Dict>> = match s.dict.get(b"DecodeParms") {
        Some(Obj::Array(a)) => a
            .iter()
            .map(|p| match p {
                Obj::Dict(d) => Some(d),
                _ => None,
            })
            .collect(),
        Some(Obj::Dict(d)) => vec![Some(d)],
        _ => Vec::new(),
    };
    let mut data = raw.to_vec();
    for (i, f) in filters.iter().enumerate() {
        match f.as_name() {
            Some(b"FlateDecode" | b"Fl") => {
                data = inflate_zlib(&data, MAX_INFLATED, &format!("PDF {what} stream"))?;
                data = unpredict(data, parms.get(i).copied().flatten(), what)?;
            }
            Some(name) => {
                return Err(MetaError::unsupported(
                    FORMAT,
                    format!(
                        "{what} stream uses the /{} filter (only FlateDecode is read)",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
            None => return Err(malformed(format!("{what} stream /Filter is not a name"))),
        }
    }
    Ok(data)
}

/// Undoes a PNG predictor (`/Predictor` 10–15) on decoded data.
fn unpredict(data: Vec<u8>, parms: Option<&Dict>, what: &str) -> Result<Vec<u8>, MetaError> {
    let int = |key: &[u8], default: i64| {
        parms
            .and_then(|p| p.get(key))
            .and_then(Obj::as_int)
            .unwrap_or(default)
    };
    let predictor = int(b"Predictor", 1);
    match predictor {
        1 => return Ok(data),
        10..=15 => {}
        2 => {
            return Err(MetaError::unsupported(
                FORMAT,
                format!("{what} stream uses the TIFF predictor"),
            ));
        }
        other => return Err(malformed(format!("{what} stream /Predictor {other}"))),
    }
    let (colors, bits, columns) = (
        int(b"Colors", 1),
        int(b"BitsPerComponent", 8),
        int(b"Columns", 1),
    );
    if !(1..=32).contains(&colors)
        || ![1, 2, 4, 8, 16].contains(&bits)
        || !(1..=1 << 20).contains(&columns)
    {
        return Err(malformed(format!(
            "{what} stream has bad predictor parameters"
        )));
    }
    // Bounded above, so these products cannot overflow.
    let bpp = ((colors * bits + 7) / 8) as usize;
    let row = ((colors * bits * columns + 7) / 8) as usize;
    if data.is_empty() {
        return Ok(data);
    }
    // Each row is a filter byte and `row` bytes; a longer row than the data is not a stream we
    // should allocate for.
    if row >= data.len() {
        return Err(malformed(format!(
            "{what} stream predictor rows ({row} bytes) are longer than its data"
        )));
    }
    let mut out = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; row];
    for chunk in data.chunks(row + 1) {
        let (&filter, bytes) = chunk.split_first().unwrap_or((&0, &[]));
        let mut cur = bytes.to_vec();
        cur.resize(row, 0);
        for i in 0..row {
            let left = if i >= bpp { cur[i - bpp] } else { 0 };
            let up = prev[i];
            let up_left = if i >= bpp { prev[i - bpp] } else { 0 };
            let add = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                other => return Err(malformed(format!("{what} stream PNG row filter {other}"))),
            };
            cur[i] = cur[i].wrapping_add(add);
        }
        out.extend_from_slice(cur.get(..bytes.len().min(row)).unwrap_or_default());
        prev = cur;
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Where an object lives, from the cross-reference data.
#[derive(Debug, Clone, Copy, PartialEq)]
enum XrefEntry {
    Free,
    Offset { at: usize, generation: u16 },
    Compressed { stream: u32, index: usize },
}

/// The merged cross-reference data, newest section first.
struct Xref {
    entries: HashMap<u32, XrefEntry>,
    /// Trailer dictionaries, newest first.
    trailers: Vec<Dict>,
    /// Offset of the newest section (the `/Prev` of the one we append).
    startxref: usize,
    /// Whether the newest section is a cross-reference stream.
    newest_is_stream: bool,
}

fn find_startxref(b: &[u8]) -> Result<usize, MetaError> {
    let at = rfind(b, b"startxref").ok_or_else(|| malformed("no startxref: not a complete PDF"))?;
    let mut p = Parser::new(b, at + 9);
    let off = p.unsigned("startxref offset")?;
    usize::try_from(off)
        .ok()
        .filter(|o| *o < b.len())
        .ok_or_else(|| {
            malformed(format!(
                "startxref offset {off} is past the end of the file"
            ))
        })
}

/// Reads one classic `xref` table and its trailer, at `at`.
fn classic_section(
    b: &[u8],
    at: usize,
    into: &mut HashMap<u32, XrefEntry>,
) -> Result<Dict, MetaError> {
    let mut p = Parser::new(b, at);
    p.keyword(b"xref")?;
    loop {
        p.skip_space();
        if p.b.get(p.pos..).is_some_and(|r| r.starts_with(b"trailer")) {
            p.keyword(b"trailer")?;
            return match p.object(0)? {
                Obj::Dict(d) => Ok(d),
                _ => Err(malformed("trailer is not a dictionary")),
            };
        }
        let first = p.unsigned("xref subsection start")?;
        let count = p.unsigned("xref subsection count")?;
        // Each entry takes at least 18 bytes, which bounds the loop by the file size.
        if count > (b.len().saturating_sub(p.pos) / 18 + 1) as u64 {
            return Err(MetaError::truncated("PDF xref subsection", p.pos));
        }
        for i in 0..count {
            let offset = p.unsigned("xref entry offset")?;
            let generation = p.unsigned("xref entry generation")?;
            let kind = p.word();
            let num = first
                .checked_add(i)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| malformed("xref object number too large"))?;
            let entry = match kind {
                b"n" => XrefEntry::Offset {
                    at: usize::try_from(offset).map_err(|_| malformed("xref offset too large"))?,
                    generation: u16::try_from(generation).unwrap_or(u16::MAX),
                },
                b"f" => XrefEntry::Free,
                _ => {
                    return Err(malformed(format!(
                        "xref entry type is not n or f at byte {}",
                        p.pos
                    )));
                }
            };
            into.entry(num).or_insert(entry);
        }
    }
}

/// Reads one cross-reference stream at `at`; returns its dictionary (which is also the trailer).
fn stream_section(
    b: &[u8],
    at: usize,
    into: &mut HashMap<u32, XrefEntry>,
) -> Result<Dict, MetaError> {
    let obj = parse_indirect(b, at)?;
    let (Obj::Dict(dict), Some(start)) = (obj.value, obj.stream_start) else {
        return Err(malformed(format!(
            "no xref table or xref stream at byte {at}"
        )));
    };
    if dict.get(b"Type").and_then(Obj::as_name) != Some(b"XRef") {
        return Err(malformed(format!(
            "the stream at byte {at} is not /Type /XRef"
        )));
    }
    let length = dict.get(b"Length").and_then(Obj::as_usize);
    let stream = Stream {
        data: stream_range(b, start, length)?,
        dict,
    };
    let data = decode_stream(b, &stream, "xref")?;
    let dict = stream.dict;
    let widths: Vec<usize> = match dict.get(b"W") {
        Some(Obj::Array(w)) if w.len() == 3 => w
            .iter()
            .map(|x| x.as_usize().filter(|n| *n <= 8))
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("xref stream /W holds a width outside 0..=8"))?,
        _ => return Err(malformed("xref stream /W is not an array of three widths")),
    };
    let (w0, w1, w2) = match widths[..] {
        [a, b, c] => (a, b, c),
        _ => return Err(malformed("xref stream /W is not an array of three widths")),
    };
    let row = w0 + w1 + w2;
    if row == 0 {
        return Err(malformed("xref stream /W widths are all zero"));
    }
    let size = dict
        .get(b"Size")
        .and_then(Obj::as_int)
        .ok_or_else(|| malformed("xref stream has no /Size"))?;
    let index: Vec<i64> = match dict.get(b"Index") {
        Some(Obj::Array(a)) => a
            .iter()
            .map(Obj::as_int)
            .collect::<Option<_>>()
            .ok_or_else(|| malformed("xref stream /Index holds a non-integer"))?,
        _ => vec![0, size],
    };
    let field = |bytes: &[u8]| bytes.iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
    let mut rows = data.chunks_exact(row);
    for pair in index.chunks(2) {
        let [first, count] = pair else {
            return Err(malformed("xref stream /Index has an odd length"));
        };
        for i in 0..*count {
            let Some(r) = rows.next() else {
                return Err(MetaError::truncated("PDF xref stream rows", at));
            };
            let (kind, rest) = r.split_at(w0.min(r.len()));
            let (f2, f3) = rest.split_at(w1.min(rest.len()));
            let kind = if w0 == 0 { 1 } else { field(kind) };
            let (f2, f3) = (field(f2), field(f3));
            let num = first
                .checked_add(i)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| malformed("xref stream object number out of range"))?;
            let entry = match kind {
                0 => XrefEntry::Free,
                1 => XrefEntry::Offset {
                    at: usize::try_from(f2).map_err(|_| malformed("xref offset too large"))?,
                    generation: u16::try_from(f3).unwrap_or(u16::MAX),
                },
                2 => XrefEntry::Compressed {
                    stream: u32::try_from(f2)
                        .map_err(|_| malformed("object stream number too large"))?,
                    index: usize::try_from(f3)
                        .map_err(|_| malformed("object stream index too large"))?,
                },
                // Unknown types are references to the null object.
                _ => continue,
            };
            into.entry(num).or_insert(entry);
        }
    }
    Ok(dict)
}

fn section_is_table(b: &[u8], at: usize) -> bool {
    let mut p = Parser::new(b, at);
    p.word() == b"xref"
}

fn read_xref(b: &[u8]) -> Result<Xref, MetaError> {
    let startxref = find_startxref(b)?;
    let mut entries = HashMap::new();
    let mut trailers = Vec::new();
    let mut seen = HashSet::new();
    let newest_is_stream = !section_is_table(b, startxref);
    let mut next = Some(startxref);
    while let Some(at) = next {
        if !seen.insert(at) || seen.len() > MAX_XREF_SECTIONS {
            return Err(malformed("the xref /Prev chain loops"));
        }
        let trailer = if section_is_table(b, at) {
            let t = classic_section(b, at, &mut entries)?;
            // Hybrid files list objects in object streams in a stream named by /XRefStm.
            if let Some(s) = t.get(b"XRefStm").and_then(Obj::as_usize) {
                stream_section(b, s, &mut entries)?;
            }
            t
        } else {
            stream_section(b, at, &mut entries)?
        };
        next = match trailer.get(b"Prev") {
            None => None,
            Some(p) => Some(
                p.as_usize()
                    .ok_or_else(|| malformed("trailer /Prev is not an offset"))?,
            ),
        };
        trailers.push(trailer);
    }
    Ok(Xref {
        entries,
        trailers,
        startxref,
        newest_is_stream,
    })
}

/// A parsed PDF: cross-reference data and object loading.
struct Doc<'a> {
    b: &'a [u8],
    xref: Xref,
    object_streams: RefCell<HashMap<u32, (Rc<ObjectStream>, usize)>>,
}

/// A decoded object stream: the data, where the objects start and how many there are.
struct ObjectStream {
    data: Vec<u8>,
    first: usize,
    count: usize,
}

impl<'a> Doc<'a> {
    fn open(b: &'a [u8]) -> Result<Self, MetaError> {
        if find(b.get(..1024).unwrap_or(b), b"%PDF-").is_none() {
            return Err(malformed("no %PDF- header"));
        }
        let xref = read_xref(b)?;
        let doc = Self {
            b,
            xref,
            object_streams: RefCell::default(),
        };
        if doc.trailer(b"Encrypt").is_some() {
            return Err(MetaError::unsupported(
                FORMAT,
                "the file is encrypted (trailer /Encrypt): its strings and streams cannot be read or written without decrypting it first",
            ));
        }
        Ok(doc)
    }

    /// A trailer entry, from the newest trailer that has it.
    fn trailer(&self, key: &[u8]) -> Option<&Entry> {
        self.xref.trailers.iter().find_map(|t| t.entry(key))
    }

    /// An object by number, with the file offset it was found at (for ordering).
    fn object(&self, num: u32, depth: usize) -> Result<(Loaded, usize), MetaError> {
        if depth > MAX_RESOLVE_DEPTH {
            return Err(malformed(format!(
                "following references to object {num} nests more than {MAX_RESOLVE_DEPTH} deep"
            )));
        }
        match self.xref.entries.get(&num).copied() {
            None | Some(XrefEntry::Free) => Ok((Loaded::Obj(Obj::Null), 0)),
            Some(XrefEntry::Offset { at, .. }) => {
                let obj = parse_indirect(self.b, at)?;
                if obj.num != num {
                    return Err(malformed(format!(
                        "xref says object {num} is at byte {at}, but object {} is there",
                        obj.num
                    )));
                }
                match (obj.value, obj.stream_start) {
                    (Obj::Dict(dict), Some(start)) => {
                        let length = match dict.get(b"Length") {
                            Some(Obj::Ref(n, _)) => match self.object(*n, depth + 1)?.0 {
                                Loaded::Obj(o) => o.as_usize(),
                                Loaded::Stream(_) => None,
                            },
                            Some(o) => o.as_usize(),
                            None => None,
                        };
                        let data = stream_range(self.b, start, length)?;
                        Ok((Loaded::Stream(Stream { dict, data }), at))
                    }
                    (value, _) => Ok((Loaded::Obj(value), at)),
                }
            }
            Some(XrefEntry::Compressed { stream, index }) => {
                let (objstm, at) = self.object_stream(stream, depth)?;
                if index >= objstm.count {
                    return Err(malformed(format!(
                        "object stream {stream} has no index {index}"
                    )));
                }
                let header = objstm
                    .data
                    .get(..objstm.first)
                    .ok_or_else(|| MetaError::truncated("PDF object stream header", at))?;
                let mut p = Parser::new(header, 0);
                let mut offset = 0;
                for _ in 0..=index {
                    p.unsigned("object stream object number")?;
                    offset = p.unsigned("object stream offset")?;
                }
                let start = usize::try_from(offset)
                    .ok()
                    .and_then(|o| objstm.first.checked_add(o))
                    .filter(|s| *s < objstm.data.len())
                    .ok_or_else(|| malformed("object stream offset past its data"))?;
                let value = Parser::new(&objstm.data, start).object(0)?;
                Ok((Loaded::Obj(value), at))
            }
        }
    }

    /// An object stream, decoded once and cached (several objects we need may share one).
    fn object_stream(
        &self,
        num: u32,
        depth: usize,
    ) -> Result<(Rc<ObjectStream>, usize), MetaError> {
        if let Some(hit) = self.object_streams.borrow().get(&num) {
            return Ok(hit.clone());
        }
        let (container, at) = self.object(num, depth + 1)?;
        let Loaded::Stream(s) = container else {
            return Err(malformed(format!("object stream {num} is not a stream")));
        };
        if s.dict.get(b"Type").and_then(Obj::as_name) != Some(b"ObjStm") {
            return Err(malformed(format!("object {num} is not /Type /ObjStm")));
        }
        let first = s
            .dict
            .get(b"First")
            .and_then(Obj::as_usize)
            .ok_or_else(|| malformed("object stream has no /First"))?;
        let count = s.dict.get(b"N").and_then(Obj::as_usize).unwrap_or(0);
        let data = decode_stream(self.b, &s, "object")?;
        let entry = (Rc::new(ObjectStream { data, first, count }), at);
        self.object_streams.borrow_mut().insert(num, entry.clone());
        Ok(entry)
    }

    /// `obj` with a reference followed (once); direct objects are returned as they are.
    fn resolve(&self, obj: &Obj) -> Result<(Loaded, usize), MetaError> {
        match obj {
            Obj::Ref(n, _) => self.object(*n, 0),
            other => Ok((Loaded::Obj(other.clone()), 0)),
        }
    }

    fn generation_of(&self, num: u32) -> u16 {
        match self.xref.entries.get(&num) {
            Some(XrefEntry::Offset { generation, .. }) => *generation,
            _ => 0,
        }
    }

    /// The Catalog's reference and dictionary.
    fn catalog(&self) -> Result<((u32, u16), Dict), MetaError> {
        let Some(Obj::Ref(num, generation)) = self.trailer(b"Root").map(|e| &e.value) else {
            return Err(malformed("the trailer has no /Root reference"));
        };
        match self.object(*num, 0)?.0 {
            Loaded::Obj(Obj::Dict(d)) => Ok(((*num, *generation), d)),
            _ => Err(malformed(format!(
                "the Catalog (object {num}) is not a dictionary"
            ))),
        }
    }

    /// The Info dictionary: its reference (when indirect), entries and offset.
    fn info(&self) -> Result<Option<(Option<u32>, Dict, usize)>, MetaError> {
        let Some(entry) = self.trailer(b"Info") else {
            return Ok(None);
        };
        let num = match entry.value {
            Obj::Ref(n, _) => Some(n),
            _ => None,
        };
        match self.resolve(&entry.value)? {
            (Loaded::Obj(Obj::Dict(d)), at) => Ok(Some((num, d, at))),
            (Loaded::Obj(Obj::Null), _) => Ok(None),
            _ => Err(malformed("the Info entry is not a dictionary")),
        }
    }

    /// The Catalog's XMP metadata stream: its object number, decoded packet and offset.
    fn metadata(&self, catalog: &Dict) -> Result<Option<(u32, Vec<u8>, usize)>, MetaError> {
        let Some(Obj::Ref(num, _)) = catalog.get(b"Metadata") else {
            return Ok(None);
        };
        match self.object(*num, 0)? {
            (Loaded::Stream(s), at) => Ok(Some((*num, decode_stream(self.b, &s, "Metadata")?, at))),
            _ => Ok(None),
        }
    }

    /// The next unused object number.
    fn next_number(&self) -> u32 {
        let size = self
            .trailer(b"Size")
            .and_then(|e| e.value.as_int())
            .and_then(|s| u32::try_from(s).ok())
            .unwrap_or(0);
        let highest = self
            .xref
            .entries
            .keys()
            .max()
            .map_or(0, |n| n.saturating_add(1));
        size.max(highest)
    }
}

/// PDFDocEncoding bytes 0x80–0xA0 (others below 0x80 are ASCII and above are Latin-1).
const PDF_DOC_HIGH: [char; 33] = [
    '\u{2022}', '\u{2020}', '\u{2021}', '\u{2026}', '\u{2014}', '\u{2013}', '\u{0192}', '\u{2044}',
    '\u{2039}', '\u{203A}', '\u{2212}', '\u{2030}', '\u{201E}', '\u{201C}', '\u{201D}', '\u{2018}',
    '\u{2019}', '\u{201A}', '\u{2122}', '\u{FB01}', '\u{FB02}', '\u{0141}', '\u{0152}', '\u{0160}',
    '\u{0178}', '\u{017D}', '\u{0131}', '\u{0142}', '\u{0153}', '\u{0161}', '\u{017E}', '\u{FFFD}',
    '\u{20AC}',
];

/// A PDF text string as Unicode: UTF-16BE or UTF-8 with a BOM, else PDFDocEncoding.
fn text_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    bytes
        .iter()
        .map(|&c| match c {
            0x80..=0xA0 => PDF_DOC_HIGH[usize::from(c - 0x80)],
            _ => char::from(c),
        })
        .collect()
}

/// `value` as a PDF string: a literal string when it is printable ASCII, else UTF-16BE hex.
fn pdf_string(value: &str) -> String {
    if value.bytes().all(|c| (0x20..0x7F).contains(&c)) {
        let mut out = String::with_capacity(value.len() + 8);
        out.push('(');
        for c in value.chars() {
            if matches!(c, '(' | ')' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push(')');
        out
    } else {
        let mut out = String::from("<FEFF");
        for unit in value.encode_utf16() {
            out.push_str(&format!("{unit:04X}"));
        }
        out.push('>');
        out
    }
}

fn is_label_key(key: &[u8]) -> bool {
    key.windows(4).any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

/// An Info value as text: strings decoded, anything else as written.
fn info_value(entry: &Entry) -> String {
    match &entry.value {
        Obj::Str(s) => text_string(s),
        _ => String::from_utf8_lossy(&entry.raw_value).into_owned(),
    }
}

impl Carrier for PdfCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Pdf]
    }

    fn placement(&self) -> &'static str {
        "Info dictionary /AIGC (mirrored as XMP TC260:AIGC in the Catalog's /Metadata stream)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let doc = Doc::open(input)?;
        let (_, catalog) = doc.catalog()?;
        let mut found: Vec<(usize, FoundLabel)> = Vec::new();
        if let Some((_, info, at)) = doc.info()? {
            for e in info.entries.iter().filter(|e| is_label_key(&e.key)) {
                let key = String::from_utf8_lossy(&e.key);
                found.push((
                    at,
                    FoundLabel::new(format!("Info /{key}"), e.key == b"AIGC", info_value(e)),
                ));
            }
        }
        if let Some((_, packet, at)) = doc.metadata(&catalog)? {
            let mut primary = found
                .iter()
                .find(|(_, l)| l.primary)
                .map(|(_, l)| l.parsed.record.clone());
            for l in xmp::find_labels(xmp::packet_text(&packet)?)? {
                let label = FoundLabel::new(
                    format!("XMP metadata stream {}", l.qualified_name),
                    false,
                    l.value,
                );
                // One TC260 copy of the Info label is its mirror, the same label rather than a
                // second one; any further copy is reported.
                let mirror = l.tc260
                    && label.parsed.record.is_some()
                    && primary.as_ref() == Some(&label.parsed.record);
                if mirror {
                    primary = None;
                    if let Some((_, info_label)) = found.iter_mut().find(|(_, f)| f.primary) {
                        info_label.placement = format!(
                            "{} (mirrored in XMP {})",
                            info_label.placement, l.qualified_name
                        );
                    }
                } else {
                    found.push((at, label));
                }
            }
        }
        found.sort_by_key(|(at, _)| *at);
        Ok(found.into_iter().map(|(_, l)| l).collect())
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let doc = Doc::open(input)?;
        let ((root_num, root_gen), catalog) = doc.catalog()?;
        let info = doc.info()?;
        let mut next = doc.next_number();
        let mut allocate = || {
            let n = next;
            next = next.saturating_add(1);
            n
        };
        // (object number, generation, body) of every object version we append.
        let mut objects: Vec<(u32, u16, Vec<u8>)> = Vec::new();

        // The XMP mirror: merged into the existing packet (same object number) or a new stream.
        let (meta_num, packet, new_catalog) = match doc.metadata(&catalog)? {
            Some((num, packet, _)) => {
                let merged = xmp::merge_packet(xmp::packet_text(&packet)?, Some(record))?;
                (num, merged, false)
            }
            None => (allocate(), xmp::new_packet(record), true),
        };
        let meta_gen = if new_catalog {
            0
        } else {
            doc.generation_of(meta_num)
        };
        let mut meta = format!(
            "<< /Type /Metadata /Subtype /XML /Length {} >>\nstream\n",
            packet.len()
        )
        .into_bytes();
        meta.extend_from_slice(packet.as_bytes());
        meta.extend_from_slice(b"\nendstream");
        objects.push((meta_num, meta_gen, meta));

        if new_catalog {
            let mut body = b"<<".to_vec();
            for e in catalog.entries.iter().filter(|e| e.key != b"Metadata") {
                push_entry(&mut body, &e.raw_key, &e.raw_value);
            }
            push_entry(
                &mut body,
                b"/Metadata",
                format!("{meta_num} 0 R").as_bytes(),
            );
            body.extend_from_slice(b" >>");
            objects.push((root_num, root_gen, body));
        }

        // The Info dictionary: every other entry kept verbatim, label keys replaced by /AIGC.
        let (info_num, info_gen) = match &info {
            Some((Some(n), _, _)) if *n != root_num && *n != meta_num => {
                (*n, doc.generation_of(*n))
            }
            _ => (allocate(), 0),
        };
        let mut body = b"<<".to_vec();
        if let Some((_, dict, _)) = &info {
            for e in dict.entries.iter().filter(|e| !is_label_key(&e.key)) {
                push_entry(&mut body, &e.raw_key, &e.raw_value);
            }
        }
        push_entry(
            &mut body,
            b"/AIGC",
            pdf_string(&record.to_wrapped_json()).as_bytes(),
        );
        body.extend_from_slice(b" >>");
        objects.push((info_num, info_gen, body));

        append_update(
            &doc,
            input,
            objects,
            next,
            Some(format!("{info_num} {info_gen} R")),
        )
    }
}

/// The incremental update that appends `objects` (number, generation, body) to `input`: the
/// objects, a cross-reference section of the same kind as the newest one (table or stream)
/// chained with `/Prev`, and a trailer keeping `/Root` and `/ID`. `next` is the first object
/// number not in use; `info` replaces the trailer's `/Info` value when given (else it is kept).
fn append_update(
    doc: &Doc,
    input: &[u8],
    mut objects: Vec<(u32, u16, Vec<u8>)>,
    mut next: u32,
    info: Option<String>,
) -> Result<Rewrite, MetaError> {
    // The trailer keeps /Root and /ID and chains to the section it updates.
    let mut trailer = Vec::new();
    if let Some(root) = doc.trailer(b"Root") {
        push_entry(&mut trailer, &root.raw_key, &root.raw_value);
    }
    match (info, doc.trailer(b"Info")) {
        (Some(value), _) => push_entry(&mut trailer, b"/Info", value.as_bytes()),
        (None, Some(old)) => push_entry(&mut trailer, &old.raw_key, &old.raw_value),
        (None, None) => {}
    }
    if let Some(id) = doc.trailer(b"ID") {
        push_entry(&mut trailer, &id.raw_key, &id.raw_value);
    }
    push_entry(
        &mut trailer,
        b"/Prev",
        doc.xref.startxref.to_string().as_bytes(),
    );

    let xref_num = doc.xref.newest_is_stream.then(|| {
        let n = next;
        next = next.saturating_add(1);
        n
    });
    let size = next;
    let mut appended = Vec::new();
    if !input.ends_with(b"\n") && !input.ends_with(b"\r") {
        appended.push(b'\n');
    }
    objects.sort_by_key(|o| o.0);
    let mut offsets: Vec<(u32, u16, usize)> = Vec::new();
    for (num, generation, body) in &objects {
        offsets.push((*num, *generation, input.len() + appended.len()));
        appended.extend_from_slice(format!("{num} {generation} obj\n").as_bytes());
        appended.extend_from_slice(body);
        appended.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = input.len() + appended.len();
    match xref_num {
        None => {
            appended.extend_from_slice(b"xref\n");
            for run in runs(&offsets) {
                appended.extend_from_slice(format!("{} {}\n", run[0].0, run.len()).as_bytes());
                for (_, generation, at) in run {
                    appended.extend_from_slice(format!("{at:010} {generation:05} n \n").as_bytes());
                }
            }
            appended.extend_from_slice(b"trailer\n<< /Size ");
            appended.extend_from_slice(size.to_string().as_bytes());
            appended.extend_from_slice(&trailer);
            appended.extend_from_slice(b" >>\n");
        }
        Some(xref_num) => {
            offsets.push((xref_num, 0, xref_at));
            let mut rows = Vec::with_capacity(offsets.len() * 7);
            let mut index = String::new();
            for run in runs(&offsets) {
                index.push_str(&format!("{} {} ", run[0].0, run.len()));
                for (_, generation, at) in run {
                    let at = u32::try_from(*at).map_err(|_| {
                        MetaError::unsupported(FORMAT, "xref streams with offsets past 4 GiB")
                    })?;
                    rows.push(1);
                    rows.extend_from_slice(&at.to_be_bytes());
                    rows.extend_from_slice(&generation.to_be_bytes());
                }
            }
            appended.extend_from_slice(
                format!(
                    "{xref_num} 0 obj\n<< /Type /XRef /Size {size} /W [1 4 2] /Index [{}] /Length {}",
                    index.trim_end(),
                    rows.len()
                )
                .as_bytes(),
            );
            appended.extend_from_slice(&trailer);
            appended.extend_from_slice(b" >>\nstream\n");
            appended.extend_from_slice(&rows);
            appended.extend_from_slice(b"\nendstream\nendobj\n");
        }
    }
    appended.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
    let mut out = Rewrite::new();
    out.keep(0..input.len()).insert(appended);
    Ok(out)
}

/// Appends ` /Key value` to a dictionary body.
fn push_entry(body: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    body.push(b' ');
    body.extend_from_slice(key);
    body.push(b' ');
    body.extend_from_slice(value);
}

/// Consecutive object numbers grouped into xref subsections (input sorted by number).
fn runs(offsets: &[(u32, u16, usize)]) -> Vec<&[(u32, u16, usize)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=offsets.len() {
        let breaks = match (offsets.get(i - 1), offsets.get(i)) {
            (Some(a), Some(b)) => a.0.checked_add(1) != Some(b.0),
            _ => true,
        };
        if breaks {
            if let Some(run) = offsets.get(start..i) {
                out.push(run);
            }
            start = i;
        }
    }
    out
}

/// A font resource of a page: its resource name and decoded `/ToUnicode` CMap, if any.
pub type PageFont = (String, Option<Vec<u8>>);

/// How many pages a page tree may hold, and how deep it may nest (hostile files could loop).
const MAX_PAGES: usize = 100_000;
const MAX_TREE_DEPTH: usize = 64;

/// One page of a PDF as a stamp needs it: its object and the attributes it inherits.
#[derive(Debug, Clone)]
pub struct PdfPage {
    /// The page object's number.
    pub number: u32,
    generation: u16,
    /// The media box `[x0 y0 x1 y1]` in default user space (normalised so x0 < x1, y0 < y1).
    pub media_box: [f64; 4],
    /// The crop box (what viewers show), normalised, when the page or an ancestor sets one.
    pub crop_box: Option<[f64; 4]>,
    /// The display rotation in degrees clockwise: 0, 90, 180 or 270.
    pub rotate: u16,
    dict: Dict,
    /// The effective `/Resources` value (the page's own or inherited), not yet resolved.
    resources: Option<Obj>,
}

impl PdfPage {
    /// The visible area: the crop box clipped to the media box (the media box when there is none).
    pub fn visible_box(&self) -> [f64; 4] {
        let m = self.media_box;
        match self.crop_box {
            Some(c) => {
                let b = [
                    c[0].max(m[0]),
                    c[1].max(m[1]),
                    c[2].min(m[2]),
                    c[3].min(m[3]),
                ];
                // A crop box outside the media box is ignored, as viewers do.
                if b[0] < b[2] && b[1] < b[3] { b } else { m }
            }
            None => m,
        }
    }
}

/// A rectangle array as `[x0 y0 x1 y1]` with the corners ordered.
fn rectangle(obj: &Obj) -> Option<[f64; 4]> {
    let Obj::Array(items) = obj else { return None };
    let v: Vec<f64> = items
        .iter()
        .map(|o| match o {
            Obj::Int(i) => Some(*i as f64),
            Obj::Real(r) => Some(*r),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let [a, b, c, d] = v[..] else { return None };
    let r = [a.min(c), b.min(d), a.max(c), b.max(d)];
    (r.iter().all(|x| x.is_finite()) && r[0] < r[2] && r[1] < r[3]).then_some(r)
}

/// Attributes a page inherits from its ancestors (PDF 32000-1 7.7.3.4).
#[derive(Clone, Default)]
struct Inherited {
    media_box: Option<Obj>,
    crop_box: Option<Obj>,
    rotate: Option<Obj>,
    resources: Option<Obj>,
}

impl Inherited {
    fn overlay(&self, d: &Dict) -> Self {
        let pick = |key: &[u8], old: &Option<Obj>| d.get(key).cloned().or_else(|| old.clone());
        Self {
            media_box: pick(b"MediaBox", &self.media_box),
            crop_box: pick(b"CropBox", &self.crop_box),
            rotate: pick(b"Rotate", &self.rotate),
            resources: pick(b"Resources", &self.resources),
        }
    }
}

/// A PDF opened for an incremental update that adds content to pages: the original bytes stay an
/// exact prefix of the output, and new object versions are appended with their own xref section.
pub struct PdfUpdate<'a> {
    input: &'a [u8],
    doc: Doc<'a>,
    next: u32,
    objects: Vec<(u32, u16, Vec<u8>)>,
}

impl<'a> PdfUpdate<'a> {
    /// Opens `input` (refusing encrypted files, which cannot be edited without decrypting them).
    pub fn open(input: &'a [u8]) -> Result<Self, MetaError> {
        let doc = Doc::open(input)?;
        let next = doc.next_number();
        Ok(Self {
            input,
            doc,
            next,
            objects: Vec::new(),
        })
    }

    /// Loads `obj`, following a reference, as a dictionary (`None` for null or a non-dictionary).
    fn dict_of(&self, obj: &Obj) -> Result<Option<Dict>, MetaError> {
        Ok(match self.doc.resolve(obj)?.0 {
            Loaded::Obj(Obj::Dict(d)) => Some(d),
            Loaded::Stream(s) => Some(s.dict),
            Loaded::Obj(_) => None,
        })
    }

    /// Every page in document order, with inherited boxes, rotation and resources.
    pub fn pages(&self) -> Result<Vec<PdfPage>, MetaError> {
        let (_, catalog) = self.doc.catalog()?;
        let Some(Obj::Ref(root, _)) = catalog.get(b"Pages") else {
            return Err(malformed("the Catalog has no /Pages reference"));
        };
        let mut pages = Vec::new();
        let mut seen = HashSet::new();
        // Depth-first with an explicit stack: (node, inherited attributes, depth).
        let mut stack = vec![(*root, Inherited::default(), 0usize)];
        while let Some((num, inherited, depth)) = stack.pop() {
            if depth > MAX_TREE_DEPTH || !seen.insert(num) {
                return Err(malformed(format!(
                    "the page tree loops or nests too deeply at object {num}"
                )));
            }
            let Loaded::Obj(Obj::Dict(node)) = self.doc.object(num, 0)?.0 else {
                return Err(malformed(format!(
                    "page tree node {num} is not a dictionary"
                )));
            };
            let inherited = inherited.overlay(&node);
            match node.get(b"Type").and_then(Obj::as_name) {
                Some(b"Pages") => {
                    let kids = match node.get(b"Kids") {
                        Some(Obj::Array(k)) => k.clone(),
                        Some(r @ Obj::Ref(..)) => match self.doc.resolve(r)?.0 {
                            Loaded::Obj(Obj::Array(k)) => k,
                            _ => {
                                return Err(malformed(format!(
                                    "/Kids of node {num} is not an array"
                                )));
                            }
                        },
                        _ => return Err(malformed(format!("page tree node {num} has no /Kids"))),
                    };
                    // Pushed in reverse so that pages pop in document order.
                    for kid in kids.iter().rev() {
                        let Obj::Ref(k, _) = kid else {
                            return Err(malformed(format!(
                                "/Kids of node {num} holds a non-reference"
                            )));
                        };
                        stack.push((*k, inherited.clone(), depth + 1));
                    }
                }
                // Some writers omit /Type on pages; a leaf without /Kids is a page.
                Some(b"Page") | None if node.get(b"Kids").is_none() => {
                    if pages.len() >= MAX_PAGES {
                        return Err(MetaError::unsupported(
                            FORMAT,
                            format!("more than {MAX_PAGES} pages"),
                        ));
                    }
                    let media_box = match &inherited.media_box {
                        Some(o) => {
                            let o = match self.doc.resolve(o)?.0 {
                                Loaded::Obj(o) => o,
                                Loaded::Stream(_) => Obj::Null,
                            };
                            rectangle(&o).ok_or_else(|| {
                                malformed(format!("page {num} has an invalid /MediaBox"))
                            })?
                        }
                        // Acrobat's default for a missing media box: US Letter.
                        None => [0.0, 0.0, 612.0, 792.0],
                    };
                    let crop_box = match &inherited.crop_box {
                        Some(o) => match self.doc.resolve(o)?.0 {
                            Loaded::Obj(o) => rectangle(&o),
                            Loaded::Stream(_) => None,
                        },
                        None => None,
                    };
                    let rotate = match &inherited.rotate {
                        Some(o) => match self.doc.resolve(o)?.0 {
                            Loaded::Obj(Obj::Int(r)) => r.rem_euclid(360),
                            _ => 0,
                        },
                        None => 0,
                    };
                    // Only multiples of 90 are valid; others are ignored by viewers.
                    let rotate = if rotate % 90 == 0 { rotate as u16 } else { 0 };
                    pages.push(PdfPage {
                        number: num,
                        generation: self.doc.generation_of(num),
                        media_box,
                        crop_box,
                        rotate,
                        dict: node,
                        resources: inherited.resources,
                    });
                }
                _ => {
                    return Err(malformed(format!(
                        "page tree node {num} is neither /Pages nor /Page"
                    )));
                }
            }
        }
        if pages.is_empty() {
            return Err(malformed("the document has no pages"));
        }
        Ok(pages)
    }

    /// A new object number.
    pub fn allocate(&mut self) -> u32 {
        let n = self.next;
        self.next = self.next.saturating_add(1);
        n
    }

    /// Appends a new object (generation 0) with body `body` (a dictionary, array, …) as `number`,
    /// which must come from [`PdfUpdate::allocate`].
    pub fn set_object(&mut self, number: u32, body: Vec<u8>) {
        self.objects.push((number, 0, body));
    }

    /// Appends a new Flate-compressed stream whose dictionary holds `dict_entries` (e.g.
    /// `"/Type /XObject"`, may be empty) besides `/Length` and `/Filter`; returns its number.
    pub fn add_stream(&mut self, dict_entries: &str, data: &[u8]) -> Result<u32, MetaError> {
        use flate2::{Compression, write::ZlibEncoder};
        use std::io::Write;
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(data)
            .map_err(|e| malformed(format!("cannot compress a stream: {e}")))?;
        let packed = z
            .finish()
            .map_err(|e| malformed(format!("cannot compress a stream: {e}")))?;
        let number = self.allocate();
        let mut body = format!(
            "<< {dict_entries} /Filter /FlateDecode /Length {} >>\nstream\n",
            packed.len()
        )
        .into_bytes();
        body.extend_from_slice(&packed);
        body.extend_from_slice(b"\nendstream");
        self.set_object(number, body);
        Ok(number)
    }

    /// A font resource name not used by `page`, starting from `wanted`.
    pub fn free_font_name(&self, page: &PdfPage, wanted: &str) -> Result<String, MetaError> {
        let fonts = self.page_fonts(page)?;
        let taken = |n: &str| {
            fonts
                .as_ref()
                .is_some_and(|d| d.entries.iter().any(|e| e.key == n.as_bytes()))
        };
        let mut name = wanted.to_string();
        let mut i = 1;
        while taken(&name) {
            name = format!("{wanted}{i}");
            i += 1;
        }
        Ok(name)
    }

    /// The page's effective resources dictionary and its font dictionary, resolved.
    fn page_resources(&self, page: &PdfPage) -> Result<Option<Dict>, MetaError> {
        match &page.resources {
            Some(r) => self.dict_of(r),
            None => Ok(None),
        }
    }

    fn page_fonts(&self, page: &PdfPage) -> Result<Option<Dict>, MetaError> {
        match self
            .page_resources(page)?
            .and_then(|r| r.get(b"Font").cloned())
        {
            Some(f) => self.dict_of(&f),
            None => Ok(None),
        }
    }

    /// Rewrites `page` so that its original content runs inside `q … Q` (its graphics state
    /// cannot leak into ours) and the content stream `stamp` runs after it, with the font object
    /// `font` available to it as `/font_name`. Every other page entry is kept verbatim.
    pub fn stamp_page(
        &mut self,
        page: &PdfPage,
        stamp: &[u8],
        font_name: &str,
        font: u32,
    ) -> Result<(), MetaError> {
        let mut contents: Vec<String> = Vec::new();
        match page.dict.get(b"Contents") {
            None | Some(Obj::Null) => {}
            Some(Obj::Array(items)) => contents.extend(
                items
                    .iter()
                    .map(reference_text)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(r @ Obj::Ref(n, g)) => match self.doc.resolve(r)?.0 {
                Loaded::Stream(_) => contents.push(format!("{n} {g} R")),
                Loaded::Obj(Obj::Array(items)) => contents.extend(
                    items
                        .iter()
                        .map(reference_text)
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                Loaded::Obj(Obj::Null) => {}
                Loaded::Obj(_) => {
                    return Err(malformed(format!(
                        "page object {} has /Contents that is not a stream",
                        page.number
                    )));
                }
            },
            Some(_) => {
                return Err(malformed(format!(
                    "page object {} has /Contents that is not a stream",
                    page.number
                )));
            }
        }
        let mut contents_value = String::from("[");
        let mut data = Vec::with_capacity(stamp.len() + 2);
        if !contents.is_empty() {
            let save = self.add_stream("", b"q\n")?;
            contents_value.push_str(&format!("{save} 0 R "));
            contents_value.push_str(&contents.join(" "));
            contents_value.push(' ');
            data.extend_from_slice(b"Q\n");
        }
        data.extend_from_slice(stamp);
        let stamp = self.add_stream("", &data)?;
        contents_value.push_str(&format!("{stamp} 0 R]"));

        // Resources: the effective dictionary copied entry by entry, with our font added to a
        // copy of its /Font dictionary (a shared resource object is left as it is).
        let mut resources = b"<<".to_vec();
        if let Some(res) = self.page_resources(page)? {
            for e in res.entries.iter().filter(|e| e.key != b"Font") {
                push_entry(&mut resources, &e.raw_key, &e.raw_value);
            }
        }
        let mut fonts = b"<<".to_vec();
        if let Some(f) = self.page_fonts(page)? {
            for e in f.entries.iter().filter(|e| e.key != font_name.as_bytes()) {
                push_entry(&mut fonts, &e.raw_key, &e.raw_value);
            }
        }
        push_entry(
            &mut fonts,
            format!("/{font_name}").as_bytes(),
            format!("{font} 0 R").as_bytes(),
        );
        fonts.extend_from_slice(b" >>");
        push_entry(&mut resources, b"/Font", &fonts);
        resources.extend_from_slice(b" >>");

        let mut body = b"<<".to_vec();
        for e in page
            .dict
            .entries
            .iter()
            .filter(|e| e.key != b"Contents" && e.key != b"Resources")
        {
            push_entry(&mut body, &e.raw_key, &e.raw_value);
        }
        push_entry(&mut body, b"/Contents", contents_value.as_bytes());
        push_entry(&mut body, b"/Resources", &resources);
        body.extend_from_slice(b" >>");
        self.objects.push((page.number, page.generation, body));
        Ok(())
    }

    /// The decoded content of `page` (its content streams joined by newlines).
    pub fn page_content(&self, page: &PdfPage) -> Result<Vec<u8>, MetaError> {
        let refs: Vec<Obj> = match page.dict.get(b"Contents") {
            Some(Obj::Array(items)) => items.clone(),
            Some(r @ Obj::Ref(..)) => match self.doc.resolve(r)?.0 {
                Loaded::Obj(Obj::Array(items)) => items,
                _ => vec![r.clone()],
            },
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for r in &refs {
            if let Loaded::Stream(s) = self.doc.resolve(r)?.0 {
                out.extend_from_slice(&decode_stream(self.doc.b, &s, "page content")?);
                out.push(b'\n');
            }
        }
        Ok(out)
    }

    /// The font dictionaries of `page` by resource name, with the decoded `/ToUnicode` CMap
    /// of each when it has one.
    pub fn page_font_unicode_maps(&self, page: &PdfPage) -> Result<Vec<PageFont>, MetaError> {
        let mut out = Vec::new();
        if let Some(fonts) = self.page_fonts(page)? {
            for e in &fonts.entries {
                let Some(font) = self.dict_of(&e.value)? else {
                    continue;
                };
                let cmap = match font.get(b"ToUnicode") {
                    Some(r @ Obj::Ref(..)) => match self.doc.resolve(r)?.0 {
                        Loaded::Stream(s) => Some(decode_stream(self.doc.b, &s, "ToUnicode")?),
                        _ => None,
                    },
                    _ => None,
                };
                out.push((String::from_utf8_lossy(&e.key).into_owned(), cmap));
            }
        }
        Ok(out)
    }

    /// The update as a rewrite of the input (the input followed by the appended section).
    pub fn finish(self) -> Result<Rewrite, MetaError> {
        append_update(&self.doc, self.input, self.objects, self.next, None)
    }
}

/// A reference as PDF source text (`n g R`); content arrays hold only references.
fn reference_text(obj: &Obj) -> Result<String, MetaError> {
    match obj {
        Obj::Ref(n, g) => Ok(format!("{n} {g} R")),
        _ => Err(malformed("a /Contents array holds a non-reference")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use aigc_core::Label;
    use std::path::Path;

    const PDFS: [&str; 2] = ["document.pdf", "document-xref-stream.pdf"];

    fn record() -> AigcRecord {
        // Parentheses and a backslash exercise the PDF string escapes.
        crate::test_support::record("pdf(1)\\a")
    }

    /// Exactly one label, `r` in the wrapped form, in the Info dictionary.
    fn assert_pdf_label(out: &[u8], r: &AigcRecord) {
        let label = assert_one_label_as(&PdfCarrier, out, r, Form::Wrapped);
        assert_eq!(label.placement, "Info /AIGC (mirrored in XMP TC260:AIGC)");
    }

    /// `pdfinfo FILE` succeeds without a word on stderr.
    fn assert_pdfinfo_clean(path: &Path) {
        let out = run_output("pdfinfo", &[path_arg(path)]);
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The value pdfinfo lists for a custom Info key.
    fn pdfinfo_custom(path: &Path, key: &str) -> Option<String> {
        let out = run_output("pdfinfo", &["-custom", path_arg(path)]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim_start().to_string())
        })
    }

    /// An exiftool tag's value, its name looked up case-insensitively.
    fn tag<'a>(tags: &'a serde_json::Value, name: &str) -> Option<&'a str> {
        tags.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }

    #[test]
    fn writes_one_label_into_both_samples_and_rewrites_it() {
        let r = record();
        for name in PDFS {
            let input = sample(name);
            assert!(PdfCarrier.read(&input).expect("read").is_empty());
            let out = write(&PdfCarrier, &input, &r);
            assert!(out.starts_with(&input), "{name}: the original is a prefix");
            assert_pdf_label(&out, &r);
            let mut r2 = r.clone();
            r2.label = Label::Suspected;
            let again = write(&PdfCarrier, &out, &r2);
            assert!(again.starts_with(&out));
            assert_pdf_label(&again, &r2);
            // Other Info entries are copied verbatim; the Catalog gained its Metadata once.
            let doc = Doc::open(&again).expect("parse");
            let (_, info, _) = doc.info().expect("info").expect("has info");
            let keys: Vec<&[u8]> = info.entries.iter().map(|e| e.key.as_slice()).collect();
            if name == "document.pdf" {
                assert_eq!(keys, [&b"Title"[..], b"Producer", b"AIGC"]);
                assert_eq!(info.get(b"Title"), Some(&Obj::Str(b"Sample".to_vec())));
            } else {
                assert_eq!(keys, [&b"AIGC"[..]]);
            }
            // The second update reuses the first one's Metadata object rather than adding one.
            let meta = |b: &[u8]| {
                Doc::open(b)
                    .and_then(|d| d.catalog())
                    .map(|c| c.1.get(b"Metadata").cloned())
            };
            assert_eq!(meta(&out).expect("meta"), meta(&again).expect("meta"));
            // The appended section is of the same kind as the one it updates.
            let stream_xref = !section_is_table(&input, find_startxref(&input).expect("startxref"));
            let stream_out = !section_is_table(&again, find_startxref(&again).expect("startxref"));
            assert_eq!(stream_xref, stream_out, "{name}");
            assert_eq!(stream_xref, name == "document-xref-stream.pdf");
        }
    }

    #[test]
    fn pdfinfo_and_exiftool_read_the_label() {
        let r = record();
        for name in PDFS {
            let input = sample(name);
            let once = write(&PdfCarrier, &input, &record());
            let mut r2 = r.clone();
            r2.produce_id = "second".into();
            for (out, r) in [(once.clone(), &r), (write(&PdfCarrier, &once, &r2), &r2)] {
                let path = temp_file(name, &out);
                assert_pdfinfo_clean(&path);
                assert_eq!(
                    pdfinfo_custom(&path, "AIGC"),
                    Some(r.to_wrapped_json()),
                    "{name}"
                );
                let tags = exiftool(&path, &[]);
                assert_eq!(
                    tag(&tags, "PDF:AIGC"),
                    Some(r.to_wrapped_json().as_str()),
                    "{name}"
                );
                // exiftool names the property XMP-TC260:Aigc.
                assert_eq!(
                    tag(&tags, "XMP-TC260:AIGC"),
                    Some(r.to_bare_json().as_str()),
                    "{name}"
                );
                assert!(tag(&tags, "ExifTool:Warning").is_none(), "{tags:?}");
                if name == "document.pdf" {
                    assert_eq!(tag(&tags, "PDF:Title"), Some("Sample"));
                    assert_eq!(tag(&tags, "PDF:Producer"), Some("aigc-mark samples"));
                }
            }
        }
    }

    #[test]
    fn pages_are_untouched() {
        for name in PDFS {
            let input = sample(name);
            let out = write(&PdfCarrier, &input, &record());
            assert_eq!(
                &out[..input.len()],
                &input[..],
                "{name}: original bytes kept"
            );
            let (a, b) = (temp_file("in.pdf", &input), temp_file("out.pdf", &out));
            let text = |p: &Path| {
                let o = run_output("pdftotext", &[path_arg(p), "-"]);
                assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");
                o.stdout
            };
            let before = text(&a);
            assert!(!before.is_empty());
            assert_eq!(before, text(&b), "{name}: page text");
        }
    }

    #[test]
    fn labels_written_by_exiftool_are_read_and_replaced() {
        let info = r#"{"AIGC":{"Label":"2","ContentProducer":"ExampleAI","ProduceID":"ex-1"}}"#;
        let xmp = r#"{"Label":"3","ContentProducer":"Other","ProduceID":"ex-2"}"#;
        for name in PDFS {
            let path = temp_file(name, &sample(name));
            let config = exiftool_config();
            run(
                "exiftool",
                &[
                    "-config",
                    config.arg(),
                    "-overwrite_original",
                    &format!("-PDF:AIGC={info}"),
                    &format!("-XMP-TC260:AIGC={xmp}"),
                    path.arg(),
                ],
            );
            let labelled = std::fs::read(&path).expect("read");
            let found = PdfCarrier.read(&labelled).expect("read exiftool's update");
            let got: Vec<(&str, bool, &str)> = found
                .iter()
                .map(|f| (f.placement.as_str(), f.primary, f.value.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    ("Info /AIGC", true, info),
                    ("XMP metadata stream TC260:AIGC", false, xmp)
                ],
                "{name}"
            );
            let out = write(&PdfCarrier, &labelled, &record());
            assert_pdf_label(&out, &record());
            std::fs::write(&path, &out).expect("write");
            assert_pdfinfo_clean(&path);
            let tags = exiftool(&path, &["-config", config.arg()]);
            assert_eq!(
                tag(&tags, "XMP-TC260:AIGC"),
                Some(record().to_bare_json().as_str())
            );
        }
    }

    /// A PDF 1.5 whose Catalog, Pages, Font and Info live in an object stream, indexed by a
    /// Flate xref stream with the PNG Up predictor; the content stream's /Length is indirect,
    /// the Info holds two labels and the Flate-compressed XMP holds a third, as an attribute.
    fn object_stream_pdf() -> Vec<u8> {
        let mut out = b"%PDF-1.5\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets: HashMap<u32, usize> = HashMap::new();
        let mut plain = |out: &mut Vec<u8>, num: u32, body: &[u8]| {
            offsets.insert(num, out.len());
            out.extend_from_slice(format!("{num} 0 obj\n").as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        };
        plain(&mut out, 3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>");
        let content = b"BT /F1 12 Tf 20 100 Td (object stream sample) Tj ET";
        plain(
            &mut out,
            4,
            &[
                b"<< /Length 7 0 R >>\nstream\n".as_slice(),
                content,
                b"\nendstream",
            ]
            .concat(),
        );
        let packet = format!(
            "<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description rdf:about='' xmlns:dc='http://purl.org/dc/elements/1.1/' xmlns:TC260='{}' TC260:AIGC='{{&quot;Label&quot;:&quot;3&quot;}}'><dc:format>application/pdf</dc:format></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end='w'?>",
            xmp::TC260_NS
        );
        let packet = crate::bytes::deflate_zlib(packet.as_bytes());
        plain(
            &mut out,
            6,
            &[
                format!(
                    "<< /Type /Metadata /Subtype /XML /Filter /FlateDecode /Length {} >>\nstream\n",
                    packet.len()
                )
                .as_bytes(),
                &packet,
                b"\nendstream",
            ]
            .concat(),
        );
        plain(&mut out, 7, content.len().to_string().as_bytes());
        let members: [(u32, &[u8]); 4] = [
            (1, b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R >>"),
            (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
            (5, b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>"),
            (9, b"<< /Title (Obj\\(stm\\) sample) /AIGC ({\"AIGC\":{\"Label\":\"2\",\"ContentProducer\":\"ExampleAI\",\"ProduceID\":\"o-1\"}}) /aigc_old <FEFF00780079> >>"),
        ];
        let (mut header, mut body) = (String::new(), Vec::new());
        for (num, obj) in members {
            header.push_str(&format!("{num} {} ", body.len()));
            body.extend_from_slice(obj);
            body.push(b'\n');
        }
        let objstm = crate::bytes::deflate_zlib(&[header.as_bytes(), &body].concat());
        plain(
            &mut out,
            8,
            &[
                format!(
                    "<< /Type /ObjStm /N 4 /First {} /Filter /FlateDecode /Length {} >>\nstream\n",
                    header.len(),
                    objstm.len()
                )
                .as_bytes(),
                &objstm,
                b"\nendstream",
            ]
            .concat(),
        );
        let xref_at = out.len();
        // Rows of /W [1 3 1] for objects 0..=10, PNG Up-predicted (/Columns 5).
        let mut rows: Vec<[u8; 5]> = vec![[0, 0, 0, 0, 0xFF]];
        for num in 1..=10u32 {
            let compressed_index = members.iter().position(|m| m.0 == num);
            rows.push(match (compressed_index, offsets.get(&num)) {
                (Some(i), _) => [2, 0, 0, 8, i as u8],
                (None, Some(at)) => {
                    let b = (*at as u32).to_be_bytes();
                    [1, b[1], b[2], b[3], 0]
                }
                (None, None) => {
                    let b = (xref_at as u32).to_be_bytes();
                    [1, b[1], b[2], b[3], 0]
                }
            });
        }
        let mut predicted = Vec::new();
        let mut prev = [0u8; 5];
        for row in &rows {
            predicted.push(2);
            predicted.extend(row.iter().zip(prev).map(|(c, p)| c.wrapping_sub(p)));
            prev = *row;
        }
        let data = crate::bytes::deflate_zlib(&predicted);
        out.extend_from_slice(format!("10 0 obj\n<< /Type /XRef /Size 11 /W [1 3 1] /Root 1 0 R /Info 9 0 R /ID [<0102><0304>] /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 5 >> /Length {} >>\nstream\n", data.len()).as_bytes());
        out.extend_from_slice(&data);
        out.extend_from_slice(
            format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes(),
        );
        out
    }

    #[test]
    fn object_streams_predictors_and_existing_labels() {
        let input = object_stream_pdf();
        let path = temp_file("objstm.pdf", &input);
        assert_pdfinfo_clean(&path);
        let found = PdfCarrier.read(&input).expect("read");
        let got: Vec<(&str, bool, &str)> = found
            .iter()
            .map(|f| (f.placement.as_str(), f.primary, f.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("XMP metadata stream TC260:AIGC", false, r#"{"Label":"3"}"#),
                (
                    "Info /AIGC",
                    true,
                    r#"{"AIGC":{"Label":"2","ContentProducer":"ExampleAI","ProduceID":"o-1"}}"#
                ),
                ("Info /aigc_old", false, "xy"),
            ]
        );
        let out = write(&PdfCarrier, &input, &record());
        assert_pdf_label(&out, &record());
        std::fs::write(&path, &out).expect("write");
        assert_pdfinfo_clean(&path);
        assert_eq!(
            pdfinfo_custom(&path, "Title").as_deref(),
            Some("Obj(stm) sample")
        );
        assert_eq!(
            pdfinfo_custom(&path, "AIGC"),
            Some(record().to_wrapped_json())
        );
        assert_eq!(pdfinfo_custom(&path, "aigc_old"), None);
        let tags = exiftool(&path, &[]);
        assert_eq!(
            tag(&tags, "XMP-TC260:AIGC"),
            Some(record().to_bare_json().as_str())
        );
        assert_eq!(tag(&tags, "XMP-dc:Format"), Some("application/pdf"));
        // The ID is carried into the new trailer.
        let doc = Doc::open(&out).expect("parse");
        assert_eq!(
            doc.xref.trailers[0]
                .entry(b"ID")
                .map(|e| e.raw_value.as_slice()),
            Some(&b"[<0102><0304>]"[..])
        );
    }

    #[test]
    fn encrypted_files_are_refused() {
        let input = sample("document.pdf");
        // The trailer follows the xref table, so no offset moves.
        let at = input
            .windows(6)
            .rposition(|w| w == b"R >>\ns")
            .expect("trailer end");
        let encrypted = [&input[..at + 1], b" /Encrypt 7 0 R", &input[at + 1..]].concat();
        for e in [
            PdfCarrier.read(&encrypted).map(|_| ()).expect_err("read"),
            PdfCarrier
                .write(&encrypted, &record())
                .map(|_| ())
                .expect_err("write"),
        ] {
            assert!(
                matches!(e, MetaError::Unsupported { .. }) && e.to_string().contains("encrypted"),
                "{e}"
            );
        }
    }

    #[test]
    fn strings_and_names_decode() {
        let mut p = Parser::new(b"<< /A#42 (a\\(b\\)c\\\\\\101\\\r\nd(e)) /H <4 1 41> /R 12 0 R /N [1 -2 .5 null true] >>", 0);
        let Obj::Dict(d) = p.object(0).expect("dict") else {
            panic!("not a dict")
        };
        assert_eq!(d.get(b"AB"), Some(&Obj::Str(b"a(b)c\\Ad(e)".to_vec())));
        assert_eq!(d.get(b"H"), Some(&Obj::Str(b"AA".to_vec())));
        assert_eq!(d.get(b"R"), Some(&Obj::Ref(12, 0)));
        assert_eq!(
            d.get(b"N"),
            Some(&Obj::Array(vec![
                Obj::Int(1),
                Obj::Int(-2),
                Obj::Real(0.5),
                Obj::Null,
                Obj::Bool(true)
            ]))
        );
        assert_eq!(pdf_string("a(b)\\"), "(a\\(b\\)\\\\)");
        assert_eq!(pdf_string("生"), "<FEFF751F>");
        assert_eq!(text_string(b"\xFE\xFF\x75\x1F"), "生");
        assert_eq!(text_string(b"\x80\xA0x"), "\u{2022}\u{20AC}x");
        let deep = [b"[".repeat(100), b"]".repeat(100)].concat();
        assert!(Parser::new(&deep, 0).object(0).is_err());
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let r = record();
        let mut inputs: Vec<Vec<u8>> = PDFS.iter().map(|n| sample(n)).collect();
        inputs.push(object_stream_pdf());
        let labelled: Vec<Vec<u8>> = inputs.iter().map(|i| write(&PdfCarrier, i, &r)).collect();
        inputs.extend(labelled);
        let mut cases = 0;
        for (n, input) in inputs.iter().enumerate() {
            // Every offset of the samples; every 7th of the bigger labelled and built files.
            let stride = if n < PDFS.len() { 1 } else { 7 };
            cases += HostileInputs::new(500, stride)
                .read_back()
                .assert_never_panic_and(
                    &PdfCarrier,
                    input,
                    // Whatever we accept and update is an incremental update of it.
                    |v, out| assert!(out.starts_with(v)),
                );
        }
        assert!(cases > 4000, "{cases}");
    }
}
