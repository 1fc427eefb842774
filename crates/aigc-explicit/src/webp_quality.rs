//! The libwebp quality (0–100) a lossy WebP was most likely encoded at, from the quantiser
//! indices in its VP8 key-frame header (RFC 6386 §9.3, §9.6), so a re-encode can match it.

/// Reads the boolean-coded first partition of a VP8 frame (RFC 6386 §7).
struct BoolReader<'a> {
    bytes: &'a [u8],
    at: usize,
    value: u32,
    range: u32,
    bit_count: u32,
}

impl<'a> BoolReader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        let first = bytes.get(..2)?;
        Some(BoolReader {
            bytes,
            at: 2,
            value: (u32::from(first[0]) << 8) | u32::from(first[1]),
            range: 255,
            bit_count: 0,
        })
    }

    fn bool(&mut self, prob: u32) -> bool {
        let split = 1 + (((self.range - 1) * prob) >> 8);
        let big_split = split << 8;
        let bit = if self.value >= big_split {
            self.range -= split;
            self.value -= big_split;
            true
        } else {
            self.range = split;
            false
        };
        while self.range < 128 {
            self.value <<= 1;
            self.range <<= 1;
            self.bit_count += 1;
            if self.bit_count == 8 {
                self.bit_count = 0;
                // Past the end the stream reads as zeros, as in the reference decoder.
                self.value |= u32::from(self.bytes.get(self.at).copied().unwrap_or(0));
                self.at += 1;
            }
        }
        bit
    }

    fn literal(&mut self, bits: u32) -> u32 {
        (0..bits).fold(0, |v, _| (v << 1) | u32::from(self.bool(128)))
    }

    fn signed(&mut self, bits: u32) -> i32 {
        let magnitude = self.literal(bits) as i32;
        if self.bool(128) {
            -magnitude
        } else {
            magnitude
        }
    }

    fn skip_optional_signed(&mut self, bits: u32) {
        if self.bool(128) {
            self.signed(bits);
        }
    }
}

/// The typical luma AC quantiser index (0–127) of a VP8 key frame (the payload of a `VP8 `
/// chunk): the median over its segments; `None` when the data is not a VP8 key frame.
pub fn vp8_quantiser(vp8: &[u8]) -> Option<f64> {
    let tag = vp8.get(..3)?;
    let key_frame = tag[0] & 1 == 0;
    if !key_frame || vp8.get(3..6)? != [0x9D, 0x01, 0x2A] {
        return None;
    }
    let mut r = BoolReader::new(vp8.get(10..)?)?;
    r.literal(2); // colour space, clamping type
    let mut segments: Option<(bool, [Option<i32>; 4])> = None;
    if r.bool(128) {
        let update_map = r.bool(128);
        if r.bool(128) {
            let absolute = r.bool(128);
            let mut quant = [None; 4];
            for q in &mut quant {
                if r.bool(128) {
                    *q = Some(r.signed(7));
                }
            }
            for _ in 0..4 {
                r.skip_optional_signed(6); // loop-filter level per segment
            }
            segments = Some((absolute, quant));
        }
        if update_map {
            for _ in 0..3 {
                if r.bool(128) {
                    r.literal(8);
                }
            }
        }
    }
    r.literal(1 + 6 + 3); // filter type, level, sharpness
    if r.bool(128) && r.bool(128) {
        for _ in 0..8 {
            r.skip_optional_signed(6); // reference-frame and mode loop-filter deltas
        }
    }
    r.literal(2); // DCT partitions
    let base = r.literal(7) as i32;
    let q = match segments {
        Some((absolute, quant)) => {
            let mut set: Vec<i32> = quant
                .iter()
                .map(|q| match (absolute, q) {
                    (true, Some(q)) => *q,
                    (true, None) => base,
                    (false, d) => base + d.unwrap_or(0),
                })
                .map(|q| q.clamp(0, 127))
                .collect();
            median(&mut set)
        }
        None => f64::from(base),
    };
    Some(q)
}

