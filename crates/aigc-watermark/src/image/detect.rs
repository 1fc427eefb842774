//! The blind detector: scale from the tile lattice in the spectrum, then fold all tiles into one,
//! find the cyclic offset by FFT cross-correlation with the key's pilot, despread and decode.

use super::{ImageMarkError, MIN_DETECT_SIDE, check_plane, plane, tile, to_f32};
use crate::codec::{CODED_BITS, decode_payload};
use crate::key::WatermarkKey;
use crate::payload::Payload;
use crate::stats::false_positive_probability;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serde::Serialize;

/// Per-image false-positive target of the presence decision (spec: ≤ 1e-6).
pub const PRESENCE_FPR: f64 = 1e-6;
/// Lattice harmonics (per axis) the scale search scores; the chips carry little energy above.
const HARMONICS: i64 = 24;
/// Scale range searched (suspect size / marked size).
const MIN_SCALE: f64 = 0.5;
const MAX_SCALE: f64 = 2.0;
/// Scale candidates from the spectrum that are folded, and refinement steps around each.
const CANDIDATES: usize = 5;
const REFINE: i32 = 2;
/// Largest centred square analysed for the scale (bounds the FFT cost on large images).
const MAX_SPECTRUM_SIDE: usize = 1024;
/// Side of the centred window on which scale candidates are folded and refined.
const SEARCH_WINDOW: usize = 512;
/// Ceiling on a normalised spectral bin in the scale score.
const SPECTRUM_CLIP: f64 = 6.0;

/// What the detector found in one luminance plane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageDetection {
    /// The presence score passed the corrected threshold (false-positive probability ≤ 1e-6).
    pub present: bool,
    /// Presence score: the pilot correlation peak in standard deviations over all offsets.
    pub z: f64,
    /// Analytic false-positive probability of `z`, corrected for `hypotheses`.
    pub false_positive_probability: f64,
    /// Hypotheses counted: every scale on the search grid × refinements × cyclic offsets.
    pub hypotheses: f64,
    /// Recovered scale (suspect size / marked size).
    pub scale: f64,
    /// Recovered offset of the tile grid (x, y) in marked-image pixels, modulo the period.
    pub offset: (usize, usize),
    /// Coded chips corrected by the decoder (only meaningful when `payload` is present).
    pub bit_errors: usize,
    /// The payload, only when its keyed check passed.
    pub payload: Option<Payload>,
}

/// Searches the luminance plane `data` (width × height, `stride` bytes per row) for the mark
/// of `key`.
pub fn detect_luma(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    key: &WatermarkKey,
) -> Result<ImageDetection, ImageMarkError> {
    check_plane(data.len(), width, height, stride, MIN_DETECT_SIDE)?;
    let y = to_f32(data, width, height, stride);
    let layout = tile::ChipLayout::new(key);
    let pilot = tile::render(&layout.chips(None));
    let mut planner = FftPlanner::<f32>::new();
    let mut pilot_spectrum: Vec<Complex<f32>> =
        pilot.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft2(
        &mut planner,
        &mut pilot_spectrum,
        tile::PERIOD,
        tile::PERIOD,
        false,
    );

    let (candidates, grid_size) = scale_candidates(&mut planner, &y, width, height);
    let offsets = (tile::PERIOD * tile::PERIOD) as f64;
    let hypotheses = (grid_size * (2 * REFINE as usize + 1)) as f64 * offsets;

    // Scale candidates are compared on a centred window of SEARCH_WINDOW² marked-grid pixels
    // (bounded cost on large planes); the chosen scale is then folded over the whole plane.
    // One fold per spectral candidate, then refine the best one around its scale.
    let mut best: Option<(Fold, f64)> = None;
    for &(s, step) in &candidates {
        let fold = fold_at(
            &mut planner,
            &y,
            width,
            height,
            s,
            SEARCH_WINDOW,
            &pilot_spectrum,
        );
        if best.as_ref().is_none_or(|(b, _)| fold.z > b.z) {
            best = Some((fold, step));
        }
    }
    let mut best = match best {
        Some((fold, step)) => {
            let centre = fold.scale;
            let mut top = fold;
            for k in (-REFINE..=REFINE).filter(|&k| k != 0) {
                let scale = centre * (1.0 + f64::from(k) * step / 2.0);
                let f = fold_at(
                    &mut planner,
                    &y,
                    width,
                    height,
                    scale,
                    SEARCH_WINDOW,
                    &pilot_spectrum,
                );
                if f.z > top.z {
                    top = f;
                }
            }
            if top.covered_all {
                Some(top)
            } else {
                Some(fold_at(
                    &mut planner,
                    &y,
                    width,
                    height,
                    top.scale,
                    usize::MAX,
                    &pilot_spectrum,
                ))
            }
        }
        None => None,
    };
    // One decode attempt (the best fold): the keyed 32-bit check then bounds a false payload
    // at 2⁻³² per image on top of the presence test.
    let decoded = best.as_mut().and_then(|b| {
        let d = decode_payload(&soft_bits(b, &layout), key);
        d.payload.is_some().then_some((d, b.scale, b.offset))
    });
    let (z, scale, offset) = best
        .as_ref()
        .map_or((0.0, 1.0, (0, 0)), |b| (b.z, b.scale, b.offset));
    let p = false_positive_probability(z, hypotheses);
    let (payload, bit_errors) = match decoded {
        Some((d, _, _)) => (d.payload, d.bit_errors),
        None => (None, 0),
    };
    Ok(ImageDetection {
        present: p <= PRESENCE_FPR,
        z,
        false_positive_probability: p,
        hypotheses,
        scale,
        offset,
        bit_errors,
        payload,
    })
}

