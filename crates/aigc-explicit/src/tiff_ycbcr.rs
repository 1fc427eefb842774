//! YCbCr TIFF (PhotometricInterpretation 6) read into RGB: the image crate refuses it, and the
//! tiff crate reads chroma-subsampled YCbCr only inside JPEG compression. This reads 8-bit
//! chunky strips (uncompressed, LZW, Deflate or PackBits) with any YCbCrSubSampling (TIFF 6.0 §21).

use crate::ExplicitError;
use std::io::{Cursor, Read};
use tiff::decoder::Decoder;
use tiff::decoder::ifd::Value;
use tiff::tags::Tag;

fn unsupported(what: impl std::fmt::Display) -> ExplicitError {
    ExplicitError::Unsupported(format!(
        "the TIFF image is YCbCr {what}, which this version cannot read"
    ))
}

fn damaged(what: impl std::fmt::Display) -> ExplicitError {
    ExplicitError::Image(format!(
        "the YCbCr TIFF image cannot be decoded (damaged or truncated): {what}"
    ))
}

/// Reals from a RATIONAL (or list of them) tag value.
fn rationals(v: Value) -> Vec<f64> {
    let one = |v: Value| match v {
        Value::Rational(n, d) if d != 0 => Some(f64::from(n) / f64::from(d)),
        Value::Unsigned(n) => Some(f64::from(n)),
        Value::Short(n) => Some(f64::from(n)),
        _ => None,
    };
    match v {
        Value::List(items) => items.into_iter().filter_map(one).collect(),
        v => one(v).into_iter().collect(),
    }
}

/// Whether the first image of a TIFF file is YCbCr that [`read_rgb`] should handle (the
/// JPEG-compressed kind is left to the tiff crate, which decodes it).
pub fn is_plain_ycbcr(input: &[u8]) -> bool {
    let Ok(mut d) = Decoder::new(Cursor::new(input)) else {
        return false;
    };
    let photometric = d.find_tag_unsigned::<u16>(Tag::PhotometricInterpretation);
    let compression = d.find_tag_unsigned::<u16>(Tag::Compression);
    matches!(photometric, Ok(Some(6))) && !matches!(compression, Ok(Some(6 | 7)))
}

/// The first image's EXIF-style orientation tag (1 when absent or unreadable).
pub fn orientation(input: &[u8]) -> image::metadata::Orientation {
    Decoder::new(Cursor::new(input))
        .ok()
        .and_then(|mut d| d.find_tag_unsigned::<u8>(Tag::Orientation).ok().flatten())
        .and_then(image::metadata::Orientation::from_exif)
        .unwrap_or(image::metadata::Orientation::NoTransforms)
}

