//! Finding the Morse rhythm 「短长 短短」 (·− ··) in audio: short-time spectra every 5 ms, frames
//! dominated by one tone grouped into on-segments whose edges are placed at half amplitude, and
//! four consecutive segments at one frequency matched against the ITU timing with a tolerance.
//! Streaming: [`RhythmDetector::push`] takes decoded blocks; memory holds one window and the
//! list of tone segments.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use crate::ExplicitError;
use crate::audio_morse::{
    AI_PATTERN, MAX_TONE_HZ, MAX_UNIT_MS, MIN_TONE_HZ, MIN_UNIT_MS, PATTERN_UNITS,
};
use aigc_media::AudioReader;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// Analysis window (20 ms: short against a 50 ms dot, long enough to resolve the tone).
const WINDOW_S: f64 = 0.020;
/// Hop between analysis frames.
const HOP_S: f64 = 0.005;
/// Tones are searched between these frequencies (a little beyond the accepted range, so a
/// tone at the range's edge is still found after resampling).
const SEARCH_LO_HZ: f64 = 250.0;
const SEARCH_HI_HZ: f64 = 4000.0;
/// A frame is "tone" when the peak's main lobe holds at least this share of the frame's energy…
const MIN_TONAL_SHARE: f64 = 0.5;
/// …and the tone is louder than this (amplitude, −60 dBFS).
const MIN_TONE_AMPLITUDE: f64 = 1e-3;
/// Bins either side of the peak counted as its main lobe.
const LOBE_BINS: usize = 3;
/// Consecutive tone frames whose peaks lie within this many bins form one segment.
const SAME_TONE_BINS: usize = 3;
/// The four elements' frequencies may differ by this much.
const SAME_TONE_HZ: f64 = 60.0;
/// Each of the seven intervals may deviate from the ideal by this fraction of a unit.
const TIMING_TOLERANCE_UNITS: f64 = 0.3;
/// Other tone segments must keep at least this many units away from the pattern.
const ISOLATION_UNITS: f64 = 2.0;
/// The loudness the rules check asks for (the level floor the labeller uses, minus margin).
const MIN_AUDIBLE_DBFS: f64 = -45.0;
/// A rhythm starting this early (or ending this late) counts as at the start (end); in short
/// files, the first (last) third.
const EDGE_SECONDS: f64 = 10.0;

/// A Morse "AI" rhythm found in audio.
#[derive(Debug, Clone, Serialize)]
pub struct FoundRhythm {
    /// Where the first element starts, in seconds from the start of the file.
    pub start_s: f64,
    /// Where the last element ends.
    pub end_s: f64,
    /// Tone frequency in Hz.
    pub tone_hz: f64,
    /// Unit (dot) length in milliseconds, estimated from the whole pattern.
    pub unit_ms: f64,
    /// The largest deviation of the seven on/off intervals from ideal timing at that unit, ms.
    pub max_timing_error_ms: f64,
    /// Peak tone amplitude in dBFS.
    pub level_dbfs: f64,
    /// start, middle or end of the file.
    pub position: &'static str,
    /// Whether it meets the rules (timing, audible tone and level, unit in range).
    pub meets_rules: bool,
    /// Why not, when it does not.
    pub notes: Vec<String>,
}

/// A run of frames dominated by one tone.
#[derive(Debug, Clone)]
struct Segment {
    start_s: f64,
    end_s: f64,
    hz: f64,
    amplitude: f64,
}

/// A segment being built.
#[derive(Debug)]
struct OpenRun {
    first_frame: u64,
    bin: usize,
    /// Peak amplitude of each frame, with the frame before the run first.
    amps: Vec<f64>,
    hz_sum: f64,
}

/// Streaming detector over interleaved blocks.
pub struct RhythmDetector {
    rate: f64,
    channels: usize,
    window: Vec<f32>,
    window_sum: f64,
    hop: usize,
    fft: Arc<dyn Fft<f32>>,
    fft_len: usize,
    buf: Vec<Complex<f32>>,
    mono: Vec<f32>,
    frame_index: u64,
    prev_amp: f64,
    run: Option<OpenRun>,
    segments: Vec<Segment>,
    total_frames: u64,
    lo_bin: usize,
    hi_bin: usize,
    min_bin: usize,
}

impl std::fmt::Debug for RhythmDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhythmDetector")
            .field("rate", &self.rate)
            .field("segments", &self.segments.len())
            .finish()
    }
}

