//! The blind detector: presence (sync correlation with its corrected false-positive
//! probability), payload (only when its check passes) and where in the stream the mark is.

use std::collections::VecDeque;
use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use serde::Serialize;

use super::embed::{MASKED_BELOW_DB, hann};
use super::layout::{Layout, SYNC};
use super::{BAND_BINS, BANDS, BLOCK_FRAMES, FIRST_BIN, SUB_OFFSETS, frame_hop};
use crate::codec::{CODED_BITS, Decoded, decode_payload, decode_payload_list};
use crate::key::WatermarkKey;
use crate::payload::Payload;
use crate::stats::false_positive_probability;

/// Step between fine replay-speed hypotheses: over one 400-frame segment a speed error of half
/// a step drifts by a quarter frame at most.
pub const SPEED_STEP: f64 = 0.00125;
/// Step between the coarse speeds that get their own spectral analysis: within ±half a step the
/// marked bands (4 bins wide, up to bin 140) move by at most 0.7 of a bin.
const COARSE_STEP: f64 = 0.01;
/// Largest replay-speed change searched by default (±5 %, pitch and tempo together).
pub const DEFAULT_MAX_SPEED_CHANGE: f64 = 0.05;

/// Detector settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOptions {
    /// Replay-speed hypotheses searched (1.0 = unchanged). The false-positive probability
    /// accounts for all of them; speeds within 0.5 % of each other share one spectral analysis,
    /// so a fine grid costs little more than a coarse one.
    pub speeds: Vec<f64>,
    /// Also search each speed as a tempo-only change (time stretched, pitch kept) and each
    /// coarse speed as a pitch-only change (pitch shifted, duration kept): the hypotheses of
    /// a time-stretch or pitch-shift tool. They reuse the speeds' spectral analyses, so they
    /// cost more folds, not more FFTs; the false-positive probability counts them.
    pub stretch: bool,
    /// Presence is declared when the corrected false-positive probability is at most this.
    pub max_false_positive: f64,
}

impl Default for DetectOptions {
    /// Searches replay speeds within ±5 % ([`DetectOptions::speed_grid`]), and as tempo-only
    /// and pitch-only changes.
    fn default() -> Self {
        Self {
            speeds: Self::speed_grid(DEFAULT_MAX_SPEED_CHANGE),
            stretch: true,
            max_false_positive: 1e-6,
        }
    }
}

impl DetectOptions {
    /// Only the unchanged speed: about 10× faster, for audio known not to be sped up or slowed.
    pub fn exact_speed() -> Self {
        Self {
            speeds: vec![1.0],
            stretch: false,
            ..Self::default()
        }
    }

    /// Replay speeds from `1 - max_change` to `1 + max_change` in steps of [`SPEED_STEP`].
    pub fn speed_grid(max_change: f64) -> Vec<f64> {
        let k = (max_change.clamp(0.0, 0.2) / SPEED_STEP).round() as i64;
        (-k..=k).map(|i| 1.0 + i as f64 * SPEED_STEP).collect()
    }
}

/// What a detection established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectionMode {
    /// The full 64-bit payload decoded and its keyed check passed.
    Payload,
    /// Short-excerpt mode: the mark is present (the sync correlation's corrected false-positive
    /// probability is at most the target) but the payload did not decode. This is what a 5 s
    /// clip usually gives: half a block holds about ten cells per coded chip, too few for the
    /// code, while the sync pattern alone still decides presence with an analytic
    /// false-positive probability. No payload bit is reported in this mode.
    PresenceOnly,
    /// No mark found.
    Absent,
}

/// A stretch of the stream where the mark was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarkedSpan {
    /// Start, seconds from the beginning of the stream.
    pub start_seconds: f64,
    /// End, seconds from the beginning of the stream.
    pub end_seconds: f64,
}

/// The detector's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioDetection {
    /// A mark is present: the corrected false-positive probability is at most the target, or
    /// a payload passed its keyed check.
    pub present: bool,
    /// Normalised correlation of the sync pattern at the best hypothesis (standard normal on
    /// unmarked audio).
    pub z: f64,
    /// Hypotheses searched (speeds × eighth-frame phases × segments).
    pub hypotheses: f64,
    /// `P(best z of unmarked audio ≥ z)`, corrected for every hypothesis.
    pub false_positive_probability: f64,
    /// The payload, only when its keyed check passed.
    pub payload: Option<Payload>,
    /// Coded chips whose sign the code corrected (bit errors before correction), when decoded.
    pub bit_errors: Option<usize>,
    /// Coded chips per codeword.
    pub chips: usize,
    /// Time factor of the best hypothesis (replay speed, or the tempo of a time stretch).
    pub speed: f64,
    /// Frequency factor of the best hypothesis, in 1 % steps (within 0.5 % of `speed` for a
    /// replay-speed change, 1 for a tempo-only stretch, the pitch ratio for a pitch shift).
    pub pitch: f64,
    /// Where the mark was found (filled by the second pass of [`super::detect_file`]).
    pub span: Option<MarkedSpan>,
    /// Seconds of audio analysed.
    pub seconds: f64,
    /// Segments (9.3 s each, the last one may be shorter) scored.
    pub segments: usize,
}

impl AudioDetection {
    /// Which mode the verdict is in: the full payload, presence only (the short-excerpt mode,
    /// chosen automatically when the payload does not decode), or nothing.
    pub fn mode(&self) -> DetectionMode {
        if self.payload.is_some() {
            DetectionMode::Payload
        } else if self.present {
            DetectionMode::PresenceOnly
        } else {
            DetectionMode::Absent
        }
    }
}

/// Frames quieter than this mean square (−80 dBFS) are skipped.
const DETECT_GATE_MS: f32 = 1e-8;
/// A cell value is clipped to ±this (log units) so a single outlier cannot dominate.
const CLIP: f32 = 2.5;
/// Added to a frame's mean squared value before weighting by its inverse, so near-constant
/// frames cannot dominate (log units squared).
const RELIABILITY_FLOOR: f32 = 0.02;
/// Weight of the newest analysis frame in the running band statistics (~1 s).
const BAND_NOISE_WEIGHT: f32 = 1.0 / (43.0 * SUB_STEPS as f32);
/// Added to a band's squared value in its running noise share, so a band that is nearly
/// constant for a while cannot take an unbounded weight (log units squared). Small enough that
/// a steady partial, whose only change is the mark itself, still outweighs the bands at the
/// quantisation floor by two to three orders of magnitude (tones and chords after a gain change
/// and a second rounding; 0.1 × [`RELIABILITY_FLOOR`] capped that ratio near 150).
const BAND_NOISE_FLOOR: f32 = 0.01 * RELIABILITY_FLOOR;
/// Largest adjacent-band correlation used for the prediction from neighbouring bands.
const MAX_BAND_CORR: f32 = 0.95;
/// The floor added to a band's squared value in its running noise share when the band lies
/// more than [`MASKED_BELOW_DB`] below its frame's strongest band (log units squared). There
/// the embedder changes the band by up to half its amplitude, so an intact mark alone varies
/// the value by ~0.1 or more; a weak band steadier than that has lost its mark (what a codec
/// leaves of a tone's spill, or the rounding products of a steady tone) and must not take the
/// weight of a partial. Measured (tonal clips × 2 keys, MP3 VBR V5): 7 → 12 of 14 with the
/// level-gated estimates below.
const WEAK_BAND_FLOOR: f32 = 0.0125;
/// A band is read against (common change, neighbour prediction) only the bands at most this
/// far (amplitude dB) below it. A band much weaker than a partial's next to it holds the
/// partial's spill, in which the partial's small mark is large relative to the weak band's
/// level: reading the partial against it removed or inverted the partial's own mark (tone-440
/// after a compressor: the partial's band went from sync z +9.4 to −6).
const NEAR_DB: f32 = 10.0;
/// Half-log power (the band values' unit) to amplitude dB.
const LOG_TO_DB: f32 = 20.0 / std::f32::consts::LN_10;

/// Analysis frames per frame (the analysis hop is an eighth of a frame: with a quarter, an excerpt
/// cut between two offsets lost up to half of a tonal clip's sync correlation).
const SUB_STEPS: usize = SUB_OFFSETS;
/// Rows of a folded block: one per eighth of a frame.
const ROWS: usize = BLOCK_FRAMES * SUB_STEPS;
/// Analysis frames kept to form a value: the frame and two whole frames on each side.
const RING: usize = 4 * SUB_STEPS + 1;
/// A segment shorter than this (frames) at the end of the stream is not scored.
const MIN_SEGMENT_FRAMES: usize = 40;
/// Candidates (speed, phase) kept per segment for decoding, from the replay-speed folds and as
/// many again from the stretch folds.
const CANDIDATES: usize = 3;
/// Whole-stream hypotheses (coherent sums) the finish decodes: as many as one segment keeps.
const FINAL_CANDIDATES: usize = 2 * CANDIDATES;
/// Paths of the list Viterbi decoder tested against the keyed check in the whole-stream decodes
/// (not the per-segment ones). Each path is one more chance for a random payload to pass the
/// 32-bit check, so the finish adds at most (2 × FINAL_CANDIDATES + 2) × 64 × 2⁻³² ≈ 2.1e-7
/// per stream. On the 68-run probe (2 keys × 34 clips) 64 paths against 1: MP3 64k 65 → 68,
/// Vorbis 64k 46 → 52, MP3 48k 49 → 52, AAC 48k 57 → 59, Opus 32k 62 → 67; 256 paths gained
/// only 1–2 more per row for 4× the false-payload chance.
const FINAL_LIST_PATHS: usize = 64;
/// A segment whose own corrected false-positive probability is below this counts as marked
/// (for the soft combination and the spans).
const SEGMENT_MARKED_FPP: f64 = 0.01;

