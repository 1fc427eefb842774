//! Explicit labels in text: a prompt (or the 「AI」 badge) at the start, end and/or middle of
//! plain text, Markdown and HTML; a labeller for streamed chunks; and a finder for prompts.

use crate::ExplicitError;
use crate::wording::{
    BADGE_TEXT, DEFAULT_TEXT_PROMPT, has_ai_element, meets_wording_rule, validate_label_text,
};
use aigc_core::Format;
use serde::Serialize;

/// Where the prompt goes in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextPosition {
    /// Before the content (after Markdown front matter / at the top of the HTML body).
    Start,
    /// After the content.
    End,
    /// Both before and after.
    Both,
    /// At the paragraph boundary nearest the middle.
    Middle,
}

impl TextPosition {
    /// Parses a CLI name.
    pub fn parse(name: &str) -> Result<Self, ExplicitError> {
        Ok(match name {
            "start" => TextPosition::Start,
            "end" => TextPosition::End,
            "both" => TextPosition::Both,
            "middle" => TextPosition::Middle,
            other => {
                return Err(ExplicitError::BadOption(format!(
                    "unknown text position {other:?}: use start, end, both or middle"
                )));
            }
        })
    }
}

/// The prompt to add to text.
#[derive(Debug, Clone)]
pub struct TextPrompt {
    text: String,
    badge: bool,
    /// Where it goes.
    pub position: TextPosition,
}

impl TextPrompt {
    /// A prompt `text` (checked against the wording rule) at `position`.
    pub fn new(text: &str, position: TextPosition) -> Result<Self, ExplicitError> {
        validate_label_text(text)?;
        Ok(TextPrompt {
            text: text.trim().to_string(),
            badge: false,
            position,
        })
    }

    /// The 「AI」 badge (角标) form, which the rule allows without 生成/合成.
    pub fn badge(position: TextPosition) -> Self {
        TextPrompt {
            text: BADGE_TEXT.to_string(),
            badge: true,
            position,
        }
    }

    /// The default 「本内容由AI生成」 prompt at `position`.
    pub fn default_at(position: TextPosition) -> Self {
        TextPrompt {
            text: DEFAULT_TEXT_PROMPT.to_string(),
            badge: false,
            position,
        }
    }

    /// The words of the prompt.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The prompt as a line of plain text.
    pub fn plain_line(&self) -> String {
        if self.badge {
            format!("【{}】", self.text)
        } else {
            self.text.clone()
        }
    }
}

fn newline_of(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Byte offset of the paragraph (else line) boundary in `body` nearest its middle, if any.
fn middle_boundary(body: &str) -> Option<usize> {
    let mid = body.len() / 2;
    let nearest = |pattern: &str| {
        body.match_indices(pattern)
            .map(|(i, p)| i + p.len())
            .filter(|&i| i > 0 && i < body.len())
            .min_by_key(|&i| i.abs_diff(mid))
    };
    nearest("\n\n")
        .or_else(|| nearest("\r\n\r\n"))
        .or_else(|| nearest("\n"))
}

/// Inserts `line` (a block of its own) into `body` at the start, end and/or middle.
fn insert_block(body: &str, line: &str, position: TextPosition) -> String {
    let nl = newline_of(body);
    let start = |s: &str| format!("{line}{nl}{nl}{s}");
    let end = |s: &str| {
        let mut out = s.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(nl);
        }
        if !out.is_empty() {
            out.push_str(nl);
        }
        out.push_str(line);
        out.push_str(nl);
        out
    };
    match position {
        TextPosition::Start => start(body),
        TextPosition::End => end(body),
        TextPosition::Both => end(&start(body)),
        TextPosition::Middle => match middle_boundary(body) {
            Some(at) => {
                let before = &body[..at];
                let gap = if before.ends_with(&format!("{nl}{nl}")) {
                    ""
                } else {
                    nl
                };
                format!("{before}{gap}{line}{nl}{nl}{}", &body[at..])
            }
            None => end(body),
        },
    }
}

/// Adds the prompt to plain text.
pub fn label_plain(text: &str, prompt: &TextPrompt) -> String {
    insert_block(text, &prompt.plain_line(), prompt.position)
}

