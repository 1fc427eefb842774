//! The blind detector: presence (sync correlation with its corrected false-positive
//! probability), payload (only when its check passes) and where in the stream the mark is.

use std::collections::VecDeque;
use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use serde::Serialize;

use super::embed::hann;
use super::layout::{Layout, SYNC};
use super::{BINS, BLOCK_FRAMES, FIRST_BIN, SUB_OFFSETS, frame_hop};
use crate::codec::{CODED_BITS, decode_payload};
use crate::key::WatermarkKey;
use crate::payload::Payload;
use crate::stats::false_positive_probability;

/// Detector settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOptions {
    /// Replay-speed hypotheses searched (1.0 = unchanged). Each one multiplies the work and the
    /// hypothesis count; the false-positive probability accounts for all of them.
    pub speeds: Vec<f64>,
    /// Presence is declared when the corrected false-positive probability is at most this.
    pub max_false_positive: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            speeds: vec![1.0],
            max_false_positive: 1e-6,
        }
    }
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
    /// Hypotheses searched (sub-frame offsets × block phases × speeds).
    pub hypotheses: f64,
    /// `P(best z of unmarked audio ≥ z)`, corrected for every hypothesis.
    pub false_positive_probability: f64,
    /// The payload, only when its keyed check passed.
    pub payload: Option<Payload>,
    /// Coded chips whose sign the code corrected (bit errors before correction), when decoded.
    pub bit_errors: Option<usize>,
    /// Coded chips per codeword.
    pub chips: usize,
    /// Replay speed of the best hypothesis.
    pub speed: f64,
    /// Where the mark was found (filled by the second pass of [`super::detect_file`]).
    pub span: Option<MarkedSpan>,
    /// Seconds of audio analysed.
    pub seconds: f64,
}

/// One analysis grid: a speed and a sub-frame offset.
struct Grid {
    speed: f64,
    offset: f64,
    hop: f64,
    n: usize,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    next: u64,
    /// Log magnitudes of the last five frames (`None` = silent).
    ring: VecDeque<Option<[f32; BINS]>>,
    buf: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

/// Frames quieter than this mean square (−80 dBFS) are skipped.
const DETECT_GATE_MS: f32 = 1e-8;
/// A cell value is clipped to ±this (log units) so a single outlier cannot dominate.
const CLIP: f32 = 2.5;

impl Grid {
    fn new(planner: &mut FftPlanner<f32>, sample_rate: u32, speed: f64, sub: usize) -> Self {
        let hop = frame_hop(sample_rate, speed);
        let n = (hop.round() as usize).max(8);
        let fft = planner.plan_fft_forward(n);
        let scratch = vec![Complex32::default(); fft.get_inplace_scratch_len()];
        Self {
            speed,
            offset: hop * sub as f64 / SUB_OFFSETS as f64,
            hop,
            n,
            fft,
            window: hann(n),
            next: 0,
            ring: VecDeque::with_capacity(5),
            buf: vec![Complex32::default(); n],
            scratch,
        }
    }

    fn start(&self, j: u64) -> u64 {
        (self.offset + j as f64 * self.hop).round() as u64
    }

    /// Seconds at the start of frame `j`.
    fn seconds(&self, j: u64, sample_rate: u32) -> f64 {
        (self.offset + j as f64 * self.hop) / f64::from(sample_rate)
    }

