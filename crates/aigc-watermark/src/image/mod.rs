//! The image mark on a luminance plane (video reuses it per frame): a key-derived 128×128 px
//! tile of spread-spectrum chips repeated over the plane, shaped by a texture mask; blind
//! detection by scale search on the spectrum's tile lattice, folding, FFT offset search and
//! soft decoding. See `shared/spec/watermark.md` (Images).

mod detect;
mod embed;
mod plane;
mod tile;

pub use detect::{ImageDetection, PRESENCE_FPR, detect_luma};
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

/// Copies a strided u8 plane into a packed f32 plane.
fn to_f32(data: &[u8], width: usize, height: usize, stride: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(width * height);
    for row in data.chunks(stride).take(height) {
        out.extend(row.iter().take(width).map(|&v| f32::from(v)));
    }
    out
}

#[cfg(test)]
mod tests;
