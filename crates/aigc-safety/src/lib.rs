//! Text safety checking for generative AI services (TC260-003 / GB/T 45654-2025).
//!
//! - [`taxonomy`]: the 31 Appendix A risks (`A1.1` … `A5.2`) from `assets/safety/taxonomy.tsv`.
//! - [`normalize`]: one-pass folding (width, case, traditional → simplified, digit styles, skip
//!   characters) with an offset map so every reported span points into the original text.
//! - [`lexicon`]: the lexicon file format (TSV `term<TAB>risk<TAB>severity<TAB>source<TAB>lang`,
//!   documented there), compilation into one leftmost-longest matcher (prefilter + pattern groups)
//!   with pinyin / initials / homophone variants, allow-list by coverage, hot reload
//!   ([`lexicon::LexiconHandle`]).
//! - [`validate`]: the keyword-library checks of the standard, with the shortfall per risk.
//! - [`pii`]: personal-information detectors with validators, context words and masking.
//! - [`classifier`]: a linear one-vs-rest model over the 31 risks (hashed character n-grams +
//!   lexicon-hit features), its training, evaluation and weights file.
//! - [`judge`]: the [`judge::Judge`] trait (local lexicon + classifier, or a remote guard model
//!   over an OpenAI-compatible endpoint) and the three-way refusal judge.
//! - [`bank`]: test banks and their validator; [`eval`]: corpus and model evaluations with the
//!   standard's sample sizes, thresholds and Wilson intervals; [`chat`]: the HTTP client.
//! - [`report`]: the per-clause assessment report (Markdown / HTML).
//! - [`check`]: one call that runs all of the above on a text and gives a verdict.
//!
//! The bundled data in `assets/safety/` is **seed data** written by this project for tests and
//! demos; it does not satisfy the standard's library sizes (the validator shows the shortfall).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod anchored;
pub mod bank;
pub mod chat;
pub mod check;
pub mod classifier;
pub mod eval;
mod jsonl;
pub mod judge;
pub mod lexicon;
pub mod normalize;
pub mod pii;
pub mod report;
pub mod taxonomy;
pub mod validate;
mod words;

pub use check::{CheckReport, Verdict, check, check_with};
pub use lexicon::{
    CompiledLexicon, Hit, LexiconError, LexiconHandle, LexiconSources, Scratch, Severity,
};
