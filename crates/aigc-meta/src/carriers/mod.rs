//! One module per container format.

pub mod exif;
pub mod gif;
pub mod jpeg;
pub mod png;
pub mod tiff;
pub mod webp;
