//! [`AudioWriter`]: streaming, atomic output in the input's container and codec at a similar
//! bitrate: WAV through hound, everything else through the FFmpeg libraries.

use std::path::{Path, PathBuf};

use super::encode::{EncodeSpec, EncodedWriter};
use super::wav::{WavFormat, WavWriter};
use super::{AudioCodec, AudioContainer, AudioInfo, MediaError};

/// The container of an AAC output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AacContainer {
    /// MPEG-4 audio (.m4a; FFmpeg's `ipod` muxer).
    M4a,
    /// MPEG-4 (.mp4).
    Mp4,
    /// Raw ADTS stream (.aac).
    Adts,
}

/// The container of an Opus output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpusContainer {
    /// Ogg (.opus, .ogg).
    Ogg,
    /// WebM (.webm).
    Webm,
    /// Matroska audio (.mka).
    Matroska,
}

/// What an [`AudioWriter`] produces. Bitrates are in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// WAV through hound.
    Wav(WavFormat),
    /// Native FLAC of 16 or 24 bits per sample.
    Flac {
        /// Bits per sample (16 or 24).
        bits: u32,
    },
    /// MP3 through libmp3lame (constant bitrate).
    Mp3 {
        /// Target bitrate.
        bit_rate: u64,
    },
    /// AAC-LC through FFmpeg's native encoder.
    Aac {
        /// Target bitrate.
        bit_rate: u64,
        /// Container.
        container: AacContainer,
    },
    /// Ogg Vorbis through libvorbis (average bitrate).
    Vorbis {
        /// Target bitrate.
        bit_rate: u64,
    },
    /// Opus through libopus (48 kHz and the other Opus rates only).
    Opus {
        /// Target bitrate.
        bit_rate: u64,
        /// Container.
        container: OpusContainer,
    },
}

/// Bitrate used when the input's is unknown: per channel, a little above transparent-ish.
fn default_bit_rate(codec: AudioCodec, channels: usize) -> u64 {
    let per_channel: u64 = match codec {
        AudioCodec::Opus => 48_000,
        AudioCodec::Mp3 => 96_000,
        _ => 80_000,
    };
    per_channel * channels.max(1) as u64
}

/// Keeps a bitrate inside what the encoder accepts for this many channels.
fn clamp_bit_rate(codec: AudioCodec, channels: usize, bit_rate: u64) -> u64 {
    let ch = channels.max(1) as u64;
    let (lo, hi) = match codec {
        AudioCodec::Mp3 => (32_000, 320_000),
        AudioCodec::Opus => (6_000 * ch, 256_000 * ch),
        AudioCodec::Vorbis => (32_000 * ch.min(2), 240_000 * ch),
        _ => (16_000 * ch, 256_000 * ch),
    };
    bit_rate.clamp(lo, hi)
}

/// The libvorbis quality (0–10) that gives about `bit_rate` for this many channels
/// (q0 ≈ 32, q4 ≈ 64, q8 ≈ 128 kb/s per channel at 44.1/48 kHz).
fn vorbis_quality(bit_rate: u64, channels: usize) -> f32 {
    let per_channel_kbps = bit_rate as f32 / 1000.0 / channels.max(1) as f32;
    ((per_channel_kbps - 32.0) / 8.0).clamp(0.0, 10.0)
}

impl OutputFormat {
    /// The same container and codec as `input` at a similar bitrate. Inputs whose codec we do not
    /// encode (ALAC, AC-3, …) are refused: pick an [`OutputFormat`] explicitly for those.
    pub fn like(input: &AudioInfo) -> Result<Self, String> {
        let rate = |codec| {
            let r = input
                .bit_rate
                .unwrap_or_else(|| default_bit_rate(codec, input.channels));
            clamp_bit_rate(codec, input.channels, r)
        };
        Ok(match input.codec {
            AudioCodec::PcmInt(_) | AudioCodec::PcmFloat => {
                Self::Wav(WavFormat::for_codec(input.codec))
            }
            AudioCodec::Flac => Self::Flac {
                bits: if input.bits_per_sample.unwrap_or(16) > 16 {
                    24
                } else {
                    16
                },
            },
            AudioCodec::Mp3 => Self::Mp3 {
                bit_rate: rate(AudioCodec::Mp3),
            },
            AudioCodec::Aac => Self::Aac {
                bit_rate: rate(AudioCodec::Aac),
                container: if input.container == AudioContainer::Adts {
                    AacContainer::Adts
                } else {
                    AacContainer::M4a
                },
            },
            AudioCodec::Vorbis => Self::Vorbis {
                bit_rate: rate(AudioCodec::Vorbis),
            },
            AudioCodec::Opus => Self::Opus {
                bit_rate: rate(AudioCodec::Opus),
                container: if input.container == AudioContainer::Matroska {
                    OpusContainer::Matroska
                } else {
                    OpusContainer::Ogg
                },
            },
            AudioCodec::Other => {
                return Err(
                    "re-encoding this codec is not supported (write WAV or FLAC instead)".into(),
                );
            }
        })
    }

