//! One module per container format.

pub mod avi;
pub mod exif;
pub mod flac;
pub mod flv;
pub mod gif;
pub mod html;
pub mod isobmff;
pub mod jpeg;
pub mod markdown;
pub mod matroska;
pub mod mp3;
pub mod ogg;
pub mod ooxml;
pub mod pdf;
pub mod png;
pub mod riff;
pub mod tiff;
pub mod vorbis_comment;
pub mod wav;
pub mod webp;
