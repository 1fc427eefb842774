//! The label model of aigc-mark: the GB 45438-2025 Annex E `AIGC` record, provider codes,
//! the parser for label values found in files, and file-format sniffing from magic bytes.

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod format;
pub mod jsonl;
pub mod label;
pub mod parse;
pub mod problem;
pub mod provider;
pub mod record;
pub mod secret_file;
pub mod user_dirs;

pub use format::{Format, FormatFamily, sniff};
pub use label::Label;
pub use parse::{LabelForm, LegacyRecord, ParsedLabel, parse_label_value};
pub use problem::{Problem, Severity};
pub use provider::{ProviderCode, ProviderCodeError, uscc_check_char};
pub use record::{AigcRecord, RecordError, is_annex_e_char, is_annex_e_value};
