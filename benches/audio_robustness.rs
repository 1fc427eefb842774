//! The spec's audio attack table: embed on every clip of a corpus, attack with the real ffmpeg
//! and sox, detect blind, print pass rate (payload recovered exactly), BER before correction,
//! sync z, SNR, speeds as multiples of real time, and a false-positive count on unmarked clips.
//!
//! `bash benches/make-audio-corpus.sh DIR` makes the corpus, then
//! `AUDIO_CORPUS=DIR cargo bench --bench audio_robustness` (add `AUDIO_ATTACKS=ci` for the CI
//! subset, `AUDIO_FP_KEYS=N` for N keys in the false-positive run; default 40).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aigc_media::audio::{AudioReader, WavFormat, WavWriter};
use aigc_watermark::audio::{DEFAULT_STRENGTH, detect_file, embed_file};
use aigc_watermark::{KeyedRng, Payload, WatermarkKey};

/// One attack: a name, the spec's target, and the steps that make the attacked file.
struct Attack {
    name: &'static str,
    target: &'static str,
    run: fn(&Path, &Path) -> Result<PathBuf, String>,
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e} (install it: bash .ci/install-deps)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn ff(input: &Path, out: &Path, args: &[&str]) -> Result<PathBuf, String> {
    let mut a = vec!["-hide_banner", "-loglevel", "error", "-y", "-i", s(input)];
    a.extend_from_slice(args);
    a.push(s(out));
    run("ffmpeg", &a)?;
    Ok(out.to_path_buf())
}

/// Encode with ffmpeg, then (for codecs our reader lacks) decode back to WAV with ffmpeg.
fn codec(input: &Path, dir: &Path, ext: &str, args: &[&str]) -> Result<PathBuf, String> {
    let enc = ff(input, &dir.join(format!("enc.{ext}")), args)?;
    if ext == "opus" {
        return ff(&enc, &dir.join("dec.wav"), &[]);
    }
    Ok(enc)
}

fn sox(input: &Path, dir: &Path, effect: &[&str]) -> Result<PathBuf, String> {
    let out = dir.join("sox.wav");
    let mut a = vec!["-q", s(input), s(&out)];
    a.extend_from_slice(effect);
    run("sox", &a)?;
    Ok(out)
}

