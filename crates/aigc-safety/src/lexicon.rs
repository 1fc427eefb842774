//! Lexicon files, compilation into one matcher, matching, allow-list and hot reload.
//!
//! # File formats
//!
//! **Lexicon** (UTF-8, TSV, one entry a line, `#` starts a comment line, blank lines ignored):
//!
//! ```text
//! term<TAB>risk<TAB>severity<TAB>source<TAB>lang
//! 制造炸弹<TAB>A1.4<TAB>high<TAB>seed<TAB>zh
//! ```
//!
//! - `term`: the keyword (≤ 10 Chinese characters or ≤ 5 words, see the validator);
//! - `risk`: an Appendix A code `A1.1` … `A5.2`;
//! - `severity`: `low`, `medium` or `high` (default `medium` when the column is absent);
//! - `source`: where the entry comes from (default: the file name);
//! - `lang`: a language tag such as `zh` or `en` (default: `zh` when the term has a Han
//!   character, else `en`).
//!
//! **Allow-list**: one phrase a line (anything after a TAB is a note), `#` comments. A hit that
//! lies entirely inside an allowed phrase found in the text is dropped (coverage, not equality:
//! 「路口交通」 cancels 「口交」).
//!
//! **Homophone / look-alike table**: `char<TAB>variants`, where `variants` is a string of
//! characters that are written instead of `char` to evade a filter. Each lexicon entry gets one
//! extra pattern per substitution (one position at a time).
//!
//! # Variants generated at compile time
//! Every entry is normalised like the text. Entries written only in Han characters also get
//! their toneless pinyin (2+ characters; heteronyms expanded, at most 8 readings) and pinyin
//! initials (4+ characters only), plus the homophone substitutions. Initials collide with
//! ordinary English words: an initials variant that spells a common English word
//! (`assets/safety/initials-stoplist.txt`) is not generated, and an initials hit is reported with
//! severity `low` at most. Patterns
//! made only of ASCII letters and digits (English entries, pinyin, initials) must cover whole
//! words of the original text (up to 8 words, so 「min gan」 and 「m.g.c.d」 still match).

use crate::anchored::{AnchoredMatcher, DIRECT_SKIP, DIRECT_SLOW, NO_CODE};
use crate::normalize::{
    Normalized, decode_at, folded_len, for_each_folded, is_han, is_skip, normalize_into,
    normalize_term,
};
use crate::taxonomy::{self, Risk};
use crate::words::{RunWords, SHORT_PREFIX, SpanHash, WordPatterns};
use arc_swap::ArcSwap;
use daachorse::{CharwiseDoubleArrayAhoCorasick, CharwiseDoubleArrayAhoCorasickBuilder, MatchKind};
use pinyin::ToPinyinMulti;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors while loading or compiling a lexicon.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{origin}:{line}: {message}")]
    Parse {
        /// File name (or other origin) of the text.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The matcher could not be built.
    #[error("cannot compile the lexicon: {0}")]
    Build(String),
}

/// How serious a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Normally blocks.
    Medium,
    /// Always blocks.
    High,
}

impl Severity {
    /// Parses `low` / `medium` / `high`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// One lexicon entry as written in the file.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The keyword as written.
    pub term: String,
    /// Its Appendix A risk.
    #[serde(serialize_with = "ser_risk")]
    pub risk: &'static Risk,
    /// Its severity.
    pub severity: Severity,
    /// Where the entry comes from.
    pub source: String,
    /// Language tag.
    pub lang: String,
    /// `file:line` it was read from.
    pub origin: String,
}

fn ser_risk<S: serde::Serializer>(r: &&'static Risk, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.code)
}

/// Parses lexicon text; `origin` names the file in errors.
pub fn parse_lexicon(text: &str, origin: &str) -> Result<Vec<Entry>, LexiconError> {
    let mut entries = Vec::new();
    let default_source = Path::new(origin)
        .file_name()
        .map_or_else(|| origin.to_string(), |f| f.to_string_lossy().into_owned());
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let l = raw.strip_prefix('\u{FEFF}').unwrap_or(raw);
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let err = |message: String| LexiconError::Parse {
            origin: origin.to_string(),
            line,
            message,
        };
        let cols: Vec<&str> = l.split('\t').collect();
        let term = cols.first().map_or("", |t| t.trim());
        if term.is_empty() {
            return Err(err("empty term".into()));
        }
        let risk_col = cols.get(1).map(|s| s.trim()).unwrap_or("");
        let risk = taxonomy::risk(risk_col).ok_or_else(|| {
            err(format!(
                "unknown risk code {risk_col:?} (expected A1.1 … A5.2; columns are TAB-separated)"
            ))
        })?;
        let severity = match cols.get(2).map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Severity::Medium,
            Some(s) => Severity::parse(s)
                .ok_or_else(|| err(format!("unknown severity {s:?} (low, medium, high)")))?,
        };
        let source = cols
            .get(3)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map_or_else(|| default_source.clone(), str::to_string);
        let lang = cols
            .get(4)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map_or_else(
                || if term.chars().any(is_han) { "zh" } else { "en" }.to_string(),
                str::to_string,
            );
        entries.push(Entry {
            term: term.to_string(),
            risk,
            severity,
            source,
            lang,
            origin: format!("{origin}:{line}"),
        });
    }
    Ok(entries)
}

/// Parses an allow-list.
pub fn parse_allow_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('\t').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Parses a homophone / look-alike table: `char<TAB>variants`.
pub fn parse_homophones(
    text: &str,
    origin: &str,
) -> Result<HashMap<char, Vec<char>>, LexiconError> {
    let mut map: HashMap<char, Vec<char>> = HashMap::new();
    for (idx, l) in text.lines().enumerate() {
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let mut cols = l.split('\t');
        let key = cols.next().unwrap_or("").trim();
        let variants = cols.next().unwrap_or("").trim();
        let mut kc = key.chars();
        let (Some(k), None) = (kc.next(), kc.next()) else {
            return Err(LexiconError::Parse {
                origin: origin.to_string(),
                line: idx + 1,
                message: format!("expected one character before the TAB, found {key:?}"),
            });
        };
        // Fold both sides so the table agrees with the normalised lexicon.
        let fold = |c: char| normalize_term(&c.to_string()).chars().next();
        let Some(k) = fold(k) else { continue };
        let list = map.entry(k).or_default();
        for v in variants.chars().filter_map(fold) {
            if v != k && !list.contains(&v) {
                list.push(v);
            }
        }
    }
    Ok(map)
}

/// Reads a file as UTF-8, naming it in errors.
pub fn read_text(path: &Path) -> Result<String, LexiconError> {
    read_text_as(
        path,
        |path, source| LexiconError::Io { path, source },
        |origin, line, message| LexiconError::Parse {
            origin,
            line,
            message,
        },
    )
}

/// Reads a file as UTF-8 for any of the crate's data readers: `io` builds the caller's error for
/// an unreadable file, `parse` (origin, line 0, message) the one for bytes that are not UTF-8.
pub(crate) fn read_text_as<E>(
    path: &Path,
    io: impl FnOnce(std::path::PathBuf, std::io::Error) -> E,
    parse: impl FnOnce(String, usize, String) -> E,
) -> Result<String, E> {
    let bytes = std::fs::read(path).map_err(|source| io(path.to_path_buf(), source))?;
    String::from_utf8(bytes)
        .map_err(|e| parse(path.display().to_string(), 0, format!("not UTF-8 ({e})")))
}

/// The bundled seed data (written by this project; far below the standard's sizes).
pub mod seed {
    /// The seed lexicon.
    pub const LEXICON: &str = include_str!("../../../assets/safety/seed-lexicon.tsv");
    /// The seed allow-list.
    pub const ALLOW_LIST: &str = include_str!("../../../assets/safety/allow-list.txt");
    /// The homophone / look-alike table.
    pub const HOMOPHONES: &str = include_str!("../../../assets/safety/homophones.tsv");
    /// English words that pinyin initials variants must not stand for.
    pub const INITIALS_STOPLIST: &str =
        include_str!("../../../assets/safety/initials-stoplist.txt");
}

