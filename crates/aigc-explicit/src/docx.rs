//! The visible prompt in Word documents: a paragraph 「本内容由人工智能生成」 (or the user's text)
//! at the start and/or end (or middle) of the main document's body.
//!
//! Only the main document part changes; every other zip entry is copied raw. The paragraph
//! uses the body's own namespace prefix and direct formatting (bold, dark grey, centred), so it
//! needs no style from the document.

use crate::ExplicitError;
use crate::text::{FoundPrompt, TextPosition, TextPrompt, find_prompts};
use aigc_meta::MetaError;
use aigc_meta::carriers::ooxml::OoxmlParts;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use std::ops::Range;

/// The default prompt in documents.
pub const DEFAULT_DOCUMENT_PROMPT: &str = "本内容由人工智能生成";
/// Prompt colour: dark grey, 10:1 against a white page.
const PROMPT_COLOUR: &str = "404040";

/// The default document prompt at `position`.
pub fn default_document_prompt(position: TextPosition) -> TextPrompt {
    // The constant meets the wording rule (tested), so this never falls back.
    TextPrompt::new(DEFAULT_DOCUMENT_PROMPT, position)
        .unwrap_or_else(|_| TextPrompt::default_at(position))
}

fn malformed(detail: impl Into<String>) -> ExplicitError {
    ExplicitError::Document(MetaError::malformed("DOCX", detail))
}

