//! Where a codec keeps the audio mark (non-blind diagnosis, for tuning): marks a clip, runs the
//! original and the marked signal through the same ffmpeg attack, and compares the change of
//! every cell's log band power before and after the attack. Per class of cells (the band's level
//! relative to the frame's strongest band, the frame's level relative to the clip) it prints the
//! retention (regression slope of the attacked change on the clean change), the correlation and
//! the share of the clean mark energy (`c`: band power × squared relative change) and of the
//! surviving mark (`s`: share of the summed product of clean and attacked changes).
//!
//! `cargo run --release -p aigc-watermark --example audio_codec_diag -- "ffmpeg args>ext" FILE...`

mod audio_common;

use audio_common::read_all;
use std::path::Path;

use aigc_watermark::audio::{AudioEmbedder, BAND_BINS, BANDS, DEFAULT_STRENGTH, FIRST_BIN};
use aigc_watermark::{Payload, WatermarkKey};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;

fn attack(rate: u32, ch: usize, s: &[f32], how: &str) -> Vec<f32> {
    match audio_common::attack(rate, ch, s, how) {
        Ok((_, _, samples)) => samples,
        Err(e) => panic!("{e}"),
    }
}

/// Log band powers (half log) of non-overlapping 1024-sample Hann frames of the mono mix.
fn band_logs(s: &[f32], ch: usize) -> Vec<([f32; BANDS], f32)> {
    let n = 1024;
    let mono: Vec<f32> = s
        .chunks_exact(ch)
        .map(|f| f.iter().sum::<f32>() / ch as f32)
        .collect();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(n);
    let win: Vec<f32> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos())
        .collect();
    let mut out = Vec::new();
    for fr in mono.chunks_exact(n) {
        let mut buf: Vec<Complex32> = fr
            .iter()
            .zip(&win)
            .map(|(x, w)| Complex32::new(x * w, 0.0))
            .collect();
        fft.process(&mut buf);
        let ms = fr.iter().map(|x| x * x).sum::<f32>() / n as f32;
        let mut l = [0.0f32; BANDS];
        for (b, v) in l.iter_mut().enumerate() {
            let p: f32 = (0..BAND_BINS)
                .map(|i| buf[FIRST_BIN + b * BAND_BINS + i].norm_sqr())
                .sum();
            *v = 0.5 * (p + 1e-12).ln();
        }
        out.push((l, ms));
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Acc {
    n: f64,
    xy: f64,
    xx: f64,
    yy: f64,
    /// Mark energy spent in the class (band power × squared relative amplitude change).
    cost: f64,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let how = args.next().expect("attack");
    let key = WatermarkKey::from_bytes([1; 32]);
    let payload = Payload(0x1234_5678_9abc_def0);
    for f in args {
        let (rate, ch, orig) = read_all(Path::new(&f)).expect("read");
        let mut e = AudioEmbedder::new(rate, ch, payload, &key, DEFAULT_STRENGTH, 1.0);
        let mut marked = Vec::new();
        for b in orig.chunks(4096 * ch) {
            marked.extend_from_slice(e.process(b));
        }
        marked.extend_from_slice(e.finish());
        let q = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .map(|x| (x * 32768.0).round().clamp(-32768.0, 32767.0) / 32768.0)
                .collect()
        };
        let (orig, marked) = (q(&orig), q(&marked));
        let a0 = attack(rate, ch, &orig, &how);
        let a1 = attack(rate, ch, &marked, &how);
        let (l0, l1, m0, m1) = (
            band_logs(&orig, ch),
            band_logs(&marked, ch),
            band_logs(&a0, ch),
            band_logs(&a1, ch),
        );
        let frames = l0.len().min(m0.len()).min(m1.len());
        let clip_ms = l0.iter().map(|x| x.1).sum::<f32>() / l0.len() as f32;
        // Classes: band level relative to the frame's strongest band (0: > -10 dB, 1: -10..-20,
        // 2: -20..-30, 3: -30..-40, 4: below), frame level relative to the clip's mean (0: >
        // 0 dB, 1: -10..0, 2: below).
        let mut by_band = [[Acc::default(); 5]; 3];
        let (mut total_cost, mut total_xy) = (0.0f64, 0.0f64);
        let mut by_freq = [Acc::default(); 8];
        for j in 0..frames {
            let fl = 10.0 * (l0[j].1 / clip_ms).max(1e-12).log10();
            if l0[j].1 < 1e-8 {
                continue;
            }
            let fc = if fl > 0.0 {
                0
            } else if fl > -10.0 {
                1
            } else {
                2
            };
            let top = l0[j].0.iter().cloned().fold(f32::MIN, f32::max);
            for b in 0..BANDS {
                let rel = 20.0 / std::f32::consts::LN_10 * (l0[j].0[b] - top);
                let bc = ((-rel / 10.0).floor() as usize).min(4);
                let x = f64::from(l1[j].0[b] - l0[j].0[b]);
                let y = f64::from(m1[j].0[b] - m0[j].0[b]);
                let power = (2.0 * f64::from(l0[j].0[b])).exp();
                let cost = power * (x.exp() - 1.0).powi(2);
                total_cost += cost;
                total_xy += x * y;
                for acc in [&mut by_band[fc][bc], &mut by_freq[(b * 8 / BANDS).min(7)]] {
                    acc.cost += cost;
                    acc.n += 1.0;
                    acc.xy += x * y;
                    acc.xx += x * x;
                    acc.yy += y * y;
                }
            }
        }
        println!("{f} ({how})");
        let show = |a: &Acc| {
            if a.n < 10.0 {
                return "        -         ".to_string();
            }
            format!(
                "n{:5} k{:5.2} r{:5.2} m{:5.3} c{:4.2} s{:5.2}",
                a.n as u64,
                a.xy / a.xx.max(1e-12),
                a.xy / (a.xx * a.yy).sqrt().max(1e-12),
                (a.xx / a.n).sqrt(),
                a.cost / total_cost.max(1e-30),
                a.xy / total_xy.abs().max(1e-30)
            )
        };
        for (fc, row) in by_band.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(show).collect();
            println!("  frame class {fc}: {}", cells.join(" | "));
        }
        let cells: Vec<String> = by_freq.iter().map(show).collect();
        println!("  by frequency eighth:\n    {}", cells.join("\n    "));
    }
}
