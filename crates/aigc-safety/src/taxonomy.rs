//! The 31 risks of TC260-003 / GB/T 45654 Appendix A, loaded from `assets/safety/taxonomy.tsv`.

use serde::Serialize;
use std::sync::OnceLock;

/// The taxonomy file, compiled into the binary so every build knows the same 31 codes.
const TAXONOMY_TSV: &str = include_str!("../../../assets/safety/taxonomy.tsv");

/// One of the five Appendix A groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RiskGroup {
    /// A.1 violations of core socialist values (8 risks; keyword library ≥ 200 each).
    A1,
    /// A.2 discriminatory content (9 risks; keyword library ≥ 100 each).
    A2,
    /// A.3 commercial violations (5 risks).
    A3,
    /// A.4 infringing others' lawful rights (7 risks).
    A4,
    /// A.5 unmet safety needs of special service types (2 risks).
    A5,
}

impl RiskGroup {
    /// The minimum keyword count per risk of this group that the standard sets (0 = none).
    pub fn keyword_minimum(self) -> usize {
        match self {
            RiskGroup::A1 => 200,
            RiskGroup::A2 => 100,
            _ => 0,
        }
    }
}

/// One Appendix A risk.
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    /// Stable code, `A1.1` … `A5.2`.
    pub code: &'static str,
    /// The group it belongs to.
    pub group: RiskGroup,
    /// The standard's Chinese wording.
    pub name_zh: &'static str,
    /// An English rendering.
    pub name_en: &'static str,
}

/// Every risk in Appendix A order.
pub fn risks() -> &'static [Risk] {
    static RISKS: OnceLock<Vec<Risk>> = OnceLock::new();
    RISKS.get_or_init(|| parse_taxonomy(TAXONOMY_TSV))
}

/// Looks a risk up by its code (case-insensitive, `a1.1` = `A1.1`).
pub fn risk(code: &str) -> Option<&'static Risk> {
    risks().iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// The index of a risk in [`risks`], used as a compact id.
pub fn risk_index(code: &str) -> Option<u8> {
    risks()
        .iter()
        .position(|r| r.code.eq_ignore_ascii_case(code))
        .and_then(|i| u8::try_from(i).ok())
}

fn parse_taxonomy(text: &'static str) -> Vec<Risk> {
    // The file is ours and compiled in; a malformed line is skipped and the unit test below
    // catches it (exactly 31 risks), so no panic path exists at run time.
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let code = cols.next()?;
            let group = match cols.next()? {
                "A.1" => RiskGroup::A1,
                "A.2" => RiskGroup::A2,
                "A.3" => RiskGroup::A3,
                "A.4" => RiskGroup::A4,
                "A.5" => RiskGroup::A5,
                _ => return None,
            };
            Some(Risk {
                code,
                group,
                name_zh: cols.next()?,
                name_en: cols.next()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_a_has_31_risks_in_five_groups() {
        let r = risks();
        assert_eq!(r.len(), 31);
        let count = |g| r.iter().filter(|x| x.group == g).count();
        assert_eq!(
            [
                count(RiskGroup::A1),
                count(RiskGroup::A2),
                count(RiskGroup::A3),
                count(RiskGroup::A4),
                count(RiskGroup::A5)
            ],
            [8, 9, 5, 7, 2]
        );
        let mut codes: Vec<_> = r.iter().map(|x| x.code).collect();
        codes.dedup();
        assert_eq!(codes.len(), 31, "codes are unique");
        assert_eq!(risk("a2.4").map(|x| x.name_zh), Some("地域歧视内容"));
        assert_eq!(risk_index("A5.2"), Some(30));
        assert!(risk("A6.1").is_none());
    }
}
