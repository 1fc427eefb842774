//! The robustness measurement behind `aigc-mark robustness` (and the audio bench): the spec's
//! attack tables run with the real binaries (ImageMagick 6 `convert` for images, ffmpeg and
//! sox for audio), the runner (embed → attack → blind detect) and its report.

use crate::watermark::{Modality, detect_image_bytes, image_options, mark_frame};
use aigc_core::sniff;
use aigc_explicit::image_file::{FrameEdit, edit_image};
use aigc_media::audio::{AudioReader, WavFormat, WavWriter};
use aigc_watermark::{KeyedRng, NamedKey, Payload, WatermarkKey};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What an attack gets: the marked file, a scratch directory, and the marked image's size.
pub struct AttackInput<'a> {
    /// The marked file.
    pub marked: &'a Path,
    /// An empty scratch directory for the attacked file.
    pub dir: &'a Path,
    /// Image width (0 for audio).
    pub width: u32,
    /// Image height (0 for audio).
    pub height: u32,
    /// A font file external tools may draw text with.
    pub font: &'a Path,
}

type AttackFn = Box<dyn Fn(&AttackInput<'_>) -> Result<PathBuf, String> + Send + Sync>;

/// One row of the spec's attack table.
pub struct Attack {
    /// What is done.
    pub name: String,
    /// The spec's target as written.
    pub target: &'static str,
    /// The target as a fraction (payload fully recovered).
    pub target_rate: f64,
    /// Whether it belongs to the CI subset (`--quick`).
    pub quick: bool,
    run: AttackFn,
}

impl Attack {
    fn new(
        name: impl Into<String>,
        target: &'static str,
        target_rate: f64,
        quick: bool,
        run: impl Fn(&AttackInput<'_>) -> Result<PathBuf, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            target,
            target_rate,
            quick,
            run: Box::new(run),
        }
    }

    /// Makes the attacked file.
    pub fn apply(&self, input: &AttackInput<'_>) -> Result<PathBuf, String> {
        (self.run)(input)
    }
}

/// Runs an external tool; its stderr becomes the error.
fn run_tool(cmd: &str, args: &[String]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e} (install it: bash .ci/install-deps)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// `convert MARKED OPS… -depth 8 DIR/out.EXT`.
fn convert(i: &AttackInput<'_>, ops: &[String], ext: &str) -> Result<PathBuf, String> {
    convert_file(i.marked, i.dir, ops, ext, "out")
}

fn convert_file(
    from: &Path,
    dir: &Path,
    ops: &[String],
    ext: &str,
    stem: &str,
) -> Result<PathBuf, String> {
    let out = dir.join(format!("{stem}.{ext}"));
    let mut args = vec![path_arg(from)];
    args.extend(ops.iter().cloned());
    args.extend(["-depth".into(), "8".into(), path_arg(&out)]);
    run_tool("convert", &args)?;
    Ok(out)
}

fn ops(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn jpeg(q: u32, sampling: &str) -> Vec<String> {
    ops(&["-quality", &q.to_string(), "-sampling-factor", sampling])
}

fn centre_crop(side_percent: f64) -> Vec<String> {
    ops(&[
        "-gravity",
        "center",
        "-crop",
        &format!("{side_percent}%x{side_percent}%+0+0"),
        "+repage",
    ])
}

/// Rotation about the centre on the same canvas, then a centre crop that removes most of the
/// corner wedges.
fn rotate(degrees: f64, keep_percent: f64) -> Vec<String> {
    let mut v = ops(&[
        "-virtual-pixel",
        "black",
        "-distort",
        "SRT",
        &degrees.to_string(),
    ]);
    v.extend(centre_crop(keep_percent));
    v
}

/// The spec's image attack table (ImageMagick 6).
pub fn image_attacks() -> Vec<Attack> {
    let mut a = vec![Attack::new("none", "100 %", 1.0, true, |i| {
        Ok(i.marked.to_path_buf())
    })];
    for (q, target, rate, quick) in [
        (90, "≥ 99 %", 0.99, false),
        (75, "≥ 99 %", 0.99, false),
        (50, "≥ 97 %", 0.97, true),
        (30, "≥ 85 %", 0.85, false),
    ] {
        a.push(Attack::new(
            format!("JPEG q{q} (4:2:0)"),
            target,
            rate,
            quick,
            move |i| convert(i, &jpeg(q, "2x2,1x1,1x1"), "jpg"),
        ));
    }
    a.push(Attack::new(
        "JPEG q75 4:4:4",
        "≥ 99 %",
        0.99,
        false,
        |i| convert(i, &jpeg(75, "1x1,1x1,1x1"), "jpg"),
    ));
    a.push(Attack::new(
        "double JPEG 85 → 70",
        "≥ 99 %",
        0.99,
        false,
        |i| {
            let first = convert_file(i.marked, i.dir, &jpeg(85, "2x2,1x1,1x1"), "jpg", "first")?;
            convert_file(&first, i.dir, &jpeg(70, "2x2,1x1,1x1"), "jpg", "out")
        },
    ));
    a.push(Attack::new("WebP q75", "≥ 99 %", 0.99, false, |i| {
        convert(i, &ops(&["-quality", "75"]), "webp")
    }));
    for (pct, target, rate, quick) in [
        (75, "≥ 97 %", 0.97, false),
        (50, "≥ 97 %", 0.97, true),
        (33, "≥ 80 %", 0.80, false),
        (150, "≥ 97 %", 0.97, false),
        (200, "≥ 97 %", 0.97, false),
    ] {
        let name = if pct > 100 {
            format!("upscale {pct} %")
        } else {
            format!("resize {pct} %")
        };
        a.push(Attack::new(name, target, rate, quick, move |i| {
            convert(i, &ops(&["-resize", &format!("{pct}%")]), "png")
        }));
    }
    a.push(Attack::new(
        "social: ≤ 1080 px + JPEG 85",
        "≥ 97 %",
        0.97,
        false,
        |i| convert(i, &ops(&["-resize", "1080x1080>", "-quality", "85"]), "jpg"),
    ));
    a.push(Attack::new(
        "centre crop 81 % area",
        "≥ 95 %",
        0.95,
        false,
        |i| convert(i, &centre_crop(90.0), "png"),
    ));
    a.push(Attack::new(
        "centre crop 50 % area",
        "≥ 95 %",
        0.95,
        true,
        |i| convert(i, &centre_crop(70.71), "png"),
    ));
    a.push(Attack::new(
        "crop 64 % area at odd offset (37, 53)",
        "≥ 95 %",
        0.95,
        false,
        |i| {
            let (w, h) = (i.width * 4 / 5, i.height * 4 / 5);
            let (x, y) = (37.min(i.width - w), 53.min(i.height - h));
            convert(
                i,
                &ops(&["-crop", &format!("{w}x{h}+{x}+{y}"), "+repage"]),
                "png",
            )
        },
    ));
    a.push(Attack::new(
        "centre crop 64 % area + resize back",
        "≥ 95 %",
        0.95,
        false,
        |i| {
            let mut v = centre_crop(80.0);
            v.extend(ops(&["-resize", &format!("{}x{}!", i.width, i.height)]));
            convert(i, &v, "png")
        },
    ));
    for (deg, keep, target, rate) in [
        (2.0, 92.0, "≥ 95 %", 0.95),
        (-2.0, 92.0, "≥ 95 %", 0.95),
        (5.0, 82.0, "≥ 85 %", 0.85),
        (-5.0, 82.0, "≥ 85 %", 0.85),
    ] {
        a.push(Attack::new(
            format!("rotate {deg:+}° (borders cropped)"),
            target,
            rate,
            false,
            move |i| convert(i, &rotate(deg, keep), "png"),
        ));
    }
    let simple: [(&str, &str, f64, &[&str]); 10] = [
        (
            "brightness +20",
            "≥ 97 %",
            0.97,
            &["-evaluate", "Add", "7.843%"],
        ),
        (
            "contrast +30",
            "≥ 97 %",
            0.97,
            &["-brightness-contrast", "0x30"],
        ),
        ("gamma 1.4", "≥ 97 %", 0.97, &["-gamma", "1.4"]),
        (
            "saturation ×1.5",
            "≥ 97 %",
            0.97,
            &["-modulate", "100,150,100"],
        ),
        ("grayscale", "≥ 97 %", 0.97, &["-colorspace", "Gray"]),
        (
            "gaussian blur σ=1",
            "≥ 95 %",
            0.95,
            &["-gaussian-blur", "0x1"],
        ),
        ("sharpen", "≥ 95 %", 0.95, &["-sharpen", "0x1"]),
        (
            "median 3×3",
            "≥ 95 %",
            0.95,
            &["-statistic", "Median", "3x3"],
        ),
        (
            "gaussian noise",
            "≥ 95 %",
            0.95,
            &["-attenuate", "0.5", "+noise", "Gaussian"],
        ),
        (
            "10 % border",
            "≥ 95 %",
            0.95,
            &["-bordercolor", "white", "-border", "10%"],
        ),
    ];
    for (name, target, rate, list) in simple {
        let list = ops(list);
        a.push(Attack::new(name, target, rate, false, move |i| {
            convert(i, &list, "png")
        }));
    }
    a.push(Attack::new("text overlay", "≥ 95 %", 0.95, false, |i| {
        let size = (i.height.min(i.width) / 8).max(12);
        convert(
            i,
            &ops(&[
                "-font",
                &path_arg(i.font),
                "-pointsize",
                &size.to_string(),
                "-fill",
                "white",
                "-stroke",
                "black",
                "-gravity",
                "center",
                "-annotate",
                "+0+0",
                "AI生成 sample caption\nsecond line of text",
            ]),
            "png",
        )
    }));
    a.push(Attack::new(
        "downscale 50 % + JPEG q50",
        "≥ 90 % (stretch 97 %)",
        0.90,
        false,
        |i| {
            let mut v = ops(&["-resize", "50%"]);
            v.extend(jpeg(50, "2x2,1x1,1x1"));
            convert(i, &v, "jpg")
        },
    ));
    a.push(Attack::new(
        "crop 71 % side + brightness + JPEG 60",
        "≥ 80 %",
        0.80,
        false,
        |i| {
            let mut v = centre_crop(71.0);
            v.extend(ops(&["-evaluate", "Add", "5%"]));
            v.extend(jpeg(60, "2x2,1x1,1x1"));
            convert(i, &v, "jpg")
        },
    ));
    a
}

/// `ffmpeg -i MARKED ARGS… OUT`.
fn ff(input: &Path, out: &Path, args: &[&str]) -> Result<PathBuf, String> {
    let mut a = ops(&["-hide_banner", "-loglevel", "error", "-y", "-i"]);
    a.push(path_arg(input));
    a.extend(ops(args));
    a.push(path_arg(out));
    run_tool("ffmpeg", &a)?;
    Ok(out.to_path_buf())
}

/// Encodes with ffmpeg; codecs the reader lacks (Opus) are decoded back to WAV with ffmpeg.
fn codec(input: &Path, dir: &Path, ext: &str, args: &[&str]) -> Result<PathBuf, String> {
    let enc = ff(input, &dir.join(format!("enc.{ext}")), args)?;
    if ext == "opus" {
        return ff(&enc, &dir.join("dec.wav"), &[]);
    }
    Ok(enc)
}

fn sox(input: &Path, dir: &Path, effect: &[&str]) -> Result<PathBuf, String> {
    let out = dir.join("sox.wav");
    let mut a = ops(&["-q"]);
    a.push(path_arg(input));
    a.push(path_arg(&out));
    a.extend(ops(effect));
    run_tool("sox", &a)?;
    Ok(out)
}

/// White Gaussian noise at `snr_db` below the signal's power (deterministic seed).
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

/// The spec's audio attack table (ffmpeg 5.1 and sox).
pub fn audio_attacks() -> Vec<Attack> {
    let mut a = vec![Attack::new("none", "100 %", 1.0, true, |i| {
        Ok(i.marked.to_path_buf())
    })];
    // (name, target, rate, quick, container, ffmpeg arguments)
    type CodecRow = (
        &'static str,
        &'static str,
        f64,
        bool,
        &'static str,
        &'static [&'static str],
    );
    let codecs: [CodecRow; 13] = [
        (
            "MP3 128k",
            "100 %",
            1.0,
            true,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "128k"],
        ),
        (
            "MP3 64k",
            "100 %",
            1.0,
            false,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "64k"],
        ),
        (
            "MP3 VBR V5",
            "100 %",
            1.0,
            false,
            "mp3",
            &["-c:a", "libmp3lame", "-q:a", "5"],
        ),
        (
            "AAC 128k",
            "100 %",
            1.0,
            false,
            "m4a",
            &["-c:a", "aac", "-b:a", "128k"],
        ),
        (
            "AAC 64k",
            "100 %",
            1.0,
            true,
            "m4a",
            &["-c:a", "aac", "-b:a", "64k"],
        ),
        (
            "Opus 64k",
            "100 %",
            1.0,
            false,
            "opus",
            &["-c:a", "libopus", "-b:a", "64k"],
        ),
        (
            "Opus 32k",
            "100 %",
            1.0,
            false,
            "opus",
            &["-c:a", "libopus", "-b:a", "32k"],
        ),
        (
            "Vorbis 64k",
            "100 %",
            1.0,
            false,
            "ogg",
            &["-c:a", "libvorbis", "-b:a", "64k"],
        ),
        (
            "MP3 48k",
            "≥ 90 %",
            0.9,
            false,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "48k"],
        ),
        (
            "MP3 32k",
            "≥ 90 %",
            0.9,
            false,
            "mp3",
            &["-c:a", "libmp3lame", "-b:a", "32k"],
        ),
        (
            "AAC 48k",
            "≥ 90 %",
            0.9,
            false,
            "m4a",
            &["-c:a", "aac", "-b:a", "48k"],
        ),
        (
            "AAC 32k",
            "≥ 90 %",
            0.9,
            false,
            "m4a",
            &["-c:a", "aac", "-b:a", "32k"],
        ),
        (
            "resample 48k",
            "100 %",
            1.0,
            false,
            "wav",
            &["-ar", "48000"],
        ),
    ];
    for (name, target, rate, quick, ext, args) in codecs {
        a.push(Attack::new(name, target, rate, quick, move |i| {
            codec(i.marked, i.dir, ext, args)
        }));
    }
    a.push(Attack::new(
        "MP3 128k → AAC 96k",
        "100 %",
        1.0,
        false,
        |i| {
            let m = codec(
                i.marked,
                i.dir,
                "mp3",
                &["-c:a", "libmp3lame", "-b:a", "128k"],
            )?;
            ff(
                &m,
                &i.dir.join("tandem.m4a"),
                &["-c:a", "aac", "-b:a", "96k"],
            )
        },
    ));
    let filters: [(&str, &str, f64, &[&str]); 13] = [
        ("resample 22.05k", "100 %", 1.0, &["-ar", "22050"]),
        (
            "resample 16k mono",
            "100 %",
            1.0,
            &["-ar", "16000", "-ac", "1"],
        ),
        ("stereo → mono", "100 %", 1.0, &["-ac", "1"]),
        (
            "channel swap",
            "100 %",
            1.0,
            &["-af", "pan=stereo|c0=c1|c1=c0"],
        ),
        ("gain −10 dB", "≥ 99 %", 0.99, &["-af", "volume=-10dB"]),
        (
            "gain +6 dB + limiter",
            "≥ 99 %",
            0.99,
            &["-af", "volume=6dB,alimiter=limit=0.98"],
        ),
        (
            "loudnorm",
            "≥ 99 %",
            0.99,
            &["-af", "loudnorm", "-ar", "44100"],
        ),
        (
            "compressor",
            "≥ 99 %",
            0.99,
            &["-af", "acompressor=threshold=0.1:ratio=4"],
        ),
        (
            "EQ",
            "≥ 99 %",
            0.99,
            &[
                "-af",
                "equalizer=f=1500:t=q:w=1:g=6,equalizer=f=300:t=q:w=1:g=-6",
            ],
        ),
        ("low-pass 4 kHz", "≥ 99 %", 0.99, &["-af", "lowpass=f=4000"]),
        (
            "high-pass 500 Hz",
            "≥ 99 %",
            0.99,
            &["-af", "highpass=f=500"],
        ),
        ("echo", "≥ 99 %", 0.99, &["-af", "aecho=0.8:0.7:100:0.3"]),
        ("clip 10 s", "≥ 95 %", 0.95, &["-ss", "11.131", "-t", "10"]),
    ];
    for (name, target, rate, args) in filters {
        a.push(Attack::new(name, target, rate, false, move |i| {
            ff(i.marked, &i.dir.join("r.wav"), args)
        }));
    }
    a.push(Attack::new(
        "noise 30 dB SNR",
        "≥ 99 %",
        0.99,
        false,
        |i| add_noise(i.marked, i.dir, 30.0),
    ));
    a.push(Attack::new(
        "noise 20 dB SNR",
        "80 % (stretch)",
        0.8,
        false,
        |i| add_noise(i.marked, i.dir, 20.0),
    ));
    a.push(Attack::new(
        "clip 15 s + MP3 128k",
        "≥ 99 %",
        0.99,
        true,
        |i| {
            let clip = ff(
                i.marked,
                &i.dir.join("c.wav"),
                &["-ss", "7.377", "-t", "15"],
            )?;
            codec(&clip, i.dir, "mp3", &["-c:a", "libmp3lame", "-b:a", "128k"])
        },
    ));
    a.push(Attack::new("clip 5 s", "≥ 90 %", 0.9, false, |i| {
        ff(i.marked, &i.dir.join("c.wav"), &["-ss", "3.71", "-t", "5"])
    }));
    let stretch: [(&str, &str, f64, &[&str]); 4] = [
        ("speed +5 % (sox speed)", "≥ 99 %", 0.99, &["speed", "1.05"]),
        ("speed −5 % (sox speed)", "≥ 99 %", 0.99, &["speed", "0.95"]),
        ("tempo +5 %", "80 % (stretch)", 0.8, &["tempo", "1.05"]),
        ("pitch +50 cents", "80 % (stretch)", 0.8, &["pitch", "50"]),
    ];
    for (name, target, rate, effect) in stretch {
        a.push(Attack::new(name, target, rate, false, move |i| {
            sox(i.marked, i.dir, effect)
        }));
    }
    a
}

