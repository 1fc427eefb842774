//! Audible labels end to end: the Morse rhythm's timing and level measured in the written file
//! as read back by sox, the content's rate and channels kept (ffprobe), the spoken prompt where
//! the report says, detection after MP3 64 kbit/s (ffmpeg), and bad input.

mod common;

use common::{CODE, Scratch, text, tool};
use std::path::Path;

/// Makes a WAV fixture with sox: `synth` effect arguments after the duration.
fn make_wav(path: &Path, rate: u32, channels: u32, bits: u32, seconds: f64, synth: &[&str]) {
    let (r, c, b, d) = (
        rate.to_string(),
        channels.to_string(),
        bits.to_string(),
        seconds.to_string(),
    );
    let p = path.display().to_string();
    let mut args = vec!["-q", "-n", "-r", &r, "-c", &c, "-b", &b, &p, "synth", &d];
    args.extend_from_slice(synth);
    let out = tool("sox", &args);
    assert!(out.status.success(), "sox: {}", text(&out.stderr));
}

/// The file's samples as interleaved f32, decoded by sox (independent of our reader).
fn read_f32(path: &Path) -> Vec<f32> {
    let out = tool(
        "sox",
        &[
            &path.display().to_string(),
            "-t",
            "f32",
            "-e",
            "floating-point",
            "-",
        ],
    );
    assert!(out.status.success(), "sox: {}", text(&out.stderr));
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// (sample rate, channels, codec) of the first audio stream, by ffprobe.
fn probe(path: &Path) -> (u32, usize, String) {
    let out = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=sample_rate,channels,codec_name",
            "-of",
            "json",
            &path.display().to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let s = &v["streams"][0];
    (
        s["sample_rate"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .expect("rate"),
        s["channels"].as_u64().expect("channels") as usize,
        s["codec_name"].as_str().expect("codec").to_string(),
    )
}

/// Labels `input` into `output` with extra arguments; returns the outcome JSON of the file.
fn label(s: &Scratch, input: &Path, output: &Path, extra: &[&str]) -> serde_json::Value {
    let (i, o) = (input.display().to_string(), output.display().to_string());
    let mut args = vec![
        "label",
        &i,
        "-o",
        &o,
        "--producer",
        CODE,
        "--no-ledger",
        "--json",
    ];
    args.extend_from_slice(extra);
    let v = s.json(&args, 0);
    v["labelled"][0].clone()
}

/// Amplitude envelope of channel `ch` at `hz`: I/Q demodulation averaged over `span` samples
/// (a whole number of periods, so the 2·hz term cancels), one value per sample, centred.
fn envelope(x: &[f32], channels: usize, ch: usize, rate: u32, hz: f64, span: usize) -> Vec<f64> {
    let mono: Vec<f64> = x.chunks_exact(channels).map(|f| f64::from(f[ch])).collect();
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let (mut i_acc, mut q_acc) = (vec![0.0; mono.len() + 1], vec![0.0; mono.len() + 1]);
    for (n, v) in mono.iter().enumerate() {
        i_acc[n + 1] = i_acc[n] + v * (w * n as f64).cos();
        q_acc[n + 1] = q_acc[n] + v * (w * n as f64).sin();
    }
    (0..mono.len())
        .map(|n| {
            let a = n.saturating_sub(span / 2);
            let b = (a + span).min(mono.len());
            let (i, q) = (i_acc[b] - i_acc[a], q_acc[b] - q_acc[a]);
            2.0 * (i * i + q * q).sqrt() / (b - a) as f64
        })
        .collect()
}

/// Times (s) where `env` crosses `level`, interpolated between samples; the window centre of
/// sample n is n − span/2 + (span − 1)/2.
fn crossings(env: &[f64], level: f64, rate: u32, span: usize) -> Vec<f64> {
    let offset = (span as f64 - 1.0) / 2.0 - (span / 2) as f64;
    env.windows(2)
        .enumerate()
        .filter(|(_, w)| (w[0] < level) != (w[1] < level))
        .map(|(n, w)| {
            let frac = (level - w[0]) / (w[1] - w[0]);
            (n as f64 + frac + offset) / f64::from(rate)
        })
        .collect()
}

#[test]
fn rhythm_timing_matches_morse_within_1ms_and_format_is_kept() {
    let s = Scratch::new();
    let (mut worst_ms, mut edges_measured) = (0.0f64, 0);
    for (rate, channels, bits) in [
        (44_100, 2, 16),
        (48_000, 1, 24),
        (16_000, 1, 16),
        (96_000, 2, 32),
    ] {
        let input = s.path(&format!("in-{rate}-{channels}.wav"));
        let output = s.path(&format!("out-{rate}-{channels}.wav"));
        make_wav(
            &input,
            rate,
            channels,
            bits,
            3.0,
            &["pinknoise", "gain", "-12"],
        );
        let o = label(
            &s,
            &input,
            &output,
            &["--audio-prompt", "rhythm", "--audio-position", "start,end"],
        );
        assert_eq!(o["explicit"]["status"], "applied", "{o}");
        // ffprobe: same rate, channels and sample format as the input.
        assert_eq!(probe(&output), probe(&input), "{rate} Hz {channels} ch");
        let x = read_f32(&output);
        let frames = x.len() / channels as usize;
        let inserted = o["explicit_label"]["inserted"]
            .as_array()
            .expect("inserted");
        assert_eq!(inserted.len(), 2);
        let span_s = inserted[0]["duration_s"].as_f64().expect("duration");
        let want_frames = 3.0 * f64::from(rate) + 2.0 * (span_s * f64::from(rate)).round();
        assert!(
            (frames as f64 - want_frames).abs() <= 2.0,
            "{frames} vs {want_frames}"
        );
        // Envelope over 10 ms = 10 whole periods of 1 kHz (every rate here is a multiple of 100).
        let span = rate as usize / 100;
        for ch in 0..channels as usize {
            let env = envelope(&x, channels as usize, ch, rate, 1000.0, span);
            for ins in inserted {
                let at = ins["rhythm_s"].as_f64().expect("rhythm_s");
                let (a, b) = (
                    ((at - 0.05) * f64::from(rate)) as usize,
                    ((at + 1.15) * f64::from(rate)) as usize,
                );
                let part = &env[a..b];
                let peak = part.iter().cloned().fold(0.0, f64::max);
                let edges: Vec<f64> = crossings(part, peak / 2.0, rate, span)
                    .into_iter()
                    .map(|t| t + a as f64 / f64::from(rate))
                    .collect();
                // ·− ··: edges at 0, 0.1 | 0.2, 0.5 | 0.8, 0.9 | 1.0, 1.1 s after the first.
                let nominal = [0.0, 0.1, 0.2, 0.5, 0.8, 0.9, 1.0, 1.1];
                assert_eq!(edges.len(), 8, "{rate} Hz ch {ch}: edges {edges:?}");
                for (got, want) in edges.iter().zip(nominal) {
                    let err_ms = (got - (at + want)) * 1000.0;
                    worst_ms = worst_ms.max(err_ms.abs());
                    edges_measured += 1;
                    assert!(
                        err_ms.abs() < 1.0,
                        "{rate} Hz ch {ch}: edge {want} off by {err_ms:.3} ms"
                    );
                }
            }
        }
    }
    // The figure for the report (run with --nocapture).
    eprintln!("rhythm edges: {edges_measured} measured, worst deviation {worst_ms:.3} ms");
}

#[test]
fn loud_content_is_never_clipped_and_quiet_content_is_matched() {
    let s = Scratch::new();
    // A full-scale square wave: the matched prompt would exceed full scale without the cap.
    let loud = s.path("loud.wav");
    make_wav(&loud, 44_100, 2, 16, 2.0, &["square", "220", "norm", "0"]);
    let out = s.path("loud-out.wav");
    let o = label(&s, &loud, &out, &["--audio-position", "start,middle,end"]);
    let x = read_f32(&out);
    let (rate, channels) = (44_100.0, 2);
    for ins in o["explicit_label"]["inserted"]
        .as_array()
        .expect("inserted")
    {
        // The inserted span, one sample in from each end (times are rounded to samples).
        let first = (ins["start_s"].as_f64().expect("start") * rate).round() as usize + 1;
        let frames = (ins["duration_s"].as_f64().expect("dur") * rate).round() as usize - 2;
        let (a, b) = (first * channels, (first + frames) * channels);
        let peak = x[a..b].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // −1 dBFS cap (plus one 16-bit step of rounding).
        assert!(peak <= 0.8913 + 1.0 / 32768.0, "prompt peak {peak}");
        assert!(
            peak > 0.8,
            "prompt peak {peak}: the cap, not a lower level, should apply"
        );
    }

    // Noise at two levels: the rhythm's RMS matches the content's, down to the −40 dBFS floor
    // that keeps the label audible in very quiet content.
    let rms = |x: &[f32]| {
        20.0 * (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64)
            .sqrt()
            .log10()
    };
    for (gain, floor) in [("-20", false), ("-45", true)] {
        let quiet = s.path(&format!("noise{gain}.wav"));
        make_wav(&quiet, 48_000, 1, 16, 4.0, &["pinknoise", "gain", gain]);
        let out = s.path(&format!("noise{gain}-out.wav"));
        let o = label(&s, &quiet, &out, &["--audio-prompt", "rhythm"]);
        let x = read_f32(&out);
        let at = o["explicit_label"]["inserted"][0]["rhythm_s"]
            .as_f64()
            .expect("at");
        // The dash (0.2–0.5 s after the first edge), well inside its ramps.
        let dash_db = rms(&x[((at + 0.22) * 48_000.0) as usize..((at + 0.48) * 48_000.0) as usize]);
        let content_db = rms(&x[x.len() - 3 * 48_000..]);
        if floor {
            assert!(content_db < -45.0, "{content_db}");
            assert!((dash_db + 40.0).abs() < 0.2, "rhythm at {dash_db:.2} dBFS");
        } else {
            assert!(
                (dash_db - content_db).abs() < 1.0,
                "rhythm {dash_db:.2} dBFS vs content {content_db:.2} dBFS"
            );
        }
    }
}

#[test]
fn spoken_prompt_is_where_the_report_says() {
    let s = Scratch::new();
    let input = s.path("tone.wav");
    make_wav(&input, 22_050, 2, 16, 3.0, &["sine", "300", "gain", "-15"]);
    for (lang, min_s) in [("zh", 3.5), ("en", 1.8), ("zh+en", 5.8)] {
        let output = s.path(&format!("speech-{lang}.wav"));
        let o = label(
            &s,
            &input,
            &output,
            &[
                "--audio-prompt",
                "speech",
                "--audio-position",
                "end",
                "--speech-lang",
                lang,
            ],
        );
        let ins = &o["explicit_label"]["inserted"][0];
        let at = ins["speech_s"].as_f64().expect("speech_s");
        let end =
            ins["start_s"].as_f64().expect("start") + ins["duration_s"].as_f64().expect("d") - 0.3;
        assert!(end - at > min_s, "{lang}: speech lasts {}", end - at);
        let x = read_f32(&output);
        let rms = |a: f64, b: f64| {
            let part = &x[(a * 22_050.0) as usize * 2..(b * 22_050.0) as usize * 2];
            (part.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / part.len() as f64).sqrt()
        };
        // Speech energy in the span the report gives, silence in the gap before it.
        let speech = rms(at, end);
        let gap = rms(at - 0.25, at - 0.02);
        assert!(speech > 0.02, "{lang}: speech RMS {speech}");
        assert!(gap < 1e-4, "{lang}: gap RMS {gap}");
        // No 1 kHz rhythm with --audio-prompt speech.
        assert!(o["explicit_label"]["rhythm"].is_null());
    }
    // A user's own recording, in another format and rate.
    let own = s.path("own.flac");
    let out = tool(
        "sox",
        &[
            "-q",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            &own.display().to_string(),
            "synth",
            "1.5",
            "sine",
            "500",
        ],
    );
    assert!(out.status.success());
    let output = s.path("own-out.wav");
    let o = label(
        &s,
        &input,
        &output,
        &[
            "--audio-prompt",
            "speech",
            "--speech-file",
            &own.display().to_string(),
        ],
    );
    let ins = &o["explicit_label"]["inserted"][0];
    let speech_s = ins["speech_s"].as_f64().expect("speech_s");
    let len = ins["duration_s"].as_f64().expect("d") - 0.6;
    assert!((len - 1.5).abs() < 0.01, "{len}");
    let x = read_f32(&output);
    let env = envelope(&x, 2, 1, 22_050, 500.0, 441);
    let mid = ((speech_s + 0.75) * 22_050.0) as usize;
    assert!(env[mid] > 0.05, "own prompt at {speech_s}: {}", env[mid]);
}

#[test]
fn rhythm_found_after_mp3_64k_and_not_in_unlabelled_audio() {
    let s = Scratch::new();
    let input = s.path("music.wav");
    make_wav(
        &input,
        44_100,
        2,
        16,
        20.0,
        &[
            "pluck", "A3", "pluck", "E4", "tremolo", "4", "60", "gain", "-6",
        ],
    );
    let output = s.path("music-labelled.wav");
    let o = label(&s, &input, &output, &["--audio-position", "start,middle"]);
    let inserted = o["explicit_label"]["inserted"]
        .as_array()
        .expect("inserted")
        .clone();
    for (name, file) in [("input", &input), ("labelled", &output)] {
        let mp3 = s.path(&format!("{name}.mp3"));
        let out = tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-i",
                &file.display().to_string(),
                "-b:a",
                "64k",
                &mp3.display().to_string(),
            ],
        );
        assert!(out.status.success(), "ffmpeg: {}", text(&out.stderr));
        let v = s.json(&["inspect", "--json", &mp3.display().to_string()], 0);
        let found = v["files"][0]["explicit_rhythms"]
            .as_array()
            .expect("explicit_rhythms")
            .clone();
        if name == "input" {
            assert!(found.is_empty(), "false detection: {found:?}");
            continue;
        }
        assert_eq!(found.len(), 2, "{found:?}");
        for (f, ins) in found.iter().zip(&inserted) {
            assert_eq!(f["meets_rules"], true, "{f}");
            assert_eq!(f["position"], ins["position"], "{f}");
            // MP3 adds an encoder delay of a few tens of ms at most.
            let shift =
                f["start_s"].as_f64().expect("start") - ins["rhythm_s"].as_f64().expect("at");
            assert!((-0.01..0.08).contains(&shift), "{f}: shifted by {shift}");
            assert!(
                (f["unit_ms"].as_f64().expect("unit") - 100.0).abs() < 5.0,
                "{f}"
            );
        }
    }
}

