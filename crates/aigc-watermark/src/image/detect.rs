//! The blind detector: scale and rotation from the synchronisation template (see `sync`), then
//! every tile folded into one on the recovered grid, the cyclic offset from an FFT
//! cross-correlation with the key's pilot, despreading and soft decoding.

use super::plane::{self, Similarity};
use super::{ImageMarkError, MIN_DETECT_SIDE, check_plane, fft2, sync, tile, to_f32};
use crate::codec::{CODED_BITS, Decoded, decode_payload, decode_payload_list};
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
/// Decodes on the template's own candidates (each list path tested may pass the 32-bit check by
/// chance with probability 2⁻³²; every one counts in the reported false-positive probability).
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
/// Candidates (by template score) whose scale is scanned when nothing decoded.
const SCANNED: usize = 2;
/// Scale steps scanned either way (one pixel at the search window's edge each: ±6 px is
/// ±3 % on a 384 px image, where the template fit was seen 1–2.5 % off).
const SCAN_STEPS: i32 = 6;
/// A candidate other than the best is decoded only if its pilot score reaches this.
const SECOND_DECODE_Z: f64 = 5.0;
/// The best candidate is decoded at once only from this pilot score or [`DIRECT_DECODE_SCORE`]
/// when it is a rescaled or rotated grid whose decoding region exceeds
/// [`DIRECT_DECODE_MAX_PIXELS`]; below both the polish tries it first and decodes the polished
/// transform. A decode of a large
/// plane at a small scale folds up to 2048² resampled pixels, and doing it before and after the
/// polish was a fifth of the unmarked search. On 300 unmarked images the best candidate had z
/// 4.27 (median), 4.66 (90th percentile), 5.59 at most; on the 50-image corpus (35 attacks)
/// every candidate with a decoding region over [`DIRECT_DECODE_MAX_PIXELS`] that decoded
/// directly had z ≥ 5.4 or a template score ≥ 5.5.
const DIRECT_DECODE_Z: f64 = 4.7;
/// Decoding regions up to this many marked-grid pixels are cheap enough to decode directly
/// whatever the scores (a 1024×768 text image resized to 33 % decoded directly at z 4.05 and
/// was lost when the polish came first).
const DIRECT_DECODE_MAX_PIXELS: usize = 1 << 20;
/// Template score from which the best candidate is decoded at once whatever its pilot score
/// (unmarked: 3.19 at most over 300 images; a marked 1600×900 image after a 50 % downscale and
/// JPEG q50 decoded at z 4.86 with 5.56).
const DIRECT_DECODE_SCORE: f64 = 3.4;
/// Pilot score from which a polished candidate is decoded (unmarked: at most 5.99 over 450
/// polishes of 300 images; corpus decodes after a polish: 6.1–19, and one at 5.29, see
/// [`POLISHED_DECODE_SCORE`]).
const POLISHED_DECODE_Z: f64 = 6.0;
/// A polished candidate with a pilot score from [`POLISHED_DECODE_MIN_Z`] is decoded below
/// [`POLISHED_DECODE_Z`] when its template score reaches this (the corpus decode at 5.29, a
/// 3000×1687 text image at 50 %, had 3.06; 7 of 450 unmarked polishes pass both).
const POLISHED_DECODE_SCORE: f64 = 2.9;
/// See [`POLISHED_DECODE_SCORE`].
const POLISHED_DECODE_MIN_Z: f64 = 5.0;
/// Pilot score the best fold of a scale scan needs before it is polished and decoded. On the
/// corpus, scans that went on to decode had 5.35–19; on 300 unmarked images the best scan fold
/// reached at most 5.5 (4 of 552 scans reached 5.2), ≈ 4.5 typically (the best of 12 folds ×
/// 16 384 offsets), and the polish and decode behind it were half the cost of an unmarked
/// search.
const SCAN_POLISH_MIN_Z: f64 = 5.2;
/// Pilot score a polished scan fold needs before it is decoded (decoded ones: 6.8–19; unmarked
/// polished scan folds: at most 5.64).
const SCAN_DECODE_Z: f64 = 6.0;
/// Paths of the list Viterbi decoder tested against the keyed check per decode (the first is
/// the plain Viterbi path, so nothing that decoded before is lost). On a 14-image development
/// set (JPEG q30, WebP q75, downscale 50 % + JPEG q50) the passes were 22 with 1 path, 26 with
/// 8, 27 with 32, 64 or 256. Every path tested counts as a decode attempt (see
/// [`MAX_ATTEMPTS`]).
const DECODE_LIST: usize = 64;
/// Paths tested per detection at most (2048 × 2⁻³² ≈ 4.8e-7, under the 1e-6 presence target);
/// past it each decode tests the Viterbi path alone, as before the list decoder.
const MAX_ATTEMPTS: usize = 2048;
/// Pilot score of the decoding fold from which a failed decode is read again with the wider
/// despreading filters ([`learned_chips`]). The three passes it gained on the 50-image corpus
/// had fold z 5.9–8.6; the identity fold of an unmarked image is mostly below 5 (the best
/// candidate of 300 unmarked images: median 4.27), so the unmarked path rarely pays for it.
const WIDE_READ_MIN_Z: f64 = 5.0;
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
    /// Payload candidates tested against the keyed check (every path of every list decode).
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

    let mut folder = Folder::new(&mut planner, &y, width, height, &pilot_spectrum);
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
        if search.decodes == FIRST_DECODES || (i > 0 && fold.z < SECOND_DECODE_Z) {
            break;
        }
        // A weak partial fold of a transformed grid is left to the polish (see DIRECT_DECODE_Z);
        // the others fall below SECOND_DECODE_Z, which is higher.
        if fold.z < DIRECT_DECODE_Z
            && *score < DIRECT_DECODE_SCORE
            && folder.decode_pixels(fold.transform) > DIRECT_DECODE_MAX_PIXELS
            && fold.transform != identity
            && options.geometric_search
        {
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
            let worth = polished.z >= POLISHED_DECODE_Z
                || (polished.z >= POLISHED_DECODE_MIN_Z && *score >= POLISHED_DECODE_SCORE);
            if worth && search.decode(&mut folder, &polished, *score, window, &layout, key) {
                break;
            }
        }
    }
    // A template fit 1–2.5 % off in scale (woven textures, small images after a resize) leaves
    // the pilot fold at noise level, so the polish above has no slope to climb (or is skipped):
    // scan the scale around the template's best candidates, then polish and decode the best.
    if search.decoded.is_none() && options.geometric_search {
        let mut by_score: Vec<&(Fold, f64)> = folds
            .iter()
            .filter(|(f, _)| f.transform != identity)
            .collect();
        by_score.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (fold, score) in by_score.into_iter().take(SCANNED) {
            let scanned = scan_scale(&mut folder, fold.transform, &mut search.folds);
            if scanned.z >= SCAN_POLISH_MIN_Z {
                let polished = polish(&mut folder, &scanned, SEARCH_WINDOW, &mut search.folds);
                if polished.z >= SCAN_DECODE_Z
                    && search.decode(&mut folder, &polished, *score, SEARCH_WINDOW, &layout, key)
                {
                    break;
                }
            }
        }
    }
    // The untouched grid is the most common case, but on a heavily compressed image whose
    // centre is flat its fold on the search window can rank below host coincidences (WebP:
    // the full fold decoded with 26 raw errors while the decoded candidate was 13 % off).
    if search.decoded.is_none()
        && !search.identity_decoded
        && let Some((fold, score)) = folds.iter().find(|(f, _)| f.transform == identity)
    {
        search.decode(&mut folder, fold, *score, window, &layout, key);
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
    /// Decode attempts so far: every list path tested against the check.
    attempts: usize,
    /// Decodes so far (one list decode of one fold at one offset each; this is what the
    /// candidate loop limits, as before the list decoder).
    decodes: usize,
    /// The fold with the best pilot score so far, or the one that decoded, with its template
    /// score.
    best: Option<(Fold, f64)>,
    /// The decoded payload, once one passed its check.
    decoded: Option<Decoded>,
    /// The unscaled, unrotated grid was among the decode attempts.
    identity_decoded: bool,
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
        // The decoding fold covers the decoding region and keeps its reliability classes; a
        // refold of a complete fold is the same hypothesis and not counted again.
        let mut fold = if fold.classes.is_some() {
            fold.clone()
        } else {
            self.folds += usize::from(!fold.complete && window != FOLD_MAX_SIDE);
            folder.fold(fold.transform, FOLD_MAX_SIDE)
        };
        let mut d = self.decode_soft(&soft_bits(&fold, layout), key);
        // Wider despreading filters weighted by the pilot ([`learned_chips`]) read what a blur
        // (JPEG, WebP, a resize) spread over neighbouring chips: one more list decode, counted
        // in the attempts but not in the decodes the candidate loop limits, so the search goes
        // on as before. Development set: raw errors −9 % (WebP q75), −6 % (JPEG q30).
        if d.payload.is_none()
            && fold.z >= WIDE_READ_MIN_Z
            && self.attempts < MAX_ATTEMPTS
            && let Some(soft) = learned_soft_bits(&fold, layout)
        {
            let list = DECODE_LIST.min(MAX_ATTEMPTS - self.attempts);
            let (learned, tested) = decode_payload_list(&soft, key, list);
            self.attempts += tested.max(1);
            if learned.payload.is_some() {
                d = learned;
            }
        }
        self.identity_decoded |= fold.transform.scale == 1.0 && fold.transform.rotation == 0.0;
        // Where the plain fold's pilot peak is wrong (text after a brightness lift: clipped
        // paper echoes the mark with the opposite sign and cancels it), the classes taken
        // together may still point at the right offset: one more decode attempt there.
        let offset = match &fold.classes {
            Some(classes) if d.payload.is_none() => folder.class_offset(classes),
            _ => fold.offset,
        };
        if offset != fold.offset {
            let moved = Fold {
                offset,
                ..fold.clone()
            };
            let second = self.decode_soft(&soft_bits(&moved, layout), key);
            if second.payload.is_some() {
                (fold, d) = (moved, second);
            }
        }
        let passed = d.payload.is_some();
        if passed || self.best.as_ref().is_none_or(|(b, _)| fold.z > b.z) {
            self.best = Some((fold, score));
        }
        if passed {
            self.decoded = Some(d);
        }
        passed
    }

    /// Decodes soft bits with the list decoder, counting every path tested as an attempt.
    fn decode_soft(&mut self, soft: &[f32], key: &WatermarkKey) -> Decoded {
        // Past the attempt budget only the plain Viterbi path is tested.
        let list = DECODE_LIST.min(MAX_ATTEMPTS.saturating_sub(self.attempts).max(1));
        let (d, tested) = decode_payload_list(soft, key, list);
        self.attempts += tested.max(1);
        self.decodes += 1;
        d
    }
}

