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
    detect_with(signal, rate, ch, key, DetectOptions::default())
}

fn detect_with(
    signal: &[f32],
    rate: u32,
    ch: usize,
    key: &WatermarkKey,
    options: DetectOptions,
) -> AudioDetection {
    let mut d = AudioDetector::new(rate, ch, key, options);
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
                    d.buffered() <= 8 * frame + block / ch,
                    "{rate} {ch}: {}",
                    d.buffered()
                );
            }
        }
        out += e.finish().len();
        assert_eq!(out, fed, "every sample comes out once");
    }
}

/// Mono mix of interleaved stereo.
fn to_mono(stereo: &[f32]) -> Vec<f32> {
    stereo
        .chunks_exact(2)
        .map(|f| 0.5 * (f[0] + f[1]))
        .collect()
}

/// Reads `mono` at `factor` times the original pace (windowed-sinc interpolation, low-passed
/// below the lower of both Nyquist rates): `factor` 48/44.1 with the rate changed is a resample,
/// `factor` 1.05 at the same rate is playback 5 % faster (pitch and tempo).
fn resample(mono: &[f32], factor: f64) -> Vec<f32> {
    const HALF: i64 = 16;
    let cutoff = 0.95 * (1.0f64).min(1.0 / factor).min(factor);
    let cutoff = cutoff.min(1.0);
    let out_len = (mono.len() as f64 / factor) as usize;
    (0..out_len)
        .map(|i| {
            let t = i as f64 * factor;
            let c = t.floor() as i64;
            let mut acc = 0.0f64;
            for k in c - HALF + 1..=c + HALF {
                if k < 0 || k as usize >= mono.len() {
                    continue;
                }
                let x = t - k as f64;
                let sinc = if x.abs() < 1e-9 {
                    1.0
                } else {
                    (std::f64::consts::PI * x * cutoff).sin() / (std::f64::consts::PI * x)
                };
                let w = 0.5 + 0.5 * (std::f64::consts::PI * x / HALF as f64).cos();
                acc += f64::from(mono[k as usize]) * sinc * w;
            }
            acc as f32
        })
        .collect()
}

#[test]
fn survives_in_process_attacks_resample_gain_noise_excerpt_and_speed() {
    let key = WatermarkKey::from_bytes([21; 32]);
    let payload = Payload(0x0F1E_2D3C_4B5A_6978);
    let rate = 44_100;
    let signal = music(rate, 2, 20.0, 5);
    let (marked, _) = embed(&signal, rate, 2, &key, payload);
    let mono = to_mono(&marked);
    let mut rng = KeyedRng::from_seed([4; 32]);
    let power = mono.iter().map(|v| v * v).sum::<f32>() / mono.len() as f32;
    let sigma = (power / 1000.0).sqrt();
    let start = rate as usize * 7 + 1234;
    let cases: Vec<(&str, Vec<f32>, u32)> = vec![
        ("resample 48k", resample(&mono, 44_100.0 / 48_000.0), 48_000),
        (
            "gain -10 dB",
            mono.iter().map(|v| v * 0.316).collect(),
            rate,
        ),
        (
            "noise 30 dB",
            mono.iter()
                .map(|v| v + sigma * rng.gaussian() as f32)
                .collect(),
            rate,
        ),
        (
            "10 s excerpt at an odd offset",
            mono[start..start + rate as usize * 10].to_vec(),
            rate,
        ),
        ("speed +5 %", resample(&mono, 1.05), rate),
        ("speed -5 %", resample(&mono, 0.95), rate),
    ];
    for (name, attacked, r) in cases {
        // The speed search is the default; the other attacks do not need it (faster in CI).
        let options = if name.starts_with("speed") {
            DetectOptions::default()
        } else {
            DetectOptions::exact_speed()
        };
        let d = detect_with(&attacked, r, 1, &key, options);
        assert!(d.present, "{name}: {d:?}");
        assert_eq!(d.payload, Some(payload), "{name}: {d:?}");
        if name.starts_with("speed") {
            let expected = if name.contains('+') { 1.05 } else { 0.95 };
            assert!((d.speed - expected).abs() < 0.004, "{name}: {d:?}");
        }
    }
    // Without the speed search, the sped-up copy is not found (the search is what finds it).
    let fast = resample(&mono, 1.05);
    let d = detect_with(&fast, rate, 1, &key, DetectOptions::exact_speed());
    assert!(d.payload.is_none(), "{d:?}");
}

