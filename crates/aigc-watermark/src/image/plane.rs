//! Plane arithmetic shared by the embedder and the detector: box filters over integral images,
//! whitening (so the host image looks like unit-variance noise to the correlator), resampling.

use rayon::prelude::*;

/// Rows per parallel band.
const BAND: usize = 64;

/// Box mean of `src` over a (2r+1)² window clamped at the borders: direct sums of the 2r+1
/// rows then of the 2r+1 columns, each a pass of whole-row slice additions that vectorise.
/// Direct sums (not running ones) keep f32 exact enough: a running sum of squares (see
/// [`whiten`]) would drift by more than the power of a flat area next to an edge. Parallel over
/// bands of rows.
pub(crate) fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    // 1 / (window columns inside the plane) per column: a multiply per sample, not a division.
    let inv_cols: Vec<f32> = (0..w)
        .map(|x| 1.0 / ((x + r + 1).min(w) - x.saturating_sub(r)) as f32)
        .collect();
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w * BAND)
        .enumerate()
        .for_each(|(band, out)| {
            let mut col = vec![0.0f32; w];
            for (i, out_row) in out.chunks_mut(w).enumerate() {
                let y = band * BAND + i;
                let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
                col.fill(0.0);
                for yy in y0..y1 {
                    let row = &src[yy * w..][..w];
                    col.iter_mut().zip(row).for_each(|(c, &v)| *c += v);
                }
                row_sums(&col, r, out_row);
                let inv_rows = 1.0 / (y1 - y0) as f32;
                out_row
                    .iter_mut()
                    .zip(&inv_cols)
                    .for_each(|(o, &k)| *o *= k * inv_rows);
            }
        });
    out
}

/// Sums of `col` over a window of 2r+1 clamped at the ends, into `out`.
#[inline(always)]
fn row_sums(col: &[f32], r: usize, out: &mut [f32]) {
    let w = col.len();
    if w > 2 * r {
        // Interior: 2r+1 shifted slice additions.
        let inner = &mut out[r..w - r];
        inner.fill(0.0);
        for d in 0..=2 * r {
            inner.iter_mut().zip(&col[d..]).for_each(|(o, &c)| *o += c);
        }
    }
    // The ends (all of a row narrower than the window) directly.
    for x in (0..r.min(w)).chain(w.saturating_sub(r).max(r.min(w))..w) {
        out[x] = col[x.saturating_sub(r)..(x + r + 1).min(w)].iter().sum();
    }
}

/// High-pass and locally normalise a plane: residual from a 5×5 mean, divided by its local RMS
/// (5×5) and clipped to ±3, so strong edges cannot dominate a correlation. Clipped samples (0
/// or 255) away from samples near the limit are erasures: left out of the windows, whitened to
/// 0 (see [`whiten_band_erased`], [`is_erased`]). The 5×5 RMS (was
/// 9×9) keeps the mark on flat paper next to text strokes: a stroke edge inside a 9×9 window
/// divided the paper around it down to nothing (development set: pilot z on text 12.7 → 18.5
/// unattacked, mean raw errors 27.6 → 25.3 over 11 attacks; 3×3 was worse again).
pub(crate) fn whiten(src: &[f32], w: usize, h: usize, clipped: Clipped) -> Vec<f32> {
    let mut white = vec![0.0f32; w * h];
    white
        .par_chunks_mut(w * BAND)
        .enumerate()
        .for_each(|(band, out)| {
            let rows = Band {
                src,
                w,
                h,
                y0: band * BAND,
                clipped,
            };
            whiten_band(rows, out, None)
        });
    white
}

/// How [`whiten`] treats clipped samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clipped {
    /// As erasures ([`is_erased`]): the pilot folds, which read the mark.
    Erased,
    /// As samples: the synchronisation spectrum. With erasures the sub-bin fit of a text
    /// image resized to 50 % (008-text) no longer refined at the true transform, and the image
    /// was lost.
    Kept,
}

/// [`whiten`], and the reliability class of every sample (see [`reliability_class`]), in the
/// same pass.
pub(crate) fn whiten_classified(src: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<u8>) {
    let mut white = vec![0.0f32; w * h];
    let mut classes = vec![0u8; w * h];
    white
        .par_chunks_mut(w * BAND)
        .zip(classes.par_chunks_mut(w * BAND))
        .enumerate()
        .for_each(|(band, (out, cls))| {
            let rows = Band {
                src,
                w,
                h,
                y0: band * BAND,
                clipped: Clipped::Erased,
            };
            whiten_band(rows, out, Some(cls));
        });
    (white, classes)
}