/// The best pilot fold (on the search window) of the scales within ±[`SCAN_STEPS`] steps of
/// `t`, each step moving the window's edge by one pixel (`t` itself excluded: it was folded).
/// Counts its folds into `folds`.
fn scan_scale(folder: &mut Folder<'_>, t: Similarity, folds: &mut usize) -> Fold {
    let side = (folder.w.min(folder.h) as f64 / t.scale).min(SEARCH_WINDOW as f64);
    let step = 1.0 / (side / 2.0).max(1.0);
    let mut best: Option<Fold> = None;
    for k in (-SCAN_STEPS..=SCAN_STEPS).filter(|&k| k != 0) {
        let f = folder.fold(
            Similarity {
                scale: t.scale * (1.0 + f64::from(k) * step),
                rotation: t.rotation,
            },
            SEARCH_WINDOW,
        );
        *folds += 1;
        if best.as_ref().is_none_or(|b| f.z > b.z) {
            best = Some(f);
        }
    }
    // SCAN_STEPS ≥ 1, so at least two scales were folded.
    best.unwrap_or_else(|| folder.fold(t, SEARCH_WINDOW))
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
    let mut folder = Folder::new(&mut planner, &y, w, h, &pilot_spectrum);
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
    /// Per-class sums of the decoding fold (None on the search window).
    classes: Option<ClassFold>,
}