/// The main document's body as scanned.
struct Body {
    /// The namespace prefix of the body element with its colon (`w:`), or empty.
    prefix: String,
    /// Where the body's content starts (after `<w:body>`), or the `<w:body/>` tag when empty.
    open: Range<usize>,
    /// Where `</w:body>` starts (None when the body is written `<w:body/>`).
    close: Option<usize>,
    /// The body's direct children: local name and byte range.
    children: Vec<(String, Range<usize>)>,
    /// The text of each paragraph (`p` anywhere in the body, tables included), in order.
    paragraphs: Vec<String>,
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

fn scan_body(xml: &str, part: &str) -> Result<Body, ExplicitError> {
    let bad = |e: &dyn std::fmt::Display| malformed(format!("{part}: {e}"));
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    // Element local names from the root down.
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut body: Option<Body> = None;
    let mut paragraph_depth: Option<usize> = None;
    let mut in_text = false;
    loop {
        let before = position(&reader);
        let event = reader.read_event().map_err(|e| bad(&e))?;
        let after = position(&reader);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name().as_ref().to_vec();
                let depth = stack.len();
                if depth == 0 && local != b"document" {
                    return Err(bad(&"the root element is not w:document"));
                }
                if depth == 1 && local == b"body" {
                    if body.is_some() {
                        return Err(bad(&"more than one w:body"));
                    }
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    body = Some(Body {
                        prefix: name
                            .split_once(':')
                            .map(|(p, _)| format!("{p}:"))
                            .unwrap_or_default(),
                        open: if empty { before..after } else { after..after },
                        close: None,
                        children: Vec::new(),
                        paragraphs: Vec::new(),
                    });
                }
                let in_body = stack.get(1).is_some_and(|n| n == b"body");
                if let Some(b) = body.as_mut().filter(|_| in_body) {
                    if depth == 2 {
                        b.children
                            .push((String::from_utf8_lossy(&local).into_owned(), before..after));
                    }
                    if local == b"p" && paragraph_depth.is_none() && !empty {
                        paragraph_depth = Some(depth);
                        b.paragraphs.push(String::new());
                    } else if local == b"p" && empty {
                        b.paragraphs.push(String::new());
                    }
                    if local == b"t" && !empty {
                        in_text = true;
                    }
                    // Tabs and breaks separate words in the visible text.
                    if paragraph_depth.is_some()
                        && (local == b"tab" || local == b"br")
                        && let Some(p) = b.paragraphs.last_mut()
                    {
                        p.push(' ');
                    }
                }
                if !empty {
                    stack.push(local);
                }
            }
            Event::End(_) => {
                let local = stack.pop().unwrap_or_default();
                let depth = stack.len();
                if local == b"t" {
                    in_text = false;
                }
                if paragraph_depth == Some(depth) && local == b"p" {
                    paragraph_depth = None;
                }
                if let Some(b) = body.as_mut() {
                    if depth == 2
                        && stack.get(1).is_some_and(|n| n == b"body")
                        && let Some(c) = b.children.last_mut()
                    {
                        c.1.end = after;
                    }
                    if depth == 1 && local == b"body" {
                        b.close = Some(before);
                    }
                }
            }
            Event::Text(t) if in_text => {
                if let Some(p) = body.as_mut().and_then(|b| b.paragraphs.last_mut()) {
                    p.push_str(&t.unescape().map_err(|e| bad(&e))?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match body {
        Some(b) if b.close.is_some() || b.open.start != b.open.end => Ok(b),
        Some(_) => Err(bad(&"w:body is not closed")),
        None => Err(bad(&"no w:body element")),
    }
}

/// `s` escaped for XML character data.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The prompt paragraph's XML with the body's prefix `w` (including its colon).
fn paragraph_xml(w: &str, text: &str) -> String {
    format!(
        "<{w}p><{w}pPr><{w}jc {w}val=\"center\"/></{w}pPr><{w}r><{w}rPr><{w}b/><{w}color {w}val=\"{PROMPT_COLOUR}\"/></{w}rPr>\
         <{w}t xml:space=\"preserve\">{}</{w}t></{w}r></{w}p>",
        escape(text)
    )
}

/// The visible prompts a Word document's body already holds (one "line" per paragraph).
pub fn find_docx_prompts(input: &[u8]) -> Result<Vec<FoundPrompt>, ExplicitError> {
    let mut parts = OoxmlParts::open(input)?;
    let main = parts.main_part()?;
    let xml = parts
        .part(&main)?
        .ok_or_else(|| malformed(format!("no {main} part")))?;
    let text = std::str::from_utf8(xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&xml))
        .map_err(|_| malformed(format!("{main} is not UTF-8")))?;
    let body = scan_body(text, &main)?;
    Ok(find_prompts(&body.paragraphs.join("\n")))
}

/// A labelled Word document.
#[derive(Debug, Clone)]
pub struct LabelledDocx {
    /// The whole output file.
    pub bytes: Vec<u8>,
    /// The main document part that changed.
    pub part: String,
    /// The prompt text added.
    pub prompt: String,
    /// How many paragraphs the body held before.
    pub paragraphs_before: usize,
}

/// Adds `prompt` as a paragraph to the body of the Word document `input`.
pub fn label_docx(input: &[u8], prompt: &TextPrompt) -> Result<LabelledDocx, ExplicitError> {
    let mut parts = OoxmlParts::open(input)?;
    let main = parts.main_part()?;
    let xml = parts
        .part(&main)?
        .ok_or_else(|| malformed(format!("no {main} part")))?;
    let (bom, rest) = match xml.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (&b"\xEF\xBB\xBF"[..], rest),
        None => (&b""[..], &xml[..]),
    };
    let text = std::str::from_utf8(rest).map_err(|_| malformed(format!("{main} is not UTF-8")))?;
    let body = scan_body(text, &main)?;
    let line = prompt.plain_line();
    let para = paragraph_xml(&body.prefix, &line);
    let start = body.open.end;
    // The section properties must stay the body's last child.
    let end = match (body.children.last(), body.close) {
        (Some((name, r)), _) if name == "sectPr" => r.start,
        (_, Some(close)) => close,
        (_, None) => start,
    };
    let content: Vec<&Range<usize>> = body
        .children
        .iter()
        .filter(|(n, _)| n != "sectPr")
        .map(|(_, r)| r)
        .collect();
    let middle = content.get(content.len() / 2).map_or(end, |r| r.start);
    let mut inserts: Vec<usize> = match prompt.position {
        TextPosition::Start => vec![start],
        TextPosition::End => vec![end],
        TextPosition::Both => vec![start, end],
        TextPosition::Middle => vec![middle],
    };
    inserts.sort_unstable();
    let mut out = String::with_capacity(text.len() + 2 * para.len() + 32);
    if body.close.is_none() {
        // `<w:body/>`: opened and closed around the new paragraph.
        let tag = text.get(body.open.clone()).unwrap_or_default();
        let head = tag.trim_end_matches("/>").trim_end();
        out.push_str(text.get(..body.open.start).unwrap_or_default());
        out.push_str(head);
        out.push('>');
        for _ in &inserts {
            out.push_str(&para);
        }
        out.push_str(&format!("</{}body>", body.prefix));
        out.push_str(text.get(body.open.end..).unwrap_or_default());
    } else {
        let mut at = 0;
        for i in inserts {
            out.push_str(text.get(at..i).ok_or_else(|| malformed("bad offsets"))?);
            out.push_str(&para);
            at = i;
        }
        out.push_str(text.get(at..).unwrap_or_default());
    }
    let mut bytes = bom.to_vec();
    bytes.extend_from_slice(out.as_bytes());
    let package = parts.replace(&[(main.clone(), bytes)])?;
    Ok(LabelledDocx {
        bytes: package,
        part: main,
        prompt: line,
        paragraphs_before: body.paragraphs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::path::Path;
    use std::process::Command;

    fn sample(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../samples/media")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Every entry: (name, compressed bytes, CRC).
    fn raw_entries(b: &[u8]) -> Vec<(String, Vec<u8>, u32)> {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(b)).expect("zip");
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index_raw(i).expect("entry");
                let mut data = Vec::new();
                f.read_to_end(&mut data).expect("read");
                (f.name().to_string(), data, f.crc32())
            })
            .collect()
    }

    /// Paragraph texts of word/document.xml read by Python's zipfile and ElementTree.
    fn python_paragraphs(path: &Path) -> Vec<String> {
        let script = r#"
import sys, zipfile, xml.etree.ElementTree as ET
W = '{http://schemas.openxmlformats.org/wordprocessingml/2006/main}'
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
body = ET.fromstring(z.read('word/document.xml')).find(W + 'body')
children = list(body)
assert children[-1].tag == W + 'sectPr' or not any(c.tag == W + 'sectPr' for c in children)
for p in body.iter(W + 'p'):
    print(''.join(t.text or '' for t in p.iter(W + 't')))
"#;
        let out = Command::new("python3")
            .args(["-c", script, path.to_str().unwrap_or_default()])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn paragraph_goes_first_or_last_and_other_entries_stay_raw() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["document.docx", "document-custom.docx"] {
            let input = sample(name);
            let before = raw_entries(&input);
            let path_in = dir.path().join("in.docx");
            std::fs::write(&path_in, &input).expect("write");
            let original = python_paragraphs(&path_in);
            for (position, expect_first, expect_last) in [
                (TextPosition::Start, true, false),
                (TextPosition::End, false, true),
                (TextPosition::Both, true, true),
            ] {
                let prompt = TextPrompt::new(DEFAULT_DOCUMENT_PROMPT, position).expect("prompt");
                let out = label_docx(&input, &prompt).expect("label");
                let path = dir.path().join("out.docx");
                std::fs::write(&path, &out.bytes).expect("write");
                let paras = python_paragraphs(&path);
                assert_eq!(
                    paras.len(),
                    original.len() + usize::from(expect_first) + usize::from(expect_last),
                    "{name} {position:?}: {paras:?}"
                );
                assert_eq!(
                    paras[0] == DEFAULT_DOCUMENT_PROMPT,
                    expect_first,
                    "{paras:?}"
                );
                assert_eq!(
                    paras[paras.len() - 1] == DEFAULT_DOCUMENT_PROMPT,
                    expect_last,
                    "{paras:?}"
                );
                // The original paragraphs are all there, in order.
                let kept: Vec<&String> = paras
                    .iter()
                    .filter(|p| p.as_str() != DEFAULT_DOCUMENT_PROMPT)
                    .collect();
                assert_eq!(kept, original.iter().collect::<Vec<_>>());
                // Every entry but the main document is byte-identical (compressed data and CRC).
                let after = raw_entries(&out.bytes);
                assert_eq!(after.len(), before.len());
                for (a, b) in after.iter().zip(&before) {
                    assert_eq!(a.0, b.0);
                    if a.0 != "word/document.xml" {
                        assert_eq!(a, b, "{} changed", a.0);
                    }
                }
                // And our own finder sees the prompt where it was put.
                let found = find_docx_prompts(&out.bytes).expect("find");
                assert!(found.iter().all(|f| f.wording_ok), "{found:?}");
                assert_eq!(
                    found.len(),
                    usize::from(expect_first) + usize::from(expect_last)
                );
            }
            assert!(find_docx_prompts(&input).expect("find").is_empty());
        }
    }

    #[test]
    fn user_text_is_escaped_and_middle_works() {
        let input = sample("document.docx");
        let prompt =
            TextPrompt::new("本内容由AI生成 <草稿> & 合成", TextPosition::Middle).expect("prompt");
        let out = label_docx(&input, &prompt).expect("label");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.docx");
        std::fs::write(&path, &out.bytes).expect("write");
        let paras = python_paragraphs(&path);
        assert!(
            paras.iter().any(|p| p == "本内容由AI生成 <草稿> & 合成"),
            "{paras:?}"
        );
    }

    #[test]
    fn bad_packages_are_refused() {
        let prompt = TextPrompt::default_at(TextPosition::End);
        let input = sample("document.docx");
        for bad in [&b"PK\x03\x04"[..], b"", &input[..input.len() / 2]] {
            assert!(label_docx(bad, &prompt).is_err());
        }
        // A spreadsheet has no w:body.
        let e = label_docx(&sample("sheet.xlsx"), &prompt).unwrap_err();
        assert!(e.to_string().contains("document"), "{e}");
    }
}