/// Everything a compiled lexicon is made from.
#[derive(Debug, Clone, Default)]
pub struct LexiconSources {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Allowed phrases.
    pub allow: Vec<String>,
    /// Homophone / look-alike substitutions (normalised).
    pub homophones: HashMap<char, Vec<char>>,
}

impl LexiconSources {
    /// The bundled seed lexicon, allow-list and homophone table.
    pub fn seed() -> Result<Self, LexiconError> {
        Ok(Self {
            entries: parse_lexicon(seed::LEXICON, "assets/safety/seed-lexicon.tsv")?,
            allow: parse_allow_list(seed::ALLOW_LIST),
            homophones: parse_homophones(seed::HOMOPHONES, "assets/safety/homophones.tsv")?,
        })
    }

    /// Lexicon files (replacing the seed lexicon) with the seed allow-list and homophones.
    pub fn from_files(lexicons: &[PathBuf], allow: &[PathBuf]) -> Result<Self, LexiconError> {
        let mut s = Self::seed()?;
        if !lexicons.is_empty() {
            s.entries.clear();
            for p in lexicons {
                let text = read_text(p)?;
                s.entries
                    .extend(parse_lexicon(&text, &p.display().to_string())?);
            }
        }
        for p in allow {
            s.allow.extend(parse_allow_list(&read_text(p)?));
        }
        Ok(s)
    }
}

/// How a pattern relates to its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The entry itself (after normalisation).
    Exact,
    /// Toneless pinyin of the entry.
    Pinyin,
    /// Pinyin initials.
    Initials,
    /// One character replaced by a homophone or look-alike.
    Homophone,
}

#[derive(Debug, Clone, Copy)]
struct PatternInfo {
    entry: u32,
    variant: Variant,
    /// Only ASCII letters/digits: needs word boundaries in the original.
    ascii_word: bool,
    /// Some allowed phrase contains the pattern, so a hit of it may be covered by one (the
    /// allow-list search runs only for these).
    allowable: bool,
}

/// Counts from compilation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompileStats {
    /// Entries read.
    pub entries: usize,
    /// Patterns (entries + variants, deduplicated).
    pub patterns: usize,
    /// Pinyin patterns.
    pub pinyin: usize,
    /// Initials patterns.
    pub initials: usize,
    /// Homophone patterns.
    pub homophones: usize,
    /// Initials variants left out because they spell a common English word
    /// (`assets/safety/initials-stoplist.txt`).
    pub initials_stopped: usize,
    /// Entries whose normalised term equals an earlier entry's.
    pub duplicates: usize,
    /// Entries that normalise to nothing and can never match.
    pub unmatchable: usize,
    /// Allowed phrases.
    pub allow_phrases: usize,
}

/// A lexicon compiled into its matchers; immutable, shared behind an `Arc`.
pub struct CompiledLexicon {
    entries: Vec<Entry>,
    patterns: Vec<PatternInfo>,
    /// Patterns holding a non-ASCII character (prefilter + anchored trie walk).
    han: AnchoredMatcher,
    ascii: WordPatterns,
    allow: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    /// Longest allowed phrase, in normalised characters (the window searched around a hit).
    allow_max_chars: usize,
    stats: CompileStats,
}

impl std::fmt::Debug for CompiledLexicon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledLexicon")
            .field("stats", &self.stats)
            .finish()
    }
}

/// ASCII patterns cover at most this many words of the original text.
const MAX_ASCII_WORDS: usize = 8;

/// One lexicon hit, with its span in the original text.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Risk code.
    pub risk: &'static str,
    /// Severity of the entry.
    pub severity: Severity,
    /// Byte offset of the first matched character in the original text.
    pub start: usize,
    /// Byte offset just past the last matched character.
    pub end: usize,
    /// The original text of the span (skip characters inside included).
    pub matched: String,
    /// The lexicon entry that matched.
    pub term: String,
    /// Which form of the entry matched.
    pub variant: Variant,
    /// The entry's source.
    pub source: String,
}

/// The toneless pinyin readings of a Han-only term (at most `cap`).
fn pinyin_readings(chars: &[char], cap: usize) -> Vec<Vec<&'static str>> {
    let mut acc: Vec<Vec<&'static str>> = vec![Vec::new()];
    for &c in chars {
        let Some(multi) = c.to_pinyin_multi() else {
            return Vec::new();
        };
        let mut readings: Vec<&'static str> = Vec::new();
        for p in multi {
            let s = p.plain();
            if !readings.contains(&s) {
                readings.push(s);
            }
        }
        let mut next = Vec::new();
        'outer: for prefix in &acc {
            for r in &readings {
                if next.len() >= cap {
                    break 'outer;
                }
                let mut v = prefix.clone();
                v.push(*r);
                next.push(v);
            }
        }
        acc = next;
    }
    acc
}

