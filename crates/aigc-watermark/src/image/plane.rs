//! Plane arithmetic shared by the embedder and the detector: box filters over integral images,
//! whitening (so the host image looks like unit-variance noise to the correlator), resampling.

use rayon::prelude::*;

/// Rows per parallel band: large enough that each band's set-up (one window of column sums) is
/// cheap next to its work.
const BAND: usize = 64;

/// Box means of `src` and of `src²` (w×h, row-major) over a (2r+1)² window clamped at the
/// borders, in one pass: running column sums (f64, so long columns do not drift) then running
/// row sums. Parallel over bands of rows.
pub(crate) fn box_moments(src: &[f32], w: usize, h: usize, r: usize) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0.0f32; w * h];
    let mut mean_sq = vec![0.0f32; w * h];
    box_pass::<true>(src, w, h, r, &mut mean, &mut mean_sq);
    (mean, mean_sq)
}

/// Box mean of `src` over a (2r+1)² window clamped at the borders.
pub(crate) fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut mean = vec![0.0f32; w * h];
    box_pass::<false>(src, w, h, r, &mut mean, &mut []);
    mean
}

/// The box filter behind [`box_moments`] and [`box_mean`]; squares only when `SQ`.
fn box_pass<const SQ: bool>(
    src: &[f32],
    w: usize,
    h: usize,
    r: usize,
    mean: &mut [f32],
    mean_sq: &mut [f32],
) {
    // 1 / (window columns inside the plane) per column: a multiply per sample, not a division.
    let inv_cols: Vec<f64> = (0..w)
        .map(|x| 1.0 / ((x + r + 1).min(w) - x.saturating_sub(r)) as f64)
        .collect();
    let band = |band: usize, m_out: &mut [f32], q_out: &mut [f32]| {
        let y_start = band * BAND;
        let mut col = vec![0.0f64; w];
        let mut col_sq = vec![0.0f64; if SQ { w } else { 0 }];
        let add = |col: &mut [f64], col_sq: &mut [f64], row: &[f32], sign: f64| {
            for (c, &v) in col.iter_mut().zip(row) {
                *c += sign * f64::from(v);
            }
            if SQ {
                for (q, &v) in col_sq.iter_mut().zip(row) {
                    *q += sign * f64::from(v) * f64::from(v);
                }
            }
        };
        for yy in y_start.saturating_sub(r)..(y_start + r + 1).min(h) {
            add(&mut col, &mut col_sq, &src[yy * w..][..w], 1.0);
        }
        for i in 0..m_out.len() / w {
            let y = y_start + i;
            let inv_rows = 1.0 / ((y + r + 1).min(h) - y.saturating_sub(r)) as f64;
            row_means(&col, &inv_cols, inv_rows, r, &mut m_out[i * w..][..w]);
            if SQ {
                let q_row = &mut q_out[i * w..][..w];
                row_means(&col_sq, &inv_cols, inv_rows, r, q_row);
                // Running sums can drift a hair below zero where the plane is flat.
                q_row.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            if y + r + 1 < h {
                add(&mut col, &mut col_sq, &src[(y + r + 1) * w..][..w], 1.0);
            }
            if y >= r {
                add(&mut col, &mut col_sq, &src[(y - r) * w..][..w], -1.0);
            }
        }
    };
    if SQ {
        mean.par_chunks_mut(w * BAND)
            .zip(mean_sq.par_chunks_mut(w * BAND))
            .enumerate()
            .for_each(|(i, (m, q))| band(i, m, q));
    } else {
        mean.par_chunks_mut(w * BAND)
            .enumerate()
            .for_each(|(i, m)| band(i, m, &mut []));
    }
}

/// Horizontal running window over the column sums `col`; writes the means.
fn row_means(col: &[f64], inv_cols: &[f64], inv_rows: f64, r: usize, out: &mut [f32]) {
    let w = col.len();
    let mut s: f64 = col[..(r + 1).min(w)].iter().sum();
    for x in 0..w {
        out[x] = (s * inv_cols[x] * inv_rows) as f32;
        if x + r + 1 < w {
            s += col[x + r + 1];
        }
        if x >= r {
            s -= col[x - r];
        }
    }
}

/// High-pass and locally normalise a plane: residual from a 5×5 mean, divided by its local RMS
/// (5×5) and clipped to ±3, so strong edges cannot dominate a correlation. The 5×5 RMS (was
/// 9×9) keeps the mark on flat paper next to text strokes: a stroke edge inside a 9×9 window
/// divided the paper around it down to nothing (development set: pilot z on text 12.7 → 18.5
/// unattacked, mean raw errors 27.6 → 25.3 over 11 attacks; 3×3 was worse again).
pub(crate) fn whiten(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let (res, power) = residual_power(src, w, h);
    res.par_iter()
        .zip(&power)
        .map(|(&v, &p)| normalise(v, p))
        .collect()
}

/// [`whiten`], and the reliability class of every sample (see [`reliability_class`]), in the
/// same pass.
pub(crate) fn whiten_classified(src: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<u8>) {
    let (res, power) = residual_power(src, w, h);
    res.par_iter()
        .zip(&power)
        .zip(src)
        .map(|((&v, &p), &x)| (normalise(v, p), reliability_class(x, p)))
        .unzip()
}

/// The residual from the 5×5 mean and its local power (5×5 mean of its square).
fn residual_power(src: &[f32], w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let mean = box_mean(src, w, h, 2);
    let res: Vec<f32> = src.par_iter().zip(&mean).map(|(a, m)| a - m).collect();
    let (_, power) = box_moments(&res, w, h, 2);
    (res, power)
}

/// A residual divided by its local RMS and clipped to ±3.
#[inline]
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
/// (0 or 255: black strokes, paper after a brightness lift) carries no mark of its own, only
/// the echo of its neighbours' through the local mean (with the opposite sign); the detector
/// weights each class by its own measured signal-to-noise ratio.
#[inline]
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
    let mut data = vec![0.0f32; nw * nh];
    let mut inside = vec![false; nw * nh];
    data.par_chunks_mut(nw)
        .zip(inside.par_chunks_mut(nw))
        .enumerate()
        .for_each(|(row, (out, ins))| {
            let dy = (oy + row) as f64 + 0.5 - cmy;
            for (col, (o, i)) in out.iter_mut().zip(ins.iter_mut()).enumerate() {
                let dx = (ox + col) as f64 + 0.5 - cmx;
                let x = csx + c * dx - s * dy - 0.5;
                let y = csy + s * dx + c * dy - 0.5;
                *i = x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5;
                *o = bilinear(src, w, h, x as f32, y as f32);
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
    fn box_moments_match_a_direct_sum() {
        let (w, h, r) = (37, 150, 2);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 251) as f32).collect();
        let (m, q) = box_moments(&src, w, h, r);
        for y in [0usize, 1, 63, 64, 65, 149] {
            for x in [0usize, 1, 18, 36] {
                let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0.0f64);
                for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                        let v = f64::from(src[yy * w + xx]);
                        s += v;
                        s2 += v * v;
                        n += 1.0;
                    }
                }
                assert!((f64::from(m[y * w + x]) - s / n).abs() < 1e-3);
                assert!((f64::from(q[y * w + x]) - s2 / n).abs() < 0.5);
            }
        }
    }
}