/// The fold of the decoding region split by the samples' reliability class
/// ([`plane::reliability_class`]), so the payload can be read with each class weighted by its
/// own signal-to-noise ratio (maximal-ratio combining) instead of all samples alike: after JPEG
/// or WebP the flat areas keep a faint but clean mark while texture carries block noise, and
/// clipped pixels carry their neighbours' mark with the opposite sign. Only the payload is read
/// this way; the pilot score that decides presence is the plain fold's, so the weights (taken
/// from the pilot chips) cannot inflate it.
#[derive(Clone)]
struct ClassFold {
    /// Sums of whitened samples, position-major: PERIOD² × RELIABILITY_CLASSES (a row of the
    /// image adds to consecutive memory).
    sums: Vec<f32>,
}

impl ClassFold {
    /// The folded tile of class `k` alone.
    fn class(&self, k: usize) -> Vec<f32> {
        let k_all = plane::RELIABILITY_CLASSES;
        self.sums.iter().skip(k).step_by(k_all).copied().collect()
    }

    /// The chip values of the classes combined for the pilot at cyclic `offset`: weights
    /// w = C⁻¹·μ from the pilot chips (sign applied) of every class, μ their means and C their
    /// covariance across classes. Measured on chips, where the decoder reads, so low-pass noise
    /// and leakage between chips count; and the covariance matters because whitening residuals
    /// of neighbouring pixels in different classes (a stroke edge and the paper beside it) are
    /// anti-correlated and cancel in the plain fold, which per-class weights alone would undo.
    /// Returns the chips and the weights; None when the system is singular.
    fn combine(
        &self,
        layout: &tile::ChipLayout,
        offset: (usize, usize),
    ) -> Option<(Vec<f32>, [f64; plane::RELIABILITY_CLASSES])> {
        const K: usize = plane::RELIABILITY_CLASSES;
        let chips: Vec<Vec<f32>> = (0..K)
            .map(|k| tile::despread(&align(&self.class(k), offset)))
            .collect();
        pilot_weighted::<K>(&chips, layout)
    }