fn is_ascii_word(p: &str) -> bool {
    p.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl CompiledLexicon {
    /// Compiles sources into matchers.
    pub fn compile(src: &LexiconSources) -> Result<Self, LexiconError> {
        let mut stats = CompileStats {
            entries: src.entries.len(),
            allow_phrases: src.allow.len(),
            ..CompileStats::default()
        };
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut pats: Vec<(String, PatternInfo)> = Vec::new();
        let mut add =
            |p: String, info: PatternInfo, pats: &mut Vec<(String, PatternInfo)>| -> bool {
                if p.is_empty() || index.contains_key(&p) {
                    return false;
                }
                let Ok(id) = u32::try_from(pats.len()) else {
                    return false;
                };
                index.insert(p.clone(), id);
                pats.push((p, info));
                true
            };
        let stoplist: std::collections::HashSet<&str> = seed::INITIALS_STOPLIST
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let normalised: Vec<String> = src
            .entries
            .iter()
            .map(|e| normalize_term(&e.term))
            .collect();
        // Exact forms first, so a variant never shadows a real entry.
        for (i, n) in normalised.iter().enumerate() {
            let Ok(entry) = u32::try_from(i) else { break };
            if n.is_empty() {
                stats.unmatchable += 1;
                continue;
            }
            let info = PatternInfo {
                entry,
                variant: Variant::Exact,
                ascii_word: is_ascii_word(n),
                allowable: false,
            };
            if !add(n.clone(), info, &mut pats) {
                stats.duplicates += 1;
            }
        }
        for (i, n) in normalised.iter().enumerate() {
            let Ok(entry) = u32::try_from(i) else { break };
            let chars: Vec<char> = n.chars().collect();
            if chars.len() >= 2 && chars.iter().all(|&c| is_han(c)) {
                for reading in pinyin_readings(&chars, 8) {
                    // 「ü」 is typed 「v」 (the input-method convention), so every pinyin variant
                    // is plain ASCII and goes to the whole-word matcher.
                    let full: String = reading.concat().replace('ü', "v");
                    let info = PatternInfo {
                        entry,
                        variant: Variant::Pinyin,
                        ascii_word: true,
                        allowable: false,
                    };
                    if add(full, info, &mut pats) {
                        stats.pinyin += 1;
                    }
                    if chars.len() >= 4 {
                        let initials: String =
                            reading.iter().filter_map(|s| s.chars().next()).collect();
                        if stoplist.contains(initials.as_str()) {
                            stats.initials_stopped += 1;
                            continue;
                        }
                        let info = PatternInfo {
                            variant: Variant::Initials,
                            ..info
                        };
                        if add(initials, info, &mut pats) {
                            stats.initials += 1;
                        }
                    }
                }
            }
            if chars.len() >= 2 {
                let mut made = 0;
                for (pos, c) in chars.iter().enumerate() {
                    for v in src.homophones.get(c).into_iter().flatten() {
                        if made >= 16 {
                            break;
                        }
                        let mut alt = chars.clone();
                        if let Some(slot) = alt.get_mut(pos) {
                            *slot = *v;
                        }
                        let p: String = alt.into_iter().collect();
                        let info = PatternInfo {
                            entry,
                            variant: Variant::Homophone,
                            ascii_word: is_ascii_word(&p),
                            allowable: false,
                        };
                        if add(p, info, &mut pats) {
                            stats.homophones += 1;
                            made += 1;
                        }
                    }
                }
            }
        }
        stats.patterns = pats.len();
        // Patterns with a non-ASCII character go to the anchored matcher. Patterns made only of
        // ASCII letters/digits (English, pinyin, initials) must start and end at word boundaries
        // of the original text, so they are looked up per run of whole words instead (see
        // `AsciiRun::flush`): no mid-word matches, and the matcher stays small.
        let han = AnchoredMatcher::build(
            pats.iter()
                .enumerate()
                .filter(|(_, (p, _))| !p.is_ascii())
                .filter_map(|(i, (p, _))| Some((p.as_str(), u32::try_from(i).ok()?))),
        )
        .map_err(LexiconError::Build)?;
        let ascii = WordPatterns::build(
            pats.iter()
                .enumerate()
                .filter(|(_, (p, _))| p.is_ascii())
                .filter_map(|(i, (p, _))| Some((p.as_str(), u32::try_from(i).ok()?))),
        );
        let mut allow_norm: Vec<String> = src
            .allow
            .iter()
            .map(|a| normalize_term(a))
            .filter(|a| !a.is_empty())
            .collect();
        allow_norm.sort();
        allow_norm.dedup();
        // A hit is covered by an allowed phrase only if the phrase contains the hit's
        // normalised text, which contains the pattern: patterns that are no substring of any
        // allowed phrase never need the search.
        let allow_substrings: std::collections::HashSet<&str> = allow_norm
            .iter()
            .flat_map(|a| {
                let bounds: Vec<usize> =
                    a.char_indices().map(|(i, _)| i).chain([a.len()]).collect();
                let pairs: Vec<(usize, usize)> = bounds
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &i)| bounds.iter().skip(k + 1).map(move |&j| (i, j)))
                    .collect();
                pairs.into_iter().filter_map(|(i, j)| a.get(i..j))
            })
            .collect();
        for (p, info) in &mut pats {
            info.allowable = allow_substrings.contains(p.as_str());
        }
        let allow = if allow_norm.is_empty() {
            None
        } else {
            Some(
                CharwiseDoubleArrayAhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build_with_values(
                        allow_norm
                            .iter()
                            .enumerate()
                            .map(|(i, p)| (p.as_str(), u32::try_from(i).unwrap_or(u32::MAX))),
                    )
                    .map_err(|e| LexiconError::Build(e.to_string()))?,
            )
        };
        Ok(Self {
            entries: src.entries.clone(),
            patterns: pats.into_iter().map(|(_, i)| i).collect(),
            han,
            ascii,
            allow,
            allow_max_chars: allow_norm
                .iter()
                .map(|a| a.chars().count())
                .max()
                .unwrap_or(0),
            stats,
        })
    }

    /// Compilation counts.
    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Counts leftmost-longest candidate matches of `text` (fused fold + prefilter + ASCII
    /// words), before the allow-list and without building hits (to measure the scan alone).
    pub fn count_candidates(&self, text: &str, scratch: &mut Scratch) -> usize {
        self.scan(text, scratch);
        scratch.cands.len()
    }

    /// Counts the positions of the code sequence of `text` (a run of characters without a
    /// code counts once) and those among them that pass the prefilter of the non-ASCII
    /// patterns (benchmarks: how much the bit sets reject).
    pub fn count_prefilter_passes(&self, text: &str, scratch: &mut Scratch) -> (usize, usize) {
        self.fold_codes(text, scratch, false);
        (scratch.codes_len, scratch.starts_len)
    }

    /// Heap bytes of the automata.
    pub fn heap_bytes(&self) -> usize {
        self.han.heap_bytes()
            + self.ascii.heap_bytes()
            + self.allow.as_ref().map_or(0, |d| d.heap_bytes())
    }

    /// One pass over `text` that folds it and turns every normalised character into its code
    /// for the non-ASCII patterns (`scratch.codes`, with the original offset of each in
    /// `scratch.offsets`, then [`AnchoredMatcher::PADDING`] codes [`NO_CODE`]) and keeps the
    /// positions that pass both prefilter stages (`scratch.starts[..scratch.starts_len]`); with `words`,
    /// the ASCII letters and digits are matched per run against the whole-word patterns on the
    /// way (candidates into `scratch.cands`).
    ///
    /// Most characters cost one table lookup that folds and codes at once
    /// ([`AnchoredMatcher::direct`]); runs of ASCII bytes are handled a run at a time. Characters
    /// no pattern holds (code 0) only break matches, so a run of them is kept as one code 0:
    /// English words then cost the prefilter one position, not one per letter.
    fn fold_codes(&self, text: &str, scratch: &mut Scratch, words: bool) {
        let Scratch {
            cands,
            codes,
            offsets,
            starts,
            ascii,
            ..
        } = scratch;
        cands.clear();
        ascii.clear();
        let han = &self.han;
        let use_han = !han.is_empty();
        let use_words = words && !self.ascii.is_empty();
        let mut sink = CodeSink {
            han,
            codes,
            offsets,
            starts,
            len: 0,
            passed: 0,
            prev2: NO_CODE,
            prev: NO_CODE,
        };
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b < 0x80 {
                let start = i;
                i += 1;
                // Eight bytes at a time while none has its top bit set.
                while let Some(chunk) = bytes
                    .get(i..i + 8)
                    .and_then(|c| <[u8; 8]>::try_from(c).ok())
                {
                    if u64::from_le_bytes(chunk) & 0x8080_8080_8080_8080 != 0 {
                        break;
                    }
                    i += 8;
                }
                while bytes.get(i).is_some_and(|&b| b < 0x80) {
                    i += 1;
                }
                // The letters and digits of the run (everything else is a skip character).
                let first = bytes[start..i].iter().position(u8::is_ascii_alphanumeric);
                let Some(first) = first.map(|f| start + f) else {
                    continue;
                };
                if use_han {
                    if han.ascii_coded() {
                        for (k, &b) in bytes.iter().enumerate().take(i).skip(first) {
                            if b.is_ascii_alphanumeric() {
                                sink.push(han.ascii_code(b), k);
                            }
                        }
                    } else {
                        sink.push(NO_CODE, first);
                    }
                }
                if use_words {
                    ascii.push_ascii_bytes(text, first, i);
                }
                continue;
            }
            // Runs of Chinese text go through the tight loop (once the ASCII run before them,
            // if any, has been flushed by a coded character below).
            if use_han && (!use_words || ascii.is_empty()) {
                let stop = sink.han_run(bytes, i);
                if stop != i {
                    i = stop;
                    continue;
                }
            }
            let (cp, width) = match bytes.get(i..i + 3) {
                Some(&[b0, b1, b2]) if b0 & 0xF0 == 0xE0 => (
                    (u32::from(b0 & 0x0F) << 12)
                        | (u32::from(b1 & 0x3F) << 6)
                        | u32::from(b2 & 0x3F),
                    3,
                ),
                _ => decode_at(bytes, i),
            };
            let end = i + width;
            let v = u16::try_from(cp).map_or(DIRECT_SLOW, |cp| han.direct(cp));
            if v == DIRECT_SKIP {
            } else if v != DIRECT_SLOW {
                // A character that folds to one non-ASCII character ends the ASCII run.
                if use_words && !ascii.is_empty() {
                    ascii.flush(self, text, cands);
                }
                if use_han {
                    sink.push(v, i);
                }
            } else if let Some(one) = text.get(i..end) {
                for_each_folded(one, |_, _, c| {
                    if use_han {
                        sink.push(han.code(c), i);
                    }
                    if use_words {
                        if c.is_ascii() {
                            ascii.push(text, i, end, c);
                        } else if !ascii.is_empty() {
                            ascii.flush(self, text, cands);
                        }
                    }
                });
            }
            i = end;
        }
        if use_words && !ascii.is_empty() {
            ascii.flush(self, text, cands);
        }
        let (len, passed) = sink.finish();
        scratch.codes_len = len;
        // The second stage, in place.
        scratch.starts_len = self.han.refine(
            padded(&scratch.codes, len),
            scratch.starts.get_mut(..passed).unwrap_or(&mut []),
        );
    }

    /// Leftmost-longest candidates of `text` into `scratch.cands`, in text order: one pass folds
    /// the text into codes and matches the whole-word ASCII patterns
    /// ([`fold_codes`](Self::fold_codes)); the prefilter of the non-ASCII patterns then rejects
    /// almost every position, and the few positions left get one lookup of their pattern group.
    fn scan(&self, text: &str, scratch: &mut Scratch) {
        self.fold_codes(text, scratch, true);
        let han = &self.han;
        if han.is_empty() {
            return;
        }
        let Scratch {
            cands,
            codes,
            codes_len,
            offsets,
            starts,
            starts_len,
            ..
        } = scratch;
        let codes = padded(codes, *codes_len);
        let words = cands.len();
        // Leftmost-longest in the normalised text, online: positions come in order, the
        // longest pattern at the first position that has one wins, and the search goes on
        // after its last character (as a leftmost-longest automaton over the normalised text
        // does; spans of an expansion such as 「⑩」 may then share the original character).
        let mut next = 0;
        for &k in starts.get(..*starts_len).unwrap_or(&[]) {
            if k < next {
                continue;
            }
            let Some((last, pattern)) = han.longest_at(codes, k) else {
                continue;
            };
            let (Some(&os), Some(&lo)) = (offsets.get(k), offsets.get(last)) else {
                continue;
            };
            let oe = lo
                + text
                    .get(lo..)
                    .and_then(|t| t.chars().next())
                    .map_or(0, char::len_utf8);
            cands.push((os, oe, pattern));
            next = last + 1;
        }
        if words > 0 && cands.len() > words {
            // Merge the whole-word and non-ASCII candidates back into one leftmost-longest,
            // non-overlapping list.
            cands.sort_unstable_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
            let mut end = 0;
            cands.retain(|&(s, e, _)| {
                let keep = s >= end;
                if keep {
                    end = e;
                }
                keep
            });
        }
    }

    /// Whether an allowed phrase occurring in the text covers the original span `s..e`. Only
    /// a window of [`allow_max_chars`](Self) characters around the hit can hold such a
    /// phrase, so only that window is normalised and searched.
    fn allowed(&self, text: &str, s: usize, e: usize, window: &mut Normalized) -> bool {
        let Some(allow) = &self.allow else {
            return false;
        };
        let reach = self.allow_max_chars;
        let mut ws = s;
        let mut counted = 0;
        for (i, c) in text.get(..s).unwrap_or("").char_indices().rev() {
            if counted >= reach {
                break;
            }
            ws = i;
            counted += usize::from(!is_skip(c));
        }
        let mut we = e;
        counted = 0;
        for c in text.get(e..).unwrap_or("").chars() {
            if counted >= reach {
                break;
            }
            we += c.len_utf8();
            counted += usize::from(!is_skip(c));
        }
        let (Some(before), Some(hit), Some(win)) =
            (text.get(ws..s), text.get(s..e), text.get(ws..we))
        else {
            return false;
        };
        let a = folded_len(before);
        let b = a + folded_len(hit);
        normalize_into(win, window);
        allow
            .find_overlapping_iter(&window.text)
            .any(|m| m.start() <= a && b <= m.end())
    }

    /// Finds every hit in `text` (leftmost-longest, allow-list applied).
    pub fn find(&self, text: &str) -> Vec<Hit> {
        self.find_with(text, &mut Scratch::default())
    }

    /// Like [`find`](Self::find), reusing `scratch`'s buffers.
    pub fn find_with(&self, text: &str, scratch: &mut Scratch) -> Vec<Hit> {
        self.scan(text, scratch);
        let mut hits = Vec::with_capacity(scratch.cands.len());
        for &(os, oe, pattern) in &scratch.cands {
            let Some(info) = usize::try_from(pattern)
                .ok()
                .and_then(|i| self.patterns.get(i))
            else {
                continue;
            };
            if info.ascii_word && !ascii_word_bounded(text, os, oe) {
                continue;
            }
            if info.allowable && self.allowed(text, os, oe, &mut scratch.window) {
                continue;
            }
            let Some(entry) = usize::try_from(info.entry)
                .ok()
                .and_then(|i| self.entries.get(i))
            else {
                continue;
            };
            hits.push(Hit {
                risk: entry.risk.code,
                severity: if info.variant == Variant::Initials {
                    entry.severity.min(Severity::Low)
                } else {
                    entry.severity
                },
                start: os,
                end: oe,
                matched: text.get(os..oe).unwrap_or("").to_string(),
                term: entry.term.clone(),
                variant: info.variant,
                source: entry.source.clone(),
            });
        }
        hits
    }
}

