//! One module per container format.

pub mod avi;
pub mod flv;
pub mod png;
pub mod riff;
pub mod wav;
