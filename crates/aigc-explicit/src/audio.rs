//! Audible labels: the Morse rhythm 「短长 短短」 and/or a spoken prompt inserted at the start,
//! end and/or middle of audio content, loudness-matched, in two streaming passes (measure, then
//! copy with insertions) so memory does not grow with the file's length.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use crate::ExplicitError;
use crate::audio_detect::{FoundRhythm, RhythmDetector};
use crate::audio_morse::RhythmSpec;
use crate::audio_speech::{SpeechSource, load_speech};
use aigc_media::{AudioCodec, AudioInfo, AudioReader, AudioWriter, PcmSink};
use serde::Serialize;
use std::path::Path;

/// Silence between a prompt and the content, and between rhythm and speech (at least three
/// Morse units, so the rhythm stands apart as a letter would).
pub const GAP_MS: u32 = 300;
/// Loudness block length for the gated RMS.
const BLOCK_MS: u32 = 100;
/// Blocks quieter than this are not content (absolute gate, as in ITU-R BS.1770).
const ABSOLUTE_GATE_DB: f64 = -70.0;
/// Blocks this far below the mean of the loud ones are pauses (relative gate, as in BS.1770).
const RELATIVE_GATE_DB: f64 = -10.0;
/// The prompt is never quieter than this (RMS), so quiet content still carries an audible label.
pub const MIN_PROMPT_RMS_DB: f64 = -40.0;
/// Prompt loudness for content with no active part (digital silence).
pub const SILENT_CONTENT_PROMPT_RMS_DB: f64 = -20.0;
/// No prompt sample exceeds this peak (−1 dBFS), so nothing is ever clipped.
pub const PEAK_CAP: f32 = 0.891;
/// Ramps around the middle cut (the content fades out and back in, so the cut does not click).
const CUT_FADE_MS: f64 = 5.0;
/// The middle cut goes to the quietest block within this distance of the midpoint (or a tenth of
/// the content, if less).
const CUT_SEARCH_S: f64 = 2.0;

/// What is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioPrompt {
    /// The Morse rhythm 「短长 短短」 only.
    Rhythm,
    /// The spoken prompt only.
    Speech,
    /// The rhythm, then the spoken prompt.
    Both,
}

impl AudioPrompt {
    /// Parses a CLI name: rhythm, speech or both.
    pub fn parse(name: &str) -> Result<Self, ExplicitError> {
        match name {
            "rhythm" => Ok(Self::Rhythm),
            "speech" => Ok(Self::Speech),
            "both" => Ok(Self::Both),
            other => Err(ExplicitError::BadOption(format!(
                "unknown audio prompt {other:?}: use rhythm, speech or both"
            ))),
        }
    }

    fn has_rhythm(self) -> bool {
        matches!(self, Self::Rhythm | Self::Both)
    }

    fn has_speech(self) -> bool {
        matches!(self, Self::Speech | Self::Both)
    }
}

/// Where a prompt is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioPosition {
    /// Before the content.
    Start,
    /// At the quietest moment near the middle.
    Middle,
    /// After the content.
    End,
}

impl AudioPosition {
    /// Parses a comma-separated CLI list such as `start` or `start,end` (sorted, deduplicated).
    pub fn parse_list(list: &str) -> Result<Vec<Self>, ExplicitError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim) {
            out.push(match name {
                "start" => Self::Start,
                "middle" => Self::Middle,
                "end" => Self::End,
                other => {
                    return Err(ExplicitError::BadOption(format!(
                        "unknown audio position {other:?}: use start, middle, end or a list like start,end"
                    )));
                }
            });
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// The audible label's options.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioLabelOptions {
    /// What is played.
    pub prompt: AudioPrompt,
    /// Where (one prompt per position).
    pub positions: Vec<AudioPosition>,
    /// How the rhythm sounds.
    pub rhythm: RhythmSpec,
    /// Which spoken prompt.
    pub speech: SpeechSource,
}

