//! The FFmpeg backend of [`super::AudioReader`] (Opus and whatever symphonia cannot read), and a
//! light probe for what symphonia does not report (bitrate, tags, container).

use std::path::Path;
use std::sync::Once;

use ff::codec::Id;
use ff::util::error::EAGAIN;
use ffmpeg_next as ff;

use super::convert::frame_to_interleaved;
use super::{
    AudioCodec, AudioContainer, AudioInfo, DecoderBackend, MediaError, OpenFailure, check_params,
};

/// Initialises the FFmpeg libraries once and keeps them quiet: errors reach the caller as
/// [`MediaError`]s, not as lines on stderr.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Only fails on FFmpeg builds without the registration functions, which 5.1 has.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// The container of an FFmpeg demuxer name (e.g. `"mov,mp4,m4a,3gp,3g2,mj2"`).
pub(crate) fn container_of(demuxer: &str) -> AudioContainer {
    match demuxer.split(',').next().unwrap_or_default() {
        "wav" | "w64" => AudioContainer::Wav,
        "flac" => AudioContainer::Flac,
        "mp3" => AudioContainer::Mp3,
        "mov" => AudioContainer::Mp4,
        "aac" => AudioContainer::Adts,
        "ogg" => AudioContainer::Ogg,
        "matroska" | "webm" => AudioContainer::Matroska,
        _ => AudioContainer::Other,
    }
}

fn codec_of(id: Id, bits: u32) -> AudioCodec {
    match id {
        Id::MP3 => AudioCodec::Mp3,
        Id::AAC => AudioCodec::Aac,
        Id::FLAC => AudioCodec::Flac,
        Id::VORBIS => AudioCodec::Vorbis,
        Id::OPUS => AudioCodec::Opus,
        Id::PCM_F32LE | Id::PCM_F32BE | Id::PCM_F64LE | Id::PCM_F64BE => AudioCodec::PcmFloat,
        Id::PCM_U8
        | Id::PCM_S8
        | Id::PCM_S16LE
        | Id::PCM_S16BE
        | Id::PCM_S24LE
        | Id::PCM_S24BE
        | Id::PCM_S32LE
        | Id::PCM_S32BE => AudioCodec::PcmInt(u16::try_from(bits).unwrap_or(16)),
        _ => AudioCodec::Other,
    }
}

/// What FFmpeg's demuxer says about a file beyond what a decoder needs.
pub(crate) struct Probe {
    container: AudioContainer,
    bit_rate: Option<u64>,
    tags: Vec<(String, String)>,
}

impl Probe {
    /// Copies the probe's findings into `info` (keeping what `info` already knows).
    pub(crate) fn fill(self, info: &mut AudioInfo) {
        if self.container != AudioContainer::Other || info.container == AudioContainer::Wav {
            info.container = self.container;
        }
        info.bit_rate = info.bit_rate.or(self.bit_rate);
        info.tags = self.tags;
    }
}

fn tags_of(
    input: &ff::format::context::Input,
    stream: &ff::format::stream::Stream,
) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for (k, v) in input.metadata().iter().chain(stream.metadata().iter()) {
        if !tags.iter().any(|(tk, _)| tk.eq_ignore_ascii_case(k)) {
            tags.push((k.to_string(), v.to_string()));
        }
    }
    tags
}

/// Bitrate of the audio stream: the codec's own figure, else the file's average (which includes
/// the container's overhead).
fn bit_rate_of(
    input: &ff::format::context::Input,
    stream: &ff::format::stream::Stream,
) -> Option<u64> {
    // SAFETY: `parameters()` wraps the stream's live AVCodecParameters; reading a field is sound.
    let stream_rate = unsafe { (*stream.parameters().as_ptr()).bit_rate };
    let rate = if stream_rate > 0 {
        stream_rate
    } else {
        input.bit_rate()
    };
    u64::try_from(rate).ok().filter(|&r| r > 0)
}

/// Runs FFmpeg's demuxer probe on `path`; `None` when FFmpeg cannot read it either.
pub(crate) fn probe(path: &Path) -> Option<Probe> {
    init();
    let input = ff::format::input(path).ok()?;
    let stream = input.streams().best(ff::media::Type::Audio)?;
    Some(Probe {
        container: container_of(input.format().name()),
        bit_rate: bit_rate_of(&input, &stream),
        tags: tags_of(&input, &stream),
    })
}

/// An open FFmpeg demuxer + decoder for the best audio stream.
pub(crate) struct FfmpegSource {
    input: ff::format::context::Input,
    decoder: ff::codec::decoder::Audio,
    stream_index: usize,
    frame: ff::frame::Audio,
    packet: ff::Packet,
    eof_sent: bool,
    block: Vec<f32>,
}

