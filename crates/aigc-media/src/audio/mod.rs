//! Audio: one streaming PCM reader (symphonia first, the FFmpeg libraries for what symphonia
//! cannot read, e.g. Opus) and one atomic writer that re-encodes in the input's container and
//! codec at a similar bitrate (hound for WAV, the FFmpeg libraries for everything else).

use std::path::{Path, PathBuf};

mod convert;
mod encode;
mod ffmpeg_decode;
mod symphonia_decode;
mod wav;
mod writer;

pub use wav::{RiffChunk, WavFormat, WavWriter, read_extra_chunks};
pub use writer::{AacContainer, AudioWriter, OpusContainer, OutputFormat, WriteSummary};

/// Where decoded PCM goes: an [`AudioWriter`], or a stage that changes the samples on their way
/// to one (the audio watermark), so a file is decoded and encoded once whatever is applied.
pub trait PcmSink {
    /// Takes interleaved samples.
    fn write(&mut self, samples: &[f32]) -> Result<(), MediaError>;

    /// Whether the output is WAV (which carries the input's other RIFF chunks).
    fn writes_wav(&self) -> bool;

    /// Makes a WAV output carry `chunks` after its audio; `false` (nothing kept) otherwise.
    fn keep_wav_chunks(&mut self, chunks: Vec<RiffChunk>) -> bool;
}

impl PcmSink for AudioWriter {
    fn write(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        AudioWriter::write(self, samples)
    }

    fn writes_wav(&self) -> bool {
        matches!(self.format(), OutputFormat::Wav(_))
    }

    fn keep_wav_chunks(&mut self, chunks: Vec<RiffChunk>) -> bool {
        AudioWriter::keep_wav_chunks(self, chunks)
    }
}

/// Lowest sample rate accepted (telephone audio).
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate accepted.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Most channels accepted (7.1).
pub const MAX_CHANNELS: usize = 8;

/// What went wrong reading or writing audio; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not audio we can read, or its parameters are out of range.
    #[error("{path}: {what}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        what: String,
    },
    /// The stream is malformed.
    #[error("{path}: cannot decode audio: {what}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        what: String,
    },
    /// Writing the output failed.
    #[error("{path}: cannot write audio: {what}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
}

/// The codec of an audio stream, as far as re-encoding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// Integer PCM of this many bits per sample (WAV).
    PcmInt(u16),
    /// 32-bit float PCM (WAV).
    PcmFloat,
    /// FLAC.
    Flac,
    /// MPEG-1/2 Layer III.
    Mp3,
    /// AAC (M4A/MP4).
    Aac,
    /// Ogg Vorbis.
    Vorbis,
    /// Opus.
    Opus,
    /// Anything else the decoders read (ALAC, ADPCM, MP2, AC-3, …).
    Other,
}

/// The container an audio stream came in (what the writer reproduces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioContainer {
    /// RIFF WAVE.
    Wav,
    /// Native FLAC.
    Flac,
    /// MPEG audio elementary stream (.mp3).
    Mp3,
    /// ISO base media file (.m4a, .mp4, .mov).
    Mp4,
    /// Raw AAC with ADTS headers (.aac).
    Adts,
    /// Ogg (.ogg, .oga, .opus).
    Ogg,
    /// Matroska or WebM (.mka, .webm).
    Matroska,
    /// Any other container (AIFF, CAF, …).
    Other,
}

/// Which library decodes a [`AudioReader`]'s stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderBackend {
    /// symphonia (pure Rust; the first choice).
    Symphonia,
    /// The FFmpeg libraries (Opus and anything symphonia cannot read).
    Ffmpeg,
}

/// Stream parameters of an opened audio file.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Interleaved channels per frame.
    pub channels: usize,
    /// The stream's codec.
    pub codec: AudioCodec,
    /// Frames in the stream when the container says so.
    pub frames: Option<u64>,
    /// The container the stream came in.
    pub container: AudioContainer,
    /// The audio stream's bitrate in bits per second (nominal or average), when known.
    pub bit_rate: Option<u64>,
    /// Bits per sample of a lossless source (PCM, FLAC), when known.
    pub bits_per_sample: Option<u32>,
    /// The file's metadata tags (container and stream level, as FFmpeg names them).
    pub tags: Vec<(String, String)>,
    /// The library that decodes the stream.
    pub backend: DecoderBackend,
}

impl AudioInfo {
    /// Parameters for audio made from scratch (no source file): `codec` in its usual container,
    /// no bitrate, no tags.
    pub fn new(sample_rate: u32, channels: usize, codec: AudioCodec) -> Self {
        let container = match codec {
            AudioCodec::PcmInt(_) | AudioCodec::PcmFloat => AudioContainer::Wav,
            AudioCodec::Flac => AudioContainer::Flac,
            AudioCodec::Mp3 => AudioContainer::Mp3,
            AudioCodec::Aac => AudioContainer::Mp4,
            AudioCodec::Vorbis | AudioCodec::Opus => AudioContainer::Ogg,
            AudioCodec::Other => AudioContainer::Other,
        };
        let bits_per_sample = match codec {
            AudioCodec::PcmInt(b) => Some(u32::from(b)),
            AudioCodec::PcmFloat => Some(32),
            _ => None,
        };
        Self {
            sample_rate,
            channels,
            codec,
            frames: None,
            container,
            bit_rate: None,
            bits_per_sample,
            tags: Vec::new(),
            backend: DecoderBackend::Symphonia,
        }
    }
}

