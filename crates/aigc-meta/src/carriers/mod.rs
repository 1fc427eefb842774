//! One module per container format.

pub mod isobmff;
pub mod matroska;
pub mod png;
