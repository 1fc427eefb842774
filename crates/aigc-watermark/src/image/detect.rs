//! The blind detector: scale and rotation from the synchronisation template (see `sync`), then
//! every tile folded into one on the recovered grid, the cyclic offset from an FFT
//! cross-correlation with the key's pilot, despreading and soft decoding.

use super::plane::{self, Similarity};
use super::{ImageMarkError, MIN_DETECT_SIDE, check_plane, fft2, sync, tile, to_f32};
use crate::codec::{CODED_BITS, Decoded, decode_payload};
use crate::key::WatermarkKey;
use crate::payload::Payload;
use crate::stats::false_positive_probability;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serde::Serialize;

/// Per-image false-positive target of the presence decision (spec: ≤ 1e-6).
pub const PRESENCE_FPR: f64 = 1e-6;
/// Side of the centred window (marked-grid pixels) on which candidate transforms are compared
/// before the best one is folded over the whole plane.
const SEARCH_WINDOW: usize = 512;
/// Template score (mean normalised power at the predicted peaks; ≈ 2 on the host) a transform
/// needs before it is folded.
const MIN_SYNC_SCORE: f64 = 2.5;
/// Largest side (marked-grid pixels) of the region folded for decoding: bounds the cost when a
/// small scale makes the virtual marked plane huge (256 tiles are plenty).
const FOLD_MAX_SIDE: usize = 2048;
/// Decode attempts on the template's own candidates (each may pass the 32-bit check by chance
/// with probability 2⁻³²; every attempt counts in the reported false-positive probability).
const FIRST_DECODES: usize = 3;
/// Candidates polished by the pilot score when none of them decoded.
const POLISHED: usize = 2;
/// Pilot score a candidate needs before it is polished: a transform a little off still
/// correlates (z ≈ 4.5–7 seen), while on unmarked content the best of 16 384 offsets is ≈ 4,
/// so most unmarked images skip the cost.
const POLISH_MIN_Z: f64 = 4.0;
/// Folds one polish may spend (its pattern search stops earlier when nothing improves).
const POLISH_FOLDS: usize = 16;
/// Displacement (marked-grid pixels, at the edge of the compared window) of the polish steps:
/// coarse to fine.
const POLISH_STEPS_PX: [f64; 3] = [2.0, 1.0, 0.5];
/// A candidate other than the best is decoded only if its pilot score reaches this.
const SECOND_DECODE_Z: f64 = 5.0;
/// Probability that a decode of unmarked content passes the keyed 32-bit check.
const CHECK_FPR: f64 = 1.0 / 4_294_967_296.0;

/// How the detector searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// Search scale (0.3–2.2×) and rotation (±6°) with the synchronisation template. Without
    /// it only the unscaled, unrotated grid is tried (any crop offset is still found).
    pub geometric_search: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            geometric_search: true,
        }
    }
}

/// What the detector found in one luminance plane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageDetection {
    /// The mark is present: the pilot score passed the corrected threshold, or a payload passed
    /// its keyed check (either way the false-positive probability is ≤ 1e-6).
    pub present: bool,
    /// Presence score: the pilot correlation peak in standard deviations over all offsets.
    pub z: f64,
    /// Analytic false-positive probability of the decision: `z` corrected for `hypotheses`, or
    /// (when a payload passed its check) at most decode attempts × 2⁻³², whichever is smaller.
    pub false_positive_probability: f64,
    /// Hypotheses the pilot score was taken over: (scale, rotation) transforms folded × cyclic
    /// offsets per fold.
    pub hypotheses: f64,
    /// (scale, rotation) grid points the synchronisation template was scored on (0 without
    /// geometric search); they only choose which transforms are folded.
    pub sync_hypotheses: usize,
    /// Mean normalised spectral power at the template peaks of the chosen transform (≈ 1 when
    /// absent).
    pub sync_score: f64,
    /// Recovered scale (suspect size / marked size).
    pub scale: f64,
    /// Recovered rotation in degrees (positive = clockwise as displayed).
    pub rotation_degrees: f64,
    /// Recovered offset of the tile grid (x, y) in marked-image pixels, modulo the period.
    pub offset: (usize, usize),
    /// Coded bits whose received sign disagreed with the re-encoded decoded codeword (errors
    /// corrected); 0 when no payload was decoded.
    pub bit_errors: usize,
    /// Coded bits carried (the denominator of the raw bit error rate).
    pub coded_bits: usize,
    /// Payload decodes attempted.
    pub decode_attempts: usize,
    /// The payload, only when its keyed check passed.
    pub payload: Option<Payload>,
}

