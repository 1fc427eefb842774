//! In-memory tests of the audio mark (file and codec tests are in `tests/`).

use super::*;
use crate::key::{KeyedRng, WatermarkKey};
use crate::payload::Payload;

/// A music-like signal: a few harmonic tones with note envelopes, a pad, noise; interleaved.
pub(crate) fn music(rate: u32, channels: usize, seconds: f64, seed: u8) -> Vec<f32> {
    let n = (f64::from(rate) * seconds) as usize;
    let mut rng = KeyedRng::from_seed([seed; 32]);
    let notes = [220.0, 277.18, 329.63, 440.0, 554.37, 659.26, 880.0];
    let note_len = (f64::from(rate) * 0.25) as usize;
    let mut seq = Vec::new();
    for _ in 0..n / note_len + 1 {
        seq.push(notes[rng.below(notes.len())]);
    }
    let mut out = Vec::with_capacity(n * channels);
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let f = seq[i / note_len];
        let env = (-((i % note_len) as f64) / (0.3 * note_len as f64)).exp();
        let mut v = 0.0;
        for h in 1..=5 {
            v += (2.0 * std::f64::consts::PI * f * h as f64 * t).sin() / h as f64;
        }
        let pad = 0.3 * (2.0 * std::f64::consts::PI * 164.81 * t).sin()
            + 0.2 * (2.0 * std::f64::consts::PI * 246.94 * t).sin();
        let noise = 0.05 * rng.gaussian();
        let s = 0.25 * (0.6 * env * v + pad + noise);
        for c in 0..channels {
            out.push((s * (1.0 - 0.1 * c as f64)) as f32);
        }
    }
    out
}

fn embed(
    signal: &[f32],
    rate: u32,
    ch: usize,
    key: &WatermarkKey,
    p: Payload,
) -> (Vec<f32>, EmbedStats) {
    let mut e = AudioEmbedder::new(rate, ch, p, key, DEFAULT_STRENGTH, 1.0);
    let mut out = Vec::new();
    for block in signal.chunks(4096 * ch) {
        out.extend_from_slice(e.process(block));
    }
    out.extend_from_slice(e.finish());
    (out, e.stats().clone())
}

fn detect(signal: &[f32], rate: u32, ch: usize, key: &WatermarkKey) -> AudioDetection {
    let mut d = AudioDetector::new(rate, ch, key, DetectOptions::default());
    for block in signal.chunks(3000 * ch) {
        d.push(block);
    }
    d.finish().0
}

#[test]
fn exact_round_trip_in_memory_and_silence_untouched() {
    let key = WatermarkKey::from_bytes([7; 32]);
    let payload = Payload(0xDEAD_BEEF_0123_4567);
    let rate = 44_100;
    let mut signal = music(rate, 2, 20.0, 1);
    // A second of digital silence in the middle.
    let (a, b) = (9 * rate as usize * 2, 10 * rate as usize * 2);
    signal[a..b].fill(0.0);
    let (marked, stats) = embed(&signal, rate, 2, &key, payload);
    assert_eq!(marked.len(), signal.len());
    assert!(
        marked[a + 4096..b - 4096].iter().all(|s| *s == 0.0),
        "silence was changed"
    );
    assert!(stats.snr_db() >= 35.0, "SNR {}", stats.snr_db());
    let d = detect(&marked, rate, 2, &key);
    assert!(d.present, "{d:?}");
    assert_eq!(d.payload, Some(payload), "{d:?}");
    // Unmarked and wrong key: nothing.
    let un = detect(&signal, rate, 2, &key);
    assert!(!un.present && un.payload.is_none(), "{un:?}");
    let wrong = detect(&marked, rate, 2, &WatermarkKey::from_bytes([8; 32]));
    assert!(!wrong.present && wrong.payload.is_none(), "{wrong:?}");
}

#[test]
fn streaming_memory_stays_bounded_at_any_rate_and_channel_count() {
    let key = WatermarkKey::from_bytes([9; 32]);
    for (rate, ch) in [(8_000u32, 1usize), (48_000, 2), (96_000, 8)] {
        let block = 4096 * ch;
        let mut e = AudioEmbedder::new(rate, ch, Payload(1), &key, DEFAULT_STRENGTH, 1.0);
        let mut d = AudioDetector::new(rate, ch, &key, DetectOptions::default());
        let signal = music(rate, ch, 1.0, 3);
        let frame = frame_hop(rate, 1.0).ceil() as usize + 1;
        let (mut fed, mut out) = (0usize, 0usize);
        // 30 s of audio in blocks; the buffers never exceed a frame plus a block.
        for _ in 0..30 {
            for b in signal.chunks(block) {
                out += e.process(b).len();
                d.push(b);
                fed += b.len();
                assert!(
                    e.buffered() <= frame * ch + block,
                    "{rate} {ch}: {}",
                    e.buffered()
                );
                assert!(
                    d.buffered() <= 2 * frame + block / ch,
                    "{rate} {ch}: {}",
                    d.buffered()
                );
            }
        }
        out += e.finish().len();
        assert_eq!(out, fed, "every sample comes out once");
    }
}
