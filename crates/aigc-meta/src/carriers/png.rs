//! PNG: the label goes in XMP inside an `iTXt` chunk with keyword `XML:com.adobe.xmp`, placed
//! before the first `IDAT`. `tEXt`/`zTXt`/`iTXt` chunks whose keyword contains `AIGC` (the
//! guide's Annex B alternative) are read, and removed on write so that one label remains.

use crate::bytes::{MAX_INFLATED, be_u32, inflate_zlib, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use crate::xmp;
use aigc_core::{AigcRecord, Format};

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// The PNG carrier.
pub struct PngCarrier;

/// One chunk: where it starts, its type and where its data lies.
struct Chunk {
    start: usize,
    end: usize,
    kind: [u8; 4],
    data: std::ops::Range<usize>,
}

fn chunks(b: &[u8]) -> Result<Vec<Chunk>, MetaError> {
    if !b.starts_with(SIGNATURE) {
        return Err(MetaError::malformed("PNG", "missing PNG signature"));
    }
    let mut out = Vec::new();
    let mut at = SIGNATURE.len();
    loop {
        let len = be_u32(b, at, "PNG chunk length")? as usize;
        let kind: [u8; 4] = crate::bytes::array(b, at + 4, "PNG chunk type")?;
        let data = at + 8..at + 8 + len;
        slice(
            b,
            at + 8,
            len + 4,
            &format!("PNG {} chunk", String::from_utf8_lossy(&kind)),
        )?;
        let end = data.end + 4;
        out.push(Chunk {
            start: at,
            end,
            kind,
            data,
        });
        at = end;
        if &kind == b"IEND" {
            break;
        }
    }
    if out.first().map(|c| &c.kind) != Some(b"IHDR") {
        return Err(MetaError::malformed("PNG", "first chunk is not IHDR"));
    }
    Ok(out)
}

/// A text chunk's keyword and text (inflated when compressed).
fn text_chunk(kind: &[u8; 4], data: &[u8]) -> Result<Option<(Vec<u8>, String)>, MetaError> {
    let Some(nul) = data.iter().position(|x| *x == 0) else {
        return Ok(None);
    };
    let keyword = data[..nul].to_vec();
    let rest = &data[nul + 1..];
    let text = match kind {
        b"tEXt" => latin1(rest),
        b"zTXt" => latin1(&inflate_zlib(
            rest.get(1..).unwrap_or_default(),
            MAX_INFLATED,
            "PNG zTXt",
        )?),
        b"iTXt" => {
            let (&flag, rest) = rest
                .split_first()
                .ok_or_else(|| MetaError::truncated("PNG iTXt header", 0))?;
            let rest = rest.get(1..).unwrap_or_default();
            // Skip the language tag and the translated keyword.
            let mut parts = rest.splitn(3, |x| *x == 0);
            let (_, _, text) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
            let raw = if flag == 1 {
                inflate_zlib(text, MAX_INFLATED, "PNG iTXt")?
            } else {
                text.to_vec()
            };
            String::from_utf8(raw)
                .map_err(|_| MetaError::malformed("PNG", "iTXt text is not UTF-8"))?
        }
        _ => return Ok(None),
    };
    Ok(Some((keyword, text)))
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

fn is_label_keyword(k: &[u8]) -> bool {
    k.windows(4).any(|w| w.eq_ignore_ascii_case(b"AIGC"))
}

fn chunk_bytes(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

fn xmp_itxt(packet: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(packet.len() + 24);
    data.extend_from_slice(XMP_KEYWORD);
    // NUL, uncompressed, method 0, empty language tag, empty translated keyword.
    data.extend_from_slice(&[0, 0, 0, 0, 0]);
    data.extend_from_slice(packet.as_bytes());
    chunk_bytes(b"iTXt", &data)
}

impl Carrier for PngCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Png]
    }

    fn placement(&self) -> &'static str {
        "XMP TC260:AIGC in iTXt XML:com.adobe.xmp (before IDAT)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let mut found = Vec::new();
        for c in chunks(input)? {
            let Some((keyword, text)) = text_chunk(&c.kind, &input[c.data.clone()])? else {
                continue;
            };
            let kind = String::from_utf8_lossy(&c.kind);
            if keyword == XMP_KEYWORD {
                for l in xmp::find_labels(&text)? {
                    found.push(FoundLabel::new(
                        format!("XMP ({kind}) {}", l.qualified_name),
                        l.tc260,
                        l.value,
                    ));
                }
            } else if is_label_keyword(&keyword) {
                found.push(FoundLabel::new(
                    format!("{kind} {}", String::from_utf8_lossy(&keyword)),
                    false,
                    text,
                ));
            }
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let chunks = chunks(input)?;
        // Merge into the first existing XMP packet; drop any further packets and label chunks.
        let mut packet = None;
        let mut drop = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if let Some((keyword, text)) = text_chunk(&c.kind, &input[c.data.clone()])? {
                if keyword == XMP_KEYWORD {
                    if packet.is_none() {
                        packet = Some(xmp::merge_packet(&text, Some(record))?);
                    }
                    drop.push(i);
                } else if is_label_keyword(&keyword) {
                    drop.push(i);
                }
            }
        }
        let packet = packet.unwrap_or_else(|| xmp::new_packet(record));
        let first_idat = chunks
            .iter()
            .position(|c| &c.kind == b"IDAT")
            .ok_or_else(|| MetaError::malformed("PNG", "no IDAT chunk"))?;
        let mut out = Rewrite::new();
        out.keep(0..SIGNATURE.len());
        for (i, c) in chunks.iter().enumerate() {
            if i == first_idat {
                out.insert(xmp_itxt(&packet));
            }
            if !drop.contains(&i) {
                out.keep(c.start..c.end);
            }
        }
        // Bytes after IEND are kept as they were.
        let tail = chunks.last().map_or(input.len(), |c| c.end);
        out.keep(tail..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    fn tiny_png(extra_before_idat: &[Vec<u8>]) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend(chunk_bytes(
            b"IHDR",
            &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0],
        ));
        for c in extra_before_idat {
            b.extend_from_slice(c);
        }
        b.extend(chunk_bytes(
            b"IDAT",
            &crate::bytes::deflate_zlib(&[0, 0x80]),
        ));
        b.extend(chunk_bytes(b"IEND", &[]));
        b
    }

    #[test]
    fn write_replaces_text_labels_and_keeps_idat() {
        let old = chunk_bytes(b"tEXt", b"AIGC\0{\"AIGC\":{\"Label\":\"3\"}}");
        let input = tiny_png(&[old]);
        assert_eq!(PngCarrier.read(&input).expect("read").len(), 1);
        let record = record("p1");
        let out = write(&PngCarrier, &input, &record);
        only_label(&PngCarrier, &out);
        let idat = |b: &[u8]| {
            chunks(b)
                .expect("chunks")
                .into_iter()
                .find(|c| &c.kind == b"IDAT")
                .map(|c| b[c.start..c.end].to_vec())
        };
        assert_eq!(idat(&input), idat(&out));
        // Writing again still leaves one label.
        let again = write(&PngCarrier, &out, &record);
        assert_eq!(PngCarrier.read(&again).expect("read").len(), 1);
    }

    #[test]
    fn truncation_is_an_error() {
        let input = tiny_png(&[]);
        for cut in 0..input.len() - 12 {
            assert!(PngCarrier.read(&input[..cut]).is_err(), "cut at {cut}");
        }
    }
}