impl RhythmDetector {
    /// A detector for audio at `rate` with `channels` interleaved channels.
    pub fn new(rate: u32, channels: usize) -> Self {
        let rate_f = f64::from(rate);
        let len = ((WINDOW_S * rate_f).round() as usize).max(16);
        let window: Vec<f32> = (0..len)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * (i as f64 + 0.5) / len as f64).cos())
                    as f32
            })
            .collect();
        let window_sum = window.iter().map(|w| f64::from(*w)).sum();
        let fft_len = (2 * len).next_power_of_two();
        let fft = FftPlanner::new().plan_fft_forward(fft_len);
        let bin_hz = rate_f / fft_len as f64;
        let nyquist_bin = fft_len / 2;
        let hi_bin =
            ((SEARCH_HI_HZ / bin_hz) as usize).min(nyquist_bin.saturating_sub(LOBE_BINS + 1));
        Self {
            rate: rate_f,
            channels: channels.max(1),
            window,
            window_sum,
            hop: ((HOP_S * rate_f).round() as usize).max(1),
            fft,
            fft_len,
            buf: vec![Complex::new(0.0, 0.0); fft_len],
            mono: Vec::new(),
            frame_index: 0,
            prev_amp: 0.0,
            run: None,
            segments: Vec::new(),
            total_frames: 0,
            lo_bin: ((SEARCH_LO_HZ / bin_hz) as usize).max(LOBE_BINS + 1),
            hi_bin,
            min_bin: ((50.0 / bin_hz) as usize).max(1),
        }
    }

    /// Feeds interleaved samples.
    pub fn push(&mut self, interleaved: &[f32]) {
        let ch = self.channels;
        self.total_frames += (interleaved.len() / ch) as u64;
        self.mono.extend(
            interleaved
                .chunks_exact(ch)
                .map(|f| f.iter().sum::<f32>() / ch as f32),
        );
        let len = self.window.len();
        let mut consumed = 0;
        while self.mono.len() - consumed >= len {
            self.analyse(consumed);
            consumed += self.hop;
        }
        self.mono.drain(..consumed.min(self.mono.len()));
    }

    fn analyse(&mut self, at: usize) {
        let len = self.window.len();
        for (slot, (x, w)) in self
            .buf
            .iter_mut()
            .zip(self.mono[at..at + len].iter().zip(&self.window))
        {
            *slot = Complex::new(x * w, 0.0);
        }
        self.buf[len..].fill(Complex::new(0.0, 0.0));
        self.fft.process(&mut self.buf);
        let power: Vec<f64> = self.buf[..self.fft_len / 2]
            .iter()
            .map(|c| f64::from(c.norm_sqr()))
            .collect();
        let total: f64 = power[self.min_bin..].iter().sum();
        let (peak_bin, _) =
            power[self.lo_bin..=self.hi_bin]
                .iter()
                .enumerate()
                .fold(
                    (0, -1.0),
                    |best, (i, p)| if *p > best.1 { (i, *p) } else { best },
                );
        let k = peak_bin + self.lo_bin;
        let lobe: f64 = power[k - LOBE_BINS..=k + LOBE_BINS].iter().sum();
        let amp = 2.0 * power[k].sqrt() / self.window_sum;
        let tonal = total > 0.0 && lobe / total >= MIN_TONAL_SHARE && amp >= MIN_TONE_AMPLITUDE;
        let index = self.frame_index;
        self.frame_index += 1;
        let continues =
            matches!(&self.run, Some(r) if tonal && r.bin.abs_diff(k) <= SAME_TONE_BINS);
        if continues {
            let hz = self.bin_hz_interpolated(&power, k);
            if let Some(run) = self.run.as_mut() {
                run.amps.push(amp);
                run.hz_sum += hz;
            }
        } else {
            if let Some(run) = self.run.take() {
                self.close(run, amp);
            }
            if tonal {
                self.run = Some(OpenRun {
                    first_frame: index,
                    bin: k,
                    amps: vec![self.prev_amp, amp],
                    hz_sum: self.bin_hz_interpolated(&power, k),
                });
            }
        }
        self.prev_amp = amp;
    }

    /// The peak's frequency by parabolic interpolation of log power around bin `k`.
    fn bin_hz_interpolated(&self, power: &[f64], k: usize) -> f64 {
        let (a, b, c) = (
            power[k - 1].max(1e-30).ln(),
            power[k].max(1e-30).ln(),
            power[k + 1].max(1e-30).ln(),
        );
        let denom = a - 2.0 * b + c;
        let delta = if denom.abs() > 1e-12 {
            (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        (k as f64 + delta) * self.rate / self.fft_len as f64
    }

    /// Ends a run: every stretch where the amplitude stays at or above half the run's peak is an
    /// on-segment (low-level codec noise in a gap can keep the same tone dominant, so a run may
    /// hold several elements), with edges interpolated between frames; `next_amp` is the
    /// amplitude of the frame after the run.
    fn close(&mut self, run: OpenRun, next_amp: f64) {
        let mut amps = run.amps;
        amps.push(next_amp);
        // amps[0] is the frame before the run, the last one the frame after.
        let inner = &amps[1..amps.len() - 1];
        let peak = inner.iter().fold(0.0f64, |m, a| m.max(*a));
        let half = peak / 2.0;
        let hz = run.hz_sum / inner.len().max(1) as f64;
        let hop_s = self.hop as f64 / self.rate;
        // amps[j] belongs to analysis frame first_frame + j - 1, whose window is centred at
        // (frame · hop + window / 2) / rate.
        let (hop, half_window, rate) = (self.hop as f64, self.window.len() as f64 / 2.0, self.rate);
        let t = |j: usize| ((run.first_frame + j as u64) as f64 * hop + half_window) / rate - hop_s;
        let cross = |lo: f64, hi: f64| {
            if hi > lo {
                ((half - lo) / (hi - lo)).clamp(0.0, 1.0)
            } else {
                0.5
            }
        };
        let mut j = 0;
        while j < amps.len() {
            if amps[j] < half {
                j += 1;
                continue;
            }
            let first = j;
            while j + 1 < amps.len() && amps[j + 1] >= half {
                j += 1;
            }
            let last = j;
            j += 1;
            let start_s = if first == 0 {
                t(0)
            } else {
                t(first - 1) + cross(amps[first - 1], amps[first]) * hop_s
            };
            let end_s = if last + 1 >= amps.len() {
                t(last)
            } else {
                t(last) + (1.0 - cross(amps[last + 1], amps[last])) * hop_s
            };
            let amplitude = amps[first..=last].iter().fold(0.0f64, |m, a| m.max(*a));
            self.segments.push(Segment {
                start_s,
                end_s,
                hz,
                amplitude,
            });
        }
    }

    /// Ends the stream and returns every rhythm found.
    pub fn finish(mut self) -> Vec<FoundRhythm> {
        if let Some(run) = self.run.take() {
            self.close(run, 0.0);
        }
        let duration = self.total_frames as f64 / self.rate;
        match_pattern(&self.segments, duration)
    }
}

/// Finds ·− ·· among the tone segments.
fn match_pattern(segments: &[Segment], duration: f64) -> Vec<FoundRhythm> {
    let mut found = Vec::new();
    let expected: Vec<f64> = AI_PATTERN.iter().map(|(_, u)| f64::from(*u)).collect();
    let mut i = 0;
    while i + 4 <= segments.len() {
        let s = &segments[i..i + 4];
        let hz = s.iter().map(|x| x.hz).sum::<f64>() / 4.0;
        if s.iter().any(|x| (x.hz - hz).abs() > SAME_TONE_HZ) {
            i += 1;
            continue;
        }
        let unit = (s[3].end_s - s[0].start_s) / f64::from(PATTERN_UNITS);
        // The seven intervals: on, off, on, off, on, off, on.
        let measured = [
            s[0].end_s - s[0].start_s,
            s[1].start_s - s[0].end_s,
            s[1].end_s - s[1].start_s,
            s[2].start_s - s[1].end_s,
            s[2].end_s - s[2].start_s,
            s[3].start_s - s[2].end_s,
            s[3].end_s - s[3].start_s,
        ];
        let worst = measured
            .iter()
            .zip(&expected)
            .map(|(m, e)| (m - e * unit).abs())
            .fold(0.0f64, f64::max);
        let isolated_before =
            i == 0 || s[0].start_s - segments[i - 1].end_s >= ISOLATION_UNITS * unit;
        let isolated_after = i + 4 == segments.len()
            || segments[i + 4].start_s - s[3].end_s >= ISOLATION_UNITS * unit;
        let plausible_unit = (0.02..=1.0).contains(&unit);
        if worst > TIMING_TOLERANCE_UNITS * unit
            || !isolated_before
            || !isolated_after
            || !plausible_unit
        {
            i += 1;
            continue;
        }
        let level = s.iter().map(|x| x.amplitude).fold(0.0f64, f64::max);
        let level_dbfs = 20.0 * level.max(1e-10).log10();
        let unit_ms = unit * 1000.0;
        let mut notes = Vec::new();
        if !(f64::from(MIN_UNIT_MS) * 0.9..=f64::from(MAX_UNIT_MS) * 1.1).contains(&unit_ms) {
            notes.push(format!(
                "unit {unit_ms:.0} ms is outside {MIN_UNIT_MS}–{MAX_UNIT_MS} ms (too fast or too slow to hear as 短长 短短)"
            ));
        }
        if !(f64::from(MIN_TONE_HZ) * 0.95..=f64::from(MAX_TONE_HZ) * 1.05).contains(&hz) {
            notes.push(format!(
                "tone {hz:.0} Hz is outside {MIN_TONE_HZ}–{MAX_TONE_HZ} Hz"
            ));
        }
        if level_dbfs < MIN_AUDIBLE_DBFS {
            notes.push(format!("tone at {level_dbfs:.1} dBFS is too quiet to hear"));
        }
        let edge = EDGE_SECONDS.min(duration / 3.0);
        let position = if s[0].start_s <= edge {
            "start"
        } else if duration - s[3].end_s <= edge {
            "end"
        } else {
            "middle"
        };
        found.push(FoundRhythm {
            start_s: s[0].start_s,
            end_s: s[3].end_s,
            tone_hz: hz,
            unit_ms,
            max_timing_error_ms: worst * 1000.0,
            level_dbfs,
            position,
            meets_rules: notes.is_empty(),
            notes,
        });
        i += 4;
    }
    found
}

/// Decodes `path` (streaming) and returns every Morse "AI" rhythm in it.
pub fn find_rhythm_file(path: &Path) -> Result<Vec<FoundRhythm>, ExplicitError> {
    let mut reader = AudioReader::open(path)?;
    let info = reader.info().clone();
    let mut detector = RhythmDetector::new(info.sample_rate, info.channels);
    while let Some(block) = reader.next_block()? {
        detector.push(block);
    }
    Ok(detector.finish())
}

/// Finds rhythms in interleaved samples held in memory.
pub fn find_rhythm(samples: &[f32], rate: u32, channels: usize) -> Vec<FoundRhythm> {
    let mut detector = RhythmDetector::new(rate, channels);
    detector.push(samples);
    detector.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio_morse::RhythmSpec;

    fn with_padding(spec: &RhythmSpec, rate: u32, before: f64, after: f64) -> (Vec<f32>, f64) {
        let (tone, lead) = spec.render(rate, 0.3);
        let mut x = vec![0.0; (before * f64::from(rate)) as usize];
        x.extend(tone);
        x.extend(vec![0.0; (after * f64::from(rate)) as usize]);
        (x, before + lead)
    }

    #[test]
    fn finds_the_rhythm_and_its_timing() {
        for (rate, unit, hz) in [
            (44_100, 100, 1000.0),
            (8_000, 60, 700.0),
            (48_000, 180, 2500.0),
        ] {
            let spec = RhythmSpec::new(unit, hz).unwrap();
            let (x, at) = with_padding(&spec, rate, 0.5, 2.0);
            let found = find_rhythm(&x, rate, 1);
            assert_eq!(found.len(), 1, "{rate} {unit} {hz}: {found:?}");
            let f = &found[0];
            assert!((f.start_s - at).abs() < 0.002, "{f:?} vs {at}");
            assert!((f.unit_ms - f64::from(unit)).abs() < 2.0, "{f:?}");
            assert!((f.tone_hz - f64::from(hz)).abs() < 15.0, "{f:?}");
            assert!(f.max_timing_error_ms < 3.0, "{f:?}");
            assert!(f.meets_rules, "{f:?}");
            assert_eq!(f.position, "start");
        }
    }

    #[test]
    fn other_rhythms_and_steady_tones_are_not_matched() {
        let rate = 16_000;
        // Morse "N" then "I" (−· ··) and a steady tone: neither is ·− ··.
        let tone = |secs: f64| -> Vec<f32> {
            (0..(secs * f64::from(rate)) as usize)
                .map(|n| {
                    (0.3 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / f64::from(rate)).sin())
                        as f32
                })
                .collect()
        };
        let silence = |secs: f64| vec![0.0; (secs * f64::from(rate)) as usize];
        let mut x = silence(1.0);
        for (on, len) in [
            (true, 0.3),
            (false, 0.1),
            (true, 0.1),
            (false, 0.3),
            (true, 0.1),
            (false, 0.1),
            (true, 0.1),
        ] {
            x.extend(if on { tone(len) } else { silence(len) });
        }
        x.extend(silence(1.0));
        x.extend(tone(5.0));
        x.extend(silence(1.0));
        assert!(find_rhythm(&x, rate, 1).is_empty());
    }
}
