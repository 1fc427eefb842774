//! One module per container format.

pub mod png;
pub mod riff;
pub mod wav;