/// Length of YAML front matter at the start of `text` (including its closing line), if any.
fn front_matter_len(text: &str) -> Option<usize> {
    let nl = if text.starts_with("---\r\n") {
        "\r\n"
    } else if text.starts_with("---\n") {
        "\n"
    } else {
        return None;
    };
    let body_start = 3 + nl.len();
    for close in [format!("{nl}---{nl}"), format!("{nl}...{nl}")] {
        if let Some(i) = text[body_start - nl.len()..].find(&close) {
            return Some(body_start - nl.len() + i + close.len());
        }
    }
    None
}

/// Adds the prompt to Markdown as an emphasised paragraph, after any front matter.
pub fn label_markdown(text: &str, prompt: &TextPrompt) -> String {
    let line = format!("*{}*", prompt.plain_line().replace('*', "\\*"));
    let split = front_matter_len(text).unwrap_or(0);
    let (head, body) = text.split_at(split);
    format!("{head}{}", insert_block(body, &line, prompt.position))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Byte offset of the first case-insensitive match of ASCII `needle` in `hay`.
fn find_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    (0..h.len().saturating_sub(n.len() - 1)).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

fn rfind_ascii_ci(hay: &str, needle: &str) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    (0..h.len().saturating_sub(n.len() - 1))
        .rev()
        .find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// The class of the visible notice element in HTML.
pub const HTML_NOTICE_CLASS: &str = "aigc-notice";

/// Adds a visible `<p class="aigc-notice">` element inside the body of an HTML document.
pub fn label_html(html: &str, prompt: &TextPrompt) -> String {
    let nl = newline_of(html);
    let element = format!(
        "<p class=\"{HTML_NOTICE_CLASS}\" role=\"note\">{}</p>",
        html_escape(&prompt.plain_line())
    );
    // After the end of the <body ...> tag, or None.
    let body_close = rfind_ascii_ci(html, "</body")
        .or_else(|| rfind_ascii_ci(html, "</html"))
        .unwrap_or(html.len());
    // A body that opens after the last close is malformed: then only the end is used.
    let body_open = find_ascii_ci(html, "<body")
        .and_then(|i| html[i..].find('>').map(|j| i + j + 1))
        .filter(|&o| o <= body_close);
    let at_start = |s: &str, close: usize| -> (String, usize) {
        match body_open {
            Some(i) => {
                let ins = format!("{nl}{element}");
                (format!("{}{ins}{}", &s[..i], &s[i..]), close + ins.len())
            }
            None => (s.to_string(), close),
        }
    };
    let at_end = |s: &str, close: usize| format!("{}{element}{nl}{}", &s[..close], &s[close..]);
    match prompt.position {
        TextPosition::Start if body_open.is_some() => at_start(html, body_close).0,
        TextPosition::Start | TextPosition::End => at_end(html, body_close),
        TextPosition::Both => {
            let (s, close) = at_start(html, body_close);
            at_end(&s, close)
        }
        TextPosition::Middle => {
            let from = body_open.unwrap_or(0);
            let mid = from + (body_close.saturating_sub(from)) / 2;
            let after_p = html[from..body_close]
                .match_indices("</p>")
                .map(|(i, p)| from + i + p.len())
                .min_by_key(|&i| i.abs_diff(mid));
            match after_p {
                Some(i) => format!("{}{nl}{element}{}", &html[..i], &html[i..]),
                None => at_end(html, body_close),
            }
        }
    }
}

/// Labels a text file's bytes (UTF-8, BOM kept) by format.
pub fn label_text_file(
    bytes: &[u8],
    format: Format,
    prompt: &TextPrompt,
) -> Result<Vec<u8>, ExplicitError> {
    let (bom, rest) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(r) => (&bytes[..3], r),
        None => (&bytes[..0], bytes),
    };
    let text = std::str::from_utf8(rest).map_err(|e| {
        ExplicitError::Unsupported(format!(
            "the text is not UTF-8 ({e}); only UTF-8 text gets a prompt"
        ))
    })?;
    let labelled = match format {
        Format::Text => label_plain(text, prompt),
        Format::Markdown => label_markdown(text, prompt),
        Format::Html => label_html(text, prompt),
        other => {
            return Err(ExplicitError::Unsupported(format!(
                "{other} is not a text format"
            )));
        }
    };
    let mut out = bom.to_vec();
    out.extend_from_slice(labelled.as_bytes());
    Ok(out)
}

/// Whether the prompt goes before or after streamed content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPrompt {
    /// Emit the prompt before the first chunk.
    First,
    /// Emit the prompt after the last chunk.
    Last,
}