/// One folded tile at one scale hypothesis.
struct Fold {
    scale: f64,
    /// The fold used the whole plane (not just the search window).
    covered_all: bool,
    z: f64,
    offset: (usize, usize),
    tile: Vec<f32>,
}

/// Resamples the plane to the marked grid at `scale`, whitens, folds all tiles into one and
/// finds the pilot's cyclic offset.
fn fold_at(
    planner: &mut FftPlanner<f32>,
    y: &[f32],
    w: usize,
    h: usize,
    scale: f64,
    max_side: usize,
    pilot_spectrum: &[Complex<f32>],
) -> Fold {
    let n = tile::PERIOD;
    let (r, rw, rh, (ox, oy)) = plane::resample(y, w, h, scale as f32, max_side);
    let full = (
        ((w as f32 / scale as f32).floor() as usize).max(1),
        ((h as f32 / scale as f32).floor() as usize).max(1),
    );
    let covered_all = (rw, rh) == full;
    let white = plane::whiten(&r, rw, rh);
    let mut sum = vec![0.0f32; n * n];
    let mut count = vec![0u32; n * n];
    // Fold by absolute marked-grid position so the window's origin keeps the true offset.
    for (row, line) in white.chunks(rw).enumerate() {
        let base = ((row + oy) % n) * n;
        for (col, v) in line.iter().enumerate() {
            sum[base + (col + ox) % n] += v;
            count[base + (col + ox) % n] += 1;
        }
    }
    let folded: Vec<f32> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| if c > 0 { s / c as f32 } else { 0.0 })
        .collect();
    let mut spec: Vec<Complex<f32>> = folded.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft2(planner, &mut spec, n, n, false);
    for (a, b) in spec.iter_mut().zip(pilot_spectrum) {
        *a = a.conj() * b;
    }
    fft2(planner, &mut spec, n, n, true);
    let corr: Vec<f64> = spec.iter().map(|c| f64::from(c.re)).collect();
    let mean = corr.iter().sum::<f64>() / corr.len() as f64;
    let var = corr.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / corr.len() as f64;
    let (arg, peak) =
        corr.iter().enumerate().fold(
            (0, f64::MIN),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
    let z = if var > 0.0 {
        (peak - mean) / var.sqrt()
    } else {
        0.0
    };
    Fold {
        scale,
        covered_all,
        z,
        offset: (arg % n, arg / n),
        tile: folded,
    }
}

/// Soft values of the coded bits from a folded tile aligned at its pilot offset.
fn soft_bits(fold: &Fold, layout: &tile::ChipLayout) -> Vec<f32> {
    let n = tile::PERIOD;
    let (dx, dy) = fold.offset;
    let mut aligned = vec![0.0f32; n * n];
    for yy in 0..n {
        for xx in 0..n {
            aligned[yy * n + xx] = fold.tile[((yy + n - dy) % n) * n + (xx + n - dx) % n];
        }
    }
    let chips = tile::despread(&aligned);
    let mut soft = vec![0.0f32; CODED_BITS];
    for &(c, bit) in &layout.payload {
        soft[bit] += layout.sign[c] * chips[c];
    }
    let rms = (soft.iter().map(|v| v * v).sum::<f32>() / soft.len() as f32).sqrt();
    if rms > 0.0 {
        soft.iter_mut().for_each(|v| *v /= rms);
    }
    soft
}