    /// Analyses every complete frame in `mono` (which starts at absolute sample `base`) and
    /// calls `on_cell_values(j, values)` for each frame whose neighbours are known.
    fn advance(&mut self, mono: &[f32], base: u64, mut on_values: impl FnMut(u64, &[f32; BINS])) {
        let have = base + mono.len() as u64;
        loop {
            let start = self.start(self.next);
            if start < base || start + self.n as u64 > have {
                break;
            }
            let seg = &mono[(start - base) as usize..(start - base) as usize + self.n];
            let ms = seg.iter().map(|s| s * s).sum::<f32>() / self.n as f32;
            let logs = if ms < DETECT_GATE_MS {
                None
            } else {
                for (i, b) in self.buf.iter_mut().enumerate() {
                    *b = Complex32::new(seg[i] * self.window[i], 0.0);
                }
                self.fft
                    .process_with_scratch(&mut self.buf, &mut self.scratch);
                let floor = ms * self.n as f32 * 1e-9;
                let mut l = [0.0f32; BINS];
                let top = self.n / 2;
                for (bo, v) in l.iter_mut().enumerate() {
                    let k = FIRST_BIN + bo;
                    if k < top {
                        *v = 0.5 * (self.buf[k].norm_sqr() + floor).ln();
                    }
                }
                Some(l)
            };
            if self.ring.len() == 5 {
                self.ring.pop_front();
            }
            self.ring.push_back(logs);
            if self.ring.len() == 5
                && let (Some(a), Some(b), Some(c), Some(d), Some(e)) = (
                    &self.ring[0],
                    &self.ring[1],
                    &self.ring[2],
                    &self.ring[3],
                    &self.ring[4],
                )
            {
                let mut x = [0.0f32; BINS];
                for i in 0..BINS {
                    x[i] = (c[i] - 0.25 * (a[i] + b[i] + d[i] + e[i])).clamp(-CLIP, CLIP);
                }
                on_values(self.next - 2, &x);
            }
            self.next += 1;
        }
    }
}

/// Keeps a mono mix of the stream from the earliest sample any grid still needs.
struct MonoBuffer {
    channels: usize,
    samples: Vec<f32>,
    base: u64,
    total: u64,
}

impl MonoBuffer {
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

/// Streaming presence detector and payload decoder: feed interleaved blocks to
/// [`AudioDetector::push`], then [`AudioDetector::finish`]. Memory is fixed (one folded block per
/// hypothesis grid), whatever the stream's length.
pub struct AudioDetector {
    key: WatermarkKey,
    sample_rate: u32,
    layout: Layout,
    grids: Vec<Grid>,
    /// Per grid: values folded modulo the block (`frame * BINS + bin`).
    folds: Vec<Vec<f32>>,
    mono: MonoBuffer,
    options: DetectOptions,
}

impl std::fmt::Debug for AudioDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDetector")
            .field("sample_rate", &self.sample_rate)
            .field("grids", &self.grids.len())
            .finish()
    }
}

/// The best hypothesis found by [`AudioDetector`], for [`AudioLocator`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Hypothesis {
    /// Replay speed.
    pub speed: f64,
    /// Offset of frame 0, samples.
    pub offset: f64,
    /// Block frame of analysis frame 0.
    pub phase: usize,
}

fn cell_index(frame_in_stream: u64, phase: usize, bin: usize) -> usize {
    let f = ((frame_in_stream + phase as u64) % BLOCK_FRAMES as u64) as usize;
    f * BINS + bin
}