/// Whitens the rows from `y0` that `out` holds (and classifies them into `classes`): the
/// residual from the 5×5 mean over the rows it needs (two more either side), its 5×5 power,
/// then [`normalise`]. Band by band, so the intermediate rows stay in cache (whole-plane
/// intermediates made the whitening of a 2048² decoding fold memory-bound).
fn whiten_band(band: Band<'_>, out: &mut [f32], classes: Option<&mut [u8]>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), all `whiten_band_avx2` requires.
        unsafe { whiten_band_avx2(band, out, classes) };
        return;
    }
    whiten_band_any(band, out, classes);
}

/// What a band of the whitening reads: the plane (`w` × `h`), the band's first row `y0`, and
/// how clipped samples count.
#[derive(Clone, Copy)]
struct Band<'a> {
    src: &'a [f32],
    w: usize,
    h: usize,
    y0: usize,
    clipped: Clipped,
}

/// [`whiten_band_any`] compiled for AVX2: its whole-row loops run 8 samples wide instead of 4.
/// The same IEEE operations on each sample in the same order (no fused multiply-add, no
/// reassociation), so the same values: a third of an unmarked search was whitening.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn whiten_band_avx2(band: Band<'_>, out: &mut [f32], classes: Option<&mut [u8]>) {
    whiten_band_any(band, out, classes);
}

/// [`whiten_band`] for any CPU (inlined into each instruction-set variant).
#[inline(always)]
fn whiten_band_any(band: Band<'_>, out: &mut [f32], mut classes: Option<&mut [u8]>) {
    let Band {
        src,
        w,
        h,
        y0,
        clipped,
    } = band;
    const R: usize = 2;
    let y1 = y0 + out.len() / w;
    let (ra, rb) = (y0.saturating_sub(R), (y1 + R).min(h));
    // Rows the band reads: a clipped sample among them takes the erasure path.
    let rows_read = &src[ra.saturating_sub(R) * w..(rb + R).min(h) * w];
    if clipped == Clipped::Erased && rows_read.iter().any(|&v| is_clipped(v)) {
        whiten_band_erased(src, w, h, y0, out, classes);
        return;
    }
    let inv_cols: Vec<f32> = (0..w)
        .map(|x| 1.0 / ((x + R + 1).min(w) - x.saturating_sub(R)) as f32)
        .collect();
    let window = |y: usize| (y.saturating_sub(R), (y + R + 1).min(h));
    let mut col = vec![0.0f32; w];
    let mut sums = vec![0.0f32; w];
    // Residual rows ra..rb.
    let mut res = vec![0.0f32; (rb - ra) * w];
    for (y, res_row) in (ra..rb).zip(res.chunks_mut(w)) {
        let (a, b) = window(y);
        col.fill(0.0);
        for yy in a..b {
            col.iter_mut()
                .zip(&src[yy * w..][..w])
                .for_each(|(c, &v)| *c += v);
        }
        row_sums(&col, R, &mut sums);
        let inv_rows = 1.0 / (b - a) as f32;
        for (((r, &x), &s), &k) in res_row
            .iter_mut()
            .zip(&src[y * w..][..w])
            .zip(&sums)
            .zip(&inv_cols)
        {
            *r = x - s * k * inv_rows;
        }
    }
    // Power and normalised output for rows y0..y1.
    for (i, out_row) in out.chunks_mut(w).enumerate() {
        let y = y0 + i;
        let (a, b) = window(y);
        col.fill(0.0);
        for yy in a..b {
            col.iter_mut()
                .zip(&res[(yy - ra) * w..][..w])
                .for_each(|(c, &v)| *c += v * v);
        }
        row_sums(&col, R, &mut sums);
        let inv_rows = 1.0 / (b - a) as f32;
        // The power, in place.
        sums.iter_mut()
            .zip(&inv_cols)
            .for_each(|(s, &k)| *s *= k * inv_rows);
        write_row(
            out_row,
            &res[(y - ra) * w..][..w],
            &sums,
            &src[y * w..][..w],
            classes.as_deref_mut().map(|c| &mut c[i * w..][..w]),
        );
    }
}

/// One output row of the whitening: each residual normalised by its local power, and (for the
/// decoding fold) each sample's reliability class from its value and that power.
#[inline(always)]
fn write_row(out: &mut [f32], res: &[f32], power: &[f32], src: &[f32], classes: Option<&mut [u8]>) {
    for ((o, &v), &p) in out.iter_mut().zip(res).zip(power) {
        *o = normalise(v, p);
    }
    if let Some(cls) = classes {
        for ((c, &x), &p) in cls.iter_mut().zip(src).zip(power) {
            *c = reliability_class(x, p);
        }
    }
}

