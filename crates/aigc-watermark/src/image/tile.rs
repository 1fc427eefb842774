//! The key-derived tile: 64×64 chips of 2×2 px (period 128 px). A quarter of the chips are a
//! known pilot (synchronisation and presence); the rest spread the coded payload chips.

use crate::codec::CODED_BITS;
use crate::key::WatermarkKey;

/// Chips per tile side.
pub(crate) const CHIPS: usize = 64;
/// Pixels per chip side at the embedding resolution.
pub(crate) const CHIP_PX: usize = 2;
/// Tile period in pixels.
pub const PERIOD: usize = CHIPS * CHIP_PX;
/// Chips reserved for the pilot.
pub(crate) const PILOT_CHIPS: usize = CHIPS * CHIPS / 4;

/// Where every chip of the tile goes, derived from the key.
pub(crate) struct ChipLayout {
    /// Chip index (row-major in the 64×64 chip grid) of every pilot chip.
    pub pilot: Vec<usize>,
    /// (chip index, coded bit) of every payload chip.
    pub payload: Vec<(usize, usize)>,
    /// Keyed ±1 sign of every chip (pilot value, or payload spreading sign).
    pub sign: Vec<f32>,
}

impl ChipLayout {
    /// The layout for `key`.
    pub fn new(key: &WatermarkKey) -> Self {
        let perm = key
            .rng("aigc-mark/wm/image/chips/v1")
            .permutation(CHIPS * CHIPS);
        let sign = key
            .rng("aigc-mark/wm/image/signs/v1")
            .bipolar(CHIPS * CHIPS);
        let pilot = perm[..PILOT_CHIPS].to_vec();
        let payload = perm[PILOT_CHIPS..]
            .iter()
            .enumerate()
            .map(|(k, &c)| (c, k % CODED_BITS))
            .collect();
        ChipLayout {
            pilot,
            payload,
            sign,
        }
    }

    /// The 64×64 chip values: pilot chips only, or pilot plus payload chips for `coded`.
    pub fn chips(&self, coded: Option<&[f32]>) -> Vec<f32> {
        let mut chips = vec![0.0f32; CHIPS * CHIPS];
        for &c in &self.pilot {
            chips[c] = self.sign[c];
        }
        if let Some(coded) = coded {
            for &(c, bit) in &self.payload {
                chips[c] = self.sign[c] * coded.get(bit).copied().unwrap_or(0.0);
            }
        }
        chips
    }
}

/// The cyclic [1 2 1]/4 smoothing, both directions, of a PERIOD×PERIOD tile. It shapes the chips
/// as triangles so little energy sits near the Nyquist frequency (survives downscaling), and the
/// detector uses it as the matched filter.
pub(crate) fn smooth_cyclic(t: &[f32]) -> Vec<f32> {
    let n = PERIOD;
    let mut h = vec![0.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let l = t[y * n + (x + n - 1) % n];
            let r = t[y * n + (x + 1) % n];
            h[y * n + x] = 0.25 * l + 0.5 * t[y * n + x] + 0.25 * r;
        }
    }
    let mut v = vec![0.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let u = h[((y + n - 1) % n) * n + x];
            let d = h[((y + 1) % n) * n + x];
            v[y * n + x] = 0.25 * u + 0.5 * h[y * n + x] + 0.25 * d;
        }
    }
    v
}

/// The PERIOD×PERIOD pixel tile for 64×64 chip values, normalised to unit RMS.
pub(crate) fn render(chips: &[f32]) -> Vec<f32> {
    let mut t = vec![0.0f32; PERIOD * PERIOD];
    for y in 0..PERIOD {
        for x in 0..PERIOD {
            t[y * PERIOD + x] = chips[(y / CHIP_PX) * CHIPS + x / CHIP_PX];
        }
    }
    let mut t = smooth_cyclic(&t);
    let rms = (t.iter().map(|v| v * v).sum::<f32>() / t.len() as f32).sqrt();
    if rms > 0.0 {
        t.iter_mut().for_each(|v| *v /= rms);
    }
    t
}

/// Per-chip matched-filter outputs of an aligned PERIOD×PERIOD tile.
pub(crate) fn despread(aligned: &[f32]) -> Vec<f32> {
    let s = smooth_cyclic(aligned);
    let mut chips = vec![0.0f32; CHIPS * CHIPS];
    for y in 0..PERIOD {
        for x in 0..PERIOD {
            chips[(y / CHIP_PX) * CHIPS + x / CHIP_PX] += s[y * PERIOD + x];
        }
    }
    chips
}
