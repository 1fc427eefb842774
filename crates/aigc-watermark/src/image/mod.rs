//! The image mark on a luminance plane (video reuses it per frame): a key-derived 128×128 px
//! tile of spread-spectrum chips plus a synchronisation template of key-placed sinusoids,
//! repeated over the plane and shaped by a texture mask. Blind detection: scale and rotation
//! from the template's spectral peaks, folding of every tile on the recovered grid, FFT offset
//! search with the pilot chips, soft decoding. See `shared/spec/watermark.md` (Images).

mod detect;
mod embed;
mod plane;
mod sync;
mod tile;

pub use detect::{
    DetectOptions, Diagnosis, ImageDetection, PRESENCE_FPR, detect_luma, detect_luma_with,
    diagnose_at,
};
pub use embed::{EmbedOptions, EmbedReport, embed_luma};
pub use tile::PERIOD;

/// Smallest side the embedder accepts: the full 96-bit payload needs enough tiles to survive
/// compression and a 50 % crop (spec: ≥ 384×384).
pub const MIN_EMBED_SIDE: usize = 384;
/// Smallest side the detector looks at (one tile after a 50 % downscale).
pub const MIN_DETECT_SIDE: usize = 64;

/// Why an image plane could not be marked or searched.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImageMarkError {
    /// The plane is smaller than the mark needs.
    #[error("image is {width}×{height}; the watermark needs at least {min}×{min} pixels")]
    TooSmall {
        /// Plane width.
        width: usize,
        /// Plane height.
        height: usize,
        /// Minimum side.
        min: usize,
    },
    /// The buffer, width, height and stride do not describe a plane.
    #[error(
        "luminance buffer of {len} bytes does not hold {width}×{height} pixels with stride {stride}"
    )]
    BadPlane {
        /// Buffer length.
        len: usize,
        /// Plane width.
        width: usize,
        /// Plane height.
        height: usize,
        /// Bytes per row.
        stride: usize,
    },
    /// The requested strength is not a usable PSNR.
    #[error("target PSNR {0} dB is outside 20..=60 dB")]
    BadStrength(f64),
}

/// Checks the plane geometry and the minimum side; returns nothing, errors name the problem.
fn check_plane(
    len: usize,
    width: usize,
    height: usize,
    stride: usize,
    min: usize,
) -> Result<(), ImageMarkError> {
    let bad = ImageMarkError::BadPlane {
        len,
        width,
        height,
        stride,
    };
    if width == 0 || height == 0 || stride < width {
        return Err(bad);
    }
    let needed = (height - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(width));
    match needed {
        Some(n) if n <= len => {}
        _ => return Err(bad),
    }
    if width < min || height < min {
        return Err(ImageMarkError::TooSmall { width, height, min });
    }
    Ok(())
}

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Copies a strided u8 plane into a packed f32 plane.
fn to_f32(data: &[u8], width: usize, height: usize, stride: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(width * height);
    for row in data.chunks(stride).take(height) {
        out.extend(row.iter().take(width).map(|&v| f32::from(v)));
    }
    out
}

/// Whether bin `i` of `n` lies within a bin of a harmonic of the 8-px JPEG/MPEG block grid:
/// block artefacts put strong lines there that would fake a lattice at many scales.
pub(crate) fn on_block_grid(i: usize, n: usize) -> bool {
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
pub(crate) fn fft2(
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

#[cfg(test)]
mod tests;
