//! The file-level API: mark a file into a new WAV, detect in any readable audio file.

use std::path::{Path, PathBuf};

use aigc_media::audio::{AudioCodec, AudioReader, MediaError, WavFormat, WavWriter};
use serde::Serialize;

use super::detect::{AudioDetection, AudioDetector, AudioLocator, DetectOptions};
use super::embed::{AudioEmbedder, EmbedStats};
use crate::key::WatermarkKey;
use crate::payload::Payload;

/// What went wrong marking or detecting audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioWatermarkError {
    /// Reading or writing the audio failed.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The request cannot be done in this version.
    #[error("{path}: {what}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        what: String,
    },
}

/// What [`embed_file`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedReport {
    /// Sample rate of input and output.
    pub sample_rate: u32,
    /// Channels of input and output.
    pub channels: usize,
    /// Seconds of audio marked.
    pub seconds: f64,
    /// Signal-to-mark ratio, dB.
    pub snr_db: f64,
    /// Embedding counters.
    pub stats: EmbedStats,
}

/// Marks `input` (any format [`AudioReader`] reads) with `payload` under `key` into `output`,
/// a WAV at the input's bit depth (16-bit for compressed inputs), written atomically.
/// Writing compressed formats is not in this version.
pub fn embed_file(
    input: &Path,
    output: &Path,
    payload: Payload,
    key: &WatermarkKey,
    strength: f32,
) -> Result<EmbedReport, AudioWatermarkError> {
    let is_wav = output
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
    if !is_wav {
        return Err(AudioWatermarkError::Unsupported {
            path: output.to_path_buf(),
            what: "marked audio is written as WAV in this version (give a .wav output)".into(),
        });
    }
    let mut reader = AudioReader::open(input)?;
    let info = reader.info().clone();
    let format = match info.codec {
        AudioCodec::PcmInt(_) | AudioCodec::PcmFloat => WavFormat::for_codec(info.codec),
        _ => WavFormat::Int(16),
    };
    let mut writer = WavWriter::create(output, info.sample_rate, info.channels, format)?;
    let mut embedder = AudioEmbedder::new(
        info.sample_rate,
        info.channels,
        payload,
        key,
        strength,
        format.full_scale(),
    );
    while let Some(block) = reader.next_block()? {
        let out = embedder.process(block);
        writer.write(out)?;
    }
    writer.write(embedder.finish())?;
    writer.finish()?;
    let stats = embedder.stats().clone();
    Ok(EmbedReport {
        sample_rate: info.sample_rate,
        channels: info.channels,
        seconds: samples_seconds(&stats, &info),
        snr_db: stats.snr_db(),
        stats,
    })
}

fn samples_seconds(stats: &EmbedStats, info: &aigc_media::AudioInfo) -> f64 {
    // Frames marked + silent cover all whole frames; the report wants the duration.
    let frames = stats.frames_marked + stats.frames_silent;
    frames as f64 * super::frame_hop(info.sample_rate, 1.0) / f64::from(info.sample_rate.max(1))
}

/// Detects the mark in `path` under `key` with default options (no speed search).
pub fn detect_file(path: &Path, key: &WatermarkKey) -> Result<AudioDetection, AudioWatermarkError> {
    detect_file_with(path, key, &DetectOptions::default())
}

/// Detects the mark in `path`: a first pass finds presence and the payload, a second pass at the
/// best hypothesis locates the mark in time (and decodes from the marked span if the first pass
/// could not).
pub fn detect_file_with(
    path: &Path,
    key: &WatermarkKey,
    options: &DetectOptions,
) -> Result<AudioDetection, AudioWatermarkError> {
    let mut reader = AudioReader::open(path)?;
    let info = reader.info().clone();
    let mut detector = AudioDetector::new(info.sample_rate, info.channels, key, options.clone());
    while let Some(block) = reader.next_block()? {
        detector.push(block);
    }
    let (mut detection, hypothesis) = detector.finish();
    if !detection.present {
        return Ok(detection);
    }
    let mut reader = AudioReader::open(path)?;
    let mut locator = AudioLocator::new(info.sample_rate, info.channels, key, hypothesis);
    while let Some(block) = reader.next_block()? {
        locator.push(block);
    }
    let (span, decoded) = locator.finish();
    detection.span = span;
    if detection.payload.is_none()
        && let Some(d) = decoded
        && d.payload.is_some()
    {
        detection.payload = d.payload;
        detection.bit_errors = Some(d.bit_errors);
    }
    Ok(detection)
}
