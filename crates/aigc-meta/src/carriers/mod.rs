//! One module per container format.

pub mod flac;
pub mod mp3;
pub mod ogg;
pub mod png;
pub mod vorbis_comment;