    /// The classes' folded tiles summed with weights `w` and aligned at `offset` (despreading
    /// is linear, so its chips are those of [`ClassFold::combine`] with the same weights).
    fn combined_tile(&self, w: &[f64], offset: (usize, usize)) -> Vec<f32> {
        let k_all = plane::RELIABILITY_CLASSES;
        let summed: Vec<f32> = self
            .sums
            .chunks(k_all)
            .map(|v| v.iter().zip(w).map(|(a, &b)| b as f32 * a).sum())
            .collect();
        align(&summed, offset)
    }
}

/// Despreading filters the pilot chooses between: the chip pulse's own [1 2 1] smoothing
/// applied once (the matched filter of the embedded pulse), twice and three times.
const LEARNED_TAPS: usize = 3;

/// Chip values of an aligned tile read by a combination of despreading filters of growing
/// width, weighted w = C⁻¹·μ from the pilot chips as the classes are ([`ClassFold::combine`]):
/// a downscale then JPEG or WebP blurs the pulse, and a wider filter then matches it better.
/// Three weights from 1024 pilot chips cost the payload little noise for the fit. None when
/// the system is singular.
fn learned_chips(aligned: &[f32], layout: &tile::ChipLayout) -> Option<Vec<f32>> {
    let mut smoothed = aligned.to_vec();
    let chips: Vec<Vec<f32>> = (0..LEARNED_TAPS)
        .map(|k| {
            if k > 0 {
                smoothed = tile::smooth_cyclic(&smoothed);
            }
            tile::despread(&smoothed)
        })
        .collect();
    pilot_weighted::<LEARNED_TAPS>(&chips, layout).map(|(combined, _)| combined)
}

