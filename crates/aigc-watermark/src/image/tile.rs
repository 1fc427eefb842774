//! The key-derived tile: 64×64 chips of 2×2 px (period 128 px). A quarter of the chips are a
//! known pilot (cyclic offset and presence); the rest spread the coded payload chips. On top, a
//! separate synchronisation template: a few key-placed sinusoids that are periodic in the tile,
//! i.e. strong isolated peaks in the image spectrum from which the detector reads scale and
//! rotation (the payload pattern's own lattice is too weak for that on textured images).

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

/// Sinusoids in the synchronisation template.
pub(crate) const SYNC_PEAKS: usize = 16;
/// Radius range of the template's frequencies, in cycles per tile (period 8.5–15 px): low enough
/// to survive JPEG and a 33 % downscale, high enough to stand out of the host's 1/f spectrum.
pub(crate) const SYNC_MIN_RADIUS: f64 = 8.5;
pub(crate) const SYNC_MAX_RADIUS: f64 = 15.0;
/// Share of the mark's energy spent on the synchronisation template. 0.15 → 0.22 / 0.3 on the
/// development set: +7 / +9 passes over the resize, upscale, crop-resize and rotation rows
/// (most misses are a wrong scale), 0 / −1 over the JPEG and WebP rows.
pub(crate) const SYNC_SHARE: f32 = 0.25;

/// One sinusoid of the synchronisation template: frequency (a, b) in cycles per tile
/// (x = column, y = row; b > 0), and phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncPeak {
    pub a: i32,
    pub b: i32,
    pub phase: f32,
}

/// The key's synchronisation template: SYNC_PEAKS frequencies in the half-plane b > 0, off the
/// axes and diagonals (where host edges, borders and block artefacts put energy), at least
/// 3 cycles apart from each other and from each other's mirror images.
pub(crate) fn sync_peaks(key: &WatermarkKey) -> Vec<SyncPeak> {
    let mut rng = key.rng("aigc-mark/wm/image/sync/v1");
    let r = SYNC_MAX_RADIUS as i32;
    let mut candidates: Vec<(i32, i32)> = Vec::new();
    for b in 2..=r {
        for a in -r..=r {
            let rad = f64::from(a * a + b * b).sqrt();
            if a.abs() >= 2 && a.abs() != b && (SYNC_MIN_RADIUS..=SYNC_MAX_RADIUS).contains(&rad) {
                candidates.push((a, b));
            }
        }
    }
    let order = rng.permutation(candidates.len());
    let mut peaks: Vec<SyncPeak> = Vec::with_capacity(SYNC_PEAKS);
    for i in order {
        let (a, b) = candidates[i];
        let far = peaks.iter().all(|p| {
            let d1 = (p.a - a).pow(2) + (p.b - b).pow(2);
            let d2 = (p.a + a).pow(2) + (p.b + b).pow(2);
            d1.min(d2) >= 9
        });
        if far {
            let phase = (rng.next_f64() * std::f64::consts::TAU) as f32;
            peaks.push(SyncPeak { a, b, phase });
            if peaks.len() == SYNC_PEAKS {
                break;
            }
        }
    }
    peaks
}

/// The PERIOD×PERIOD synchronisation tile (sum of the key's sinusoids), unit RMS.
pub(crate) fn render_sync(peaks: &[SyncPeak]) -> Vec<f32> {
    let mut t = vec![0.0f32; PERIOD * PERIOD];
    let w = std::f32::consts::TAU / PERIOD as f32;
    let n = PERIOD as i32;
    let mut wave = [0.0f32; PERIOD];
    for p in peaks {
        // Integer phase index keeps the sinusoid exactly periodic in the tile; one period of
        // cosines per peak is all the tile needs.
        for (k, v) in wave.iter_mut().enumerate() {
            *v = (w * k as f32 + p.phase).cos();
        }
        for y in 0..PERIOD {
            let row = &mut t[y * PERIOD..][..PERIOD];
            let mut k = (p.b * y as i32).rem_euclid(n);
            let step = p.a.rem_euclid(n);
            for v in row.iter_mut() {
                *v += wave[k as usize];
                k += step;
                if k >= n {
                    k -= n;
                }
            }
        }
    }
    let rms = (peaks.len() as f32 / 2.0).sqrt().max(f32::MIN_POSITIVE);
    t.iter_mut().for_each(|v| *v /= rms);
    t
}

/// The full embedded tile: pilot + payload chips and the synchronisation template, unit RMS.
pub(crate) fn render_mark(chips: &[f32], peaks: &[SyncPeak]) -> Vec<f32> {
    let c = render(chips);
    let s = render_sync(peaks);
    let (wc, ws) = ((1.0 - SYNC_SHARE).sqrt(), SYNC_SHARE.sqrt());
    c.iter().zip(&s).map(|(c, s)| wc * c + ws * s).collect()
}

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