/// One spectral analysis: a coarse speed, eighth-frame hop, band values per analysis frame.
struct Analyzer {
    hop: f64,
    n: usize,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    next: u64,
    /// Band log magnitudes of the last [`RING`] analysis frames (`None` = silent).
    ring: VecDeque<Option<[f32; BANDS]>>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
    /// Per band: running mean of the band's squared value relative to its frame's spread (how
    /// noisy the band is compared with the others).
    band_noise: [f32; BANDS],
    /// Running sums of the adjacent-band products and squares of the values.
    band_corr: (f32, f32),
    /// Per band: running mean of its level (half-log power; `None` before the first frame), for
    /// the level gate of [`remove_common`] and the neighbour prediction.
    band_level: Option<[f32; BANDS]>,
    /// Per band: the running fit that predicts a frame's level from the frames one to two
    /// frames away ([`TimeFit`]).
    time_fit: Vec<TimeFit>,
    /// Values formed with every tap present (the fits learn every [`TIME_LEARN_EVERY`] and are
    /// solved again every [`TIME_REFIT_EVERY`] of them).
    values: u64,
}

/// Offsets (analysis hops of an eighth of a frame) of the levels a band's level is predicted
/// from: every offset from one to two whole frames, before and after. None of them overlaps the
/// frame's own analysis window, so a neighbour holds other cells' marks, never its own.
const TIME_TAPS: [usize; 9] = [8, 9, 10, 11, 12, 13, 14, 15, 16];
const NTAPS: usize = TIME_TAPS.len();
/// Ridge of the time fit (log units squared): a band whose neighbours vary less than this (a
/// steady tone, whose only change is the mark) keeps close to the plain mean of its
/// neighbours.
const TIME_RIDGE: f32 = 1e-3;
/// The time fit's moments are updated on every this many values (the analysis hop is an
/// eighth of a frame, so neighbouring values overlap by 7/8 and add little to a ~1 s mean; the
/// update was a sixth of the detector's time on every value) and solved every
/// [`TIME_REFIT_EVERY`].
const TIME_LEARN_EVERY: u64 = 4;
const TIME_REFIT_EVERY: u64 = 4 * SUB_STEPS as u64;
/// A band uses the time fit when the fit's running squared residual is below this share of the
/// fixed difference's (see [`TimeFit::residual`]).
const FIT_POWER_SHARE: f32 = 0.5;

/// Predicts a band's level in an analysis frame from the same band's levels one to two whole
/// frames before and after it (the symmetric sums `s_k` at [`TIME_TAPS`]): the value is
/// `u₀ − Σ β_k u_k`, with `u` the levels and sums less the band's running mean, and `β` the
/// running least-squares fit of `u₀` on the `u_k` (ridge towards equal weights, the plain
/// local mean that this replaced).
///
/// Why: partials that share a band beat. chord-cmaj holds E4 and G4 (62 Hz apart, 1.45 bins)
/// in band 0, the only marked band with its energy (C4 lies below 344 Hz), and that band's
/// level swings from frame to frame: the fixed difference against the four neighbours one and
/// two frames away had a spread of 0.22 (half-log units) on the unmarked clip, against 0.0000
/// for a lone tone and 0.012 for chord-am, more than the 3–9 % the mark moves the band. The
/// swing is periodic, so the levels at the other offsets predict it (least squares over 4 s of
/// the unmarked clip: residual spread 0.0002 with these nine offsets, 0.011 with only the one-
/// and two-frame ones). The neighbours' marks are independent of the centre's, so the fit
/// cannot remove the mark; it adds the neighbours' marks weighted by `β`, which the fit, run on
/// the marked signal, already counts as part of what it minimises. On noise-like bands the
/// fit goes to `β ≈ 0` (the running mean alone), on slowly moving ones towards the local mean.
/// Depends on the signal only, never on the key.
#[derive(Debug, Clone)]
struct TimeFit {
    /// Running mean of the band's level (`None` before its first value).
    mean: Option<f32>,
    /// Running `E[u_j u_k]` (upper triangle, row-major) and `E[u₀ u_k]`.
    cov: [f32; NTAPS * (NTAPS + 1) / 2],
    cross: [f32; NTAPS],
    /// The current fit.
    beta: [f32; NTAPS],
    /// Running mean squared residual of the fit and of the fixed difference (the level less
    /// the plain mean of the frames one and two away): which of the two the band uses.
    fit_power: f32,
    fixed_power: f32,
}

impl Default for TimeFit {
    fn default() -> Self {
        Self {
            mean: None,
            cov: [0.0; NTAPS * (NTAPS + 1) / 2],
            cross: [0.0; NTAPS],
            beta: [0.5 / NTAPS as f32; NTAPS],
            fit_power: 0.0,
            fixed_power: 0.0,
        }
    }
}

/// A band's level less the plain mean of the same band one and two frames before and after
/// (the tap sums at 8 and 16 eighth-frame hops): the time difference for bands the fit does
/// not help.
fn fixed_difference(level: f32, sums: &[f32; NTAPS]) -> f32 {
    level - 0.25 * (sums[0] + sums[NTAPS - 1])
}

impl TimeFit {
    /// The centre's `level` less its prediction from the tap sums `sums`: the fit's where it
    /// has been clearly better, else the fixed difference's; with `learn`, the running moments
    /// and residual powers are updated after use (a value never predicts itself).
    fn residual(&mut self, level: f32, sums: &[f32; NTAPS], learn: bool) -> f32 {
        let mean = *self.mean.get_or_insert(level);
        let u0 = level - mean;
        let u = sums.map(|s| s - 2.0 * mean);
        let fitted = u0 - self.beta.iter().zip(&u).map(|(b, v)| b * v).sum::<f32>();
        let fixed = fixed_difference(level, sums);
        // The fit only where it leaves clearly less of the host than the fixed difference: a
        // steady band whose partials beat (400× less there). On speech and music the fit,
        // learnt over ~1 s from strongly overlapping frames, gained little and weighed the
        // neighbours' marks in: their z fell by 10–20 % under V5, and MP3 32k lost 8 of 68
        // runs on the probe with the fit everywhere.
        let value = if self.fit_power < FIT_POWER_SHARE * self.fixed_power {
            fitted
        } else {
            fixed
        };
        if !learn {
            return value;
        }
        let w = BAND_NOISE_WEIGHT * TIME_LEARN_EVERY as f32;
        self.fit_power += w * (fitted * fitted - self.fit_power);
        self.fixed_power += w * (fixed * fixed - self.fixed_power);
        let mut t = 0;
        for j in 0..NTAPS {
            self.cross[j] += w * (u0 * u[j] - self.cross[j]);
            for k in j..NTAPS {
                self.cov[t] += w * (u[j] * u[k] - self.cov[t]);
                t += 1;
            }
        }
        self.mean = Some(mean + w * (level - mean));
        value
    }

    /// Solves the ridge normal equations for `β` (Cholesky; the ridge keeps the matrix
    /// positive definite). Keeps the previous fit if rounding made it indefinite.
    // Index loops: the triangular factorisation reads rows and columns of the same matrix.
    #[allow(clippy::needless_range_loop)]
    fn refit(&mut self) {
        let prior = 0.5 / NTAPS as f32;
        let mut l = [[0.0f32; NTAPS]; NTAPS];
        let mut t = 0;
        for j in 0..NTAPS {
            for k in j..NTAPS {
                l[k][j] = self.cov[t] + if j == k { TIME_RIDGE } else { 0.0 };
                t += 1;
            }
        }
        for j in 0..NTAPS {
            let d = l[j][j] - (0..j).map(|k| l[j][k] * l[j][k]).sum::<f32>();
            if d <= 0.0 {
                return;
            }
            let d = d.sqrt();
            l[j][j] = d;
            for i in j + 1..NTAPS {
                l[i][j] = (l[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f32>()) / d;
            }
        }
        let mut y = [0.0f32; NTAPS];
        for i in 0..NTAPS {
            let r = self.cross[i] + TIME_RIDGE * prior;
            y[i] = (r - (0..i).map(|k| l[i][k] * y[k]).sum::<f32>()) / l[i][i];
        }
        for i in (0..NTAPS).rev() {
            y[i] = (y[i] - (i + 1..NTAPS).map(|k| l[k][i] * y[k]).sum::<f32>()) / l[i][i];
        }
        if y.iter().all(|v| v.is_finite()) {
            self.beta = y;
        }
    }
}

impl Analyzer {
    fn new(planner: &mut FftPlanner<f32>, base_hop: f64, speed: f64) -> Self {
        let frame = base_hop / speed;
        let n = (frame.round() as usize).max(8);
        let fft = planner.plan_fft_forward(n);
        let scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        Self {
            hop: frame / SUB_STEPS as f64,
            n,
            fft,
            window: hann(n),
            next: 0,
            ring: VecDeque::with_capacity(RING),
            buf: vec![Complex32::default(); n],
            scratch,
            band_noise: [1.0; BANDS],
            band_corr: (0.0, 0.0),
            band_level: None,
            time_fit: vec![TimeFit::default(); BANDS],
            values: 0,
        }
    }