impl ImageDetection {
    /// Bit error rate before error correction, when a payload was decoded.
    pub fn raw_ber(&self) -> Option<f64> {
        self.payload
            .map(|_| self.bit_errors as f64 / self.coded_bits.max(1) as f64)
    }
}

/// Searches the luminance plane `data` (width × height, `stride` bytes per row) for the mark
/// of `key`, with geometric search.
pub fn detect_luma(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    key: &WatermarkKey,
) -> Result<ImageDetection, ImageMarkError> {
    detect_luma_with(data, width, height, stride, key, &DetectOptions::default())
}

/// What every detection starts from: the checked plane as floats, the key's chip layout, an
/// FFT planner and the pilot's spectrum.
struct Prepared {
    y: Vec<f32>,
    layout: tile::ChipLayout,
    planner: FftPlanner<f32>,
    pilot_spectrum: Vec<Complex<f32>>,
}

fn prepare(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    key: &WatermarkKey,
) -> Result<Prepared, ImageMarkError> {
    check_plane(data.len(), width, height, stride, MIN_DETECT_SIDE)?;
    let y = to_f32(data, width, height, stride);
    let layout = tile::ChipLayout::new(key);
    let mut planner = FftPlanner::<f32>::new();
    let pilot_spectrum = pilot_spectrum(&mut planner, &layout);
    Ok(Prepared {
        y,
        layout,
        planner,
        pilot_spectrum,
    })
}

/// Searches the luminance plane for the mark of `key` as `options` say.
pub fn detect_luma_with(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    key: &WatermarkKey,
    options: &DetectOptions,
) -> Result<ImageDetection, ImageMarkError> {
    let Prepared {
        y,
        layout,
        mut planner,
        pilot_spectrum,
    } = prepare(data, width, height, stride, key)?;

    let identity = Similarity {
        scale: 1.0,
        rotation: 0.0,
    };
    let (mut candidates, sync_hypotheses) = if options.geometric_search {
        let found = sync::search(&mut planner, &y, width, height, &tile::sync_peaks(key));
        (found.candidates, found.grid)
    } else {
        (Vec::new(), 0)
    };
    // Only transforms whose template score stands out of the host are worth a fold.
    candidates.retain(|c| c.1 >= MIN_SYNC_SCORE);
    // The untouched grid is the most common case: always try it exactly.
    if !candidates.contains(&(identity, 0.0)) {
        candidates.push((identity, 0.0));
    }

    let mut folder = Folder {
        planner: &mut planner,
        y: &y,
        w: width,
        h: height,
        pilot_spectrum: &pilot_spectrum,
    };
    // Compare candidates on a centred window, best pilot score first.
    // (With a single candidate there is nothing to compare: fold the decoding region at once.)
    let window = if candidates.len() == 1 {
        FOLD_MAX_SIDE
    } else {
        SEARCH_WINDOW
    };
    let mut folds: Vec<(Fold, f64)> = candidates
        .iter()
        .map(|&(t, score)| (folder.fold(t, window), score))
        .collect();
    folds.sort_by(|a, b| b.0.z.total_cmp(&a.0.z));
    let mut search = Search {
        folds: folds.len(),
        ..Search::default()
    };
    for (i, (fold, score)) in folds.iter().enumerate() {
        if search.attempts == FIRST_DECODES || (i > 0 && fold.z < SECOND_DECODE_Z) {
            break;
        }
        if search.decode(&mut folder, fold, *score, window, &layout, key) {
            break;
        }
    }
    // The template's least-squares fit is only as precise as the spectrum of a small or heavily
    // compressed image allows; a transform a fraction of a degree or percent off blurs the fold.
    // Polish the best few by the pilot score itself, then decode them.
    if search.decoded.is_none() && options.geometric_search {
        for (fold, score) in folds
            .iter()
            .take(POLISHED)
            .filter(|(f, _)| f.z >= POLISH_MIN_Z)
        {
            let polished = polish(&mut folder, fold, window, &mut search.folds);
            search.decode(&mut folder, &polished, *score, window, &layout, key);
            if search.decoded.is_some() {
                break;
            }
        }
    }
    let hypotheses = (search.folds * tile::PERIOD * tile::PERIOD) as f64;
    let (best, decoded, decode_attempts) = (search.best, search.decoded, search.attempts);
    let (z, transform, offset, sync_score) = best
        .as_ref()
        .map_or((0.0, identity, (0, 0), 0.0), |(b, s)| {
            (b.z, b.transform, b.offset, *s)
        });
    let p_pilot = false_positive_probability(z, hypotheses);
    let (payload, bit_errors) = match decoded {
        Some(d) => (d.payload, d.bit_errors),
        None => (None, 0),
    };
    let p = if payload.is_some() {
        p_pilot.min(decode_attempts as f64 * CHECK_FPR)
    } else {
        p_pilot
    };
    Ok(ImageDetection {
        present: p <= PRESENCE_FPR,
        z,
        false_positive_probability: p,
        hypotheses,
        sync_hypotheses,
        sync_score,
        scale: transform.scale,
        rotation_degrees: transform.rotation.to_degrees(),
        offset,
        bit_errors,
        coded_bits: CODED_BITS,
        decode_attempts,
        payload,
    })
}