/// Maximal-ratio combination of K readings of the same chips: weights w = C⁻¹·μ, where μ is
/// the mean pilot chip of each reading (sign applied) and C the readings' covariance over the
/// pilot chips (so anti-correlated readings are not made to cancel). Returns the combined
/// chips and the weights; None when the system is singular.
fn pilot_weighted<const K: usize>(
    chips: &[Vec<f32>],
    layout: &tile::ChipLayout,
) -> Option<(Vec<f32>, [f64; K])> {
    let m = layout.pilot.len().max(1) as f64;
    let mut mean = [0.0f64; K];
    let mut cov = [[0.0f64; K]; K];
    for &c in &layout.pilot {
        let sign = f64::from(layout.sign[c]);
        let v: [f64; K] = std::array::from_fn(|k| sign * f64::from(chips[k][c]));
        for i in 0..K {
            mean[i] += v[i];
            for j in 0..=i {
                cov[i][j] += v[i] * v[j];
            }
        }
    }
    mean.iter_mut().for_each(|v| *v /= m);
    for i in 0..K {
        for j in 0..=i {
            cov[i][j] = cov[i][j] / m - mean[i] * mean[j];
            cov[j][i] = cov[i][j];
        }
    }
    // A reading with no samples has a zero row: a small ridge keeps the system solvable.
    let ridge = 1e-9
        * (0..K)
            .map(|i| cov[i][i])
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
    (0..K).for_each(|i| cov[i][i] += ridge);
    let w = solve(cov, mean)?;
    let mut combined = vec![0.0f32; tile::CHIPS * tile::CHIPS];
    for (chips, &w) in chips.iter().zip(&w) {
        let w = w as f32;
        combined
            .iter_mut()
            .zip(chips)
            .for_each(|(c, v)| *c += w * v);
    }
    Some((combined, w))
}

