//! One module per container format.

pub mod markdown;
pub mod ooxml;
pub mod png;
