//! The trait every container format implements, and what reading a file returns.

use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format, ParsedLabel, parse_label_value};
use serde::Serialize;

/// A label value found in a file, with where it was and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundLabel {
    /// Where the value sits, e.g. `XMP (APP1) TC260:AIGC` or `ID3v2.4 TXXX:AIGC`.
    pub placement: String,
    /// Whether this is the placement the 2025 guides name first for the format (the one we write).
    pub primary: bool,
    /// The value as stored (after container-level unescaping, e.g. XML entities).
    pub value: String,
    /// The value parsed as an Annex E (or legacy) label.
    pub parsed: ParsedLabel,
}

impl FoundLabel {
    /// Parses `value` found at `placement`.
    pub fn new(placement: impl Into<String>, primary: bool, value: impl Into<String>) -> Self {
        let value = value.into();
        let parsed = parse_label_value(&value);
        Self {
            placement: placement.into(),
            primary,
            value,
            parsed,
        }
    }
}

/// One container format's implicit-label placement.
///
/// `write` removes every label the carrier can find (all placements it reads) and writes exactly
/// one, in the primary placement; all bytes that are not metadata stay as they were.
pub trait Carrier: Send + Sync {
    /// The formats this carrier handles.
    fn formats(&self) -> &'static [Format];

    /// Where the label is written, for documentation and reports.
    fn placement(&self) -> &'static str;

    /// Every label in `input`, in file order.
    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError>;

    /// `input` with exactly one label: `record` in the primary placement.
    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError>;
}