fn add_noise(input: &Path, dir: &Path, snr_db: f64) -> Result<PathBuf, String> {
    let mut r = AudioReader::open(input).map_err(|e| e.to_string())?;
    let info = r.info().clone();
    let mut all = Vec::new();
    while let Some(b) = r.next_block().map_err(|e| e.to_string())? {
        all.extend_from_slice(b);
    }
    let power = all.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / all.len().max(1) as f64;
    let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut rng = KeyedRng::from_seed([77; 32]);
    let noisy: Vec<f32> = all
        .iter()
        .map(|v| v + (sigma * rng.gaussian()) as f32)
        .collect();
    let out = dir.join("noise.wav");
    let mut w = WavWriter::create(&out, info.sample_rate, info.channels, WavFormat::Float)
        .map_err(|e| e.to_string())?;
    w.write(&noisy).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

macro_rules! attack {
    ($name:expr, $target:expr, |$i:ident, $d:ident| $body:expr) => {
        Attack {
            name: $name,
            target: $target,
            run: |$i: &Path, $d: &Path| $body,
        }
    };
}

fn attacks() -> Vec<Attack> {
    vec![
        attack!("none", "100%", |i, _d| Ok(i.to_path_buf())),
        attack!("mp3 128k", "100%", |i, d| codec(
            i,
            d,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "128k"]
        )),
        attack!("mp3 64k", "100%", |i, d| codec(
            i,
            d,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "64k"]
        )),
        attack!("mp3 VBR V5", "100%", |i, d| codec(
            i,
            d,
            "mp3",
            &["-c:a", "libmp3lame", "-q:a", "5"]
        )),
        attack!("aac 128k", "100%", |i, d| codec(
            i,
            d,
            "m4a",
            &["-c:a", "aac", "-b:a", "128k"]
        )),
        attack!("aac 64k", "100%", |i, d| codec(
            i,
            d,
            "m4a",
            &["-c:a", "aac", "-b:a", "64k"]
        )),
        attack!("opus 64k", "100%", |i, d| codec(
            i,
            d,
            "opus",
            &["-c:a", "libopus", "-b:a", "64k"]
        )),
        attack!("opus 32k", "100%", |i, d| codec(
            i,
            d,
            "opus",
            &["-c:a", "libopus", "-b:a", "32k"]
        )),
        attack!("vorbis 64k", "100%", |i, d| codec(
            i,
            d,
            "ogg",
            &["-c:a", "libvorbis", "-b:a", "64k"]
        )),
        attack!("mp3 128k -> aac 96k", "100%", |i, d| {
            let m = codec(i, d, "mp3", &["-c:a", "libmp3lame", "-b:a", "128k"])?;
            ff(&m, &d.join("tandem.m4a"), &["-c:a", "aac", "-b:a", "96k"])
        }),
        attack!("mp3 48k", ">=90%", |i, d| codec(
            i,
            d,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "48k"]
        )),
        attack!("mp3 32k", ">=90%", |i, d| codec(
            i,
            d,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "32k"]
        )),
        attack!("aac 48k", ">=90%", |i, d| codec(
            i,
            d,
            "m4a",
            &["-c:a", "aac", "-b:a", "48k"]
        )),
        attack!("aac 32k", ">=90%", |i, d| codec(
            i,
            d,
            "m4a",
            &["-c:a", "aac", "-b:a", "32k"]
        )),
        attack!("resample 48k", "100%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-ar", "48000"]
        )),
        attack!("resample 22.05k", "100%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-ar", "22050"]
        )),
        attack!("resample 16k mono", "100%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-ar", "16000", "-ac", "1"]
        )),
        attack!("stereo -> mono", "100%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-ac", "1"]
        )),
        attack!("channel swap", "100%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "pan=stereo|c0=c1|c1=c0"]
        )),
        attack!("gain -10 dB", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "volume=-10dB"]
        )),
        attack!("gain +6 dB limiter", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "volume=6dB,alimiter=limit=0.98"]
        )),
        attack!("loudnorm", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "loudnorm", "-ar", "44100"]
        )),
        attack!("compressor", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "acompressor=threshold=0.1:ratio=4"]
        )),
        attack!("EQ", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &[
                "-af",
                "equalizer=f=1500:t=q:w=1:g=6,equalizer=f=300:t=q:w=1:g=-6"
            ]
        )),
        attack!("low-pass 4 kHz", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "lowpass=f=4000"]
        )),
        attack!("high-pass 500 Hz", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "highpass=f=500"]
        )),
        attack!("echo", ">=99%", |i, d| ff(
            i,
            &d.join("r.wav"),
            &["-af", "aecho=0.8:0.7:100:0.3"]
        )),
        attack!("noise 30 dB", ">=99%", |i, d| add_noise(i, d, 30.0)),
        attack!("noise 20 dB", "80% (stretch)", |i, d| add_noise(i, d, 20.0)),
        attack!("clip 15 s + mp3 128k", ">=99%", |i, d| codec(
            &ff(i, &d.join("c.wav"), &["-ss", "7.377", "-t", "15"])?,
            d,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "128k"]
        )),
        attack!("clip 10 s", ">=95%", |i, d| ff(
            i,
            &d.join("c.wav"),
            &["-ss", "11.131", "-t", "10"]
        )),
        attack!("clip 5 s", ">=90%", |i, d| ff(
            i,
            &d.join("c.wav"),
            &["-ss", "3.71", "-t", "5"]
        )),
        attack!("speed +5% (sox speed)", ">=99%", |i, d| sox(
            i,
            d,
            &["speed", "1.05"]
        )),
        attack!("speed -5% (sox speed)", ">=99%", |i, d| sox(
            i,
            d,
            &["speed", "0.95"]
        )),
        attack!("tempo +5%", "80% (stretch)", |i, d| sox(
            i,
            d,
            &["tempo", "1.05"]
        )),
        attack!("pitch +50 cents", "80% (stretch)", |i, d| sox(
            i,
            d,
            &["pitch", "50"]
        )),
    ]
}

const CI_SUBSET: [&str; 4] = ["none", "mp3 128k", "aac 64k", "clip 15 s + mp3 128k"];

fn seconds_of(path: &Path) -> f64 {
    let Ok(mut r) = AudioReader::open(path) else {
        return 0.0;
    };
    let (rate, ch) = (r.info().sample_rate, r.info().channels);
    let mut n = 0usize;
    while let Ok(Some(b)) = r.next_block() {
        n += b.len();
    }
    n as f64 / (f64::from(rate) * ch as f64)
}

