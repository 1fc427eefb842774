//! What a JPEG's header says about how it was encoded: quantisation tables (and from them the
//! IJG quality), chroma subsampling, and the APPn segments to carry over into a re-encode.

use crate::ExplicitError;

/// ITU-T T.81 Annex K.1 luminance table, natural (row-major) order.
const STD_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// ITU-T T.81 Annex K.1 chrominance table, natural order.
const STD_CHROMA: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// Zig-zag index → natural index (tables are stored in zig-zag order).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The header facts of a baseline or progressive JPEG.
#[derive(Debug, Clone, Default)]
pub struct JpegHeader {
    /// Quantisation tables by slot (0–3), natural order.
    pub tables: [Option<[u16; 64]>; 4],
    /// Per component: (id, horizontal sampling, vertical sampling, table slot).
    pub components: Vec<(u8, u8, u8, u8)>,
    /// APPn segments (n, payload) in file order.
    pub app_segments: Vec<(u8, Vec<u8>)>,
}

impl JpegHeader {
    /// Reads markers up to the first scan.
    pub fn parse(b: &[u8]) -> Result<Self, ExplicitError> {
        let bad = |what: &str| ExplicitError::Image(format!("damaged JPEG header: {what}"));
        if !b.starts_with(&[0xFF, 0xD8]) {
            return Err(bad("no start-of-image marker"));
        }
        let mut h = JpegHeader::default();
        let mut at = 2usize;
        loop {
            // Skip fill bytes before a marker.
            while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
                at += 1;
            }
            let (Some(&0xFF), Some(&m)) = (b.get(at), b.get(at + 1)) else {
                return Err(bad(&format!("no marker at offset {at}")));
            };
            at += 2;
            if m == 0xD9 || m == 0xDA {
                break;
            }
            if (0xD0..=0xD7).contains(&m) || m == 0x01 {
                continue;
            }
            let len = b
                .get(at..at + 2)
                .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
                .ok_or_else(|| bad("truncated segment length"))?;
            let end = at
                .checked_add(len)
                .filter(|&e| len >= 2 && e <= b.len())
                .ok_or_else(|| bad(&format!("segment at offset {at} runs past the end")))?;
            let payload = &b[at + 2..end];
            match m {
                0xDB => h.parse_dqt(payload).ok_or_else(|| bad("bad DQT segment"))?,
                0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                    let n = usize::from(*payload.get(5).ok_or_else(|| bad("short SOF"))?);
                    h.components.clear();
                    for i in 0..n {
                        let c = payload
                            .get(6 + 3 * i..9 + 3 * i)
                            .ok_or_else(|| bad("short SOF"))?;
                        h.components.push((c[0], c[1] >> 4, c[1] & 15, c[2] & 3));
                    }
                }
                0xE0..=0xEF => h.app_segments.push((m - 0xE0, payload.to_vec())),
                _ => {}
            }
            at = end;
        }
        Ok(h)
    }

    fn parse_dqt(&mut self, mut p: &[u8]) -> Option<()> {
        while let Some(&pq_tq) = p.first() {
            let wide = pq_tq >> 4 == 1;
            let slot = usize::from(pq_tq & 3);
            let size = if wide { 128 } else { 64 };
            let data = p.get(1..1 + size)?;
            let mut table = [0u16; 64];
            for (zz, &natural) in ZIGZAG.iter().enumerate() {
                table[natural] = if wide {
                    u16::from_be_bytes([data[2 * zz], data[2 * zz + 1]])
                } else {
                    u16::from(data[zz])
                };
            }
            self.tables[slot] = Some(table);
            p = &p[1 + size..];
        }
        Some(())
    }

    /// Chroma subsampling as (horizontal, vertical) factors of the luma component relative to
    /// chroma; `None` for greyscale or unusual layouts.
    pub fn chroma_subsampling(&self) -> Option<(u8, u8)> {
        match self.components.as_slice() {
            [(_, h0, v0, _), (_, 1, 1, _), (_, 1, 1, _)] => Some((*h0, *v0)),
            _ => None,
        }
    }

    /// The IJG quality (1–100) whose scaled Annex K tables best match this file's tables.
    pub fn estimated_quality(&self) -> Option<u8> {
        let luma_slot = self.components.first().map_or(0, |c| usize::from(c.3));
        let luma = self.tables.get(luma_slot).copied().flatten()?;
        let chroma_slot = self.components.get(1).map(|c| usize::from(c.3));
        let chroma = chroma_slot.and_then(|s| self.tables.get(s).copied().flatten());
        Some(estimate_quality(&luma, chroma.as_ref()))
    }
}

/// The IJG (libjpeg `jpeg_quality_scaling`) table for `quality`.
pub fn ijg_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = u32::from(quality.clamp(1, 100));
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    base.map(|v| ((u32::from(v) * scale + 50) / 100).clamp(1, 255) as u16)
}

/// The quality whose IJG tables are closest (sum of absolute differences) to `luma` and
/// `chroma` (natural order); ties go to the higher quality.
pub fn estimate_quality(luma: &[u16; 64], chroma: Option<&[u16; 64]>) -> u8 {
    let distance = |a: &[u16; 64], b: &[u16; 64]| -> u64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum()
    };
    let mut best = (u64::MAX, 75u8);
    for q in (1..=100u8).rev() {
        let mut d = distance(luma, &ijg_table(&STD_LUMA, q));
        if let Some(c) = chroma {
            d += distance(c, &ijg_table(&STD_CHROMA, q));
        }
        if d < best.0 {
            best = (d, q);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    fn sample(w: u32, h: u32) -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    [
                        (x * 7 % 256) as u8,
                        (y * 3 % 256) as u8,
                        ((x ^ y) % 256) as u8,
                    ]
                })
            })
            .collect()
    }

    #[test]
    fn quality_of_image_crate_jpegs_is_recovered_within_5() {
        let (w, h) = (64, 48);
        let px = sample(w, h);
        for q in [30u8, 50, 75, 85, 90, 95, 100] {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
                .write_image(&px, w, h, image::ExtendedColorType::Rgb8)
                .unwrap();
            let est = JpegHeader::parse(&out)
                .unwrap()
                .estimated_quality()
                .unwrap();
            assert!(est.abs_diff(q) <= 5, "encoded at {q}, estimated {est}");
        }
    }

    #[test]
    fn quality_and_subsampling_of_jpeg_encoder_output() {
        let (w, h) = (32, 32);
        let px = sample(w, h);
        for (q, s, expect) in [
            (60u8, jpeg_encoder::SamplingFactor::R_4_2_0, (2, 2)),
            (92, jpeg_encoder::SamplingFactor::R_4_4_4, (1, 1)),
            (80, jpeg_encoder::SamplingFactor::R_4_2_2, (2, 1)),
        ] {
            let mut out = Vec::new();
            let mut e = jpeg_encoder::Encoder::new(&mut out, q);
            e.set_sampling_factor(s);
            e.encode(&px, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            let hdr = JpegHeader::parse(&out).unwrap();
            assert_eq!(hdr.estimated_quality(), Some(q));
            assert_eq!(hdr.chroma_subsampling(), Some(expect));
        }
    }

    #[test]
    fn truncated_headers_fail_cleanly() {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&sample(16, 16), 16, 16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        for cut in 0..200.min(out.len()) {
            let _ = JpegHeader::parse(&out[..cut]);
        }
        assert!(JpegHeader::parse(b"not a jpeg").is_err());
    }
}