fn soft_chips(layout: &Layout, fold: &[f32], phase: usize) -> Vec<f32> {
    let mut soft = vec![0.0f32; CODED_BITS];
    for (j, chunk) in fold.chunks_exact(BINS).enumerate() {
        for (b, v) in chunk.iter().enumerate() {
            let cell = layout.cells[cell_index(j as u64, phase, b)];
            if cell.chip != SYNC
                && let Some(s) = soft.get_mut(usize::from(cell.chip))
            {
                *s += cell.sign * v;
            }
        }
    }
    soft
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
        let mut planner = FftPlanner::new();
        let mut speeds = options.speeds.clone();
        speeds.retain(|s| s.is_finite() && *s > 0.5 && *s < 2.0);
        if speeds.is_empty() {
            speeds.push(1.0);
        }
        let grids: Vec<Grid> = speeds
            .iter()
            .flat_map(|&s| (0..SUB_OFFSETS).map(move |o| (s, o)))
            .map(|(s, o)| Grid::new(&mut planner, sample_rate, s, o))
            .collect();
        let folds = vec![vec![0.0f32; BLOCK_FRAMES * BINS]; grids.len()];
        Self {
            key: key.clone(),
            sample_rate,
            layout: Layout::new(key),
            grids,
            folds,
            mono: MonoBuffer {
                channels: channels.max(1),
                samples: Vec::new(),
                base: 0,
                total: 0,
            },
            options: DetectOptions { speeds, ..options },
        }
    }

    /// Analyses an interleaved block.
    pub fn push(&mut self, block: &[f32]) {
        self.mono.push(block);
        for (g, fold) in self.grids.iter_mut().zip(self.folds.iter_mut()) {
            g.advance(&self.mono.samples, self.mono.base, |j, x| {
                let f = (j % BLOCK_FRAMES as u64) as usize * BINS;
                for (a, v) in fold[f..f + BINS].iter_mut().zip(x) {
                    *a += v;
                }
            });
        }
        let keep = self
            .grids
            .iter()
            .map(|g| g.start(g.next))
            .min()
            .unwrap_or(0);
        self.mono.drop_before(keep);
    }

    /// Mono samples held back (about one frame): memory does not grow with the stream's length.
    pub fn buffered(&self) -> usize {
        self.mono.samples.len()
    }

    /// Hypotheses searched: grids × block phases.
    pub fn hypotheses(&self) -> f64 {
        (self.grids.len() * BLOCK_FRAMES) as f64
    }

    /// The verdict and the best hypothesis (for [`AudioLocator`]).
    pub fn finish(&self) -> (AudioDetection, Hypothesis) {
        // Every (grid, phase): normalised sync correlation.
        let mut ranked: Vec<(f64, usize, usize)> = Vec::new();
        for (gi, fold) in self.folds.iter().enumerate() {
            for phase in 0..BLOCK_FRAMES {
                let (mut num, mut den) = (0.0f64, 0.0f64);
                for &c in &self.layout.sync {
                    let c = c as usize;
                    let (f, b) = (c / BINS, c % BINS);
                    // Analysis frame j maps to block frame (j + phase): fold row (f - phase).
                    let row = (f + BLOCK_FRAMES - phase) % BLOCK_FRAMES;
                    let v = f64::from(fold[row * BINS + b]);
                    num += f64::from(self.layout.cells[c].sign) * v;
                    den += v * v;
                }
                let z = if den > 0.0 { num / den.sqrt() } else { 0.0 };
                ranked.push((z, gi, phase));
            }
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let hypotheses = self.hypotheses();
        let (z, gi, phase) = ranked.first().copied().unwrap_or((0.0, 0, 0));
        let fpp = false_positive_probability(z, hypotheses);
        // Decode the best few hypotheses; only a passing check yields a payload.
        let mut decoded = None;
        for &(_, g, p) in ranked.iter().take(3) {
            if let Some(fold) = self.folds.get(g) {
                let d = decode_payload(&soft_chips(&self.layout, fold, p), &self.key);
                if d.payload.is_some() {
                    decoded = Some((d, g, p));
                    break;
                }
                if g == gi && p == phase && decoded.is_none() {
                    decoded = Some((d, g, p));
                }
            }
        }
        let (payload, bit_errors, gi, phase) = match decoded {
            Some((d, g, p)) if d.payload.is_some() => (d.payload, Some(d.bit_errors), g, p),
            Some((d, _, _)) => (None, Some(d.bit_errors), gi, phase),
            None => (None, None, gi, phase),
        };
        let grid = &self.grids[gi.min(self.grids.len().saturating_sub(1))];
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
                speed: grid.speed,
                span: None,
                seconds: self.mono.total as f64 / f64::from(self.sample_rate),
            },
            Hypothesis {
                speed: grid.speed,
                offset: grid.offset,
                phase,
            },
        )
    }
}

/// Window length for locating the mark, frames (about 2 s).
const LOCATE_FRAMES: u64 = 86;
/// A window whose sync `z` reaches this is taken as marked (0.13 % of unmarked windows).
const LOCATE_Z: f64 = 3.0;