impl Default for AudioLabelOptions {
    fn default() -> Self {
        Self {
            prompt: AudioPrompt::Both,
            positions: vec![AudioPosition::Start],
            rhythm: RhythmSpec::default(),
            speech: SpeechSource::Chinese,
        }
    }
}

/// One prompt as inserted.
#[derive(Debug, Clone, Serialize)]
pub struct InsertedPrompt {
    /// Where.
    pub position: AudioPosition,
    /// Where the inserted span (gaps included) starts in the output, in seconds.
    pub start_s: f64,
    /// Where the rhythm's first element starts in the output, when a rhythm was played.
    pub rhythm_s: Option<f64>,
    /// Where the spoken prompt starts in the output, when one was played.
    pub speech_s: Option<f64>,
    /// Length of the inserted span (gaps included), in seconds.
    pub duration_s: f64,
}

/// What [`label_audio_file`] did.
#[derive(Debug, Clone, Serialize)]
pub struct AudioLabelReport {
    /// What was played.
    pub prompt: AudioPrompt,
    /// The rhythm's parameters, when played.
    pub rhythm: Option<RhythmSpec>,
    /// The spoken prompt's source, when played.
    pub speech: Option<String>,
    /// Each insertion (none when the content already held a rhythm: nothing was written).
    pub inserted: Vec<InsertedPrompt>,
    /// Morse rhythms meeting the rules that the content already held; when there are any, no
    /// second label is stacked on top and no output is written.
    pub already_present: Vec<FoundRhythm>,
    /// The content's sample rate (kept).
    pub sample_rate: u32,
    /// The content's channels (kept).
    pub channels: usize,
    /// Gated RMS of the content's active part, dBFS (None for silent content).
    pub content_rms_dbfs: Option<f64>,
    /// RMS the prompts were matched to, dBFS (None when nothing was inserted).
    pub prompt_rms_dbfs: Option<f64>,
    /// The highest prompt sample, dBFS (None when nothing was inserted).
    pub prompt_peak_dbfs: Option<f64>,
    /// Content length in seconds.
    pub content_s: f64,
    /// Output length in seconds.
    pub output_s: f64,
    /// WAV: the input's other RIFF chunks carried into the output (cue/smpl positions moved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept_chunks: Vec<String>,
}

/// Gated mean-square loudness over 100 ms blocks (BS.1770 gating without K-weighting: the
/// prompts are matched in level to the content's active part, ignoring pauses).
#[derive(Debug, Clone)]
struct LoudnessMeter {
    channels: usize,
    block_frames: usize,
    acc: f64,
    acc_frames: usize,
    /// Mean square of each finished block (per channel, averaged over channels).
    blocks: Vec<f32>,
    frames: u64,
}

impl LoudnessMeter {
    fn new(rate: u32, channels: usize) -> Self {
        Self {
            channels,
            block_frames: (rate * BLOCK_MS / 1000).max(1) as usize,
            acc: 0.0,
            acc_frames: 0,
            blocks: Vec::new(),
            frames: 0,
        }
    }

    fn push(&mut self, interleaved: &[f32]) {
        for frame in interleaved.chunks_exact(self.channels) {
            self.acc += frame
                .iter()
                .map(|s| f64::from(*s) * f64::from(*s))
                .sum::<f64>();
            self.acc_frames += 1;
            self.frames += 1;
            if self.acc_frames == self.block_frames {
                self.blocks
                    .push((self.acc / (self.block_frames * self.channels) as f64) as f32);
                self.acc = 0.0;
                self.acc_frames = 0;
            }
        }
    }