    fn start(&self, q: u64) -> u64 {
        (q as f64 * self.hop).round() as u64
    }

    /// Start of the value the next analysis frame completes (`None` before the ring fills).
    fn next_value_start(&self) -> Option<u64> {
        let c = (2 * SUB_STEPS) as u64;
        (self.next >= 2 * c).then(|| self.start(self.next - c))
    }

    /// The first sample still needed.
    fn needed_from(&self) -> u64 {
        self.start(self.next)
    }

    /// Analyses every complete analysis frame in `mono` (which starts at absolute sample `base`)
    /// and calls `on_value(start_sample, values, far_below)` for each frame whose neighbours are
    /// known.
    /// Stops before a value that would start at or after `value_before`.
    fn advance(
        &mut self,
        mono: &[f32],
        base: u64,
        value_before: u64,
        mut on_value: impl FnMut(u64, &[f32; BANDS], &[bool; BANDS]),
    ) {
        let have = base + mono.len() as u64;
        loop {
            if self.next_value_start().is_some_and(|s| s >= value_before) {
                break;
            }
            let start = self.start(self.next);
            if start < base || start + self.n as u64 > have {
                break;
            }
            let from = (start - base) as usize;
            let seg = &mono[from..from + self.n];
            let logs = self.band_logs(seg);
            if self.ring.len() == RING {
                self.ring.pop_front();
            }
            self.ring.push_back(logs);
            if self.ring.len() == RING {
                let c = 2 * SUB_STEPS;
                if let Some(m) = &self.ring[c] {
                    // The tap sums. A silent frame one or two frames away leaves the band
                    // values out, as before; one at another tap leaves the fit out (the fixed
                    // difference needs only those two).
                    let mut sums = [[0.0f32; NTAPS]; BANDS];
                    let (mut complete, mut ends) = (true, true);
                    for (t, &k) in TIME_TAPS.iter().enumerate() {
                        let (Some(p), Some(q)) = (&self.ring[c - k], &self.ring[c + k]) else {
                            complete = false;
                            if t == 0 || t == NTAPS - 1 {
                                ends = false;
                                break;
                            }
                            continue;
                        };
                        for (s, (p, q)) in sums.iter_mut().zip(p.iter().zip(q)) {
                            s[t] = p + q;
                        }
                    }
                    if !ends {
                        self.next += 1;
                        continue;
                    }
                    let mut x = [0.0f32; BANDS];
                    let refit = complete && self.values.is_multiple_of(TIME_REFIT_EVERY);
                    let learn = self.values.is_multiple_of(TIME_LEARN_EVERY);
                    for ((v, fit), (level, s)) in x
                        .iter_mut()
                        .zip(self.time_fit.iter_mut())
                        .zip(m.iter().zip(&sums))
                    {
                        if refit {
                            fit.refit();
                        }
                        *v = if complete {
                            fit.residual(*level, s, learn)
                        } else {
                            fixed_difference(*level, s)
                        };
                    }
                    if complete {
                        self.values += 1;
                    }
                    let far = far_below(m);
                    let levels = *m;
                    self.whiten_and_weight(&mut x, &levels);
                    let centre = self.next - c as u64;
                    on_value(self.start(centre), &x, &far);
                }
            }
            self.next += 1;
        }
    }

    /// Turns a frame's time-differenced band values (each band's level less its prediction
    /// from the same band one to two frames away, [`TimeFit`]) into weighted values whose host part is as
    /// close to independent, equal-variance noise as the running statistics allow:
    ///
    /// 1. the frame's common change (loudness) is removed: from each band, the mean of the
    ///    other bands not far below it, weighted by their steadiness (see [`remove_common`]);
    /// 2. the host's change is smooth across bands for speech (formant moves, broadband onsets)
    ///    and independent for noise-like material: with the adjacent-band correlation `ρ`
    ///    tracked over ~1 s, the interpolation from the two neighbouring bands
    ///    (`2ρ/(1+ρ²)` × their mean, the best linear predictor for a first-order process) is
    ///    subtracted; a neighbour more than [`NEAR_DB`] below the band is left out. The mark's
    ///    keyed signs are independent between bands, so it is kept;
    /// 3. each value is divided by its expected variance: the frame's spread (onsets are noisy
    ///    everywhere) times the band's running share of it (bands at the noise or quantisation
    ///    floor of tonal material are noisy all the time, stable partials hardly at all; a weak
    ///    band is never counted steadier than its own mark, [`WEAK_BAND_FLOOR`]). All
    ///    estimates are relative, so a gain change of the whole file changes nothing.
    ///
    /// `levels` are the frame's band levels (before time differencing). None of this depends on
    /// the key, so the sync correlation stays standard normal on unmarked audio.
    fn whiten_and_weight(&mut self, x: &mut [f32; BANDS], levels: &[f32; BANDS]) {
        // The common part is estimated from the steady bands (weights: the inverse of each
        // band's running noise share), see `remove_common`.
        let weights = self.band_noise.map(|r| 1.0 / r.max(1e-6));
        // The gate compares running levels: one frame's band levels scatter by several dB on
        // noise-like material, whose bands should all count.
        let mean_levels = match &mut self.band_level {
            Some(mean) => {
                for (m, l) in mean.iter_mut().zip(levels) {
                    *m += BAND_NOISE_WEIGHT * (l - *m);
                }
                *mean
            }
            None => *self.band_level.insert(*levels),
        };
        let near = NEAR_DB / LOG_TO_DB;
        remove_common(x, &weights, &mean_levels, near);
        let den: f32 = x.iter().map(|v| v * v).sum();
        let num: f32 = x.windows(2).map(|w| w[0] * w[1]).sum();
        let (cn, cd) = &mut self.band_corr;
        *cn += BAND_NOISE_WEIGHT * (num - *cn);
        *cd += BAND_NOISE_WEIGHT * (den - *cd);
        let rho = if *cd > 0.0 {
            (*cn / *cd).clamp(0.0, MAX_BAND_CORR)
        } else {
            0.0
        };
        let c = 2.0 * rho / (1.0 + rho * rho);
        let src = *x;
        for (b, v) in x.iter_mut().enumerate() {
            let usable = |j: usize| mean_levels[j] > mean_levels[b] - near;
            let left = b.checked_sub(1).filter(|&l| usable(l));
            let right = src.get(b + 1).filter(|_| b + 1 < BANDS && usable(b + 1));
            let neighbours = match (left, right) {
                (Some(l), Some(r)) => 0.5 * (src[l] + r),
                (Some(l), None) => src[l],
                (None, Some(r)) => *r,
                (None, None) => 0.0,
            };
            *v = src[b] - c * neighbours;
        }
        remove_common(x, &weights, &mean_levels, near);
        for v in x.iter_mut() {
            *v = v.clamp(-CLIP, CLIP);
        }
        let spread = x.iter().map(|v| v * v).sum::<f32>() / BANDS as f32 + RELIABILITY_FLOOR;
        let top = levels.iter().copied().fold(f32::MIN, f32::max);
        let weak = top - MASKED_BELOW_DB / LOG_TO_DB;
        for ((v, r), level) in x.iter_mut().zip(self.band_noise.iter_mut()).zip(levels) {
            let raw = *v;
            *v = raw / (spread * *r).max(1e-6);
            let floor = if *level < weak {
                WEAK_BAND_FLOOR
            } else {
                BAND_NOISE_FLOOR
            };
            // Updated after use: the band's weight does not depend on its own value.
            *r += BAND_NOISE_WEIGHT * ((raw * raw + floor) / spread - *r);
        }
    }

