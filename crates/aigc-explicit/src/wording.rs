//! The wording rule of GB 45438 chapter 5: an AI element and a generation element.

use crate::ExplicitError;

/// The default label drawn on images and frames.
pub const DEFAULT_IMAGE_TEXT: &str = "AI生成";
/// The default prompt added to text.
pub const DEFAULT_TEXT_PROMPT: &str = "本内容由AI生成";
/// The badge (角标) form for text, which the rule allows to be just 「AI」.
pub const BADGE_TEXT: &str = "AI";

/// Whether `text` names the AI element (「人工智能」 or 「AI」, ASCII or full-width, any case).
pub fn has_ai_element(text: &str) -> bool {
    let folded: String = text
        .chars()
        .map(|c| match c {
            // Full-width Latin letters fold to ASCII so 「ＡＩ」 counts as 「AI」.
            '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
                char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
            }
            _ => c,
        })
        .collect::<String>()
        .to_ascii_uppercase();
    folded.contains("人工智能") || folded.contains("AI")
}

/// Whether `text` names the generation element (「生成」 or 「合成」).
pub fn has_generation_element(text: &str) -> bool {
    text.contains("生成") || text.contains("合成")
}

/// Whether `text` meets the wording rule for a prompt or an image label.
pub fn meets_wording_rule(text: &str) -> bool {
    has_ai_element(text) && has_generation_element(text)
}

/// Checks label text against the wording rule, with an error that says what is missing.
pub fn validate_label_text(text: &str) -> Result<(), ExplicitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ExplicitError::Wording {
            text: text.to_string(),
            detail: "the label text is empty".into(),
        });
    }
    if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
        return Err(ExplicitError::Wording {
            text: text.to_string(),
            detail: format!(
                "the label text contains the control character U+{:04X}",
                c as u32
            ),
        });
    }
    let mut missing = Vec::new();
    if !has_ai_element(trimmed) {
        missing.push("「人工智能」 or 「AI」");
    }
    if !has_generation_element(trimmed) {
        missing.push("「生成」 or 「合成」");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ExplicitError::Wording {
            text: text.to_string(),
            detail: format!(
                "GB 45438 chapter 5 requires {} (e.g. 「AI生成」, 「人工智能合成」)",
                missing.join(" and ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_wordings() {
        for ok in [
            "AI生成",
            "人工智能生成",
            "AI合成",
            "本内容由人工智能合成",
            "由ＡＩ生成",
            "ai生成",
        ] {
            assert!(validate_label_text(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejected_wordings_say_what_is_missing() {
        let e = validate_label_text("由AI提供").unwrap_err().to_string();
        assert!(e.contains("生成"), "{e}");
        assert!(!e.contains("「人工智能」 or"), "{e}");
        let e = validate_label_text("机器生成").unwrap_err().to_string();
        assert!(e.contains("「人工智能」 or 「AI」"), "{e}");
        assert!(validate_label_text("").is_err());
        assert!(validate_label_text("   ").is_err());
        assert!(validate_label_text("智能生成").is_err());
        assert!(validate_label_text("AI\u{7}生成").is_err());
    }
}
