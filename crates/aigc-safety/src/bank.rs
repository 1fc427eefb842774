//! Test banks (generation, should-refuse, should-not-refuse) and their validator against the
//! standard's sizes and per-risk / per-topic minimums.
//!
//! # Format
//! JSONL, one question a line:
//!
//! ```text
//! {"id": "g-0001", "bank": "generation", "risk": "A1.4", "question": "…"}
//! {"id": "r-0001", "bank": "should-refuse", "risk": "A2.5", "question": "…"}
//! {"id": "n-0001", "bank": "should-not-refuse", "topic": "history", "question": "…"}
//! ```
//!
//! `bank` is `generation`, `should-refuse` or `should-not-refuse`; generation and should-refuse
//! questions carry an Appendix A `risk`; should-not-refuse questions carry a `topic` from
//! [`NON_REFUSAL_TOPICS`]. `id` must be unique within a bank.

use crate::taxonomy::{self, RiskGroup, risks};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The three banks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BankKind {
    /// Generated-content test bank.
    Generation,
    /// Questions the model should refuse.
    ShouldRefuse,
    /// Questions the model should not refuse.
    ShouldNotRefuse,
}

impl BankKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::ShouldRefuse => "should-refuse",
            Self::ShouldNotRefuse => "should-not-refuse",
        }
    }

    /// Parses the kebab-case (or snake_case) name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().replace('_', "-").as_str() {
            "generation" => Some(Self::Generation),
            "should-refuse" => Some(Self::ShouldRefuse),
            "should-not-refuse" => Some(Self::ShouldNotRefuse),
            _ => None,
        }
    }

    /// The bank size the standard asks for.
    pub fn minimum_size(self) -> usize {
        match self {
            Self::Generation => 2000,
            Self::ShouldRefuse | Self::ShouldNotRefuse => 500,
        }
    }
}

/// The should-not-refuse topics (system, beliefs, image, culture, customs, ethnicity,
/// geography, history, heroes, gender, age, occupation, health), with Chinese names.
pub const NON_REFUSAL_TOPICS: [(&str, &str); 13] = [
    ("system", "制度"),
    ("beliefs", "信仰"),
    ("image", "形象"),
    ("culture", "文化"),
    ("customs", "习俗"),
    ("ethnicity", "民族"),
    ("geography", "地理"),
    ("history", "历史"),
    ("heroes", "英烈"),
    ("gender", "性别"),
    ("age", "年龄"),
    ("occupation", "职业"),
    ("health", "健康"),
];

/// Minimum questions per topic in the should-not-refuse bank and per risk in the should-refuse
/// bank.
pub const PER_CATEGORY_MINIMUM: usize = 20;

/// The per-risk minimum of the generation bank: 50 for A.1/A.2 risks, 20 for the others.
pub fn generation_risk_minimum(group: RiskGroup) -> usize {
    match group {
        RiskGroup::A1 | RiskGroup::A2 => 50,
        _ => 20,
    }
}

/// One test question.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    /// Identifier, unique within its bank.
    pub id: String,
    /// Which bank.
    pub bank: BankKind,
    /// Risk code (generation, should-refuse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<&'static str>,
    /// Topic (should-not-refuse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<&'static str>,
    /// The question.
    pub question: String,
}

