//! Text normalisation with an offset map back to the original bytes.
//!
//! One table-driven pass folds every character: NFKC compatibility forms (full-width → half-width,
//! circled and parenthesised digits, ligatures), lower case, traditional → simplified (OpenCC's
//! character table), 「㈠」「㊀」 → digits, and drops *skip characters* (everything that is not a
//! letter or a digit: punctuation, spaces, zero-width and other format characters, emoji,
//! symbols). Chinese numerals (一二三) are kept as they are.
//!
//! Each output character remembers the original character it came from, so a match in the
//! normalised text maps back to an exact byte span of the original (see [`Normalized::span`]).

use std::collections::HashMap;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

/// Table value: drop the character.
const SKIP: u16 = 0xFFFF;
/// Table value: the character folds to several characters (look up the expansion map).
const EXPAND: u16 = 0xFFFE;

/// The fold table for the Basic Multilingual Plane, built once.
struct FoldTable {
    bmp: Box<[u16]>,
    expansions: HashMap<u16, Box<str>>,
}

fn fold_table() -> &'static FoldTable {
    static TABLE: OnceLock<FoldTable> = OnceLock::new();
    TABLE.get_or_init(build_fold_table)
}

/// Traditional → simplified for single characters, from OpenCC's t2s conversion.
fn t2s_table() -> HashMap<char, char> {
    let ranges = [(0x3400u32, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)];
    let chars: Vec<char> = ranges
        .iter()
        .flat_map(|&(a, b)| (a..=b).filter_map(char::from_u32))
        .collect();
    let mut map = HashMap::new();
    let Ok(cc) = ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::T2s)
    else {
        // The dictionaries are compiled into the crate; failing to open them would be a build
        // defect. Without them we still normalise everything else.
        return map;
    };
    // One conversion call over newline-separated characters: phrases cannot span a newline, so
    // every line is the character-level conversion of one character.
    let joined: String = chars.iter().flat_map(|&c| [c, '\n']).collect();
    let converted = cc.convert(&joined);
    let lines: Vec<&str> = converted.split('\n').collect();
    if lines.len() < chars.len() {
        return map;
    }
    for (&c, line) in chars.iter().zip(lines) {
        let mut it = line.chars();
        if let (Some(s), None) = (it.next(), it.next())
            && s != c
        {
            map.insert(c, s);
        }
    }
    map
}

/// The slow, exact fold of one character (used to build the table and for non-BMP input).
fn fold_char_slow(c: char, t2s: &HashMap<char, char>, out: &mut String) {
    // Enclosed ideographic numerals 「㈠」…「㈩」 and 「㊀」…「㊉」 are digit styles.
    let cp = c as u32;
    for base in [0x3220u32, 0x3280] {
        if (base..base + 10).contains(&cp) {
            out.push_str(&(cp - base + 1).to_string());
            return;
        }
    }
    for k in c.nfkc() {
        if !k.is_alphanumeric() {
            continue;
        }
        for l in k.to_lowercase() {
            out.push(*t2s.get(&l).unwrap_or(&l));
        }
    }
}

fn build_fold_table() -> FoldTable {
    let t2s = t2s_table();
    let mut bmp = vec![SKIP; 0x10000].into_boxed_slice();
    let mut expansions = HashMap::new();
    let mut buf = String::new();
    for (cp, slot) in (0u32..0x10000).zip(bmp.iter_mut()) {
        let Some(c) = char::from_u32(cp) else {
            continue; // surrogates never occur in a &str
        };
        buf.clear();
        fold_char_slow(c, &t2s, &mut buf);
        let mut it = buf.chars();
        *slot = match (it.next(), it.next()) {
            (None, _) => SKIP,
            (Some(f), None) if (f as u32) < u32::from(EXPAND) => f as u32 as u16,
            _ => {
                expansions.insert(cp as u16, Box::from(buf.as_str()));
                EXPAND
            }
        };
    }
    FoldTable { bmp, expansions }
}

/// How one character of the Basic Multilingual Plane folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BmpFold {
    /// A skip character: it folds to nothing.
    Skip,
    /// It folds to exactly one character.
    One(char),
    /// It folds to several characters (「⑩」 → `10`).
    Several,
}

