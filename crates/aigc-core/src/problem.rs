//! Problems found while checking a label: what a report shows next to each label.

use serde::Serialize;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The label still counts but departs from the standard's recommendations.
    Warning,
    /// The label does not meet Annex E.
    Error,
}

/// One problem with a label or its placement, with a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// How serious it is.
    pub severity: Severity,
    /// Stable identifier, e.g. `bad-label-value`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl Problem {
    /// An Annex E violation.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
        }
    }

    /// A departure from a recommendation.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            code,
            message: message.into(),
        }
    }
}