/// Reusable buffers for matching and scoring one text after another (no allocation per text
/// once they have grown).
#[derive(Debug, Default)]
pub struct Scratch {
    /// Candidates `(original start, original end, pattern)`.
    cands: Vec<(usize, usize, u32)>,
    /// The code of each normalised character for the non-ASCII patterns, `codes[..codes_len]`,
    /// then [`AnchoredMatcher::PADDING`] [`NO_CODE`]s (grow-only: not cleared per text).
    codes: Vec<u16>,
    codes_len: usize,
    /// The original byte offset each normalised character comes from (grow-only too).
    offsets: Vec<usize>,
    /// Positions (indices into `codes`) that pass the prefilter: `starts[..starts_len]`.
    starts: Vec<usize>,
    starts_len: usize,
    /// The current run of ASCII letters and digits.
    ascii: AsciiRun,
    /// The normalised window searched for allowed phrases.
    window: Normalized,
    /// Normalised characters for the classifier's n-grams.
    pub(crate) chars: Vec<u32>,
    /// The classifier's de-duplication bit set over feature slots (all zero between texts).
    pub(crate) seen: Vec<u64>,
}

/// The first `len` codes of a grow-only code buffer and the padding after them.
fn padded(codes: &[u16], len: usize) -> &[u16] {
    codes.get(..len + AnchoredMatcher::PADDING).unwrap_or(&[])
}

/// Appends codes for the anchored matcher, with the original offset of each (a run of
/// [`NO_CODE`] is kept as one, and none starts the sequence), and runs the first prefilter
/// stage on each position as soon as the code after it is known.
///
/// The three buffers only grow (they are not cleared or zeroed per text): `codes[..len]` and
/// `offsets[..len]` are this text's, `starts[..passed]` the positions that passed.
struct CodeSink<'a> {
    han: &'a AnchoredMatcher,
    codes: &'a mut Vec<u16>,
    offsets: &'a mut Vec<usize>,
    starts: &'a mut Vec<usize>,
    len: usize,
    passed: usize,
    /// The last two codes pushed, the last in `prev` ([`NO_CODE`] before the first).
    prev2: u16,
    prev: u16,
}

