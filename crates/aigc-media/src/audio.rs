//! Audio: a streaming PCM reader over symphonia and an atomic WAV writer over hound.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoder;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known as ids;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

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
    /// Anything else symphonia decodes (ALAC, ADPCM, MP2, …).
    Other,
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
}

/// A streaming decoder: [`AudioReader::next_block`] returns one decoded packet at a time as
/// interleaved `f32` in [-1, 1].
pub struct AudioReader {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    info: AudioInfo,
    block: Vec<f32>,
}

impl std::fmt::Debug for AudioReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

fn codec_of(params: &symphonia::core::codecs::audio::AudioCodecParameters) -> AudioCodec {
    let c = params.codec;
    if c == ids::CODEC_ID_MP3 {
        AudioCodec::Mp3
    } else if c == ids::CODEC_ID_AAC {
        AudioCodec::Aac
    } else if c == ids::CODEC_ID_FLAC {
        AudioCodec::Flac
    } else if c == ids::CODEC_ID_VORBIS {
        AudioCodec::Vorbis
    } else if c == ids::CODEC_ID_OPUS {
        AudioCodec::Opus
    } else if c == ids::CODEC_ID_PCM_F32LE
        || c == ids::CODEC_ID_PCM_F32BE
        || c == ids::CODEC_ID_PCM_F64LE
        || c == ids::CODEC_ID_PCM_F64BE
    {
        AudioCodec::PcmFloat
    } else if let (true, Some(bits)) = (is_int_pcm(c), params.bits_per_sample) {
        AudioCodec::PcmInt(u16::try_from(bits).unwrap_or(32))
    } else {
        AudioCodec::Other
    }
}

fn is_int_pcm(c: symphonia::core::codecs::audio::AudioCodecId) -> bool {
    [
        ids::CODEC_ID_PCM_S8,
        ids::CODEC_ID_PCM_U8,
        ids::CODEC_ID_PCM_S16LE,
        ids::CODEC_ID_PCM_S16BE,
        ids::CODEC_ID_PCM_S24LE,
        ids::CODEC_ID_PCM_S24BE,
        ids::CODEC_ID_PCM_S32LE,
        ids::CODEC_ID_PCM_S32BE,
    ]
    .contains(&c)
}

impl AudioReader {
    /// Opens `path`, recognising the container from its bytes (the extension is only a hint).
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let io = |source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let unsupported = |what: String| MediaError::Unsupported {
            path: path.to_path_buf(),
            what,
        };
        let file = File::open(path).map_err(io)?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymError::IoError(source) => io(source),
                other => unsupported(format!("not a readable audio file ({other})")),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| unsupported("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| unsupported("audio track without codec parameters".into()))?
            .clone();
        let track_id = track.id;
        let frames = track.num_frames;
        let codec = codec_of(&params);
        let sample_rate = params
            .sample_rate
            .ok_or_else(|| unsupported("audio track without a sample rate".into()))?;
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(unsupported(format!(
                "sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz"
            )));
        }
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count())
            .ok_or_else(|| unsupported("audio track without a channel layout".into()))?;
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(unsupported(format!(
                "{channels} channels (1–{MAX_CHANNELS} supported)"
            )));
        }
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| {
                if codec == AudioCodec::Opus {
                    unsupported(
                        "Opus is not decoded in this version (convert to WAV/FLAC first)".into(),
                    )
                } else {
                    unsupported(format!("no decoder for this audio codec ({e})"))
                }
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            format,
            decoder,
            track_id,
            info: AudioInfo {
                sample_rate,
                channels,
                codec,
                frames,
            },
            block: Vec::new(),
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
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                // A truncated file ends the stream where its data ends.
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(SymError::IoError(source)) => {
                    return Err(MediaError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
                Err(e) => {
                    return Err(MediaError::Decode {
                        path: self.path.clone(),
                        what: e.to_string(),
                    });
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    if buf.spec().channels().count() != self.info.channels {
                        return Err(MediaError::Unsupported {
                            path: self.path.clone(),
                            what: "the channel count changes within the stream".into(),
                        });
                    }
                    self.block.resize(buf.samples_interleaved(), 0.0);
                    buf.copy_to_slice_interleaved(&mut self.block);
                    if self.block.is_empty() {
                        continue;
                    }
                    return Ok(Some(&self.block));
                }
                Err(SymError::DecodeError(_)) => continue,
                Err(e) => {
                    return Err(MediaError::Decode {
                        path: self.path.clone(),
                        what: e.to_string(),
                    });
                }
            }
        }
    }
}

/// Sample format of a WAV output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// Signed integer PCM of 8, 16, 24 or 32 bits.
    Int(u16),
    /// 32-bit IEEE float.
    Float,
}

impl WavFormat {
    /// The WAV format that keeps `codec`'s precision: the same for PCM input, 16-bit otherwise.
    pub fn for_codec(codec: AudioCodec) -> Self {
        match codec {
            AudioCodec::PcmInt(b @ (8 | 16 | 24 | 32)) => Self::Int(b),
            AudioCodec::PcmFloat => Self::Float,
            AudioCodec::Flac => Self::Int(24),
            _ => Self::Int(16),
        }
    }

    /// The largest sample value this format stores, as an `f32` in [-1, 1] terms.
    pub fn full_scale(self) -> f32 {
        match self {
            Self::Float => 1.0,
            Self::Int(bits) => {
                let max = (1i64 << (bits - 1)) as f64;
                ((max - 1.0) / max) as f32
            }
        }
    }
}

