//! A quick look at the audio mark on a few clips, for tuning: marks each clip under several keys
//! in memory, optionally runs one attack through the ffmpeg binary, and detects in an excerpt.
//!
//! `cargo run --release -p aigc-watermark --example audio_probe -- [--keys N] [--clip SECONDS]
//! [--attack "ffmpeg args>ext" | --attack noise:SNR_DB] [--search [--no-stretch]] [--wrong-key] FILE...`
//!
//! Prints per clip and key: SNR, sync z, chip errors (of 306) and whether the payload came back.
//! The spec's whole attack table is `aigc-mark robustness --modality audio DIR`; this is the
//! short loop used while changing the algorithm.

mod audio_common;

use audio_common::{attack, read_all};
use std::path::PathBuf;

use aigc_watermark::audio::{AudioDetector, AudioEmbedder, DEFAULT_STRENGTH, DetectOptions};
use aigc_watermark::{Payload, WatermarkKey};

struct Args {
    keys: u8,
    clip: f64,
    attack: Option<String>,
    search: bool,
    no_stretch: bool,
    wrong_key: bool,
    strength: f32,
    pcm16: bool,
    files: Vec<PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args {
        keys: 4,
        clip: 0.0,
        attack: None,
        search: false,
        no_stretch: false,
        wrong_key: false,
        strength: DEFAULT_STRENGTH,
        pcm16: false,
        files: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        match s.as_str() {
            "--keys" => a.keys = it.next().and_then(|v| v.parse().ok()).unwrap_or(4),
            "--clip" => a.clip = it.next().and_then(|v| v.parse().ok()).unwrap_or(0.0),
            "--strength" => {
                a.strength = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_STRENGTH)
            }
            "--attack" => a.attack = it.next(),
            "--search" => a.search = true,
            // The speed search without the tempo-only and pitch-only hypotheses.
            "--no-stretch" => a.no_stretch = true,
            // Round the marked signal to 16-bit PCM first (what `embed_file` writes for a
            // 16-bit input), so attacks see the quantisation the robustness run sees.
            "--pcm16" => a.pcm16 = true,
            // Detect under another key than the one marked with (the null hypothesis).
            "--wrong-key" => a.wrong_key = true,
            _ => a.files.push(PathBuf::from(s)),
        }
    }
    a
}

/// White Gaussian noise `snr_db` below the signal's mean power (fixed seed; the robustness
/// run's "noise 30 dB SNR" row does the same on a float WAV).
fn add_noise(s: &[f32], snr_db: f64) -> Vec<f32> {
    let power = s.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / s.len().max(1) as f64;
    let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        // xorshift64*: deterministic, good enough for test noise.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    s.iter()
        .map(|v| {
            let (u1, u2) = (uniform(), uniform());
            let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            v + (sigma * g) as f32
        })
        .collect()
}

/// CPU time of this thread, seconds (wall time means little on a shared machine).
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let a = parse_args();
    let (mut embed_cpu, mut detect_cpu, mut embed_s, mut detect_s) = (0.0, 0.0, 0.0, 0.0);
    let opts = if a.search {
        DetectOptions {
            stretch: !a.no_stretch,
            ..DetectOptions::default()
        }
    } else {
        DetectOptions::exact_speed()
    };
    let mut ok_total = 0;
    let mut present = 0usize;
    let mut runs = 0;
    for f in &a.files {
        let (rate, ch, samples) = match read_all(f) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                continue;
            }
        };
        let name = f.file_name().map(|n| n.to_string_lossy().to_string());
        let mut line = format!("{:<18}", name.unwrap_or_default());
        let mut ok = 0;
        for k in 0..a.keys {
            let key = WatermarkKey::from_bytes([k.wrapping_mul(37).wrapping_add(1); 32]);
            let payload = Payload(0x1234_5678_9abc_def0 ^ (u64::from(k) << 40));
            let t0 = thread_cpu();
            let mut e = AudioEmbedder::new(rate, ch, payload, &key, a.strength, 1.0);
            let mut marked = Vec::with_capacity(samples.len());
            for b in samples.chunks(4096 * ch) {
                marked.extend_from_slice(e.process(b));
            }
            marked.extend_from_slice(e.finish());
            embed_cpu += thread_cpu() - t0;
            embed_s += (samples.len() / ch) as f64 / f64::from(rate);
            let snr = e.stats().snr_db();
            if a.pcm16 {
                for v in &mut marked {
                    *v = (*v * 32768.0).round().clamp(-32768.0, 32767.0) / 32768.0;
                }
            }
            let (r2, c2, attacked) = match &a.attack {
                Some(how) if how.starts_with("noise:") => {
                    let snr_db = how[6..].parse::<f64>().unwrap_or(30.0);
                    (rate, ch, add_noise(&marked, snr_db))
                }
                Some(how) => match attack(rate, ch, &marked, how) {
                    Ok(v) => v,
                    Err(err) => {
                        eprintln!("{err}");
                        return;
                    }
                },
                None => (rate, ch, marked),
            };
            let frames = attacked.len() / c2;
            let (from, to) = if a.clip > 0.0 {
                let len = ((a.clip * f64::from(r2)) as usize).min(frames);
                // A fixed pseudo-random offset per key, not aligned with the frames.
                let off =
                    ((u64::from(k) * 7_919_017 + 12_345) % (frames - len + 1) as u64) as usize;
                (off, off + len)
            } else {
                (0, frames)
            };
            let detect_key = if a.wrong_key {
                WatermarkKey::from_bytes([k.wrapping_mul(37).wrapping_add(200); 32])
            } else {
                key.clone()
            };
            let t0 = thread_cpu();
            let mut d = AudioDetector::new(r2, c2, &detect_key, opts.clone());
            for b in attacked[from * c2..to * c2].chunks(4096 * c2) {
                d.push(b);
            }
            let (det, _) = d.finish();
            detect_cpu += thread_cpu() - t0;
            detect_s += (to - from) as f64 / f64::from(r2);
            let good = det.payload == Some(payload);
            if good {
                ok += 1;
            }
            if det.present {
                present += 1;
            }
            line += &format!(
                " | {snr:4.1}dB z{:5.1} e{:3} {}{}",
                det.z,
                det.bit_errors.map_or(-1, |e| e as i64),
                if good { "OK" } else { "--" },
                if det.present { "" } else { " (absent)" }
            );
        }
        ok_total += ok;
        runs += usize::from(a.keys);
        println!("{line} | {ok}/{}", a.keys);
    }
    println!("total {ok_total}/{runs} payloads, {present}/{runs} declared present");
    println!(
        "one-core CPU time: embed {:.0}x real time, detect {:.0}x real time ({})",
        embed_s / embed_cpu.max(1e-9),
        detect_s / detect_cpu.max(1e-9),
        if a.search {
            "with the ±5 % speed search"
        } else {
            "unchanged speed only"
        }
    );
}
