//! One module per container format.

pub mod exif;
pub mod jpeg;
pub mod png;
pub mod webp;