/// Whether a sample is clipped (0 or 255): its value says only that host + mark + attack went
/// past the range, nothing about the mark.
#[inline]
fn is_clipped(v: f32) -> bool {
    !(0.5..=254.5).contains(&v)
}

/// [`whiten_band`] with clipped samples as erasures: the local mean and power are taken over
/// the unclipped samples of each window only, and a clipped sample whitens to 0. A brightness
/// lift or a contrast stretch clips white paper to 255; counted as samples, the paper's step to
/// the ink beside it made every ink pixel's residual a stroke edge, hiding the mark the flat
/// ink still carries.
fn whiten_band_erased(
    src: &[f32],
    w: usize,
    h: usize,
    y0: usize,
    out: &mut [f32],
    mut classes: Option<&mut [u8]>,
) {
    const R: usize = 2;
    let y1 = y0 + out.len() / w;
    let (ra, rb) = (y0.saturating_sub(R), (y1 + R).min(h));
    let window = |y: usize| (y.saturating_sub(R), (y + R + 1).min(h));
    let base = ra.saturating_sub(R);
    let top = (rb + R).min(h);
    let mut valid = vec![1.0f32; (top - base) * w];
    for (y, vrow) in (base..top).zip(valid.chunks_mut(w)) {
        for (x, v) in vrow.iter_mut().enumerate() {
            if is_erased(src, w, h, x, y) {
                *v = 0.0;
            }
        }
    }
    let valid_row = |y: usize| &valid[(y - base) * w..][..w];
    let (mut col, mut col_n) = (vec![0.0f32; w], vec![0.0f32; w]);
    let (mut sums, mut sums_n) = (vec![0.0f32; w], vec![0.0f32; w]);
    // Residual rows ra..rb from the mean of the unclipped samples (0 where clipped).
    let mut res = vec![0.0f32; (rb - ra) * w];
    for (y, res_row) in (ra..rb).zip(res.chunks_mut(w)) {
        let (a, b) = window(y);
        col.fill(0.0);
        col_n.fill(0.0);
        for yy in a..b {
            for ((c, n), (&v, &k)) in col
                .iter_mut()
                .zip(col_n.iter_mut())
                .zip(src[yy * w..][..w].iter().zip(valid_row(yy)))
            {
                *c += v * k;
                *n += k;
            }
        }
        row_sums(&col, R, &mut sums);
        row_sums(&col_n, R, &mut sums_n);
        // An erased sample's own weight is 0: n = 0 there stands for "no residual".
        sums_n
            .iter_mut()
            .zip(valid_row(y))
            .for_each(|(n, &k)| *n *= k);
        for (((r, &x), &s), &n) in res_row
            .iter_mut()
            .zip(&src[y * w..][..w])
            .zip(&sums)
            .zip(&sums_n)
        {
            *r = if n < 0.5 { 0.0 } else { x - s / n };
        }
    }
    // Power over the unclipped samples and normalised output for rows y0..y1.
    for (i, out_row) in out.chunks_mut(w).enumerate() {
        let y = y0 + i;
        let (a, b) = window(y);
        col.fill(0.0);
        col_n.fill(0.0);
        for yy in a..b {
            for ((c, n), (&v, &k)) in col
                .iter_mut()
                .zip(col_n.iter_mut())
                .zip(res[(yy - ra) * w..][..w].iter().zip(valid_row(yy)))
            {
                *c += v * v;
                *n += k;
            }
        }
        row_sums(&col, R, &mut sums);
        row_sums(&col_n, R, &mut sums_n);
        sums.iter_mut()
            .zip(&sums_n)
            .for_each(|(s, &n)| *s /= n.max(1.0));
        write_row(
            out_row,
            &res[(y - ra) * w..][..w],
            &sums,
            &src[y * w..][..w],
            classes.as_deref_mut().map(|c| &mut c[i * w..][..w]),
        );
    }
}

/// Levels from the clipping limit within which an unclipped sample shows that its area only
/// just reaches the limit (see [`is_erased`]).
const NEAR_CLIP: f32 = 8.0;