    /// Log magnitude of each band (half the log of its summed power), or `None` for a (near)
    /// silent frame. The log of the sum, not the mean of the bins' logs: the mark scales every
    /// bin of a band alike, so both move by the same amount, but on noise-like hosts the log of a
    /// sum of four bins varies about 30 % less (ψ'(4) = 0.28 against ψ'(1)/4 = 0.41), and a
    /// weak bin beside a partial no longer adds its own noise.
    fn band_logs(&mut self, seg: &[f32]) -> Option<[f32; BANDS]> {
        let ms = seg.iter().map(|s| s * s).sum::<f32>() / self.n as f32;
        if ms < DETECT_GATE_MS {
            return None;
        }
        for ((b, s), w) in self.buf.iter_mut().zip(seg).zip(&self.window) {
            *b = Complex32::new(s * w, 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buf, &mut self.scratch);
        let floor = ms * self.n as f32 * 1e-9 * BAND_BINS as f32;
        let top = self.n / 2;
        let mut l = [0.0f32; BANDS];
        for (band, v) in l.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for i in 0..BAND_BINS {
                let k = FIRST_BIN + band * BAND_BINS + i;
                if k < top {
                    sum += self.buf[k].norm_sqr();
                }
            }
            *v = 0.5 * (sum + floor).ln();
        }
        Some(l)
    }
}

/// Removes a frame's common change from each band value: from band `b`, the mean of the other
/// bands whose level (`levels`, half-log powers) is above `levels[b] − near`, weighted by
/// `weights` (the inverse of each band's running noise share). A band with no such other band
/// is left as it is.
///
/// A limiter, compressor or gain change moves every band of a frame alike. The plain mean over
/// all 33 bands estimated that change mostly from the noisy bands, and on tones and chords (one
/// to a few steady partials above a quantisation or distortion floor) it carried the floor's
/// noise into the partials' bands, which after such an attack are the only ones that keep the
/// mark (as a change of one partial against another). Weighted by steadiness, the common change
/// comes from the partials; leaving the band itself out keeps a dominant band from removing its
/// own mark. Leaving out the bands far below it keeps a partial from being read against its own
/// spill (see [`NEAR_DB`]): a lone partial keeps its time-differenced value. With equal weights
/// and `near` infinite this is the plain mean removal scaled by `n / (n − 1)`. Depends on the
/// signal only, never on the key.
fn remove_common(x: &mut [f32; BANDS], weights: &[f32; BANDS], levels: &[f32; BANDS], near: f32) {
    // Bands by falling level: the bands above `levels[b] − near` are a prefix of that order,
    // which only grows as `b` falls, so running sums give every band's mean in one pass.
    let mut order: [usize; BANDS] = std::array::from_fn(|b| b);
    order.sort_unstable_by(|&a, &b| levels[b].total_cmp(&levels[a]));
    let src = *x;
    // f64 sums: a steady band's weight can be 10⁶ times another's.
    let (mut end, mut total_weight, mut total) = (0usize, 0.0f64, 0.0f64);
    for &b in &order {
        while end < BANDS && levels[order[end]] > levels[b] - near {
            let j = order[end];
            total_weight += f64::from(weights[j]);
            total += f64::from(weights[j]) * f64::from(src[j]);
            end += 1;
        }
        // `b` itself is in the prefix (its level is above its own minus `near`).
        let (w, s) = (f64::from(weights[b]), f64::from(src[b]));
        let rest = total_weight - w;
        if rest > 1e-12 {
            x[b] = (s - (total - s * w) / rest) as f32;
        }
    }
}

/// A band this far below the frame's strongest band (amplitude dB) counts for
/// [`FAR_BELOW_WEIGHT`] of its value in the second set of soft chips.
const FAR_BELOW_DB: f32 = 40.0;
/// Weight of a band more than [`FAR_BELOW_DB`] below the frame's strongest band in the second
/// set of soft chips.
const FAR_BELOW_WEIGHT: f32 = 0.3;

/// Which bands of a frame (half-log band powers) lie more than [`FAR_BELOW_DB`] below its
/// strongest band. Perceptual codecs keep the mark near the top of a frame's spectrum and drop
/// or noise-fill it far below: measured non-blind on speech (marked against original, both
/// through the same codec), the correlation of the mark before and after MP3 48k / AAC 48k /
/// Vorbis 64k is 0.15–0.45 for bands 10–30 dB below the frame's top and 0.03–0.1 beyond 40 dB,
/// and such cells make up about half of a loud speech frame. Unattacked, and for tones whose
/// mark lives in the weak bands, they carry the mark as well as any: so the detector decodes
/// twice, with every cell at full weight and with these cells weighted down. Depends on the
/// signal only, never on the key.
fn far_below(logs: &[f32; BANDS]) -> [bool; BANDS] {
    let top = logs.iter().copied().fold(f32::MIN, f32::max);
    // Half-log power to amplitude dB.
    let to_db = 20.0 / std::f32::consts::LN_10;
    logs.map(|l| (top - l) * to_db > FAR_BELOW_DB)
}

/// Keeps a mono mix of the stream from the earliest sample any analysis still needs.
struct MonoBuffer {
    channels: usize,
    samples: Vec<f32>,
    base: u64,
    total: u64,
}

impl MonoBuffer {
    fn new(channels: usize) -> Self {
        Self {
            channels: channels.max(1),
            samples: Vec::new(),
            base: 0,
            total: 0,
        }
    }

    fn push(&mut self, block: &[f32]) {
        let ch = self.channels;
        let inv = 1.0 / ch as f32;
        for frame in block.chunks_exact(ch) {
            self.samples.push(frame.iter().sum::<f32>() * inv);
        }
        self.total += (block.len() / ch) as u64;
    }

    fn drop_before(&mut self, keep_from: u64) {
        let k = keep_from
            .saturating_sub(self.base)
            .min(self.samples.len() as u64) as usize;
        self.samples.drain(..k);
        self.base += k as u64;
    }
}

/// The best hypothesis found by [`AudioDetector`], for [`AudioLocator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hypothesis {
    /// Time factor (replay speed or tempo).
    pub speed: f64,
    /// Frequency factor of the spectral analysis (the pitch ratio).
    pub pitch: f64,
    /// Eighth-frame row of the folded block that holds block frame 0.
    pub phase: usize,
}

/// The eighth-frame row of the folded block for the analysis frame starting at `start`
/// (samples of the stream) under replay speed `speed`.
fn row_of(start: u64, speed: f64, base_hop: f64) -> usize {
    let pos = (start as f64 * speed * SUB_STEPS as f64 / base_hop).round() as u64;
    (pos % ROWS as u64) as usize
}

/// The row that holds block frame `frame` at `phase`.
fn row_at(frame: usize, phase: usize) -> usize {
    (frame * SUB_STEPS + phase) % ROWS
}

/// A sync cell: block frame, band, sign.
#[derive(Debug, Clone, Copy)]
struct SyncCell {
    frame: usize,
    band: usize,
    sign: f32,
}

/// One (speed, phase) candidate of a segment with its soft chips.
#[derive(Debug, Clone)]
struct Candidate {
    z: f64,
    /// Index of the fold (fine speed) in [`AudioDetector::folds`].
    fold: usize,
    speed: f64,
    pitch: f64,
    phase: usize,
    soft: Vec<f32>,
}

/// Raw soft chips of one (speed, phase) hypothesis summed over every segment where it was a
/// candidate: the fold of the whole stream at that hypothesis, so a trailing piece too short
/// to be scored alone (the last 0.7 s of a 10 s excerpt) still adds its cells.
#[derive(Debug, Clone)]
struct Coherent {
    fold: usize,
    phase: usize,
    /// Sum of the segments' sync `z` (ranks the hypotheses).
    weight: f64,
    soft: Vec<f32>,
}

/// Hypotheses whose coherent sums are kept (the weakest is dropped beyond this).
const COHERENT_KEPT: usize = 8;

/// What one segment showed.
#[derive(Debug, Clone)]
struct SegmentResult {
    hypotheses: f64,
    /// Best first.
    candidates: Vec<Candidate>,
}

/// Per fine speed: the values of the current segment folded modulo the block
/// (`band * ROWS + row`).
struct SpeedFold {
    /// Time factor: how stream samples map to block rows.
    speed: f64,
    /// The spectral analysis (one per coarse frequency factor) the fold reads.
    analyzer: usize,
    /// That analysis' frequency factor.
    pitch: f64,
    fold: Vec<f32>,
    /// Per cell: the last value folded there was far below its frame's top ([`far_below`]).
    far: Vec<bool>,
}

/// Running summary of the scored segments (fixed size, whatever the stream's length).
#[derive(Debug, Clone, Default)]
struct Summary {
    segments: usize,
    hypotheses: f64,
    best: Option<(f64, Hypothesis)>,
    decoded: Option<Decoded>,
    /// Soft chips of the segments that count as marked.
    soft_marked: Vec<f32>,
    marked_segments: usize,
    /// Soft chips of every segment.
    soft_all: Vec<f32>,
    /// Coherent sums of the strongest hypotheses, best first.
    coherent: Vec<Coherent>,
    best_bit_errors: Option<usize>,
}

