//! The audio watermark: keyed patchwork marking of FFT magnitudes, blind detection.
//!
//! Design (our own; the idea of patchwork marking in FFT magnitudes is from the published
//! literature and audiowmark's description, no code was copied):
//!
//! - **Frames.** The signal is cut into non-overlapping frames of 23.2 ms (1024 samples at
//!   44.1 kHz; the frame length in samples scales with the sample rate, so frame duration and
//!   bin frequencies are the same at every rate and a resampled file needs no resampling back).
//!   Frame `j` starts at sample `round(j · hop)` with a real-valued hop.
//! - **Cells.** Each frame has 80 bins of 43 Hz from 861 Hz to 4.3 kHz. A block of
//!   [`BLOCK_FRAMES`] frames (9.3 s) × 80 bins is split by a keyed permutation: a quarter of the
//!   cells carry the keyed synchronisation pattern, the rest carry the 306 coded chips of
//!   [`crate::codec::encode_payload`] (each chip in ~78 cells with keyed signs). Blocks repeat, so
//!   any 9.3 s excerpt holds every cell once, and longer excerpts add up (soft combination).
//! - **Embedding.** Per frame and channel: Hann window, FFT, every cell's bin is scaled by
//!   `1 ± strength`, the difference goes back through the inverse FFT, is tapered by the window
//!   again (no discontinuity at frame edges) and added. The change is proportional to the signal
//!   (silence stays silent); a limiter on the difference keeps every sample within full scale.
//!   The same multiplicative mark in every channel means any downmix carries it too.
//! - **Detection.** Channels are mixed to mono. For each hypothesis (sub-frame offset in
//!   [`SUB_OFFSETS`] steps, replay speed) frames are analysed; a cell's value is its log
//!   magnitude minus the mean of the same bin in the two frames on each side (removes the host's
//!   stationary spectrum). Values are folded modulo the block; for every block phase the
//!   normalised correlation `z` with the sync pattern is standard normal on unmarked audio, and
//!   its false-positive probability is multiplied by the number of hypotheses (offsets × phases
//!   × speeds). The best hypothesis gives the soft chips for [`crate::codec::decode_payload`];
//!   a payload is only returned when its keyed check passes. A second pass at the best
//!   hypothesis scores 2-second windows to locate the mark in time.

mod detect;
mod embed;
mod file;
mod layout;

pub use detect::{AudioDetection, AudioDetector, AudioLocator, DetectOptions, MarkedSpan};
pub use embed::{AudioEmbedder, EmbedStats};
pub use file::{
    AudioWatermarkError, EmbedReport, detect_file, detect_file_with, embed_file, embed_file_as,
};

/// Frames per second at the reference rate: 44 100 / 1024.
pub const REFERENCE_RATE: f64 = 44_100.0;
/// Frame length at the reference rate.
pub const REFERENCE_FRAME: f64 = 1024.0;
/// First marked bin (861 Hz at 43.07 Hz per bin).
pub const FIRST_BIN: usize = 20;
/// Bins marked per frame (861 Hz – 4.3 kHz).
pub const BINS: usize = 80;
/// Frames per block (one full codeword plus sync): 9.29 s.
pub const BLOCK_FRAMES: usize = 400;
/// Sub-frame offsets searched per frame (steps of 1/8 frame).
pub const SUB_OFFSETS: usize = 8;
/// Default embedding strength: the largest relative magnitude change of a marked bin (frames
/// are further capped at 36 dB signal-to-mark ratio).
pub const DEFAULT_STRENGTH: f32 = 0.3;
/// Frames quieter than this RMS (−60 dBFS) are not marked.
pub const EMBED_GATE_RMS: f32 = 1e-3;

/// The frame hop (samples, real-valued) at `sample_rate` for replay speed `speed`.
pub fn frame_hop(sample_rate: u32, speed: f64) -> f64 {
    REFERENCE_FRAME * f64::from(sample_rate) / REFERENCE_RATE / speed
}

#[cfg(test)]
mod tests;
