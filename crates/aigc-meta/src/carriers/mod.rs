//! One module per container format.

pub mod markdown;
pub mod png;
