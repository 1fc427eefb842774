//! One module per container format.

pub mod png;
