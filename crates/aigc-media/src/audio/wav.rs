//! WAV output through hound, at the input's sample format, with the input's other RIFF
//! chunks (LIST/INFO, bext, iXML, cue, smpl, …) carried over when asked.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
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

/// A top-level RIFF chunk of a WAV file other than the audio itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiffChunk {
    /// The chunk id (e.g. `LIST`, `bext`, `cue `).
    pub id: [u8; 4],
    /// The chunk's payload (without the pad byte).
    pub data: Vec<u8>,
}

impl RiffChunk {
    /// The id as text (`cue ` trimmed to `cue`).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.id).trim_end().to_string()
    }

    /// Moves the sample positions in `cue ` points and `smpl` loops past audio inserted at
    /// `inserts` (frame, frames inserted there, in the old timeline). A position at or after
    /// an insertion moves by its length; an insertion at `total` (the end) moves nothing.
    pub fn shift_sample_positions(&mut self, inserts: &[(u64, u64)], total: u64) {
        let shift = |s: u32| -> u32 {
            let add: u64 = inserts
                .iter()
                .filter(|(at, _)| *at < total && *at <= u64::from(s))
                .map(|(_, n)| n)
                .sum();
            u32::try_from(u64::from(s) + add).unwrap_or(u32::MAX)
        };
        // (first record offset, record size, field offsets within a record)
        let (start, size, fields): (usize, usize, &[usize]) = match &self.id {
            b"cue " => (4, 24, &[4, 20]),
            b"smpl" => (36, 24, &[8, 12]),
            _ => return,
        };
        let mut at = start;
        while at + size <= self.data.len() {
            for f in fields {
                let b = &mut self.data[at + f..at + f + 4];
                let v = shift(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                b.copy_from_slice(&v.to_le_bytes());
            }
            at += size;
        }
    }
}

/// Chunks a rewrite makes itself or that mean nothing once the audio is re-written.
const NOT_CARRIED: [&[u8; 4]; 7] = [
    b"fmt ", b"data", b"fact", b"JUNK", b"junk", b"PAD ", b"ds64",
];

/// Largest chunk carried over; bigger ones (unusual outside `data`) are left out.
const MAX_CARRIED_CHUNK: u32 = 64 << 20;

/// The top-level chunks of a RIFF/WAVE file other than its format and audio (and padding),
/// in file order; empty for anything that is not RIFF/WAVE. Reads headers only, then the
/// chunks it keeps, so a large `data` chunk is skipped, not read.
pub fn read_extra_chunks(path: &Path) -> Result<Vec<RiffChunk>, MediaError> {
    let io = |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
    let mut head = [0u8; 12];
    if f.read_exact(&mut head).is_err() || &head[..4] != b"RIFF" || &head[8..] != b"WAVE" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut at = 12u64;
    let mut h = [0u8; 8];
    while at + 8 <= file_len {
        f.seek(SeekFrom::Start(at)).map_err(io)?;
        f.read_exact(&mut h).map_err(io)?;
        let id = [h[0], h[1], h[2], h[3]];
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let body = at + 8;
        // A chunk running past the end (a truncated file, or a streaming writer's 0/-1 size)
        // ends the walk.
        if body + u64::from(len) > file_len {
            break;
        }
        if !NOT_CARRIED.contains(&&id) && len <= MAX_CARRIED_CHUNK {
            let mut data = vec![0u8; len as usize];
            f.read_exact(&mut data).map_err(io)?;
            out.push(RiffChunk { id, data });
        }
        at = body + u64::from(len) + u64::from(len & 1);
    }
    Ok(out)
}

/// A WAV writer that writes to a temporary file beside the output and renames it into place on
/// [`WavWriter::finish`]; dropped unfinished, it leaves nothing behind.
pub struct WavWriter {
    path: PathBuf,
    format: WavFormat,
    writer: hound::WavWriter<BufWriter<File>>,
    temp: tempfile::TempPath,
    extra: Vec<RiffChunk>,
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
            extra: Vec::new(),
        })
    }

    /// Chunks to append after the audio when the file is finished (e.g. the input's
    /// [`read_extra_chunks`]).
    pub fn keep_chunks(&mut self, chunks: Vec<RiffChunk>) {
        self.extra = chunks;
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
        if !self.extra.is_empty() {
            append_chunks(&self.temp, &self.extra).map_err(|e| MediaError::Write {
                path: path.clone(),
                what: format!("cannot append the kept RIFF chunks: {e}"),
            })?;
        }
        self.temp.persist(&path).map_err(|e| MediaError::Io {
            path: path.clone(),
            source: e.error,
        })
    }
}

