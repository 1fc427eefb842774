//! Audio mark on real files: our WAV output read back by ffmpeg, the CI attack subset (MP3 128k,
//! AAC 64k through the real ffmpeg, a 15 s clip at an odd offset), unmarked audio, a wrong key, a
//! spliced segment, and full-scale input.

use std::path::{Path, PathBuf};
use std::process::Command;

use aigc_media::audio::{WavFormat, WavWriter};
use aigc_watermark::audio::{DEFAULT_STRENGTH, detect_file, embed_file};
use aigc_watermark::{KeyedRng, Payload, WatermarkKey};

const RATE: u32 = 44_100;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ffmpeg not runnable ({e}): install it with `bash .ci/install-deps` (apt package ffmpeg)"));
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Interleaved f32 samples of any file, decoded by ffmpeg (independent of our reader).
fn ffmpeg_decode(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-"])
        .output()
        .unwrap_or_else(|e| {
            panic!("ffmpeg not runnable ({e}): install it with `bash .ci/install-deps`")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Music-like stereo: harmonic notes with decaying envelopes over a pad and some noise.
fn music(seconds: f64, seed: u8, peak: f32) -> Vec<f32> {
    let n = (f64::from(RATE) * seconds) as usize;
    let mut rng = KeyedRng::from_seed([seed; 32]);
    let notes = [196.0, 261.63, 329.63, 392.0, 523.25, 659.26, 783.99];
    let note_len = (f64::from(RATE) * 0.3) as usize;
    let seq: Vec<f64> = (0..n / note_len + 1)
        .map(|_| notes[rng.below(notes.len())])
        .collect();
    let mut out = Vec::with_capacity(n * 2);
    for i in 0..n {
        let t = i as f64 / f64::from(RATE);
        let f = seq[i / note_len];
        let env = (-((i % note_len) as f64) / (0.35 * note_len as f64)).exp();
        let tone: f64 = (1..=6)
            .map(|h| (2.0 * std::f64::consts::PI * f * h as f64 * t).sin() / h as f64)
            .sum();
        let pad = 0.3 * (2.0 * std::f64::consts::PI * 130.81 * t).sin()
            + 0.2 * (2.0 * std::f64::consts::PI * 196.0 * t).sin();
        let s = 0.6 * env * tone + pad + 0.04 * rng.gaussian();
        out.push(s as f32);
        out.push((0.8 * s + 0.02 * rng.gaussian()) as f32);
    }
    let max = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    out.iter().map(|s| s * peak / max).collect()
}

fn write_wav(path: &Path, samples: &[f32]) {
    let mut w = WavWriter::create(path, RATE, 2, WavFormat::Int(16)).unwrap();
    w.write(samples).unwrap();
    w.finish().unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    key: WatermarkKey,
    payload: Payload,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    Fixture {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        key: WatermarkKey::from_bytes([0x5A; 32]),
        payload: Payload(0x0123_4567_89AB_CDEF),
    }
}

fn snr_db(original: &[f32], marked: &[f32]) -> f64 {
    assert_eq!(original.len(), marked.len());
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (a, b) in original.iter().zip(marked) {
        s += f64::from(*a) * f64::from(*a);
        n += f64::from(a - b) * f64::from(a - b);
    }
    10.0 * (s / n).log10()
}

#[test]
fn round_trip_snr_and_ci_attack_subset() {
    let fx = fixture();
    let input = fx.dir.join("music.wav");
    let marked = fx.dir.join("marked.wav");
    write_wav(&input, &music(20.0, 1, 0.7));
    let report = embed_file(&input, &marked, fx.payload, &fx.key, DEFAULT_STRENGTH).unwrap();
    // SNR measured on what ffmpeg reads back from both files.
    let (orig, back) = (ffmpeg_decode(&input), ffmpeg_decode(&marked));
    let snr = snr_db(&orig, &back);
    assert!(
        snr >= 35.0,
        "SNR {snr:.1} dB (embedder says {:.1})",
        report.snr_db
    );
    // Exact round trip.
    let d = detect_file(&marked, &fx.key).unwrap();
    assert!(d.present && d.false_positive_probability < 1e-6, "{d:?}");
    assert_eq!(d.payload, Some(fx.payload), "{d:?}");
    let span = d.span.clone().expect("span");
    assert!(
        span.start_seconds < 1.0 && span.end_seconds > 19.0,
        "{span:?}"
    );
    // MP3 128k and AAC 64k through the real ffmpeg, decoded by our reader.
    for (name, codec, rate) in [("x.mp3", "libmp3lame", "128k"), ("x.m4a", "aac", "64k")] {
        let out = fx.dir.join(name);
        ffmpeg(&[
            "-i",
            marked.to_str().unwrap(),
            "-c:a",
            codec,
            "-b:a",
            rate,
            out.to_str().unwrap(),
        ]);
        let d = detect_file(&out, &fx.key).unwrap();
        assert!(d.present, "{name}: {d:?}");
        assert_eq!(d.payload, Some(fx.payload), "{name}: {d:?}");
    }
    // The unmarked original: nothing; the marked file under another key: nothing.
    let d = detect_file(&input, &fx.key).unwrap();
    assert!(!d.present && d.payload.is_none(), "{d:?}");
    let d = detect_file(&marked, &WatermarkKey::from_bytes([0x5B; 32])).unwrap();
    assert!(!d.present && d.payload.is_none(), "{d:?}");
}

#[test]
fn clip_of_15_s_at_an_odd_offset_and_a_spliced_segment_is_located() {
    let fx = fixture();
    let input = fx.dir.join("long.wav");
    let marked = fx.dir.join("long-marked.wav");
    write_wav(&input, &music(40.0, 2, 0.7));
    embed_file(&input, &marked, fx.payload, &fx.key, DEFAULT_STRENGTH).unwrap();
    // A 15 s clip starting at a pseudo-random, non-frame-aligned offset, as MP3 128k.
    let clip = fx.dir.join("clip.mp3");
    ffmpeg(&[
        "-ss",
        "13.3791",
        "-t",
        "15",
        "-i",
        marked.to_str().unwrap(),
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        clip.to_str().unwrap(),
    ]);
    let d = detect_file(&clip, &fx.key).unwrap();
    assert!(d.present && d.false_positive_probability < 1e-6, "{d:?}");
    assert_eq!(d.payload, Some(fx.payload), "{d:?}");
    // 20 s of the marked file spliced between 15 s of other unmarked music on each side.
    let other = fx.dir.join("other.wav");
    write_wav(&other, &music(30.0, 3, 0.7));
    let spliced = fx.dir.join("spliced.wav");
    ffmpeg(&[
        "-i",
        other.to_str().unwrap(),
        "-i",
        marked.to_str().unwrap(),
        "-filter_complex",
        "[0:a]atrim=0:15,asetpts=N/SR/TB[a];[1:a]atrim=5:25,asetpts=N/SR/TB[b];[0:a]atrim=15:30,asetpts=N/SR/TB[c];[a][b][c]concat=n=3:v=0:a=1[o]",
        "-map",
        "[o]",
        "-c:a",
        "pcm_s16le",
        spliced.to_str().unwrap(),
    ]);
    let d = detect_file(&spliced, &fx.key).unwrap();
    assert!(d.present, "{d:?}");
    let span = d.span.clone().expect("span");
    assert!(
        (span.start_seconds - 15.0).abs() < 2.5 && (span.end_seconds - 35.0).abs() < 2.5,
        "{span:?}"
    );
    assert_eq!(d.payload, Some(fx.payload), "{d:?}");
}

#[test]
fn full_scale_input_never_goes_past_full_scale() {
    let fx = fixture();
    let input = fx.dir.join("loud.wav");
    let marked = fx.dir.join("loud-marked.wav");
    // Peaks at exactly full scale, with hard-clipped stretches.
    let loud: Vec<f32> = music(12.0, 4, 1.6)
        .iter()
        .map(|s| s.clamp(-1.0, 1.0))
        .collect();
    write_wav(&input, &loud);
    let report = embed_file(&input, &marked, fx.payload, &fx.key, DEFAULT_STRENGTH).unwrap();
    let back = ffmpeg_decode(&marked);
    let peak = back.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak <= 1.0, "peak {peak}");
    // 16-bit: nothing may reach -32768 where the input did not (ffmpeg maps it to -1.0).
    let orig = ffmpeg_decode(&input);
    let new_min = back
        .iter()
        .zip(&orig)
        .filter(|(b, o)| **b <= -1.0 && **o > -1.0)
        .count();
    assert_eq!(new_min, 0);
    assert!(
        report.stats.samples_limited > 0,
        "the test should exercise the limiter"
    );
}

#[test]
fn unmarked_audio_of_many_kinds_is_never_detected() {
    let fx = fixture();
    let mut rng = KeyedRng::from_seed([42; 32]);
    for i in 0..6u8 {
        let path = fx.dir.join(format!("u{i}.wav"));
        let samples: Vec<f32> = match i {
            0 => music(12.0, 10 + i, 0.5),
            1 => (0..RATE as usize * 24)
                .map(|_| 0.1 * rng.gaussian() as f32)
                .collect(),
            2 => (0..RATE as usize * 24)
                .map(|n| 0.5 * (n as f32 * 2.0 * std::f32::consts::PI * 1000.0 / RATE as f32).sin())
                .collect(),
            3 => vec![0.0; RATE as usize * 24],
            _ => music(12.0, 20 + i, 0.9),
        };
        write_wav(&path, &samples);
        let d = detect_file(&path, &fx.key).unwrap();
        assert!(!d.present && d.payload.is_none(), "{i}: {d:?}");
        assert!(d.z < 5.5, "{i}: {d:?}");
    }
}
