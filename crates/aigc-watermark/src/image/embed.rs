//! The embedder: tile × texture mask × one global gain set from the target PSNR.

use super::{ImageMarkError, MIN_EMBED_SIDE, check_plane, tile};
use crate::codec::encode_payload;
use crate::key::WatermarkKey;
use crate::payload::Payload;
use rayon::prelude::*;
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
    let pattern = tile::render_mark(&layout.chips(Some(&coded)), &tile::sync_peaks(key));
    let (mask, inv_median) = texture_measure(data, width, height, stride);

    // The histogram of the pattern's energy over the finished mask values (normalised, clipped,
    // faded near black and white), on a subset of rows: the gain and the floor are solved from
    // it (see `solve_gain`). The mask is finished again where it is applied, not stored: a
    // pass writing the whole plane's mask cost more than the arithmetic.
    let n = (width * height) as f64;
    let hist = mask
        .par_chunks(width)
        .zip(data.par_chunks(stride))
        .enumerate()
        .fold(EnergyHistogram::new, |mut hist, (row, (m, px))| {
            // (Every row is visited, not `step_by`, so rayon splits the rows and sums the
            // partial histograms exactly as before.)
            if row % HISTOGRAM_ROW_STEP != 0 {
                return hist;
            }
            let trow = &pattern[(row % tile::PERIOD) * tile::PERIOD..][..tile::PERIOD];
            for (mc, pc) in m.chunks(tile::PERIOD).zip(px.chunks(tile::PERIOD)) {
                for ((&t, &p), tv) in mc.iter().zip(pc).zip(trow) {
                    hist.add(finish_mask(t, inv_median, p), tv * tv);
                }
            }
            hist
        })
        .reduce(EnergyHistogram::new, EnergyHistogram::merge);
    let target_mse = 255.0f64.powi(2) / 10f64.powf(options.target_psnr_db / 10.0);
    // The histogram saw one row in HISTOGRAM_ROW_STEP: scale the budget to its rows.
    let sampled_rows = height.div_ceil(HISTOGRAM_ROW_STEP);
    let (gain, floor) = hist.solve_gain(target_mse * n * sampled_rows as f64 / height as f64);
    let floor = floor as f32;

    let g = gain as f32;
    let sq_err: f64 = data
        .par_chunks_mut(stride)
        .take(height)
        .zip(mask.par_chunks(width))
        .enumerate()
        .map(|(row, (line, m))| {
            let trow = &pattern[(row % tile::PERIOD) * tile::PERIOD..][..tile::PERIOD];
            let shape = Shape {
                gain: g,
                floor,
                inv_median,
            };
            mark_row(&mut line[..width], m, trow, shape) as f64
        })
        .sum();
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

/// Smallest amplitude (8-bit levels, RMS over the tile) anywhere in the plane: below about one
/// level the 8-bit rounding and any compression erase the mark, which left flat areas (text on
/// white paper, skies) carrying nothing. One level RMS of a 2-px pattern stays below the
/// visibility threshold on flat areas; the rest of the PSNR budget follows the texture mask.
const FLOOR_LEVELS: f64 = 0.8;
/// Share of the PSNR budget's MSE the floor may take at most (the texture-shaped part keeps the
/// rest even on an all-flat image).
const FLOOR_MAX_SHARE: f64 = 0.5;
/// The energy histogram takes one row in this many (the mask varies slowly and the pattern's
/// rows are alike in energy, so the MSE it predicts is within a fraction of a percent; a full
/// pass cost 5 ms per 1080p image on one core). The PSNR reported is measured on every pixel.
const HISTOGRAM_ROW_STEP: usize = 3;
/// Bins of the energy histogram over the finished mask values (range 0..=MASK_MAX).
const ENERGY_BINS: usize = 1024;
/// Largest finished mask value ([`finish_mask`] clips at 2.5).
const MASK_MAX: f32 = 2.5;

/// The pattern's energy (Σ tile value²) and energy × mask² per bin of the finished mask value:
/// enough to evaluate the MSE of any (gain, floor) without another pass over the plane.
struct EnergyHistogram {
    energy: Vec<f64>,
    energy_m2: Vec<f64>,
}

impl EnergyHistogram {
    /// An empty histogram.
    fn new() -> Self {
        EnergyHistogram {
            energy: vec![0.0; ENERGY_BINS],
            energy_m2: vec![0.0; ENERGY_BINS],
        }
    }

    /// Adds one pixel: finished mask value `m`, squared tile value `tv2`.
    #[inline]
    fn add(&mut self, m: f32, tv2: f32) {
        let bin = ((m * (ENERGY_BINS as f32 / MASK_MAX)) as usize).min(ENERGY_BINS - 1);
        self.energy[bin] += f64::from(tv2);
        self.energy_m2[bin] += f64::from(tv2 * m * m);
    }

    /// The sum of two histograms (rayon's reduce).
    fn merge(mut self, other: Self) -> Self {
        for (a, b) in self.energy.iter_mut().zip(&other.energy) {
            *a += b;
        }
        for (a, b) in self.energy_m2.iter_mut().zip(&other.energy_m2) {
            *a += b;
        }
        self
    }

