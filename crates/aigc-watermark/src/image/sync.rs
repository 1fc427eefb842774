//! Scale and rotation from the synchronisation template: the key's sinusoids are isolated peaks
//! in the spectrum of the suspect plane, at the template frequencies rotated by the rotation and
//! divided by the scale. A grid search over (scale, rotation) scores the normalised spectrum at
//! the predicted peaks; the best few are refined by a least-squares fit of the measured
//! sub-bin peak positions (a linear fit of the similarity transform).

use super::plane::{self, Similarity};
use super::tile::{PERIOD, SYNC_MAX_RADIUS, SYNC_MIN_RADIUS, SyncPeak};
use super::{fft2, on_block_grid};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Scale range searched (suspect size / marked size).
pub(crate) const MIN_SCALE: f64 = 0.3;
pub(crate) const MAX_SCALE: f64 = 2.2;
/// Rotation range searched, in degrees either way.
pub(crate) const MAX_ROTATION_DEG: f64 = 6.0;
/// Candidates handed to the pilot fold: the grid score alone often ranks a host-texture
/// coincidence above the true transform (text, regular patterns, heavy compression), while the
/// pilot correlation of a fold separates them clearly, so several are kept and the pilot decides
/// (each one folded counts in the detector's hypothesis correction).
const CANDIDATES: usize = 10;
/// Grid step in bins at the outermost template peak (half a bin: a peak is never missed).
const STEP_BINS: f64 = 0.5;
/// Ceiling on a normalised spectral bin in the grid score: a strong host peak counts like a
/// faint template peak but no more, so two or three host peaks cannot outscore the template's
/// sixteen.
const SCORE_CLIP: f64 = 8.0;
/// Normalised power a measured peak needs to enter the least-squares fit.
const FIT_MIN_POWER: f64 = 6.0;
/// Largest side of the analysed window (analysed pixels): bounds the FFT cost.
const MAX_SIDE: usize = 1024;
/// Smallest side of the analysed window.
const MIN_SIDE: usize = 64;
/// Short side from which the plane is halved before its spectrum is taken (the template sits
/// at low frequencies, so a halved 512² crop sees as much of it as a full 1024² one).
const DECIMATE_FROM: usize = 1024;

/// The outcome of the template search.
pub(crate) struct SyncSearch {
    /// Candidate transforms with their grid score, best first.
    pub candidates: Vec<(Similarity, f64)>,
    /// (scale, rotation) hypotheses scored on the grid.
    pub grid: usize,
}

/// The normalised power spectrum of a centred crop.
struct Spectrum {
    /// Power divided by its local mean (≈ Exp(1) on the host), `mw` × `mh`, row-major.
    norm: Vec<f32>,
    /// At (x, y): the largest of `norm` over the 2×2 bins from (x, y) (cyclic), clipped at
    /// [`SCORE_CLIP`]. The grid score reads this one value per peak instead of four: the four
    /// scattered reads per peak were most of the grid search's time.
    best4: Vec<f32>,
    /// Width and height in bins (the crop's size: a rectangle uses every pixel of a
    /// non-square image, and the peaks' power grows with the pixels analysed).
    mw: usize,
    mh: usize,
    /// Suspect pixels per analysed pixel (2 when the plane was halved).
    factor: f64,
    /// Whether each column (x) and row (y) bin is a harmonic of the 8-px block grid (looked up
    /// for every peak of every grid point: a table saves two divisions each).
    block_x: Vec<bool>,
    block_y: Vec<bool>,
}

impl Spectrum {
    /// Normalised power at bin (x, y), cyclic.
    #[inline]
    fn at(&self, x: i64, y: i64) -> f32 {
        self.norm[wrap(y, self.mh) * self.mw + wrap(x, self.mw)]
    }

    /// [`Spectrum::best4`] at bin (x, y), cyclic.
    #[inline]
    fn best4_at(&self, x: i64, y: i64) -> f32 {
        self.best4[wrap(y, self.mh) * self.mw + wrap(x, self.mw)]
    }