    /// The format an output named `dest` should have: the input's own format when the extension
    /// fits it (or is unknown), otherwise the extension's format at a bitrate similar to the
    /// input's.
    pub fn for_path(input: &AudioInfo, dest: &Path) -> Result<Self, String> {
        let ext = dest
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let like = Self::like(input);
        let fits = |f: &Result<Self, String>| match (f, ext.as_str()) {
            (Ok(Self::Wav(_)), "wav" | "wave") => true,
            (Ok(Self::Flac { .. }), "flac") => true,
            (Ok(Self::Mp3 { .. }), "mp3") => true,
            (Ok(Self::Aac { container, .. }), e) => match container {
                AacContainer::Adts => e == "aac",
                AacContainer::M4a | AacContainer::Mp4 => matches!(e, "m4a" | "m4b" | "mp4"),
            },
            (Ok(Self::Vorbis { .. }), "ogg" | "oga") => true,
            (Ok(Self::Opus { container, .. }), e) => match container {
                OpusContainer::Ogg => matches!(e, "opus" | "ogg" | "oga"),
                OpusContainer::Webm => e == "webm",
                OpusContainer::Matroska => e == "mka",
            },
            _ => false,
        };
        if fits(&like) {
            return like;
        }
        let similar = |codec| {
            clamp_bit_rate(
                codec,
                input.channels,
                input
                    .bit_rate
                    .filter(|_| {
                        !matches!(
                            input.codec,
                            AudioCodec::PcmInt(_) | AudioCodec::PcmFloat | AudioCodec::Flac
                        )
                    })
                    .unwrap_or_else(|| default_bit_rate(codec, input.channels)),
            )
        };
        let lossless_bits = if input.bits_per_sample.unwrap_or(16) > 16 {
            24
        } else {
            16
        };
        Ok(match ext.as_str() {
            "wav" | "wave" => Self::Wav(match input.codec {
                AudioCodec::PcmInt(_) | AudioCodec::PcmFloat => WavFormat::for_codec(input.codec),
                _ => WavFormat::Int(lossless_bits as u16),
            }),
            "flac" => Self::Flac {
                bits: lossless_bits,
            },
            "mp3" => Self::Mp3 {
                bit_rate: similar(AudioCodec::Mp3),
            },
            "m4a" | "m4b" | "mp4" | "aac" => Self::Aac {
                bit_rate: similar(AudioCodec::Aac),
                container: match ext.as_str() {
                    "aac" => AacContainer::Adts,
                    "mp4" => AacContainer::Mp4,
                    _ => AacContainer::M4a,
                },
            },
            "ogg" | "oga" => Self::Vorbis {
                bit_rate: similar(AudioCodec::Vorbis),
            },
            "opus" | "webm" | "mka" => Self::Opus {
                bit_rate: similar(AudioCodec::Opus),
                container: match ext.as_str() {
                    "webm" => OpusContainer::Webm,
                    "mka" => OpusContainer::Matroska,
                    _ => OpusContainer::Ogg,
                },
            },
            _ => return like,
        })
    }

    /// The same format at `factor` times the bitrate (lossless formats unchanged). Re-encoding a
    /// lossy input in its own codec at the same bitrate loses more than the first generation
    /// did; a little more bitrate keeps what was added (e.g. a watermark).
    pub fn with_bit_rate_scaled(self, factor: f64) -> Self {
        let scale = |b: u64| (b as f64 * factor).round().max(1.0) as u64;
        match self {
            Self::Mp3 { bit_rate } => Self::Mp3 {
                bit_rate: clamp_bit_rate(AudioCodec::Mp3, 2, scale(bit_rate)),
            },
            Self::Aac {
                bit_rate,
                container,
            } => Self::Aac {
                bit_rate: scale(bit_rate),
                container,
            },
            Self::Vorbis { bit_rate } => Self::Vorbis {
                bit_rate: scale(bit_rate),
            },
            Self::Opus {
                bit_rate,
                container,
            } => Self::Opus {
                bit_rate: scale(bit_rate),
                container,
            },
            lossless => lossless,
        }
    }

