//! The invisible watermark end to end through the binary: keys, `label` marking images and
//! audio, `inspect` and `wm detect` checking mark against label, the ledger resolving a mark
//! whose metadata was stripped, and `robustness --quick`.

mod common;

use common::{CODE, Scratch, text, tool};
use std::path::Path;

/// A textured RGB image (sinusoids + noise, like a photograph's detail) written as PNG or JPEG.
fn textured_image(path: &Path, w: u32, h: u32, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let phase = seed as f32;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let base = 120.0
            + 45.0 * (xf * 0.043 + yf * 0.017 + phase).sin()
            + 30.0 * (xf * 0.011 - yf * 0.061).cos()
            + 40.0 * noise();
        let px = |k: f32| (base + k).round().clamp(0.0, 255.0) as u8;
        image::Rgb([px(18.0), px(0.0), px(-22.0)])
    });
    let jpeg = path.extension().is_some_and(|e| e == "jpg");
    if jpeg {
        let file = std::fs::File::create(path).expect("create");
        image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90)
            .encode_image(&img)
            .expect("encode JPEG");
    } else {
        img.save(path).expect("save PNG");
    }
}

/// `seconds` (whole) of stereo plucked-string music with tremolo (energy across the marked 0.34–6 kHz
/// band; repeatable), made by sox: material the mark decodes with a wide margin under any key
/// (this test is about the wiring; the mark's limits are measured in benches/).
fn music_wav(path: &Path, seconds: u32) {
    let repeats = (2 * seconds).saturating_sub(1).to_string();
    let out = tool(
        "sox",
        &[
            "-R",
            "-q",
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            "-b",
            "16",
            &path.display().to_string(),
            "synth",
            "0.5",
            "pluck",
            "A3",
            "pluck",
            "E4",
            // A new pluck every half second: one pluck alone decays to silence within seconds.
            "repeat",
            &repeats,
            "tremolo",
            "4",
            "60",
            "gain",
            "-6",
        ],
    );
    assert!(out.status.success(), "sox: {}", text(&out.stderr));
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn keygen_label_inspect_image_and_wav_mark_agrees_with_label() {
    let sc = Scratch::new();
    let key = sc.json(&["keygen", "--watermark", "--name", "studio", "--json"], 0);
    let key_file = key["key_file"].as_str().expect("key file").to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "watermark key is private");
    }
    // The signing-key ring does not stumble over the watermark key in the same directory.
    let (img, wav) = (sc.path("photo.png"), sc.path("voice.wav"));
    textured_image(&img, 640, 480, 1);
    music_wav(&wav, 60);
    // An MP3 too: prompt and mark go in during one decode/encode pass.
    let mp3 = sc.path("song.mp3");
    let enc = tool(
        "ffmpeg",
        &["-v", "error", "-i", &s(&wav), "-b:a", "128k", &s(&mp3)],
    );
    assert!(enc.status.success(), "ffmpeg: {}", text(&enc.stderr));
    let out_dir = sc.path("out");
    let r = sc.json(
        &[
            "label",
            &s(&img),
            &s(&wav),
            &s(&mp3),
            "-o",
            &s(&out_dir),
            "--producer",
            CODE,
            "--json",
        ],
        0,
    );
    let labelled = r["labelled"].as_array().expect("labelled");
    assert_eq!(labelled.len(), 3, "{r}");
    for l in labelled {
        assert_eq!(l["watermark"]["status"], "applied", "{l}");
        assert_eq!(
            l["watermark_mark"]["payload"], l["watermark_payload"],
            "the mark carries the payload of the record written: {l}"
        );
    }
    assert!(
        labelled[0]["watermark_mark"]["psnr_db"]
            .as_f64()
            .expect("psnr")
            >= 40.0
    );
    assert!(
        labelled[1]["watermark_mark"]["snr_db"]
            .as_f64()
            .expect("snr")
            >= 30.0
    );
    // Independent read-back of the marked WAV: sox sees the 60 s of content plus the inserted
    // prompt, as long as the label report says.
    let info = tool("soxi", &["-D", &s(&out_dir.join("voice.wav"))]);
    let secs: f64 = text(&info.stdout).trim().parse().expect("soxi duration");
    let reported = labelled[1]["explicit_label"]["output_s"]
        .as_f64()
        .expect("output_s");
    assert!(
        secs > 60.0 && (secs - reported).abs() < 0.01,
        "{secs} vs {reported}"
    );
    // ffprobe reads the labelled MP3 as one MP3 stream as long as the report says (within an
    // MP3 frame of encoder padding).
    let probe = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
            "-of",
            "default=nw=1",
            &s(&out_dir.join("song.mp3")),
        ],
    );
    let shown = text(&probe.stdout);
    assert!(shown.contains("codec_name=mp3"), "{shown}");
    let secs: f64 = shown
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|v| v.trim().parse().ok())
        .expect("ffprobe duration");
    let song = labelled
        .iter()
        .find(|l| l["input"].as_str().is_some_and(|p| p.ends_with("song.mp3")))
        .expect("song.mp3 labelled");
    let reported = song["explicit_label"]["output_s"]
        .as_f64()
        .expect("output_s");
    assert!((secs - reported).abs() < 0.05, "{secs} vs {reported}");

    let report = sc.json(&["inspect", &s(&out_dir), "--json"], 0);
    let files = report["files"].as_array().expect("files");
    assert_eq!(files.len(), 3);
    for f in files {
        assert_eq!(f["verdict"], "labelled", "{f}");
        let w = &f["watermark"];
        assert_eq!(w["detection"]["present"], true, "{f}");
        assert_eq!(w["label"]["state"], "agree", "{f}");
        assert!(
            w["detection"]["false_positive_probability"]
                .as_f64()
                .expect("fpp")
                < 1e-6
        );
    }
    // Human output says so too.
    let out = sc.run(&["inspect", &s(&out_dir.join("photo.png"))]);
    let shown = text(&out.stdout);
    assert!(shown.contains("AGREES with the metadata label"), "{shown}");
}