    /// Whether bin (x, y) lies on a harmonic of the 8-px block grid along either axis.
    #[inline]
    fn on_block_grid(&self, x: i64, y: i64) -> bool {
        self.block_x[wrap(x, self.mw)] || self.block_y[wrap(y, self.mh)]
    }
}

/// `x.floor() as i64` without the libm call that baseline x86-64 makes of `floor` (the grid
/// search asks for 64 per grid point); exact for |x| < 2⁶².
#[inline]
fn floor(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x { t - 1 } else { t }
}

/// `x.round() as i64` (halves away from zero) without the libm call; exact for |x| < 2⁵².
#[inline]
fn round(x: f64) -> i64 {
    let t = x as i64;
    let frac = x - t as f64;
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

/// `v` modulo `n`, without a division for the positions the grid asks about (within one period
/// of the range): ten divisions per peak were most of the grid search's time.
#[inline]
fn wrap(v: i64, n: usize) -> usize {
    let n = n as i64;
    let r = if v < 0 {
        v + n
    } else if v >= n {
        v - n
    } else {
        v
    };
    if (0..n).contains(&r) {
        r as usize
    } else {
        v.rem_euclid(n) as usize
    }
}

/// Searches the suspect plane `y` (w×h) for the template `peaks`.
pub(crate) fn search(
    planner: &mut FftPlanner<f32>,
    y: &[f32],
    w: usize,
    h: usize,
    peaks: &[SyncPeak],
) -> SyncSearch {
    let Some(spec) = spectrum(planner, y, w, h) else {
        return SyncSearch {
            candidates: Vec::new(),
            grid: 0,
        };
    };
    // Bins per template cycle along the shorter and the longer axis: a peak must stay below
    // Nyquist on the shorter, and the grid step is half a bin on the longer.
    let kappa_min = spec.mw.min(spec.mh) as f64 / PERIOD as f64;
    let kappa_max = spec.mw.max(spec.mh) as f64 / PERIOD as f64;
    let half_min = spec.mw.min(spec.mh) as f64 / 2.0;
    let mut grid: Vec<GridPoint> = Vec::new();
    let mut s = MIN_SCALE;
    let max_rot = MAX_ROTATION_DEG.to_radians();
    while s <= MAX_SCALE {
        let sd = s / spec.factor;
        let r_max = kappa_min * SYNC_MAX_RADIUS / sd;
        let r_min = kappa_min * SYNC_MIN_RADIUS / sd;
        let step = STEP_BINS / (kappa_max * SYNC_MAX_RADIUS / sd);
        if r_max < half_min - 2.0 && r_min >= 4.0 {
            let n_rot = (max_rot / step).ceil() as i64;
            for k in -n_rot..=n_rot {
                let theta = k as f64 * step;
                let score = score_at(&spec, peaks, sd, theta);
                grid.push((s.ln(), theta, score, step, step));
            }
        }
        s *= 1.0 + step;
    }
    let total = grid.len();
    let picked = pick_best(grid);
    let mut candidates: Vec<(Similarity, f64)> = Vec::new();
    for cand in picked.into_iter().map(|(ln_s, theta, score, _, _)| {
        let mut t = Similarity {
            scale: ln_s.exp() / spec.factor,
            rotation: theta,
        };
        for _ in 0..2 {
            if let Some(r) = refine(&spec, peaks, t) {
                t = r;
            }
        }
        (
            Similarity {
                scale: t.scale * spec.factor,
                rotation: t.rotation,
            },
            score,
        )
    }) {
        // Neighbouring grid maxima often refine to the same transform: fold it once.
        let same = candidates.iter().any(|(t, _)| {
            (t.scale / cand.0.scale - 1.0).abs() < 2e-3
                && (t.rotation - cand.0.rotation).abs() < 2e-3
        });
        if !same {
            candidates.push(cand);
        }
    }
    SyncSearch {
        candidates,
        grid: total,
    }
}

/// A grid point: (ln s, θ, score, step_s, step_θ).
type GridPoint = (f64, f64, f64, f64, f64);

/// Grid points ranked first when the picking starts (widened while it runs out).
const PICK_PREFIX: usize = 1024;

/// Up to [`CANDIDATES`] grid points by descending score (ties in grid order), each skipped when
/// within four steps of one picked before. Only the head of the ranking is read, so only a
/// prefix is selected and sorted (ranked by score, then grid index: the order of a stable sort
/// of the whole grid, which cost more than the grid's scoring itself), doubled until the
/// picking completes or the grid is exhausted.
fn pick_best(grid: Vec<GridPoint>) -> Vec<GridPoint> {
    let mut ranked: Vec<(usize, GridPoint)> = grid.into_iter().enumerate().collect();
    let before = |a: &(usize, GridPoint), b: &(usize, GridPoint)| {
        b.1.2.total_cmp(&a.1.2).then(a.0.cmp(&b.0))
    };
    let mut prefix = PICK_PREFIX;
    loop {
        let k = prefix.min(ranked.len());
        if k < ranked.len() {
            ranked.select_nth_unstable_by(k, before);
        }
        ranked[..k].sort_unstable_by(before);
        let mut picked: Vec<GridPoint> = Vec::new();
        for (_, g) in &ranked[..k] {
            let near = picked
                .iter()
                .any(|p| (p.0 - g.0).abs() < 4.0 * g.3 && (p.1 - g.1).abs() < 4.0 * g.4);
            if !near {
                picked.push(*g);
                if picked.len() == CANDIDATES {
                    return picked;
                }
            }
        }
        if k == ranked.len() {
            return picked;
        }
        prefix *= 2;
    }
}

/// The linear map from template peak (a, b) to its predicted bin under scale `sd` (analysed
/// pixels) and rotation `theta`: (kx·(c·a − s·b), ky·(s·a + c·b)). Built once per grid point
/// (a sine and cosine per peak were most of the grid's cost).
struct Predictor {
    kx: f64,
    ky: f64,
    c: f64,
    s: f64,
}

impl Predictor {
    fn new(spec: &Spectrum, sd: f64, theta: f64) -> Self {
        Predictor {
            kx: spec.mw as f64 / PERIOD as f64 / sd,
            ky: spec.mh as f64 / PERIOD as f64 / sd,
            c: theta.cos(),
            s: theta.sin(),
        }
    }

    /// Predicted bin position of template peak `p`.
    #[inline]
    fn at(&self, p: &SyncPeak) -> (f64, f64) {
        let (a, b) = (f64::from(p.a), f64::from(p.b));
        (
            self.kx * (self.c * a - self.s * b),
            self.ky * (self.s * a + self.c * b),
        )
    }
}

/// Mean clipped normalised power at the predicted peaks (best of the 4 surrounding bins).
fn score_at(spec: &Spectrum, peaks: &[SyncPeak], sd: f64, theta: f64) -> f64 {
    let predictor = Predictor::new(spec, sd, theta);
    let mut total = 0.0;
    for p in peaks {
        let (px, py) = predictor.at(p);
        total += if spec.on_block_grid(round(px), round(py)) {
            1.0
        } else {
            f64::from(spec.best4_at(floor(px), floor(py)))
        };
    }
    total / peaks.len().max(1) as f64
}

/// One least-squares refinement of `t` (in analysed pixels) from the measured peak positions.
fn refine(spec: &Spectrum, peaks: &[SyncPeak], t: Similarity) -> Option<Similarity> {
    let at = |x: i64, y: i64| spec.at(x, y);
    let predictor = Predictor::new(spec, t.scale, t.rotation);
    let (mut num_c, mut num_d, mut den, mut used) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for p in peaks {
        let (px, py) = predictor.at(p);
        let (cx, cy) = (px.round() as i64, py.round() as i64);
        let mut best = (cx, cy, 0.0f32);
        for dy in -2..=2 {
            for dx in -2..=2 {
                let v = at(cx + dx, cy + dy);
                if v > best.2 {
                    best = (cx + dx, cy + dy, v);
                }
            }
        }
        let (bx, by, v) = best;
        if f64::from(v) < FIT_MIN_POWER || spec.on_block_grid(bx, by) {
            continue;
        }
        // Parabola through the log powers of the neighbours: the sub-bin peak position.
        let sub = |l: f32, c: f32, r: f32| -> f64 {
            let (l, c, r) = (
                f64::from(l.max(1e-6)).ln(),
                f64::from(c.max(1e-6)).ln(),
                f64::from(r.max(1e-6)).ln(),
            );
            let d = l - 2.0 * c + r;
            if d < 0.0 {
                (0.5 * (l - r) / d).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        };
        // Measured position in cycles per window side, both axes alike.
        let mx = (bx as f64 + sub(at(bx - 1, by), v, at(bx + 1, by))) / spec.mw as f64;
        let my = (by as f64 + sub(at(bx, by - 1), v, at(bx, by + 1))) / spec.mh as f64;
        let (a, b) = (f64::from(p.a), f64::from(p.b));
        num_c += a * mx + b * my;
        num_d += a * my - b * mx;
        den += a * a + b * b;
        used += 1;
    }
    if used < 4 || den <= 0.0 {
        return None;
    }
    let kappa = 1.0 / PERIOD as f64;
    let (c, d) = (num_c / (kappa * den), num_d / (kappa * den));
    let inv = (c * c + d * d).sqrt();
    (inv > 0.0).then(|| Similarity {
        scale: 1.0 / inv,
        rotation: d.atan2(c),
    })
}

/// Largest n ≤ `limit` whose only prime factors are 2, 3 and 5 (fast FFT sizes), at least 1.
fn fft_size(limit: usize) -> usize {
    (1..=limit.max(1))
        .rev()
        .find(|&n| {
            let mut k = n;
            for p in [2, 3, 5] {
                while k % p == 0 {
                    k /= p;
                }
            }
            k == 1
        })
        .unwrap_or(1)
}

/// Whitened, Hann-windowed spectrum of the largest centred rectangle of FFT-friendly sides that
/// fits (halved first on large planes), its power normalised by the local mean over 9×9 bins.
fn spectrum(planner: &mut FftPlanner<f32>, y: &[f32], w: usize, h: usize) -> Option<Spectrum> {
    let halved;
    let (src, sw, sh, factor) = if w.min(h) >= DECIMATE_FROM {
        let (hw, hh) = (w / 2, h / 2);
        let mut means = vec![0.0f32; hw * hh];
        for (r, out) in means.chunks_mut(hw).enumerate() {
            let (top, bottom) = (&y[2 * r * w..][..2 * hw], &y[(2 * r + 1) * w..][..2 * hw]);
            for ((o, t), b) in out.iter_mut().zip(top.chunks(2)).zip(bottom.chunks(2)) {
                *o = 0.25 * (t[0] + t[1] + b[0] + b[1]);
            }
        }
        halved = means;
        (&halved[..], hw, hh, 2.0)
    } else {
        (y, w, h, 1.0)
    };
    if sw.min(sh) < MIN_SIDE {
        return None;
    }
    let (mw, mh) = (fft_size(sw.min(MAX_SIDE)), fft_size(sh.min(MAX_SIDE)));
    let (x0, y0) = ((sw - mw) / 2, (sh - mh) / 2);
    let crop: Vec<f32> = (0..mh)
        .flat_map(|r| src[(y0 + r) * sw + x0..][..mw].iter().copied())
        .collect();
    let white = plane::whiten(&crop, mw, mh, plane::Clipped::Kept);
    let hann = |m: usize| -> Vec<f32> {
        (0..m)
            .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / m as f32).cos())
            .collect()
    };
    let (hann_x, hann_y) = (hann(mw), hann(mh));
    let mut spec: Vec<Complex<f32>> = white
        .iter()
        .enumerate()
        .map(|(i, &v)| Complex::new(v * hann_y[i / mw] * hann_x[i % mw], 0.0))
        .collect();
    fft2(planner, &mut spec, mh, mw, false);
    let power: Vec<f32> = spec.iter().map(|c| c.norm_sqr()).collect();
    let local = plane::box_mean(&power, mw, mh, 4);
    let norm: Vec<f32> = power
        .iter()
        .zip(&local)
        .map(|(p, l)| if *l > 0.0 { p / l } else { 0.0 })
        .collect();
    let best4 = best_of_2x2(&norm, mw, mh, SCORE_CLIP as f32);
    Some(Spectrum {
        norm,
        best4,
        mw,
        mh,
        factor,
        block_x: (0..mw).map(|x| on_block_grid(x, mw)).collect(),
        block_y: (0..mh).map(|y| on_block_grid(y, mh)).collect(),
    })
}

