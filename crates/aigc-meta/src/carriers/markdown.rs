//! Markdown and plain text: the label goes in YAML front matter at the head of the file as an
//! `AIGC:` mapping of the seven Annex E keys (single-quoted scalars). An `AIGC: '{json}'` scalar
//! (or any other top-level key containing `AIGC`) is read too, and replaced on write. Every other
//! line, the line-ending style and a UTF-8 BOM are kept as they were.
//!
//! No YAML library: front matter is a flat list of top-level keys, parsed line by line.

use crate::carrier::{Carrier, FoundLabel};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The Markdown / plain-text carrier.
pub struct MarkdownCarrier;

/// One line: its text (without the line ending) and where the next line starts.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

impl Line {
    fn text<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        b.get(self.start..self.end).unwrap_or_default()
    }
}

/// Lines of `b` from `from`; `\r\n` and `\n` both end a line.
fn lines(b: &[u8], from: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut at = from;
    while at < b.len() {
        let rest = b.get(at..).unwrap_or_default();
        let (end, next) = match rest.iter().position(|c| *c == b'\n') {
            Some(i) => {
                let nl = at + i;
                let end = if nl > at && b.get(nl - 1) == Some(&b'\r') {
                    nl - 1
                } else {
                    nl
                };
                (end, nl + 1)
            }
            None => (b.len(), b.len()),
        };
        out.push(Line {
            start: at,
            end,
            next,
        });
        at = next;
    }
    out
}

/// The line ending a line uses (`\n` when it has none).
fn eol_of(b: &[u8], line: &Line) -> &'static [u8] {
    if b.get(line.end) == Some(&b'\r') {
        b"\r\n"
    } else {
        b"\n"
    }
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    s.get(..n).unwrap_or_default()
}

/// The front matter: the lines between the opening `---` and the closing `---` or `...`.
struct FrontMatter {
    open: Line,
    body: Vec<Line>,
    close: Line,
}

fn front_matter(b: &[u8], from: usize) -> Option<FrontMatter> {
    let all = lines(b, from);
    let (open, rest) = all.split_first()?;
    // An opening line without a line ending is not front matter (the file is just `---`).
    if trim_end(open.text(b)) != b"---" || open.next == open.end {
        return None;
    }
    let close_at = rest
        .iter()
        .position(|l| matches!(trim_end(l.text(b)), b"---" | b"..."))?;
    Some(FrontMatter {
        open: *open,
        body: rest.get(..close_at)?.to_vec(),
        close: *rest.get(close_at)?,
    })
}

fn indent(s: &[u8]) -> usize {
    s.iter().take_while(|c| matches!(c, b' ' | b'\t')).count()
}

fn is_blank(s: &[u8]) -> bool {
    indent(s) == s.len()
}

/// A top-level `key: rest` line: the unquoted key and the text after the colon.
fn split_key(s: &[u8]) -> Option<(String, &[u8])> {
    let (key, after) = match s.first()? {
        q @ (b'\'' | b'"') => {
            let close = s.get(1..)?.iter().position(|c| c == q)? + 1;
            let after = s.get(close + 1..)?;
            let after = after.get(indent(after)..)?;
            (s.get(1..close)?, after.strip_prefix(b":")?)
        }
        _ => {
            let colon = s
                .windows(2)
                .position(|w| w[0] == b':' && matches!(w[1], b' ' | b'\t'));
            let colon = match colon {
                Some(i) => i,
                None if s.last() == Some(&b':') => s.len() - 1,
                None => return None,
            };
            (trim_end(s.get(..colon)?), s.get(colon + 1..)?)
        }
    };
    // A value must be separated from the colon by a blank (or be empty).
    if !after.is_empty() && !matches!(after.first(), Some(b' ' | b'\t')) {
        return None;
    }
    Some((
        String::from_utf8_lossy(key).into_owned(),
        trim_end(after.get(indent(after)..)?),
    ))
}

fn is_label_key(key: &str) -> bool {
    key.to_ascii_uppercase().contains("AIGC")
}