#[test]
fn wm_embed_detect_round_trip_and_wrong_key() {
    let sc = Scratch::new();
    sc.json(&["keygen", "--watermark", "--name", "mine", "--json"], 0);
    let img = sc.path("in.jpg");
    textured_image(&img, 512, 512, 2);
    let marked = sc.path("marked.jpg");
    let e = sc.json(
        &[
            "wm",
            "embed",
            &s(&img),
            "-o",
            &s(&marked),
            "--payload",
            "0123456789ABCDEF",
            "--json",
        ],
        0,
    );
    assert_eq!(e["mark"]["payload"], "0123456789abcdef");
    // Still a JPEG (exiftool reads it), same size.
    let out = tool("exiftool", &["-s3", "-FileType", "-ImageSize", &s(&marked)]);
    assert_eq!(text(&out.stdout).trim(), "JPEG\n512x512");
    let d = sc.json(&["wm", "detect", &s(&marked), "--json"], 0);
    let w = &d["files"][0]["watermark"];
    assert_eq!(w["detection"]["payload"], "0123456789abcdef", "{d}");
    assert_eq!(w["label"]["state"], "no-label");
    // Rotated 3° clockwise (borders cropped) and resized to 80 % by ImageMagick: the payload
    // comes back with the transform that was applied.
    let turned = sc.path("turned.png");
    let out = tool(
        "convert",
        &[
            &s(&marked),
            "-rotate",
            "3",
            "-gravity",
            "center",
            "-crop",
            "440x440+0+0",
            "+repage",
            "-resize",
            "80%",
            &s(&turned),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d = sc.json(&["wm", "detect", &s(&turned), "--json"], 0);
    let det = &d["files"][0]["watermark"]["detection"];
    assert_eq!(det["payload"], "0123456789abcdef", "{d}");
    let scale = det["transform"]["scale"].as_f64().expect("scale");
    let rotation = det["transform"]["rotation_degrees"]
        .as_f64()
        .expect("rotation");
    assert!((scale - 0.8).abs() < 0.01, "scale {scale}");
    assert!((rotation - 3.0).abs() < 0.3, "rotation {rotation}");
    // The unmarked input: no mark, exit 1.
    let d = sc.json(&["wm", "detect", &s(&img), "--json"], 1);
    assert_eq!(d["files"][0]["watermark"]["detection"]["present"], false);
    assert!(d["files"][0]["watermark"]["detection"]["payload"].is_null());
    // Another key: not detected, no payload printed.
    sc.json(&["keygen", "--watermark", "--name", "theirs", "--json"], 0);
    let d = sc.json(
        &["wm", "detect", &s(&marked), "--key", "theirs", "--json"],
        1,
    );
    let det = &d["files"][0]["watermark"]["detection"];
    assert_eq!(det["present"], false, "{d}");
    assert!(det["payload"].is_null());
    // keygen takes the key directory by the name the other commands read it with.
    let kdir = sc.path("kdir");
    sc.json(
        &[
            "keygen",
            "--watermark",
            "--name",
            "elsewhere",
            "--keys",
            &s(&kdir),
            "--json",
        ],
        0,
    );
    assert!(kdir.join("elsewhere.wmkey.json").is_file());
    let d = sc.json(
        &["wm", "detect", &s(&marked), "--keys", &s(&kdir), "--json"],
        1,
    );
    assert_eq!(
        d["files"][0]["watermark"]["detection"]["key_name"], "elsewhere",
        "{d}"
    );
    // Two keys and none chosen: a clear error, nothing written.
    let out = sc.run(&[
        "wm",
        "embed",
        &s(&img),
        "-o",
        &s(&sc.path("x.jpg")),
        "--payload",
        "0123456789abcdef",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("several watermark keys"),
        "{}",
        text(&out.stderr)
    );
    assert!(!sc.path("x.jpg").exists());
    // A bad payload and a too-small image are refused, nothing written.
    let out = sc.run(&[
        "wm",
        "embed",
        &s(&img),
        "-o",
        &s(&sc.path("y.jpg")),
        "--payload",
        "12",
        "--key",
        "mine",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("16 hex digits"));
    let small = sc.path("small.png");
    textured_image(&small, 200, 200, 3);
    let out = sc.run(&[
        "wm",
        "embed",
        &s(&small),
        "-o",
        &s(&sc.path("y.png")),
        "--payload",
        "0123456789abcdef",
        "--key",
        "mine",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("small.png"),
        "{}",
        text(&out.stderr)
    );
    assert!(!sc.path("y.png").exists() && !sc.path("y.jpg").exists());
}

#[test]
fn stripped_metadata_resolves_through_the_ledger() {
    let sc = Scratch::new();
    sc.json(&["keygen", "--watermark", "--json"], 0);
    // Full HD with the drawn label: the mark must still read back from the labelled output.
    let img = sc.path("pic.jpg");
    textured_image(&img, 1920, 1080, 4);
    let out = sc.path("labelled.jpg");
    let r = sc.json(
        &[
            "label",
            &s(&img),
            "-o",
            &s(&out),
            "--producer",
            CODE,
            "--produce-id",
            "pic-42",
            "--json",
        ],
        0,
    );
    assert_eq!(r["labelled"][0]["watermark"]["status"], "applied", "{r}");
    let payload = r["labelled"][0]["watermark_payload"]
        .as_str()
        .expect("payload")
        .to_string();
    let strip = tool(
        "exiftool",
        &["-q", "-all=", "-overwrite_original", &s(&out)],
    );
    assert!(strip.status.success(), "{}", text(&strip.stderr));
    let report = sc.json(&["inspect", &s(&out), "--with-ledger", "--json"], 0);
    let f = &report["files"][0];
    assert_eq!(f["verdict"], "unlabelled", "metadata is gone: {f}");
    assert_eq!(f["watermark"]["detection"]["payload"], payload.as_str());
    assert_eq!(f["watermark"]["label"]["state"], "no-label");
    let d = sc.json(&["wm", "detect", &s(&out), "--json"], 0);
    let entries = d["files"][0]["watermark"]["ledger"]
        .as_array()
        .expect("ledger");
    assert_eq!(entries.len(), 1, "{d}");
    assert!(
        entries[0]["record_json"]
            .as_str()
            .expect("record")
            .contains("pic-42"),
        "the ledger gives back the full record: {d}"
    );
    let shown = text(&sc.run(&["wm", "detect", &s(&out)]).stdout);
    assert!(
        shown.contains("pic-42") && shown.contains("MARK FOUND"),
        "{shown}"
    );
}

#[test]
fn label_without_a_watermark_key_reports_how_to_make_one() {
    let sc = Scratch::new();
    let img = sc.path("p.png");
    textured_image(&img, 400, 400, 5);
    let r = sc.json(
        &[
            "label",
            &s(&img),
            "-o",
            &s(&sc.path("o.png")),
            "--producer",
            CODE,
            "--json",
        ],
        0,
    );
    let w = &r["labelled"][0]["watermark"];
    assert_eq!(w["status"], "unavailable");
    assert!(
        w["reason"]
            .as_str()
            .expect("reason")
            .contains("keygen --watermark"),
        "{w}"
    );
    // --no-watermark: switched off; a named key that does not exist: exit 2.
    let r = sc.json(
        &[
            "label",
            &s(&img),
            "-o",
            &s(&sc.path("o2.png")),
            "--producer",
            CODE,
            "--no-watermark",
            "--json",
        ],
        0,
    );
    assert_eq!(r["labelled"][0]["watermark"]["status"], "skipped");
    let out = sc.run(&[
        "label",
        &s(&img),
        "-o",
        &s(&sc.path("o3.png")),
        "--producer",
        CODE,
        "--wm-key",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope"));
    assert!(!sc.path("o3.png").exists());
}

#[test]
fn robustness_quick_runs_the_ci_subset_with_imagemagick() {
    let sc = Scratch::new();
    sc.json(&["keygen", "--watermark", "--json"], 0);
    let dir = sc.path("corpus");
    std::fs::create_dir_all(&dir).expect("dir");
    textured_image(&dir.join("a.png"), 512, 512, 6);
    textured_image(&dir.join("b.jpg"), 480, 400, 7);
    std::fs::write(dir.join("notes.txt"), "not an image").expect("write");
    let report_md = sc.path("report.md");
    let r = sc.json(
        &[
            "robustness",
            "--modality",
            "image",
            &s(&dir),
            "--quick",
            "-o",
            &s(&report_md),
            "--json",
        ],
        0,
    );
    let attacks = r["attacks"].as_array().expect("attacks");
    let names: Vec<&str> = attacks
        .iter()
        .filter_map(|a| a["attack"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "none",
            "JPEG q50 (4:2:0)",
            "resize 50 %",
            "centre crop 50 % area"
        ]
    );
    for a in attacks {
        assert_eq!(a["tried"], 2, "every attack ran on both images: {a}");
    }
    assert_eq!(attacks[0]["passed"], 2, "unattacked marks read back: {r}");
    assert_eq!(
        r["files"].as_array().map(Vec::len),
        Some(2),
        "the text file is ignored"
    );
    assert_eq!(r["unmarked_runs"], 2);
    assert_eq!(r["unmarked_false"], 0, "{r}");
    assert_eq!(r["wrong_key_false"], 0, "{r}");
    let md = std::fs::read_to_string(&report_md).expect("report");
    assert!(md.contains("| JPEG q50 (4:2:0) | ≥ 97 % | "), "{md}");
    assert!(
        md.contains("False positives: 0 of 2 detections on unmarked originals"),
        "{md}"
    );
}

#[test]
fn robustness_locates_a_spliced_segment_and_runs_only_the_chosen_attacks() {
    let sc = Scratch::new();
    let dir = sc.path("corpus");
    std::fs::create_dir_all(&dir).expect("dir");
    music_wav(&dir.join("music.wav"), 30);
    let r = sc.json(
        &[
            "robustness",
            "--modality",
            "audio",
            &s(&dir),
            "--attacks",
            "SPLICED",
            "--json",
        ],
        0,
    );
    let attacks = r["attacks"].as_array().expect("attacks");
    assert_eq!(attacks.len(), 1, "only the splice row: {r}");
    assert_eq!(
        attacks[0]["attack"],
        "marked 20 s spliced into unmarked audio"
    );
    // Passing means the payload came back and the marked part was located within 2.5 s of
    // 15–35 s, where the attack put it.
    assert_eq!(attacks[0]["passed"], 1, "{r}");
    // An attack name that matches nothing is an error listing the names.
    let out = sc.run(&[
        "robustness",
        "--modality",
        "audio",
        &s(&dir),
        "--attacks",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no attack matches \"nope\"") && err.contains("MP3 128k"),
        "{err}"
    );
}

#[test]
fn audio_mark_survives_sox_tempo_and_pitch_changes() {
    let sc = Scratch::new();
    sc.json(&["keygen", "--watermark", "--json"], 0);
    let wav = sc.path("music.wav");
    music_wav(&wav, 30);
    let marked = sc.path("marked.wav");
    sc.json(
        &[
            "wm",
            "embed",
            &s(&wav),
            "-o",
            &s(&marked),
            "--payload",
            "0123456789abcdef",
            "--json",
        ],
        0,
    );
    // sox's tempo (time stretched, pitch kept) and pitch (pitch shifted, duration kept): the
    // detector finds them as such, not as a replay-speed change. Pitch is searched in 1 %
    // steps, so a shift of ±50 cents (×1.0293, ×0.9715) lies between two of them and may be
    // reported at either: within one step of the truth.
    let cents = |c: f64| 2f64.powf(c / 1200.0);
    for (effect, amount, speed, pitch, pitch_tolerance) in [
        ("tempo", "1.05", 1.05, 1.0, 0.006),
        ("tempo", "0.95", 0.95, 1.0, 0.006),
        ("pitch", "50", 1.0, cents(50.0), 0.0101),
        ("pitch", "-50", 1.0, cents(-50.0), 0.0101),
    ] {
        let changed = sc.path(&format!("{effect}{amount}.wav"));
        let out = tool("sox", &[&s(&marked), &s(&changed), effect, amount]);
        assert!(out.status.success(), "sox: {}", text(&out.stderr));
        let d = sc.json(&["wm", "detect", &s(&changed), "--json"], 0);
        let det = &d["files"][0]["watermark"]["detection"];
        assert_eq!(det["payload"], "0123456789abcdef", "{effect} {amount}: {d}");
        let span = &det["span"];
        let (got_speed, got_pitch) = (
            span["speed"].as_f64().expect("speed"),
            span["pitch"].as_f64().expect("pitch"),
        );
        assert!((got_speed - speed).abs() < 0.006, "{effect} {amount}: {d}");
        assert!(
            (got_pitch - pitch).abs() < pitch_tolerance,
            "{effect} {amount}: {d}"
        );
    }
}

#[test]
fn an_interrupted_robustness_run_resumes_from_its_journal() {
    let sc = Scratch::new();
    let dir = sc.path("corpus");
    std::fs::create_dir_all(&dir).expect("dir");
    for i in 0..4u32 {
        textured_image(&dir.join(format!("{i}.png")), 384, 384, u64::from(i) + 20);
    }
    let journal = sc.path("run.jsonl");
    let args = [
        "robustness",
        "--modality",
        "image",
        &s(&dir),
        "--quick",
        "--jobs",
        "1",
        "--journal",
        &s(&journal),
        "--json",
    ];
    // Interrupt once the first file is done: the file in hand is finished, then the run stops.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aigc-mark"))
        .args(args)
        .env("AIGC_MARK_HOME", sc.path("home"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("[1/4]") {
            // The signal itself, not the `kill` program (procps may be missing).
            let pid = libc::pid_t::try_from(child.id()).expect("pid");
            // SAFETY: sends SIGINT to the child this test spawned and still holds.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
            break;
        }
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let first = child.wait_with_output().expect("wait");
    assert_eq!(first.status.code(), Some(130), "{seen}{}", rest.join("\n"));
    let partial: serde_json::Value = serde_json::from_slice(&first.stdout).expect("JSON");
    assert_eq!(partial["interrupted"], true);
    let done_first = partial["files"].as_array().map_or(0, Vec::len);
    assert!((1..4).contains(&done_first), "{partial}");
    assert!(
        rest.iter()
            .any(|l| l.contains("run the same command again to resume"))
    );
    let journal_lines = std::fs::read_to_string(&journal)
        .expect("journal kept")
        .lines()
        .count();
    assert_eq!(
        journal_lines,
        1 + done_first,
        "a run line, then one line per finished file"
    );
    // The same command again: only the rest is measured, and the table covers every file.
    let out = sc.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("resuming: {done_first} of 4 files already done")),
        "{err}"
    );
    assert_eq!(
        err.matches("attacks recovered the payload").count(),
        4 - done_first,
        "{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["interrupted"], false);
    assert_eq!(r["files"].as_array().map(Vec::len), Some(4));
    for a in r["attacks"].as_array().expect("attacks") {
        assert_eq!(a["tried"], 4, "{a}");
    }
    assert_eq!(r["unmarked_runs"], 4);
    assert!(!journal.exists(), "a completed run removes its journal");
}
