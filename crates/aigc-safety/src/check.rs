//! One text check: lexicon hits, personal information and an overall verdict.

use crate::classifier::{Classifier, RiskScore};
use crate::lexicon::{CompiledLexicon, Hit, Scratch, Severity};
use crate::pii::{PiiFinding, detect_pii, mask_text};
use serde::Serialize;

/// The risk that personal information in an answer falls under (A.4 personal information).
pub const PII_RISK: &str = "A4.6";

/// What the check concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing found.
    Pass,
    /// Findings below the blocking severity, or a classifier flag: a person should look.
    Review,
    /// At least one finding at or above the blocking severity.
    Block,
}

/// A personal-information finding with its risk and severity.
#[derive(Debug, Clone, Serialize)]
pub struct PiiReport {
    /// Always [`PII_RISK`].
    pub risk: &'static str,
    /// `medium` for confident findings (score ≥ 0.8), else `low`.
    pub severity: Severity,
    /// The finding.
    #[serde(flatten)]
    pub finding: PiiFinding,
}

/// The result of checking one text.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The overall verdict.
    pub verdict: Verdict,
    /// The severity at which the verdict becomes `block`.
    pub block_at: Severity,
    /// Characters checked.
    pub chars: usize,
    /// Lexicon hits, in text order.
    pub findings: Vec<Hit>,
    /// Personal information, in text order.
    pub pii: Vec<PiiReport>,
    /// Classifier scores, highest first: every flagged risk, topped up to three; empty when no classifier was given.
    pub classifier: Vec<RiskScore>,
    /// The text with personal information masked (absent when there was none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_text: Option<String>,
}

/// Checks `text` with the lexicon, PII detectors and (optionally) the classifier; `buf` holds
/// buffers reused from text to text. A classifier flag alone makes the verdict at least `review`.
pub fn check_with(
    lexicon: &CompiledLexicon,
    classifier: Option<&Classifier>,
    text: &str,
    block_at: Severity,
    buf: &mut Scratch,
) -> CheckReport {
    let findings = lexicon.find_with(text, buf);
    let mut scores = classifier.map_or_else(Vec::new, |c| c.score_with(text, &findings, buf));
    scores.sort_by(|a, b| b.score.total_cmp(&a.score));
    let flagged = scores.iter().filter(|s| s.flagged).count();
    // Every flagged risk, topped up to three scores for context.
    scores.truncate(flagged.max(3));
    let found = detect_pii(text);
    let masked_text = (!found.is_empty()).then(|| mask_text(text, &found));
    let pii: Vec<PiiReport> = found
        .into_iter()
        .map(|finding| PiiReport {
            risk: PII_RISK,
            severity: if finding.score >= 0.8 {
                Severity::Medium
            } else {
                Severity::Low
            },
            finding,
        })
        .collect();
    let severities = findings
        .iter()
        .map(|h| h.severity)
        .chain(pii.iter().map(|p| p.severity));
    let mut verdict = Verdict::Pass;
    for s in severities {
        if s >= block_at {
            verdict = Verdict::Block;
            break;
        }
        verdict = Verdict::Review;
    }
    if verdict == Verdict::Pass && flagged > 0 {
        verdict = Verdict::Review;
    }
    CheckReport {
        verdict,
        block_at,
        chars: text.chars().count(),
        findings,
        pii,
        classifier: scores,
        masked_text,
    }
}

/// Checks `text` with a fresh buffer.
pub fn check(
    lexicon: &CompiledLexicon,
    classifier: Option<&Classifier>,
    text: &str,
    block_at: Severity,
) -> CheckReport {
    check_with(lexicon, classifier, text, block_at, &mut Scratch::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexicon::LexiconSources;

    #[test]
    fn verdicts() {
        let lex = CompiledLexicon::compile(&LexiconSources::seed().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let r = check(&lex, None, "今天天气很好。", Severity::Medium);
        assert_eq!(
            (r.verdict, r.findings.len(), r.pii.len()),
            (Verdict::Pass, 0, 0)
        );
        let r = check(&lex, None, "别信假新闻", Severity::Medium);
        assert_eq!(r.verdict, Verdict::Review, "假新闻 is low: {r:?}");
        assert_eq!(
            check(&lex, None, "别信假新闻", Severity::Low).verdict,
            Verdict::Block
        );
        let r = check(
            &lex,
            None,
            "教你制·造炸弹，联系我的邮箱a@b.cn",
            Severity::Medium,
        );
        assert_eq!(r.verdict, Verdict::Block);
        assert_eq!(r.findings[0].risk, "A1.4");
        assert_eq!(r.pii[0].risk, "A4.6");
        assert_eq!(
            r.masked_text.as_deref(),
            Some("教你制·造炸弹，联系我的邮箱a***@b.cn")
        );
    }
}
