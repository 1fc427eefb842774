//! The audio watermark: keyed patchwork marking of FFT magnitudes in bands, blind detection
//! with a replay-speed search.
//!
//! Design (our own; the idea of patchwork marking in FFT magnitudes is from the published
//! literature and audiowmark's description, no code was copied):
//!
//! - **Frames.** The signal is cut into non-overlapping frames of 23.2 ms (1024 samples at
//!   44.1 kHz; the frame length in samples scales with the sample rate, so frame duration and
//!   bin frequencies are the same at every rate and a resampled file needs no resampling back).
//!   Frame `j` starts at sample `round(j · hop)` with a real-valued hop.
//! - **Cells.** Each frame has [`BANDS`] bands of [`BAND_BINS`] adjacent bins (172 Hz) from
//!   344 Hz to 6 kHz (the lowest five reach the fundamentals and low partials of voices, chords
//!   and bass-heavy music, which may hold no energy above 861 Hz). Every bin of a band gets the same keyed sign: the analysis window spreads
//!   a bin's change into its neighbours, and with one sign per band that spill adds to the band
//!   instead of cancelling (one independent sign per bin lost most of the mark that way). A block
//!   of [`BLOCK_FRAMES`] frames (9.3 s) × [`BANDS`] bands is split by a keyed permutation: a
//!   quarter of the cells carry the keyed synchronisation pattern, the rest the 306 coded chips
//!   of [`crate::codec::encode_payload`] (each chip in ~20 cells spread over the whole block, so
//!   any excerpt holds part of every chip). Blocks repeat; longer excerpts add up.
//! - **Embedding.** Per frame and channel: Hann window, FFT, every bin of a cell's band is scaled
//!   by `1 ± a` (`a` ≤ strength), the difference goes back through the inverse FFT, is tapered
//!   by a Tukey window (no step at frame edges) and added. The change is proportional to the
//!   signal (silence stays silent), is capped per frame relative to the frame's energy (the
//!   masking estimate) and shared between bands by their power to the −0.7
//!   (weak bands carry a relative change most cheaply; a band 20 dB or more below the frame's
//!   strongest is masked by it and may change by 5/3 of the strength, 0.5 at the default, so
//!   the budget of a speech frame is not spent on its formants, where codecs keep little of a
//!   small change), running totals hold the stream's
//!   signal-to-mark ratio at 35.3 dB or better, and a limiter keeps every sample within full
//!   scale. The same multiplicative mark in every channel means any downmix carries it too.
//! - **Detection.** Channels are mixed to mono. For each coarse replay speed (1 % steps) one
//!   analysis runs with frames scaled to that speed and an eighth-frame hop; a cell's value is
//!   the log of the band's summed power minus the same band in the frames one and two frames
//!   before and after (removes the host's stationary spectrum); where a running least-squares
//!   fit on the same band at every eighth-frame offset from one to two frames predicts the
//!   band with less than half that residual (a periodic swing such as two partials beating in
//!   one band, which the plain mean leaves in), the fit's prediction instead, minus the frame's common change
//!   (loudness, a limiter's or compressor's gain: for each band, the mean of the other bands
//!   weighted by their steadiness, so on tones and chords it comes from the partials and not
//!   from the noise floor), minus a prediction from the two neighbouring bands scaled by
//!   the running adjacent-band correlation (speech's formant moves and onsets are smooth across
//!   bands, the keyed mark is not), and divided by its expected variance: the frame's spread
//!   times the band's running share of it (bands at the noise or 16-bit quantisation floor of
//!   tonal material count little, stable partials a lot). Both estimates read a band only
//!   against bands at most 10 dB below it: next to a partial, the weaker bands hold its spill,
//!   in which its small mark is large, and reading the partial against them removed or inverted
//!   its mark. A band 20 dB or more below the frame's top (where the mark, if intact, moves it
//!   by tens of per cent) is never counted steadier than that mark: what a codec leaves there
//!   of a tone (its spill, rounding products) is steady but unmarked, and took the weight that
//!   belongs to the partials. Every estimate is relative, so a gain
//!   change does not move the statistic. Each value is
//!   folded, for every fine speed hypothesis near the coarse one, into a block-long buffer at
//!   eighth-frame resolution. The same analyses also give the hypotheses of a time-stretch or
//!   pitch-shift tool, with no extra FFT: each fine speed folded from the unchanged spectrum
//!   (tempo only) and each coarse spectrum folded at the unchanged time (pitch only).
//!   Every 9.3 s segment, the normalised sync correlation `z` is
//!   computed for every hypothesis and eighth-frame phase; it is standard normal on unmarked
//!   audio, and the false-positive probability is multiplied by every hypothesis searched
//!   (speeds × phases × segments). A segment keeps its three best (hypothesis, phase)
//!   candidates among the replay speeds and three among the stretch hypotheses: in one shared
//!   list, the stretch folds' noise pushed a weak mark's true replay speed out (MP3 32k on the
//!   68-run probe: 26 payloads without the stretch hypotheses, 20 with one list, 25 with two).
//!   The segments' soft chips are decoded alone, summed per
//!   (speed, phase) hypothesis over the whole stream (a trailing piece too short to score alone
//!   still adds its cells: the last 0.7 s of a 10 s excerpt) and combined (weighted by each
//!   segment's `z`) by [`crate::codec::decode_payload`]; the whole-stream sums go through the
//!   list Viterbi decoder ([`crate::codec::decode_payload_list`], 64 paths, each counted as a
//!   chance for a random payload to pass); a payload is only returned when its keyed check
//!   passes. Candidate chips are decoded twice: with every cell
//!   at full weight, and with the cells more than 40 dB below their frame's strongest band
//!   weighted down (low-rate codecs drop or noise-fill the mark there; unattacked and on tones
//!   those cells carry it as well as any). Memory is a fixed number of block-long buffers,
//!   whatever the stream's length. A second pass at the best hypothesis
//!   scores 1-second windows to locate the mark in time (the span of largest total score; a
//!   silent window scores 0, so a pause of digital silence does not cut the span).
//! - **Short-excerpt mode.** The payload needs about 10 s: a 5 s clip holds half a block, about
//!   ten cells per coded chip, too few for the code at 35 dB SNR. When the payload does not
//!   decode but the sync correlation alone reaches the presence threshold (corrected
//!   false-positive probability ≤ [`DetectOptions::max_false_positive`], 1e-6 by default), the
//!   detection is in [`DetectionMode::PresenceOnly`]: the mark under this key is there, with
//!   that analytic false-positive probability, but no payload bit is reported. The mode is
//!   chosen automatically ([`AudioDetection::mode`]); nothing changes in the embedding.