/// For every bin (x, y) of the cyclic `w`×`h` plane `v`: the largest of the bins (x, y),
/// (x+1, y), (x, y+1), (x+1, y+1), clipped at `clip`.
fn best_of_2x2(v: &[f32], w: usize, h: usize, clip: f32) -> Vec<f32> {
    // Row maxima of horizontal pairs first, then of vertical pairs of those.
    let pairs: Vec<f32> = v
        .chunks(w)
        .flat_map(|row| (0..w).map(move |x| row[x].max(row[(x + 1) % w])))
        .collect();
    (0..h)
        .flat_map(|y| {
            let (a, b) = (&pairs[y * w..][..w], &pairs[((y + 1) % h) * w..][..w]);
            a.iter().zip(b).map(move |(a, b)| a.max(*b).min(clip))
        })
        .collect()
}

/// Development diagnostics: the grid score at transform `t` (suspect pixels) and the
/// least-squares refinement started there.
pub(crate) fn score_transform(
    planner: &mut FftPlanner<f32>,
    y: &[f32],
    w: usize,
    h: usize,
    peaks: &[SyncPeak],
    t: Similarity,
) -> (f64, Option<Similarity>) {
    let Some(spec) = spectrum(planner, y, w, h) else {
        return (0.0, None);
    };
    let sd = t.scale / spec.factor;
    let score = score_at(&spec, peaks, sd, t.rotation);
    let refined = refine(
        &spec,
        peaks,
        Similarity {
            scale: sd,
            rotation: t.rotation,
        },
    )
    .map(|r| Similarity {
        scale: r.scale * spec.factor,
        rotation: r.rotation,
    });
    (score, refined)
}