/// Why the robustness run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RobustnessError {
    /// A tool the attacks need is missing.
    #[error(
        "{tool} is needed for the {modality} attacks and cannot be run ({detail}); install it with: bash .ci/install-deps"
    )]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// Image or audio.
        modality: &'static str,
        /// The error.
        detail: String,
    },
    /// The scratch directory could not be made.
    #[error("cannot create a scratch directory: {0}")]
    Scratch(std::io::Error),
    /// No file of the modality was found.
    #[error("no {0} file to test (the directory holds none this version can mark)")]
    NoFiles(&'static str),
}

/// Results of one attack over the corpus.
#[derive(Debug, Clone, Serialize)]
pub struct AttackRow {
    /// The attack.
    pub attack: String,
    /// The spec's target as written.
    pub target: String,
    /// The target as a fraction.
    pub target_rate: f64,
    /// Files whose payload came back exactly.
    pub passed: usize,
    /// Files attacked and searched.
    pub tried: usize,
    /// Mean bit error rate before correction, over the files whose payload decoded.
    pub mean_ber: Option<f64>,
    /// Mean presence score.
    pub mean_z: f64,
    /// Files where the mark was present (presence test) without a decoded payload.
    pub present_without_payload: usize,
    /// Mean time of the attack tool, ms.
    pub mean_attack_ms: f64,
    /// Mean detection time (decode included), ms.
    pub mean_detect_ms: f64,
    /// Files that failed (with the attack's error, when it could not be applied).
    pub failed: Vec<String>,
}