mod detect;
mod embed;
mod file;
mod layout;

pub use detect::{
    AudioDetection, AudioDetector, AudioLocator, DetectOptions, DetectionMode, Hypothesis,
    MarkedSpan,
};
pub use embed::{AudioEmbedder, EmbedStats};
pub use file::{
    AudioWatermarkError, EmbedReport, MarkingSink, detect_file, detect_file_with, embed_file,
    embed_file_as,
};

/// Frames per second at the reference rate: 44 100 / 1024.
pub const REFERENCE_RATE: f64 = 44_100.0;
/// Frame length at the reference rate.
pub const REFERENCE_FRAME: f64 = 1024.0;
/// First marked bin (344 Hz at 43.07 Hz per bin).
pub const FIRST_BIN: usize = 8;
/// Bins marked per frame (344 Hz – 6 kHz).
pub const BINS: usize = 132;
/// Adjacent bins that share one cell (one keyed sign).
pub const BAND_BINS: usize = 4;
/// Bands (cells) per frame.
pub const BANDS: usize = BINS / BAND_BINS;
/// Frames per block (one full codeword plus sync): 9.29 s.
pub const BLOCK_FRAMES: usize = 400;
/// Sub-frame offsets searched per frame (the detector's analysis hop is 1/8 frame).
pub const SUB_OFFSETS: usize = 8;
/// Default embedding strength: the largest relative magnitude change of a marked bin (frames
/// are further capped at 36 dB signal-to-mark ratio).
pub const DEFAULT_STRENGTH: f32 = 0.3;
/// Frames quieter than this RMS (−60 dBFS) are not marked.
pub const EMBED_GATE_RMS: f32 = 1e-3;

/// Whether a frame of `samples` interleaved samples with total `energy` (sum of squares) is loud
/// enough to be marked (at or above [`EMBED_GATE_RMS`]).
pub(crate) fn above_gate(energy: f32, samples: usize) -> bool {
    energy / (samples.max(1) as f32) >= EMBED_GATE_RMS * EMBED_GATE_RMS
}

/// Which frames of interleaved `samples` the embedder marks, one flag per whole frame (frame
/// `j` starts at `round(j · hop)`). Frames below [`EMBED_GATE_RMS`] carry no mark, so an
/// excerpt made mostly of them has nothing to detect.
pub fn marked_frames(samples: &[f32], channels: usize, sample_rate: u32) -> Vec<bool> {
    let mut gate = FrameGate::new(sample_rate, channels);
    gate.push(samples);
    gate.flags
}

/// [`marked_frames`] over a stream: feed interleaved blocks of any size with
/// [`FrameGate::push`]; only the samples of the next frame are held.
#[derive(Debug, Clone)]
pub struct FrameGate {
    channels: usize,
    hop: f64,
    n: usize,
    /// Samples from per-channel index `base` on.
    held: Vec<f32>,
    base: u64,
    next: u64,
    flags: Vec<bool>,
}

impl FrameGate {
    /// A gate for `channels` interleaved channels at `sample_rate`, framed as the embedder does.
    pub fn new(sample_rate: u32, channels: usize) -> Self {
        let hop = frame_hop(sample_rate.max(1), 1.0);
        Self {
            channels: channels.max(1),
            hop,
            n: (hop.round() as usize).max(8),
            held: Vec::new(),
            base: 0,
            next: 0,
            flags: Vec::new(),
        }
    }

    /// Adds a block and flags every frame it completes.
    pub fn push(&mut self, block: &[f32]) {
        let ch = self.channels;
        self.held.extend_from_slice(block);
        let have = self.base + (self.held.len() / ch) as u64;
        let start_of = |j: u64| (j as f64 * self.hop).round() as u64;
        loop {
            let start = start_of(self.next);
            if start + self.n as u64 > have {
                break;
            }
            let from = (start - self.base) as usize * ch;
            let seg = &self.held[from..from + self.n * ch];
            self.flags
                .push(above_gate(seg.iter().map(|s| s * s).sum(), seg.len()));
            self.next += 1;
        }
        let keep_from = start_of(self.next).min(have);
        self.held.drain(..(keep_from - self.base) as usize * ch);
        self.base = keep_from;
    }

    /// One flag per whole frame so far: marked (at or above the gate).
    pub fn flags(&self) -> &[bool] {
        &self.flags
    }
}

/// The frame hop (samples, real-valued) at `sample_rate` for replay speed `speed`.
pub fn frame_hop(sample_rate: u32, speed: f64) -> f64 {
    REFERENCE_FRAME * f64::from(sample_rate) / REFERENCE_RATE / speed
}

#[cfg(test)]
mod tests;