/// Appends `chunks` to a finished WAV file (padding each to even length) and fixes the RIFF size.
fn append_chunks(file: &Path, chunks: &[RiffChunk]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)?;
    let mut len = f.seek(SeekFrom::End(0))?;
    let mut out = BufWriter::new(&mut f);
    if len % 2 == 1 {
        out.write_all(&[0])?;
        len += 1;
    }
    for c in chunks {
        let size = u32::try_from(c.data.len()).map_err(std::io::Error::other)?;
        out.write_all(&c.id)?;
        out.write_all(&size.to_le_bytes())?;
        out.write_all(&c.data)?;
        len += 8 + u64::from(size);
        if size % 2 == 1 {
            out.write_all(&[0])?;
            len += 1;
        }
    }
    out.flush()?;
    drop(out);
    let riff_size = u32::try_from(len - 8)
        .map_err(|_| std::io::Error::other("WAV larger than 4 GiB with its kept chunks"))?;
    f.seek(SeekFrom::Start(4))?;
    f.write_all(&riff_size.to_le_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cue_and_smpl_positions_move_past_insertions_but_not_an_end_insertion() {
        let mut cue = RiffChunk {
            id: *b"cue ",
            data: 2u32.to_le_bytes().to_vec(),
        };
        for (name, pos) in [(1u32, 0u32), (2, 5000)] {
            for v in [name, pos, u32::from_le_bytes(*b"data"), 0, 0, pos] {
                cue.data.extend_from_slice(&v.to_le_bytes());
            }
        }
        // 100 frames at the start, 7 at frame 4000, 9 at the end (10 000).
        cue.shift_sample_positions(&[(0, 100), (4000, 7), (10_000, 9)], 10_000);
        let word = |d: &[u8], i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        assert_eq!((word(&cue.data, 8), word(&cue.data, 24)), (100, 100));
        assert_eq!((word(&cue.data, 32), word(&cue.data, 48)), (5107, 5107));

        let mut smpl = RiffChunk {
            id: *b"smpl",
            data: vec![0; 36],
        };
        smpl.data[28..32].copy_from_slice(&1u32.to_le_bytes());
        for v in [0u32, 0, 3000, 6000, 0, 0] {
            smpl.data.extend_from_slice(&v.to_le_bytes());
        }
        smpl.shift_sample_positions(&[(4000, 50)], 10_000);
        assert_eq!((word(&smpl.data, 44), word(&smpl.data, 48)), (3000, 6050));
        // Other chunks are left alone.
        let mut info = RiffChunk {
            id: *b"LIST",
            data: b"INFOICMT\x04\0\0\0abcd".to_vec(),
        };
        let before = info.clone();
        info.shift_sample_positions(&[(0, 100)], 10_000);
        assert_eq!(info, before);
    }

    #[test]
    fn kept_chunks_are_appended_and_read_back_with_a_valid_riff_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut w = WavWriter::create(&path, 8000, 1, WavFormat::Int(8)).unwrap();
        // An odd number of 8-bit samples leaves the data chunk odd-sized (padded).
        w.write(&[0.1, -0.1, 0.2]).unwrap();
        let chunks = vec![
            RiffChunk {
                id: *b"LIST",
                data: b"INFOINAM\x03\0\0\0abc\0".to_vec(),
            },
            RiffChunk {
                id: *b"iXML",
                data: b"<x/>".to_vec(),
            },
        ];
        w.keep_chunks(chunks.clone());
        w.finish().unwrap();
        let b = std::fs::read(&path).unwrap();
        let riff = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
        assert_eq!(riff + 8, b.len());
        assert_eq!(read_extra_chunks(&path).unwrap(), chunks);
        // hound still reads the audio.
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.len(), 3);
    }
}