impl FfmpegSource {
    /// Opens `path` with FFmpeg.
    pub(crate) fn open(path: &Path) -> Result<(Self, AudioInfo), OpenFailure> {
        init();
        let fail = |what: String| MediaError::Unsupported {
            path: path.to_path_buf(),
            what,
        };
        let input = ff::format::input(path).map_err(|e| match e {
            ff::Error::Other { errno } if errno == ff::util::error::ENOENT => {
                OpenFailure::Fatal(MediaError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })
            }
            other => OpenFailure::TryOther(fail(format!("not a readable audio file ({other})"))),
        })?;
        let stream = input
            .streams()
            .best(ff::media::Type::Audio)
            .ok_or_else(|| OpenFailure::TryOther(fail("no audio track".into())))?;
        let stream_index = stream.index();
        let context = ff::codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| OpenFailure::Fatal(fail(format!("bad audio parameters ({e})"))))?;
        let id = context.id();
        let decoder = context.decoder().audio().map_err(|e| {
            OpenFailure::Fatal(fail(format!(
                "no decoder for this audio codec ({}: {e})",
                id.name()
            )))
        })?;
        let sample_rate = decoder.rate();
        let channels = usize::from(decoder.channels());
        check_params(path, sample_rate, channels).map_err(OpenFailure::Fatal)?;
        // SAFETY: reading plain fields of the stream's live AVCodecParameters.
        let (bits_raw, bits_coded) = unsafe {
            let p = stream.parameters().as_ptr();
            ((*p).bits_per_raw_sample, (*p).bits_per_coded_sample)
        };
        let bits = [bits_raw, bits_coded]
            .into_iter()
            .find(|&b| b > 0)
            .and_then(|b| u32::try_from(b).ok());
        let codec = codec_of(id, bits.unwrap_or(16));
        let frames = {
            let tb = stream.time_base();
            let d = stream.duration();
            (d > 0 && tb.denominator() > 0).then(|| {
                let secs = d as f64 * f64::from(tb.numerator()) / f64::from(tb.denominator());
                (secs * f64::from(sample_rate)).round() as u64
            })
        };
        let lossless = matches!(
            codec,
            AudioCodec::PcmInt(_) | AudioCodec::PcmFloat | AudioCodec::Flac
        );
        let info = AudioInfo {
            sample_rate,
            channels,
            codec,
            frames,
            container: container_of(input.format().name()),
            bit_rate: bit_rate_of(&input, &stream),
            bits_per_sample: if lossless { bits } else { None },
            tags: tags_of(&input, &stream),
            backend: DecoderBackend::Ffmpeg,
        };
        Ok((
            Self {
                input,
                decoder,
                stream_index,
                frame: ff::frame::Audio::empty(),
                packet: ff::Packet::empty(),
                eof_sent: false,
                block: Vec::new(),
            },
            info,
        ))
    }

    /// The next decoded frame, interleaved.
    pub(crate) fn next_block(
        &mut self,
        path: &Path,
        channels: usize,
    ) -> Result<Option<&[f32]>, MediaError> {
        let decode_err = |what: String| MediaError::Decode {
            path: path.to_path_buf(),
            what,
        };
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) => {
                    if usize::from(self.frame.channels()) != channels {
                        return Err(MediaError::Unsupported {
                            path: path.to_path_buf(),
                            what: "the channel count changes within the stream".into(),
                        });
                    }
                    self.block.clear();
                    frame_to_interleaved(&self.frame, channels, &mut self.block)
                        .map_err(decode_err)?;
                    if self.block.is_empty() {
                        continue;
                    }
                    return Ok(Some(&self.block));
                }
                Err(ff::Error::Eof) => return Ok(None),
                Err(ff::Error::Other { errno }) if errno == EAGAIN => {}
                // A frame the decoder cannot make sense of is skipped, as players do.
                Err(ff::Error::InvalidData) => continue,
                Err(e) => return Err(decode_err(e.to_string())),
            }
            if self.eof_sent {
                return Ok(None);
            }
            match self.packet.read(&mut self.input) {
                Ok(()) => {
                    if self.packet.stream() != self.stream_index {
                        continue;
                    }
                    match self.decoder.send_packet(&self.packet) {
                        Ok(()) | Err(ff::Error::InvalidData) => {}
                        Err(e) => return Err(decode_err(e.to_string())),
                    }
                }
                // The end, or a truncated file: decode what was read.
                Err(_) => {
                    self.decoder
                        .send_eof()
                        .map_err(|e| decode_err(e.to_string()))?;
                    self.eof_sent = true;
                }
            }
        }
    }
}
