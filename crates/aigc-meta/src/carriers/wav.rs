//! WAV (RIFF, RF64 and BW64): the label is a top-level chunk with id `AIGC` holding the wrapped
//! JSON (padded to even length), written at the end of the RIFF after `data`.
//!
//! Also read, and removed on write so that one label remains: other `AIGC`-named top-level
//! chunks, `LIST/INFO` items named `AIGC` or holding a label text (ffmpeg writes
//! `-metadata comment=` as `ICMT`), `bext` text fields holding a label (cleared to NULs in place,
//! so the chunk keeps its fixed layout), `iXML` elements named `AIGC` or text holding a label
//! (cut out of the XML) and XMP `_PMX` packets (label properties removed). Nothing in a WAV file
//! points at absolute offsets, so chunks may change size freely.

use crate::bytes::{array, le_u32, le_u64, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::riff::{self, Chunk};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use quick_xml::events::Event;

/// The WAV carrier.
pub struct WavCarrier;

/// The RF64 `ds64` chunk: 64-bit sizes for the RIFF and for chunks whose size is `0xFFFFFFFF`.
struct Ds64 {
    chunk: Chunk,
    riff_size: u64,
    data_size: u64,
    table: Vec<([u8; 4], u64)>,
}

/// A parsed WAV file.
struct Wav {
    magic: [u8; 4],
    /// The 32-bit RIFF size as stored (`0xFFFFFFFF` in RF64).
    size32: u32,
    ds64: Option<Ds64>,
    /// End of the RIFF; bytes after it are kept as they are.
    riff_end: usize,
    chunks: Vec<Chunk>,
}

fn parse_ds64(b: &[u8]) -> Result<Ds64, MetaError> {
    let id: [u8; 4] = array(b, 12, "RF64 ds64 chunk")?;
    if &id != b"ds64" {
        return Err(MetaError::malformed("RF64", "the first chunk is not ds64"));
    }
    let size = le_u32(b, 16, "RF64 ds64 size")? as usize;
    let data = slice(b, 20, size, "RF64 ds64 chunk")?;
    let riff_size = le_u64(data, 0, "RF64 ds64 riffSize")?;
    let data_size = le_u64(data, 8, "RF64 ds64 dataSize")?;
    let entries = le_u32(data, 24, "RF64 ds64 tableLength")? as usize;
    let mut table = Vec::new();
    // Each entry is 12 bytes; the count is bounded by the chunk, not trusted.
    for i in 0..entries.min(size.saturating_sub(28) / 12) {
        let at = 28 + i * 12;
        table.push((
            array(data, at, "RF64 ds64 table")?,
            le_u64(data, at + 4, "RF64 ds64 table")?,
        ));
    }
    let end = 20usize
        .checked_add(size)
        .and_then(|e| e.checked_add(size % 2))
        .ok_or_else(|| MetaError::truncated("RF64 ds64 chunk", 12))?;
    Ok(Ds64 {
        chunk: Chunk {
            start: 12,
            id,
            data: 20..20 + size,
            end,
            pad_missing: false,
        },
        riff_size,
        data_size,
        table,
    })
}

fn parse(b: &[u8]) -> Result<Wav, MetaError> {
    let magic: [u8; 4] = array(b, 0, "RIFF header")?;
    let size32 = le_u32(b, 4, "RIFF header")?;
    if array::<4>(b, 8, "RIFF header")? != *b"WAVE" {
        return Err(MetaError::malformed(
            "WAV",
            "the RIFF form type is not WAVE",
        ));
    }
    let ds64 = match &magic {
        b"RIFF" => None,
        b"RF64" | b"BW64" => Some(parse_ds64(b)?),
        _ => return Err(MetaError::malformed("WAV", "missing RIFF/RF64/BW64 header")),
    };
    let riff_size = match &ds64 {
        Some(d) if size32 == u32::MAX => d.riff_size,
        _ => u64::from(size32),
    };
    let riff_end = usize::try_from(riff_size)
        .ok()
        .and_then(|s| s.checked_add(8))
        .filter(|e| *e <= b.len() && *e >= 12)
        .ok_or_else(|| MetaError::truncated("WAV RIFF chunk", 0))?;
    let first = ds64.as_ref().map_or(12, |d| d.chunk.end);
    let large = |id: &[u8; 4]| {
        let d = ds64.as_ref()?;
        if id == b"data" {
            return Some(d.data_size);
        }
        d.table.iter().find(|(t, _)| t == id).map(|(_, s)| *s)
    };
    let mut chunks = riff::walk(b, first.min(riff_end)..riff_end, "WAV", Some(&large))?;
    if let Some(d) = &ds64 {
        chunks.insert(0, d.chunk.clone());
    }
    Ok(Wav {
        magic,
        size32,
        ds64,
        riff_end,
        chunks,
    })
}

/// The `bext` text fields: (name, byte range in the chunk data). CodingHistory runs to the end.
const BEXT_FIELDS: [(&str, usize, usize); 4] = [
    ("Description", 0, 256),
    ("Originator", 256, 288),
    ("OriginatorReference", 288, 320),
    ("CodingHistory", 602, usize::MAX),
];

/// The `bext` fields that hold a label, as (name, range in `data`, text).
fn bext_labels(data: &[u8]) -> Vec<(&'static str, std::ops::Range<usize>, String)> {
    let mut out = Vec::new();
    for (name, start, end) in BEXT_FIELDS {
        let range = start.min(data.len())..end.min(data.len());
        let text = riff::chunk_text(data.get(range.clone()).unwrap_or_default());
        if riff::holds_label(&text) {
            out.push((name, range, text));
        }
    }
    out
}

/// A label in an `iXML` document: where it sits, the bytes to cut, and its value.
struct XmlLabel {
    placement: String,
    cut: std::ops::Range<usize>,
    value: String,
}

fn xml_error(e: impl std::fmt::Display) -> MetaError {
    MetaError::malformed("WAV", format!("iXML: {e}"))
}

/// Elements of `xml` whose name contains `AIGC` (cut whole) and text nodes that hold a label
/// (cut, leaving their element empty).
fn ixml_labels(xml: &str) -> Result<Vec<XmlLabel>, MetaError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut found = Vec::new();
    let mut path: Vec<String> = Vec::new();
    // (depth where the label element opened, its start offset, its name, its text so far)
    let mut open: Option<(usize, usize, String, String)> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).map_err(xml_error)?;
        let event = reader.read_event().map_err(xml_error)?;
        let after = usize::try_from(reader.buffer_position()).map_err(xml_error)?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if open.is_none() && riff::is_label_id(e.local_name().as_ref()) {
                    open = Some((path.len(), before, name.clone(), String::new()));
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
                if let Some((depth, start, name, value)) = open.take_if(|o| o.0 == path.len()) {
                    let _ = depth;
                    found.push(XmlLabel {
                        placement: format!("iXML <{name}>"),
                        cut: start..after,
                        value: value.trim().to_string(),
                    });
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(xml_error)?;
                if let Some(o) = open.as_mut() {
                    o.3.push_str(&text);
                } else if riff::holds_label(&text) {
                    let parent = path.last().cloned().unwrap_or_default();
                    found.push(XmlLabel {
                        placement: format!("iXML <{parent}> text"),
                        cut: before..after,
                        value: text.trim().to_string(),
                    });
                }
            }
            Event::CData(t) => {
                if let Some(o) = open.as_mut() {
                    o.3.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(found)
}

/// The text of an `iXML` chunk when it may hold a label (checked before parsing, so that a
/// broken document without labels never fails a read).
fn ixml_text<'a>(b: &'a [u8], c: &Chunk) -> Option<&'a str> {
    let data = b.get(c.data.clone())?;
    if !riff::is_label_id(data) {
        return None;
    }
    let end = data.iter().rposition(|x| *x != 0).map_or(0, |i| i + 1);
    std::str::from_utf8(data.get(..end)?).ok()
}