/// A top-level label key with the lines that belong to it (indented continuation lines).
struct Block {
    /// Index of the key line in the front matter body.
    first: usize,
    /// Index one past the last line of the block.
    end: usize,
    key: String,
}

fn label_blocks(b: &[u8], body: &[Line]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(line) = body.get(i) {
        let text = line.text(b);
        let top_level = !text.is_empty() && indent(text) == 0 && !text.starts_with(b"#");
        let key = if top_level { split_key(text) } else { None };
        let Some((key, _)) = key.filter(|(k, _)| is_label_key(k)) else {
            i += 1;
            continue;
        };
        // Indented lines continue the value; blank lines do so only when more indented lines follow.
        let mut end = i + 1;
        let mut j = i + 1;
        while let Some(l) = body.get(j) {
            let t = l.text(b);
            if is_blank(t) {
                j += 1;
                continue;
            }
            if indent(t) == 0 {
                break;
            }
            j += 1;
            end = j;
        }
        out.push(Block { first: i, end, key });
        i = end;
    }
    out
}

/// A YAML scalar as JSON: strings quoted, plain numbers, booleans and nulls as JSON literals.
#[derive(Debug, PartialEq)]
enum Scalar {
    Str(String),
    Literal(String),
}

impl Scalar {
    fn to_json(&self) -> String {
        match self {
            Scalar::Str(s) => json_string(s),
            Scalar::Literal(l) => l.clone(),
        }
    }

