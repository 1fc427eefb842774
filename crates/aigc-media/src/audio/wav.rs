//! WAV output through hound, at the input's sample format.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::{AudioCodec, MAX_CHANNELS, MediaError};

/// Sample format of a WAV output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
        let temp = super::writer::temp_beside(path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&temp)
            .map_err(|source| MediaError::Io {
                path: path.to_path_buf(),
                source,
            })?;
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
