//! Pieces shared by the image examples (`image_robustness`, `image_diag`).

use std::path::Path;

/// The ImageMagick binary the attacks run.
pub const CONVERT: &str = "/usr/bin/convert";

/// BT.601 luma plane of an RGB image.
pub fn luma(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks(3)
        .map(|p| {
            (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// The luma plane of an image file, with its width and height.
pub fn load_luma(path: &Path) -> Result<(Vec<u8>, usize, usize), String> {
    let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok((luma(rgb.as_raw()), w, h))
}

/// Owned strings from string slices (attack arguments).
pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}