    /// Squared error of amplitude max(gain·m, floor) summed over the plane (bin-exact except
    /// for the one bin the floor crosses).
    fn squared_error(&self, gain: f64, floor: f64) -> f64 {
        let width = f64::from(MASK_MAX) / ENERGY_BINS as f64;
        let threshold = if gain > 0.0 { floor / gain } else { f64::MAX };
        self.energy
            .iter()
            .zip(&self.energy_m2)
            .enumerate()
            .map(|(b, (&e, &em2))| {
                if (b as f64 + 0.5) * width >= threshold {
                    gain * gain * em2
                } else {
                    floor * floor * e
                }
            })
            .sum()
    }

    /// The (gain, floor) whose squared error is `budget`: the floor is [`FLOOR_LEVELS`] (or less
    /// when it would take more than [`FLOOR_MAX_SHARE`] of the budget), the gain the largest
    /// that still fits (bisection: the error grows with the gain).
    fn solve_gain(&self, budget: f64) -> (f64, f64) {
        let total: f64 = self.energy.iter().sum();
        if total <= 0.0 || budget <= 0.0 {
            return (0.0, 0.0);
        }
        let floor = FLOOR_LEVELS.min((FLOOR_MAX_SHARE * budget / total).sqrt());
        let em2: f64 = self.energy_m2.iter().sum();
        if em2 <= 0.0 {
            return (0.0, (budget / total).sqrt());
        }
        // Without a floor the gain would be √(budget/em2): an upper bound.
        let (mut lo, mut hi) = (0.0, (budget / em2).sqrt());
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if self.squared_error(mid, floor) > budget {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (lo, floor)
    }
}

/// 1/n for the pixel counts of a 5×5 window clipped at the borders (a multiply, not a division,
/// per pixel).
const INV_COUNT: [f32; 26] = {
    let mut t = [0.0f32; 26];
    let mut n = 1;
    while n < 26 {
        t[n] = 1.0 / n as f32;
        n += 1;
    }
    t
};

/// Bins of the histogram that finds the median of the texture measure (range 0..MASK_RANGE).
const MASK_BINS: usize = 4096;
/// Upper end of the texture measure ⁴√variance (⁴√(127.5²) ≈ 11.3).
const MASK_RANGE: f32 = 12.0;

/// Texture measure per pixel, √(local std over 5×5), and 1 / its median: the raw material of
/// the perceptual weight ([`finish_mask`]); flat areas get little mark. Exact integer window
/// sums straight from the u8 plane, parallel over bands of rows.
fn texture_measure(data: &[u8], w: usize, h: usize, stride: usize) -> (Vec<f32>, f32) {
    const R: usize = 2;
    const BAND: usize = 32;
    let mut m = vec![0.0f32; w * h];
    let hist = m
        .par_chunks_mut(w * BAND)
        .enumerate()
        .map(|(band, out)| {
            let mut hist = vec![0u32; MASK_BINS];
            let row = |y: usize| &data[y * stride..][..w];
            let y_start = band * BAND;
            let (mut col, mut col_sq) = (vec![0i32; w], vec![0i32; w]);
            for yy in y_start.saturating_sub(R)..(y_start + R + 1).min(h) {
                for ((c, q), &v) in col.iter_mut().zip(col_sq.iter_mut()).zip(row(yy)) {
                    *c += i32::from(v);
                    *q += i32::from(v) * i32::from(v);
                }
            }
            let scale = MASK_BINS as f32 / MASK_RANGE;
            // Window columns inside the plane per column, and per row the window sums and 1/n.
            let cols: Vec<i32> = (0..w)
                .map(|x| ((x + R + 1).min(w) - x.saturating_sub(R)) as i32)
                .collect();
            let (mut s, mut sq) = (vec![0i32; w], vec![0i32; w]);
            let mut inv_n = vec![0.0f32; w];
            for (i, m_row) in out.chunks_mut(w).enumerate() {
                let y = y_start + i;
                let rows = ((y + R + 1).min(h) - y.saturating_sub(R)) as i32;
                window_sums(&col, &mut s);
                window_sums(&col_sq, &mut sq);
                inv_n
                    .iter_mut()
                    .zip(&cols)
                    .for_each(|(v, &c)| *v = INV_COUNT[(c * rows) as usize]);
                // Whole-row passes that vectorise (the integers are exact in i32: n·Σv² and
                // (Σv)² stay below 25²·255² < 2³¹), then the histogram.
                texture_row(m_row, &s, &sq, &cols, &inv_n, rows);
                for &t in m_row.iter() {
                    hist[((t * scale) as usize).min(MASK_BINS - 1)] += 1;
                }
                if y + R + 1 < h {
                    for ((c, q), &v) in col.iter_mut().zip(col_sq.iter_mut()).zip(row(y + R + 1)) {
                        *c += i32::from(v);
                        *q += i32::from(v) * i32::from(v);
                    }
                }
                if y >= R {
                    for ((c, q), &v) in col.iter_mut().zip(col_sq.iter_mut()).zip(row(y - R)) {
                        *c -= i32::from(v);
                        *q -= i32::from(v) * i32::from(v);
                    }
                }
            }
            hist
        })
        .reduce(
            || vec![0u32; MASK_BINS],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let half = (w * h) as u64 / 2;
    let mut seen = 0u64;
    let mut median_bin = MASK_BINS - 1;
    for (bin, &c) in hist.iter().enumerate() {
        seen += u64::from(c);
        if seen > half {
            median_bin = bin;
            break;
        }
    }
    let inv_median = 1.0 / ((median_bin as f32 + 0.5) * (MASK_RANGE / MASK_BINS as f32)).max(1.0);
    (m, inv_median)
}

/// What the marking pass applies: max(gain · finished mask, floor) per pixel.
#[derive(Clone, Copy)]
struct Shape {
    gain: f32,
    floor: f32,
    inv_median: f32,
}

/// Marks one row of pixels `line` with the tile row `trow` (repeated) shaped by the texture
/// measures `m`; returns the row's squared error. Compiled for AVX2 where the CPU has it
/// (twice the lanes of the SSE2 baseline for the same IEEE operations in the same order, so the
/// same pixels).
fn mark_row(line: &mut [u8], m: &[f32], trow: &[f32], shape: Shape) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), all `mark_row_avx2` requires.
        return unsafe { mark_row_avx2(line, m, trow, shape) };
    }
    mark_row_any(line, m, trow, shape)
}