/// A WAV writer that writes to a temporary file beside the output and renames it into place on
/// [`WavWriter::finish`]; dropped unfinished, it leaves nothing behind.
pub struct WavWriter {
    path: PathBuf,
    format: WavFormat,
    writer: hound::WavWriter<BufWriter<File>>,
    temp: tempfile::TempPath,
}

impl std::fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl WavWriter {
    /// Starts writing `path` with these parameters.
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: usize,
        format: WavFormat,
    ) -> Result<Self, MediaError> {
        let write_err = |what: String| MediaError::Write {
            path: path.to_path_buf(),
            what,
        };
        let channels16 = u16::try_from(channels)
            .ok()
            .filter(|c| (1..=MAX_CHANNELS as u16).contains(c))
            .ok_or_else(|| write_err(format!("{channels} channels")))?;
        let spec = match format {
            WavFormat::Float => hound::WavSpec {
                channels: channels16,
                sample_rate,
                bits_per_sample: 32,
                sample_format: hound::SampleFormat::Float,
            },
            WavFormat::Int(bits) if matches!(bits, 8 | 16 | 24 | 32) => hound::WavSpec {
                channels: channels16,
                sample_rate,
                bits_per_sample: bits,
                sample_format: hound::SampleFormat::Int,
            },
            WavFormat::Int(bits) => return Err(write_err(format!("{bits}-bit integer PCM"))),
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".aigc-mark-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|source| MediaError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let (file, temp) = temp.into_parts();
        let writer = hound::WavWriter::new(BufWriter::new(file), spec)
            .map_err(|e| write_err(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            format,
            writer,
            temp,
        })
    }

    /// Appends interleaved samples (clamped to the format's range).
    pub fn write(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        let res = match self.format {
            WavFormat::Float => samples
                .iter()
                .try_for_each(|s| self.writer.write_sample(s.clamp(-1.0, 1.0))),
            WavFormat::Int(bits) => {
                let scale = (1i64 << (bits - 1)) as f32;
                let (lo, hi) = (-scale, scale - 1.0);
                samples.iter().try_for_each(|s| {
                    // Round to nearest; f32 → i32 `as` saturates.
                    let v = (s * scale).round().clamp(lo, hi) as i32;
                    self.writer.write_sample(v)
                })
            }
        };
        res.map_err(|e| MediaError::Write {
            path: self.path.clone(),
            what: e.to_string(),
        })
    }

    /// Finalises the header and renames the file into place.
    pub fn finish(self) -> Result<(), MediaError> {
        let path = self.path;
        self.writer.finalize().map_err(|e| MediaError::Write {
            path: path.clone(),
            what: e.to_string(),
        })?;
        self.temp.persist(&path).map_err(|e| MediaError::Io {
            path: path.clone(),
            source: e.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, channels: usize, seconds: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n)
            .flat_map(|i| {
                (0..channels).map(move |c| {
                    0.5 * (2.0 * std::f32::consts::PI * (440.0 + 110.0 * c as f32) * i as f32
                        / rate as f32)
                        .sin()
                })
            })
            .collect()
    }

    fn read_all(path: &Path) -> (AudioInfo, Vec<f32>) {
        let mut r = AudioReader::open(path).unwrap();
        let info = r.info().clone();
        let mut all = Vec::new();
        while let Some(b) = r.next_block().unwrap() {
            all.extend_from_slice(b);
        }
        (info, all)
    }

    #[test]
    fn wav_round_trip_at_every_depth() {
        let dir = tempfile::tempdir().unwrap();
        for (format, tol) in [
            (WavFormat::Int(16), 1.0 / 32768.0),
            (WavFormat::Int(24), 1.0 / 8e6),
            (WavFormat::Int(32), 1e-7),
            (WavFormat::Float, 0.0),
        ] {
            for (rate, ch) in [(8_000, 1), (44_100, 2), (96_000, 8)] {
                let path = dir.path().join(format!("t-{format:?}-{rate}-{ch}.wav"));
                let samples = tone(rate, ch, 0.3);
                let mut w = WavWriter::create(&path, rate, ch, format).unwrap();
                w.write(&samples).unwrap();
                w.finish().unwrap();
                let (info, back) = read_all(&path);
                assert_eq!(info.sample_rate, rate);
                assert_eq!(info.channels, ch);
                assert_eq!(WavFormat::for_codec(info.codec), format, "{info:?}");
                assert_eq!(back.len(), samples.len());
                let worst = samples
                    .iter()
                    .zip(&back)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst <= tol, "{format:?} {rate} {ch}: {worst}");
            }
        }
        // Nothing but the outputs is left in the directory (temporary files renamed).
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".wav")), "{names:?}");
    }

    #[test]
    fn unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let mut w = WavWriter::create(&path, 44_100, 1, WavFormat::Int(16)).unwrap();
        w.write(&[0.1, 0.2]).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-audio.wav");
        std::fs::write(&path, b"hello, this is not a RIFF file at all").unwrap();
        let err = AudioReader::open(&path).unwrap_err().to_string();
        assert!(err.contains("not-audio.wav"), "{err}");
        let missing = dir.path().join("missing.flac");
        let err = AudioReader::open(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.flac"), "{err}");
    }
}