/// Labels a stream of generated chunks (for token-streaming backends): the prompt is emitted
/// as its own chunk first or last, separated by a blank line; chunks pass through unchanged.
pub fn label_stream<I>(
    chunks: I,
    prompt: &TextPrompt,
    at: StreamPrompt,
) -> impl Iterator<Item = String>
where
    I: IntoIterator<Item = String>,
{
    let line = prompt.plain_line();
    let (head, tail) = match at {
        StreamPrompt::First => (Some(format!("{line}\n\n")), None),
        StreamPrompt::Last => (None, Some(format!("\n\n{line}\n"))),
    };
    head.into_iter().chain(chunks).chain(tail)
}

/// A prompt found in text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoundPrompt {
    /// The line holding it (trimmed, markup left as is).
    pub text: String,
    /// 1-based line number.
    pub line: usize,
    /// Where in the document: start, middle or end (first/last fifth of the lines).
    pub location: &'static str,
    /// Whether it is the 「AI」 badge form.
    pub badge: bool,
    /// Whether the wording meets GB 45438 chapter 5 (badges always do).
    pub wording_ok: bool,
}

/// Finds explicit prompts in text, Markdown or HTML: short lines naming AI/人工智能 together with
/// 生成/合成 (or 「AI」 badges), and our HTML notice element.
pub fn find_prompts(text: &str) -> Vec<FoundPrompt> {
    let lines: Vec<&str> = text.lines().collect();
    // Front matter is metadata, not a visible prompt.
    let skip = front_matter_len(text)
        .map(|n| text[..n].lines().count())
        .unwrap_or(0);
    let total = lines.len().saturating_sub(skip).max(1);
    let mut found = Vec::new();
    for (i, raw) in lines.iter().enumerate().skip(skip) {
        let line = raw.trim();
        // Our HTML notice: judge the element's own text, not the rest of the line.
        let visible = match line.find(HTML_NOTICE_CLASS) {
            Some(at) => {
                let inner = line[at..]
                    .find('>')
                    .map(|j| at + j + 1)
                    .unwrap_or(line.len());
                let end = line[inner..]
                    .find('<')
                    .map(|j| inner + j)
                    .unwrap_or(line.len());
                line[inner..end].to_string()
            }
            None => strip_markup(line),
        };
        let is_badge = matches!(
            visible.trim_matches(|c: char| "*_ ".contains(c)),
            "【AI】" | "[AI]" | "（AI）" | "(AI)"
        );
        let notice = line.contains(HTML_NOTICE_CLASS);
        let short = visible.chars().count();
        // A short "本内容由AI…" / "由AI…" line is a prompt attempt even when its wording fails.
        let attempt = short <= 30
            && has_ai_element(&visible)
            && (visible.contains("本内容") || visible.contains("由"));
        let prompt_like = short <= 120 && (meets_wording_rule(&visible) || attempt);
        if !(is_badge || notice || prompt_like) {
            continue;
        }
        let k = i - skip;
        let location = if k * 5 < total {
            "start"
        } else if (k + 1) * 5 > total * 4 {
            "end"
        } else {
            "middle"
        };
        found.push(FoundPrompt {
            text: line.to_string(),
            line: i + 1,
            location,
            badge: is_badge,
            wording_ok: is_badge || meets_wording_rule(&visible),
        });
    }
    found
}