    /// The gated RMS in dBFS, or None when no block passes the absolute gate.
    fn gated_rms_db(&self) -> Option<f64> {
        let mut blocks: Vec<f64> = self.blocks.iter().map(|b| f64::from(*b)).collect();
        if self.acc_frames > 0 {
            blocks.push(self.acc / (self.acc_frames * self.channels) as f64);
        }
        let abs_gate = db_to_power(ABSOLUTE_GATE_DB);
        let loud: Vec<f64> = blocks.into_iter().filter(|b| *b > abs_gate).collect();
        if loud.is_empty() {
            return None;
        }
        let mean = loud.iter().sum::<f64>() / loud.len() as f64;
        let rel_gate = mean * db_to_power(RELATIVE_GATE_DB);
        let active: Vec<f64> = loud.into_iter().filter(|b| *b > rel_gate).collect();
        let power = active.iter().sum::<f64>() / active.len().max(1) as f64;
        Some(power_to_db(power))
    }
}

fn db_to_power(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

fn power_to_db(p: f64) -> f64 {
    10.0 * p.max(1e-20).log10()
}

fn amp_to_db(a: f64) -> f64 {
    20.0 * a.max(1e-10).log10()
}

/// Whether this build can write an audible label into audio of `codec` (the FFmpeg-based
/// writer re-encodes every codec it decodes except the catch-all).
pub fn can_write(codec: AudioCodec) -> bool {
    !matches!(codec, AudioCodec::Other)
}

/// A rendered prompt: mono samples and where its parts start.
struct RenderedPrompt {
    samples: Vec<f32>,
    /// Where the rhythm's first nominal edge lies (seconds), when there is a rhythm.
    rhythm_at: Option<f64>,
    /// Where the speech starts (seconds), when there is speech.
    speech_at: Option<f64>,
}

/// The mono prompt (rhythm, gap, speech) at `rate`, scaled to `rms_db` with peaks capped.
fn render_prompt(
    options: &AudioLabelOptions,
    rate: u32,
    rms_db: f64,
) -> Result<RenderedPrompt, ExplicitError> {
    let gap_s = gap_seconds(&options.rhythm);
    let target_rms = 10f64.powf(rms_db / 20.0);
    let mut out = Vec::new();
    let mut rhythm_at = None;
    if options.prompt.has_rhythm() {
        // A sine's RMS is its peak over √2.
        let amplitude = ((target_rms * std::f64::consts::SQRT_2) as f32).min(PEAK_CAP);
        let (tone, lead) = options.rhythm.render(rate, amplitude);
        rhythm_at = Some(lead);
        out.extend(tone);
    }
    let mut speech_at = None;
    if options.prompt.has_speech() {
        let mut speech = load_speech(&options.speech, rate, gap_s)?;
        let mut meter = LoudnessMeter::new(rate, 1);
        meter.push(&speech);
        let speech_db = meter.gated_rms_db().ok_or_else(|| {
            ExplicitError::BadOption(format!(
                "the spoken prompt ({}) is silent",
                options.speech.describe()
            ))
        })?;
        let mut gain = 10f64.powf((rms_db - speech_db) / 20.0) as f32;
        let peak = speech.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        if peak * gain > PEAK_CAP {
            gain = PEAK_CAP / peak;
        }
        speech.iter_mut().for_each(|s| *s *= gain);
        if !out.is_empty() {
            out.extend(std::iter::repeat_n(0.0, (gap_s * f64::from(rate)) as usize));
        }
        speech_at = Some(out.len() as f64 / f64::from(rate));
        out.extend(speech);
    }
    Ok(RenderedPrompt {
        samples: out,
        rhythm_at,
        speech_at,
    })
}

fn gap_seconds(rhythm: &RhythmSpec) -> f64 {
    (f64::from(GAP_MS) / 1000.0).max(3.0 * rhythm.unit_s())
}

/// One insertion into the content stream.
struct Insertion {
    position: AudioPosition,
    /// Content frame before which it goes.
    at_frame: u64,
}

/// Labels `input` into `dest` (written atomically): the prompt(s) inserted at the requested
/// positions, at the content's rate and channel layout, loudness-matched, never clipped. Errors
/// with [`ExplicitError::Unsupported`] when this build cannot write the input's codec, and with
/// [`ExplicitError::EmptyAudio`] when the input has no samples; other errors name the file.
pub fn label_audio_file(
    input: &Path,
    dest: &Path,
    options: &AudioLabelOptions,
) -> Result<AudioLabelReport, ExplicitError> {
    let (report, writer) = label_audio_into(input, options, |info| {
        Ok(AudioWriter::create_like(info, dest)?)
    })?;
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(report)
}

/// [`label_audio_file`] into any [`PcmSink`]: `make_sink` is called with the input's stream
/// parameters before anything is decoded, and the sink comes back for the caller to finish
/// (`None` when the input already held a prompt and nothing was written). A sink that marks
/// the samples on their way to the writer makes prompt and watermark one decode, one encode.
pub fn label_audio_into<S: PcmSink>(
    input: &Path,
    options: &AudioLabelOptions,
    make_sink: impl FnOnce(&AudioInfo) -> Result<S, ExplicitError>,
) -> Result<(AudioLabelReport, Option<S>), ExplicitError> {
    if options.positions.is_empty() {
        return Err(ExplicitError::BadOption(
            "no position given for the audio prompt".into(),
        ));
    }
    // Pass 1: loudness, length and the quiet blocks near the middle.
    // A signal this build cannot decode (e.g. Opus) leaves the label unavailable, not failed.
    let mut reader = AudioReader::open(input).map_err(|e| match e {
        aigc_media::MediaError::Unsupported { what, .. } => {
            ExplicitError::Unsupported(format!("cannot decode the audio: {what}"))
        }
        other => ExplicitError::Media(other),
    })?;
    let info = reader.info().clone();
    let channels = info.channels;
    let rate = info.sample_rate;
    // Fail before decoding anything when the output cannot be written.
    let mut sink = make_sink(&info)?;
    let mut meter = LoudnessMeter::new(rate, channels);
    let mut detector = RhythmDetector::new(rate, channels);
    while let Some(block) = reader.next_block()? {
        meter.push(block);
        detector.push(block);
    }
    let total = meter.frames;
    if total == 0 {
        return Err(ExplicitError::EmptyAudio);
    }
    let content_db = meter.gated_rms_db();
    let rate_f = f64::from(rate);
    // Relabelling must not stack prompts: a rhythm that meets the rules is enough.
    let already_present: Vec<FoundRhythm> = detector
        .finish()
        .into_iter()
        .filter(|r| r.meets_rules)
        .collect();
    if !already_present.is_empty() {
        let report = AudioLabelReport {
            prompt: options.prompt,
            rhythm: None,
            speech: None,
            inserted: Vec::new(),
            already_present,
            sample_rate: rate,
            channels,
            content_rms_dbfs: content_db,
            prompt_rms_dbfs: None,
            prompt_peak_dbfs: None,
            content_s: total as f64 / rate_f,
            output_s: total as f64 / rate_f,
            kept_chunks: Vec::new(),
        };
        return Ok((report, None));
    }
    let prompt_db = content_db
        .map(|db| db.max(MIN_PROMPT_RMS_DB))
        .unwrap_or(SILENT_CONTENT_PROMPT_RMS_DB);
    let RenderedPrompt {
        samples: mono,
        rhythm_at,
        speech_at,
    } = render_prompt(options, rate, prompt_db)?;
    let prompt_peak = mono.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    // The inserted span: gap, prompt, gap; the same on every channel.
    let gap = (gap_seconds(&options.rhythm) * f64::from(rate)) as usize;
    let mut span = Vec::with_capacity((mono.len() + 2 * gap) * channels);
    span.resize(gap * channels, 0.0);
    for s in &mono {
        span.extend(std::iter::repeat_n(*s, channels));
    }
    span.resize(span.len() + gap * channels, 0.0);
    let span_frames = (span.len() / channels) as u64;

    let cut = middle_cut(&meter, rate, total);
    let insertions: Vec<Insertion> = options
        .positions
        .iter()
        .map(|&position| Insertion {
            position,
            at_frame: match position {
                AudioPosition::Start => 0,
                AudioPosition::Middle => cut,
                AudioPosition::End => total,
            },
        })
        .collect();
    // The input's other RIFF chunks (INFO tags, bext, iXML, cue points, …) go along with WAV
    // output; cue and loop sample positions move past the inserted prompts.
    let mut kept_chunks = Vec::new();
    if sink.writes_wav() {
        let mut chunks = aigc_media::audio::read_extra_chunks(input)?;
        let inserts: Vec<(u64, u64)> = insertions
            .iter()
            .map(|i| (i.at_frame, span_frames))
            .collect();
        for c in &mut chunks {
            c.shift_sample_positions(&inserts, total);
        }
        kept_chunks = chunks.iter().map(|c| c.name()).collect();
        sink.keep_wav_chunks(chunks);
    }
    let fade = if options.positions.contains(&AudioPosition::Middle) {
        (CUT_FADE_MS / 1000.0 * f64::from(rate)) as u64
    } else {
        0
    };

    // Pass 2: copy the content, inserting the span; fade the content around the middle cut.
    let mut reader = AudioReader::open(input)?;
    if reader.info() != &info {
        return Err(ExplicitError::Unsupported(format!(
            "{}: the file changed while it was being labelled",
            input.display()
        )));
    }
    let mut pos: u64 = 0;
    let mut next = 0;
    let mut scratch = Vec::new();
    let mut inserted = Vec::new();
    let mut record = |ins: &Insertion, out_frame: u64| {
        let start_s = out_frame as f64 / rate_f;
        let gap_s = gap as f64 / rate_f;
        inserted.push(InsertedPrompt {
            position: ins.position,
            start_s,
            rhythm_s: rhythm_at.map(|r| start_s + gap_s + r),
            speech_s: speech_at.map(|s| start_s + gap_s + s),
            duration_s: span_frames as f64 / rate_f,
        });
    };
    while let Some(block) = reader.next_block()? {
        let frames = (block.len() / channels) as u64;
        scratch.clear();
        scratch.extend_from_slice(block);
        if fade > 0 && pos + frames > cut.saturating_sub(fade) && pos < cut + fade {
            for (i, frame) in scratch.chunks_exact_mut(channels).enumerate() {
                let g = cut_gain(pos + i as u64, cut, fade);
                frame.iter_mut().for_each(|s| *s *= g);
            }
        }
        let mut written = 0u64;
        while next < insertions.len() && insertions[next].at_frame < pos + frames {
            let at = insertions[next].at_frame.max(pos) - pos;
            sink.write(&scratch[(written as usize) * channels..(at as usize) * channels])?;
            written = at;
            record(&insertions[next], pos + at + next as u64 * span_frames);
            sink.write(&span)?;
            next += 1;
        }
        sink.write(&scratch[(written as usize) * channels..])?;
        pos += frames;
    }
    if pos != total {
        return Err(ExplicitError::Unsupported(format!(
            "{}: the second decoding pass gave {pos} frames, the first {total}",
            input.display()
        )));
    }
    while next < insertions.len() {
        record(&insertions[next], pos + next as u64 * span_frames);
        sink.write(&span)?;
        next += 1;
    }
    let report = AudioLabelReport {
        prompt: options.prompt,
        rhythm: options.prompt.has_rhythm().then_some(options.rhythm),
        speech: options
            .prompt
            .has_speech()
            .then(|| options.speech.describe()),
        inserted,
        already_present: Vec::new(),
        sample_rate: rate,
        channels,
        content_rms_dbfs: content_db,
        prompt_rms_dbfs: Some(prompt_db),
        prompt_peak_dbfs: Some(amp_to_db(f64::from(prompt_peak))),
        content_s: total as f64 / rate_f,
        output_s: (total + span_frames * insertions.len() as u64) as f64 / rate_f,
        kept_chunks,
    };
    Ok((report, Some(sink)))
}

/// Gain of content frame `i` around the cut: a raised-cosine fade-out over the `fade` frames
/// before it and a fade-in over the `fade` frames after it.
fn cut_gain(i: u64, cut: u64, fade: u64) -> f32 {
    let d = if i < cut { cut - i } else { i - cut + 1 };
    if d >= fade {
        1.0
    } else {
        (0.5 - 0.5 * (std::f64::consts::PI * d as f64 / fade as f64).cos()) as f32
    }
}

/// The frame where a middle prompt goes: the middle of the quietest 100 ms block within
/// ±2 s (±10 % in short files) of the midpoint (a pause, if there is one).
fn middle_cut(meter: &LoudnessMeter, rate: u32, total: u64) -> u64 {
    let mid = total / 2;
    let block = meter.block_frames as u64;
    let reach = ((CUT_SEARCH_S * f64::from(rate)) as u64).min(total / 10);
    let lo = mid.saturating_sub(reach) / block;
    let hi = ((mid + reach) / block).min(meter.blocks.len() as u64);
    (lo..hi)
        .filter_map(|b| meter.blocks.get(b as usize).map(|p| (b, *p)))
        .min_by(|x, y| {
            x.1.total_cmp(&y.1)
                .then(x.0.abs_diff(mid / block).cmp(&y.0.abs_diff(mid / block)))
        })
        .map(|(b, _)| b * block + block / 2)
        .unwrap_or(mid)
        .min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_rms_ignores_pauses() {
        let rate = 10_000;
        let mut meter = LoudnessMeter::new(rate, 2);
        // 1 s of a 0.1-amplitude square-ish signal, then 1 s of silence.
        let loud: Vec<f32> = (0..rate * 2)
            .map(|i| if i % 4 < 2 { 0.1 } else { -0.1 })
            .collect();
        meter.push(&loud);
        meter.push(&vec![0.0; (rate * 2) as usize]);
        let db = meter.gated_rms_db().unwrap();
        assert!((db - (-20.0)).abs() < 0.01, "{db}");
        let silent = LoudnessMeter::new(rate, 1);
        assert!(silent.gated_rms_db().is_none());
    }

    #[test]
    fn positions_parse_as_sorted_sets() {
        assert_eq!(
            AudioPosition::parse_list("end,start,end").unwrap(),
            [AudioPosition::Start, AudioPosition::End]
        );
        assert!(AudioPosition::parse_list("top").is_err());
        assert!(AudioPrompt::parse("morse").is_err());
    }

    #[test]
    fn cut_fades_are_symmetric() {
        assert_eq!(cut_gain(0, 100, 10), 1.0);
        assert!(cut_gain(99, 100, 10) < 0.05);
        assert!(cut_gain(100, 100, 10) < 0.05);
        assert_eq!(cut_gain(110, 100, 10), 1.0);
    }

    #[test]
    fn prompt_loudness_matches_and_peaks_are_capped() {
        let opts = AudioLabelOptions::default();
        for db in [-30.0, -18.0, -6.0] {
            let RenderedPrompt {
                samples: p,
                rhythm_at,
                speech_at,
            } = render_prompt(&opts, 44_100, db).unwrap();
            assert!(rhythm_at.is_some() && speech_at.is_some());
            let peak = p.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(peak <= PEAK_CAP, "{peak}");
            // The rhythm's on-part RMS is the target unless its peak was capped.
            let mut meter = LoudnessMeter::new(44_100, 1);
            let rhythm_end = (1.2 * 44_100.0) as usize;
            meter.push(&p[..rhythm_end]);
            let got = meter.gated_rms_db().unwrap();
            let want = db.min(amp_to_db(f64::from(PEAK_CAP)) - 3.01);
            // Blocks straddling element edges pull the gated RMS down a little.
            assert!((got - want).abs() < 1.5, "{db}: rhythm {got} want {want}");
        }
    }
}
