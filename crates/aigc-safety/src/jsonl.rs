//! The JSON-lines reading shared by the test banks and the labelled training data.

/// The JSON object of each content line of `text`, with its 1-based line number; blank lines,
/// `//` comments and a leading byte-order mark are skipped. A line that is not JSON gives the
/// parser's message.
pub(crate) fn objects(
    text: &str,
) -> impl Iterator<Item = (usize, Result<serde_json::Value, String>)> {
    text.lines().enumerate().filter_map(|(idx, raw)| {
        let l = raw.trim().trim_start_matches('\u{FEFF}');
        if l.is_empty() || l.starts_with("//") {
            return None;
        }
        let parsed = serde_json::from_str(l).map_err(|e| format!("not a JSON object: {e}"));
        Some((idx + 1, parsed))
    })
}

#[cfg(test)]
mod tests {
    use super::objects;

    #[test]
    fn skips_blank_comment_and_bom_and_numbers_lines_from_one() {
        let text = "\u{FEFF}{\"a\":1}\n\n// note\n  {\"b\":2}\nnot json\n";
        let got: Vec<_> = objects(text).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 1);
        assert_eq!(
            got[0].1.as_ref().ok().and_then(|v| v["a"].as_i64()),
            Some(1)
        );
        assert_eq!(got[1].0, 4);
        assert_eq!(
            got[1].1.as_ref().ok().and_then(|v| v["b"].as_i64()),
            Some(2)
        );
        assert_eq!(got[2].0, 5);
        assert!(
            got[2]
                .1
                .as_ref()
                .is_err_and(|e| e.starts_with("not a JSON object"))
        );
    }
}