/// Whether the sample at (x, y) is an erasure: clipped, and no unclipped neighbour (3×3) lies
/// within [`NEAR_CLIP`] of the limit. Where an area only just reaches the limit (paper near
/// 255 after JPEG ringing or a small lift), which samples clip follows the mark's sign and
/// carries it, so those stay samples; paper lifted well past the limit is uniformly 255 and
/// carries nothing.
fn is_erased(src: &[f32], w: usize, h: usize, x: usize, y: usize) -> bool {
    if !is_clipped(src[y * w + x]) {
        return false;
    }
    let near = |v: f32| !is_clipped(v) && !((0.5 + NEAR_CLIP)..=(254.5 - NEAR_CLIP)).contains(&v);
    for yy in y.saturating_sub(1)..(y + 2).min(h) {
        let row = &src[yy * w..][..w];
        if row[x.saturating_sub(1)..(x + 2).min(w)]
            .iter()
            .any(|&v| near(v))
        {
            return false;
        }
    }
    true
}

/// A residual divided by its local RMS and clipped to ±3.
#[inline(always)]
fn normalise(v: f32, power: f32) -> f32 {
    (v / (power.sqrt() + 0.5)).clamp(-3.0, 3.0)
}

/// Reliability classes of whitened samples: [`ACTIVITY_CLASSES`] octaves of local residual
/// RMS, then one class of clipped pixels.
pub(crate) const RELIABILITY_CLASSES: usize = ACTIVITY_CLASSES + 1;
/// Octaves of local residual RMS told apart (from 0.5 level up, the last one open).
const ACTIVITY_CLASSES: usize = 8;

/// The class of a sample of value `v` whose 5×5 residual power is `power`: codecs erase the
/// mark in flat areas and keep it in texture, host noise grows with texture, and a clipped pixel
/// (0 or 255: black strokes, paper after a brightness lift) carries no mark of its own (an
/// erasure, whitened to 0, unless its area only just reaches the limit: [`is_erased`]); the
/// detector weights each class by its own measured signal-to-noise ratio.
#[inline(always)]
pub(crate) fn reliability_class(v: f32, power: f32) -> u8 {
    if !(0.5..=254.5).contains(&v) {
        return ACTIVITY_CLASSES as u8;
    }
    // power = RMS² ≥ 0; octaves of RMS from 0.5 are pairs of binary exponents of the power
    // from 0.25 = 2⁻², so the class is read from the exponent bits (no loop, no libm call).
    let exponent = ((power.to_bits() >> 23) & 0xff) as i32 - 127;
    ((exponent + 4).max(0) / 2).min(ACTIVITY_CLASSES as i32 - 1) as u8
}

