//! The symphonia backend of [`super::AudioReader`] (WAV, FLAC, MP3, Ogg Vorbis, M4A/AAC, …).

use std::fs::File;
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoder;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known as ids;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{
    AudioCodec, AudioContainer, AudioInfo, DecoderBackend, MediaError, OpenFailure, check_params,
};

/// An open symphonia demuxer + decoder for one audio track.
pub(crate) struct SymphoniaSource {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    block: Vec<f32>,
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

impl SymphoniaSource {
    /// Opens `path`; unknown formats and codecs are left to the FFmpeg backend.
    pub(crate) fn open(path: &Path) -> Result<(Self, AudioInfo), OpenFailure> {
        let io = |source| {
            OpenFailure::Fatal(MediaError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let unsupported = |what: String| {
            OpenFailure::TryOther(MediaError::Unsupported {
                path: path.to_path_buf(),
                what,
            })
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
                SymError::IoError(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
                    io(source)
                }
                other => unsupported(format!("not a readable audio file ({other})")),
            })?;
        let container = match format.format_info().short_name {
            "wave" | "wav" | "riff" => AudioContainer::Wav,
            "flac" => AudioContainer::Flac,
            "mp3" | "mpa" => AudioContainer::Mp3,
            "isomp4" | "mp4" => AudioContainer::Mp4,
            "adts" | "aac" => AudioContainer::Adts,
            "ogg" => AudioContainer::Ogg,
            "mkv" | "matroska" | "webm" => AudioContainer::Matroska,
            _ => AudioContainer::Other,
        };
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
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count())
            .ok_or_else(|| unsupported("audio track without a channel layout".into()))?;
        // symphonia misreads some headers (e.g. 96 kHz AAC in MP4 as 0 Hz): FFmpeg has the
        // last word on the parameters.
        check_params(path, sample_rate, channels).map_err(OpenFailure::TryOther)?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| unsupported(format!("no decoder for this audio codec ({e})")))?;
        let bits_per_sample = match codec {
            AudioCodec::PcmFloat => Some(32),
            _ => params.bits_per_sample,
        };
        let info = AudioInfo {
            sample_rate,
            channels,
            codec,
            frames,
            container,
            bit_rate: None,
            bits_per_sample,
            tags: Vec::new(),
            backend: DecoderBackend::Symphonia,
        };
        Ok((
            Self {
                format,
                decoder,
                track_id,
                block: Vec::new(),
            },
            info,
        ))
    }

    /// The next decoded packet, interleaved.
    pub(crate) fn next_block(
        &mut self,
        path: &Path,
        channels: usize,
    ) -> Result<Option<&[f32]>, MediaError> {
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
                        path: path.to_path_buf(),
                        source,
                    });
                }
                Err(e) => {
                    return Err(MediaError::Decode {
                        path: path.to_path_buf(),
                        what: e.to_string(),
                    });
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    if buf.spec().channels().count() != channels {
                        return Err(MediaError::Unsupported {
                            path: path.to_path_buf(),
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
                        path: path.to_path_buf(),
                        what: e.to_string(),
                    });
                }
            }
        }
    }
}
