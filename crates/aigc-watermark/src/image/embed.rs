//! The embedder: tile × texture mask × one global gain set from the target PSNR.

use super::{ImageMarkError, MIN_EMBED_SIDE, check_plane, plane, tile, to_f32};
use crate::codec::encode_payload;
use crate::key::WatermarkKey;
use crate::payload::Payload;
use serde::Serialize;

/// How strongly to mark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedOptions {
    /// Target PSNR of the luminance plane before rounding, in dB (higher = weaker mark).
    pub target_psnr_db: f64,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        // 42.5 before rounding/clipping lands at ≥ 42 dB after (spec floor: 42 dB).
        EmbedOptions {
            target_psnr_db: 42.5,
        }
    }
}

/// What the embedder did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedReport {
    /// Measured PSNR of the written 8-bit plane against the input, in dB.
    pub psnr_db: f64,
    /// Global gain applied to the unit-RMS, mask-shaped pattern.
    pub gain: f64,
    /// Tile period in pixels.
    pub period: usize,
    /// Tiles covering the plane (partial tiles counted).
    pub tiles: usize,
}

/// Marks the luminance plane `data` (width × height, `stride` bytes per row) in place with
/// `payload` under `key`.
pub fn embed_luma(
    data: &mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    payload: Payload,
    key: &WatermarkKey,
    options: &EmbedOptions,
) -> Result<EmbedReport, ImageMarkError> {
    check_plane(data.len(), width, height, stride, MIN_EMBED_SIDE)?;
    if !(20.0..=60.0).contains(&options.target_psnr_db) {
        return Err(ImageMarkError::BadStrength(options.target_psnr_db));
    }
    let layout = tile::ChipLayout::new(key);
    let coded = encode_payload(payload, key);
    let pattern = tile::render(&layout.chips(Some(&coded)));
    let y = to_f32(data, width, height, stride);
    let mask = texture_mask(&y, width, height);

    // Gain from the target MSE: mean((g·m·w)²) = MSE.
    let n = (width * height) as f64;
    let mut energy = 0.0f64;
    for row in 0..height {
        let trow = &pattern[(row % tile::PERIOD) * tile::PERIOD..][..tile::PERIOD];
        for col in 0..width {
            let v = f64::from(mask[row * width + col] * trow[col % tile::PERIOD]);
            energy += v * v;
        }
    }
    let target_mse = 255.0f64.powi(2) / 10f64.powf(options.target_psnr_db / 10.0);
    let gain = if energy > 0.0 {
        (target_mse * n / energy).sqrt()
    } else {
        0.0
    };

    let mut sq_err = 0.0f64;
    for row in 0..height {
        let trow = &pattern[(row % tile::PERIOD) * tile::PERIOD..][..tile::PERIOD];
        let out = &mut data[row * stride..][..width];
        for (col, px) in out.iter_mut().enumerate() {
            let delta = gain as f32 * mask[row * width + col] * trow[col % tile::PERIOD];
            let old = *px;
            let new = (f32::from(old) + delta).round().clamp(0.0, 255.0) as u8;
            let e = f64::from(new) - f64::from(old);
            sq_err += e * e;
            *px = new;
        }
    }
    let mse = sq_err / n;
    let psnr_db = if mse > 0.0 {
        10.0 * (255.0f64.powi(2) / mse).log10()
    } else {
        f64::INFINITY
    };
    Ok(EmbedReport {
        psnr_db,
        gain,
        period: tile::PERIOD,
        tiles: width.div_ceil(tile::PERIOD) * height.div_ceil(tile::PERIOD),
    })
}

/// Perceptual weight per pixel: √(local std) normalised to its median, clipped to [0.2, 2.5],
/// and faded near black and white where the mark would clip. Flat areas get little mark.
fn texture_mask(y: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mean = plane::box_mean(y, w, h, 2);
    let sq: Vec<f32> = y.iter().map(|v| v * v).collect();
    let mean_sq = plane::box_mean(&sq, w, h, 2);
    let mut m: Vec<f32> = mean
        .iter()
        .zip(&mean_sq)
        .map(|(a, b)| (b - a * a).max(0.0).sqrt().sqrt())
        .collect();
    let mut sorted = m.clone();
    let mid = sorted.len() / 2;
    let (_, median, _) = sorted.select_nth_unstable_by(mid, f32::total_cmp);
    let median = median.max(1.0);
    for (v, px) in m.iter_mut().zip(y) {
        let edge = (px.min(255.0 - px) / 12.0).clamp(0.1, 1.0);
        *v = (*v / median).clamp(0.2, 2.5) * edge;
    }
    m
}
