//! Compressed audio output through the FFmpeg libraries: one encoder, one muxer, a temporary file
//! beside the destination renamed into place at the end.

use std::path::{Path, PathBuf};

use ff::util::error::EAGAIN;
use ff::{ChannelLayout, Dictionary, Rational};
use ffmpeg_next as ff;

use super::MediaError;
use super::convert::Quantiser;
use super::ffmpeg_decode::init;

/// What to encode: FFmpeg's encoder and muxer names and the encoder's settings.
#[derive(Debug, Clone)]
pub(crate) struct EncodeSpec {
    /// FFmpeg encoder name (`libmp3lame`, `aac`, …).
    pub encoder: &'static str,
    /// FFmpeg muxer name (`mp3`, `ipod`, `ogg`, …).
    pub muxer: &'static str,
    /// Target bitrate (bits/s) for lossy encoders.
    pub bit_rate: Option<u64>,
    /// Significant bits for integer sample formats (FLAC: 16 or 24).
    pub int_bits: u32,
    /// Encoder options (`compression_level`, …).
    pub options: Vec<(&'static str, String)>,
    /// Quality (the encoder's 0–10 scale) to use when the bitrate is refused.
    pub fallback_quality: Option<f32>,
}

/// A running FFmpeg encode into a temporary file.
pub(crate) struct EncodedWriter {
    path: PathBuf,
    temp: tempfile::TempPath,
    octx: ff::format::context::Output,
    encoder: ff::encoder::Audio,
    quantiser: Quantiser,
    layout: ChannelLayout,
    sample_format: ff::format::Sample,
    rate: u32,
    channels: usize,
    /// Frames per encoder call (the codec's fixed frame size, or our choice when it has none).
    frame_len: usize,
    encoder_tb: Rational,
    stream_tb: Rational,
    pending: Vec<f32>,
    next_pts: i64,
    packet: ff::Packet,
    /// Samples the encoder puts before the signal (decoders skip them via container signalling).
    pub encoder_delay: u32,
}

impl EncodedWriter {
    /// Opens the encoder and muxer and writes the container header into a temporary file.
    pub(crate) fn create(
        path: &Path,
        temp: tempfile::TempPath,
        sample_rate: u32,
        channels: usize,
        spec: &EncodeSpec,
        tags: &[(String, String)],
    ) -> Result<Self, MediaError> {
        init();
        let fail = |what: String| MediaError::Write {
            path: path.to_path_buf(),
            what,
        };
        let codec =
            ff::encoder::find_by_name(spec.encoder).ok_or_else(|| MediaError::Unsupported {
                path: path.to_path_buf(),
                what: format!("this FFmpeg has no {} encoder", spec.encoder),
            })?;
        let audio_codec = codec
            .audio()
            .map_err(|e| fail(format!("{} is not an audio encoder ({e})", spec.encoder)))?;
        // A sample format the encoder takes and we can fill: float for lossy encoders (no
        // quantisation before the codec), integers of the right width for lossless ones.
        let usable: Vec<ff::format::Sample> = audio_codec
            .formats()
            .map(|formats| {
                formats
                    .filter(|&f| {
                        Quantiser::new(f, spec.int_bits).is_some()
                            && !(spec.int_bits > 16 && matches!(f, ff::format::Sample::I16(_)))
                            && !(spec.int_bits <= 16 && matches!(f, ff::format::Sample::I32(_)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sample_format = usable
            .iter()
            .copied()
            .find(|f| spec.bit_rate.is_some() && matches!(f, ff::format::Sample::F32(_)))
            .or_else(|| usable.first().copied())
            .ok_or_else(|| fail(format!("no usable sample format for {}", spec.encoder)))?;
        let quantiser = Quantiser::new(sample_format, spec.int_bits)
            .ok_or_else(|| fail(format!("no usable sample format for {}", spec.encoder)))?;
        let rate = i32::try_from(sample_rate).map_err(|_| fail("sample rate".into()))?;
        let channels_i = i32::try_from(channels).map_err(|_| fail("channels".into()))?;
        let layout = ChannelLayout::default(channels_i);

        let mut octx = ff::format::output_as(&temp, spec.muxer)
            .map_err(|e| fail(format!("cannot start a {} file ({e})", spec.muxer)))?;
        let global_header = octx
            .format()
            .flags()
            .contains(ff::format::Flags::GLOBAL_HEADER);

        let open = |bit_rate: Option<u64>, quality: Option<f32>| {
            let mut enc = ff::codec::context::Context::new_with_codec(codec)
                .encoder()
                .audio()?;
            enc.set_rate(rate);
            enc.set_channel_layout(layout);
            enc.set_channels(channels_i);
            enc.set_format(sample_format);
            if let Some(b) = bit_rate {
                enc.set_bit_rate(usize::try_from(b).unwrap_or(usize::MAX));
            }
            let mut flags = ff::codec::Flags::empty();
            if let Some(q) = quality {
                flags |= ff::codec::Flags::QSCALE;
                // FF_QP2LAMBDA: FFmpeg's unit for global_quality.
                enc.set_quality((q * 118.0).round() as usize);
            }
            if global_header {
                flags |= ff::codec::Flags::GLOBAL_HEADER;
            }
            enc.set_flags(flags);
            enc.set_time_base(Rational::new(1, rate));
            let mut options = Dictionary::new();
            for (k, v) in &spec.options {
                options.set(k, v);
            }
            enc.open_as_with(codec, options)
        };
        let opened = match (open(spec.bit_rate, None), spec.fallback_quality) {
            (Ok(e), _) => Ok(e),
            // libvorbis has no bitrate-managed mode for some rate/channel combinations (e.g.
            // 96 kHz): its quality scale at the matching level still works.
            (Err(_), Some(q)) => open(None, Some(q)),
            (Err(e), None) => Err(e),
        };
        let encoder = opened.map_err(|e| {
            fail(format!(
                "{} rejects {sample_rate} Hz × {channels} channels{} ({e})",
                spec.encoder,
                spec.bit_rate
                    .map(|b| format!(" at {} kb/s", b / 1000))
                    .unwrap_or_default()
            ))
        })?;
        // SAFETY: reading a plain field of the opened encoder's AVCodecContext.
        let initial_padding = unsafe { (*encoder.as_ptr()).initial_padding };
        let codec_frame = encoder.frame_size() as usize;
        let variable = audio_codec
            .capabilities()
            .contains(ff::codec::capabilities::Capabilities::VARIABLE_FRAME_SIZE);
        let frame_len = if codec_frame == 0 || variable {
            4096
        } else {
            codec_frame
        };

        let metadata = {
            let mut d = Dictionary::new();
            for (k, v) in tags {
                d.set(k, v);
            }
            d
        };
        {
            let mut stream = octx
                .add_stream(codec)
                .map_err(|e| fail(format!("cannot add the audio stream ({e})")))?;
            stream.set_parameters(&encoder);
            stream.set_time_base(Rational::new(1, rate));
            // Ogg and Matroska write stream-level tags (Vorbis comments); the rest use global.
            stream.set_metadata(metadata.clone());
        }
        octx.set_metadata(metadata);
        octx.write_header()
            .map_err(|e| fail(format!("cannot write the {} header ({e})", spec.muxer)))?;
        let stream_tb = octx
            .stream(0)
            .map(|s| s.time_base())
            .ok_or_else(|| fail("the muxer lost the audio stream".into()))?;
        Ok(Self {
            path: path.to_path_buf(),
            temp,
            octx,
            encoder,
            quantiser,
            layout,
            sample_format,
            rate: sample_rate,
            channels,
            frame_len,
            encoder_tb: Rational::new(1, rate),
            stream_tb,
            pending: Vec::with_capacity(frame_len * channels * 2),
            next_pts: 0,
            packet: ff::Packet::empty(),
            encoder_delay: u32::try_from(initial_padding).unwrap_or(0),
        })
    }

    fn fail(&self, what: String) -> MediaError {
        MediaError::Write {
            path: self.path.clone(),
            what,
        }
    }

    /// Appends interleaved samples; whole encoder frames are encoded as they fill.
    pub(crate) fn write(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        self.pending.extend_from_slice(samples);
        let chunk = self.frame_len * self.channels;
        let mut start = 0;
        while self.pending.len() - start >= chunk {
            let block = std::mem::take(&mut self.pending);
            let res = self.encode(&block[start..start + chunk]);
            self.pending = block;
            res?;
            start += chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }

    fn encode(&mut self, samples: &[f32]) -> Result<(), MediaError> {
        let n = samples.len() / self.channels;
        let mut frame = ff::frame::Audio::new(self.sample_format, n, self.layout);
        frame.set_channels(self.channels as u16);
        frame.set_rate(self.rate);
        if frame.planes() == 0 {
            return Err(self.fail("cannot allocate an audio frame".into()));
        }
        self.quantiser.fill(samples, self.channels, &mut frame);
        frame.set_pts(Some(self.next_pts));
        self.next_pts += n as i64;
        self.encoder
            .send_frame(&frame)
            .map_err(|e| self.fail(format!("encoder refused a frame ({e})")))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    self.packet.set_stream(0);
                    self.packet.rescale_ts(self.encoder_tb, self.stream_tb);
                    self.packet.write_interleaved(&mut self.octx).map_err(|e| {
                        MediaError::Write {
                            path: self.path.clone(),
                            what: format!("muxer refused a packet ({e})"),
                        }
                    })?;
                }
                Err(ff::Error::Eof) => return Ok(()),
                Err(ff::Error::Other { errno }) if errno == EAGAIN => return Ok(()),
                Err(e) => return Err(self.fail(format!("encoder failed ({e})"))),
            }
        }
    }

    /// Encodes what is left, flushes the encoder, writes the trailer and renames the file into
    /// place. Returns the frames written.
    pub(crate) fn finish(mut self) -> Result<u64, MediaError> {
        if !self.pending.len().is_multiple_of(self.channels) {
            return Err(self
                .fail("the last frame is incomplete (samples not a multiple of channels)".into()));
        }
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.encode(&rest)?;
        }
        self.encoder
            .send_eof()
            .map_err(|e| self.fail(format!("cannot flush the encoder ({e})")))?;
        self.drain()?;
        self.octx
            .write_trailer()
            .map_err(|e| self.fail(format!("cannot finish the file ({e})")))?;
        let frames = u64::try_from(self.next_pts).unwrap_or(0);
        let Self {
            path, temp, octx, ..
        } = self;
        // Closes the file before it is renamed.
        drop(octx);
        temp.persist(&path).map_err(|e| MediaError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(frames)
    }
}