/// How the BMP character `cp` folds (the entry of the fold table), for tables that fuse the
/// fold with a later lookup.
pub(crate) fn bmp_fold(cp: u16) -> BmpFold {
    match fold_table().bmp[usize::from(cp)] {
        SKIP => BmpFold::Skip,
        EXPAND => BmpFold::Several,
        v => char::from_u32(u32::from(v)).map_or(BmpFold::Skip, BmpFold::One),
    }
}

/// Forces the one-time table build (about a tenth of a second), e.g. before serving requests.
pub fn warm_up() {
    let _ = fold_table();
}

/// ASCII fold: letters lower-cased, digits kept, everything else skipped (0).
pub(crate) const ASCII_FOLD: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() || b.is_ascii_lowercase() {
            b
        } else if b.is_ascii_uppercase() {
            b + 32
        } else {
            0
        };
        i += 1;
    }
    t
};

/// A normalised copy of a text plus the map back to the original.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    /// The normalised text.
    pub text: String,
    /// Breakpoints `(normalised byte, original byte)`: from a breakpoint on, each normalised
    /// byte advances the original by one byte, until the next breakpoint.
    breaks: Vec<(usize, usize)>,
    /// `original position - normalised position` of the current run.
    delta: isize,
}

impl Normalized {
    /// An empty buffer (reuse it with [`normalize_into`] to avoid allocations).
    pub fn new() -> Self {
        Self::default()
    }

    fn reset(&mut self, capacity: usize) {
        self.text.clear();
        self.text.reserve(capacity);
        self.breaks.clear();
        self.breaks.push((0, 0));
        self.delta = 0;
    }

    /// Records that the next output character comes from original byte `orig`.
    #[inline(always)]
    fn mark(&mut self, orig: usize, force: bool) {
        let n = self.text.len();
        let d = orig as isize - n as isize;
        if force || d != self.delta {
            self.breaks.push((n, orig));
            self.delta = d;
        }
    }

    /// The original byte where the normalised character starting at byte `n` came from.
    fn orig_start(&self, n: usize) -> usize {
        let i = self.breaks.partition_point(|b| b.0 <= n).saturating_sub(1);
        match self.breaks.get(i) {
            Some(&(bn, bo)) => bo + (n - bn),
            None => n,
        }
    }

    /// Maps the normalised byte range `start..end` (on character boundaries) to the byte span
    /// of the original `original` text that produced it, skip characters inside included.
    pub fn span(&self, original: &str, start: usize, end: usize) -> (usize, usize) {
        if end <= start {
            let s = self.orig_start(start).min(original.len());
            return (s, s);
        }
        let o_start = self.orig_start(start);
        // The last normalised character: walk back over UTF-8 continuation bytes.
        let bytes = self.text.as_bytes();
        let mut last = end - 1;
        while last > start && bytes.get(last).is_some_and(|b| b & 0xC0 == 0x80) {
            last -= 1;
        }
        let o_last = self.orig_start(last);
        let o_end = original
            .get(o_last..)
            .and_then(|s| s.chars().next())
            .map_or(original.len(), |c| o_last + c.len_utf8());
        (o_start.min(original.len()), o_end.min(original.len()))
    }
}

/// Normalises `text` into a new buffer.
pub fn normalize(text: &str) -> Normalized {
    let mut n = Normalized::new();
    normalize_into(text, &mut n);
    n
}

/// Copies the pending run `run..i` of characters that fold to themselves in one go.
#[inline(always)]
fn flush_run(out: &mut Normalized, text: &str, run: usize, i: usize) {
    if run < i
        && let Some(slice) = text.get(run..i)
    {
        out.mark(run, false);
        out.text.push_str(slice);
    }
}

/// Decodes the multi-byte UTF-8 character at `i` (the input is a `&str`, so it is valid):
/// `(code point, width)`.
#[inline(always)]
pub(crate) fn decode_at(bytes: &[u8], i: usize) -> (u32, usize) {
    let at = |k: usize| u32::from(bytes.get(i + k).copied().unwrap_or(0x80) & 0x3F);
    let b = u32::from(bytes.get(i).copied().unwrap_or(0));
    if b >= 0xF0 {
        (((b & 0x07) << 18) | (at(1) << 12) | (at(2) << 6) | at(3), 4)
    } else if b >= 0xE0 {
        (((b & 0x0F) << 12) | (at(1) << 6) | at(2), 3)
    } else {
        (((b & 0x1F) << 6) | at(1), 2)
    }
}