/// Bilinear sample of `src` at (x, y), clamped to the plane.
pub(crate) fn bilinear(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    // Non-negative after the clamp: truncation is the floor (and needs no libm call).
    let x0 = x as usize;
    let y0 = y as usize;
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let fx = x - x0 as f32;
    let fy = y - y0 as f32;
    let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
    let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// [`bilinear`] at a position with 0 ≤ x < w − 1 and 0 ≤ y < h − 1 (no clamping needed; the
/// same arithmetic, so the same value).
#[inline]
fn bilinear_inside(src: &[f32], w: usize, x: f32, y: f32) -> f32 {
    // Through i32: one conversion instruction each (f32 → usize has no x86 instruction and
    // took a fifth of the resampling); the same value for 0 ≤ x, y < 2³¹.
    let (x0, y0) = (x as i32 as usize, y as i32 as usize);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let i = y0 * w + x0;
    // One bounds check for the four neighbours.
    let p = &src[i..i + w + 2];
    let top = p[0] * (1.0 - fx) + p[1] * fx;
    let bottom = p[w] * (1.0 - fx) + p[w + 1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// One output row wholly inside the plane (see [`resample`]): sample `col` is
/// [`bilinear_inside`] at ((x0 + c·col) as f32, (y0 + s·col) as f32).
fn resample_row(src: &[f32], w: usize, out: &mut [f32], x0: f64, y0: f64, c: f64, s: f64) {
    #[cfg(target_arch = "x86_64")]
    if src.len() + w < i32::MAX as usize && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above); the plane's indices fit in i32.
        let done = unsafe { resample_row_avx2(src, w, out, x0, y0, c, s) };
        resample_row_scalar(src, w, &mut out[done..], done, x0, y0, c, s);
        return;
    }
    resample_row_scalar(src, w, out, 0, x0, y0, c, s);
}

/// [`resample_row`] one sample at a time, from column `first` (`out` starts there).
#[allow(clippy::too_many_arguments)]
fn resample_row_scalar(
    src: &[f32],
    w: usize,
    out: &mut [f32],
    first: usize,
    x0: f64,
    y0: f64,
    c: f64,
    s: f64,
) {
    for (col, o) in (first..).zip(out.iter_mut()) {
        let k = col as f64;
        let (x, y) = ((x0 + c * k) as f32, (y0 + s * k) as f32);
        *o = bilinear_inside(src, w, x, y);
    }
}

/// [`resample_row`] eight samples at a time with AVX2 gathers (the resampling was a third of
/// an unmarked search, mostly the scalar conversions and loads of each sample): the same IEEE
/// operations in the same order as [`bilinear_inside`] (products and sums apart, no fused
/// multiply-add), so the same values. Returns how many leading samples it wrote (whole groups
/// of eight); the caller does the rest.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn resample_row_avx2(
    src: &[f32],
    w: usize,
    out: &mut [f32],
    x0: f64,
    y0: f64,
    c: f64,
    s: f64,
) -> usize {
    use std::arch::x86_64::*;
    // The largest index whose 2×2 neighbourhood lies in `src`: positions inside the plane never
    // exceed it, and the clamp keeps every gather in bounds whatever the caller passes.
    let Some(max_index) = src.len().checked_sub(w + 2) else {
        return 0;
    };
    let (vx0, vy0, vc, vs) = (
        _mm256_set1_pd(x0),
        _mm256_set1_pd(y0),
        _mm256_set1_pd(c),
        _mm256_set1_pd(s),
    );
    let vw = _mm256_set1_epi32(w as i32);
    let vmax = _mm256_set1_epi32(max_index as i32);
    let one = _mm256_set1_ps(1.0);
    let (lanes_lo, lanes_hi) = (_mm_setr_epi32(0, 1, 2, 3), _mm_setr_epi32(4, 5, 6, 7));
    // (x0 + c·k) as f32 for four columns k: a product, a sum, then rounding to f32.
    let at = |v0: __m256d, d: __m256d, k: __m128i| {
        _mm256_cvtpd_ps(_mm256_add_pd(v0, _mm256_mul_pd(d, _mm256_cvtepi32_pd(k))))
    };
    let groups = out.len() / 8;
    for (g, chunk) in out.chunks_exact_mut(8).enumerate().take(groups) {
        let col = _mm_set1_epi32((g * 8) as i32);
        let (k_lo, k_hi) = (_mm_add_epi32(col, lanes_lo), _mm_add_epi32(col, lanes_hi));
        let x = _mm256_set_m128(at(vx0, vc, k_hi), at(vx0, vc, k_lo));
        let y = _mm256_set_m128(at(vy0, vs, k_hi), at(vy0, vs, k_lo));
        // Truncation: the floor of the non-negative positions, as `as i32` does.
        let (xi, yi) = (_mm256_cvttps_epi32(x), _mm256_cvttps_epi32(y));
        let fx = _mm256_sub_ps(x, _mm256_cvtepi32_ps(xi));
        let fy = _mm256_sub_ps(y, _mm256_cvtepi32_ps(yi));
        let i = _mm256_min_epi32(_mm256_add_epi32(_mm256_mullo_epi32(yi, vw), xi), vmax);
        let i = _mm256_max_epi32(i, _mm256_setzero_si256());
        // SAFETY: 0 ≤ i ≤ len − w − 2 (clamped above), so i, i + 1, i + w and i + w + 1 all
        // index `src`.
        let (p00, p01, p10, p11) = unsafe {
            let base = src.as_ptr();
            (
                _mm256_i32gather_ps::<4>(base, i),
                _mm256_i32gather_ps::<4>(base.add(1), i),
                _mm256_i32gather_ps::<4>(base.add(w), i),
                _mm256_i32gather_ps::<4>(base.add(w + 1), i),
            )
        };
        let gx = _mm256_sub_ps(one, fx);
        let top = _mm256_add_ps(_mm256_mul_ps(p00, gx), _mm256_mul_ps(p01, fx));
        let bottom = _mm256_add_ps(_mm256_mul_ps(p10, gx), _mm256_mul_ps(p11, fx));
        let v = _mm256_add_ps(
            _mm256_mul_ps(top, _mm256_sub_ps(one, fy)),
            _mm256_mul_ps(bottom, fy),
        );
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds eight f32 (storeu needs no alignment).
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        chunk.copy_from_slice(&lanes);
    }
    groups * 8
}

/// A similarity transform from the marked grid to the suspect plane: the suspect is the marked
/// image scaled by `scale` and rotated by `rotation` radians (counter-clockwise in x-right,
/// y-down pixel axes, i.e. clockwise as displayed) about the centres of both planes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Similarity {
    pub scale: f64,
    pub rotation: f64,
}

