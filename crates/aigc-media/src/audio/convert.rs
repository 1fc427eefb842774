//! Sample conversion between FFmpeg frames (any sample format, packed or planar) and the
//! interleaved `f32` the rest of the project uses. Done by hand rather than through swresample:
//! no resampling happens, so it is exact and adds no delay.

use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type as Layout;
use ffmpeg_next::frame;

/// Bytes of one sample of `format`, and whether it is planar; `None` for formats we do not
/// convert.
fn describe(format: Sample) -> Option<(usize, bool)> {
    let (bytes, layout) = match format {
        Sample::U8(t) => (1, t),
        Sample::I16(t) => (2, t),
        Sample::I32(t) | Sample::F32(t) => (4, t),
        Sample::I64(t) | Sample::F64(t) => (8, t),
        Sample::None => return None,
    };
    Some((bytes, layout == Layout::Planar))
}

fn sample_to_f32(format: Sample, b: &[u8]) -> f32 {
    match (format, b.len()) {
        (Sample::U8(_), 1) => (f32::from(b[0]) - 128.0) / 128.0,
        (Sample::I16(_), 2) => f32::from(i16::from_ne_bytes([b[0], b[1]])) / 32_768.0,
        (Sample::I32(_), 4) => {
            (f64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])) / 2_147_483_648.0) as f32
        }
        (Sample::F32(_), 4) => f32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        (Sample::I64(_), 8) => {
            let v = i64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            (v as f64 / 9_223_372_036_854_775_808.0) as f32
        }
        (Sample::F64(_), 8) => {
            f64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
        _ => 0.0,
    }
}

/// Appends `frame`'s samples to `out` as interleaved `f32` (`channels` per frame).
pub(crate) fn frame_to_interleaved(
    frame: &frame::Audio,
    channels: usize,
    out: &mut Vec<f32>,
) -> Result<(), String> {
    let format = frame.format();
    let (bytes, planar) =
        describe(format).ok_or_else(|| format!("unsupported sample format {format:?}"))?;
    let n = frame.samples();
    let base = out.len();
    out.resize(base + n * channels, 0.0);
    let dst = &mut out[base..];
    if planar {
        if frame.planes() < channels {
            return Err("decoded frame has fewer planes than channels".into());
        }
        for c in 0..channels {
            let plane = frame.data(c);
            if plane.len() < n * bytes {
                return Err("decoded frame is shorter than its sample count".into());
            }
            for (i, b) in plane[..n * bytes].chunks_exact(bytes).enumerate() {
                dst[i * channels + c] = sample_to_f32(format, b);
            }
        }
    } else {
        if frame.planes() < 1 {
            return Err("decoded frame has no data".into());
        }
        let data = frame.data(0);
        if data.len() < n * channels * bytes {
            return Err("decoded frame is shorter than its sample count".into());
        }
        for (d, b) in dst
            .iter_mut()
            .zip(data[..n * channels * bytes].chunks_exact(bytes))
        {
            *d = sample_to_f32(format, b);
        }
    }
    Ok(())
}

/// How interleaved `f32` is quantised into an encoder's sample format.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quantiser {
    format: Sample,
    bytes: usize,
    planar: bool,
    /// For 32-bit integer formats: significant bits (24 for 24-bit FLAC, whose encoder keeps the
    /// top 24 bits of each `i32`).
    int_bits: u32,
}

impl Quantiser {
    /// A quantiser into `format`; `None` for formats no encoder we use asks for.
    pub(crate) fn new(format: Sample, int_bits: u32) -> Option<Self> {
        let (bytes, planar) = describe(format)?;
        match format {
            Sample::I16(_) | Sample::I32(_) | Sample::F32(_) => Some(Self {
                format,
                bytes,
                planar,
                int_bits,
            }),
            _ => None,
        }
    }

    /// Writes `samples` (interleaved, `channels` per frame) into `frame`, which holds exactly
    /// `samples.len() / channels` frames in this quantiser's format.
    pub(crate) fn fill(&self, samples: &[f32], channels: usize, frame: &mut frame::Audio) {
        let n = samples.len() / channels;
        let planes = if self.planar { channels } else { 1 };
        for p in 0..planes.min(frame.planes()) {
            let data = frame.data_mut(p);
            let (step, first) = if self.planar { (channels, p) } else { (1, 0) };
            let count = if self.planar { n } else { n * channels };
            let values = samples.iter().skip(first).step_by(step).take(count);
            for (b, &s) in data.chunks_exact_mut(self.bytes).zip(values) {
                self.put(s, b);
            }
        }
    }

    fn put(&self, s: f32, b: &mut [u8]) {
        let s = if s.is_finite() { s } else { 0.0 };
        match self.format {
            Sample::I16(_) => {
                let v = (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
                b.copy_from_slice(&v.to_ne_bytes());
            }
            Sample::I32(_) => {
                // Quantise at the significant depth, then left-justify as the encoder expects.
                let bits = self.int_bits.clamp(8, 32);
                let scale = (1u64 << (bits - 1)) as f64;
                let q = (f64::from(s) * scale).round().clamp(-scale, scale - 1.0) as i64;
                let v = (q << (32 - bits)) as i32;
                b.copy_from_slice(&v.to_ne_bytes());
            }
            Sample::F32(_) => b.copy_from_slice(&s.clamp(-1.0, 1.0).to_ne_bytes()),
            _ => {}
        }
    }
}