/// Streaming presence detector and payload decoder: feed interleaved blocks to
/// [`AudioDetector::push`], then [`AudioDetector::finish`]. Memory is fixed (one folded block per
/// speed hypothesis), whatever the stream's length.
pub struct AudioDetector {
    key: WatermarkKey,
    sample_rate: u32,
    base_hop: f64,
    correlator: SyncCorrelator,
    /// Per cell `frame * BANDS + band`: the chip and spreading sign, or `None` for sync.
    data: Vec<Option<(u16, f32)>>,
    analyzers: Vec<Analyzer>,
    /// The replay-speed folds first, then the tempo-only and pitch-only ones.
    folds: Vec<SpeedFold>,
    /// How many of [`Self::folds`] are replay-speed folds.
    replay_folds: usize,
    /// Segment the folds currently hold, and analysis values folded into it.
    segment: u64,
    segment_values: usize,
    mono: MonoBuffer,
    options: DetectOptions,
    summary: Summary,
}

impl std::fmt::Debug for AudioDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDetector")
            .field("sample_rate", &self.sample_rate)
            .field("analyzers", &self.analyzers.len())
            .field("speeds", &self.folds.len())
            .finish()
    }
}

/// The sync cells and the data cells of `layout`.
fn split_layout(layout: &Layout) -> (Vec<SyncCell>, Vec<Option<(u16, f32)>>) {
    let mut sync = Vec::with_capacity(layout.sync.len());
    let mut data = Vec::with_capacity(layout.cells.len());
    for (i, c) in layout.cells.iter().enumerate() {
        if c.chip == SYNC {
            sync.push(SyncCell {
                frame: i / BANDS,
                band: i % BANDS,
                sign: c.sign,
            });
            data.push(None);
        } else {
            data.push(Some((c.chip, c.sign)));
        }
    }
    (sync, data)
}

/// The sync pattern in the frequency domain, for scoring every phase of a fold at once.
struct SyncCorrelator {
    fft: Arc<dyn Fft<f32>>,
    ifft: Arc<dyn Fft<f32>>,
    /// Per band: conjugate spectra of the sign pattern and of its magnitude (the rows of the
    /// band's sync cells at phase 0).
    signs: Vec<Vec<Complex32>>,
    weights: Vec<Vec<Complex32>>,
    scratch_len: usize,
}

impl SyncCorrelator {
    fn new(planner: &mut FftPlanner<f32>, sync: &[SyncCell]) -> Self {
        let fft = planner.plan_fft_forward(ROWS);
        let ifft = planner.plan_fft_inverse(ROWS);
        let scratch_len = fft
            .get_inplace_scratch_len()
            .max(ifft.get_inplace_scratch_len());
        let mut scratch = vec![Complex32::default(); scratch_len];
        let mut signs = vec![vec![Complex32::default(); ROWS]; BANDS];
        let mut weights = vec![vec![Complex32::default(); ROWS]; BANDS];
        for c in sync {
            let r = row_at(c.frame, 0);
            signs[c.band][r] = Complex32::new(c.sign, 0.0);
            weights[c.band][r] = Complex32::new(1.0, 0.0);
        }
        for v in signs.iter_mut().chain(weights.iter_mut()) {
            fft.process_with_scratch(v, &mut scratch);
            for x in v.iter_mut() {
                *x = x.conj();
            }
        }
        Self {
            fft,
            ifft,
            signs,
            weights,
            scratch_len,
        }
    }