impl CodeSink<'_> {
    /// Codes [`han_run`](Self::han_run) makes room for at a time.
    const RUN_ROOM: usize = 4096;

    /// Makes room for `more` codes after the current ones (and the padding after them).
    #[inline]
    fn reserve(&mut self, more: usize) {
        let need = self.len + more + AnchoredMatcher::PADDING;
        if self.codes.len() < need || self.offsets.len() < need {
            let grown = need.max(self.codes.len() * 2).max(64);
            self.codes.resize(grown, NO_CODE);
            self.offsets.resize(grown, 0);
        }
        let need = self.passed + more + 2;
        if self.starts.len() < need {
            let grown = need.max(self.starts.len() * 2).max(64);
            self.starts.resize(grown, 0);
        }
    }

    #[inline(always)]
    fn push(&mut self, code: u16, orig: usize) {
        if code == NO_CODE && self.prev == NO_CODE {
            return;
        }
        self.reserve(1);
        self.stage1(code);
        if let (Some(c), Some(o)) = (self.codes.get_mut(self.len), self.offsets.get_mut(self.len)) {
            *c = code;
            *o = orig;
            self.len += 1;
        }
    }

    /// The first prefilter stage of the last position but one, now followed by the last and
    /// `next` (room reserved); then `next` becomes the last. Branch-free: the slot is written
    /// whether or not the position passes; before the first codes `prev2` is [`NO_CODE`],
    /// which never passes.
    #[inline(always)]
    fn stage1(&mut self, next: u16) {
        if let Some(slot) = self.starts.get_mut(self.passed) {
            *slot = self.len.wrapping_sub(2);
            self.passed += self.han.first_pass(self.prev2, self.prev, next);
        }
        (self.prev2, self.prev) = (self.prev, next);
    }

    /// Codes the characters from `bytes[i]` on while each is three bytes long and folds to one
    /// coded character or is a skip character (nearly all Chinese text), the same as
    /// [`push`](Self::push) of each but in a loop that keeps its state in registers; returns
    /// where it stopped, at anything else, which is left to the caller.
    #[inline(never)]
    fn han_run(&mut self, bytes: &[u8], mut i: usize) -> usize {
        // Room for this run (runs longer than this come back through the caller, which grows
        // the buffers by doubling), so the buffers stay as long as the codes they hold.
        self.reserve((bytes.len().saturating_sub(i) / 3).min(Self::RUN_ROOM));
        let han = self.han.stage1();
        let (codes, offsets, starts) = (
            self.codes.as_mut_slice(),
            self.offsets.as_mut_slice(),
            self.starts.as_mut_slice(),
        );
        let (mut len, mut passed, mut prev2, mut prev) =
            (self.len, self.passed, self.prev2, self.prev);
        while let Some(&[b0, b1, b2]) = bytes
            .get(i..i + 3)
            .and_then(|s| <&[u8; 3]>::try_from(s).ok())
        {
            if b0 & 0xF0 != 0xE0 {
                break;
            }
            let cp =
                (u16::from(b0 & 0x0F) << 12) | (u16::from(b1 & 0x3F) << 6) | u16::from(b2 & 0x3F);
            let v = han.direct(cp);
            if v >= DIRECT_SLOW {
                if v == DIRECT_SLOW {
                    break;
                }
                i += 3;
                continue;
            }
            if v == NO_CODE && prev == NO_CODE {
                i += 3;
                continue;
            }
            let (Some(slot), Some(c), Some(o)) = (
                starts.get_mut(passed),
                codes.get_mut(len),
                offsets.get_mut(len),
            ) else {
                break;
            };
            *slot = len.wrapping_sub(2);
            passed += han.pass(prev2, prev, v);
            *c = v;
            *o = i;
            len += 1;
            (prev2, prev) = (prev, v);
            i += 3;
        }
        (self.len, self.passed, self.prev2, self.prev) = (len, passed, prev2, prev);
        i
    }

    /// Ends the sequence with the padding the matcher needs; returns the number of codes and
    /// of positions that passed the first stage.
    fn finish(mut self) -> (usize, usize) {
        self.reserve(0);
        // The last two positions, each followed by padding.
        self.stage1(NO_CODE);
        self.len += 1;
        self.stage1(NO_CODE);
        self.len -= 1;
        if let Some(pad) = self
            .codes
            .get_mut(self.len..self.len + AnchoredMatcher::PADDING)
        {
            pad.fill(NO_CODE);
        }
        (self.len, self.passed)
    }
}

/// A run of consecutive ASCII characters of the normalised text.
///
/// While every character of the run comes from one ASCII byte of the original (ordinary
/// English, pinyin), the run is only the original byte range `plain`: its words are the runs of
/// ASCII letters and digits there, lower-cased when looked up. The first character that comes
/// from anything else (a full-width letter, a ligature) turns the run into the general form:
/// the normalised characters with the original span of each and the positions where a word
/// of the original starts.
#[derive(Debug, Default)]
struct AsciiRun {
    /// Original byte range of a run made only of one-byte characters so far.
    plain: Option<(usize, usize)>,
    text: String,
    orig: Vec<(usize, usize)>,
    starts: Vec<usize>,
    /// Words of a plain run.
    words: RunWords,
}

impl AsciiRun {
    fn clear(&mut self) {
        self.plain = None;
        self.text.clear();
        self.orig.clear();
        self.starts.clear();
    }

    fn is_empty(&self) -> bool {
        self.plain.is_none() && self.text.is_empty()
    }

    /// Appends normalised `c` from original `os..oe`.
    #[inline]
    fn push(&mut self, text: &str, os: usize, oe: usize, c: char) {
        if self.text.is_empty() && oe == os + 1 {
            match &mut self.plain {
                Some((_, end)) => *end = oe,
                None => self.plain = Some((os, oe)),
            }
            return;
        }
        if let Some((start, end)) = self.plain.take() {
            // Replay the plain part into the general form.
            let bytes = text.as_bytes();
            for i in start..end {
                if let Some(&b) = bytes.get(i)
                    && b.is_ascii_alphanumeric()
                {
                    self.push_general(text, i, i + 1, char::from(b.to_ascii_lowercase()));
                }
            }
        }
        self.push_general(text, os, oe, c);
    }

    /// Appends the original ASCII bytes `start..end`, of which `start` is a letter or digit
    /// (the same as [`push`](Self::push) of each letter and digit among them, lower-cased).
    #[inline]
    fn push_ascii_bytes(&mut self, text: &str, start: usize, end: usize) {
        if self.text.is_empty() {
            // Skip characters after the last letter or digit may stay in a plain run: words
            // are split at them.
            match &mut self.plain {
                Some((_, e)) => *e = end,
                None => self.plain = Some((start, end)),
            }
            return;
        }
        for (k, &b) in text.as_bytes().iter().enumerate().take(end).skip(start) {
            if b.is_ascii_alphanumeric() {
                self.push_general(text, k, k + 1, char::from(b.to_ascii_lowercase()));
            }
        }
    }

    /// Matches the whole-word patterns in a plain run (the same rules as [`flush`](Self::flush)
    /// over the general form) and appends them to `cands`. Each word is hashed once; a span of
    /// several words is hashed by combining its words' hashes.
    fn flush_plain(
        &mut self,
        lex: &CompiledLexicon,
        text: &str,
        (start, end): (usize, usize),
        cands: &mut Vec<(usize, usize, u32)>,
    ) {
        let set = &lex.ascii;
        let bytes = text.as_bytes();
        self.words
            .split(set, bytes.get(start..end).unwrap_or(&[]), start);
        let words = self.words.words.as_slice();
        // Whether the words `from..` spell `p` (lower case) from its start.
        let spells = |from: usize, p: &[u8]| {
            let mut rest = p;
            for w in words.iter().skip(from) {
                let Some(word) = bytes.get(w.start..w.end) else {
                    return false;
                };
                let n = word.len().min(rest.len());
                if !word
                    .iter()
                    .zip(rest)
                    .all(|(&a, &b)| a.to_ascii_lowercase() == b)
                {
                    return false;
                }
                rest = rest.get(n..).unwrap_or(&[]);
                if rest.is_empty() {
                    return n == word.len();
                }
            }
            false
        };
        let mut next = 0;
        for &w in self.words.firsts() {
            let Some(first) = words.get(w) else {
                continue;
            };
            if w < next {
                continue;
            }
            // The longest pattern that starts with word `w`, growing the span word by word
            // while it is still a pattern's prefix.
            let mut found = None;
            let mut h = SpanHash::EMPTY;
            for (k, word) in words.iter().enumerate().skip(w).take(MAX_ASCII_WORDS) {
                h = h.push_bytes(bytes.get(word.start..word.end).unwrap_or(&[]));
                if h.len() > set.max_len()
                    || ((k > w || h.len() > SHORT_PREFIX) && !set.may_prefix(h))
                {
                    break;
                }
                if let Some(v) = set.get(h, |p| spells(w, p)) {
                    found = Some((k + 1, word.end, v));
                }
            }
            if let Some((after, we, v)) = found {
                cands.push((first.start, we, v));
                next = after;
            }
        }
    }

