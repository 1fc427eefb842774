//! Decode and encode throughput of [`AudioReader`] / [`AudioWriter`] per format, as multiples of
//! real time on one core (this thread's CPU time, so other load on the machine does not count),
//! plus peak memory over a long stream (memory must not grow with length).
//!
//! `cargo bench -p aigc-media --bench audio_codec_speed [-- SECONDS_OF_LONG_STREAM]`
//! Needs the ffmpeg CLI (fixtures). Prints Markdown tables.

use std::path::Path;
use std::process::Command;

/// CPU time this thread has used, in seconds (one core, whatever else the machine runs).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

use aigc_media::audio::{AudioInfo, AudioReader, AudioWriter, OutputFormat};

const CLIP_SECONDS: u32 = 30;

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("ffmpeg not runnable ({e}): run `bash .ci/install-deps`"));
    assert!(status.success(), "ffmpeg {args:?}");
}

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Decodes `path` completely; returns (frames, seconds spent).
fn decode(path: &Path) -> (AudioInfo, u64, f64) {
    let t = cpu_seconds();
    let mut r = AudioReader::open(path).unwrap();
    let info = r.info().clone();
    let mut frames = 0u64;
    while let Some(b) = r.next_block().unwrap() {
        frames += (b.len() / info.channels) as u64;
    }
    (info, frames, cpu_seconds() - t)
}

/// Music-like stereo: a chord with slow vibrato and a little noise (deterministic).
fn synth(start: u64, frames: usize, rate: u32, out: &mut Vec<f32>) {
    out.clear();
    let mut seed = start.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..frames as u64 {
        let t = (start + i) as f64 / f64::from(rate);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed >> 40) as f64 / (1u64 << 24) as f64 - 0.5;
        let v = 0.2 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
            + 0.15 * (2.0 * std::f64::consts::PI * (330.0 + 3.0 * (5.0 * t).sin()) * t).sin()
            + 0.1 * (2.0 * std::f64::consts::PI * 1760.0 * t).sin()
            + 0.02 * noise;
        out.push(v as f32);
        out.push((0.8 * v) as f32);
    }
}

fn main() {
    let long_seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3 * 3600);
    let dir = tempfile::tempdir().unwrap();
    // A long stream: synthesised block by block into MP3, then read back block by block. Peak
    // memory must stay flat whatever the length.
    let rate = 44_100;
    let long = dir.path().join("long.mp3");
    let before = peak_rss_mib();
    let t = cpu_seconds();
    let mut w =
        AudioWriter::create(&long, rate, 2, OutputFormat::Mp3 { bit_rate: 128_000 }, &[]).unwrap();
    let mut block = Vec::new();
    let total = long_seconds * u64::from(rate);
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(4096) as usize;
        synth(done, n, rate, &mut block);
        w.write(&block).unwrap();
        done += n as u64;
    }
    w.finish().unwrap();
    let enc = cpu_seconds() - t;
    let after_write = peak_rss_mib();
    let (_, frames, dec) = decode(&long);
    let after_read = peak_rss_mib();
    println!("| long stream | value |");
    println!("|---|---:|");
    println!(
        "| length | {:.2} h ({frames} frames read back) |",
        long_seconds as f64 / 3600.0
    );
    println!(
        "| file size | {:.0} MiB |",
        std::fs::metadata(&long).unwrap().len() as f64 / 1048576.0
    );
    println!(
        "| encode (synthesis included) | {:.0}× real time |",
        long_seconds as f64 / enc
    );
    println!("| decode | {:.0}× real time |", long_seconds as f64 / dec);
    println!(
        "| peak RSS before / after writing / after reading | {before:.1} / {after_write:.1} / {after_read:.1} MiB |"
    );
    println!();
    let master = dir.path().join("master.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!(
            "aevalsrc=0.2*sin(2*PI*220*t)+0.15*sin(2*PI*(330+3*sin(5*t))*t)+0.1*sin(2*PI*1760*t)+0.02*(random(0)-0.5)|0.8*(0.2*sin(2*PI*220*t)+0.1*sin(2*PI*1760*t))+0.02*(random(1)-0.5):s=48000:d={CLIP_SECONDS}"
        ),
        "-c:a",
        "pcm_s16le",
        master.to_str().unwrap(),
    ]);
    let cases: &[(&str, &str, &[&str])] = &[
        ("WAV 16-bit", "wav", &["-c:a", "pcm_s16le"]),
        ("WAV 24-bit", "wav", &["-c:a", "pcm_s24le"]),
        ("WAV float", "wav", &["-c:a", "pcm_f32le"]),
        ("FLAC 16-bit", "flac", &["-c:a", "flac"]),
        ("MP3 192k", "mp3", &["-c:a", "libmp3lame", "-b:a", "192k"]),
        ("M4A AAC 128k", "m4a", &["-c:a", "aac", "-b:a", "128k"]),
        (
            "Ogg Vorbis 128k",
            "ogg",
            &["-c:a", "libvorbis", "-b:a", "128k"],
        ),
        ("Opus 96k", "opus", &["-c:a", "libopus", "-b:a", "96k"]),
    ];
    println!(
        "| format (30 s, 48 kHz stereo) | decoder | decode × real time | encode × real time | input kb/s | output kb/s |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for (i, (name, ext, args)) in cases.iter().enumerate() {
        let input = dir.path().join(format!("in{i}.{ext}"));
        let output = dir.path().join(format!("out{i}.{ext}"));
        let mut a = vec!["-i", master.to_str().unwrap()];
        a.extend_from_slice(args);
        a.push(input.to_str().unwrap());
        ffmpeg(&a);
        // Decode: best of three (file cache warm).
        let (info, frames, mut dec) = decode(&input);
        for _ in 0..2 {
            dec = dec.min(decode(&input).2);
        }
        // Encode: the decoded signal held in memory, so only the writer is timed.
        let mut samples = Vec::with_capacity(frames as usize * info.channels);
        let mut r = AudioReader::open(&input).unwrap();
        while let Some(b) = r.next_block().unwrap() {
            samples.extend_from_slice(b);
        }
        let t = cpu_seconds();
        let mut w = AudioWriter::create_like(&info, &output).unwrap();
        for block in samples.chunks(4096 * info.channels) {
            w.write(block).unwrap();
        }
        w.finish().unwrap();
        let enc = cpu_seconds() - t;
        let seconds = frames as f64 / f64::from(info.sample_rate);
        let kbps = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 * 8.0 / seconds / 1000.0;
        println!(
            "| {name} | {:?} | {:.0}× | {:.0}× | {:.0} | {:.0} |",
            info.backend,
            seconds / dec,
            seconds / enc,
            kbps(&input),
            kbps(&output)
        );
    }
}
