//! The bundled label font (a Noto Sans CJK SC Bold subset, OFL 1.1; see assets/fonts/README.md).

use crate::ExplicitError;
use ab_glyph::{Font, FontRef};
use std::sync::OnceLock;

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/NotoSansSC-Bold-subset.otf");

/// The bundled font file (OpenType CFF), e.g. for external tools that draw text.
pub fn font_file_bytes() -> &'static [u8] {
    FONT_BYTES
}

/// The font labels are drawn with.
pub struct LabelFont {
    font: FontRef<'static>,
}

impl LabelFont {
    /// The parsed font.
    pub fn font(&self) -> &FontRef<'static> {
        &self.font
    }

    /// Fails when the font has no glyph for a character of `text` (whitespace aside).
    pub fn check_coverage(&self, text: &str) -> Result<(), ExplicitError> {
        let missing: Vec<char> = text
            .chars()
            .filter(|c| !c.is_whitespace() && self.font.glyph_id(*c).0 == 0)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ExplicitError::MissingGlyphs {
                text: text.to_string(),
                missing: missing.into_iter().collect(),
            })
        }
    }
}

/// The bundled font, parsed once.
pub fn label_font() -> &'static LabelFont {
    static FONT: OnceLock<LabelFont> = OnceLock::new();
    FONT.get_or_init(|| LabelFont {
        // The bytes are compiled in and checked by the tests below, so this cannot fail at run time.
        font: FontRef::try_from_slice(FONT_BYTES)
            .unwrap_or_else(|_| unreachable!("the bundled font is a valid OpenType file (tested)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_font_covers_labels_and_rejects_rare_characters() {
        let f = label_font();
        assert!(
            f.check_coverage("AI生成 人工智能合成 本内容由AI生成，请注意甄别：「」")
                .is_ok()
        );
        let e = f.check_coverage("AI生成𠀀").unwrap_err().to_string();
        assert!(e.contains('𠀀'), "{e}");
        // 龘 is not in GB2312 level 1.
        assert!(f.check_coverage("龘").is_err());
    }
}