    /// Appends normalised `c` from original `os..oe` to the general form; a word starts here
    /// when the original character before is not a letter or digit.
    #[inline]
    fn push_general(&mut self, text: &str, os: usize, oe: usize, c: char) {
        let is_word = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(c as u32, 0xFF10..=0xFF19 | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A)
        };
        // Fast path: the character before is the previous one of this run and was one ASCII
        // byte (a letter or digit, as only those are kept), so this is inside a word.
        let word_start = match self.orig.last() {
            Some(&(ps, pe)) if pe == os && pe == ps + 1 => false,
            _ => !text
                .get(..os)
                .and_then(|s| s.chars().next_back())
                .is_some_and(is_word),
        };
        if word_start && self.starts.last() != Some(&self.text.len()) {
            self.starts.push(self.text.len());
        }
        self.text.push(c);
        self.orig.push((os, oe));
    }

    /// Matches the ASCII patterns in the run (whole words of the original, at most
    /// [`MAX_ASCII_WORDS`] of them, so 「min gan ci」 and 「m-g-c」 match; at each word start the
    /// longest wins), appends them to `cands` and empties the run.
    fn flush(&mut self, lex: &CompiledLexicon, text: &str, cands: &mut Vec<(usize, usize, u32)>) {
        if let Some(plain) = self.plain {
            self.flush_plain(lex, text, plain, cands);
            self.clear();
            return;
        }
        let b = self.text.len();
        let starts = &self.starts;
        let mut w = 0;
        while w < starts.len() {
            let s = starts[w];
            let mut found = None;
            let max_k = MAX_ASCII_WORDS.min(starts.len() - w);
            for k in 1..=max_k {
                let e = starts.get(w + k).copied().unwrap_or(b);
                let Some(span) = self.text.get(s..e) else {
                    break;
                };
                if span.len() > lex.ascii.max_len() || !lex.ascii.may_prefix_bytes(span.as_bytes())
                {
                    break;
                }
                if let Some(v) = lex.ascii.get_bytes(span.as_bytes()) {
                    found = Some((k, e, v));
                }
            }
            match found {
                Some((k, e, v)) => {
                    if let (Some(&(os, _)), Some(&(_, oe))) =
                        (self.orig.get(s), self.orig.get(e.saturating_sub(1)))
                    {
                        cands.push((os, oe, v));
                    }
                    w += k;
                }
                None => w += 1,
            }
        }
        self.clear();
    }
}

/// No ASCII letter or digit directly before `start` or after `end` in the original.
fn ascii_word_bounded(text: &str, start: usize, end: usize) -> bool {
    let before = text
        .get(..start)
        .and_then(|s| s.chars().next_back())
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let after = text
        .get(end..)
        .and_then(|s| s.chars().next())
        .is_some_and(|c| c.is_ascii_alphanumeric());
    !before && !after
}

/// A shared, hot-reloadable lexicon: readers take a snapshot (`load`), a reload compiles the
/// new lexicon on the side and swaps it in atomically; searches in flight finish on the old one.
pub struct LexiconHandle {
    current: ArcSwap<CompiledLexicon>,
}

impl LexiconHandle {
    /// Wraps a compiled lexicon.
    pub fn new(lexicon: CompiledLexicon) -> Self {
        Self {
            current: ArcSwap::from_pointee(lexicon),
        }
    }

    /// The current lexicon (a cheap snapshot that stays valid across swaps).
    pub fn load(&self) -> Arc<CompiledLexicon> {
        self.current.load_full()
    }

    /// Replaces the lexicon; returns the previous one.
    pub fn swap(&self, lexicon: CompiledLexicon) -> Arc<CompiledLexicon> {
        self.current.swap(Arc::new(lexicon))
    }

