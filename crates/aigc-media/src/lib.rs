//! Streaming decode and encode of media signals, shared by the watermarks and (later) the visible
//! labels. Audio: a PCM reader that yields interleaved `f32` blocks one decoded packet at a time
//! (memory does not grow with the file's length) and a WAV writer at the input's bit depth.

pub mod audio;

pub use audio::{AudioCodec, AudioInfo, AudioReader, MediaError, WavWriter};