/// The median of a few quantiser indices (libwebp spreads its segments around the base).
fn median(v: &mut [i32]) -> f64 {
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => f64::from(v[n / 2]),
        n => f64::from(v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The libwebp quality whose base quantiser is `q` (libwebp maps quality to a compression
/// factor c, linear below 75 and steeper above, with q = 127·(1 − c^(1/3))).
pub fn quality_from_quantiser(q: f64) -> u8 {
    let c = (1.0 - q / 127.0).clamp(0.0, 1.0);
    let linear = c * c * c;
    let quality = if linear < 0.5 {
        linear * 1.5
    } else {
        (linear + 1.0) / 2.0
    };
    (quality * 100.0).round().clamp(0.0, 100.0) as u8
}

/// The estimated libwebp quality of a lossy WebP's `VP8 ` chunk payload.
pub fn estimate_quality(vp8: &[u8]) -> Option<u8> {
    vp8_quantiser(vp8).map(quality_from_quantiser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8_payload(webp: &[u8]) -> &[u8] {
        let at = webp
            .windows(4)
            .position(|w| w == b"VP8 ")
            .expect("a VP8 chunk");
        let len = u32::from_le_bytes(webp[at + 4..at + 8].try_into().unwrap()) as usize;
        &webp[at + 8..at + 8 + len]
    }

    /// Photo-like content: value noise over several octaves (smooth areas and texture).
    fn photo_like(w: u32, h: u32) -> Vec<u8> {
        let lattice = |x: u32, y: u32, c: u32| -> f64 {
            let mut v = x.wrapping_mul(374_761_393)
                ^ y.wrapping_mul(668_265_263)
                ^ c.wrapping_mul(2_246_822_519);
            v = (v ^ (v >> 13)).wrapping_mul(1_274_126_177);
            f64::from((v ^ (v >> 16)) & 255)
        };
        let noise = |x: f64, y: f64, c: u32| -> f64 {
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (xi, yi) = (x0 as u32, y0 as u32);
            let a = lattice(xi, yi, c) * (1.0 - fx) + lattice(xi + 1, yi, c) * fx;
            let b = lattice(xi, yi + 1, c) * (1.0 - fx) + lattice(xi + 1, yi + 1, c) * fx;
            a * (1.0 - fy) + b * fy
        };
        (0..w * h)
            .flat_map(|i| {
                let (x, y) = (f64::from(i % w), f64::from(i / w));
                [0u32, 1, 2].map(|c| {
                    let v = 0.5 * noise(x / 32.0, y / 32.0, c)
                        + 0.3 * noise(x / 8.0, y / 8.0, c + 3)
                        + 0.2 * noise(x / 2.0, y / 2.0, c + 6);
                    v.clamp(0.0, 255.0) as u8
                })
            })
            .collect()
    }

    #[test]
    fn libwebp_quality_is_recovered_within_6() {
        let (w, h) = (256u32, 192u32);
        let px = photo_like(w, h);
        let mut estimates = Vec::new();
        for q in [30.0f32, 50.0, 75.0, 85.0, 95.0] {
            let out = webp::Encoder::from_rgb(&px, w, h)
                .encode_simple(false, q)
                .unwrap();
            estimates.push((q, estimate_quality(vp8_payload(&out)).unwrap()));
        }
        for (q, est) in estimates.iter().copied() {
            assert!(
                f32::from(est) >= q - 6.0 && f32::from(est) <= q + 6.0,
                "encoded at {q}, estimated {est} ({estimates:?})"
            );
        }
    }

    #[test]
    fn non_vp8_and_truncated_data_give_none_without_panicking() {
        assert_eq!(estimate_quality(b""), None);
        assert_eq!(estimate_quality(b"\x01\x00\x00\x9d\x01\x2a"), None);
        assert_eq!(estimate_quality(b"\x00\x00\x00\x00\x00\x00\x00\x00"), None);
        // A truncated key frame still yields a value (the reader pads with zeros).
        let q = estimate_quality(b"\x10\x02\x00\x9d\x01\x2a\x10\x00\x10\x00\xff\x00");
        assert!(q.is_some());
    }
}