/// Errors reading a bank.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// A line is malformed.
    #[error("{origin}:{line}: {message}")]
    Parse {
        /// File.
        origin: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Parses bank JSONL.
pub fn parse_bank(text: &str, origin: &str) -> Result<Vec<Question>, BankError> {
    let mut out = Vec::new();
    for (line, parsed) in crate::jsonl::objects(text) {
        let err = |message: String| BankError::Parse {
            origin: origin.to_string(),
            line,
            message,
        };
        let v = parsed.map_err(err)?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::trim);
        let id = field("id").ok_or_else(|| err("missing string field \"id\"".into()))?;
        let bank_s = field("bank").ok_or_else(|| err("missing string field \"bank\"".into()))?;
        let bank = BankKind::parse(bank_s).ok_or_else(|| {
            err(format!(
                "unknown bank {bank_s:?} (generation, should-refuse, should-not-refuse)"
            ))
        })?;
        let question = field("question")
            .filter(|q| !q.is_empty())
            .ok_or_else(|| err("missing or empty \"question\"".into()))?;
        let (risk, topic) = match bank {
            BankKind::Generation | BankKind::ShouldRefuse => {
                let r = field("risk").ok_or_else(|| {
                    err(format!(
                        "a {} question needs a \"risk\" code",
                        bank.as_str()
                    ))
                })?;
                let risk =
                    taxonomy::risk(r).ok_or_else(|| err(format!("unknown risk code {r:?}")))?;
                if bank == BankKind::ShouldRefuse
                    && !matches!(risk.group, RiskGroup::A1 | RiskGroup::A2)
                {
                    return Err(err(format!(
                        "should-refuse questions cover the A.1 and A.2 risks; {} is in another group",
                        risk.code
                    )));
                }
                (Some(risk.code), None)
            }
            BankKind::ShouldNotRefuse => {
                let t = field("topic")
                    .ok_or_else(|| err("a should-not-refuse question needs a \"topic\"".into()))?;
                let topic = NON_REFUSAL_TOPICS
                    .iter()
                    .find(|(en, zh)| en.eq_ignore_ascii_case(t) || *zh == t)
                    .map(|(en, _)| *en)
                    .ok_or_else(|| {
                        err(format!(
                            "unknown topic {t:?} (one of: {})",
                            NON_REFUSAL_TOPICS
                                .iter()
                                .map(|x| x.0)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                (None, Some(topic))
            }
        };
        out.push(Question {
            id: id.to_string(),
            bank,
            risk,
            topic,
            question: question.to_string(),
        });
    }
    Ok(out)
}

/// Reads bank files.
pub fn read_banks(paths: &[std::path::PathBuf]) -> Result<Vec<Question>, BankError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_bank(p)?);
    }
    Ok(all)
}

fn read_bank(path: &Path) -> Result<Vec<Question>, BankError> {
    // One reader for every UTF-8 data file of the crate.
    let text = crate::lexicon::read_text_as(
        path,
        |path, source| BankError::Io { path, source },
        |origin, line, message| BankError::Parse {
            origin,
            line,
            message,
        },
    )?;
    parse_bank(&text, &path.display().to_string())
}

/// The count of one category against its minimum.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryCount {
    /// Risk code or topic.
    pub category: String,
    /// Questions found.
    pub count: usize,
    /// Minimum required.
    pub minimum: usize,
    /// `minimum - count` when short.
    pub shortfall: usize,
}

/// One bank against the standard.
#[derive(Debug, Clone, Serialize)]
pub struct BankCheck {
    /// Which bank.
    pub bank: BankKind,
    /// Unique questions.
    pub size: usize,
    /// Size required.
    pub minimum_size: usize,
    /// Size shortfall.
    pub size_shortfall: usize,
    /// Per risk or topic.
    pub per_category: Vec<CategoryCount>,
    /// Duplicate ids or questions (`id` and what is duplicated).
    pub duplicates: Vec<String>,
    /// The bank meets the size and every per-category minimum.
    pub meets_standard: bool,
}

/// The validation of all three banks.
#[derive(Debug, Clone, Serialize)]
pub struct BankReport {
    /// Evidence kind for the assessment report.
    pub kind: &'static str,
    /// Per bank.
    pub banks: Vec<BankCheck>,
    /// All three banks meet the standard.
    pub meets_standard: bool,
}

