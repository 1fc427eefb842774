//! Text safety checking for generative AI services (TC260-003 / GB/T 45654-2025).
//!
//! - [`taxonomy`]: the 31 Appendix A risks (`A1.1` … `A5.2`) from `assets/safety/taxonomy.tsv`.
//! - [`normalize`]: one-pass folding (width, case, traditional → simplified, digit styles, skip
//!   characters) with an offset map so every reported span points into the original text.
//! - [`lexicon`]: the lexicon file format (TSV `term<TAB>risk<TAB>severity<TAB>source<TAB>lang`,
//!   documented there), compilation into one leftmost-longest double-array Aho-Corasick matcher
//!   with pinyin / initials / homophone variants, allow-list by coverage, hot reload
//!   ([`lexicon::LexiconHandle`]).
//! - [`validate`]: the keyword-library checks of the standard, with the shortfall per risk.
//! - [`pii`]: personal-information detectors with validators, context words and masking.
//! - [`check`]: one call that runs all of the above on a text and gives a verdict.
//!
//! The bundled data in `assets/safety/` is **seed data** written by this project for tests and
//! demos; it does not satisfy the standard's library sizes (the validator shows the shortfall).

pub mod check;
pub mod lexicon;
pub mod normalize;
pub mod pii;
pub mod taxonomy;
pub mod validate;

pub use check::{CheckReport, Verdict, check, check_with};
pub use lexicon::{CompiledLexicon, Hit, LexiconError, LexiconHandle, LexiconSources, Severity};