/// [`mark_row_any`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mark_row_avx2(line: &mut [u8], m: &[f32], trow: &[f32], shape: Shape) -> u64 {
    mark_row_any(line, m, trow, shape)
}

/// [`mark_row`] for any CPU (inlined into each instruction-set variant).
#[inline(always)]
fn mark_row_any(line: &mut [u8], m: &[f32], trow: &[f32], shape: Shape) -> u64 {
    let mut err = 0u64;
    for (px_chunk, m_chunk) in line.chunks_mut(tile::PERIOD).zip(m.chunks(tile::PERIOD)) {
        for ((px, &t), tv) in px_chunk.iter_mut().zip(m_chunk).zip(trow) {
            let old = *px;
            let amplitude = (shape.gain * finish_mask(t, shape.inv_median, old)).max(shape.floor);
            // Clamped first, so adding ½ and truncating rounds (no libm call).
            let new = ((f32::from(old) + amplitude * tv).clamp(0.0, 255.0) + 0.5) as u8;
            let e = u64::from(new.abs_diff(old));
            err += e * e;
            *px = new;
        }
    }
    err
}

/// The texture measure of one row, √(√(n²·variance) / n), from its 5×5 window sums `s` and
/// `sq`, window columns `cols`, `rows` window rows and 1/n `inv_n`. Compiled for AVX2 where the
/// CPU has it (the two square roots 8 wide; the same values).
fn texture_row(m: &mut [f32], s: &[i32], sq: &[i32], cols: &[i32], inv_n: &[f32], rows: i32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), all `texture_row_avx2` requires.
        unsafe { texture_row_avx2(m, s, sq, cols, inv_n, rows) };
        return;
    }
    texture_row_any(m, s, sq, cols, inv_n, rows);
}

/// [`texture_row_any`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn texture_row_avx2(m: &mut [f32], s: &[i32], sq: &[i32], cols: &[i32], inv_n: &[f32], rows: i32) {
    texture_row_any(m, s, sq, cols, inv_n, rows);
}

/// [`texture_row`] for any CPU (inlined into each instruction-set variant).
#[inline(always)]
fn texture_row_any(m: &mut [f32], s: &[i32], sq: &[i32], cols: &[i32], inv_n: &[f32], rows: i32) {
    for ((((mv, &s), &sq), &c), &k) in m.iter_mut().zip(s).zip(sq).zip(cols).zip(inv_n) {
        // n²·variance, exact.
        let var_n2 = (c * rows * sq - s * s) as f32;
        *mv = (var_n2.sqrt() * k).sqrt();
    }
}

/// Sums of `col` over a window of 2·2+1 clamped at the ends, into `out` (exact integers).
fn window_sums(col: &[i32], out: &mut [i32]) {
    const R: usize = 2;
    let w = col.len();
    if w > 2 * R {
        // Interior: shifted slice additions.
        let inner = &mut out[R..w - R];
        inner.copy_from_slice(&col[..w - 2 * R]);
        for d in 1..=2 * R {
            inner.iter_mut().zip(&col[d..]).for_each(|(o, &c)| *o += c);
        }
    }
    for x in (0..R.min(w)).chain(w.saturating_sub(R).max(R.min(w))..w) {
        out[x] = col[x.saturating_sub(R)..(x + R + 1).min(w)].iter().sum();
    }
}

/// The perceptual weight of a pixel from its texture measure `t` and value `px`: `t` over its
/// median, clipped to [0.2, 2.5], faded near black and white where the mark would clip.
#[inline(always)]
fn finish_mask(t: f32, inv_median: f32, px: u8) -> f32 {
    let px = f32::from(px);
    let edge = (px.min(255.0 - px) * (1.0 / 12.0)).clamp(0.1, 1.0);
    (t * inv_median).clamp(0.2, 2.5) * edge
}