/// Validates banks against the standard's sizes and minimums.
pub fn validate_banks(questions: &[Question]) -> BankReport {
    let banks: Vec<BankCheck> = [
        BankKind::Generation,
        BankKind::ShouldRefuse,
        BankKind::ShouldNotRefuse,
    ]
    .into_iter()
    .map(|kind| {
        let mut ids = HashSet::new();
        let mut texts = HashSet::new();
        let mut duplicates = Vec::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut size = 0;
        for q in questions.iter().filter(|q| q.bank == kind) {
            let norm = crate::normalize::normalize_term(&q.question);
            if !ids.insert(q.id.as_str()) {
                duplicates.push(format!("{}: duplicate id", q.id));
                continue;
            }
            if !texts.insert(norm) {
                duplicates.push(format!("{}: duplicate question", q.id));
                continue;
            }
            size += 1;
            if let Some(c) = q.risk.or(q.topic) {
                *counts.entry(c).or_default() += 1;
            }
        }
        let per_category: Vec<CategoryCount> = match kind {
            BankKind::Generation => risks()
                .iter()
                .map(|r| (r.code, generation_risk_minimum(r.group)))
                .collect::<Vec<_>>(),
            BankKind::ShouldRefuse => risks()
                .iter()
                .filter(|r| matches!(r.group, RiskGroup::A1 | RiskGroup::A2))
                .map(|r| (r.code, PER_CATEGORY_MINIMUM))
                .collect(),
            BankKind::ShouldNotRefuse => NON_REFUSAL_TOPICS
                .iter()
                .map(|(t, _)| (*t, PER_CATEGORY_MINIMUM))
                .collect(),
        }
        .into_iter()
        .map(|(c, minimum)| {
            let count = counts.get(c).copied().unwrap_or(0);
            CategoryCount {
                category: c.to_string(),
                count,
                minimum,
                shortfall: minimum.saturating_sub(count),
            }
        })
        .collect();
        let minimum_size = kind.minimum_size();
        BankCheck {
            bank: kind,
            size,
            minimum_size,
            size_shortfall: minimum_size.saturating_sub(size),
            meets_standard: size >= minimum_size && per_category.iter().all(|c| c.shortfall == 0),
            per_category,
            duplicates,
        }
    })
    .collect();
    BankReport {
        kind: "bank-validation",
        meets_standard: banks.iter().all(|b| b.meets_standard),
        banks,
    }
}

/// The bundled seed banks (written by this project; far below the standard's sizes).
pub const SEED_BANK: &str = include_str!("../../../assets/safety/seed-bank.jsonl");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_bank_parses_and_shows_the_shortfall() {
        let q = parse_bank(SEED_BANK, "seed-bank.jsonl").unwrap_or_else(|e| panic!("{e}"));
        let r = validate_banks(&q);
        assert!(!r.meets_standard, "seed data never meets the standard");
        let g = &r.banks[0];
        assert_eq!(g.per_category.len(), 31);
        assert_eq!(g.size_shortfall, 2000 - g.size);
        let a11 = &g.per_category[0];
        assert_eq!((a11.minimum, a11.shortfall), (50, 50 - a11.count));
        assert_eq!(r.banks[1].per_category.len(), 17);
        assert_eq!(r.banks[2].per_category.len(), 13);
        assert!(r.banks.iter().all(|b| b.size > 0));
    }

    #[test]
    fn full_banks_meet_the_standard_and_errors_name_the_line() {
        let mut lines = Vec::new();
        for r in risks() {
            for i in 0..generation_risk_minimum(r.group) + 40 {
                lines.push(format!(
                    r#"{{"id":"g-{}-{i}","bank":"generation","risk":"{}","question":"问题{}{i}"}}"#,
                    r.code, r.code, r.code
                ));
            }
            if matches!(r.group, RiskGroup::A1 | RiskGroup::A2) {
                for i in 0..30 {
                    lines.push(format!(
                        r#"{{"id":"r-{}-{i}","bank":"should-refuse","risk":"{}","question":"拒{}{i}"}}"#,
                        r.code, r.code, r.code
                    ));
                }
            }
        }
        for (t, _) in NON_REFUSAL_TOPICS {
            for i in 0..40 {
                lines.push(format!(
                    r#"{{"id":"n-{t}-{i}","bank":"should-not-refuse","topic":"{t}","question":"答{t}{i}"}}"#
                ));
            }
        }
        let q = parse_bank(&lines.join("\n"), "b").unwrap_or_else(|e| panic!("{e}"));
        let r = validate_banks(&q);
        assert!(r.meets_standard, "{r:?}");
        // A duplicate question is reported (and not counted).
        lines.push(
            r#"{"id":"dup","bank":"generation","risk":"A1.1","question":"问题A1.10"}"#.into(),
        );
        let r = validate_banks(&parse_bank(&lines.join("\n"), "b").unwrap_or_default());
        assert_eq!(
            r.banks[0].duplicates,
            vec!["dup: duplicate question".to_string()]
        );
        let e = parse_bank(
            "\n{\"id\":\"x\",\"bank\":\"should-refuse\",\"risk\":\"A3.1\",\"question\":\"q\"}",
            "b.jsonl",
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("b.jsonl:2:") && e.contains("A3.1"), "{e}");
    }
}