#[test]
fn zero_length_audio_is_an_error_and_writes_nothing() {
    let s = Scratch::new();
    let empty = s.path("empty.wav");
    // A valid WAV header with a data chunk of zero bytes.
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&36u32.to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&44_100u32.to_le_bytes());
    wav.extend_from_slice(&88_200u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&0u32.to_le_bytes());
    std::fs::write(&empty, &wav).expect("write");
    let output = s.path("empty-out.wav");
    let out = s.run(&[
        "label",
        &empty.display().to_string(),
        "-o",
        &output.display().to_string(),
        "--producer",
        CODE,
        "--no-ledger",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("empty.wav") && err.contains("zero length"),
        "{err}"
    );
    assert!(!output.exists());
    // Only the input is left in the directory (no temporary files).
    let names: Vec<String> = std::fs::read_dir(s.dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn bad_options_fail_and_compressed_codecs_are_labelled() {
    let s = Scratch::new();
    let input = s.path("in.wav");
    make_wav(&input, 44_100, 1, 16, 1.0, &["sine", "440"]);
    let o = s.path("o.wav").display().to_string();
    let i = input.display().to_string();
    for (flag, value, needle) in [
        ("--tone-hz", "50", "outside"),
        ("--morse-unit-ms", "5", "outside"),
        ("--audio-position", "top", "unknown audio position"),
    ] {
        let out = s.run(&[
            "label",
            &i,
            "-o",
            &o,
            "--producer",
            CODE,
            "--no-ledger",
            flag,
            value,
        ]);
        assert_ne!(out.status.code(), Some(0));
        assert!(
            text(&out.stderr).contains(needle),
            "{flag}: {}",
            text(&out.stderr)
        );
    }
    // Compressed inputs are re-encoded in their own codec (aigc-media's writer): the rhythm is
    // there, found by inspect, and ffprobe sees the input's codec, rate and channels.
    for sample in [
        "audio.flac",
        "audio.mp3",
        "audio.m4a",
        "audio.ogg",
        "audio.opus",
    ] {
        let input = common::sample(sample);
        let ext = sample.rsplit('.').next().expect("extension");
        let out = s.path(&format!("out.{ext}"));
        let v = label(&s, &input, &out, &["--audio-prompt", "rhythm"]);
        assert_eq!(v["explicit"]["status"], "applied", "{sample}: {v}");
        assert_eq!(v["metadata"]["status"], "applied", "{sample}: {v}");
        assert_eq!(probe(&out), probe(&input), "{sample}");
        let found = s.json(&["inspect", "--json", &out.display().to_string()], 0);
        let rhythms = found["files"][0]["explicit_rhythms"]
            .as_array()
            .expect("explicit_rhythms")
            .clone();
        assert_eq!(rhythms.len(), 1, "{sample}: {rhythms:?}");
    }
}

#[test]
fn relabelling_does_not_stack_a_second_rhythm() {
    let s = Scratch::new();
    let input = s.path("in.wav");
    make_wav(&input, 32_000, 1, 16, 2.0, &["brownnoise", "gain", "-10"]);
    let once = s.path("once.wav");
    let o = label(&s, &input, &once, &["--audio-prompt", "rhythm"]);
    assert_eq!(
        o["explicit_label"]["inserted"].as_array().map(Vec::len),
        Some(1)
    );
    let twice = s.path("twice.wav");
    let o = label(&s, &once, &twice, &["--audio-prompt", "rhythm"]);
    assert_eq!(o["explicit"]["status"], "applied");
    assert_eq!(
        o["explicit_label"]["inserted"].as_array().map(Vec::len),
        Some(0),
        "{o}"
    );
    assert_eq!(
        o["explicit_label"]["already_present"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{o}"
    );
    // Same signal, one more label in metadata: the audio payload is copied, not re-encoded.
    assert_eq!(read_f32(&once), read_f32(&twice));
    assert!(o["kept_bytes"].as_u64().expect("kept") > 60_000, "{o}");
}

/// Top-level RIFF chunks of a WAV file: (id, payload).
fn riff_chunks(b: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 12usize;
    while let Some(h) = b.get(at..at + 8) {
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let Some(body) = b.get(at + 8..at + 8 + len) else {
            break;
        };
        out.push(([h[0], h[1], h[2], h[3]], body.to_vec()));
        at += 8 + len + (len & 1);
    }
    out
}

#[test]
fn wav_chunks_are_kept_and_cue_points_move_past_the_prompt() {
    let s = Scratch::new();
    let tone = s.path("tone.wav");
    make_wav(&tone, 44100, 2, 16, 3.0, &["sine", "440", "vol", "0.3"]);
    // ffmpeg writes LIST/INFO (title, artist) and a bext chunk (description).
    let input = s.path("tagged.wav");
    let made = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &tone.display().to_string(),
            "-c",
            "copy",
            "-write_bext",
            "1",
            "-metadata",
            "title=Kept Title",
            "-metadata",
            "artist=Kept Artist",
            "-metadata",
            "description=Kept bext description",
            &input.display().to_string(),
        ],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    // Add a cue point at frame 22050 and an iXML chunk by hand (ffmpeg writes neither).
    let mut bytes = std::fs::read(&input).expect("read");
    let mut cue = 1u32.to_le_bytes().to_vec();
    for v in [1u32, 22050, u32::from_le_bytes(*b"data"), 0, 0, 22050] {
        cue.extend_from_slice(&v.to_le_bytes());
    }
    let ixml = b"<BWFXML><PROJECT>kept</PROJECT></BWFXML>".to_vec();
    for (id, body) in [(b"cue ", &cue), (b"iXML", &ixml)] {
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(body);
    }
    let riff = (bytes.len() - 8) as u32;
    bytes[4..8].copy_from_slice(&riff.to_le_bytes());
    std::fs::write(&input, &bytes).expect("write");

    let out = s.path("out.wav");
    let o = label(&s, &input, &out, &["--audio-prompt", "rhythm"]);
    let report = &o["explicit_label"];
    let kept: Vec<&str> = report["kept_chunks"]
        .as_array()
        .expect("kept_chunks")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for id in ["LIST", "bext", "cue", "iXML"] {
        assert!(kept.contains(&id), "{id} not kept: {kept:?}");
    }
    // Independent read-back: exiftool sees the INFO tags, bext and iXML; ffprobe the tags.
    let tags = common::exiftool_tags(&out);
    let has = |k: &str, v: &str| {
        tags.iter()
            .any(|(kk, vv)| kk.ends_with(k) && vv.contains(v))
    };
    assert!(has(":Title", "Kept Title"), "{tags:?}");
    assert!(has(":Artist", "Kept Artist"), "{tags:?}");
    assert!(has(":Description", "Kept bext description"), "{tags:?}");
    assert!(has(":BwfxmlProject", "kept"), "{tags:?}");
    let probe_tags = common::ffprobe_tags(&out);
    assert!(
        probe_tags
            .iter()
            .any(|(k, v)| k == "title" && v == "Kept Title"),
        "{probe_tags:?}"
    );
    // The cue point moved by exactly the inserted frames (output − input length).
    let (in_frames, out_frames) = (read_f32(&input).len() / 2, read_f32(&out).len() / 2);
    let added = (out_frames - in_frames) as u32;
    assert!(added > 0);
    let out_bytes = std::fs::read(&out).expect("read");
    let chunks = riff_chunks(&out_bytes);
    let (_, cue) = chunks
        .iter()
        .find(|(id, _)| id == b"cue ")
        .expect("cue chunk");
    let word = |i: usize| u32::from_le_bytes([cue[i], cue[i + 1], cue[i + 2], cue[i + 3]]);
    assert_eq!((word(8), word(24)), (22050 + added, 22050 + added));
    // Exactly one AIGC label chunk, and the RIFF size covers the whole file.
    assert_eq!(chunks.iter().filter(|(id, _)| id == b"AIGC").count(), 1);
    let riff = u32::from_le_bytes([out_bytes[4], out_bytes[5], out_bytes[6], out_bytes[7]]);
    assert_eq!(riff as usize + 8, out_bytes.len());
}