/// Second pass at a known hypothesis: scores 2-second windows to find where the mark is, and
/// decodes from the marked windows only (better for a marked segment inside unmarked audio).
pub struct AudioLocator {
    key: WatermarkKey,
    sample_rate: u32,
    layout: Layout,
    grid: Grid,
    phase: usize,
    mono: MonoBuffer,
    /// Per window: (first frame, sync numerator, sync denominator, chip sums).
    windows: Vec<(u64, f64, f64, Vec<f32>)>,
}

impl std::fmt::Debug for AudioLocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioLocator")
            .field("windows", &self.windows.len())
            .finish()
    }
}

impl AudioLocator {
    /// A locator for the hypothesis the detector found.
    pub fn new(sample_rate: u32, channels: usize, key: &WatermarkKey, h: Hypothesis) -> Self {
        let sample_rate = sample_rate.max(1);
        let mut planner = FftPlanner::new();
        let mut grid = Grid::new(&mut planner, sample_rate, h.speed, 0);
        grid.offset = h.offset;
        Self {
            key: key.clone(),
            sample_rate,
            layout: Layout::new(key),
            grid,
            phase: h.phase,
            mono: MonoBuffer {
                channels: channels.max(1),
                samples: Vec::new(),
                base: 0,
                total: 0,
            },
            windows: Vec::new(),
        }
    }

    /// Analyses an interleaved block.
    pub fn push(&mut self, block: &[f32]) {
        self.mono.push(block);
        let (layout, phase, windows) = (&self.layout, self.phase, &mut self.windows);
        self.grid
            .advance(&self.mono.samples, self.mono.base, |j, x| {
                let w = j / LOCATE_FRAMES;
                while windows.len() as u64 <= w {
                    let first = windows.len() as u64 * LOCATE_FRAMES;
                    windows.push((first, 0.0, 0.0, vec![0.0; CODED_BITS]));
                }
                let Some(win) = windows.last_mut() else {
                    return;
                };
                for (b, v) in x.iter().enumerate() {
                    let cell = layout.cells[cell_index(j, phase, b)];
                    if cell.chip == SYNC {
                        win.1 += f64::from(cell.sign * v);
                        win.2 += f64::from(v * v);
                    } else if let Some(s) = win.3.get_mut(usize::from(cell.chip)) {
                        *s += cell.sign * v;
                    }
                }
            });
        let keep = self.grid.start(self.grid.next);
        self.mono.drop_before(keep);
    }

    /// The marked span (the longest run of marked windows, gaps of up to two windows bridged)
    /// and a decode from that span.
    pub fn finish(&self) -> (Option<MarkedSpan>, Option<crate::codec::Decoded>) {
        let marked: Vec<bool> = self
            .windows
            .iter()
            .map(|w| w.2 > 0.0 && w.1 / w.2.sqrt() >= LOCATE_Z)
            .collect();
        let mut best: Option<(usize, usize, usize)> = None; // (first, last, count)
        let mut i = 0;
        while i < marked.len() {
            if !marked[i] {
                i += 1;
                continue;
            }
            let (first, mut last, mut count) = (i, i, 1);
            let mut k = i + 1;
            while k < marked.len() && k <= last + 3 {
                if marked[k] {
                    last = k;
                    count += 1;
                }
                k += 1;
            }
            if best.is_none_or(|b| count > b.2) {
                best = Some((first, last, count));
            }
            i = last + 1;
        }
        let Some((first, last, _)) = best else {
            return (None, None);
        };
        let mut soft = vec![0.0f32; CODED_BITS];
        for w in &self.windows[first..=last] {
            for (s, v) in soft.iter_mut().zip(&w.3) {
                *s += v;
            }
        }
        let decoded = decode_payload(&soft, &self.key);
        let start = self.grid.seconds(self.windows[first].0, self.sample_rate);
        let end_frame = (self.windows[last].0 + LOCATE_FRAMES).min(self.grid.next);
        let end = self
            .grid
            .seconds(end_frame, self.sample_rate)
            .min(self.mono.total as f64 / f64::from(self.sample_rate));
        (
            Some(MarkedSpan {
                start_seconds: start,
                end_seconds: end,
            }),
            Some(decoded),
        )
    }
}
