//! The rhythm label 「短长 短短」: Morse "AI" (·− ··) played as a sine tone.
//!
//! Timing follows ITU-R M.1677 (dot 1 unit, dash 3, gap 1 unit inside a letter, 3 between
//! letters); the default unit is 100 ms, so the whole pattern lasts 1.1 s. Each element is gated
//! by raised-cosine ramps centred on its nominal edges, so the tone is at half amplitude exactly
//! at the nominal start and end of each element (that is where timings are measured).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use crate::ExplicitError;
use serde::Serialize;

/// The pattern ·− ·· as (tone on?, length in units), from the first element to the last.
pub const AI_PATTERN: [(bool, u32); 7] = [
    (true, 1),
    (false, 1),
    (true, 3),
    (false, 3),
    (true, 1),
    (false, 1),
    (true, 1),
];
/// Units from the start of the first element to the end of the last.
pub const PATTERN_UNITS: u32 = 11;
/// Default unit length (a dot): 100 ms, i.e. 12 words per minute.
pub const DEFAULT_UNIT_MS: u32 = 100;
/// Default tone frequency.
pub const DEFAULT_TONE_HZ: f32 = 1000.0;
/// Length of each raised-cosine ramp (on and off).
pub const FADE_MS: f32 = 5.0;
/// Shortest unit accepted (24 words per minute).
pub const MIN_UNIT_MS: u32 = 50;
/// Longest unit accepted (6 words per minute).
pub const MAX_UNIT_MS: u32 = 200;
/// Lowest tone accepted (lower tones are masked by content and small speakers drop them).
pub const MIN_TONE_HZ: f32 = 300.0;
/// Highest tone accepted (lossy codecs at low bitrates keep it; the ear is most sensitive here).
pub const MAX_TONE_HZ: f32 = 3000.0;

/// How the rhythm sounds: unit length, tone frequency and ramp length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RhythmSpec {
    /// Length of a dot in milliseconds.
    pub unit_ms: u32,
    /// Tone frequency in Hz.
    pub tone_hz: f32,
    /// Length of each raised-cosine ramp in milliseconds.
    pub fade_ms: f32,
}

impl Default for RhythmSpec {
    fn default() -> Self {
        Self {
            unit_ms: DEFAULT_UNIT_MS,
            tone_hz: DEFAULT_TONE_HZ,
            fade_ms: FADE_MS,
        }
    }
}

impl RhythmSpec {
    /// A rhythm with this unit and tone, checked against the accepted ranges.
    pub fn new(unit_ms: u32, tone_hz: f32) -> Result<Self, ExplicitError> {
        if !(MIN_UNIT_MS..=MAX_UNIT_MS).contains(&unit_ms) {
            return Err(ExplicitError::BadOption(format!(
                "Morse unit {unit_ms} ms is outside {MIN_UNIT_MS}–{MAX_UNIT_MS} ms"
            )));
        }
        if !(MIN_TONE_HZ..=MAX_TONE_HZ).contains(&tone_hz) {
            return Err(ExplicitError::BadOption(format!(
                "tone {tone_hz} Hz is outside {MIN_TONE_HZ}–{MAX_TONE_HZ} Hz"
            )));
        }
        Ok(Self {
            unit_ms,
            tone_hz,
            fade_ms: FADE_MS,
        })
    }

    /// The unit in seconds.
    pub fn unit_s(&self) -> f64 {
        f64::from(self.unit_ms) / 1000.0
    }

    /// The pattern's length in seconds, from the first nominal edge to the last.
    pub fn pattern_s(&self) -> f64 {
        f64::from(PATTERN_UNITS) * self.unit_s()
    }

    /// The nominal tone-on intervals in seconds from the pattern's first edge.
    pub fn on_intervals(&self) -> Vec<(f64, f64)> {
        let mut t = 0.0;
        let mut out = Vec::new();
        for (on, units) in AI_PATTERN {
            let len = f64::from(units) * self.unit_s();
            if on {
                out.push((t, t + len));
            }
            t += len;
        }
        out
    }

    /// Renders the rhythm as mono samples at `rate` with peak `amplitude`. The buffer starts half
    /// a ramp before the first nominal edge and ends half a ramp after the last, so the returned
    /// offset (seconds) is where the pattern's first edge lies in the buffer.
    pub fn render(&self, rate: u32, amplitude: f32) -> (Vec<f32>, f64) {
        let fade = f64::from(self.fade_ms) / 1000.0;
        let lead = fade / 2.0;
        let rate_f = f64::from(rate);
        let len = ((self.pattern_s() + fade) * rate_f).round() as usize;
        let intervals = self.on_intervals();
        let omega = 2.0 * std::f64::consts::PI * f64::from(self.tone_hz);
        let samples = (0..len)
            .map(|n| {
                let t = n as f64 / rate_f - lead;
                let gain: f64 = intervals
                    .iter()
                    .map(|&(a, b)| ramp_gain(t, a, b, fade))
                    .sum();
                if gain == 0.0 {
                    0.0
                } else {
                    // One oscillator gated on and off keeps the phase continuous between elements.
                    (f64::from(amplitude) * gain * (omega * (t + lead)).sin()) as f32
                }
            })
            .collect();
        (samples, lead)
    }
}

/// Gain at time `t` of an element on over [a, b] with raised-cosine ramps of length `fade`
/// centred on `a` and `b` (0.5 exactly at the nominal edges).
fn ramp_gain(t: f64, a: f64, b: f64, fade: f64) -> f64 {
    let half = fade / 2.0;
    if t <= a - half || t >= b + half {
        0.0
    } else if t < a + half {
        0.5 - 0.5 * (std::f64::consts::PI * (t - (a - half)) / fade).cos()
    } else if t > b - half {
        0.5 + 0.5 * (std::f64::consts::PI * (t - (b - half)) / fade).cos()
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_dot_dash_dot_dot() {
        let spec = RhythmSpec::default();
        let on = spec.on_intervals();
        let lens: Vec<f64> = on.iter().map(|(a, b)| ((b - a) * 1000.0).round()).collect();
        assert_eq!(lens, [100.0, 300.0, 100.0, 100.0]);
        let gaps: Vec<f64> = on
            .windows(2)
            .map(|w| ((w[1].0 - w[0].1) * 1000.0).round())
            .collect();
        assert_eq!(gaps, [100.0, 300.0, 100.0]);
        assert!((spec.pattern_s() - 1.1).abs() < 1e-9);
    }

    #[test]
    fn half_amplitude_at_nominal_edges_and_peak_bounded() {
        let spec = RhythmSpec::default();
        let (s, lead) = spec.render(48_000, 0.5);
        assert!(s.iter().all(|v| v.abs() <= 0.5 + 1e-6));
        assert!(s.iter().any(|v| v.abs() > 0.499));
        assert!((ramp_gain(0.0, 0.0, 0.1, 0.005) - 0.5).abs() < 1e-12);
        assert!((ramp_gain(0.1, 0.0, 0.1, 0.005) - 0.5).abs() < 1e-12);
        // Silence inside the letter gap (between the dash's end and the third dot).
        let gap_mid = ((lead + 0.65) * 48_000.0) as usize;
        assert!(s[gap_mid - 100..gap_mid + 100].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn options_out_of_range_are_rejected() {
        assert!(RhythmSpec::new(10, 1000.0).is_err());
        assert!(RhythmSpec::new(100, 50.0).is_err());
        assert!(RhythmSpec::new(100, 10_000.0).is_err());
        assert!(RhythmSpec::new(80, 800.0).is_ok());
    }
}
