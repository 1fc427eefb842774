//! One module per container format.

pub mod markdown;
pub mod ooxml;
pub mod pdf;
pub mod png;