impl AttackRow {
    /// Pass rate, 0..1.
    pub fn rate(&self) -> f64 {
        if self.tried == 0 {
            0.0
        } else {
            self.passed as f64 / self.tried as f64
        }
    }

    /// Whether the pass rate meets the spec's target.
    pub fn meets_target(&self) -> bool {
        self.tried > 0 && self.rate() + 1e-9 >= self.target_rate
    }
}

/// One corpus file.
#[derive(Debug, Clone, Serialize)]
pub struct FileRow {
    /// The file name.
    pub file: String,
    /// Images: width × height; audio: seconds.
    pub size: String,
    /// Embedding time (decode and encode included), ms.
    pub embed_ms: f64,
    /// PSNR(Y) of the mark (images) or signal-to-mark ratio (audio), dB.
    pub quality_db: Option<f64>,
    /// Attacks whose payload came back, of those run.
    pub passed: usize,
    /// Why the file was not marked, when it was not.
    pub error: Option<String>,
}

/// The whole measurement.
#[derive(Debug, Clone, Serialize)]
pub struct RobustnessReport {
    /// Image or audio.
    pub modality: Modality,
    /// Whether only the CI subset ran.
    pub quick: bool,
    /// The key's id.
    pub key_id: String,
    /// Relative strength.
    pub strength: f64,
    /// Per file.
    pub files: Vec<FileRow>,
    /// Per attack.
    pub attacks: Vec<AttackRow>,
    /// Detections run on the unmarked originals (under the key and any extra keys).
    pub unmarked_runs: usize,
    /// False detections among them.
    pub unmarked_false: usize,
    /// Largest z on unmarked originals.
    pub unmarked_max_z: f64,
    /// Detections run on marked files under a different (random) key.
    pub wrong_key_runs: usize,
    /// False detections among them.
    pub wrong_key_false: usize,
    /// Seconds of audio marked (audio only).
    pub audio_seconds: f64,
    /// Whether the run was interrupted (the table covers the files done).
    pub interrupted: bool,
}

