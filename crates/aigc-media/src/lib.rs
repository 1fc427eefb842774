//! Streaming decode and encode of media signals, shared by the watermarks and the visible
//! labels. Audio: one PCM reader that yields interleaved `f32` blocks one decoded packet at a
//! time (symphonia first, the FFmpeg libraries for the rest; memory does not grow with the
//! file's length) and one atomic writer that re-encodes in the input's format (WAV through
//! hound; FLAC, MP3, AAC, Vorbis and Opus through the FFmpeg libraries).

// Library code never unwraps: everything it handles may come from outside.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audio;

pub use audio::{
    AudioCodec, AudioContainer, AudioInfo, AudioReader, AudioWriter, DecoderBackend, MediaError,
    OutputFormat, PcmSink, WavFormat, WavWriter, WriteSummary,
};
