//! The two journeys of aigc-mark, over any supported format:
//! **label** (sniff → plan → apply marks → write metadata → verify the output → atomic write →
//! ledger) and **inspect** (sniff → read every label → check it → verify signatures → report).
//! This is the only crate that knows the order of the steps.

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod id;
mod inspect;
mod io;
mod label;
pub mod robustness;
pub mod watermark;

pub use id::new_produce_id;
pub use inspect::{FileReport, LabelFinding, Verdict, inspect_bytes, inspect_file};
pub use io::{InputFile, OutputOptions, atomic_write_rewrite, same_file};
pub use label::{
    ExplicitOptions, ExplicitReport, LabelOutcome, LabelRequest, LabelRole, MarkPlan, MarkStatus,
    PreparedLabel, label_bytes, label_file,
};
pub use watermark::{WatermarkError, WatermarkSettings};

use std::path::Path;

/// Why a journey failed; every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The content is not a format aigc-mark recognises.
    #[error("{path}: unrecognised file format (looked at the content, not the name)")]
    UnknownFormat { path: String },
    /// The format is recognised but cannot hold a metadata label.
    #[error("{path}: {format} files cannot carry a metadata label")]
    NoCarrier {
        path: String,
        format: aigc_core::Format,
    },
    /// The container is damaged or unsupported.
    #[error("{path}: {source}")]
    Meta {
        path: String,
        #[source]
        source: aigc_meta::MetaError,
    },
    /// The label to write is invalid.
    #[error("{path}: cannot write this label: {source}")]
    Record {
        path: String,
        #[source]
        source: aigc_core::RecordError,
    },
    /// The request does not fit the file (e.g. propagating a label that is absent).
    #[error("{path}: {detail}")]
    Request { path: String, detail: String },
    /// The output did not read back as written; nothing was written.
    #[error("{path}: verification of the output failed, nothing written: {detail}")]
    Verify { path: String, detail: String },
    /// The explicit label could not be made (wording, font coverage, image too small, codec).
    #[error("{path}: {source}")]
    Explicit {
        path: String,
        #[source]
        source: aigc_explicit::ExplicitError,
    },
    /// The ledger failed; the output was not kept.
    #[error("{0}")]
    Ledger(#[from] aigc_ledger::LedgerError),
}

impl PipelineError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the error is about the input or the request (exit code 2) rather than a check.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, PipelineError::Verify { .. })
    }
}