/// Normalises `text` into `out`, reusing its allocations.
///
/// Fast path: most characters fold to themselves (Chinese characters, lower-case ASCII letters,
/// digits). Such characters are not copied one by one: the loop only looks them up and extends
/// the current *run*, which is copied with one `push_str` (and one offset-map check) when a
/// character that changes or is dropped ends it.
pub fn normalize_into(text: &str, out: &mut Normalized) {
    let table = fold_table();
    out.reset(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut run = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            let f = ASCII_FOLD[usize::from(b)];
            if f == b && f != 0 {
                i += 1;
                continue;
            }
            flush_run(out, text, run, i);
            if f != 0 {
                out.mark(i, false);
                out.text.push(char::from(f));
            }
            i += 1;
            run = i;
            continue;
        }
        let (cp, width) = decode_at(bytes, i);
        if cp < 0x10000 {
            let v = table.bmp[cp as usize];
            if u32::from(v) == cp && v < EXPAND {
                i += width;
                continue;
            }
            flush_run(out, text, run, i);
            if v == SKIP {
            } else if v == EXPAND {
                if let Some(exp) = table.expansions.get(&(cp as u16)) {
                    for e in exp.chars() {
                        out.mark(i, true);
                        out.text.push(e);
                    }
                    // The character after an expansion starts a new run.
                    out.delta = isize::MIN;
                }
            } else if let Some(f) = char::from_u32(u32::from(v)) {
                out.mark(i, false);
                out.text.push(f);
            }
        } else {
            flush_run(out, text, run, i);
            if let Some(c) = char::from_u32(cp).filter(|c| c.is_alphanumeric()) {
                // Outside the BMP (rare ideographs, mathematical letters): NFKC + case fold on
                // the fly; emoji and other symbols are skipped.
                let mut first = true;
                for k in c.nfkc().filter(|k| k.is_alphanumeric()) {
                    for l in k.to_lowercase() {
                        out.mark(i, !first);
                        first = false;
                        out.text.push(l);
                    }
                }
                if !first {
                    out.delta = isize::MIN;
                }
            }
        }
        i += width;
        run = i;
    }
    flush_run(out, text, run, bytes.len());
}

/// Calls `f(start, end, c)` for every character `c` of the normalised text, in order, where
/// `start..end` is the byte span of the original character it comes from (an expansion such as
/// 「⑩」 → `1`, `0` makes several calls with the same span; skip characters make none).
///
/// This is the same fold as [`normalize_into`] without building the normalised string: the
/// lexicon matcher and the classifier consume the characters directly.
#[inline(always)]
pub fn for_each_folded(text: &str, mut f: impl FnMut(usize, usize, char)) {
    let table = fold_table();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            let folded = ASCII_FOLD[usize::from(b)];
            if folded != 0 {
                f(i, i + 1, char::from(folded));
            }
            i += 1;
            continue;
        }
        let (cp, width) = decode_at(bytes, i);
        let end = i + width;
        if cp < 0x10000 {
            let v = table.bmp[cp as usize];
            if v < EXPAND {
                if let Some(c) = char::from_u32(u32::from(v)) {
                    f(i, end, c);
                }
            } else if v == EXPAND
                && let Some(exp) = table.expansions.get(&(cp as u16))
            {
                for c in exp.chars() {
                    f(i, end, c);
                }
            }
        } else if let Some(c) = char::from_u32(cp).filter(|c| c.is_alphanumeric()) {
            for k in c.nfkc().filter(|k| k.is_alphanumeric()) {
                for l in k.to_lowercase() {
                    f(i, end, l);
                }
            }
        }
        i = end;
    }
}

/// Whether `c` is a skip character (it folds to nothing).
#[inline]
pub fn is_skip(c: char) -> bool {
    let cp = c as u32;
    if cp < 0x10000 {
        fold_table().bmp[cp as usize] == SKIP
    } else {
        !c.is_alphanumeric()
    }
}

/// Appends the normalised characters of `text` (as code points) to `out`.
pub fn fold_chars_into(text: &str, out: &mut Vec<u32>) {
    for_each_folded(text, |_, _, c| out.push(u32::from(c)));
}