#[test]
fn a_long_stream_keeps_memory_fixed_and_unmarked_noise_is_never_detected() {
    // Ten minutes of noise at 8 kHz through the detector with the speed search: the buffers
    // stay under a few frames, and nothing is detected under any key.
    let rate = 8_000;
    let mut rng = KeyedRng::from_seed([6; 32]);
    let key = WatermarkKey::from_bytes([10; 32]);
    let mut d = AudioDetector::new(rate, 1, &key, DetectOptions::default());
    let frame = frame_hop(rate, 0.95).ceil() as usize + 1;
    let len = 4000;
    for _ in 0..(600 * rate as usize / len) {
        let block: Vec<f32> = (0..len).map(|_| 0.1 * rng.gaussian() as f32).collect();
        d.push(&block);
        assert!(d.buffered() <= 8 * frame + len, "{}", d.buffered());
    }
    let (r, _) = d.finish();
    assert!(r.segments >= 60, "{r:?}");
    assert!(!r.present && r.payload.is_none(), "{r:?}");
}

#[test]
fn five_second_excerpt_falls_back_to_presence_only_with_its_false_positive_probability() {
    let key = WatermarkKey::from_bytes([21; 32]);
    let payload = Payload(0x0123_4567_89AB_CDEF);
    let rate = 44_100;
    let signal = music(rate, 2, 20.0, 5);
    let (marked, _) = embed(&signal, rate, 2, &key, payload);
    // 5 s from an offset that is not a whole number of frames into the second block.
    let from = (11.37 * f64::from(rate)) as usize * 2;
    let to = from + 5 * rate as usize * 2;
    let d = detect(&marked[from..to], rate, 2, &key);
    assert_ne!(d.mode(), DetectionMode::Absent, "{d:?}");
    match d.mode() {
        DetectionMode::Payload => assert_eq!(d.payload, Some(payload), "{d:?}"),
        DetectionMode::PresenceOnly => {
            assert!(d.payload.is_none(), "{d:?}");
            assert!(d.false_positive_probability <= 1e-6, "{d:?}");
        }
        DetectionMode::Absent => unreachable!(),
    }
    // The same excerpt unmarked, and the marked one under another key: absent.
    let un = detect(&signal[from..to], rate, 2, &key);
    assert_eq!(un.mode(), DetectionMode::Absent, "{un:?}");
    let wrong = detect(
        &marked[from..to],
        rate,
        2,
        &WatermarkKey::from_bytes([22; 32]),
    );
    assert_eq!(wrong.mode(), DetectionMode::Absent, "{wrong:?}");
}

#[test]
fn marked_frames_are_the_frames_the_embedder_marks() {
    // 2 s of music, 1 s of a tail at −70 dBFS (below the gate), 1 s of music, at 48 kHz stereo.
    let rate = 48_000;
    let mut signal = music(rate, 2, 2.0, 7);
    let tail = (0..rate as usize)
        .flat_map(|i| {
            let v = 3e-4 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin();
            [v, v]
        })
        .collect::<Vec<f32>>();
    signal.extend_from_slice(&tail);
    signal.extend(music(rate, 2, 1.0, 8));
    let flags = marked_frames(&signal, 2, rate);
    // Streamed in odd-sized blocks, the same flags.
    let mut gate = FrameGate::new(rate, 2);
    for block in signal.chunks(2 * 777) {
        gate.push(block);
    }
    assert_eq!(gate.flags(), &flags[..]);
    let (_, stats) = embed(
        &signal,
        rate,
        2,
        &WatermarkKey::from_bytes([4; 32]),
        Payload(9),
    );
    let silent = flags.iter().filter(|&&f| !f).count() as u64;
    assert_eq!(
        flags.len() as u64,
        stats.frames_marked + stats.frames_silent
    );
    assert_eq!(silent, stats.frames_silent);
    // The quiet second is about 43 frames, all gated; the music is marked.
    assert!((40..=45).contains(&silent), "{silent} gated frames");
    let per_second = 48_000.0 / frame_hop(rate, 1.0);
    assert!(flags[..(1.9 * per_second) as usize].iter().all(|&f| f));
}