    /// The largest sample magnitude the output stores without clipping, in [-1, 1] terms.
    pub fn full_scale(&self) -> f32 {
        match self {
            Self::Wav(f) => f.full_scale(),
            Self::Flac { bits } => WavFormat::Int(*bits as u16).full_scale(),
            // Lossy codecs decode to float; their overshoot is the codec's, not ours.
            _ => 1.0,
        }
    }

    /// The codec this format writes.
    pub fn codec(&self) -> AudioCodec {
        match self {
            Self::Wav(WavFormat::Int(b)) => AudioCodec::PcmInt(*b),
            Self::Wav(WavFormat::Float) => AudioCodec::PcmFloat,
            Self::Flac { .. } => AudioCodec::Flac,
            Self::Mp3 { .. } => AudioCodec::Mp3,
            Self::Aac { .. } => AudioCodec::Aac,
            Self::Vorbis { .. } => AudioCodec::Vorbis,
            Self::Opus { .. } => AudioCodec::Opus,
        }
    }

    fn encode_spec(&self, channels: usize) -> Option<EncodeSpec> {
        let lossy = |encoder, muxer, bit_rate: u64| EncodeSpec {
            encoder,
            muxer,
            bit_rate: Some(bit_rate),
            int_bits: 16,
            options: Vec::new(),
            fallback_quality: None,
        };
        Some(match *self {
            Self::Wav(_) => return None,
            Self::Flac { bits } => EncodeSpec {
                encoder: "flac",
                muxer: "flac",
                bit_rate: None,
                int_bits: bits,
                options: vec![("compression_level", "5".into())],
                fallback_quality: None,
            },
            Self::Mp3 { bit_rate } => lossy("libmp3lame", "mp3", bit_rate),
            Self::Aac {
                bit_rate,
                container,
            } => lossy(
                "aac",
                match container {
                    AacContainer::M4a => "ipod",
                    AacContainer::Mp4 => "mp4",
                    AacContainer::Adts => "adts",
                },
                bit_rate,
            ),
            Self::Vorbis { bit_rate } => EncodeSpec {
                fallback_quality: Some(vorbis_quality(bit_rate, channels)),
                ..lossy("libvorbis", "ogg", bit_rate)
            },
            Self::Opus {
                bit_rate,
                container,
            } => EncodeSpec {
                // Unconstrained VBR overshoots the target by half on tonal material.
                options: vec![("vbr", "constrained".into())],
                ..lossy(
                    "libopus",
                    match container {
                        OpusContainer::Ogg => "ogg",
                        OpusContainer::Webm => "webm",
                        OpusContainer::Matroska => "matroska",
                    },
                    bit_rate,
                )
            },
        })
    }
}

/// What a finished [`AudioWriter`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    /// The format written.
    pub format: OutputFormat,
    /// Frames (samples per channel) given to the writer.
    pub frames: u64,
    /// Samples of silence the encoder puts before the signal (AAC 1024, MP3 1105, Opus 312;
    /// 0 for WAV, FLAC, Vorbis). The container records it (MP4 edit list, LAME tag, Opus
    /// pre-skip), so FFmpeg and symphonia drop it again when decoding.
    pub encoder_delay: u32,
}

enum Inner {
    Wav(WavWriter),
    Encoded(Box<EncodedWriter>),
}

/// A streaming audio writer: temporary file beside the destination, renamed into place by
/// [`AudioWriter::finish`]; dropped unfinished (or after an error) it leaves nothing behind.
pub struct AudioWriter {
    path: PathBuf,
    format: OutputFormat,
    channels: usize,
    frames: u64,
    inner: Inner,
}

impl std::fmt::Debug for AudioWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioWriter")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish()
    }
}

impl AudioWriter {
    /// A writer for `dest` in `input`'s container and codec at a similar bitrate, with the
    /// input's sample rate, channels and metadata tags ([`OutputFormat::like`]).
    pub fn create_like(input: &AudioInfo, dest: &Path) -> Result<Self, MediaError> {
        let format = OutputFormat::like(input).map_err(|what| MediaError::Unsupported {
            path: dest.to_path_buf(),
            what,
        })?;
        Self::create(dest, input.sample_rate, input.channels, format, &input.tags)
    }

