//! The `Label` element of Annex E: is / possibly / suspected AI-generated.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The Annex E `Label` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    /// "1": the content is AI-generated (属于).
    #[serde(rename = "1")]
    Generated,
    /// "2": the content is possibly AI-generated, e.g. declared so by the uploader (可能为).
    #[serde(rename = "2")]
    Possibly,
    /// "3": the content is suspected to be AI-generated, e.g. detected by a platform (疑似为).
    #[serde(rename = "3")]
    Suspected,
}

impl Label {
    /// The string stored in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Generated => "1",
            Label::Possibly => "2",
            Label::Suspected => "3",
        }
    }

    /// A short English description.
    pub fn describe(self) -> &'static str {
        match self {
            Label::Generated => "AI-generated",
            Label::Possibly => "possibly AI-generated (declared)",
            Label::Suspected => "suspected AI-generated (detected)",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a `Label` string other than "1", "2" or "3".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Label must be \"1\" (AI-generated), \"2\" (possibly) or \"3\" (suspected), not {0:?}")]
pub struct BadLabel(pub String);

impl FromStr for Label {
    type Err = BadLabel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1" => Ok(Label::Generated),
            "2" => Ok(Label::Possibly),
            "3" => Ok(Label::Suspected),
            other => Err(BadLabel(other.to_string())),
        }
    }
}
