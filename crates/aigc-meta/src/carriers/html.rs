//! HTML: `<meta name="AIGC" content="{bare JSON}">` in the document head (aigc-mark's documented
//! placement; the TC260 guides leave HTML to the implementer). Everything else is kept byte for byte.

use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

/// The HTML `<meta name="AIGC">` carrier.
pub struct HtmlCarrier;

const PLACEMENT: &str = "HTML <meta name=\"AIGC\" content>";

/// Byte offsets of ASCII-case-insensitive matches of `needle` in `hay`.
fn find_all_ci(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if hay.len() < needle.len() {
        return Vec::new();
    }
    (0..=hay.len() - needle.len())
        .filter(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
        .collect()
}

/// The end (exclusive) of the tag starting at `start`, honouring quoted attribute values.
fn tag_end(b: &[u8], start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate().skip(start) {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, b'>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Attributes of a tag as (lower-case name, raw value).
fn attributes(tag: &[u8]) -> Vec<(String, String)> {
    let s = String::from_utf8_lossy(tag);
    let s = s.trim_start_matches('<');
    let mut out = Vec::new();
    let mut rest = s
        .split_once(|c: char| c.is_whitespace())
        .map_or("", |x| x.1);
    loop {
        rest = rest.trim_start();
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        if name_end == 0 {
            // Skip a stray '/' or '>' and stop at the end.
            if rest.is_empty() || rest.starts_with('>') {
                break;
            }
            rest = &rest[1..];
            continue;
        }
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            match r.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let body = &r[1..];
                    let end = body.find(q).unwrap_or(body.len());
                    rest = body.get(end + 1..).unwrap_or("");
                    body[..end].to_string()
                }
                _ => {
                    let end = r
                        .find(|c: char| c.is_whitespace() || c == '>')
                        .unwrap_or(r.len());
                    rest = &r[end..];
                    r[..end].to_string()
                }
            }
        } else {
            String::new()
        };
        out.push((name, value));
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Every `<meta name="AIGC">` tag: its byte range and its content.
fn aigc_meta_tags(b: &[u8]) -> Vec<(Range<usize>, String)> {
    find_all_ci(b, b"<meta")
        .into_iter()
        .filter(|&i| {
            b.get(i + 5)
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
        })
        .filter_map(|i| {
            let end = tag_end(b, i)?;
            let attrs = attributes(&b[i..end]);
            let named = attrs
                .iter()
                .any(|(n, v)| n == "name" && v.eq_ignore_ascii_case("AIGC"));
            if !named {
                return None;
            }
            let content = attrs
                .iter()
                .find(|(n, _)| n == "content")
                .map(|(_, v)| unescape(v))
                .unwrap_or_default();
            Some((i..end, content))
        })
        .collect()
}

/// Where the new tag goes: after `<head …>`, else after `<html …>`, else at the start
/// (after a byte-order mark and a doctype).
fn insertion_point(b: &[u8]) -> usize {
    for open in [&b"<head"[..], b"<html"] {
        if let Some(i) = find_all_ci(b, open).into_iter().find(|&i| {
            b.get(i + open.len())
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>')
        }) && let Some(end) = tag_end(b, i)
        {
            return end;
        }
    }
    let mut at = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if let Some(i) = find_all_ci(b, b"<!doctype").first()
        && let Some(end) = tag_end(b, *i)
    {
        at = end;
    }
    at
}

impl Carrier for HtmlCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Html]
    }

    fn placement(&self) -> &'static str {
        PLACEMENT
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        Ok(aigc_meta_tags(input)
            .into_iter()
            .map(|(_, content)| FoundLabel::new(PLACEMENT, true, content))
            .collect())
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        if std::str::from_utf8(input).is_err() {
            return Err(MetaError::unsupported("HTML", "the document is not UTF-8"));
        }
        let nl: &[u8] = if input.windows(2).any(|w| w == b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        };
        let tag = format!(
            "<meta name=\"AIGC\" content=\"{}\">",
            escape(&record.to_bare_json())
        );
        let mut remove: Vec<Range<usize>> = aigc_meta_tags(input)
            .into_iter()
            .map(|(r, _)| {
                // Take the line break after a removed tag too, so no blank line is left.
                let mut end = r.end;
                if input[end..].starts_with(nl) {
                    end += nl.len();
                }
                r.start..end
            })
            .collect();
        remove.sort_by_key(|r| r.start);
        let mut at = insertion_point(input);
        if let Some(r) = remove.iter().find(|r| r.contains(&at)) {
            at = r.start;
        }
        let mut rw = Rewrite::new();
        let mut pos = 0usize;
        let mut inserted = false;
        let insert = |rw: &mut Rewrite| {
            let mut bytes = nl.to_vec();
            bytes.extend_from_slice(tag.as_bytes());
            if at == 0 {
                bytes = tag.as_bytes().to_vec();
                bytes.extend_from_slice(nl);
            }
            rw.insert(bytes);
        };
        for r in &remove {
            if !inserted && at <= r.start {
                rw.keep(pos..at);
                insert(&mut rw);
                inserted = true;
                pos = at;
            }
            rw.keep(pos..r.start);
            pos = r.end;
        }
        if !inserted {
            rw.keep(pos..at.max(pos));
            insert(&mut rw);
            pos = at.max(pos);
        }
        rw.keep(pos..input.len());
        Ok(rw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigc_core::Label;

    fn record() -> AigcRecord {
        AigcRecord::new(Label::Generated, "001191440300708461136T1XGW3", "id-1")
    }

    fn write(input: &str) -> String {
        let out = HtmlCarrier.write(input.as_bytes(), &record()).unwrap();
        String::from_utf8(out.to_vec(input.as_bytes())).unwrap()
    }

    #[test]
    fn writes_one_meta_tag_in_the_head_and_reads_it_back() {
        let html = "<!DOCTYPE html>\n<html>\n<HEAD>\n<title>t</title>\n</HEAD>\n<body><p>x</p></body>\n</html>\n";
        let out = write(html);
        let json = record().to_bare_json().replace('"', "&quot;");
        assert_eq!(
            out,
            format!(
                "<!DOCTYPE html>\n<html>\n<HEAD>\n<meta name=\"AIGC\" content=\"{json}\">\n<title>t</title>\n</HEAD>\n<body><p>x</p></body>\n</html>\n"
            )
        );
        let found = HtmlCarrier.read(out.as_bytes()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].parsed.record.as_ref(), Some(&record()));
        // Relabelling replaces, never appends, and is stable.
        assert_eq!(write(&out), out);
    }

    #[test]
    fn replaces_other_spellings_and_handles_headless_documents() {
        let html =
            "<html><body><meta content='{\"Label\":\"3\"}' NAME=aigc /><p>x</p></body></html>";
        let out = write(html);
        assert_eq!(out.matches("AIGC").count(), 1, "{out}");
        assert!(out.starts_with("<html>\n<meta name=\"AIGC\""), "{out}");
        assert_eq!(HtmlCarrier.read(out.as_bytes()).unwrap().len(), 1);
        let bare = write("<p>fragment</p>");
        assert!(bare.starts_with("<meta name=\"AIGC\""), "{bare}");
        assert!(
            HtmlCarrier
                .read(b"<meta name=\"description\" content=\"x\">")
                .unwrap()
                .is_empty()
        );
        // Truncated tags are not labels and never panic.
        for cut in 0..html.len() {
            let _ = HtmlCarrier.read(&html.as_bytes()[..cut]);
        }
    }
}