    /// A writer for `dest` in the format its extension names, else the input's
    /// ([`OutputFormat::for_path`]), with the input's sample rate, channels and tags.
    pub fn create_for_path(input: &AudioInfo, dest: &Path) -> Result<Self, MediaError> {
        let format =
            OutputFormat::for_path(input, dest).map_err(|what| MediaError::Unsupported {
                path: dest.to_path_buf(),
                what,
            })?;
        Self::create(dest, input.sample_rate, input.channels, format, &input.tags)
    }

    /// A writer for `dest` in `format`. `tags` (key, value) are written as the container's
    /// metadata where it has any (not in WAV: hound writes no tags); FFmpeg's own bookkeeping
    /// keys (`encoder`, MP4 brands, …) are skipped.
    pub fn create(
        dest: &Path,
        sample_rate: u32,
        channels: usize,
        format: OutputFormat,
        tags: &[(String, String)],
    ) -> Result<Self, MediaError> {
        super::check_params(dest, sample_rate, channels)?;
        let inner = match (format, format.encode_spec(channels)) {
            (OutputFormat::Wav(wav), _) => {
                Inner::Wav(WavWriter::create(dest, sample_rate, channels, wav)?)
            }
            (_, None) => {
                return Err(MediaError::Unsupported {
                    path: dest.to_path_buf(),
                    what: format!("cannot write {format:?}"),
                });
            }
            (_, Some(spec)) => {
                let kept: Vec<(String, String)> =
                    tags.iter().filter(|(k, _)| carry_tag(k)).cloned().collect();
                let temp = temp_beside(dest)?;
                Inner::Encoded(Box::new(EncodedWriter::create(
                    dest,
                    temp,
                    sample_rate,
                    channels,
                    &spec,
                    &kept,
                )?))
            }
        };
        Ok(Self {
            path: dest.to_path_buf(),
            format,
            channels,
            frames: 0,
            inner,
        })
    }

    /// The format being written.
    pub fn format(&self) -> &OutputFormat {
        &self.format
    }

    /// The destination file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The largest sample magnitude the output stores without clipping.
    pub fn full_scale(&self) -> f32 {
        self.format.full_scale()
    }

    /// Appends interleaved samples (`channels` per frame, values in [-1, 1]; clamped).
    pub fn write(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        self.frames += (samples.len() / self.channels.max(1)) as u64;
        match &mut self.inner {
            Inner::Wav(w) => w.write(samples),
            Inner::Encoded(w) => w.write(samples),
        }
    }

    /// Makes a WAV output carry `chunks` after its audio; `false` (and nothing kept) for
    /// other formats.
    pub fn keep_wav_chunks(&mut self, chunks: Vec<super::wav::RiffChunk>) -> bool {
        match &mut self.inner {
            Inner::Wav(w) => {
                w.keep_chunks(chunks);
                true
            }
            Inner::Encoded(_) => false,
        }
    }

    /// Flushes the encoder, finalises the container and renames the file into place.
    pub fn finish(self) -> Result<WriteSummary, MediaError> {
        let encoder_delay = match self.inner {
            Inner::Wav(w) => {
                w.finish()?;
                0
            }
            Inner::Encoded(w) => {
                let delay = w.encoder_delay;
                w.finish()?;
                delay
            }
        };
        Ok(WriteSummary {
            format: self.format,
            frames: self.frames,
            encoder_delay,
        })
    }
}

/// Whether a tag read from an input is worth writing to the output: FFmpeg's bookkeeping keys
/// describe the old file, not the content.
fn carry_tag(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    !matches!(
        k.as_str(),
        "encoder"
            | "encoded_by"
            | "major_brand"
            | "minor_version"
            | "compatible_brands"
            | "creation_time"
            | "handler_name"
            | "vendor_id"
            | "duration"
            | "language"
    ) && !k.starts_with("itunsmpb")
        && !k.starts_with("itunnorm")
}

/// A temporary file in `dest`'s directory (so the final rename stays on one filesystem).
pub(crate) fn temp_beside(dest: &Path) -> Result<tempfile::TempPath, MediaError> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".aigc-mark-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(|source| MediaError::Io {
            path: dest.to_path_buf(),
            source,
        })
}