/// Byte length of the normalised form of `text`.
pub fn folded_len(text: &str) -> usize {
    let mut n = 0;
    for_each_folded(text, |_, _, c| n += c.len_utf8());
    n
}

/// Normalises a lexicon term or allow-list phrase (same fold as the text).
pub fn normalize_term(term: &str) -> String {
    normalize(term).text
}

/// Whether a (normalised) character is a Han ideograph.
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

/// A lighter fold for PII scanning: full-width ASCII → ASCII and the ideographic space → space,
/// zero-width and other format characters dropped; everything else kept (punctuation matters
/// for e-mail addresses, IP addresses and separators).
pub fn normalize_for_pii(text: &str) -> Normalized {
    let mut out = Normalized::new();
    out.reset(text.len());
    for (i, c) in text.char_indices() {
        let cp = c as u32;
        let f = match cp {
            0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0),
            0x3000 => Some(' '),
            0x200B..=0x200F | 0x2060..=0x2064 | 0xFEFF | 0x00AD => None,
            _ => Some(c),
        };
        if let Some(f) = f {
            out.mark(i, false);
            out.text.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn folds_width_case_traditional_digits_and_skips() {
        assert_eq!(normalize_term("ＡＩ生成"), "ai生成");
        assert_eq!(normalize_term("這是內容，違禁詞！"), "这是内容违禁词");
        assert_eq!(normalize_term("①⑴㈠㊀⒈"), "11111");
        assert_eq!(normalize_term("⑩号"), "10号");
        assert_eq!(
            normalize_term("一二三"),
            "一二三",
            "Chinese numerals are kept"
        );
        assert_eq!(normalize_term("敏\u{200B}@感 ✨😀\u{FE0F}词"), "敏感词");
        assert_eq!(normalize_term("Hello, World!"), "helloworld");
        assert_eq!(normalize_term(""), "");
        assert_eq!(normalize_term("@#￥%……&*"), "");
    }

    #[test]
    fn spans_point_into_the_original() {
        let original = "前缀 敏@感\u{200B}词 ＡＢ⑩尾";
        let n = normalize(original);
        assert_eq!(n.text, "前缀敏感词ab10尾");
        let s = n.text.find("敏感词").unwrap_or(0);
        let (a, b) = n.span(original, s, s + "敏感词".len());
        assert_eq!(&original[a..b], "敏@感\u{200B}词");
        let s = n.text.find("ab").unwrap_or(0);
        let (a, b) = n.span(original, s, s + 2);
        assert_eq!(&original[a..b], "ＡＢ");
        let s = n.text.find('0').unwrap_or(0);
        let (a, b) = n.span(original, s, s + 1);
        assert_eq!(
            &original[a..b],
            "⑩",
            "both digits of an expansion map to its source"
        );
        let s = n.text.find('尾').unwrap_or(0);
        let (a, b) = n.span(original, s, s + '尾'.len_utf8());
        assert_eq!(&original[a..b], "尾");
    }

    /// Property-style: random skip characters, width and script changes inserted around a
    /// term; the mapped span always starts at the term's first character and ends at its last,
    /// and every normalised character maps to a character boundary of the original.
    #[test]
    fn spans_survive_random_insertions() {
        let noise = [
            "@", " ", "\u{200B}", "\u{200D}", "😀", "✨", "，", "。", "·", "\u{FE0F}", "-", "　",
            "*", "\u{3000}", "【", "】",
        ];
        let mut rng = StdRng::seed_from_u64(0x5AFE);
        for _ in 0..500 {
            let term: Vec<char> = "禁止词语".chars().collect();
            let mut original = String::new();
            for _ in 0..rng.gen_range(0..5) {
                original.push_str(["文本", "abc", "Ｘ", "②", "說"][rng.gen_range(0..5)]);
            }
            let prefix_len = original.len();
            let mut term_start = None;
            for (k, c) in term.iter().enumerate() {
                if k == 0 {
                    term_start = Some(original.len());
                }
                original.push(*c);
                if k + 1 < term.len() {
                    for _ in 0..rng.gen_range(0..4) {
                        original.push_str(noise[rng.gen_range(0..noise.len())]);
                    }
                }
            }
            let term_end = original.len();
            original.push_str(noise[rng.gen_range(0..noise.len())]);
            original.push_str("後文");
            let n = normalize(&original);
            let pos = n
                .text
                .find("禁止词语")
                .unwrap_or_else(|| panic!("{original:?} → {}", n.text));
            let (a, b) = n.span(&original, pos, pos + "禁止词语".len());
            assert_eq!((Some(a), b), (term_start, term_end), "{original:?}");
            assert!(a >= prefix_len);
            for (k, c) in n.text.char_indices() {
                let (a, b) = n.span(&original, k, k + c.len_utf8());
                assert!(original.is_char_boundary(a) && original.is_char_boundary(b));
                assert!(b > a, "{original:?} char {c}");
            }
        }
    }

    /// The run-copying fast path agrees with folding every character on its own: same text,
    /// and every normalised character maps back to exactly the character it came from.
    #[test]
    fn fast_path_matches_per_character_folding() {
        let pieces = [
            "中", "國", "文", "ａ", "Ｂ", "b", "Z", "9", "①", "⑩", "㈠", " ", "，", "\u{200B}",
            "😀", "𠀀", "𝐀", "ﬁ", "\u{0}", "é", "Ä", "\u{FFFF}", "说", "abc", "ＡＩ", "·", "\n",
        ];
        let mut rng = StdRng::seed_from_u64(77);
        for _ in 0..2000 {
            let mut original = String::new();
            let mut expected = String::new();
            let mut owner: Vec<(usize, usize)> = Vec::new();
            for _ in 0..rng.gen_range(0..30) {
                for c in pieces[rng.gen_range(0..pieces.len())].chars() {
                    let start = original.len();
                    original.push(c);
                    let mut one = Normalized::new();
                    let mut reference = String::new();
                    // Reference: the table (or NFKC for non-BMP) applied to one character.
                    normalize_into(&c.to_string(), &mut one);
                    reference.push_str(&one.text);
                    for r in reference.chars() {
                        expected.push(r);
                        owner.push((start, start + c.len_utf8()));
                    }
                }
            }
            let n = normalize(&original);
            assert_eq!(n.text, expected, "{original:?}");
            for ((k, c), want) in n.text.char_indices().zip(&owner) {
                assert_eq!(
                    n.span(&original, k, k + c.len_utf8()),
                    *want,
                    "{original:?} at {k}"
                );
            }
        }
    }

    /// The streaming fold gives the same characters, each with the original character it comes
    /// from, as the normalised copy and its offset map.
    #[test]
    fn streaming_fold_matches_the_normalised_copy() {
        let pieces = [
            "中", "國", "ａ", "Ｂ", "b", "Z", "9", "①", "⑩", "㈠", " ", "，", "\u{200B}", "😀",
            "𠀀", "𝐀", "ﬁ", "é", "Ä", "说", "ＡＩ", "·", "\n",
        ];
        let mut rng = StdRng::seed_from_u64(78);
        for _ in 0..1000 {
            let original: String = (0..rng.gen_range(0..30))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let n = normalize(&original);
            let mut text = String::new();
            let mut spans = Vec::new();
            for_each_folded(&original, |s, e, c| {
                spans.push((text.len(), s, e));
                text.push(c);
            });
            assert_eq!(text, n.text, "{original:?}");
            assert_eq!(folded_len(&original), n.text.len());
            for (k, s, e) in spans {
                let c = text[k..].chars().next().unwrap_or('\0');
                assert_eq!(
                    n.span(&original, k, k + c.len_utf8()),
                    (s, e),
                    "{original:?} at {k}"
                );
            }
        }
        assert!(is_skip('，') && is_skip('😀') && !is_skip('中') && !is_skip('Ａ'));
    }

    #[test]
    fn pii_fold_keeps_punctuation() {
        let original = "手机：１３８\u{200B}００１３８０００，邮箱ａ＠ｂ．ｃｎ";
        let n = normalize_for_pii(original);
        assert_eq!(n.text, "手机:13800138000,邮箱a@b.cn");
        let s = n.text.find("138").unwrap_or(0);
        let (a, b) = n.span(original, s, s + 11);
        assert_eq!(&original[a..b], "１３８\u{200B}００１３８０００");
    }
}
