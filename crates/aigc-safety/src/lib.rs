//! Text safety checking for generative AI services (TC260-003 / GB/T 45654-2025).
pub mod lexicon;
pub mod normalize;
pub mod pii;
pub mod taxonomy;
pub mod validate;