/// A region of the marked grid resampled from the suspect plane.
pub(crate) struct Resampled<'a> {
    /// Samples, `width` × `height` (the suspect plane itself under the identity: no copy).
    pub data: std::borrow::Cow<'a, [f32]>,
    pub width: usize,
    pub height: usize,
    /// Position of the region in the virtual marked plane (so folding keeps absolute phase).
    pub origin: (usize, usize),
    /// Whether each sample fell inside the suspect plane (None: all did).
    pub inside: Option<Vec<bool>>,
    /// The region is the whole virtual marked plane.
    pub complete: bool,
}

/// Resamples the suspect plane `src` (w×h) onto the marked grid under `t`: marked pixel centre
/// X maps to C_s + scale·R(rotation)·(X − C_m) with C_s, C_m the plane centres, so the identity
/// maps every pixel to itself. Only a centred region of at most `max_side`² marked pixels is
/// produced.
pub(crate) fn resample<'a>(
    src: &'a [f32],
    w: usize,
    h: usize,
    t: Similarity,
    max_side: usize,
) -> Resampled<'a> {
    let full_w = ((w as f64 / t.scale).floor() as usize).max(1);
    let full_h = ((h as f64 / t.scale).floor() as usize).max(1);
    let (nw, nh) = (full_w.min(max_side), full_h.min(max_side));
    let (ox, oy) = ((full_w - nw) / 2, (full_h - nh) / 2);
    let complete = (nw, nh) == (full_w, full_h);
    if t.scale == 1.0 && t.rotation == 0.0 && complete {
        return Resampled {
            data: std::borrow::Cow::Borrowed(src),
            width: w,
            height: h,
            origin: (0, 0),
            inside: None,
            complete,
        };
    }
    // The continuous centre of the virtual plane, so a scale near 1 keeps pixels in place.
    let (cmx, cmy) = (w as f64 / t.scale / 2.0, h as f64 / t.scale / 2.0);
    let (csx, csy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (c, s) = (t.scale * t.rotation.cos(), t.scale * t.rotation.sin());
    // The transform is affine, so an output row is a straight segment in the source and its
    // ends tell whether it stays inside.
    // (The margin keeps the f32 rounding of a position from reaching the last column or row.)
    let (max_x, max_y) = ((w - 1) as f64 - 0.01, (h - 1) as f64 - 0.01);
    // Source position of the row's first sample, and whether the whole row lies strictly inside
    // the plane (one pixel short of the last row and column, so the right and lower neighbours
    // exist): then no clamps, every sample inside.
    let row_start = |row: usize| {
        let dy = (oy + row) as f64 + 0.5 - cmy;
        let dx0 = ox as f64 + 0.5 - cmx;
        let x0 = csx + c * dx0 - s * dy - 0.5;
        let y0 = csy + s * dx0 + c * dy - 0.5;
        let last = (nw - 1) as f64;
        let (x1, y1) = (x0 + c * last, y0 + s * last);
        let interior =
            x0.min(x1) >= 0.0 && y0.min(y1) >= 0.0 && x0.max(x1) < max_x && y0.max(y1) < max_y;
        (x0, y0, interior)
    };
    let interior_row = |out: &mut [f32], x0: f64, y0: f64| resample_row(src, w, out, x0, y0, c, s);
    let mut data = vec![0.0f32; nw * nh];
    // A region wholly inside the plane (every search window of a moderate transform) needs no
    // mask: it is neither allocated nor filled, and the fold adds every sample unchecked.
    if (0..nh).all(|row| row_start(row).2) {
        data.par_chunks_mut(nw).enumerate().for_each(|(row, out)| {
            let (x0, y0, _) = row_start(row);
            interior_row(out, x0, y0);
        });
        return Resampled {
            data: std::borrow::Cow::Owned(data),
            width: nw,
            height: nh,
            origin: (ox, oy),
            inside: None,
            complete,
        };
    }
    let mut inside = vec![false; nw * nh];
    data.par_chunks_mut(nw)
        .zip(inside.par_chunks_mut(nw))
        .enumerate()
        .for_each(|(row, (out, ins))| {
            let (x0, y0, interior) = row_start(row);
            if interior {
                ins.iter_mut().for_each(|i| *i = true);
                interior_row(out, x0, y0);
            } else {
                for (col, (o, i)) in out.iter_mut().zip(ins.iter_mut()).enumerate() {
                    let k = col as f64;
                    let (x, y) = (x0 + c * k, y0 + s * k);
                    *i = x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5;
                    *o = bilinear(src, w, h, x as f32, y as f32);
                }
            }
        });
    Resampled {
        data: std::borrow::Cow::Owned(data),
        width: nw,
        height: nh,
        origin: (ox, oy),
        inside: Some(inside),
        complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reliability_classes_are_octaves_of_rms_and_clipping() {
        assert_eq!(reliability_class(128.0, 0.0), 0);
        assert_eq!(reliability_class(128.0, 0.3), 1);
        assert_eq!(reliability_class(128.0, 1.5), 2);
        assert_eq!(reliability_class(128.0, 0.999), 1);
        assert_eq!(reliability_class(128.0, 4.0), 3);
        assert_eq!(reliability_class(128.0, 1e6), ACTIVITY_CLASSES as u8 - 1);
        assert_eq!(reliability_class(255.0, 0.3), ACTIVITY_CLASSES as u8);
        assert_eq!(reliability_class(0.0, 0.3), ACTIVITY_CLASSES as u8);
    }

    #[test]
    fn box_mean_of_a_constant_is_the_constant() {
        let m = box_mean(&[3.0; 35], 7, 5, 2);
        assert!(m.iter().all(|v| (v - 3.0).abs() < 1e-6));
    }

    #[test]
    fn resample_at_scale_one_is_identity() {
        let src: Vec<f32> = (0..30).map(|v| v as f32).collect();
        let t = Similarity {
            scale: 1.0,
            rotation: 0.0,
        };
        let r = resample(&src, 6, 5, t, usize::MAX);
        assert_eq!((r.width, r.height, r.origin), (6, 5, (0, 0)));
        assert_eq!(&r.data[..], &src[..]);
        // A tiny rotation takes the slow path and still lands on the same pixels near the centre.
        let t = Similarity {
            scale: 1.0,
            rotation: 1e-9,
        };
        let r = resample(&src, 6, 5, t, usize::MAX);
        assert!(r.data.iter().zip(&src).all(|(a, b)| (a - b).abs() < 1e-3));
    }

    #[test]
    fn resample_rows_inside_and_across_the_border_match_bilinear() {
        let (w, h) = (53, 41);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 251) as f32).collect();
        for t in [
            Similarity {
                scale: 0.8,
                rotation: 0.05,
            },
            Similarity {
                scale: 1.3,
                rotation: -0.1,
            },
        ] {
            let r = resample(&src, w, h, t, usize::MAX);
            let (cmx, cmy) = (w as f64 / t.scale / 2.0, h as f64 / t.scale / 2.0);
            let (c, s) = (t.scale * t.rotation.cos(), t.scale * t.rotation.sin());
            let inside = r.inside.as_ref().expect("a transformed plane has a mask");
            for row in 0..r.height {
                for col in 0..r.width {
                    let dx = (r.origin.0 + col) as f64 + 0.5 - cmx;
                    let dy = (r.origin.1 + row) as f64 + 0.5 - cmy;
                    let x = w as f64 / 2.0 + c * dx - s * dy - 0.5;
                    let y = h as f64 / 2.0 + s * dx + c * dy - 0.5;
                    let expected = bilinear(&src, w, h, x as f32, y as f32);
                    let i = row * r.width + col;
                    assert!((r.data[i] - expected).abs() < 1e-2, "({col}, {row})");
                    let ins = x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5;
                    assert_eq!(inside[i], ins);
                }
            }
        }
    }

    #[test]
    fn resampled_rows_match_bilinear_exactly() {
        // Whatever the instruction set, a row inside the plane is bilinear_inside bit for bit.
        let (w, h) = (97, 61);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 256) as f32).collect();
        for (x0, y0, c, s) in [
            (3.25, 2.5, 0.7, 0.05),
            (1.0, 50.0, 0.9, -0.3),
            (0.0, 0.0, 0.58, 0.001),
        ] {
            let mut out = vec![0.0f32; 53];
            resample_row(&src, w, &mut out, x0, y0, c, s);
            for (col, &v) in out.iter().enumerate() {
                let k = col as f64;
                let (x, y) = ((x0 + c * k) as f32, (y0 + s * k) as f32);
                assert_eq!(
                    v.to_bits(),
                    bilinear_inside(&src, w, x, y).to_bits(),
                    "{col}"
                );
            }
        }
    }

    #[test]
    fn box_mean_matches_a_direct_sum() {
        let (w, h) = (37, 150);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 251) as f32).collect();
        for r in [2, 4, 20] {
            let m = box_mean(&src, w, h, r);
            for y in [0usize, 1, 63, 64, 65, 149] {
                for x in [0usize, 1, 18, 36] {
                    let mean = direct_mean(&src, w, h, r, x, y, |v| v);
                    assert!((f64::from(m[y * w + x]) - mean).abs() < 1e-3);
                }
            }
        }
    }

    /// Mean of f(sample) over the (2r+1)² window at (x, y), clamped at the borders.
    fn direct_mean(
        src: &[f32],
        w: usize,
        h: usize,
        r: usize,
        x: usize,
        y: usize,
        f: impl Fn(f64) -> f64,
    ) -> f64 {
        direct_mean_where(src, w, h, r, x, y, f, |_| true)
    }

    /// Mean of `f` over the samples of the window at (x, y) whose index passes `keep`.
    #[allow(clippy::too_many_arguments)]
    fn direct_mean_where(
        src: &[f32],
        w: usize,
        h: usize,
        r: usize,
        x: usize,
        y: usize,
        f: impl Fn(f64) -> f64,
        keep: impl Fn(usize) -> bool,
    ) -> f64 {
        let (mut s, mut n) = (0.0f64, 0.0f64);
        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
            for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                if keep(yy * w + xx) {
                    s += f(f64::from(src[yy * w + xx]));
                    n += 1.0;
                }
            }
        }
        s / n.max(1.0)
    }

    #[test]
    fn clipped_paper_is_erased_so_thin_ink_keeps_its_mark() {
        // Strokes 3 px wide of ink at 40 carrying a ±2 pattern, between paper lifted to 255 (a
        // brightness attack). Counted as samples, the paper's step hid the ink's mark (the
        // residual of an ink pixel was the stroke edge); as erasures, the ink reads it.
        let (w, h) = (64, 64);
        let mark = |i: usize| {
            if (i * 2_654_435_761) >> 7 & 1 == 1 {
                2.0f32
            } else {
                -2.0
            }
        };
        let ink = |i: usize| (i % w) % 8 < 3;
        let src: Vec<f32> = (0..w * h)
            .map(|i| if ink(i) { 40.0 + mark(i) } else { 255.0 })
            .collect();
        let corr = |white: &[f32]| {
            let (mut sxy, mut sxx, mut syy) = (0.0f64, 0.0f64, 0.0f64);
            for i in (0..w * h).filter(|&i| ink(i)) {
                let (a, b) = (f64::from(white[i]), f64::from(mark(i)));
                sxy += a * b;
                sxx += a * a;
                syy += b * b;
            }
            sxy / (sxx * syy).sqrt()
        };
        let erased = whiten(&src, w, h, Clipped::Erased);
        assert!(corr(&erased) > 0.7, "{}", corr(&erased));
        assert!((0..w * h).filter(|&i| !ink(i)).all(|i| erased[i] == 0.0));
        // The same plane with the paper just under the clipping limit: the old whitening.
        let unclipped: Vec<f32> = src.iter().map(|&v| v.min(254.0)).collect();
        assert!(corr(&whiten(&unclipped, w, h, Clipped::Erased)) < 0.5);
    }

    #[test]
    fn whitening_by_bands_matches_its_definition() {
        // Taller than a band, so band edges are crossed; flat, clipped and busy areas.
        let (w, h) = (41, 150);
        let src: Vec<f32> = (0..w * h)
            .map(|i| match (i / w) % 50 {
                0..10 => 255.0,
                10..20 => 100.0,
                _ => ((i * 7919) % 251) as f32,
            })
            .collect();
        let (white, classes) = whiten_classified(&src, w, h);
        assert_eq!(white, whiten(&src, w, h, Clipped::Erased));
        // Erased samples (the 255 rows, but for those beside noise samples near 255) are left out
        // of every window and whitened to 0.
        let kept = |i: usize| !is_erased(&src, w, h, i % w, i / w);
        let res: Vec<f32> = (0..w * h)
            .map(|i| {
                if kept(i) {
                    src[i] - direct_mean_where(&src, w, h, 2, i % w, i / w, |v| v, kept) as f32
                } else {
                    0.0
                }
            })
            .collect();
        for y in [0usize, 1, 2, 9, 10, 11, 12, 63, 64, 65, 127, 128, 149] {
            for x in [0usize, 1, 2, 20, 39, 40] {
                let power = direct_mean_where(&res, w, h, 2, x, y, |v| v * v, kept) as f32;
                let expected = normalise(res[y * w + x], power);
                assert!((white[y * w + x] - expected).abs() < 1e-3, "({x}, {y})");
                assert_eq!(classes[y * w + x], reliability_class(src[y * w + x], power));
            }
        }
    }
}
