//! One module per container format.

pub mod isobmff;
pub mod png;