    /// Compiles `sources` and swaps the result in; on error the old lexicon stays.
    pub fn reload(&self, sources: &LexiconSources) -> Result<(), LexiconError> {
        let compiled = CompiledLexicon::compile(sources)?;
        self.swap(compiled);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn lexicon(tsv: &str, allow: &[&str], homophones: &str) -> CompiledLexicon {
        let src = LexiconSources {
            entries: parse_lexicon(tsv, "test.tsv").unwrap_or_else(|e| panic!("{e}")),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            homophones: parse_homophones(homophones, "h.tsv").unwrap_or_else(|e| panic!("{e}")),
        };
        CompiledLexicon::compile(&src).unwrap_or_else(|e| panic!("{e}"))
    }

    fn matched(lex: &CompiledLexicon, text: &str) -> Vec<String> {
        lex.find(text).into_iter().map(|h| h.matched).collect()
    }

    const TEST_LEX: &str = "敏感词\tA1.8\thigh\ttest\tzh\n口交\tA1.6\thigh\n制造炸弹\tA1.4\n\
                            bad person\tA2.9\tlow\n";

    #[test]
    fn evasions_are_caught_with_exact_spans() {
        let lex = lexicon(TEST_LEX, &[], "感\t赶\n");
        for (text, want) in [
            ("这是敏感词。", "敏感词"),
            ("这是敏@感#词", "敏@感#词"),
            ("敏\u{200B}感\u{200D}词", "敏\u{200B}感\u{200D}词"),
            ("敏😀感✨词", "敏😀感✨词"),
            ("敏 感 词", "敏 感 词"),
            ("這是敏感詞", "敏感詞"),
            ("说minganci吧", "minganci"),
            ("说 Min Gan Ci 吧", "Min Gan Ci"),
            ("说 ZZZD 吧", "ZZZD"),
            ("说 z.z.z.d 吧", "z.z.z.d"),
            ("敏赶词", "敏赶词"),
            ("制·造·炸·弹", "制·造·炸·弹"),
            ("ｂａｄ　ｐｅｒｓｏｎ!", "ｂａｄ　ｐｅｒｓｏｎ"),
            ("a Bad-Person here", "Bad-Person"),
        ] {
            let hits = lex.find(text);
            assert_eq!(hits.len(), 1, "{text}: {hits:?}");
            let h = &hits[0];
            assert_eq!(h.matched, want, "{text}");
            assert_eq!(&text[h.start..h.end], want);
        }
        let h = &lex.find("這是敏感詞")[0];
        assert_eq!(
            (h.risk, h.severity, h.variant),
            ("A1.8", Severity::High, Variant::Exact)
        );
        let h = &lex.find("说zzzd")[0];
        assert_eq!((h.variant, h.severity), (Variant::Initials, Severity::Low));
        assert_eq!(lex.find("minganci")[0].variant, Variant::Pinyin);
        assert_eq!(lex.find("敏赶词")[0].variant, Variant::Homophone);
    }

    /// Property-style: noise inserted between the characters of a term, inside random
    /// surrounding text, is always found and reported as exactly the inserted stretch.
    #[test]
    fn hits_span_exactly_the_evasive_stretch() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let lex = lexicon(TEST_LEX, &["路口交通"], "");
        let noise = [
            "@", " ", "\u{200B}", "😀", "，", "-", "　", "\u{FE0F}", "*", "．",
        ];
        let filler = ["今天", "天气", "Hello ", "ＯＫ", "好", "123", "說明"];
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..rng.gen_range(0..4) {
                text.push_str(filler[rng.gen_range(0..filler.len())]);
            }
            let start = text.len();
            let term: Vec<char> = if rng.gen_bool(0.5) {
                "制造炸弹"
            } else {
                "製造炸彈"
            }
            .chars()
            .collect();
            for (k, c) in term.iter().enumerate() {
                text.push(*c);
                if k + 1 < term.len() {
                    for _ in 0..rng.gen_range(0..3) {
                        text.push_str(noise[rng.gen_range(0..noise.len())]);
                    }
                }
            }
            let end = text.len();
            text.push_str(noise[rng.gen_range(0..noise.len())]);
            text.push_str(filler[rng.gen_range(0..filler.len())]);
            let hits = lex.find(&text);
            assert_eq!(hits.len(), 1, "{text:?}: {hits:?}");
            assert_eq!((hits[0].start, hits[0].end), (start, end), "{text:?}");
            assert_eq!(hits[0].risk, "A1.4");
        }
    }

    #[test]
    fn ascii_patterns_need_word_boundaries() {
        let lex = lexicon(TEST_LEX, &[], "");
        assert!(matched(&lex, "xzzzdx zzzdzzzd abadperson").is_empty());
        assert!(matched(&lex, "minganciy").is_empty());
        assert!(matched(&lex, "xminganci").is_empty());
        assert_eq!(matched(&lex, "中文zzzd中文"), ["zzzd"]);
        assert_eq!(matched(&lex, "the minganci is"), ["minganci"]);
        assert_eq!(matched(&lex, "a bad person"), ["bad person"]);
        assert_eq!(matched(&lex, "ｍｉｎｇａｎｃｉ!"), ["ｍｉｎｇａｎｃｉ"]);
    }

    #[test]
    fn allow_list_cancels_hits_it_covers() {
        let lex = lexicon(TEST_LEX, &["路口交通"], "");
        assert!(matched(&lex, "前方路口交通拥堵").is_empty());
        assert!(
            matched(&lex, "前方路口，交通拥堵").is_empty(),
            "skip chars fold first"
        );
        assert_eq!(
            matched(&lex, "路口交通后口交"),
            ["口交"],
            "outside the span still hits"
        );
        let plain = lexicon(TEST_LEX, &[], "");
        assert_eq!(
            matched(&plain, "前方路口交通拥堵"),
            ["口交"],
            "without the allow-list"
        );
    }

    #[test]
    fn seed_lexicon_compiles_and_honours_its_allow_list() {
        let src = LexiconSources::seed().unwrap_or_else(|e| panic!("{e}"));
        let lex = CompiledLexicon::compile(&src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lex.stats().entries, 336);
        assert_eq!((lex.stats().duplicates, lex.stats().unmatchable), (0, 0));
        assert!(
            lex.stats().pinyin > 300 && lex.stats().homophones > 20,
            "{:?}",
            lex.stats()
        );
        assert!(lex.find("前方路口交通拥堵，请绕行").is_empty());
        // A pattern mixing ASCII and Chinese (its ASCII letters get codes of their own).
        let hits = lex.find("别用ＡＩ-换脸做坏事");
        assert_eq!(
            hits.iter().map(|h| h.matched.as_str()).collect::<Vec<_>>(),
            ["ＡＩ-换脸"]
        );
        let hits = lex.find("教你怎么制·造·炸·弹");
        assert_eq!(hits.iter().map(|h| h.risk).collect::<Vec<_>>(), ["A1.4"]);
    }

    #[test]
    fn leftmost_longest_and_entry_dedup() {
        let lex = lexicon("炸弹\tA1.4\n制造炸弹\tA1.4\thigh\n炸弹\tA1.4\n", &[], "");
        assert_eq!(lex.stats().duplicates, 1);
        let hits = lex.find("制造炸弹和炸弹");
        let got: Vec<_> = hits
            .iter()
            .map(|h| (h.matched.as_str(), h.severity))
            .collect();
        assert_eq!(
            got,
            [("制造炸弹", Severity::High), ("炸弹", Severity::Medium)]
        );
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let e = parse_lexicon("# c\nok\tA1.1\nbad\tZ9\n", "x.tsv").err();
        assert!(
            matches!(&e, Some(LexiconError::Parse { line: 3, .. })),
            "{e:?}"
        );
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("x.tsv:3: unknown risk code"), "{msg}");
        assert!(parse_lexicon("x\tA1.1\tsevere\n", "y").is_err());
        let e = parse_lexicon("word\tA2.4\n", "dir/f.tsv").unwrap_or_default();
        assert_eq!(
            (e[0].severity, e[0].source.as_str(), e[0].lang.as_str()),
            (Severity::Medium, "f.tsv", "en")
        );
    }

    /// Property-style: the fused scan (fold, codes, prefilter, group lookups, leftmost-longest
    /// resolved online) agrees with the two-pass reference: normalise the
    /// whole text, run daachorse's own leftmost-longest search on it, map spans back.
    #[test]
    fn fused_scan_agrees_with_normalise_then_leftmost_longest() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let terms = [
            "炸弹",
            "制造炸弹",
            "造炸",
            "弹药",
            "药品",
            "敏感",
            "敏感词",
            "感词语",
            "词语",
            "ai换脸",
            "⑩号",
            "說明書",
            "明书",
        ];
        let tsv: String = terms.iter().map(|t| format!("{t}\tA1.4\n")).collect();
        let lex = lexicon(&tsv, &[], "");
        let normalised: Vec<String> = terms.iter().map(|t| normalize_term(t)).collect();
        let reference: CharwiseDoubleArrayAhoCorasick<u32> =
            CharwiseDoubleArrayAhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&normalised)
                .unwrap_or_else(|e| panic!("{e}"));
        let pieces = [
            "制", "造", "炸", "弹", "药", "品", "敏", "感", "词", "語", "语", "說", "明", "书",
            "書", "⑩", "号", "AI", "ａｉ", "换", "脸", "@", " ", "\u{200B}", "，", "😀", "x", "的",
        ];
        let mut rng = StdRng::seed_from_u64(45);
        for _ in 0..3000 {
            let text: String = (0..rng.gen_range(0..40))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            assert_matches_reference(&lex, &reference, &text, "");
        }
    }

    /// The hit spans of `lex` on `text` equal those of normalise-then-leftmost-longest with
    /// `reference`, mapped back to the original text.
    fn assert_matches_reference(
        lex: &CompiledLexicon,
        reference: &CharwiseDoubleArrayAhoCorasick<u32>,
        text: &str,
        context: &str,
    ) {
        let norm = normalize(text);
        let want: Vec<(usize, usize)> = reference
            .leftmost_find_iter(&norm.text)
            .map(|m| norm.span(text, m.start(), m.end()))
            .collect();
        let got: Vec<(usize, usize)> = lex.find(text).iter().map(|h| (h.start, h.end)).collect();
        assert_eq!(got, want, "{context} {text:?} → {:?}", norm.text);
    }

    /// Property-style, for the prefilter and the grouped pattern table: random lexicons over a
    /// small alphabet (one-character entries, shared two/three/four-character prefixes, long
    /// entries, digits that come from expansions such as 「⑩」, an ASCII letter inside Chinese
    /// patterns) against normalise-then-leftmost-longest, on texts full of near misses, skip
    /// characters between the characters of a pair and traditional forms.
    #[test]
    fn anchored_matcher_agrees_with_the_reference_on_random_lexicons() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let alphabet = [
            "炸", "弹", "制", "造", "药", "品", "敏", "感", "词", "1", "0", "号", "x",
        ];
        let pieces = [
            "炸", "彈", "弹", "制", "製", "造", "药", "藥", "品", "敏", "感", "词", "詞", "⑩", "1",
            "号", "x", "Ｘ", "@", " ", "\u{200B}", "，", "😀", "的", "ab",
        ];
        let mut rng = StdRng::seed_from_u64(46);
        for round in 0..80 {
            let mut terms: Vec<String> = Vec::new();
            for _ in 0..rng.gen_range(1..40) {
                let len = match rng.gen_range(0..10) {
                    0 => 1,
                    1..=3 => 2,
                    4..=5 => 3,
                    6..=7 => 4,
                    _ => rng.gen_range(5..12),
                };
                let t: String = (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect();
                // Patterns made only of ASCII go to the whole-word matcher instead.
                if !t.is_ascii() && !terms.contains(&t) {
                    terms.push(t);
                }
            }
            if terms.is_empty() {
                continue;
            }
            let tsv: String = terms.iter().map(|t| format!("{t}\tA1.4\n")).collect();
            let lex = lexicon(&tsv, &[], "");
            let reference: CharwiseDoubleArrayAhoCorasick<u32> =
                CharwiseDoubleArrayAhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&terms)
                    .unwrap_or_else(|e| panic!("{e}"));
            for _ in 0..100 {
                let text: String = (0..rng.gen_range(0..60))
                    .map(|_| pieces[rng.gen_range(0..pieces.len())])
                    .collect();
                assert_matches_reference(
                    &lex,
                    &reference,
                    &text,
                    &format!("round {round}, {terms:?}"),
                );
            }
        }
    }

    /// Property-style: a run of plain ASCII is matched from the original bytes; the result is
    /// the same as through the general form (normalised characters with their spans).
    #[test]
    fn plain_ascii_runs_match_like_the_general_form() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let lex = lexicon(TEST_LEX, &[], "");
        let pieces = [
            "min",
            "gan",
            "ci",
            "Min",
            "GAN",
            "bad",
            "person",
            "zzzd",
            "z",
            "d",
            " ",
            "-",
            ".",
            "\u{200B}",
            "，",
            "x",
            "1",
            "中",
            "敏感词",
            "😀",
        ];
        let mut rng = StdRng::seed_from_u64(47);
        let mut scratch = Scratch::default();
        for _ in 0..3000 {
            let text: String = (0..rng.gen_range(0..25))
                .map(|_| pieces[rng.gen_range(0..pieces.len())])
                .collect();
            let (mut plain, mut general) = (AsciiRun::default(), AsciiRun::default());
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for_each_folded(&text, |os, oe, c| {
                if c.is_ascii() {
                    plain.push(&text, os, oe, c);
                    general.push_general(&text, os, oe, c);
                } else {
                    if !plain.is_empty() {
                        plain.flush(&lex, &text, &mut got);
                    }
                    if !general.is_empty() {
                        general.flush(&lex, &text, &mut want);
                    }
                }
            });
            if !plain.is_empty() {
                plain.flush(&lex, &text, &mut got);
            }
            if !general.is_empty() {
                general.flush(&lex, &text, &mut want);
            }
            assert_eq!(got, want, "{text:?}");
            // The fused scan hands whole runs of ASCII bytes to the run: same candidates (the
            // test lexicon has no mixed pattern that could overlap them).
            lex.scan(&text, &mut scratch);
            let fused: Vec<(usize, usize, u32)> = scratch
                .cands
                .iter()
                .copied()
                .filter(|&(_, _, p)| lex.patterns[p as usize].ascii_word)
                .collect();
            assert_eq!(fused, want, "fused scan {text:?}");
        }
        // A full-width letter turns a run into the general form halfway.
        assert_eq!(matched(&lex, "say min ｇan ci now"), ["min ｇan ci"]);
    }

    #[test]
    fn initials_that_spell_english_words_are_not_generated() {
        // 他会爱他: ta hui ai ta → initials 「that」 (stop-listed); 会 also reads kuai → 「tkat」.
        let lex = lexicon("他会爱他\tA1.8\n", &[], "");
        assert!(lex.stats().initials_stopped >= 1, "{:?}", lex.stats());
        assert!(matched(&lex, "I know that is it").is_empty());
        assert_eq!(matched(&lex, "say tkat now"), ["tkat"]);
        assert_eq!(matched(&lex, "ta hui ai ta"), ["ta hui ai ta"]);
    }

    #[test]
    fn long_runs_of_chinese_grow_the_buffers_without_losing_a_hit() {
        let lex = lexicon("制造炸弹\tA1.4\n", &[], "");
        // Hits across the points where the tight loop runs out of room and hands one
        // character to the general path.
        let filler = "的".repeat(CodeSink::RUN_ROOM - 2);
        let text = format!("{filler}制造炸弹{filler}{filler}制造，炸弹");
        let hits = lex.find(&text);
        let spans: Vec<&str> = hits.iter().map(|h| h.matched.as_str()).collect();
        assert_eq!(spans, ["制造炸弹", "制造，炸弹"]);
        let first = filler.len();
        assert_eq!((hits[0].start, hits[0].end), (first, first + 12));
    }

    #[test]
    fn one_character_entries_and_pairs_across_skip_characters() {
        let lex = lexicon("毒\tA1.4\n毒品\tA1.4\n品\tA2.4\n", &[], "");
        let spans = |t: &str| -> Vec<String> { matched(&lex, t) };
        assert_eq!(spans("毒"), ["毒"]);
        assert_eq!(spans("有毒。"), ["毒"]);
        assert_eq!(
            spans("毒，\u{200B}品"),
            ["毒，\u{200B}品"],
            "the pair spans skip chars"
        );
        assert_eq!(spans("毒x品"), ["毒", "品"], "a letter breaks the pair");
        assert_eq!(spans("品毒品毒"), ["品", "毒品", "毒"]);
        // The last characters of a text (where the prefilter reads padding).
        assert_eq!(spans("abc毒"), ["毒"]);
        assert_eq!(spans("abc毒品"), ["毒品"]);
    }

    #[test]
    fn pinyin_across_spaces_and_punctuation_and_mixed_scripts() {
        let lex = lexicon(TEST_LEX, &[], "");
        assert_eq!(matched(&lex, "他说min-gan-ci。"), ["min-gan-ci"]);
        assert_eq!(matched(&lex, "min，gan，ci"), ["min，gan，ci"]);
        assert_eq!(
            matched(&lex, "敏感词minganci敏感词"),
            ["敏感词", "minganci", "敏感词"]
        );
        assert_eq!(
            matched(&lex, "MinGan词"),
            Vec::<String>::new(),
            "half pinyin, half Han"
        );
        // 「ü」 is written 「v」 in pinyin variants (绿色: lvse).
        let green = lexicon("绿色炸弹\tA1.4\n", &[], "");
        assert_eq!(matched(&green, "the lvsezhadan here"), ["lvsezhadan"]);
        assert_eq!(matched(&green, "Lv Se Zha Dan"), ["Lv Se Zha Dan"]);
        assert_eq!(
            matched(&lex, "bad person制造炸弹"),
            ["bad person", "制造炸弹"]
        );
    }

    fn n_total(a: u64, b: u64) -> u64 {
        a + b
    }

    #[test]
    fn hot_reload_swaps_while_readers_continue() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let handle = Arc::new(LexiconHandle::new(lexicon("旧词条\tA1.8\n", &[], "")));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (handle, stop) = (Arc::clone(&handle), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut old, mut new) = (0u64, 0u64);
                let text = "旧词条与新词条";
                // Runs until told to stop *and* the new lexicon has been seen: no timing.
                while !(stop.load(Ordering::Acquire) && new > 0) {
                    let lex = handle.load();
                    let hits = lex.find(text);
                    // Every snapshot is one whole lexicon: exactly one of the two terms.
                    assert_eq!(hits.len(), 1, "{hits:?}");
                    match hits[0].matched.as_str() {
                        "旧词条" => old += 1,
                        "新词条" => new += 1,
                        other => panic!("{other}"),
                    }
                }
                (old, new)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        let src = LexiconSources {
            entries: parse_lexicon("新词条\tA1.8\n", "new.tsv").unwrap_or_default(),
            ..LexiconSources::default()
        };
        handle.reload(&src).unwrap_or_else(|e| panic!("{e}"));
        stop.store(true, Ordering::Release);
        let (old, new) = reader.join().unwrap_or_else(|_| panic!("reader panicked"));
        assert!(new > 0 && n_total(old, new) > 0, "old {old}, new {new}");
        assert_eq!(handle.load().find("旧词条").len(), 0);
    }
}