    fn into_text(self) -> String {
        match self {
            Scalar::Str(s) | Scalar::Literal(s) => s,
        }
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A plain scalar typed as YAML 1.2's core schema does (decimal numbers, booleans, null).
fn plain_scalar(s: &str) -> Scalar {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Literal("null".into()),
        "true" | "True" | "TRUE" => return Scalar::Literal("true".into()),
        "false" | "False" | "FALSE" => return Scalar::Literal("false".into()),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let numeric = !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if numeric {
        if let Ok(i) = s.parse::<i64>() {
            return Scalar::Literal(i.to_string());
        }
        if let Ok(f) = s.parse::<f64>()
            && f.is_finite()
        {
            return Scalar::Literal(f.to_string());
        }
    }
    Scalar::Str(s.to_string())
}

/// Removes a plain scalar's trailing ` # comment`.
fn strip_comment(s: &str) -> &str {
    let cut = s
        .char_indices()
        .find(|&(i, c)| c == '#' && s[..i].ends_with([' ', '\t']))
        .map_or(s.len(), |(i, _)| i);
    s[..cut].trim_end()
}

fn single_quoted(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().skip(1).peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
                out.push('\'');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

fn double_quoted(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().skip(1);
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => {
                let e = chars.next()?;
                let hex = |chars: &mut std::iter::Skip<std::str::Chars>, n: usize| {
                    let h: String = chars.by_ref().take(n).collect();
                    u32::from_str_radix(&h, 16).ok().and_then(char::from_u32)
                };
                out.push(match e {
                    '0' => '\0',
                    'a' => '\x07',
                    'b' => '\x08',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\x0b',
                    'f' => '\x0c',
                    'r' => '\r',
                    'e' => '\x1b',
                    ' ' => ' ',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// The scalar that starts with `first` (the text after a colon) and continues over `more`
/// (already dedented continuation lines).
fn scalar(first: &str, more: &[&str]) -> Scalar {
    if let Some(indicator) = first.strip_prefix(['|', '>']) {
        // Block scalar: literal keeps line breaks, folded joins lines with spaces.
        let literal = first.starts_with('|');
        let body = if literal {
            more.join("\n")
        } else {
            more.join(" ")
        };
        let body = body.trim_end_matches('\n').to_string();
        return Scalar::Str(if indicator.contains('-') || body.is_empty() {
            body
        } else {
            body + "\n"
        });
    }
    // Flow scalars fold continuation lines into one line, joined by a space.
    let mut joined = first.to_string();
    for m in more {
        joined.push(' ');
        joined.push_str(m.trim());
    }
    if joined.starts_with('\'') {
        single_quoted(&joined).map_or_else(|| Scalar::Str(joined.clone()), Scalar::Str)
    } else if joined.starts_with('"') {
        double_quoted(&joined).map_or_else(|| Scalar::Str(joined.clone()), Scalar::Str)
    } else {
        plain_scalar(strip_comment(&joined))
    }
}

/// The value of one label block: a mapping rebuilt as bare JSON, or the scalar's text.
fn block_value(b: &[u8], body: &[Line], block: &Block) -> (bool, String) {
    let text = |i: usize| {
        body.get(i)
            .map(|l| String::from_utf8_lossy(l.text(b)).into_owned())
            .unwrap_or_default()
    };
    let head = text(block.first);
    let first = split_key(head.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let rest: Vec<String> = (block.first + 1..block.end).map(text).collect();
    let min_indent = rest
        .iter()
        .filter(|l| !is_blank(l.as_bytes()))
        .map(|l| indent(l.as_bytes()))
        .min()
        .unwrap_or(0);
    let dedent = |l: &String| l.get(min_indent..).unwrap_or_default().to_string();
    let first = strip_comment_if_empty(&first);
    let is_mapping = first.is_empty()
        && rest
            .iter()
            .find(|l| !is_blank(l.as_bytes()))
            .is_some_and(|l| split_key(dedent(l).as_bytes()).is_some());
    if !is_mapping {
        let more: Vec<String> = rest.iter().map(dedent).collect();
        let more: Vec<&str> = more.iter().map(String::as_str).collect();
        return (false, scalar(first, &more).into_text());
    }
    // Mapping: entries at the block's indentation, deeper lines continue the entry above.
    let mut entries: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in &rest {
        if is_blank(line.as_bytes()) {
            if let Some(e) = entries.last_mut() {
                e.2.push(String::new());
            }
            continue;
        }
        let d = dedent(line);
        if indent(d.as_bytes()) == 0
            && let Some((k, v)) = split_key(d.as_bytes())
        {
            entries.push((k, String::from_utf8_lossy(v).into_owned(), Vec::new()));
        } else if let Some(e) = entries.last_mut() {
            e.2.push(d.trim_start().to_string());
        }
    }
    let mut json = String::from("{");
    for (i, (key, first, more)) in entries.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let more: Vec<&str> = more.iter().map(String::as_str).collect();
        let more = trim_blank_tail(&more);
        json.push_str(&json_string(key));
        json.push(':');
        json.push_str(&scalar(strip_comment_if_empty(first), more).to_json());
    }
    json.push('}');
    (true, json)
}

/// A value that is only a comment is empty.
fn strip_comment_if_empty(s: &str) -> &str {
    if s.starts_with('#') { "" } else { s }
}

fn trim_blank_tail<'a>(lines: &'a [&'a str]) -> &'a [&'a str] {
    let n = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    lines.get(..n).unwrap_or_default()
}

/// A YAML scalar for a label value: single-quoted, or double-quoted with escapes when the value
/// holds characters a single-quoted scalar cannot carry on one line.
fn yaml_scalar(value: &str) -> String {
    if value.chars().any(|c| c.is_control() || c == '\u{feff}') {
        json_string(value)
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// The `AIGC:` mapping for `record`, each line ended by `eol`.
fn label_block(record: &AigcRecord, eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"AIGC:");
    out.extend_from_slice(eol);
    for (key, value) in record.fields() {
        out.extend_from_slice(format!("  {key}: {}", yaml_scalar(value)).as_bytes());
        out.extend_from_slice(eol);
    }
    out
}

fn body_start(b: &[u8]) -> usize {
    if b.starts_with(BOM) { BOM.len() } else { 0 }
}

impl Carrier for MarkdownCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Markdown, Format::Text]
    }

    fn placement(&self) -> &'static str {
        "YAML front matter AIGC mapping (seven keys)"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let Some(fm) = front_matter(input, body_start(input)) else {
            return Ok(Vec::new());
        };
        Ok(label_blocks(input, &fm.body)
            .iter()
            .map(|block| {
                let (mapping, value) = block_value(input, &fm.body, block);
                let form = if mapping { "mapping" } else { "scalar" };
                FoundLabel::new(
                    format!("YAML front matter {} ({form})", block.key),
                    mapping && block.key == "AIGC",
                    value,
                )
            })
            .collect())
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        // Prepending UTF-8 front matter to UTF-16 text would corrupt it.
        if input.starts_with(b"\xFF\xFE") || input.starts_with(b"\xFE\xFF") {
            return Err(MetaError::unsupported(
                "text",
                "UTF-16 text (byte-order mark FF FE / FE FF); convert it to UTF-8 first",
            ));
        }
        let start = body_start(input);
        let mut out = Rewrite::new();
        let Some(fm) = front_matter(input, start) else {
            // No front matter: prepend one, using the file's line-ending style.
            let eol = lines(input, start)
                .first()
                .map_or(&b"\n"[..], |l| eol_of(input, l));
            out.keep(0..start);
            out.insert(b"---").insert(eol);
            out.insert(label_block(record, eol));
            out.insert(b"---").insert(eol);
            out.keep(start..input.len());
            return Ok(out);
        };
        let eol = eol_of(input, &fm.open);
        let blocks = label_blocks(input, &fm.body);
        let line_start = |i: usize| fm.body.get(i).map_or(fm.close.start, |l| l.start);
        // The new mapping takes the place of the first old label, or goes last.
        let mut kept_from = 0;
        for (n, block) in blocks.iter().enumerate() {
            out.keep(kept_from..line_start(block.first));
            if n == 0 {
                out.insert(label_block(record, eol));
            }
            kept_from = line_start(block.end);
        }
        if blocks.is_empty() {
            out.keep(0..fm.close.start);
            out.insert(label_block(record, eol));
            kept_from = fm.close.start;
        }
        out.keep(kept_from..input.len());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use aigc_core::Label;

    fn record() -> AigcRecord {
        let mut r = crate::test_support::record("txt-0001");
        r.reserved_code1 = "it's".into();
        r
    }

    /// The block we expect for `record()`, with `\n` line endings.
    const EXPECTED_BLOCK: &str = "AIGC:\n  Label: '1'\n  ContentProducer: '001191440300708461136T1XGW3'\n  ProduceID: 'txt-0001'\n  ReservedCode1: 'it''s'\n  ContentPropagator: '001191440300708461136T1XGW3'\n  PropagateID: 'txt-0001'\n  ReservedCode2: ''\n";

    #[test]
    fn writes_exact_front_matter_on_samples_and_rewrites_to_one_label() {
        let r = record();
        for name in ["text.md", "text.txt"] {
            let input = sample(name);
            let out = write(&MarkdownCarrier, &input, &r);
            let expected = [b"---\n", EXPECTED_BLOCK.as_bytes(), b"---\n", &input].concat();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected)
            );
            assert_one_label_as(&MarkdownCarrier, &out, &r, Form::Bare);
            let again = write(&MarkdownCarrier, &out, &r);
            assert_eq!(again, out, "{name}: relabelling is stable");
            assert_one_label_as(&MarkdownCarrier, &again, &r, Form::Bare);
        }
        let input = sample("text-frontmatter.md");
        let out = write(&MarkdownCarrier, &input, &r);
        let expected = format!(
            "---\ntitle: Sample with front matter\ntags: [demo, sample]\n{EXPECTED_BLOCK}---\n\n# Heading\n\nBody text.\n"
        );
        assert_eq!(String::from_utf8_lossy(&out), expected);
        assert_one_label_as(&MarkdownCarrier, &out, &r, Form::Bare);
        let mut r2 = r.clone();
        r2.label = Label::Suspected;
        let again = write(&MarkdownCarrier, &out, &r2);
        assert_one_label_as(&MarkdownCarrier, &again, &r2, Form::Bare);
        assert_eq!(
            String::from_utf8_lossy(&again),
            expected.replace("Label: '1'", "Label: '3'")
        );
    }

    #[test]
    fn crlf_and_bom_are_kept() {
        let input = b"\xEF\xBB\xBF---\r\ntitle: x\r\n---\r\nbody\r\n";
        let out = write(&MarkdownCarrier, input, &record());
        let block = EXPECTED_BLOCK.replace('\n', "\r\n");
        let expected = format!("\u{feff}---\r\ntitle: x\r\n{block}---\r\nbody\r\n");
        assert_eq!(String::from_utf8_lossy(&out), expected);
        assert_one_label_as(&MarkdownCarrier, &out, &record(), Form::Bare);
        let plain = b"\xEF\xBB\xBFline one\r\nline two\r\n";
        let out = write(&MarkdownCarrier, plain, &record());
        let expected = format!("\u{feff}---\r\n{block}---\r\nline one\r\nline two\r\n");
        assert_eq!(String::from_utf8_lossy(&out), expected);
        assert_one_label_as(&MarkdownCarrier, &out, &record(), Form::Bare);
    }

    #[test]
    fn scalar_and_foreign_forms_are_read_and_replaced() {
        let bare = record().to_bare_json();
        let wrapped = record().to_wrapped_json();
        let input = format!(
            "---\ntitle: a\nAIGC: '{}'\nother: b # note\naigc_legacy: {wrapped}\n\"AIGC\":\n    Label: \"2\"\n    ContentProducer: |-\n      multi\n    ProduceID: 7\nlast: c\n---\ntext\n",
            bare.replace('\'', "''")
        );
        let found = MarkdownCarrier.read(input.as_bytes()).expect("read");
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].value, bare);
        assert!(!found[0].primary && found[0].parsed.is_valid());
        assert_eq!(found[1].value, wrapped);
        assert_eq!(
            found[2].value,
            r#"{"Label":"2","ContentProducer":"multi","ProduceID":7}"#
        );
        assert!(found[2].primary && !found[2].parsed.is_valid());
        let out = write(&MarkdownCarrier, input.as_bytes(), &record());
        let expected =
            format!("---\ntitle: a\n{EXPECTED_BLOCK}other: b # note\nlast: c\n---\ntext\n");
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn python_reads_the_front_matter_we_write() {
        // An independent line-based reader (python3 is installed; PyYAML may not be).
        let script = r#"
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
assert lines[0] == "---", lines[0]
end = lines.index("---", 1)
out, inside = {}, False
for line in lines[1:end]:
    if line == "AIGC:":
        inside = True
        continue
    if inside and line.startswith("  "):
        key, _, value = line.strip().partition(": ")
        assert value[0] == "'" and value[-1] == "'", value
        out[key] = value[1:-1].replace("''", "'")
    else:
        inside = False
print(json.dumps(out, separators=(",", ":")))
"#;
        let out = write(&MarkdownCarrier, &sample("text-frontmatter.md"), &record());
        let file = temp_file("labelled.md", &out);
        let res = run("python3", &["-c", script, file.arg()]);
        assert_eq!(
            String::from_utf8_lossy(&res).trim(),
            record().to_bare_json()
        );
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let inputs = vec![
            b"---".to_vec(),
            b"---\n".to_vec(),
            b"---\nAIGC:\n".to_vec(),
            b"---\nAIGC: '\n---\n".to_vec(),
            b"---\nAIGC: \"\\u12\n---\n".to_vec(),
            b"---\nAIGC:\n  \n  Label: \xff\n---\n".to_vec(),
            b"---\n'AIGC\n: x\n---\n".to_vec(),
            b"\xEF\xBB".to_vec(),
            Vec::new(),
        ];
        assert!(matches!(
            MarkdownCarrier.write(b"\xFF\xFE-\0-\0-\0", &record()),
            Err(MetaError::Unsupported { .. })
        ));
        // Writing always succeeds and leaves exactly one primary label.
        let check = |input: &[u8]| {
            let _ = MarkdownCarrier.read(input);
            let out = write(&MarkdownCarrier, input, &record());
            let found = MarkdownCarrier.read(&out).expect("read");
            assert_eq!(
                found.iter().filter(|f| f.primary).count(),
                1,
                "{}",
                String::from_utf8_lossy(input)
            );
        };
        inputs.iter().for_each(|i| check(i));
        let labelled = write(&MarkdownCarrier, &sample("text-frontmatter.md"), &record());
        HostileInputs::new(3000, 1).for_each(&labelled, check);
    }
}