/// How to run.
pub struct RobustnessOptions<'a> {
    /// Image or audio.
    pub modality: Modality,
    /// Only the CI subset.
    pub quick: bool,
    /// The key to mark and detect with.
    pub key: &'a NamedKey,
    /// Relative strength (1.0 = default).
    pub strength: f64,
    /// Further keys (derived from the key) each unmarked original is searched under, for a
    /// larger false-positive count.
    pub extra_fp_keys: usize,
}

fn check_tools(modality: Modality) -> Result<(), RobustnessError> {
    let tools: &[(&'static str, &[&str])] = match modality {
        Modality::Image => &[("convert", &["-version"])],
        Modality::Audio => &[("ffmpeg", &["-version"]), ("sox", &["--version"])],
    };
    for (tool, args) in tools {
        let ok = Command::new(tool)
            .args(*args)
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(format!("exit {}", o.status))
                }
            });
        if let Err(detail) = ok {
            return Err(RobustnessError::MissingTool {
                tool,
                modality: modality.word(),
                detail,
            });
        }
    }
    Ok(())
}

/// The marked file of one corpus entry.
struct Marked {
    path: PathBuf,
    width: u32,
    height: u32,
    quality_db: Option<f64>,
    seconds: f64,
    size: String,
}

fn mark_one(
    file: &Path,
    work: &Path,
    payload: Payload,
    options: &RobustnessOptions<'_>,
) -> Result<Marked, String> {
    match options.modality {
        Modality::Image => {
            let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
            let format = sniff(&bytes).ok_or("unrecognised format")?;
            let embed = image_options(options.strength)?;
            let (mut width, mut height, mut psnr) = (0u32, 0u32, None);
            let mut failure = None;
            let mut step = |f: FrameEdit<'_>| {
                if f.index == 0 {
                    (width, height) = (f.width, f.height);
                    match mark_frame(f, payload, &options.key.key, &embed) {
                        Ok(p) => psnr = Some(p),
                        Err(e) => failure = Some(e.to_string()),
                    }
                }
                Ok(())
            };
            let edited =
                edit_image(&bytes, format, None, Some(&mut step)).map_err(|e| e.to_string())?;
            if let Some(f) = failure {
                return Err(f);
            }
            let path = work.join(format!("marked.{}", format.extension()));
            std::fs::write(&path, &edited.bytes).map_err(|e| e.to_string())?;
            Ok(Marked {
                path,
                width,
                height,
                quality_db: psnr,
                seconds: 0.0,
                size: format!("{width}×{height}"),
            })
        }
        Modality::Audio => {
            let strength = crate::watermark::audio_strength(options.strength)?;
            let path = work.join("marked.wav");
            let r =
                aigc_watermark::audio::embed_file(file, &path, payload, &options.key.key, strength)
                    .map_err(|e| e.to_string())?;
            Ok(Marked {
                path,
                width: 0,
                height: 0,
                quality_db: Some(r.snr_db).filter(|v| v.is_finite()),
                seconds: r.seconds,
                size: format!("{:.1} s", r.seconds),
            })
        }
    }
}