/// The first image of a YCbCr TIFF as packed 8-bit RGB: (width, height, pixels).
pub fn read_rgb(input: &[u8]) -> Result<(u32, u32, Vec<u8>), ExplicitError> {
    let mut d = Decoder::new(Cursor::new(input)).map_err(damaged)?;
    let (width, height) = d.dimensions().map_err(damaged)?;
    let tag = |d: &mut Decoder<Cursor<&[u8]>>, t: Tag| d.find_tag_unsigned::<u32>(t);
    if tag(&mut d, Tag::TileWidth).map_err(damaged)?.is_some() {
        return Err(unsupported("in tiles"));
    }
    let bits = d
        .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
        .map_err(damaged)?
        .unwrap_or_else(|| vec![1]);
    if bits.iter().any(|&b| b != 8) || bits.len() != 3 {
        return Err(unsupported(format!("with {bits:?} bits per sample")));
    }
    if tag(&mut d, Tag::SamplesPerPixel).map_err(damaged)? != Some(3) {
        return Err(unsupported("with extra samples"));
    }
    if tag(&mut d, Tag::PlanarConfiguration)
        .map_err(damaged)?
        .unwrap_or(1)
        != 1
    {
        return Err(unsupported("in separate planes"));
    }
    if tag(&mut d, Tag::Predictor).map_err(damaged)?.unwrap_or(1) != 1 {
        return Err(unsupported("with a predictor"));
    }
    let compression = tag(&mut d, Tag::Compression).map_err(damaged)?.unwrap_or(1);
    let sub = d
        .find_tag_unsigned_vec::<u16>(Tag::ChromaSubsampling)
        .map_err(damaged)?
        .unwrap_or_else(|| vec![2, 2]);
    let (h, v) = match sub.as_slice() {
        [h, v] if [1, 2, 4].contains(h) && [1, 2, 4].contains(v) && v <= h => {
            (usize::from(*h), usize::from(*v))
        }
        other => return Err(unsupported(format!("with subsampling {other:?}"))),
    };
    let coeff = d
        .find_tag(Tag::Unknown(529))
        .map_err(damaged)?
        .map(rationals)
        .filter(|c| c.len() == 3 && c[1] > 0.0)
        .unwrap_or_else(|| vec![0.299, 0.587, 0.114]);
    let refbw = d
        .find_tag(Tag::Unknown(532))
        .map_err(damaged)?
        .map(rationals)
        .filter(|r| r.len() == 6 && r[1] != r[0] && r[3] != r[2] && r[5] != r[4])
        .unwrap_or_else(|| vec![0.0, 255.0, 128.0, 255.0, 128.0, 255.0]);
    let offsets = d
        .find_tag_unsigned_vec::<u64>(Tag::StripOffsets)
        .map_err(damaged)?
        .ok_or_else(|| damaged("no strip offsets"))?;
    let counts = d
        .find_tag_unsigned_vec::<u64>(Tag::StripByteCounts)
        .map_err(damaged)?
        .ok_or_else(|| damaged("no strip byte counts"))?;
    let rows_per_strip = tag(&mut d, Tag::RowsPerStrip)
        .map_err(damaged)?
        .unwrap_or(height)
        .clamp(1, height.max(1)) as usize;
    if offsets.len() != counts.len() {
        return Err(damaged("strip offsets and byte counts differ in number"));
    }
    let (w, hgt) = (width as usize, height as usize);
    let blocks_across = w.div_ceil(h);
    let unit = h * v + 2;
    let mut rgb = vec![0u8; w * hgt * 3];
    let convert = |y: f64, cb: f64, cr: f64| -> [u8; 3] {
        let (lr, lg, lb) = (coeff[0], coeff[1], coeff[2]);
        let y = (y - refbw[0]) * 255.0 / (refbw[1] - refbw[0]);
        let cb = (cb - refbw[2]) * 127.0 / (refbw[3] - refbw[2]);
        let cr = (cr - refbw[4]) * 127.0 / (refbw[5] - refbw[4]);
        let r = cr * (2.0 - 2.0 * lr) + y;
        let b = cb * (2.0 - 2.0 * lb) + y;
        let g = (y - lb * b - lr * r) / lg;
        [r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8)
    };
    for (strip, (&offset, &count)) in offsets.iter().zip(&counts).enumerate() {
        let first_row = strip * rows_per_strip;
        if first_row >= hgt {
            break;
        }
        let rows = rows_per_strip.min(hgt - first_row);
        let raw = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(count).ok())
            .and_then(|(o, c)| input.get(o..o.checked_add(c)?))
            .ok_or_else(|| damaged(format!("strip {strip} lies outside the file")))?;
        let need = rows.div_ceil(v) * blocks_across * unit;
        let data = match compression {
            1 => raw.to_vec(),
            5 => weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
                .decode(raw)
                .map_err(|e| damaged(format!("LZW strip {strip}: {e}")))?,
            8 | 32946 => {
                let mut out = Vec::with_capacity(need);
                flate2::read::ZlibDecoder::new(raw)
                    .take(need as u64)
                    .read_to_end(&mut out)
                    .map_err(|e| damaged(format!("Deflate strip {strip}: {e}")))?;
                out
            }
            32773 => unpack_bits(raw, need),
            other => return Err(unsupported(format!("with compression {other}"))),
        };
        if data.len() < need {
            return Err(damaged(format!(
                "strip {strip} holds {} of {need} bytes",
                data.len()
            )));
        }
        for (i, u) in data[..need].chunks_exact(unit).enumerate() {
            let (bx, by) = (i % blocks_across, i / blocks_across);
            let (cb, cr) = (f64::from(u[h * v]), f64::from(u[h * v + 1]));
            for dy in 0..v {
                let row = first_row + by * v + dy;
                if row >= first_row + rows {
                    break;
                }
                for dx in 0..h {
                    let col = bx * h + dx;
                    if col >= w {
                        continue;
                    }
                    let at = (row * w + col) * 3;
                    rgb[at..at + 3].copy_from_slice(&convert(f64::from(u[dy * h + dx]), cb, cr));
                }
            }
        }
    }
    Ok((width, height, rgb))
}

/// PackBits (TIFF compression 32773) run-length decoding, up to `limit` bytes.
fn unpack_bits(mut raw: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    while let Some((&n, rest)) = raw.split_first() {
        if out.len() >= limit {
            break;
        }
        let n = n as i8;
        if n >= 0 {
            let take = (n as usize + 1).min(rest.len());
            out.extend_from_slice(&rest[..take]);
            raw = &rest[take..];
        } else if n != -128 {
            let Some((&b, rest)) = rest.split_first() else {
                break;
            };
            out.extend(std::iter::repeat_n(b, (1 - isize::from(n)) as usize));
            raw = rest;
        } else {
            raw = rest;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_sample_reads_like_ffmpeg_reads_it() {
        // samples/media/image.tif: 320×240, Deflate, YCbCr 4:2:0; ffmpeg decodes its top-left
        // pixel (a test-card gradient) to a light colour, not black.
        let sample = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/media/image.tif"
        ))
        .unwrap();
        assert!(is_plain_ycbcr(&sample));
        let (w, h, px) = read_rgb(&sample).unwrap();
        assert_eq!((w, h), (320, 240));
        assert_eq!(px.len(), 320 * 240 * 3);
        // Not a flat picture: the strips were all read.
        let distinct: std::collections::HashSet<&[u8]> = px.chunks(3).collect();
        assert!(distinct.len() > 100, "{} colours", distinct.len());
    }

    #[test]
    fn packbits_runs_and_literals() {
        // TIFF 6.0 §9 example: literal run, repeat run, no-op, literal.
        let packed = [0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0x80, 0x00, 0x07];
        assert_eq!(
            unpack_bits(&packed, 100),
            [0xAA, 0xAA, 0xAA, 0x80, 0x00, 0x2A, 0x07]
        );
        assert_eq!(unpack_bits(&[0x05, 1, 2], 100), [1, 2]);
    }

    #[test]
    fn truncated_ycbcr_tiff_is_an_error_not_a_panic() {
        let sample = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/media/image.tif"
        ))
        .unwrap();
        for cut in [8, 64, sample.len() / 2, sample.len() - 40] {
            let _ = read_rgb(&sample[..cut]);
        }
        assert!(read_rgb(b"II*\0").is_err());
    }
}