/// Streams symphonia 0.6 opens but decodes wrongly, left to FFmpeg: AAC (symphonia ignores
/// the MP4 edit list, so the encoder's 1024 samples of priming would shift the signal) and
/// Vorbis with more than two channels (symphonia leaks channels into each other).
fn prefer_ffmpeg(info: &AudioInfo) -> bool {
    info.codec == AudioCodec::Aac || (info.codec == AudioCodec::Vorbis && info.channels > 2)
}

/// Why a decoder could not open a file: a problem any decoder would have (missing file, out of
/// range parameters), or one another decoder may not have (unknown format or codec).
pub(crate) enum OpenFailure {
    /// Give up.
    Fatal(MediaError),
    /// Let the other decoder try.
    TryOther(MediaError),
}

impl OpenFailure {
    fn into_error(self) -> MediaError {
        match self {
            Self::Fatal(e) | Self::TryOther(e) => e,
        }
    }
}

enum Source {
    Symphonia(symphonia_decode::SymphoniaSource),
    Ffmpeg(Box<ffmpeg_decode::FfmpegSource>),
}

/// A streaming decoder: [`AudioReader::next_block`] returns one decoded packet at a time as
/// interleaved `f32` in [-1, 1]. symphonia decodes what it can; the FFmpeg libraries decode the
/// rest (Opus, AC-3, …). Memory stays bounded by one packet whatever the file's length.
pub struct AudioReader {
    path: PathBuf,
    info: AudioInfo,
    source: Source,
}

impl std::fmt::Debug for AudioReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

pub(crate) fn check_params(
    path: &Path,
    sample_rate: u32,
    channels: usize,
) -> Result<(), MediaError> {
    let unsupported = |what: String| MediaError::Unsupported {
        path: path.to_path_buf(),
        what,
    };
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(unsupported(format!(
            "sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz"
        )));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(unsupported(format!(
            "{channels} channels (1–{MAX_CHANNELS} supported)"
        )));
    }
    Ok(())
}

impl AudioReader {
    /// Opens `path`, recognising the container from its bytes (the extension is only a hint).
    /// symphonia is tried first; when it cannot read the file, the FFmpeg libraries are.
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let first = match symphonia_decode::SymphoniaSource::open(path) {
            Ok((source, info)) if prefer_ffmpeg(&info) => {
                match ffmpeg_decode::FfmpegSource::open(path) {
                    Ok((source, info)) => {
                        return Ok(Self {
                            path: path.to_path_buf(),
                            info,
                            source: Source::Ffmpeg(Box::new(source)),
                        });
                    }
                    Err(_) => return Ok(Self::with_symphonia(path, source, info)),
                }
            }
            Ok((source, info)) => return Ok(Self::with_symphonia(path, source, info)),
            Err(OpenFailure::Fatal(e)) => return Err(e),
            Err(OpenFailure::TryOther(e)) => e,
        };
        match ffmpeg_decode::FfmpegSource::open(path) {
            Ok((source, info)) => Ok(Self {
                path: path.to_path_buf(),
                info,
                source: Source::Ffmpeg(Box::new(source)),
            }),
            // Neither library recognises the file: symphonia's message is the first opinion.
            Err(OpenFailure::TryOther(_)) => Err(first),
            Err(OpenFailure::Fatal(e)) => Err(e),
        }
    }

    fn with_symphonia(
        path: &Path,
        source: symphonia_decode::SymphoniaSource,
        mut info: AudioInfo,
    ) -> Self {
        // Bitrate, tags and the container name come from FFmpeg's demuxer, which knows them for
        // every format; symphonia still does the decoding.
        if let Some(probe) = ffmpeg_decode::probe(path) {
            probe.fill(&mut info);
        }
        Self {
            path: path.to_path_buf(),
            info,
            source: Source::Symphonia(source),
        }
    }

    /// Opens `path` with the FFmpeg libraries only (for comparison and for streams symphonia
    /// misreads).
    pub fn open_with_ffmpeg(path: &Path) -> Result<Self, MediaError> {
        let (source, info) =
            ffmpeg_decode::FfmpegSource::open(path).map_err(OpenFailure::into_error)?;
        Ok(Self {
            path: path.to_path_buf(),
            info,
            source: Source::Ffmpeg(Box::new(source)),
        })
    }

    /// The stream's parameters.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next decoded block (interleaved, `info().channels` samples per frame), or `None` at
    /// the end. Packets the decoder rejects as malformed are skipped, as players do.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, MediaError> {
        match &mut self.source {
            Source::Symphonia(s) => s.next_block(&self.path, self.info.channels),
            Source::Ffmpeg(s) => s.next_block(&self.path, self.info.channels),
        }
    }
}

#[cfg(test)]
mod tests;
