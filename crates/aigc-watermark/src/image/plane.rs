//! Plane arithmetic shared by the embedder and the detector: box filters over integral images,
//! whitening (so the host image looks like unit-variance noise to the correlator), resampling.

/// Box mean of `src` (w×h, row-major) over a (2r+1)² window clamped at the borders.
pub(crate) fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    // Integral image in f64: sums over megapixel planes lose precision in f32.
    let iw = w + 1;
    let mut integral = vec![0.0f64; iw * (h + 1)];
    for y in 0..h {
        let mut row = 0.0f64;
        for x in 0..w {
            row += f64::from(src[y * w + x]);
            integral[(y + 1) * iw + x + 1] = integral[y * iw + x + 1] + row;
        }
    }
    let mut out = vec![0.0f32; w * h];
    for y in 0..h {
        let y0 = y.saturating_sub(r);
        let y1 = (y + r + 1).min(h);
        for x in 0..w {
            let x0 = x.saturating_sub(r);
            let x1 = (x + r + 1).min(w);
            let s = integral[y1 * iw + x1] - integral[y0 * iw + x1] - integral[y1 * iw + x0]
                + integral[y0 * iw + x0];
            let n = ((y1 - y0) * (x1 - x0)) as f64;
            out[y * w + x] = (s / n) as f32;
        }
    }
    out
}

/// High-pass and locally normalise a plane: residual from a 5×5 mean, divided by its local RMS
/// (9×9) and clipped to ±3, so strong edges cannot dominate a correlation.
pub(crate) fn whiten(src: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mean = box_mean(src, w, h, 2);
    let mut res: Vec<f32> = src.iter().zip(&mean).map(|(a, m)| a - m).collect();
    let sq: Vec<f32> = res.iter().map(|v| v * v).collect();
    let power = box_mean(&sq, w, h, 4);
    for (v, p) in res.iter_mut().zip(&power) {
        *v = (*v / (p.sqrt() + 0.5)).clamp(-3.0, 3.0);
    }
    res
}

/// Bilinear sample of `src` at (x, y), clamped to the plane.
pub(crate) fn bilinear(src: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let x0 = x.floor() as usize;
    let y0 = y.floor() as usize;
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let fx = x - x0 as f32;
    let fy = y - y0 as f32;
    let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
    let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Resamples `src` (a plane scaled by `scale` from the original) back onto the original pixel
/// grid: original pixel centre X maps to (X + 0.5)·scale − 0.5 in `src`. Only a centred region
/// of at most `max_side`² original pixels is produced; returns it with its size and origin.
pub(crate) fn resample(
    src: &[f32],
    w: usize,
    h: usize,
    scale: f32,
    max_side: usize,
) -> (Vec<f32>, usize, usize, (usize, usize)) {
    let full_w = ((w as f32 / scale).floor() as usize).max(1);
    let full_h = ((h as f32 / scale).floor() as usize).max(1);
    let (nw, nh) = (full_w.min(max_side), full_h.min(max_side));
    let (ox, oy) = ((full_w - nw) / 2, (full_h - nh) / 2);
    let mut out = Vec::with_capacity(nw * nh);
    for y in oy..oy + nh {
        let sy = (y as f32 + 0.5) * scale - 0.5;
        for x in ox..ox + nw {
            let sx = (x as f32 + 0.5) * scale - 0.5;
            out.push(bilinear(src, w, h, sx, sy));
        }
    }
    (out, nw, nh, (ox, oy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_of_a_constant_is_the_constant() {
        let m = box_mean(&[3.0; 35], 7, 5, 2);
        assert!(m.iter().all(|v| (v - 3.0).abs() < 1e-6));
    }

    #[test]
    fn resample_at_scale_one_is_identity() {
        let src: Vec<f32> = (0..30).map(|v| v as f32).collect();
        let (out, w, h, origin) = resample(&src, 6, 5, 1.0, usize::MAX);
        assert_eq!((w, h, origin), (6, 5, (0, 0)));
        assert_eq!(out, src);
    }
}