/// The running state of the decode attempts.
#[derive(Default)]
struct Search {
    /// Folds computed so far (each one is PERIOD² offset hypotheses of the pilot score).
    folds: usize,
    /// Decode attempts so far.
    attempts: usize,
    /// The fold with the best pilot score so far, or the one that decoded, with its template
    /// score.
    best: Option<(Fold, f64)>,
    /// The decoded payload, once one passed its check.
    decoded: Option<Decoded>,
}

impl Search {
    /// Folds `fold`'s transform over the decoding region (unless `fold` already covers it) and
    /// decodes it; true when the payload passed its check.
    fn decode(
        &mut self,
        folder: &mut Folder<'_>,
        fold: &Fold,
        score: f64,
        window: usize,
        layout: &tile::ChipLayout,
        key: &WatermarkKey,
    ) -> bool {
        let fold = if fold.complete || window == FOLD_MAX_SIDE {
            fold.clone()
        } else {
            self.folds += 1;
            folder.fold(fold.transform, FOLD_MAX_SIDE)
        };
        let d = decode_payload(&soft_bits(&fold, layout), key);
        self.attempts += 1;
        let passed = d.payload.is_some();
        if passed || self.best.as_ref().is_none_or(|(b, _)| fold.z > b.z) {
            self.best = Some((fold, score));
        }
        if passed {
            self.decoded = Some(d);
        }
        passed
    }
}