/// Scale hypotheses from the tile lattice in the power spectrum of the whitened plane: the
/// mark is periodic, so its energy sits on a lattice of spacing M/(PERIOD·scale) bins.
/// Returns the best local maxima as (scale, grid step) and the size of the scale grid.
fn scale_candidates(
    planner: &mut FftPlanner<f32>,
    y: &[f32],
    w: usize,
    h: usize,
) -> (Vec<(f64, f64)>, usize) {
    let m = w.min(h).min(MAX_SPECTRUM_SIDE);
    let x0 = (w - m) / 2;
    let y0 = (h - m) / 2;
    let crop: Vec<f32> = (0..m)
        .flat_map(|r| y[(y0 + r) * w + x0..][..m].iter().copied())
        .collect();
    let white = plane::whiten(&crop, m, m);
    let hann: Vec<f32> = (0..m)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / m as f32).cos())
        .collect();
    let mut spec: Vec<Complex<f32>> = white
        .iter()
        .enumerate()
        .map(|(i, &v)| Complex::new(v * hann[i / m] * hann[i % m], 0.0))
        .collect();
    fft2(planner, &mut spec, m, m, false);
    // Normalise the power by its local mean (9×9 bins) so the null spectrum is ~Exp(1)
    // everywhere, and clip: the host's few strong peaks (edges, repeated graphics) must not
    // outweigh the mark's many modest lattice peaks.
    let half = m / 2;
    let power: Vec<f32> = spec.iter().map(|c| c.norm_sqr()).collect();
    let local = plane::box_mean(&power, m, m, 4);
    let norm: Vec<f64> = power
        .iter()
        .zip(&local)
        .map(|(p, l)| {
            if *l > 0.0 {
                f64::from(p / l).min(SPECTRUM_CLIP)
            } else {
                0.0
            }
        })
        .collect();

    // Enough periods must fit for a lattice to exist: cap the largest scale.
    let max_scale = MAX_SCALE.min(m as f64 / (2.0 * tile::PERIOD as f64));
    let mut grid: Vec<(f64, f64, f64)> = Vec::new();
    let mut s = MIN_SCALE;
    while s <= max_scale.max(MIN_SCALE) {
        let spacing = m as f64 / (tile::PERIOD as f64 * s);
        let mut total = 0.0;
        let mut count = 0usize;
        for b in 0..=HARMONICS {
            for a in -HARMONICS..=HARMONICS {
                if b == 0 && a <= 0 {
                    continue;
                }
                let fx = a as f64 * spacing;
                let fy = b as f64 * spacing;
                let r = (fx * fx + fy * fy).sqrt();
                if r < 4.0 || r >= half as f64 - 1.0 {
                    continue;
                }
                let ix = (fx.round() as i64).rem_euclid(m as i64) as usize;
                let iy = (fy.round() as i64).rem_euclid(m as i64) as usize;
                if on_block_grid(ix, m) || on_block_grid(iy, m) {
                    continue;
                }
                total += norm[iy * m + ix];
                count += 1;
            }
        }
        let r_max = (HARMONICS as f64 * spacing * std::f64::consts::SQRT_2).min(half as f64);
        let step = (0.4 / r_max.max(1.0)).max(1e-4);
        let score = if count > 0 { total / count as f64 } else { 0.0 };
        grid.push((s, step, score));
        s *= 1.0 + step;
    }
    // Local maxima of the score, best first.
    let mut peaks: Vec<(f64, f64, f64)> = (0..grid.len())
        .filter(|&i| {
            let v = grid[i].2;
            (i == 0 || grid[i - 1].2 <= v) && (i + 1 == grid.len() || grid[i + 1].2 < v)
        })
        .map(|i| grid[i])
        .collect();
    peaks.sort_by(|a, b| b.2.total_cmp(&a.2));
    let mut out: Vec<(f64, f64)> = peaks
        .into_iter()
        .take(CANDIDATES)
        .map(|(s, step, _)| (s, step))
        .collect();
    // The unscaled grid is by far the most common case: always fold it (it is on the counted
    // grid, so the hypothesis count does not change).
    if let Some(&(s, step, _)) = grid
        .iter()
        .min_by(|a, b| (a.0 - 1.0).abs().total_cmp(&(b.0 - 1.0).abs()))
        && (s - 1.0).abs() < step
        && !out.iter().any(|c| (c.0 - s).abs() < step)
    {
        out.push((1.0, step));
    }
    (out, grid.len())
}

/// Whether bin `i` of `n` lies within a bin of a harmonic of the 8-px JPEG/MPEG block grid:
/// block artefacts put strong lines there that would fake a lattice at many scales.
fn on_block_grid(i: usize, n: usize) -> bool {
    let f = freq(i, n).unsigned_abs() as usize * 8;
    let r = f % n;
    r.min(n - r) <= 8 + n / 64
}

/// Signed frequency of FFT bin `i` of `n`.
fn freq(i: usize, n: usize) -> i64 {
    if i <= n / 2 {
        i as i64
    } else {
        i as i64 - n as i64
    }
}

/// In-place 2-D FFT of a rows×cols complex array (the inverse is normalised by 1/(rows·cols)).
fn fft2(
    planner: &mut FftPlanner<f32>,
    data: &mut [Complex<f32>],
    rows: usize,
    cols: usize,
    inverse: bool,
) {
    let (row_fft, col_fft) = if inverse {
        (
            planner.plan_fft_inverse(cols),
            planner.plan_fft_inverse(rows),
        )
    } else {
        (
            planner.plan_fft_forward(cols),
            planner.plan_fft_forward(rows),
        )
    };
    row_fft.process(data);
    let mut column = vec![Complex::new(0.0, 0.0); rows];
    for c in 0..cols {
        for r in 0..rows {
            column[r] = data[r * cols + c];
        }
        col_fft.process(&mut column);
        for r in 0..rows {
            data[r * cols + c] = column[r];
        }
    }
    if inverse {
        let k = 1.0 / (rows * cols) as f32;
        data.iter_mut().for_each(|v| *v *= k);
    }
}