/// Solves a·x = b by Gaussian elimination with partial pivoting; None when singular.
fn solve<const K: usize>(mut a: [[f64; K]; K], mut b: [f64; K]) -> Option<[f64; K]> {
    for col in 0..K {
        let pivot = (col..K).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= f64::MIN_POSITIVE {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let (pivot_row, b_pivot) = (&top[col], b[col]);
        for (row, b_row) in rest.iter_mut().zip(&mut b[col + 1..]) {
            let f = row[col] / pivot_row[col];
            row.iter_mut()
                .zip(pivot_row)
                .skip(col)
                .for_each(|(v, p)| *v -= f * p);
            *b_row -= f * b_pivot;
        }
    }
    let mut x = [0.0f64; K];
    for row in (0..K).rev() {
        let tail: f64 = (row + 1..K).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The PERIOD×PERIOD tile `t` cyclically shifted so the pilot found at `offset` sits at (0, 0).
fn align(t: &[f32], offset: (usize, usize)) -> Vec<f32> {
    let n = tile::PERIOD;
    let (dx, dy) = offset;
    let mut aligned = vec![0.0f32; n * n];
    for yy in 0..n {
        for xx in 0..n {
            aligned[yy * n + xx] = t[((yy + n - dy) % n) * n + (xx + n - dx) % n];
        }
    }
    aligned
}

/// What every fold of one detection shares.
struct Folder<'a> {
    planner: &'a mut FftPlanner<f32>,
    y: &'a [f32],
    w: usize,
    h: usize,
    pilot_spectrum: &'a [Complex<f32>],
    /// Every fold computed so far, by (scale bits, rotation bits, side cap): the polish's
    /// pattern search steps back onto points it has folded (a rotation step undone), and a
    /// fold is a pure function of these, so a repeat is served from here (each caller still
    /// counts it as a hypothesis).
    cache: Vec<((u64, u64, usize), Fold)>,
}

impl<'a> Folder<'a> {
    /// A folder of the plane `y` (w×h) with no folds cached yet.
    fn new(
        planner: &'a mut FftPlanner<f32>,
        y: &'a [f32],
        w: usize,
        h: usize,
        pilot_spectrum: &'a [Complex<f32>],
    ) -> Self {
        Folder {
            planner,
            y,
            w,
            h,
            pilot_spectrum,
            cache: Vec::new(),
        }
    }

    /// Marked-grid pixels of the decoding region under `t` (the virtual marked plane, each side
    /// capped at [`FOLD_MAX_SIDE`], as [`plane::resample`] sizes it).
    fn decode_pixels(&self, t: Similarity) -> usize {
        let side = |n: usize| ((n as f64 / t.scale).floor() as usize).clamp(1, FOLD_MAX_SIDE);
        side(self.w) * side(self.h)
    }

    /// The pilot's cross-correlation with a folded tile at every cyclic offset (index
    /// y·PERIOD + x), in standard deviations over the offsets (all 0 for a constant tile).
    fn pilot_scores(&mut self, folded: &[f32]) -> Vec<f64> {
        let n = tile::PERIOD;
        let mut spec: Vec<Complex<f32>> = folded.iter().map(|&v| Complex::new(v, 0.0)).collect();
        fft2(self.planner, &mut spec, n, n, false);
        for (a, b) in spec.iter_mut().zip(self.pilot_spectrum) {
            *a = a.conj() * b;
        }
        fft2(self.planner, &mut spec, n, n, true);
        let corr: Vec<f64> = spec.iter().map(|c| f64::from(c.re)).collect();
        let mean = corr.iter().sum::<f64>() / corr.len() as f64;
        let var = corr.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / corr.len() as f64;
        let inv_sd = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
        corr.iter().map(|v| (v - mean) * inv_sd).collect()
    }

    /// The offset where the reliability classes of `classes` together correlate best with the
    /// pilot: the sum over classes of the squared per-class scores, so classes whose mark comes
    /// with the opposite sign (clipped pixels) add to it instead of cancelling it.
    fn class_offset(&mut self, classes: &ClassFold) -> (usize, usize) {
        let n = tile::PERIOD;
        let mut total = vec![0.0f64; n * n];
        for k in 0..plane::RELIABILITY_CLASSES {
            let scores = self.pilot_scores(&classes.class(k));
            total.iter_mut().zip(&scores).for_each(|(t, z)| *t += z * z);
        }
        let (arg, _) = argmax(&total);
        (arg % n, arg / n)
    }

    /// Resamples the plane to the marked grid under `t`, whitens, folds all tiles into one and
    /// finds the pilot's cyclic offset (or returns the identical fold computed before).
    fn fold(&mut self, t: Similarity, max_side: usize) -> Fold {
        let key = (t.scale.to_bits(), t.rotation.to_bits(), max_side);
        if let Some((_, f)) = self.cache.iter().find(|(k, _)| *k == key) {
            return f.clone();
        }
        let f = self.fold_uncached(t, max_side);
        self.cache.push((key, f.clone()));
        f
    }

    /// [`Folder::fold`] computed.
    fn fold_uncached(&mut self, t: Similarity, max_side: usize) -> Fold {
        let n = tile::PERIOD;
        let r = plane::resample(self.y, self.w, self.h, t, max_side);
        // The decoding fold also sorts its samples by reliability class (see `ClassFold`).
        let (white, labels) = if max_side == FOLD_MAX_SIDE {
            let (white, labels) = plane::whiten_classified(&r.data, r.width, r.height);
            (white, Some(labels))
        } else {
            (
                plane::whiten(&r.data, r.width, r.height, plane::Clipped::Erased),
                None,
            )
        };
        let mut classes = labels.as_ref().map(|_| ClassFold {
            sums: vec![0.0; plane::RELIABILITY_CLASSES * n * n],
        });
        let mut sum = vec![0.0f32; n * n];
        let mut count = vec![0u32; n * n];
        let (ox, oy) = r.origin;
        // Fold by absolute marked-grid position so the window's origin keeps the true offset;
        // samples from outside the suspect plane (rotated corners) are left out.
        for (row, line) in white.chunks(r.width).enumerate() {
            let base = ((row + oy) % n) * n;
            let (sum_row, count_row) = (&mut sum[base..][..n], &mut count[base..][..n]);
            let inside = r.inside.as_ref().map(|v| &v[row * r.width..][..r.width]);
            let label_row = labels.as_ref().map(|v| &v[row * r.width..][..r.width]);
            // The row in runs of whole tile columns: run k adds to tile columns phase..phase+len
            // (slice against slice, no division or wrap per sample). Each tile sample still
            // receives its values in image-column order, so the sums are those of a per-sample
            // walk.
            let (mut col, mut phase) = (0, ox % n);
            while col < line.len() {
                let len = (n - phase).min(line.len() - col);
                let values = &line[col..][..len];
                let sums = &mut sum_row[phase..][..len];
                let counts = &mut count_row[phase..][..len];
                match inside.map(|ins| &ins[col..][..len]) {
                    None => {
                        sums.iter_mut().zip(values).for_each(|(s, &v)| *s += v);
                        counts.iter_mut().for_each(|c| *c += 1);
                    }
                    Some(ins) => {
                        for ((s, c), (&v, &i)) in
                            sums.iter_mut().zip(counts).zip(values.iter().zip(ins))
                        {
                            if i {
                                *s += v;
                                *c += 1;
                            }
                        }
                    }
                }
                if let (Some(c), Some(l)) = (classes.as_mut(), label_row) {
                    for (k, (&v, &label)) in values.iter().zip(&l[col..][..len]).enumerate() {
                        if inside.is_none_or(|ins| ins[col + k]) {
                            c.sums[(base + phase + k) * plane::RELIABILITY_CLASSES
                                + usize::from(label)] += v;
                        }
                    }
                }
                col += len;
                phase = 0;
            }
        }
        let folded: Vec<f32> = sum
            .iter()
            .zip(&count)
            .map(|(s, &c)| if c > 0 { s / c as f32 } else { 0.0 })
            .collect();
        let (arg, z) = argmax(&self.pilot_scores(&folded));
        Fold {
            transform: t,
            complete: r.complete,
            z,
            offset: (arg % n, arg / n),
            tile: folded,
            classes,
        }
    }
}

/// Index and value of the largest element (index 0 and f64::MIN when empty).
fn argmax(v: &[f64]) -> (usize, f64) {
    v.iter().enumerate().fold(
        (0, f64::MIN),
        |acc, (i, &x)| if x > acc.1 { (i, x) } else { acc },
    )
}

/// Soft values of the coded bits from a folded tile aligned at its pilot offset.
fn soft_bits(fold: &Fold, layout: &tile::ChipLayout) -> Vec<f32> {
    let chips = fold
        .classes
        .as_ref()
        .and_then(|c| c.combine(layout, fold.offset))
        .map(|(chips, _)| chips)
        .unwrap_or_else(|| tile::despread(&align(&fold.tile, fold.offset)));
    soft_from_chips(&chips, layout)
}

/// Soft values of the coded bits read with the learned chip filter ([`learned_chips`]) from
/// the classes combined as for [`soft_bits`] (or the plain fold). None when a system is
/// singular.
fn learned_soft_bits(fold: &Fold, layout: &tile::ChipLayout) -> Option<Vec<f32>> {
    let aligned = match fold.classes.as_ref() {
        Some(c) => {
            let (_, w) = c.combine(layout, fold.offset)?;
            c.combined_tile(&w, fold.offset)
        }
        None => align(&fold.tile, fold.offset),
    };
    learned_chips(&aligned, layout).map(|chips| soft_from_chips(&chips, layout))
}

/// Soft values of the coded bits (unit RMS) from 64×64 chip values.
fn soft_from_chips(chips: &[f32], layout: &tile::ChipLayout) -> Vec<f32> {
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
    /// Raw coded-bit errors read with the learned chip filter (CODED_BITS if none).
    pub raw_errors_learned: usize,
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
    let mut folder = Folder::new(&mut planner, &y, width, height, &pilot_spectrum);
    let fold = folder.fold(t, FOLD_MAX_SIDE);
    let soft = soft_bits(&fold, &layout);
    let d = decode_payload(&soft, key);
    let coded = crate::codec::encode_payload(expected, key);
    let errors = |soft: &[f32]| {
        soft.iter()
            .zip(&coded)
            .filter(|(s, c)| (**s > 0.0) != (**c > 0.0))
            .count()
    };
    let raw_errors = errors(&soft);
    let raw_errors_learned = learned_soft_bits(&fold, &layout).map_or(CODED_BITS, |s| errors(&s));
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
        raw_errors_learned,
    })
}