/// `line` without HTML tags.
fn strip_markup(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_tag = false;
    for c in line.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_start_end_both_middle() {
        let p = |pos| TextPrompt::default_at(pos);
        let text = "第一段。\n\n第二段。\n\n第三段。\n";
        assert_eq!(
            label_plain(text, &p(TextPosition::Start)),
            "本内容由AI生成\n\n第一段。\n\n第二段。\n\n第三段。\n"
        );
        assert_eq!(
            label_plain(text, &p(TextPosition::End)),
            "第一段。\n\n第二段。\n\n第三段。\n\n本内容由AI生成\n"
        );
        let both = label_plain(text, &p(TextPosition::Both));
        assert!(both.starts_with("本内容由AI生成\n\n") && both.ends_with("\n\n本内容由AI生成\n"));
        let mid = label_plain(text, &p(TextPosition::Middle));
        assert_eq!(mid, "第一段。\n\n本内容由AI生成\n\n第二段。\n\n第三段。\n");
        // CRLF text keeps CRLF; no trailing newline gets one.
        assert_eq!(
            label_plain("a\r\nb", &p(TextPosition::End)),
            "a\r\nb\r\n\r\n本内容由AI生成\r\n"
        );
        assert_eq!(label_plain("", &p(TextPosition::End)), "本内容由AI生成\n");
        let badge = label_plain("x\n", &TextPrompt::badge(TextPosition::Start));
        assert_eq!(badge, "【AI】\n\nx\n");
    }

    #[test]
    fn markdown_keeps_front_matter_first() {
        let md = "---\ntitle: t\n---\n# 标题\n\n正文\n";
        let out = label_markdown(md, &TextPrompt::default_at(TextPosition::Both));
        assert!(
            out.starts_with("---\ntitle: t\n---\n*本内容由AI生成*\n\n# 标题"),
            "{out}"
        );
        assert!(out.ends_with("正文\n\n*本内容由AI生成*\n"), "{out}");
    }

    #[test]
    fn html_gets_a_notice_element_in_the_body() {
        let html = "<!DOCTYPE html>\n<html><head><title>t</title></head>\n<BODY class=\"x\">\n<p>一</p>\n<p>二</p>\n</BODY></html>\n";
        let end = label_html(html, &TextPrompt::default_at(TextPosition::End));
        assert!(
            end.contains(
                "<p>二</p>\n<p class=\"aigc-notice\" role=\"note\">本内容由AI生成</p>\n</BODY>"
            ),
            "{end}"
        );
        let start = label_html(html, &TextPrompt::default_at(TextPosition::Start));
        assert!(
            start.contains("<BODY class=\"x\">\n<p class=\"aigc-notice\""),
            "{start}"
        );
        let both = label_html(html, &TextPrompt::default_at(TextPosition::Both));
        assert_eq!(both.matches("aigc-notice").count(), 2);
        let mid = label_html(html, &TextPrompt::default_at(TextPosition::Middle));
        assert!(mid.contains("<p>一</p>\n<p class=\"aigc-notice\""), "{mid}");
        let escaped = label_html(
            "<html><body></body></html>",
            &TextPrompt::new("<b>AI生成</b>", TextPosition::End).unwrap(),
        );
        assert!(escaped.contains("&lt;b&gt;AI生成&lt;/b&gt;"), "{escaped}");
        // Malformed or truncated markup never panics, whatever the position.
        let odd = "</body>生成<body x='>'>正文</html><body";
        for pos in [
            TextPosition::Start,
            TextPosition::End,
            TextPosition::Both,
            TextPosition::Middle,
        ] {
            for cut in (0..=odd.len()).filter(|&c| odd.is_char_boundary(c)) {
                let _ = label_html(&odd[..cut], &TextPrompt::default_at(pos));
            }
        }
    }

    #[test]
    fn prompts_must_meet_the_wording_rule() {
        assert!(TextPrompt::new("由AI提供", TextPosition::End).is_err());
        assert!(TextPrompt::new("人工智能合成", TextPosition::End).is_ok());
    }

    #[test]
    fn streams_get_the_prompt_first_or_last() {
        let chunks = || vec!["你".to_string(), "好".to_string()];
        let p = TextPrompt::default_at(TextPosition::End);
        let first: String = label_stream(chunks(), &p, StreamPrompt::First).collect();
        assert_eq!(first, "本内容由AI生成\n\n你好");
        let last: Vec<String> = label_stream(chunks(), &p, StreamPrompt::Last).collect();
        assert_eq!(last, vec!["你", "好", "\n\n本内容由AI生成\n"]);
    }

    #[test]
    fn finds_prompts_and_judges_their_wording() {
        let text = label_markdown(
            "---\nAIGC:\n  Label: '1'\n---\n正文一\n\n正文二\n\n正文三\n\n正文四\n\n正文五\n",
            &TextPrompt::default_at(TextPosition::Both),
        );
        let found = find_prompts(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].location, "start");
        assert_eq!(found[1].location, "end");
        assert!(found.iter().all(|f| f.wording_ok && !f.badge));
        let html = label_html(
            "<html><body><p>x</p></body></html>",
            &TextPrompt::badge(TextPosition::End),
        );
        let found = find_prompts(&html);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].badge && found[0].wording_ok);
        assert!(find_prompts("普通的文本，没有标识。\n").is_empty());
        let weak = find_prompts("本内容由AI提供\n<p class=\"aigc-notice\">由AI提供</p>\n");
        assert_eq!(weak.len(), 2);
        assert!(weak.iter().all(|w| !w.wording_ok));
        assert!(find_prompts("# AI 的历史\n").is_empty());
    }
}