    /// Normalised sync correlation of `fold` at every phase: `Σ sign·v / sqrt(Σ v²)` over the
    /// sync cells, as cyclic cross-correlations through one FFT per band.
    fn scores(&self, fold: &[f32]) -> Vec<f64> {
        let mut scratch = vec![Complex32::default(); self.scratch_len];
        let mut acc = vec![Complex32::default(); ROWS];
        let mut z = vec![Complex32::default(); ROWS];
        let half = Complex32::new(0.5, 0.0);
        let minus_half_i = Complex32::new(0.0, -0.5);
        let i = Complex32::new(0.0, 1.0);
        for b in 0..BANDS {
            let col = &fold[b * ROWS..(b + 1) * ROWS];
            if col.iter().all(|v| *v == 0.0) {
                continue;
            }
            // Values in the real part, squares in the imaginary part: one transform for both.
            for (d, v) in z.iter_mut().zip(col) {
                *d = Complex32::new(*v, v * v);
            }
            self.fft.process_with_scratch(&mut z, &mut scratch);
            let (sn, wt) = (&self.signs[b], &self.weights[b]);
            for k in 0..ROWS {
                let zc = z[(ROWS - k) % ROWS].conj();
                let x = (z[k] + zc) * half;
                let y = (z[k] - zc) * minus_half_i;
                acc[k] += x * sn[k] + i * (y * wt[k]);
            }
        }
        self.ifft.process_with_scratch(&mut acc, &mut scratch);
        acc.iter()
            .map(|c| {
                let (num, den) = (f64::from(c.re), f64::from(c.im));
                if den > 1e-9 {
                    num / (den * ROWS as f64).sqrt()
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// Soft chips of `fold` read at `phase`, twice over: `[..CODED_BITS]` with every cell at full
/// weight, `[CODED_BITS..]` with the cells far below their frame's top weighted down
/// ([`far_below`]). Both halves add up over segments like one vector.
fn soft_chips(fold: &SpeedFold, data: &[Option<(u16, f32)>], phase: usize) -> Vec<f32> {
    let mut soft = vec![0.0f32; 2 * CODED_BITS];
    for (i, cell) in data.iter().enumerate() {
        if let Some((chip, sign)) = cell {
            let chip = usize::from(*chip);
            if chip >= CODED_BITS {
                continue;
            }
            let (frame, band) = (i / BANDS, i % BANDS);
            let j = band * ROWS + row_at(frame, phase);
            let v = sign * fold.fold[j];
            soft[chip] += v;
            soft[CODED_BITS + chip] += if fold.far[j] { FAR_BELOW_WEIGHT * v } else { v };
        }
    }
    soft
}

/// Decodes the two sets of soft chips of [`soft_chips`] in turn (each guarded by the keyed
/// check, `list` Viterbi paths each); returns the first that passes, else the full-weight
/// attempt.
fn decode_either(soft: &[f32], key: &WatermarkKey, list: usize) -> Decoded {
    let plain = decode_payload_list(&soft[..CODED_BITS.min(soft.len())], key, list).0;
    if plain.payload.is_some() || soft.len() < 2 * CODED_BITS {
        return plain;
    }
    let weighted = decode_payload_list(&soft[CODED_BITS..2 * CODED_BITS], key, list).0;
    if weighted.payload.is_some() {
        weighted
    } else {
        plain
    }
}

/// Scales soft chips to unit mean magnitude, so segments combine with equal weight.
fn normalised(soft: &[f32]) -> Vec<f32> {
    let m = soft.iter().map(|v| v.abs()).sum::<f32>() / soft.len().max(1) as f32;
    if m > 0.0 {
        soft.iter().map(|v| v / m).collect()
    } else {
        soft.to_vec()
    }
}

/// Adds `soft` (raw, unnormalised) to the coherent sum of hypothesis (`fold`, `phase`), keeping
/// the [`COHERENT_KEPT`] hypotheses of largest summed `z`.
fn add_coherent(kept: &mut Vec<Coherent>, fold: usize, phase: usize, z: f64, soft: &[f32]) {
    match kept.iter_mut().find(|c| c.fold == fold && c.phase == phase) {
        Some(c) => {
            c.weight += z;
            for (a, v) in c.soft.iter_mut().zip(soft) {
                *a += v;
            }
        }
        None => kept.push(Coherent {
            fold,
            phase,
            weight: z,
            soft: soft.to_vec(),
        }),
    }
    kept.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    kept.truncate(COHERENT_KEPT);
}

/// Adds a scored segment to the running summary.
fn absorb(s: &mut Summary, key: &WatermarkKey, result: Option<SegmentResult>) {
    let Some(r) = result else {
        return;
    };
    s.segments += 1;
    s.hypotheses += r.hypotheses;
    let Some(best) = r.candidates.first() else {
        return;
    };
    if s.best.is_none_or(|(z, _)| best.z > z) {
        s.best = Some((
            best.z,
            Hypothesis {
                speed: best.speed,
                pitch: best.pitch,
                phase: best.phase,
            },
        ));
    }
    for c in &r.candidates {
        add_coherent(&mut s.coherent, c.fold, c.phase, c.z, &c.soft);
    }
    if s.decoded.is_none() {
        for c in &r.candidates {
            let d = decode_either(&c.soft, key, 1);
            if d.payload.is_some() {
                s.decoded = Some(d);
                break;
            }
            if s.best_bit_errors.is_none() {
                s.best_bit_errors = Some(d.bit_errors);
            }
        }
    }
    // Maximal-ratio combination: unit-noise chips weighted by the segment's own signal
    // strength, which its sync correlation measures.
    let weight = best.z.max(0.0) as f32;
    let soft: Vec<f32> = normalised(&best.soft[..CODED_BITS.min(best.soft.len())])
        .iter()
        .map(|v| v * weight)
        .collect();
    if s.soft_all.is_empty() {
        s.soft_all = vec![0.0; CODED_BITS];
        s.soft_marked = vec![0.0; CODED_BITS];
    }
    for (a, v) in s.soft_all.iter_mut().zip(&soft) {
        *a += v;
    }
    if false_positive_probability(best.z, r.hypotheses) <= SEGMENT_MARKED_FPP {
        s.marked_segments += 1;
        for (a, v) in s.soft_marked.iter_mut().zip(&soft) {
            *a += v;
        }
    }
}

impl AudioDetector {
    /// A detector for interleaved audio of `channels` channels at `sample_rate`.
    pub fn new(
        sample_rate: u32,
        channels: usize,
        key: &WatermarkKey,
        options: DetectOptions,
    ) -> Self {
        let sample_rate = sample_rate.max(1);
        let base_hop = frame_hop(sample_rate, 1.0);
        let mut planner = FftPlanner::new();
        let mut speeds = options.speeds.clone();
        speeds.retain(|s| s.is_finite() && *s > 0.5 && *s < 2.0);
        speeds.sort_by(f64::total_cmp);
        speeds.dedup();
        if speeds.is_empty() {
            speeds.push(1.0);
        }
        // One analysis per coarse speed; each fine speed uses the nearest one.
        let coarse_of = |s: f64| ((s - 1.0) / COARSE_STEP).round() as i64;
        let mut coarse: Vec<i64> = Vec::new();
        let mut analyzer_of = |c: i64| match coarse.iter().position(|&x| x == c) {
            Some(i) => i,
            None => {
                coarse.push(c);
                coarse.len() - 1
            }
        };
        // (time factor, coarse frequency step) of every fold.
        let mut hypotheses: Vec<(f64, i64)> = speeds.iter().map(|&s| (s, coarse_of(s))).collect();
        if options.stretch {
            // Tempo-only: the time factors the unchanged spectrum does not already cover.
            hypotheses.extend(
                speeds
                    .iter()
                    .filter(|&&s| coarse_of(s) != 0)
                    .map(|&s| (s, 0)),
            );
            // Pitch-only: every other coarse spectrum at the unchanged time.
            let mut shifted: Vec<i64> = speeds.iter().map(|&s| coarse_of(s)).collect();
            shifted.dedup();
            hypotheses.extend(shifted.into_iter().filter(|&c| c != 0).map(|c| (1.0, c)));
        }
        let replay_folds = speeds.len();
        let folds: Vec<SpeedFold> = hypotheses
            .into_iter()
            .map(|(speed, c)| SpeedFold {
                speed,
                analyzer: analyzer_of(c),
                pitch: 1.0 + c as f64 * COARSE_STEP,
                fold: vec![0.0; BANDS * ROWS],
                far: vec![false; BANDS * ROWS],
            })
            .collect();
        let analyzers = coarse
            .iter()
            .map(|&c| Analyzer::new(&mut planner, base_hop, 1.0 + c as f64 * COARSE_STEP))
            .collect();
        let (sync, data) = split_layout(&Layout::new(key));
        Self {
            key: key.clone(),
            sample_rate,
            base_hop,
            correlator: SyncCorrelator::new(&mut planner, &sync),
            data,
            analyzers,
            folds,
            replay_folds,
            segment: 0,
            segment_values: 0,
            mono: MonoBuffer::new(channels),
            options: DetectOptions { speeds, ..options },
            summary: Summary::default(),
        }
    }

    /// Samples of the stream per segment (one block at the unchanged speed).
    fn segment_samples(&self) -> f64 {
        self.base_hop * BLOCK_FRAMES as f64
    }

    /// Analyses an interleaved block.
    pub fn push(&mut self, block: &[f32]) {
        self.mono.push(block);
        // Every analysis stops at the segment's end; once all are there the segment is scored
        // and the folds start over.
        loop {
            let seg_end = ((self.segment + 1) as f64 * self.segment_samples()).round() as u64;
            self.advance_all(seg_end);
            let done = self
                .analyzers
                .iter()
                .all(|a| a.next_value_start().is_some_and(|s| s >= seg_end));
            if !done {
                break;
            }
            let result = self.score_segment();
            absorb(&mut self.summary, &self.key, result);
            self.segment += 1;
            self.segment_values = 0;
            for f in &mut self.folds {
                f.fold.fill(0.0);
            }
        }
        let keep = self
            .analyzers
            .iter()
            .map(Analyzer::needed_from)
            .min()
            .unwrap_or(0);
        self.mono.drop_before(keep);
    }

    /// Runs every analysis over the buffered samples, up to values starting at `seg_end`.
    fn advance_all(&mut self, seg_end: u64) {
        let (mono, base) = (&self.mono.samples, self.mono.base);
        let base_hop = self.base_hop;
        let mut values = 0usize;
        for (ai, a) in self.analyzers.iter_mut().enumerate() {
            let folds = &mut self.folds;
            a.advance(mono, base, seg_end, |start, x, far| {
                for f in folds.iter_mut().filter(|f| f.analyzer == ai) {
                    let row = row_of(start, f.speed, base_hop);
                    for (b, v) in x.iter().enumerate() {
                        f.fold[b * ROWS + row] += v;
                        f.far[b * ROWS + row] = far[b];
                    }
                }
                values += 1;
            });
        }
        self.segment_values += values;
    }

    /// Scores the folds of the current segment.
    fn score_segment(&self) -> Option<SegmentResult> {
        let per_analyzer = self.segment_values / self.analyzers.len().max(1);
        if per_analyzer < MIN_SEGMENT_FRAMES * SUB_STEPS {
            return None;
        }
        // The replay-speed folds and the stretch folds keep their candidates apart: the
        // stretch folds' noise would otherwise push a weak mark's true replay-speed
        // hypothesis out of a shared short list (and the other way round).
        let mut tops: [Vec<(f64, usize, usize)>; 2] = Default::default();
        for (fi, f) in self.folds.iter().enumerate() {
            let top = &mut tops[usize::from(fi >= self.replay_folds)];
            let scores = self.correlator.scores(&f.fold);
            for (phase, &z) in scores.iter().enumerate() {
                if top.len() < CANDIDATES || z > top[top.len() - 1].0 {
                    top.push((z, fi, phase));
                    top.sort_by(|a, b| b.0.total_cmp(&a.0));
                    top.truncate(CANDIDATES);
                }
            }
        }
        let mut top = tops.concat();
        top.sort_by(|a, b| b.0.total_cmp(&a.0));
        let candidates = top
            .iter()
            .map(|&(z, fi, phase)| Candidate {
                z,
                fold: fi,
                speed: self.folds[fi].speed,
                pitch: self.folds[fi].pitch,
                phase,
                soft: soft_chips(&self.folds[fi], &self.data, phase),
            })
            .collect();
        Some(SegmentResult {
            hypotheses: (self.folds.len() * ROWS) as f64,
            candidates,
        })
    }

    /// Mono samples held back (about one frame): memory does not grow with the stream's length.
    pub fn buffered(&self) -> usize {
        self.mono.samples.len()
    }

    /// Hypotheses searched so far (speeds × phases × segments).
    pub fn hypotheses(&self) -> f64 {
        self.summary
            .hypotheses
            .max((self.folds.len() * ROWS) as f64)
    }

    /// The verdict and the best hypothesis (for [`AudioLocator`]).
    pub fn finish(&self) -> (AudioDetection, Hypothesis) {
        // The trailing partial segment counts too.
        let mut s = self.summary.clone();
        if self.segment_values > 0 {
            let tail = self.score_segment();
            let scored: Vec<(usize, usize)> = tail
                .iter()
                .flat_map(|t| t.candidates.iter().map(|c| (c.fold, c.phase)))
                .collect();
            absorb(&mut s, &self.key, tail);
            // The tail at every kept hypothesis it was not itself a candidate for (all of them
            // when it was too short to be scored): its cells belong to the same fold.
            for c in s.coherent.iter_mut() {
                if !scored.contains(&(c.fold, c.phase)) {
                    let soft = soft_chips(&self.folds[c.fold], &self.data, c.phase);
                    for (a, v) in c.soft.iter_mut().zip(&soft) {
                        *a += v;
                    }
                }
            }
        }
        let hypotheses = s.hypotheses.max((self.folds.len() * ROWS) as f64);
        let (z, hypothesis) = s.best.unwrap_or((
            0.0,
            Hypothesis {
                speed: 1.0,
                pitch: 1.0,
                phase: 0,
            },
        ));
        let fpp = false_positive_probability(z, hypotheses);
        let mut decoded = s.decoded.clone();
        if decoded.is_none() {
            for c in s.coherent.iter().take(FINAL_CANDIDATES) {
                let d = decode_either(&c.soft, &self.key, FINAL_LIST_PATHS);
                if d.payload.is_some() {
                    decoded = Some(d);
                    break;
                }
            }
        }
        if decoded.is_none() {
            for soft in [&s.soft_marked, &s.soft_all] {
                if soft.len() == CODED_BITS && (s.segments > 1 || s.marked_segments > 1) {
                    let d = decode_payload_list(soft, &self.key, FINAL_LIST_PATHS).0;
                    if d.payload.is_some() {
                        decoded = Some(d);
                        break;
                    }
                }
            }
        }
        let payload = decoded.as_ref().and_then(|d| d.payload);
        let bit_errors = decoded.as_ref().map(|d| d.bit_errors).or(s.best_bit_errors);
        let present = fpp <= self.options.max_false_positive || payload.is_some();
        (
            AudioDetection {
                present,
                z,
                hypotheses,
                false_positive_probability: fpp,
                payload,
                bit_errors,
                chips: CODED_BITS,
                speed: hypothesis.speed,
                pitch: hypothesis.pitch,
                span: None,
                seconds: self.mono.total as f64 / f64::from(self.sample_rate),
                segments: s.segments,
            },
            hypothesis,
        )
    }
}

/// What the locator's first pass subtracts from each window's sync `z`: unmarked windows then
/// score −1 on average and marked ones (z ≈ 2–4 per 1 s window for a mark that decodes) +1 to
/// +3, so the span of largest total is the marked one.
const LOCATE_BIAS: f64 = 1.0;
/// Window length for locating the mark, frames (about 1 s).
const LOCATE_FRAMES: u64 = 43;

/// A span of consecutive windows, its score (sum of `z − LOCATE_BIAS`) and summed soft chips.
#[derive(Debug, Clone)]
struct Run {
    first: u64,
    last: u64,
    score: f64,
    soft: Vec<f32>,
}

/// Second pass at a known hypothesis: scores 1-second windows and finds the span of windows with
/// the largest total score (maximum-sum subarray, online), which is where the mark is; decodes
/// from that span only (better for a marked segment inside unmarked audio). A weak window inside
/// the mark (a pause in speech) does not cut the span, as a threshold per window would. The
/// ends are then refined with the bias set to half the span's mean `z` (the change-point
/// estimate between "unmarked" and "marked at that strength"). Memory: the soft chips of the
/// best span ending at the current window and of the best span so far, and one `z` per second.
pub struct AudioLocator {
    key: WatermarkKey,
    sample_rate: u32,
    base_hop: f64,
    speed: f64,
    phase: usize,
    layout: Layout,
    analyzer: Analyzer,
    mono: MonoBuffer,
    /// The window being filled: index, sync numerator, denominator, chip sums.
    window: (u64, f64, f64, Vec<f32>),
    current: Option<Run>,
    best: Option<Run>,
    /// Every closed window's sync `z` (`None`: silent), for refining the span's ends.
    zs: Vec<Option<f32>>,
}

impl std::fmt::Debug for AudioLocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioLocator")
            .field("speed", &self.speed)
            .field("phase", &self.phase)
            .finish()
    }
}

impl AudioLocator {
    /// A locator for the hypothesis the detector found.
    pub fn new(sample_rate: u32, channels: usize, key: &WatermarkKey, h: Hypothesis) -> Self {
        let sample_rate = sample_rate.max(1);
        let base_hop = frame_hop(sample_rate, 1.0);
        let mut planner = FftPlanner::new();
        Self {
            key: key.clone(),
            sample_rate,
            base_hop,
            speed: h.speed,
            phase: h.phase % ROWS,
            layout: Layout::new(key),
            analyzer: Analyzer::new(&mut planner, base_hop, h.pitch),
            mono: MonoBuffer::new(channels),
            window: (0, 0.0, 0.0, vec![0.0; CODED_BITS]),
            current: None,
            best: None,
            zs: Vec::new(),
        }
    }

    /// Analyses an interleaved block.
    pub fn push(&mut self, block: &[f32]) {
        self.mono.push(block);
        let mut values: Vec<(u64, [f32; BANDS])> = Vec::new();
        self.analyzer.advance(
            &self.mono.samples,
            self.mono.base,
            u64::MAX,
            |start, x, _| {
                values.push((start, *x));
            },
        );
        for (start, x) in values {
            self.add_value(start, &x);
        }
        let keep = self.analyzer.needed_from();
        self.mono.drop_before(keep);
    }

    fn add_value(&mut self, start: u64, x: &[f32; BANDS]) {
        let row = row_of(start, self.speed, self.base_hop);
        let rel = (row + ROWS - self.phase) % ROWS;
        if !rel.is_multiple_of(SUB_STEPS) {
            return;
        }
        let frame = rel / SUB_STEPS;
        let window_samples = LOCATE_FRAMES as f64 * self.base_hop / self.speed;
        let w = (start as f64 / window_samples) as u64;
        while self.window.0 < w {
            self.close_window();
        }
        for (b, v) in x.iter().enumerate() {
            let cell = self.layout.cells[frame * BANDS + b];
            if cell.chip == SYNC {
                self.window.1 += f64::from(cell.sign * v);
                self.window.2 += f64::from(v * v);
            } else if let Some(s) = self.window.3.get_mut(usize::from(cell.chip)) {
                *s += cell.sign * v;
            }
        }
    }

    /// Ends the current window: the best span ending here either extends the previous one (when
    /// that one's score is positive) or starts afresh; the best span so far is kept.
    fn close_window(&mut self) {
        let next = self.window.0 + 1;
        let (index, num, den, soft) =
            std::mem::replace(&mut self.window, (next, 0.0, 0.0, vec![0.0; CODED_BITS]));
        // A silent window (no analysis frame above the detector's gate) carries no evidence
        // either way: it scores 0, not −LOCATE_BIAS, so a span runs through a pause of digital
        // silence to the marked audio after it, and never ends in one (the best span only grows
        // on a positive score).
        let (z, score) = if den > 0.0 {
            let z = num / den.sqrt();
            (Some(z as f32), z - LOCATE_BIAS)
        } else {
            (None, 0.0)
        };
        self.zs.push(z);
        match &mut self.current {
            Some(run) if run.score > 0.0 => {
                run.last = index;
                run.score += score;
                for (a, v) in run.soft.iter_mut().zip(&soft) {
                    *a += v;
                }
            }
            _ => {
                self.current = Some(Run {
                    first: index,
                    last: index,
                    score,
                    soft,
                });
            }
        }
        if let Some(run) = &self.current
            && run.score > 0.0
            && self.best.as_ref().is_none_or(|b| run.score > b.score)
        {
            self.best = Some(run.clone());
        }
    }

    /// The marked span (the windows of largest total score) and a decode from that span.
    pub fn finish(&self) -> (Option<MarkedSpan>, Option<Decoded>) {
        let mut me = Self {
            key: self.key.clone(),
            layout: self.layout.clone(),
            analyzer: Analyzer::new(&mut FftPlanner::new(), self.base_hop, self.speed),
            mono: MonoBuffer {
                channels: self.mono.channels,
                samples: Vec::new(),
                base: self.mono.base,
                total: self.mono.total,
            },
            window: self.window.clone(),
            current: self.current.clone(),
            best: self.best.clone(),
            zs: self.zs.clone(),
            ..*self
        };
        me.close_window();
        let Some(run) = me.best else {
            return (None, None);
        };
        let decoded = decode_payload(&run.soft, &self.key);
        let (first, last) = refine_span(&me.zs, run.first, run.last);
        let window_seconds =
            LOCATE_FRAMES as f64 * self.base_hop / self.speed / f64::from(self.sample_rate);
        let total = self.mono.total as f64 / f64::from(self.sample_rate);
        (
            Some(MarkedSpan {
                start_seconds: first as f64 * window_seconds,
                end_seconds: ((last + 1) as f64 * window_seconds).min(total),
            }),
            Some(decoded),
        )
    }
}

/// The span's ends again, with the bias at half the mean `z` of the rough span `first..=last`
/// (its silent windows left out): the maximum-sum span of `z − μ/2` over all windows, silent
/// ones scoring 0. Kept when it overlaps the rough span.
fn refine_span(zs: &[Option<f32>], first: u64, last: u64) -> (u64, u64) {
    let (a, b) = (first as usize, last as usize);
    let Some(rough) = zs.get(a..=b) else {
        return (first, last);
    };
    let heard: Vec<f64> = rough.iter().flatten().map(|&z| f64::from(z)).collect();
    if heard.is_empty() {
        return (first, last);
    }
    let mean = heard.iter().sum::<f64>() / heard.len() as f64;
    let bias = (mean / 2.0).max(LOCATE_BIAS);
    let (mut best, mut best_span) = (f64::NEG_INFINITY, (a, b));
    let (mut sum, mut start) = (0.0f64, 0usize);
    for (i, z) in zs.iter().enumerate() {
        if sum <= 0.0 {
            (sum, start) = (0.0, i);
        }
        sum += z.map_or(0.0, |z| f64::from(z) - bias);
        if sum > best {
            (best, best_span) = (sum, (start, i));
        }
    }
    if best_span.0 <= b && best_span.1 >= a {
        (best_span.0 as u64, best_span.1 as u64)
    } else {
        (first, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyedRng;

    #[test]
    fn the_time_fit_removes_a_beating_band_and_keeps_a_mark() {
        // A band that beats (a 62 Hz swing sampled every eighth of a 23.2 ms frame, 0.2 in
        // half-log units, as chord-cmaj's band 0) carrying a ±0.05 mark per whole frame.
        let mut rng = WatermarkKey::from_bytes([3; 32]).rng("test/time-fit");
        let signs = rng.bipolar(4000);
        let n = 8 * 4000;
        let level = |q: usize| {
            let t = q as f32 * 128.0 / 44_100.0;
            4.5 + 0.2 * (2.0 * std::f32::consts::PI * 62.4 * t).cos() + 0.05 * signs[q / 8]
        };
        let mut fit = TimeFit::default();
        let (mut corr, mut fixed_corr, mut energy, mut fixed_energy) = (0.0, 0.0, 0.0, 0.0);
        for q in 16..n - 16 {
            let mut sums = [0.0f32; NTAPS];
            for (s, &k) in sums.iter_mut().zip(&TIME_TAPS) {
                *s = level(q - k) + level(q + k);
            }
            if (q as u64).is_multiple_of(TIME_REFIT_EVERY) {
                fit.refit();
            }
            let v = fit.residual(level(q), &sums, (q as u64).is_multiple_of(TIME_LEARN_EVERY));
            let fixed =
                level(q) - 0.25 * (level(q - 8) + level(q - 16) + level(q + 8) + level(q + 16));
            // Only frame-aligned values after the fit has settled (~2 s).
            if q > 8 * 90 && q.is_multiple_of(8) {
                let s = signs[q / 8];
                corr += s * v;
                energy += v * v;
                fixed_corr += s * fixed;
                fixed_energy += fixed * fixed;
            }
        }
        let cells = (n / 8 - 92) as f32;
        let z = corr / energy.sqrt();
        let fixed_z = fixed_corr / fixed_energy.sqrt();
        // The fixed difference leaves the swing (the mark at a fraction of it); the fit removes
        // it, and what is left is mostly the mark (with the neighbours' marks it weighs in).
        assert!(fixed_z < 0.4 * cells.sqrt(), "fixed z {fixed_z}");
        assert!(z > 0.8 * cells.sqrt(), "fit z {z}, fixed z {fixed_z}");
    }

    #[test]
    fn the_refined_span_ends_where_the_mean_shift_does() {
        // Unmarked windows near 0, a marked stretch at z ≈ 4 (windows 10..=29), with a window
        // at 1.6 just outside each end that the rough first pass (bias 1) took in.
        let mut zs = vec![0.2f32; 45];
        for z in &mut zs[10..30] {
            *z = 4.0;
        }
        zs[15] = 0.5; // a pause inside the mark
        zs[9] = 1.6;
        zs[30] = 1.6;
        let zs: Vec<Option<f32>> = zs.into_iter().map(Some).collect();
        assert_eq!(refine_span(&zs, 9, 30), (10, 29));
        // A rough span outside anything better is kept.
        assert_eq!(refine_span(&zs, 40, 44), (40, 44));
    }

    #[test]
    fn a_silent_pause_neither_cuts_the_span_nor_ends_it() {
        // Marked windows 10..=24, digital silence 25..=27, one more marked window 28, then
        // silence to the end: the span reaches window 28 and stops there.
        let mut zs = vec![Some(0.2f32); 10];
        zs.extend(std::iter::repeat_n(Some(4.0), 15));
        zs.extend([None, None, None, Some(3.5)]);
        zs.extend(std::iter::repeat_n(None, 6));
        assert_eq!(refine_span(&zs, 10, 24), (10, 28));
        // Scored as an unmarked window each (the old rule), the pause cut the island off.
        let old: Vec<Option<f32>> = zs.iter().map(|z| Some(z.unwrap_or(0.0))).collect();
        assert_eq!(refine_span(&old, 10, 24), (10, 24));
        // A rough span of silence alone is kept as it is.
        assert_eq!(refine_span(&zs, 25, 27), (25, 27));
    }

    /// Every band at one level: the level gate lets every band in.
    const ALL_LEVEL: [f32; BANDS] = [0.0; BANDS];

    #[test]
    fn a_partial_is_not_read_against_its_own_spill() {
        // A partial in band 3 (mark +0.02) whose spill into bands 2 and 4, 20 dB below, moved
        // by five times that (the same change, large against their own level); the rest is a
        // floor 100 dB down that followed the same change. Read against those bands the partial's
        // mark would be inverted; with the level gate it keeps its value.
        let near = NEAR_DB / LOG_TO_DB;
        let mut levels = [-100.0 / LOG_TO_DB; BANDS];
        levels[3] = 0.0;
        levels[2] = -20.0 / LOG_TO_DB;
        levels[4] = -20.0 / LOG_TO_DB;
        let mut x = [0.02f32; BANDS];
        x[2] = 0.1;
        x[4] = 0.1;
        let weights = [1.0f32; BANDS];
        let mut gated = x;
        remove_common(&mut gated, &weights, &levels, near);
        assert!((gated[3] - 0.02).abs() < 1e-6, "{}", gated[3]);
        // Ungated, the spill's larger change is subtracted from the partial.
        remove_common(&mut x, &weights, &levels, f32::INFINITY);
        assert!(x[3] < 0.0, "{}", x[3]);
        // The weak bands are still read against the bands above them.
        assert!(
            (gated[2] - (0.1 - (0.02 + 0.1) / 2.0)).abs() < 1e-6,
            "{}",
            gated[2]
        );
    }

    #[test]
    fn common_change_comes_from_the_steady_bands() {
        // Two steady partials (bands 3 and 4) carry opposite marks ±0.02 and moved by a common
        // 0.7 (a limiter's gain); every other band is a noisy floor (±0.5) that rose by 1.0
        // (the limiter's distortion products).
        let mut rng = KeyedRng::from_seed([5; 32]);
        let mut x = [0.0f32; BANDS];
        let mut weights = [1.0f32; BANDS];
        for v in &mut x {
            *v = 1.0 + 0.5 * rng.gaussian() as f32;
        }
        x[3] = 0.7 + 0.02;
        x[4] = 0.7 - 0.02;
        weights[3] = 1e4;
        weights[4] = 1e4;
        let mut plain = x;
        remove_common(&mut plain, &[1.0; BANDS], &ALL_LEVEL, f32::INFINITY);
        remove_common(&mut x, &weights, &ALL_LEVEL, f32::INFINITY);
        // Each partial is read against the other: the difference survives, the floor does not
        // leak in.
        assert!((x[3] - 0.04).abs() < 0.005, "{}", x[3]);
        assert!((x[4] + 0.04).abs() < 0.005, "{}", x[4]);
        // With the plain mean the floor's change swamps the mark of the partials.
        assert!((plain[3] - 0.04).abs() > 0.1, "{}", plain[3]);
    }

    #[test]
    fn common_change_removal_ignores_gain_and_keeps_a_lone_partial() {
        let mut rng = KeyedRng::from_seed([6; 32]);
        let mut x = [0.0f32; BANDS];
        for v in &mut x {
            *v = rng.gaussian() as f32;
        }
        let mut weights = [1.0f32; BANDS];
        weights[0] = 1e6;
        let mut shifted = x.map(|v| v + 3.0);
        remove_common(&mut x, &weights, &ALL_LEVEL, f32::INFINITY);
        remove_common(&mut shifted, &weights, &ALL_LEVEL, f32::INFINITY);
        for (a, b) in x.iter().zip(&shifted) {
            assert!((a - b).abs() < 1e-4);
        }
        // A dominant band is not removed from itself: band 0 keeps its value against the rest.
        let mut lone = [0.0f32; BANDS];
        lone[0] = 0.05;
        remove_common(&mut lone, &weights, &ALL_LEVEL, f32::INFINITY);
        assert!((lone[0] - 0.05).abs() < 1e-6, "{}", lone[0]);
        // With equal weights it is the plain mean removal scaled by n / (n - 1).
        let mut y = [0.0f32; BANDS];
        for v in &mut y {
            *v = rng.gaussian() as f32;
        }
        let mean = y.iter().sum::<f32>() / BANDS as f32;
        let expect = y.map(|v| (v - mean) * BANDS as f32 / (BANDS - 1) as f32);
        remove_common(&mut y, &[1.0; BANDS], &ALL_LEVEL, f32::INFINITY);
        for (a, b) in y.iter().zip(&expect) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn fft_scores_equal_the_direct_correlation() {
        let key = WatermarkKey::from_bytes([2; 32]);
        let (sync, _) = split_layout(&Layout::new(&key));
        let corr = SyncCorrelator::new(&mut FftPlanner::new(), &sync);
        let mut rng = KeyedRng::from_seed([3; 32]);
        let fold: Vec<f32> = (0..BANDS * ROWS).map(|_| rng.gaussian() as f32).collect();
        let fast = corr.scores(&fold);
        for phase in [0, 1, 7, 803, ROWS - 1] {
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for c in &sync {
                let v = f64::from(fold[c.band * ROWS + row_at(c.frame, phase)]);
                num += f64::from(c.sign) * v;
                den += v * v;
            }
            let direct = num / den.sqrt();
            assert!(
                (fast[phase] - direct).abs() < 1e-3,
                "{phase}: {} vs {direct}",
                fast[phase]
            );
        }
    }
}