fn main() {
    let Some(corpus) = std::env::var_os("AUDIO_CORPUS").map(PathBuf::from) else {
        eprintln!(
            "audio_robustness: set AUDIO_CORPUS=DIR (make it with bash benches/make-audio-corpus.sh DIR); skipped"
        );
        return;
    };
    let chosen = std::env::var("AUDIO_ATTACKS").unwrap_or_default();
    let ci = chosen == "ci";
    // A comma-separated list of attack names (or "ci", or empty for all).
    let named: Vec<&str> = if ci || chosen.is_empty() {
        Vec::new()
    } else {
        chosen.split(',').map(str::trim).collect()
    };
    // A comma-separated list of substrings of clip names (empty: every clip).
    let clip_filter = std::env::var("AUDIO_CLIPS").unwrap_or_default();
    let verbose = std::env::var_os("AUDIO_VERBOSE").is_some();
    let fp_keys: u8 = std::env::var("AUDIO_FP_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("AUDIO_CORPUS is not a readable directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .filter(|p| {
            clip_filter.is_empty()
                || clip_filter
                    .split(',')
                    .any(|c| p.to_string_lossy().contains(c.trim()))
        })
        .collect();
    clips.sort();
    let work = tempfile::tempdir().expect("temporary directory");
    let key = WatermarkKey::from_bytes([0x42; 32]);
    let attacks: Vec<Attack> = attacks()
        .into_iter()
        .filter(|a| !ci || CI_SUBSET.contains(&a.name))
        .filter(|a| named.is_empty() || named.contains(&a.name))
        .collect();
    // rows: passes, clips, BER sum, BER count, z sum, failures
    let mut rows: Vec<(usize, usize, f64, usize, f64, Vec<String>)> = attacks
        .iter()
        .map(|_| (0, 0, 0.0, 0, 0.0, Vec::new()))
        .collect();
    let (mut embed_time, mut detect_time, mut audio_secs) = (0.0f64, 0.0f64, 0.0f64);
    let mut snrs = Vec::new();
    for (ci_, clip) in clips.iter().enumerate() {
        let name = clip
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let payload = Payload(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(ci_ as u64 + 1));
        let marked = work.path().join("marked.wav");
        let t = Instant::now();
        let report = match embed_file(clip, &marked, payload, &key, DEFAULT_STRENGTH) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        embed_time += t.elapsed().as_secs_f64();
        let secs = seconds_of(clip);
        audio_secs += secs;
        snrs.push((name.clone(), report.snr_db));
        for (a, row) in attacks.iter().zip(rows.iter_mut()) {
            let adir = work.path().join("attack");
            let _ = std::fs::remove_dir_all(&adir);
            std::fs::create_dir_all(&adir).expect("work dir");
            let attacked = match (a.run)(&marked, &adir) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{name} / {}: attack failed: {e}", a.name);
                    continue;
                }
            };
            let t = Instant::now();
            let d = detect_file(&attacked, &key);
            if a.name == "none" {
                detect_time += t.elapsed().as_secs_f64();
            }
            row.1 += 1;
            match d {
                Ok(d) => {
                    if verbose {
                        eprintln!(
                            "  {name} / {}: z {:.1} speed {:.4} errors {:?} payload {}",
                            a.name,
                            d.z,
                            d.speed,
                            d.bit_errors,
                            d.payload == Some(payload)
                        );
                    }
                    if d.payload == Some(payload) {
                        row.0 += 1;
                    } else {
                        row.5.push(name.clone());
                    }
                    if let Some(be) = d.bit_errors {
                        row.2 += be as f64 / d.chips as f64;
                        row.3 += 1;
                    }
                    row.4 += d.z;
                }
                Err(e) => {
                    row.5.push(format!("{name} ({e})"));
                }
            }
        }
        eprintln!("{name}: done ({:.1} dB)", report.snr_db);
    }
    println!(
        "\naudio robustness: {} clips, {:.0} s of audio, strength {DEFAULT_STRENGTH}",
        clips.len(),
        audio_secs
    );
    println!(
        "| attack | target | payload recovered | BER before correction | mean z | failed clips |"
    );
    println!("|---|---|---|---|---|---|");
    for (a, r) in attacks.iter().zip(&rows) {
        let ber = if r.3 > 0 { r.2 / r.3 as f64 } else { f64::NAN };
        let z = if r.1 > 0 { r.4 / r.1 as f64 } else { f64::NAN };
        let fails: Vec<&str> = r.5.iter().take(6).map(String::as_str).collect();
        let more = if r.5.len() > 6 {
            format!(" +{}", r.5.len() - 6)
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {}/{} ({:.0} %) | {:.3} | {:.1} | {}{} |",
            a.name,
            a.target,
            r.0,
            r.1,
            100.0 * r.0 as f64 / r.1.max(1) as f64,
            ber,
            z,
            fails.join(", "),
            more
        );
    }
    let mut sorted: Vec<f64> = snrs.iter().map(|s| s.1).filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    if let (Some(lo), Some(hi)) = (sorted.first(), sorted.last()) {
        println!(
            "\nSNR: min {lo:.1} dB, median {:.1} dB, max {hi:.1} dB",
            sorted[sorted.len() / 2]
        );
    }
    if audio_secs > 0.0 {
        println!(
            "speed (one core, incl. WAV decode/encode): embed {:.0}x real time, detect {:.0}x real time (two passes)",
            audio_secs / embed_time.max(1e-9),
            audio_secs / detect_time.max(1e-9)
        );
    }
    // False positives: every unmarked clip under many independent keys.
    let (mut runs, mut fps, mut zmax) = (0usize, 0usize, f64::MIN);
    for k in 0..fp_keys {
        let key = WatermarkKey::from_bytes([k.wrapping_add(100); 32]);
        for clip in &clips {
            if let Ok(d) = detect_file(clip, &key) {
                runs += 1;
                fps += usize::from(d.present || d.payload.is_some());
                zmax = zmax.max(d.z);
            }
        }
    }
    println!(
        "false positives: {fps} of {runs} detections on unmarked clips ({fp_keys} keys × {} clips, {:.0} s of audio per key); max z {zmax:.2}",
        clips.len(),
        audio_secs
    );
}
