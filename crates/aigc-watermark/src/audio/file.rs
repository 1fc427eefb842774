//! The file-level API: mark a file into a new file in the input's format (or the one the output's
//! extension names), detect in any readable audio file.

use std::path::Path;

use aigc_media::audio::{
    AudioReader, AudioWriter, MediaError, OutputFormat, PcmSink, RiffChunk, read_extra_chunks,
};
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
    /// The output's format (the input's codec and container at a similar bitrate, unless the
    /// output's extension names another).
    pub format: OutputFormat,
    /// Samples of encoder priming at the output's start (recorded by its container, so decoders
    /// drop it; 0 for WAV and FLAC).
    pub encoder_delay: u32,
    /// Embedding counters.
    pub stats: EmbedStats,
}

/// Marks `input` (any format [`AudioReader`] reads) with `payload` under `key` into `output`,
/// written atomically in the input's codec and container at a similar bitrate (WAV at the
/// input's sample format, FLAC at its depth, MP3, AAC, Vorbis, Opus), or in the format the
/// output's extension names when that differs ([`OutputFormat::for_path`]). The input's tags
/// are carried over where the output format has tags.
pub fn embed_file(
    input: &Path,
    output: &Path,
    payload: Payload,
    key: &WatermarkKey,
    strength: f32,
) -> Result<EmbedReport, AudioWatermarkError> {
    embed_file_as(input, output, None, payload, key, strength)
}

/// [`embed_file`] with the output format chosen by the caller (`None`: as [`embed_file`]).
/// Marking a lossy file and re-encoding it in the same codec at the same bitrate (tandem coding)
/// costs the mark much of its margin on Vorbis and AAC; e.g.
/// `OutputFormat::for_path(..)?.with_bit_rate_scaled(1.5)` keeps it.
pub fn embed_file_as(
    input: &Path,
    output: &Path,
    format: Option<OutputFormat>,
    payload: Payload,
    key: &WatermarkKey,
    strength: f32,
) -> Result<EmbedReport, AudioWatermarkError> {
    let mut reader = AudioReader::open(input)?;
    let info = reader.info().clone();
    let writer = match format {
        None => AudioWriter::create_for_path(&info, output)?,
        Some(f) => AudioWriter::create(output, info.sample_rate, info.channels, f, &info.tags)?,
    };
    let embedder = AudioEmbedder::new(
        info.sample_rate,
        info.channels,
        payload,
        key,
        strength,
        writer.full_scale(),
    );
    let mut sink = MarkingSink::new(embedder, writer);
    // A WAV keeps the input's other RIFF chunks (tags, bext, cue points: no sample moves here).
    if sink.writes_wav() {
        sink.keep_wav_chunks(read_extra_chunks(input)?);
    }
    while let Some(block) = reader.next_block()? {
        sink.write(block)?;
    }
    let (writer, stats) = sink.finish()?;
    let written = writer.finish()?;
    Ok(EmbedReport {
        sample_rate: info.sample_rate,
        channels: info.channels,
        seconds: samples_seconds(&stats, &info),
        snr_db: stats.snr_db(),
        format: written.format,
        encoder_delay: written.encoder_delay,
        stats,
    })
}

fn samples_seconds(stats: &EmbedStats, info: &aigc_media::AudioInfo) -> f64 {
    // Frames marked + silent cover all whole frames; the report wants the duration.
    let frames = stats.frames_marked + stats.frames_silent;
    frames as f64 * super::frame_hop(info.sample_rate, 1.0) / f64::from(info.sample_rate.max(1))
}

/// A [`PcmSink`] stage that marks the samples on their way to `S` (usually an [`AudioWriter`]),
/// so a caller that already decodes and encodes (e.g. to insert an audible prompt) marks in the
/// same pass.
pub struct MarkingSink<S> {
    embedder: AudioEmbedder,
    inner: S,
}

impl<S: PcmSink> MarkingSink<S> {
    /// Marks with `embedder` into `inner`.
    pub fn new(embedder: AudioEmbedder, inner: S) -> Self {
        Self { embedder, inner }
    }

    /// Writes the samples the embedder still holds and returns the inner sink and what was done.
    pub fn finish(mut self) -> Result<(S, EmbedStats), MediaError> {
        self.inner.write(self.embedder.finish())?;
        Ok((self.inner, self.embedder.stats().clone()))
    }
}

impl<S: PcmSink> PcmSink for MarkingSink<S> {
    fn write(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        let marked = self.embedder.process(samples);
        self.inner.write(marked)
    }

    fn writes_wav(&self) -> bool {
        self.inner.writes_wav()
    }

    fn keep_wav_chunks(&mut self, chunks: Vec<RiffChunk>) -> bool {
        self.inner.keep_wav_chunks(chunks)
    }
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

#[cfg(test)]
mod tests {
    use std::process::Command;

    use aigc_media::audio::{WavFormat, WavWriter};