/// One blind detection: (payload, bit error rate when decoded, z, present).
struct Found {
    payload: Option<Payload>,
    ber: Option<f64>,
    z: f64,
    present: bool,
}

fn detect(path: &Path, modality: Modality, key: &WatermarkKey) -> Result<Found, String> {
    match modality {
        Modality::Image => {
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            let d = detect_image_bytes(&bytes, key)?;
            Ok(Found {
                payload: d.payload,
                ber: d
                    .payload
                    .map(|_| d.bit_errors as f64 / aigc_watermark::CODED_BITS as f64),
                z: d.z,
                present: d.present || d.payload.is_some(),
            })
        }
        Modality::Audio => {
            let d = aigc_watermark::audio::detect_file(path, key).map_err(|e| e.to_string())?;
            Ok(Found {
                payload: d.payload,
                ber: d
                    .payload
                    .and(d.bit_errors)
                    .map(|b| b as f64 / d.chips.max(1) as f64),
                z: d.z,
                present: d.present || d.payload.is_some(),
            })
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Files under `dir` (recursive, sorted, hidden ones skipped) whose content is of `modality`.
pub fn corpus_files(dir: &Path, modality: Modality) -> std::io::Result<Vec<PathBuf>> {
    let mut stack = vec![dir.to_path_buf()];
    let mut out = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if file_name(&path).starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if Modality::of_file(&path) == Some(modality) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Embeds every file, applies every attack, detects blind and counts false detections on the
/// unmarked originals (under the key) and on the marked files (under a random other key).
/// `progress` gets one line per file; setting `stop` ends the run after the current file.
pub fn run_robustness(
    files: &[PathBuf],
    options: &RobustnessOptions<'_>,
    progress: &mut dyn FnMut(&str),
    stop: &AtomicBool,
) -> Result<RobustnessReport, RobustnessError> {
    if files.is_empty() {
        return Err(RobustnessError::NoFiles(options.modality.word()));
    }
    check_tools(options.modality)?;
    let work = tempfile::tempdir().map_err(RobustnessError::Scratch)?;
    let font = work.path().join("font.otf");
    std::fs::write(&font, aigc_explicit::font::font_file_bytes())
        .map_err(RobustnessError::Scratch)?;
    let attacks: Vec<Attack> = match options.modality {
        Modality::Image => image_attacks(),
        Modality::Audio => audio_attacks(),
    }
    .into_iter()
    .filter(|a| a.quick || !options.quick)
    .collect();
    let wrong_key = WatermarkKey::from_bytes(options.key.key.derive("aigc-mark/robustness/wrong"));
    let mut rows: Vec<AttackRow> = attacks
        .iter()
        .map(|a| AttackRow {
            attack: a.name.clone(),
            target: a.target.to_string(),
            target_rate: a.target_rate,
            passed: 0,
            tried: 0,
            mean_ber: None,
            mean_z: 0.0,
            present_without_payload: 0,
            mean_attack_ms: 0.0,
            mean_detect_ms: 0.0,
            failed: Vec::new(),
        })
        .collect();
    // Sums for the means: (ber sum, ber count, z sum, attack ms, detect ms).
    let mut sums = vec![(0.0f64, 0usize, 0.0f64, 0.0f64, 0.0f64); attacks.len()];
    let mut report = RobustnessReport {
        modality: options.modality,
        quick: options.quick,
        key_id: options.key.key_id.clone(),
        strength: options.strength,
        files: Vec::new(),
        attacks: Vec::new(),
        unmarked_runs: 0,
        unmarked_false: 0,
        unmarked_max_z: f64::NEG_INFINITY,
        wrong_key_runs: 0,
        wrong_key_false: 0,
        audio_seconds: 0.0,
        interrupted: false,
    };
    let total = files.len();
    for (n, file) in files.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        let name = file_name(file);
        let payload = Payload(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(n as u64 + 1));
        let t = Instant::now();
        let marked = match mark_one(file, work.path(), payload, options) {
            Ok(m) => m,
            Err(e) => {
                progress(&format!("[{}/{total}] {name}: not marked: {e}", n + 1));
                report.files.push(FileRow {
                    file: name,
                    size: String::new(),
                    embed_ms: 0.0,
                    quality_db: None,
                    passed: 0,
                    error: Some(e),
                });
                continue;
            }
        };
        let embed_ms = t.elapsed().as_secs_f64() * 1e3;
        report.audio_seconds += marked.seconds;
        let mut passed = 0usize;
        for ((attack, row), sum) in attacks.iter().zip(rows.iter_mut()).zip(sums.iter_mut()) {
            let dir = work.path().join("attack");
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                row.failed.push(format!("{name} (scratch: {e})"));
                continue;
            }
            let input = AttackInput {
                marked: &marked.path,
                dir: &dir,
                width: marked.width,
                height: marked.height,
                font: &font,
            };
            let t = Instant::now();
            let attacked = match attack.apply(&input) {
                Ok(p) => p,
                Err(e) => {
                    row.failed.push(format!("{name} (attack failed: {e})"));
                    continue;
                }
            };
            sum.3 += t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let found = detect(&attacked, options.modality, &options.key.key);
            sum.4 += t.elapsed().as_secs_f64() * 1e3;
            row.tried += 1;
            match found {
                Ok(f) => {
                    if f.payload == Some(payload) {
                        row.passed += 1;
                        passed += 1;
                    } else {
                        row.failed.push(name.clone());
                        if f.present {
                            row.present_without_payload += 1;
                        }
                    }
                    if let Some(b) = f.ber {
                        sum.0 += b;
                        sum.1 += 1;
                    }
                    sum.2 += f.z;
                }
                Err(e) => row.failed.push(format!("{name} (detection failed: {e})")),
            }
        }
        // False positives: the unmarked original under the key, the marked file under another.
        let fp_keys =
            std::iter::once(options.key.key.clone()).chain((0..options.extra_fp_keys).map(|k| {
                WatermarkKey::from_bytes(
                    options
                        .key
                        .key
                        .derive(&format!("aigc-mark/robustness/fp/{k}")),
                )
            }));
        for key in fp_keys {
            if let Ok(f) = detect(file, options.modality, &key) {
                report.unmarked_runs += 1;
                report.unmarked_false += usize::from(f.present);
                report.unmarked_max_z = report.unmarked_max_z.max(f.z);
            }
        }
        if let Ok(f) = detect(&marked.path, options.modality, &wrong_key) {
            report.wrong_key_runs += 1;
            report.wrong_key_false += usize::from(f.present);
        }
        progress(&format!(
            "[{}/{total}] {name} ({}): {} {}, {passed}/{} attacks recovered the payload",
            n + 1,
            marked.size,
            match options.modality {
                Modality::Image => "PSNR(Y)",
                Modality::Audio => "SNR",
            },
            marked
                .quality_db
                .map_or("-".into(), |q| format!("{q:.1} dB")),
            attacks.len()
        ));
        report.files.push(FileRow {
            file: name,
            size: marked.size,
            embed_ms,
            quality_db: marked.quality_db,
            passed,
            error: None,
        });
    }
    for (row, sum) in rows.iter_mut().zip(&sums) {
        // Attacks that ran are exactly those searched.
        let runs = row.tried.max(1);
        row.mean_ber = (sum.1 > 0).then(|| sum.0 / sum.1 as f64);
        row.mean_z = if row.tried > 0 {
            sum.2 / row.tried as f64
        } else {
            0.0
        };
        row.mean_attack_ms = sum.3 / runs as f64;
        row.mean_detect_ms = if row.tried > 0 {
            sum.4 / row.tried as f64
        } else {
            0.0
        };
    }
    report.attacks = rows;
    Ok(report)
}

fn stats(values: impl Iterator<Item = f64>) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    Some((*v.first()?, v[v.len() / 2], *v.last()?))
}

impl RobustnessReport {
    /// The report as Markdown: the attack table, then imperceptibility, speed and false positives.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let marked: Vec<&FileRow> = self.files.iter().filter(|f| f.error.is_none()).collect();
        let _ = writeln!(
            s,
            "# {} watermark robustness{}\n",
            match self.modality {
                Modality::Image => "Image",
                Modality::Audio => "Audio",
            },
            if self.quick {
                " (quick: CI subset)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "{} files marked of {} (key {}, strength {}){}. Pass = the exact 64-bit payload recovered blind.\n",
            marked.len(),
            self.files.len(),
            self.key_id,
            self.strength,
            if self.interrupted {
                "; **interrupted**: the table covers the files done"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "| attack | target | passed | rate | meets | BER before correction | mean z | attack ms | detect ms | failed files |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for r in &self.attacks {
            let shown: Vec<&str> = r.failed.iter().take(5).map(String::as_str).collect();
            let more = if r.failed.len() > 5 {
                format!(" +{} more", r.failed.len() - 5)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {}/{} | {:.1} % | {} | {} | {:.1} | {:.0} | {:.0} | {}{} |",
                r.attack,
                r.target,
                r.passed,
                r.tried,
                100.0 * r.rate(),
                if r.meets_target() { "yes" } else { "**no**" },
                r.mean_ber.map_or("-".into(), |b| format!("{:.3}", b)),
                r.mean_z,
                r.mean_attack_ms,
                r.mean_detect_ms,
                shown.join(", "),
                more
            );
        }
        let met = self.attacks.iter().filter(|r| r.meets_target()).count();
        let _ = writeln!(
            s,
            "\n{met} of {} attacks meet their target. BER is over the files whose payload decoded.",
            self.attacks.len()
        );
        // Presence without a payload is the audio detector's short-excerpt mode (5 s clips):
        // not a pass, but reported so the table shows what such excerpts still give.
        let presence_only: Vec<String> = self
            .attacks
            .iter()
            .filter(|r| r.present_without_payload > 0)
            .map(|r| format!("{} {}/{}", r.attack, r.present_without_payload, r.tried))
            .collect();
        if !presence_only.is_empty() {
            let _ = writeln!(
                s,
                "Mark found without its payload (presence test only; the audio short-excerpt mode): {}.",
                presence_only.join(", ")
            );
        }
        let what = match self.modality {
            Modality::Image => "PSNR(Y)",
            Modality::Audio => "SNR",
        };
        if let Some((lo, mid, hi)) = stats(marked.iter().filter_map(|f| f.quality_db)) {
            let _ = writeln!(
                s,
                "{what} of the mark: min {lo:.1} dB, median {mid:.1} dB, max {hi:.1} dB."
            );
        }
        if let Some((lo, mid, hi)) = stats(marked.iter().map(|f| f.embed_ms)) {
            let _ = write!(
                s,
                "Embed time per file (decode + mark + encode, one process): min {lo:.0} ms, median {mid:.0} ms, max {hi:.0} ms"
            );
            if self.modality == Modality::Audio && self.audio_seconds > 0.0 {
                let total: f64 = marked.iter().map(|f| f.embed_ms).sum::<f64>() / 1e3;
                let _ = write!(
                    s,
                    " ({:.0}× real time)",
                    self.audio_seconds / total.max(1e-9)
                );
            }
            let _ = writeln!(s, ".");
        }
        let _ = writeln!(
            s,
            "False positives: {} of {} detections on unmarked originals (max z {:.2}); {} of {} marked files detected under a wrong key.",
            self.unmarked_false,
            self.unmarked_runs,
            if self.unmarked_max_z.is_finite() {
                self.unmarked_max_z
            } else {
                0.0
            },
            self.wrong_key_false,
            self.wrong_key_runs
        );
        let failed: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.file)))
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(s, "\nNot marked: {}", failed.join("; "));
        }
        s
    }
}
