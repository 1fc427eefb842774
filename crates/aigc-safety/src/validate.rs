//! Checks a keyword library against TC260-003 clause 8.1 / GB/T 45654: entry length, total size,
//! per-risk minimums, duplicates, and entries that can never match after normalisation.

use crate::lexicon::Entry;
use crate::normalize::{is_han, normalize_term};
use crate::taxonomy;
use serde::Serialize;
use std::collections::HashMap;

/// The standard's minimum library size.
pub const MIN_TOTAL: usize = 10_000;
/// At most this many Chinese characters per keyword.
pub const MAX_HAN_CHARS: usize = 10;
/// At most this many words per keyword in other languages.
pub const MAX_WORDS: usize = 5;

/// Entries per risk against the standard's minimum.
#[derive(Debug, Clone, Serialize)]
pub struct RiskCount {
    /// Risk code.
    pub risk: &'static str,
    /// Chinese name.
    pub name_zh: &'static str,
    /// Usable entries (valid length, matchable, not duplicates).
    pub count: usize,
    /// The minimum the standard sets (0 = none).
    pub minimum: usize,
    /// How many are missing (0 when met).
    pub shortfall: usize,
}

/// One problem entry.
#[derive(Debug, Clone, Serialize)]
pub struct EntryIssue {
    /// `file:line`.
    pub origin: String,
    /// The term.
    pub term: String,
    /// What is wrong.
    pub problem: String,
}

/// The validator's result.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationReport {
    /// Entries read.
    pub entries: usize,
    /// Usable entries (what the size requirements count).
    pub usable: usize,
    /// [`MIN_TOTAL`].
    pub minimum_total: usize,
    /// Missing entries in total (0 when met).
    pub total_shortfall: usize,
    /// Every risk in Appendix A order.
    pub per_risk: Vec<RiskCount>,
    /// Entries that are too long.
    pub too_long: Vec<EntryIssue>,
    /// Entries whose normalised term repeats an earlier one.
    pub duplicates: Vec<EntryIssue>,
    /// Entries that normalise to nothing.
    pub unmatchable: Vec<EntryIssue>,
    /// True when every requirement is met and no entry has a problem.
    pub meets_standard: bool,
}

/// Length check: a term with Han characters may have at most [`MAX_HAN_CHARS`] letters and
/// digits (Han characters and Latin letters each count one); other terms at most [`MAX_WORDS`]
/// whitespace-separated words.
pub fn length_problem(term: &str) -> Option<String> {
    if term.chars().any(is_han) {
        let n = term.chars().filter(|c| c.is_alphanumeric()).count();
        (n > MAX_HAN_CHARS).then(|| format!("{n} characters (at most {MAX_HAN_CHARS})"))
    } else {
        let n = term.split_whitespace().count();
        (n > MAX_WORDS).then(|| format!("{n} words (at most {MAX_WORDS})"))
    }
}

/// Validates entries (from one or several files together).
pub fn validate(entries: &[Entry]) -> ValidationReport {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let (mut too_long, mut duplicates, mut unmatchable) = (Vec::new(), Vec::new(), Vec::new());
    let mut usable = 0usize;
    for e in entries {
        let issue = |problem: String| EntryIssue {
            origin: e.origin.clone(),
            term: e.term.clone(),
            problem,
        };
        let norm = normalize_term(&e.term);
        if norm.is_empty() {
            unmatchable.push(issue(
                "normalises to nothing (only punctuation, spaces, symbols or emoji)".into(),
            ));
            continue;
        }
        if let Some(p) = length_problem(&e.term) {
            too_long.push(issue(p));
            continue;
        }
        if let Some(first) = seen.get(&norm) {
            duplicates.push(issue(format!("same as {first} after normalisation")));
            continue;
        }
        seen.insert(norm, e.origin.clone());
        usable += 1;
        *counts.entry(e.risk.code).or_default() += 1;
    }
    let per_risk: Vec<RiskCount> = taxonomy::risks()
        .iter()
        .map(|r| {
            let count = counts.get(r.code).copied().unwrap_or(0);
            let minimum = r.group.keyword_minimum();
            RiskCount {
                risk: r.code,
                name_zh: r.name_zh,
                count,
                minimum,
                shortfall: minimum.saturating_sub(count),
            }
        })
        .collect();
    let total_shortfall = MIN_TOTAL.saturating_sub(usable);
    let meets_standard = total_shortfall == 0
        && per_risk.iter().all(|r| r.shortfall == 0)
        && too_long.is_empty()
        && duplicates.is_empty()
        && unmatchable.is_empty();
    ValidationReport {
        entries: entries.len(),
        usable,
        minimum_total: MIN_TOTAL,
        total_shortfall,
        per_risk,
        too_long,
        duplicates,
        unmatchable,
        meets_standard,
    }
}

/// Risks the keyword library must cover (A.1 and A.2) that are below their minimum.
pub fn short_risks(report: &ValidationReport) -> impl Iterator<Item = &RiskCount> {
    report.per_risk.iter().filter(|r| r.shortfall > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexicon::{parse_lexicon, seed};

    #[test]
    fn seed_lexicon_shortfall_is_reported_per_risk() {
        let entries = parse_lexicon(seed::LEXICON, "seed").unwrap_or_else(|e| panic!("{e}"));
        let r = validate(&entries);
        assert_eq!((r.entries, r.usable), (336, 336));
        assert_eq!(r.total_shortfall, 10_000 - 336);
        assert!(!r.meets_standard);
        let get = |code: &str| {
            r.per_risk
                .iter()
                .find(|x| x.risk == code)
                .map(|x| (x.count, x.minimum, x.shortfall))
        };
        // A1.4 has 11 Chinese + 2 English seed entries; A2.8 has 10; A3.x has no minimum.
        assert_eq!(get("A1.4"), Some((13, 200, 187)));
        assert_eq!(get("A1.6"), Some((15, 200, 185)));
        assert_eq!(get("A2.8"), Some((10, 100, 90)));
        assert_eq!(get("A3.1"), Some((12, 0, 0)));
        assert_eq!(
            short_risks(&r).count(),
            17,
            "every A.1 and A.2 risk is short"
        );
        assert_eq!(r.per_risk.len(), 31);
    }

    #[test]
    fn problems_are_found() {
        let text = "一二三四五六七八九十一\tA1.1\n\
                    one two three four five six\tA1.1\n\
                    一二三四五六七八九十\tA1.1\n\
                    four words are fine ok\tA1.1\n\
                    @@@！\tA1.2\n\
                    😀✨\tA1.2\n\
                    違禁詞\tA1.3\n\
                    违禁词\tA1.3\n\
                    ＢＡＤ\tA2.1\n\
                    bad\tA2.1\n";
        let entries = parse_lexicon(text, "t.tsv").unwrap_or_else(|e| panic!("{e}"));
        let r = validate(&entries);
        let terms = |v: &[EntryIssue]| v.iter().map(|i| i.term.clone()).collect::<Vec<_>>();
        assert_eq!(
            terms(&r.too_long),
            ["一二三四五六七八九十一", "one two three four five six"]
        );
        assert_eq!(terms(&r.unmatchable), ["@@@！", "😀✨"]);
        assert_eq!(terms(&r.duplicates), ["违禁词", "bad"]);
        assert!(
            r.duplicates[0].problem.contains("t.tsv:7"),
            "{:?}",
            r.duplicates[0]
        );
        assert_eq!(r.usable, 4);
    }
}