#[cfg(test)]
mod solver_tests {
    use super::{learned_chips, solve, tile};
    use crate::key::{KeyedRng, WatermarkKey};

    /// Sign errors of the payload chips of `chips` against the true chip values.
    fn chip_errors(chips: &[f32], truth: &[f32], layout: &tile::ChipLayout) -> usize {
        layout
            .payload
            .iter()
            .filter(|(c, _)| (chips[*c] > 0.0) != (truth[*c] > 0.0))
            .count()
    }

    #[test]
    fn learned_filter_follows_a_blurred_pulse() {
        let layout = tile::ChipLayout::new(&WatermarkKey::from_bytes([7; 32]));
        let mut rng = KeyedRng::from_seed([8; 32]);
        let coded: Vec<f32> = (0..crate::codec::CODED_BITS)
            .map(|_| if rng.gaussian() > 0.0 { 1.0 } else { -1.0 })
            .collect();
        let truth = layout.chips(Some(&coded));
        let clean = tile::render(&truth);
        // Clean: the learned read gets every chip right.
        let learned = learned_chips(&clean, &layout).expect("regular system");
        assert_eq!(chip_errors(&learned, &truth, &layout), 0);
        // The pulse blurred twice more (a downscale's low-pass) under white noise: the learned
        // combination of wider filters reads fewer chips wrong than the fixed matched filter.
        let blurred = tile::smooth_cyclic(&tile::smooth_cyclic(&clean));
        let noisy: Vec<f32> = blurred
            .iter()
            .map(|v| v + 2.0 * rng.gaussian() as f32)
            .collect();
        let fixed = chip_errors(&tile::despread(&noisy), &truth, &layout);
        let learned = chip_errors(
            &learned_chips(&noisy, &layout).expect("regular system"),
            &truth,
            &layout,
        );
        assert!(learned < fixed, "learned {learned} vs fixed {fixed}");
        // A constant tile carries nothing: no usable filter, or chips that are all zero.
        let flat = learned_chips(&vec![0.0; clean.len()], &layout);
        assert!(flat.is_none_or(|c| c.iter().all(|v| *v == 0.0)));
    }

    #[test]
    fn solve_inverts_a_small_system_and_refuses_a_singular_one() {
        let a = [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]];
        let x = [1.0, -2.0, 0.5];
        let b: [f64; 3] = std::array::from_fn(|i| (0..3).map(|j| a[i][j] * x[j]).sum());
        let got = solve(a, b).expect("regular system");
        assert!(got.iter().zip(&x).all(|(g, e)| (g - e).abs() < 1e-12));
        assert!(solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0]).is_none());
    }
}