    use super::*;

    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{program} not runnable ({e}): install it with `bash .ci/install-deps`")
            });
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// (codec name, sample rate, channels, bitrate) of the first audio stream, by ffprobe.
    fn probe(path: &Path) -> (String, u32, usize, f64) {
        let text = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=codec_name,sample_rate,channels:format=bit_rate",
                "-of",
                "flat",
                path.to_str().unwrap(),
            ],
        );
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim_start_matches('=').trim_matches('"').to_string())
                .unwrap_or_default()
        };
        // The file's real average: a Vorbis stream's own figure is the header's nominal one.
        let bit_rate = get("format.bit_rate").parse().unwrap_or(0.0);
        (
            get("streams.stream.0.codec_name"),
            get("streams.stream.0.sample_rate").parse().unwrap(),
            get("streams.stream.0.channels").parse().unwrap(),
            bit_rate,
        )
    }

    #[test]
    fn marks_every_format_into_the_same_format_and_detects_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = WatermarkKey::from_bytes([0x3C; 32]);
        let payload = Payload(0x0F1E_2D3C_4B5A_6978);
        let master = dir.path().join("master.wav");
        let mut w = WavWriter::create(&master, 48_000, 2, WavFormat::Int(16)).unwrap();
        w.write(&super::super::tests::music(48_000, 2, 20.0, 7))
            .unwrap();
        w.finish().unwrap();
        for (ext, args, codec) in [
            ("wav", &["-c:a", "pcm_s24le"][..], "pcm_s24le"),
            ("flac", &["-c:a", "flac"][..], "flac"),
            ("mp3", &["-c:a", "libmp3lame", "-b:a", "192k"][..], "mp3"),
            ("m4a", &["-c:a", "aac", "-b:a", "128k"][..], "aac"),
            ("ogg", &["-c:a", "libvorbis", "-b:a", "128k"][..], "vorbis"),
            ("opus", &["-c:a", "libopus", "-b:a", "96k"][..], "opus"),
        ] {
            let input = dir.path().join(format!("in.{ext}"));
            let marked = dir.path().join(format!("marked.{ext}"));
            let mut a = vec!["-hide_banner", "-loglevel", "error", "-y", "-i"];
            a.push(master.to_str().unwrap());
            a.extend_from_slice(args);
            a.push(input.to_str().unwrap());
            run("ffmpeg", &a);
            let report = embed_file(
                &input,
                &marked,
                payload,
                &key,
                super::super::DEFAULT_STRENGTH,
            )
            .unwrap_or_else(|e| panic!("{ext}: {e}"));
            assert_eq!(
                report.format.codec(),
                OutputFormat::for_path(AudioReader::open(&input).unwrap().info(), &marked)
                    .unwrap()
                    .codec()
            );
            let (pi, po) = (probe(&input), probe(&marked));
            assert_eq!(po.0, codec, "{ext}: {po:?}");
            assert_eq!((po.1, po.2), (pi.1, pi.2), "{ext}: {pi:?} → {po:?}");
            if !matches!(ext, "wav" | "flac") {
                assert!((po.3 / pi.3 - 1.0).abs() < 0.25, "{ext}: {pi:?} → {po:?}");
            }
            let d = detect_file(&marked, &key).unwrap();
            if matches!(ext, "m4a" | "ogg") {
                // Tandem coding (marked after one lossy generation, re-encoded at the same
                // bitrate) leaves AAC and Vorbis too little margin on 20 s (the ffmpeg CLI's
                // encoders do the same); 1.5× the input's bitrate keeps the payload.
                let format =
                    OutputFormat::for_path(AudioReader::open(&input).unwrap().info(), &marked)
                        .unwrap()
                        .with_bit_rate_scaled(1.5);
                embed_file_as(
                    &input,
                    &marked,
                    Some(format),
                    payload,
                    &key,
                    super::super::DEFAULT_STRENGTH,
                )
                .unwrap();
                let d = detect_file(&marked, &key).unwrap();
                assert_eq!(d.payload, Some(payload), "{ext} at 1.5× bitrate: {d:?}");
            } else {
                assert!(
                    d.present && d.false_positive_probability < 1e-9,
                    "{ext}: {d:?}"
                );
                assert_eq!(d.payload, Some(payload), "{ext}: {d:?}");
            }
            // The unmarked input carries nothing.
            assert!(!detect_file(&input, &key).unwrap().present, "{ext}");
        }
    }

    #[test]
    fn bad_input_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let key = WatermarkKey::from_bytes([1; 32]);
        let bad = dir.path().join("bad.mp3");
        std::fs::write(&bad, b"\xff\xfb\x90 this is not really an mp3 at all").unwrap();
        let out = dir.path().join("out.mp3");
        let err = embed_file(&bad, &out, Payload(1), &key, 0.3).unwrap_err();
        assert!(err.to_string().contains("bad.mp3"), "{err}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