/// Pattern search of scale and rotation around `start` (folded over `window`) that maximises
/// the pilot score on the centred search window: steps that move the window's edge by 2, 1,
/// then ½ pixel. Counts its folds into `folds`.
fn polish(folder: &mut Folder<'_>, start: &Fold, window: usize, folds: &mut usize) -> Fold {
    let t0 = start.transform;
    // Half the compared region's side, in marked-grid pixels: where a step's displacement is
    // largest.
    let side = (folder.w.min(folder.h) as f64 / t0.scale).min(SEARCH_WINDOW as f64);
    let radius = (side / 2.0).max(1.0);
    let mut spent = 0;
    let mut best = if window == SEARCH_WINDOW {
        start.clone()
    } else {
        spent += 1;
        folder.fold(t0, SEARCH_WINDOW)
    };
    'levels: for step_px in POLISH_STEPS_PX {
        let step = step_px / radius;
        loop {
            let mut moved = false;
            for (ds, dr) in [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] {
                if spent == POLISH_FOLDS {
                    break 'levels;
                }
                let t = Similarity {
                    scale: best.transform.scale * (1.0 + ds * step),
                    rotation: best.transform.rotation + dr * step,
                };
                let f = folder.fold(t, SEARCH_WINDOW);
                spent += 1;
                if f.z > best.z {
                    best = f;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
    *folds += spent;
    best
}

/// The spectrum of the key's pilot tile (the cross-correlation reference of every fold).
fn pilot_spectrum(planner: &mut FftPlanner<f32>, layout: &tile::ChipLayout) -> Vec<Complex<f32>> {
    let pilot = tile::render(&layout.chips(None));
    let mut spectrum: Vec<Complex<f32>> = pilot.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft2(planner, &mut spectrum, tile::PERIOD, tile::PERIOD, false);
    spectrum
}

/// Test access to the polish: folds the plane `y` (w×h) under `start` on the search window,
/// polishes it, and returns (pilot z at `start`, polished z, polished transform).
#[cfg(test)]
pub(super) fn polish_from(
    y: &[u8],
    w: usize,
    h: usize,
    key: &WatermarkKey,
    start: Similarity,
) -> (f64, f64, Similarity) {
    let y = to_f32(y, w, h, w);
    let layout = tile::ChipLayout::new(key);
    let mut planner = FftPlanner::<f32>::new();
    let pilot_spectrum = pilot_spectrum(&mut planner, &layout);
    let mut folder = Folder {
        planner: &mut planner,
        y: &y,
        w,
        h,
        pilot_spectrum: &pilot_spectrum,
    };
    let first = folder.fold(start, SEARCH_WINDOW);
    let mut folds = 0;
    let polished = polish(&mut folder, &first, SEARCH_WINDOW, &mut folds);
    (first.z, polished.z, polished.transform)
}

/// One folded tile under one transform hypothesis.
#[derive(Clone)]
struct Fold {
    transform: Similarity,
    /// The fold used the whole plane (not just the search window).
    complete: bool,
    z: f64,
    offset: (usize, usize),
    tile: Vec<f32>,
}

/// What every fold of one detection shares.
struct Folder<'a> {
    planner: &'a mut FftPlanner<f32>,
    y: &'a [f32],
    w: usize,
    h: usize,
    pilot_spectrum: &'a [Complex<f32>],
}

impl Folder<'_> {
    /// Resamples the plane to the marked grid under `t`, whitens, folds all tiles into one and
    /// finds the pilot's cyclic offset.
    fn fold(&mut self, t: Similarity, max_side: usize) -> Fold {
        let n = tile::PERIOD;
        let r = plane::resample(self.y, self.w, self.h, t, max_side);
        let white = plane::whiten(&r.data, r.width, r.height);
        let mut sum = vec![0.0f32; n * n];
        let mut count = vec![0u32; n * n];
        let (ox, oy) = r.origin;
        // Fold by absolute marked-grid position so the window's origin keeps the true offset;
        // samples from outside the suspect plane (rotated corners) are left out.
        for (row, line) in white.chunks(r.width).enumerate() {
            let base = ((row + oy) % n) * n;
            let (sum_row, count_row) = (&mut sum[base..][..n], &mut count[base..][..n]);
            let inside = r.inside.as_ref().map(|v| &v[row * r.width..][..r.width]);
            // The tile column walks with the image column (no division per sample).
            let mut i = ox % n;
            for (col, v) in line.iter().enumerate() {
                if inside.is_none_or(|ins| ins[col]) {
                    sum_row[i] += v;
                    count_row[i] += 1;
                }
                i += 1;
                if i == n {
                    i = 0;
                }
            }
        }
        let folded: Vec<f32> = sum
            .iter()
            .zip(&count)
            .map(|(s, &c)| if c > 0 { s / c as f32 } else { 0.0 })
            .collect();
        let mut spec: Vec<Complex<f32>> = folded.iter().map(|&v| Complex::new(v, 0.0)).collect();
        fft2(self.planner, &mut spec, n, n, false);
        for (a, b) in spec.iter_mut().zip(self.pilot_spectrum) {
            *a = a.conj() * b;
        }
        fft2(self.planner, &mut spec, n, n, true);
        let corr: Vec<f64> = spec.iter().map(|c| f64::from(c.re)).collect();
        let mean = corr.iter().sum::<f64>() / corr.len() as f64;
        let var = corr.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / corr.len() as f64;
        let (arg, peak) =
            corr.iter().enumerate().fold(
                (0, f64::MIN),
                |acc, (i, &v)| {
                    if v > acc.1 { (i, v) } else { acc }
                },
            );
        let z = if var > 0.0 {
            (peak - mean) / var.sqrt()
        } else {
            0.0
        };
        Fold {
            transform: t,
            complete: r.complete,
            z,
            offset: (arg % n, arg / n),
            tile: folded,
        }
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

/// Development diagnostics at one known transform (not a detector: nothing here is corrected
/// for hypotheses). See [`diagnose_at`].
#[doc(hidden)]
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// Template grid score at the given transform.
    pub sync_score_at: f64,
    /// The template search's candidates (scale, rotation in degrees, grid score), best first.
    pub candidates: Vec<(f64, f64, f64)>,
    /// Least-squares refinement of the template fit started at the given transform.
    pub refined: Option<(f64, f64)>,
    /// Pilot z of the fold at the given transform (whole decoding region).
    pub fold_z: f64,
    /// Pilot z after the polish from the given transform.
    pub polished_z: f64,
    /// The payload decoded at the given transform, if its check passed.
    pub payload: Option<Payload>,
    /// Raw coded-bit errors against `expected` at the given transform (CODED_BITS if none).
    pub raw_errors: usize,
}

/// Development diagnostics: scores the template, folds, polishes and decodes at the transform
/// (`scale`, `rotation_degrees`) the caller knows to be true, and lists what the template
/// search found, so a miss can be told apart as a synchronisation or a payload failure.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn diagnose_at(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    key: &WatermarkKey,
    scale: f64,
    rotation_degrees: f64,
    expected: Payload,
) -> Result<Diagnosis, ImageMarkError> {
    let Prepared {
        y,
        layout,
        mut planner,
        pilot_spectrum,
    } = prepare(data, width, height, stride, key)?;
    let t = Similarity {
        scale,
        rotation: rotation_degrees.to_radians(),
    };
    let peaks = tile::sync_peaks(key);
    let (sync_score_at, refined) =
        sync::score_transform(&mut planner, &y, width, height, &peaks, t);
    let found = sync::search(&mut planner, &y, width, height, &peaks);
    let candidates = found
        .candidates
        .iter()
        .map(|(c, s)| (c.scale, c.rotation.to_degrees(), *s))
        .collect();
    let mut folder = Folder {
        planner: &mut planner,
        y: &y,
        w: width,
        h: height,
        pilot_spectrum: &pilot_spectrum,
    };
    let fold = folder.fold(t, FOLD_MAX_SIDE);
    let soft = soft_bits(&fold, &layout);
    let d = decode_payload(&soft, key);
    let coded = crate::codec::encode_payload(expected, key);
    let raw_errors = soft
        .iter()
        .zip(&coded)
        .filter(|(s, c)| (**s > 0.0) != (**c > 0.0))
        .count();
    let small = folder.fold(t, SEARCH_WINDOW);
    let mut n = 0;
    let polished = polish(&mut folder, &small, SEARCH_WINDOW, &mut n);
    Ok(Diagnosis {
        sync_score_at,
        candidates,
        refined: refined.map(|r| (r.scale, r.rotation.to_degrees())),
        fold_z: fold.z,
        polished_z: polished.z,
        payload: d.payload,
        raw_errors,
    })
}