#[cfg(test)]
mod tests {
    use super::{best_of_2x2, fft_size, floor, round, wrap};

    #[test]
    fn floor_and_round_match_the_library() {
        for i in -4000i32..4000 {
            let x = f64::from(i) * 0.125 + [0.0, 1e-9, -1e-9][(i.rem_euclid(3)) as usize];
            assert_eq!(floor(x), x.floor() as i64, "{x}");
            assert_eq!(round(x), x.round() as i64, "{x}");
        }
    }

    #[test]
    fn wrap_is_the_euclidean_remainder() {
        for n in [1usize, 5, 64] {
            for v in -200i64..200 {
                assert_eq!(wrap(v, n), v.rem_euclid(n as i64) as usize);
            }
        }
    }

    #[test]
    fn best_of_2x2_is_the_clipped_maximum_of_four_cyclic_neighbours() {
        let (w, h) = (5usize, 3usize);
        let v: Vec<f32> = (0..w * h).map(|i| ((i * 7) % 11) as f32).collect();
        let best = best_of_2x2(&v, w, h, 9.0);
        for y in 0..h {
            for x in 0..w {
                let at = |dx: usize, dy: usize| v[((y + dy) % h) * w + (x + dx) % w];
                let want = at(0, 0).max(at(1, 0)).max(at(0, 1)).max(at(1, 1)).min(9.0);
                assert_eq!(best[y * w + x], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn fft_sizes_are_5_smooth_and_the_largest_that_fit() {
        assert_eq!(fft_size(384), 384);
        assert_eq!(fft_size(358), 324);
        assert_eq!(fft_size(127), 125);
        assert_eq!(fft_size(1024), 1024);
        assert_eq!(fft_size(1023), 1000);
        assert_eq!(fft_size(0), 1);
    }
}
