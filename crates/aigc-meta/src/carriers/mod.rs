//! One module per container format.

pub mod exif;
pub mod flac;
pub mod gif;
pub mod isobmff;
pub mod jpeg;
pub mod markdown;
pub mod matroska;
pub mod mp3;
pub mod ogg;
pub mod ooxml;
pub mod pdf;
pub mod png;
pub mod tiff;
pub mod vorbis_comment;
pub mod webp;