impl Carrier for WavCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Wav]
    }

    fn placement(&self) -> &'static str {
        "top-level RIFF chunk AIGC (after data)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let wav = parse(input)?;
        let mut found = Vec::new();
        for c in &wav.chunks {
            let data = slice(input, c.data.start, c.data.len(), "WAV chunk")?;
            if riff::is_label_id(&c.id) {
                found.push(FoundLabel::new(
                    format!("RIFF {} chunk", c.name()),
                    &c.id == b"AIGC",
                    riff::chunk_text(data),
                ));
            } else if c.is_list(input, b"INFO") {
                let items = riff::info_items(input, c, "WAV")?;
                riff::info_labels(input, &items, false, &mut found);
            } else if &c.id == b"bext" {
                for (name, _, text) in bext_labels(data) {
                    found.push(FoundLabel::new(format!("bext {name}"), false, text));
                }
            } else if &c.id == b"iXML" {
                if let Some(xml) = ixml_text(input, c) {
                    for l in ixml_labels(xml)? {
                        found.push(FoundLabel::new(l.placement, false, l.value));
                    }
                }
            } else if &c.id == b"_PMX" {
                riff::xmp_labels(input, c, &mut found)?;
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let wav = parse(input)?;
        let label = riff::chunk_bytes(b"AIGC", record.to_wrapped_json().as_bytes())?;
        // The chunks after the header (and after ds64, which is rewritten with the new size).
        let mut body = Rewrite::new();
        let mut placed = false;
        let mut needs_pad = false;
        for c in wav.chunks.iter().skip(usize::from(wav.ds64.is_some())) {
            let data = slice(input, c.data.start, c.data.len(), "WAV chunk")?;
            let mut replacement = None;
            if riff::is_label_id(&c.id) {
                // The first AIGC chunk is replaced where it is; any other label chunk goes.
                replacement = Some(if !placed && &c.id == b"AIGC" {
                    placed = true;
                    label.clone()
                } else {
                    Vec::new()
                });
            } else if c.is_list(input, b"INFO") {
                let items = riff::info_items(input, c, "WAV")?;
                let kept: Vec<&Chunk> = items
                    .iter()
                    .filter(|i| !riff::is_info_label(input, i))
                    .collect();
                if kept.len() < items.len() {
                    // An INFO list left empty is dropped rather than kept as a bare header.
                    replacement = Some(if kept.is_empty() {
                        Vec::new()
                    } else {
                        riff::info_list(input, &kept, None)?
                    });
                }
            } else if &c.id == b"bext" {
                let labels = bext_labels(data);
                if !labels.is_empty() {
                    let mut cleared = data.to_vec();
                    for (_, range, _) in labels {
                        if let Some(field) = cleared.get_mut(range) {
                            field.fill(0);
                        }
                    }
                    replacement = Some(riff::chunk_bytes(b"bext", &cleared)?);
                }
            } else if &c.id == b"iXML" {
                if let Some(xml) = ixml_text(input, c) {
                    let labels = ixml_labels(xml)?;
                    if !labels.is_empty() {
                        let mut kept = Vec::with_capacity(xml.len());
                        let mut at = 0;
                        for l in labels {
                            kept.extend_from_slice(
                                xml.as_bytes().get(at..l.cut.start).unwrap_or_default(),
                            );
                            at = l.cut.end;
                        }
                        kept.extend_from_slice(xml.as_bytes().get(at..).unwrap_or_default());
                        replacement = Some(riff::chunk_bytes(b"iXML", &kept)?);
                    }
                }
            } else if &c.id == b"_PMX" {
                replacement = riff::xmp_without_labels(input, c)?;
            }
            match replacement {
                Some(bytes) => {
                    needs_pad = false;
                    body.insert(bytes);
                }
                None => {
                    needs_pad = c.pad_missing;
                    body.keep(c.start..c.end);
                }
            }
        }
        if !placed {
            if needs_pad {
                // The last chunk was odd-sized without its pad byte: add it so ours is aligned.
                body.insert([0]);
            }
            body.insert(&label);
        }

        let ds64_len = wav.ds64.as_ref().map_or(0, |d| d.chunk.end - d.chunk.start);
        let new_riff_size = (4 + ds64_len + body.len()) as u64;
        let mut out = Rewrite::new();
        let mut header = wav.magic.to_vec();
        match &wav.ds64 {
            None => {
                let size = u32::try_from(new_riff_size).map_err(|_| {
                    MetaError::unsupported(
                        "WAV",
                        "the labelled file would pass the 4 GiB RIFF limit (convert it to RF64)",
                    )
                })?;
                header.extend_from_slice(&size.to_le_bytes());
                header.extend_from_slice(b"WAVE");
            }
            Some(d) => {
                // RF64 keeps 0xFFFFFFFF in the header; the real size lives in ds64.
                let size32 = if wav.size32 == u32::MAX {
                    u32::MAX
                } else {
                    u32::try_from(new_riff_size).unwrap_or(u32::MAX)
                };
                header.extend_from_slice(&size32.to_le_bytes());
                header.extend_from_slice(b"WAVE");
                let mut ds64 = slice(input, d.chunk.start, ds64_len, "RF64 ds64 chunk")?.to_vec();
                if let Some(field) = ds64.get_mut(8..16) {
                    field.copy_from_slice(&new_riff_size.to_le_bytes());
                }
                header.extend_from_slice(&ds64);
            }
        }
        out.insert(header);
        for p in body.pieces() {
            match p {
                crate::rewrite::Piece::Keep(r) => out.keep(r.clone()),
                crate::rewrite::Piece::Insert(bytes) => out.insert(bytes),
            };
        }
        out.keep(wav.riff_end..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const WAV: &str = "audio.wav";

    /// Top-level chunk ids of a plain RIFF file, walked independently of the carrier.
    fn chunk_ids(b: &[u8]) -> Vec<String> {
        riff::walk(b, 12..b.len(), "test", None)
            .expect("walk")
            .iter()
            .map(Chunk::name)
            .collect()
    }

    #[test]
    fn wav_write_read_and_relabel_keep_one_label() {
        let input = sample(WAV);
        let rec = record("wav-1");
        let out = write(&WavCarrier, &input, &rec);
        assert_one_label_as(&WavCarrier, &out, &rec, Form::Wrapped);
        assert_eq!(chunk_ids(&out), ["fmt ", "LIST", "data", "AIGC"]);
        // Everything before the label is the input, except the RIFF size.
        assert_eq!(out[8..input.len()], input[8..]);
        assert_eq!(le_u32(&out, 4, "t").ok(), Some(out.len() as u32 - 8));
        let rec2 = record_with_reserved("wav-2", 3);
        let again = write(&WavCarrier, &out, &rec2);
        assert_one_label_as(&WavCarrier, &again, &rec2, Form::Wrapped);
        assert_eq!(chunk_ids(&again), ["fmt ", "LIST", "data", "AIGC"]);
    }

    #[test]
    fn wav_exiftool_and_python_read_the_chunk_and_audio_is_unchanged() {
        let input = sample(WAV);
        let rec = record("wav-tools");
        let out = write(&WavCarrier, &input, &rec);
        let before = temp_file("in.wav", &input);
        let after = temp_file("out.wav", &out);
        // exiftool 12.57 does not know an AIGC chunk; -u shows it as RIFF:Unknown_AIGC.
        let tags = exiftool(&after, &["-u", "-b"]);
        assert_eq!(tags["RIFF:Unknown_AIGC"], rec.to_wrapped_json(), "{tags}");
        // Python's wave module reads the file; a raw walk proves every chunk is well-formed.
        let script = r#"
import struct, sys, wave
w = wave.open(sys.argv[1]); print(w.getnchannels(), w.getframerate(), w.getnframes()); w.close()
b = open(sys.argv[1], 'rb').read()
assert b[:4] == b'RIFF' and struct.unpack('<I', b[4:8])[0] == len(b) - 8
at = 12
while at < len(b):
    cid, size = b[at:at + 4], struct.unpack('<I', b[at + 4:at + 8])[0]
    assert at + 8 + size + (size & 1) <= len(b), cid
    if cid == b'AIGC': print(b[at + 8:at + 8 + size].decode())
    at += 8 + size + (size & 1)
assert at == len(b)
"#;
        let py = run("python3", &["-c", script, &after.to_string_lossy()]);
        assert_eq!(
            String::from_utf8_lossy(&py),
            format!("2 44100 88200\n{}\n", rec.to_wrapped_json())
        );
        assert_eq!(decoded_md5(&before), decoded_md5(&after));
        assert_decodes(&after);
    }

    #[test]
    fn wav_reads_and_replaces_labels_written_by_ffmpeg() {
        // ffmpeg writes comment as LIST/INFO ICMT and description as a bext field.
        let old = record("by-ffmpeg").to_wrapped_json();
        let (comment, description) = (format!("comment={old}"), format!("description={old}"));
        let tagged = ffmpeg_copy_to(
            "ff.wav",
            &sample(WAV),
            &[
                "-write_bext",
                "1",
                "-metadata",
                &comment,
                "-metadata",
                &description,
            ],
        );
        let input = tagged.bytes();
        let found = WavCarrier.read(&input).expect("read");
        let places = placements(&found);
        assert_eq!(places, ["bext Description", "LIST/INFO ICMT"]);
        assert!(found.iter().all(|l| l.value == old && !l.primary));
        let rec = record("ours");
        let out = write(&WavCarrier, &input, &rec);
        assert_one_label_as(&WavCarrier, &out, &rec, Form::Wrapped);
        // ISFT stays; the bext chunk keeps its size.
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("ISFT") && !text.contains("ICMT"));
        let after = temp_file("relabelled.wav", &out);
        assert_eq!(decoded_md5(&tagged), decoded_md5(&after));
    }

    #[test]
    fn wav_reads_and_removes_aigc_chunks_ixml_and_xmp() {
        let mut input = sample(WAV);
        let old = record("old");
        let ixml = format!(
            "<?xml version=\"1.0\"?><BWFXML><PROJECT>p</PROJECT><AIGC>{}</AIGC><NOTE>{}</NOTE></BWFXML>",
            old.to_bare_json(),
            quick_xml::escape::escape(old.to_wrapped_json())
        );
        for c in [
            riff::chunk_bytes(b"aigc", old.to_wrapped_json().as_bytes()),
            riff::chunk_bytes(b"iXML", ixml.as_bytes()),
            riff::chunk_bytes(b"_PMX", crate::xmp::new_packet(&old).as_bytes()),
            riff::chunk_bytes(b"AIGC", old.to_wrapped_json().as_bytes()),
            riff::chunk_bytes(b"AIGC", old.to_wrapped_json().as_bytes()),
        ] {
            input.extend(c.expect("chunk"));
        }
        let size = input.len() as u32 - 8;
        input[4..8].copy_from_slice(&size.to_le_bytes());
        let found = WavCarrier.read(&input).expect("read");
        let places = placements(&found);
        assert_eq!(
            places,
            [
                "RIFF aigc chunk",
                "iXML <AIGC>",
                "iXML <NOTE> text",
                "XMP (_PMX) TC260:AIGC",
                "RIFF AIGC chunk",
                "RIFF AIGC chunk"
            ]
        );
        assert!(found.iter().all(|l| l.parsed.record.as_ref() == Some(&old)));
        let rec = record("new");
        let out = write(&WavCarrier, &input, &rec);
        assert_one_label_as(&WavCarrier, &out, &rec, Form::Wrapped);
        assert_eq!(
            chunk_ids(&out),
            ["fmt ", "LIST", "data", "iXML", "_PMX", "AIGC"]
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("<PROJECT>p</PROJECT><NOTE></NOTE>"), "{text}");
    }

    #[test]
    fn wav_rf64_is_read_and_written() {
        let rf64 = ffmpeg_copy_to("rf64.wav", &sample(WAV), &["-rf64", "always"]);
        let input = rf64.bytes();
        assert_eq!(&input[..4], b"RF64");
        let rec = record("rf64");
        let out = write(&WavCarrier, &input, &rec);
        assert_one_label_as(&WavCarrier, &out, &rec, Form::Wrapped);
        assert_eq!(le_u64(&out, 20, "t").ok(), Some(out.len() as u64 - 8));
        let again = write(&WavCarrier, &out, &rec);
        assert_one_label_as(&WavCarrier, &again, &rec, Form::Wrapped);
        let after = temp_file("rf64-out.wav", &again);
        assert_eq!(
            exiftool(&after, &["-u", "-b"])["RIFF:Unknown_AIGC"],
            rec.to_wrapped_json()
        );
        assert_eq!(decoded_md5(&rf64), decoded_md5(&after));
        assert_decodes(&after);
    }

    #[test]
    fn wav_truncated_data_chunk_is_an_error() {
        let input = sample(WAV);
        let mut cut = input[..input.len() - 100].to_vec();
        let size = cut.len() as u32 - 8;
        cut[4..8].copy_from_slice(&size.to_le_bytes());
        let err = WavCarrier.read(&cut).expect_err("truncated data");
        assert!(err.to_string().contains("data chunk"), "{err}");
        assert!(WavCarrier.write(&cut, &record("x")).is_err());
        // A RIFF size past the end of the file is a truncation too.
        assert!(WavCarrier.read(&input[..input.len() - 1]).is_err());
    }

    #[test]
    fn wav_hostile_input_never_panics() {
        let mut input = sample(WAV);
        // Keep the fuzzed file small and full of structures: a short data chunk and labels.
        input.truncate(70 + 8 + 400);
        input[74..78].copy_from_slice(&400u32.to_le_bytes());
        input.extend(riff::chunk_bytes(b"bext", &[b'{'; 700]).expect("bext"));
        input.extend(riff::chunk_bytes(b"iXML", b"<a><AIGC>{}</AIGC></a>").expect("ixml"));
        input.extend(write(&WavCarrier, &sample(WAV), &record("x"))[352878..].iter());
        let size = input.len() as u32 - 8;
        input[4..8].copy_from_slice(&size.to_le_bytes());
        assert_eq!(WavCarrier.read(&input).expect("read").len(), 2);
        HostileInputs::new(4000, 1)
            .hot(0..200)
            .assert_never_panic(&WavCarrier, &input);
        let full = sample(WAV);
        HostileInputs::new(1000, 7)
            .hot(0..100)
            .assert_never_panic(&WavCarrier, &full);
    }
}
