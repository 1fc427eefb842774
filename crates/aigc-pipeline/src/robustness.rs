//! The robustness measurement behind `aigc-mark robustness` (and the audio bench): the spec's
//! attack tables run with the real binaries (ImageMagick 6 `convert` for images, ffmpeg and
//! sox for audio), the runner (embed → attack → blind detect) and its report.

use crate::watermark::{Modality, detect_image_bytes, image_options, mark_frame};
use aigc_core::sniff;
use aigc_explicit::image_file::{FrameEdit, edit_image};
use aigc_media::audio::{AudioReader, WavFormat, WavWriter};
use aigc_watermark::{KeyedRng, NamedKey, Payload, WatermarkKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// What an attack gets: the marked file, a scratch directory, and the marked image's size.
pub struct AttackInput<'a> {
    /// The marked file.
    pub marked: &'a Path,
    /// The unmarked original it was made from.
    pub original: &'a Path,
    /// An empty scratch directory for the attacked file.
    pub dir: &'a Path,
    /// Image width (0 for audio).
    pub width: u32,
    /// Image height (0 for audio).
    pub height: u32,
    /// Audio duration in seconds (0 for images).
    pub seconds: f64,
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
    /// For a splice: where the marked part lies in the attacked file (start, end seconds) as a
    /// function of the marked file's duration; a pass must also locate it there.
    pub expected_span: Option<fn(f64) -> (f64, f64)>,
    /// For an excerpt (a clip, the marked part of a splice): which part of the marked file the
    /// attacked file keeps (start, length in seconds) as a function of its duration.
    pub excerpt: Option<fn(f64) -> (f64, f64)>,
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
            expected_span: None,
            excerpt: None,
            run: Box::new(run),
        }
    }

    /// The same attack, passing only when the mark is also located at `span(duration)`.
    fn located(mut self, span: fn(f64) -> (f64, f64)) -> Self {
        self.expected_span = Some(span);
        self
    }

    /// The same attack on an excerpt of the marked file: `part(duration)` is (start, length).
    fn excerpt(mut self, part: fn(f64) -> (f64, f64)) -> Self {
        self.excerpt = Some(part);
        self
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
        // ImageMagick's brightness 20 % (+51 levels), the same operator as the contrast row.
        (
            "brightness +20",
            "≥ 97 %",
            0.97,
            &["-brightness-contrast", "20x0"],
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

/// Seconds of a splice for a file of `seconds`: unmarked audio before (from the original's
/// start), the marked part's offset in the marked file, and its length (20 s when there is
/// enough); the same length of unmarked audio follows (the original's end).
fn splice_plan(seconds: f64) -> (f64, f64, f64) {
    let marked_len = seconds.min(20.0);
    let offset = (seconds - marked_len).clamp(0.0, 5.0);
    (seconds.min(15.0), offset, marked_len)
}

/// 20 s of the marked file between 15 s of the unmarked original on each side (the original's
/// first and last 15 s), as 16-bit WAV.
fn splice(i: &AttackInput<'_>) -> Result<PathBuf, String> {
    let (before, offset, marked_len) = splice_plan(i.seconds);
    let after_from = (i.seconds - before).max(0.0);
    let graph = format!(
        "[0:a]atrim=0:{before:.6},asetpts=N/SR/TB,aformat=sample_fmts=flt[a];\
         [1:a]atrim={offset:.6}:{:.6},asetpts=N/SR/TB,aformat=sample_fmts=flt[b];\
         [0:a]atrim={after_from:.6},asetpts=N/SR/TB,aformat=sample_fmts=flt[c];\
         [a][b][c]concat=n=3:v=0:a=1[o]",
        offset + marked_len
    );
    let out = i.dir.join("spliced.wav");
    let mut args = ops(&["-hide_banner", "-loglevel", "error", "-y", "-i"]);
    args.push(path_arg(i.original));
    args.push("-i".into());
    args.push(path_arg(i.marked));
    args.extend(ops(&[
        "-filter_complex",
        &graph,
        "-map",
        "[o]",
        "-c:a",
        "pcm_s16le",
    ]));
    args.push(path_arg(&out));
    run_tool("ffmpeg", &args)?;
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
    let filters: [(&str, &str, f64, &[&str]); 12] = [
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
    ];
    for (name, target, rate, args) in filters {
        a.push(Attack::new(name, target, rate, false, move |i| {
            ff(i.marked, &i.dir.join("r.wav"), args)
        }));
    }
    a.push(
        Attack::new("clip 10 s", "≥ 95 %", 0.95, false, |i| {
            ff(
                i.marked,
                &i.dir.join("r.wav"),
                &["-ss", "11.131", "-t", "10"],
            )
        })
        .excerpt(|_| (11.131, 10.0)),
    );
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
    a.push(
        Attack::new("clip 15 s + MP3 128k", "≥ 99 %", 0.99, true, |i| {
            let clip = ff(
                i.marked,
                &i.dir.join("c.wav"),
                &["-ss", "7.377", "-t", "15"],
            )?;
            codec(&clip, i.dir, "mp3", &["-c:a", "libmp3lame", "-b:a", "128k"])
        })
        .excerpt(|_| (7.377, 15.0)),
    );
    a.push(
        Attack::new("clip 5 s", "≥ 90 %", 0.9, false, |i| {
            ff(i.marked, &i.dir.join("c.wav"), &["-ss", "3.71", "-t", "5"])
        })
        .excerpt(|_| (3.71, 5.0)),
    );
    a.push(
        Attack::new(
            "marked 20 s spliced into unmarked audio",
            "detected, located",
            1.0,
            false,
            splice,
        )
        .located(|seconds| {
            let (before, _, marked_len) = splice_plan(seconds);
            (before, before + marked_len)
        })
        .excerpt(|seconds| {
            let (_, offset, marked_len) = splice_plan(seconds);
            (offset, marked_len)
        }),
    );
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
    /// No attack matched `--attacks`.
    #[error("no attack matches \"{asked}\"; the attacks are: {names}")]
    NoAttacks {
        /// What was asked for.
        asked: String,
        /// Every attack's name.
        names: String,
    },
    /// The journal belongs to another run (other files, settings or build).
    #[error(
        "{}: this journal belongs to another robustness run (other files, settings or program build); delete it, or start over with --fresh",
        .0.display()
    )]
    OtherRun(PathBuf),
    /// The journal cannot be read or written.
    #[error("journal {0}")]
    Journal(#[from] aigc_core::jsonl::JsonlError),
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
    /// Files left out: their excerpt was mostly below the audio embedder's gate.
    pub not_applicable: Vec<String>,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Files measured at a time (timings are per process, so they rise with this).
    pub jobs: usize,
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
    /// Only the attacks whose name contains one of these (case-insensitive); empty: all.
    pub only: Vec<String>,
    /// Files measured at a time.
    pub jobs: usize,
    /// Where finished files are recorded, so an interrupted run resumes (`None`: not recorded).
    pub journal: Option<&'a Path>,
    /// Names the program build, so a journal is only resumed by the build that wrote it.
    pub build: String,
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
    /// Audio: which frames of the original the embedder marked (the rest were below its gate).
    frames: Option<MarkedFrames>,
}

/// The frames the audio embedder marked, for judging what an excerpt can hold.
struct MarkedFrames {
    /// One flag per frame: marked (at or above the embedder's gate).
    flags: Vec<bool>,
    /// Frame length, seconds.
    frame_s: f64,
}

impl MarkedFrames {
    /// Reads `original` and flags its frames as the embedder does.
    fn of(original: &Path) -> Result<Self, String> {
        let mut r = AudioReader::open(original).map_err(|e| e.to_string())?;
        let info = r.info().clone();
        let mut gate = aigc_watermark::audio::FrameGate::new(info.sample_rate, info.channels);
        while let Some(b) = r.next_block().map_err(|e| e.to_string())? {
            gate.push(b);
        }
        Ok(Self {
            flags: gate.flags().to_vec(),
            frame_s: aigc_watermark::audio::frame_hop(info.sample_rate, 1.0)
                / f64::from(info.sample_rate.max(1)),
        })
    }

    /// Within `start .. start + len` seconds: the marked seconds, and the span (seconds from
    /// `start`) from the first marked frame's start to the last one's end. Only frames wholly
    /// inside the excerpt count: a marked frame that straddles its edge may hold its sound only
    /// outside (music that stops a few milliseconds after the frame starts, then silence), and
    /// would then make the silence after it part of the expected span. At most one frame
    /// (23 ms) is lost at each end.
    fn within(&self, start: f64, len: f64) -> (f64, Option<(f64, f64)>) {
        let mut marked = 0.0;
        let mut span: Option<(f64, f64)> = None;
        // A frame boundary that falls on an excerpt edge up to rounding is inside.
        let slack = 1e-9 * self.frame_s.max(1.0);
        for (j, _) in self.flags.iter().enumerate().filter(|(_, f)| **f) {
            let (a, b) = (j as f64 * self.frame_s, (j + 1) as f64 * self.frame_s);
            if a + slack < start || b > start + len + slack {
                continue;
            }
            marked += b - a;
            let (a, b) = ((a - start).max(0.0), (b - start).min(len));
            span = Some(span.map_or((a, b), |(s, _)| (s, b)));
        }
        (marked, span)
    }
}

/// An excerpt with less than this share of its length marked is left out of its row: the
/// embedder leaves audio below its gate (−60 dBFS) unmarked, so such an excerpt holds too
/// little of the mark to be a test of it.
const MIN_MARKED_SHARE: f64 = 0.5;

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
                frames: None,
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
                frames: Some(MarkedFrames::of(file)?),
            })
        }
    }
}

/// One blind detection: (payload, bit error rate when decoded, z, present, located span).
struct Found {
    payload: Option<Payload>,
    ber: Option<f64>,
    z: f64,
    present: bool,
    span: Option<(f64, f64)>,
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
                span: None,
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
                span: d.span.map(|s| (s.start_seconds, s.end_seconds)),
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

/// What one attack on one file gave; a line of the journal holds these for a whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AttackOutcome {
    /// The attacked file was made and searched.
    tried: bool,
    /// The exact payload came back (and, for a splice, at the right place).
    passed: bool,
    /// The presence test fired without a passing payload.
    present_only: bool,
    /// Bit error rate before correction, when decoded.
    ber: Option<f64>,
    /// The presence score, when detection ran.
    z: Option<f64>,
    /// Time of the attack tool, ms.
    attack_ms: f64,
    /// Time of the detection, ms.
    detect_ms: f64,
    /// How it failed, for the table's failed-files column.
    failure: Option<String>,
    /// The excerpt was mostly below the embedder's gate (see [`MIN_MARKED_SHARE`]): not tried,
    /// not counted.
    #[serde(default)]
    not_applicable: bool,
}

/// Everything one corpus file gave: the unit of work, of parallelism and of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileOutcome {
    /// Position in the corpus list.
    index: usize,
    /// The file's row of the report.
    row: FileRow,
    /// Seconds of audio marked.
    seconds: f64,
    /// One per attack, in table order (empty when the file could not be marked).
    attacks: Vec<AttackOutcome>,
    /// Detections on the unmarked original.
    unmarked_runs: usize,
    /// False detections among them.
    unmarked_false: usize,
    /// Largest z among them.
    unmarked_max_z: Option<f64>,
    /// Detections of the marked file under a wrong key.
    wrong_key_runs: usize,
    /// False detections among them.
    wrong_key_false: usize,
}

/// A line of the journal: the run it belongs to, then one line per finished file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JournalLine {
    Run { run_id: String },
    File(Box<FileOutcome>),
}

/// The attacks a run applies: the modality's table, the CI subset with `quick`, and only those
/// whose name contains one of `only` (case-insensitive) when it is not empty.
pub fn selected_attacks(options: &RobustnessOptions<'_>) -> Result<Vec<Attack>, RobustnessError> {
    let table = match options.modality {
        Modality::Image => image_attacks(),
        Modality::Audio => audio_attacks(),
    };
    let names: Vec<String> = table.iter().map(|a| a.name.clone()).collect();
    let needles: Vec<String> = options.only.iter().map(|n| n.to_lowercase()).collect();
    let chosen: Vec<Attack> = table
        .into_iter()
        .filter(|a| a.quick || !options.quick)
        .filter(|a| {
            let name = a.name.to_lowercase();
            needles.is_empty() || needles.iter().any(|n| name.contains(n.as_str()))
        })
        .collect();
    if chosen.is_empty() {
        return Err(RobustnessError::NoAttacks {
            asked: options.only.join(", "),
            names: names.join("; "),
        });
    }
    Ok(chosen)
}

/// Identifies a run for resuming: everything that changes its results. Files are named by path,
/// size and modification time; `options.build` names the program build.
pub fn run_id(files: &[PathBuf], options: &RobustnessOptions<'_>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let attacks = selected_attacks(options).unwrap_or_default();
    let mut text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        options.modality.word(),
        options.quick,
        options.key.key_id,
        options.strength,
        options.extra_fp_keys,
        options.build
    );
    for a in &attacks {
        text.push_str(&a.name);
        text.push('\n');
    }
    for f in files {
        let meta = std::fs::metadata(f).ok();
        let mtime = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        text.push_str(&format!(
            "{}\t{}\t{mtime}\n",
            f.display(),
            meta.map_or(0, |m| m.len())
        ));
    }
    h.update(text.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// The finished files an existing journal holds for this run.
fn read_journal(path: &Path, run: &str) -> Result<Vec<FileOutcome>, RobustnessError> {
    let Some(lines) = aigc_core::jsonl::read_records::<JournalLine>(path)? else {
        return Ok(Vec::new());
    };
    let mut lines = lines.into_iter();
    match lines.next() {
        None => Ok(Vec::new()),
        Some(JournalLine::Run { run_id }) if run_id == run => Ok(lines
            .filter_map(|l| match l {
                JournalLine::File(f) => Some(*f),
                JournalLine::Run { .. } => None,
            })
            .collect()),
        Some(_) => Err(RobustnessError::OtherRun(path.to_path_buf())),
    }
}

/// Embeds every file, applies every attack, detects blind and counts false detections on the
/// unmarked originals (under the key) and on the marked files (under a random other key).
/// Files run `options.jobs` at a time; each finished file goes to the journal at once, so a run
/// that is stopped (setting `stop` ends it after the files in hand) or killed resumes from the
/// journal. The journal is removed when the run completes. `progress` gets one line per file.
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
    let attacks = selected_attacks(options)?;
    let run = run_id(files, options);
    let mut outcomes: Vec<FileOutcome> = match options.journal {
        Some(path) => read_journal(path, &run)?
            .into_iter()
            .filter(|o| o.index < files.len() && o.attacks.len() <= attacks.len())
            .collect(),
        None => Vec::new(),
    };
    outcomes.sort_by_key(|o| o.index);
    outcomes.dedup_by_key(|o| o.index);
    let journal = match options.journal {
        Some(path) => {
            let appender = aigc_core::jsonl::RecordAppender::open(path)?;
            if outcomes.is_empty() {
                // A fresh journal (or one of another run, which `read_journal` refused unless
                // it was empty): start it with this run's id.
                std::fs::write(path, b"").map_err(|source| {
                    RobustnessError::Journal(aigc_core::jsonl::JsonlError::Io {
                        path: path.to_path_buf(),
                        source,
                    })
                })?;
                appender.append(&JournalLine::Run {
                    run_id: run.clone(),
                })?;
            }
            Some(appender)
        }
        None => None,
    };
    let total = files.len();
    if !outcomes.is_empty() {
        progress(&format!(
            "resuming: {} of {total} files already done (journal {})",
            outcomes.len(),
            options
                .journal
                .map_or(String::new(), |p| p.display().to_string())
        ));
    }
    let done: std::collections::HashSet<usize> = outcomes.iter().map(|o| o.index).collect();
    let todo: Vec<usize> = (0..total).filter(|i| !done.contains(i)).collect();
    let wrong_key = WatermarkKey::from_bytes(options.key.key.derive("aigc-mark/robustness/wrong"));
    let next = AtomicUsize::new(0);
    let (sender, receiver) = std::sync::mpsc::channel::<FileOutcome>();
    let mut journal_error = None;
    std::thread::scope(|s| {
        for _ in 0..options.jobs.clamp(1, 64).min(todo.len().max(1)) {
            let sender = sender.clone();
            let (next, todo, attacks, wrong_key, work, font) = (
                &next,
                &todo,
                &attacks,
                &wrong_key,
                work.path(),
                font.as_path(),
            );
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(&n) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let scratch = work.join(format!("file-{n}"));
                    let outcome =
                        run_file(n, &files[n], &scratch, font, attacks, wrong_key, options);
                    let _ = std::fs::remove_dir_all(&scratch);
                    if sender.send(outcome).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let (started, resumed) = (Instant::now(), outcomes.len());
        for outcome in receiver {
            if let Some(j) = &journal
                && journal_error.is_none()
                && let Err(e) = j.append(&JournalLine::File(Box::new(outcome.clone())))
            {
                // Keep measuring; the error is reported when the run ends.
                journal_error = Some(e);
            }
            outcomes.push(outcome);
            let done = outcomes.len();
            // Files finish in any order with several jobs: the estimate is the mean time per
            // file finished in this run, times the files left, over the jobs.
            let per_file = started.elapsed().as_secs_f64() / (done - resumed) as f64;
            let left = per_file * (total - done) as f64;
            if let Some(o) = outcomes.last() {
                progress(&format!(
                    "[{done}/{total}] {}{}",
                    progress_line(o, options.modality, attacks.len()),
                    if done < total {
                        format!(" (about {} left)", human_duration(left))
                    } else {
                        String::new()
                    }
                ));
            }
        }
    });
    if let Some(e) = journal_error {
        return Err(e.into());
    }
    outcomes.sort_by_key(|o| o.index);
    let interrupted = outcomes.len() < total;
    if !interrupted && let Some(path) = options.journal {
        let _ = std::fs::remove_file(path);
    }
    Ok(assemble_report(&attacks, outcomes, options, interrupted))
}

/// "12 s", "7 min", "1 h 05 min".
fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..90 => format!("{s} s"),
        90..5400 => format!("{} min", (s + 30) / 60),
        _ => {
            let minutes = (s + 30) / 60;
            format!("{} h {:02} min", minutes / 60, minutes % 60)
        }
    }
}

fn progress_line(o: &FileOutcome, modality: Modality, attacks: usize) -> String {
    let head = o.row.file.clone();
    if let Some(e) = &o.row.error {
        return format!("{head}: not marked: {e}");
    }
    format!(
        "{head} ({}): {} {}, {}/{attacks} attacks recovered the payload",
        o.row.size,
        match modality {
            Modality::Image => "PSNR(Y)",
            Modality::Audio => "SNR",
        },
        o.row
            .quality_db
            .map_or("-".into(), |q| format!("{q:.1} dB")),
        o.row.passed,
    )
}

/// Marks one file, runs every attack on it and the false-positive detections.
fn run_file(
    n: usize,
    file: &Path,
    scratch: &Path,
    font: &Path,
    attacks: &[Attack],
    wrong_key: &WatermarkKey,
    options: &RobustnessOptions<'_>,
) -> FileOutcome {
    let name = file_name(file);
    let payload = Payload(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(n as u64 + 1));
    let mut outcome = FileOutcome {
        index: n,
        row: FileRow {
            file: name.clone(),
            size: String::new(),
            embed_ms: 0.0,
            quality_db: None,
            passed: 0,
            error: None,
        },
        seconds: 0.0,
        attacks: Vec::new(),
        unmarked_runs: 0,
        unmarked_false: 0,
        unmarked_max_z: None,
        wrong_key_runs: 0,
        wrong_key_false: 0,
    };
    let t = Instant::now();
    let marked = match std::fs::create_dir_all(scratch)
        .map_err(|e| format!("scratch: {e}"))
        .and_then(|()| mark_one(file, scratch, payload, options))
    {
        Ok(m) => m,
        Err(e) => {
            outcome.row.error = Some(e);
            return outcome;
        }
    };
    outcome.row.embed_ms = t.elapsed().as_secs_f64() * 1e3;
    outcome.row.size = marked.size.clone();
    outcome.row.quality_db = marked.quality_db;
    outcome.seconds = marked.seconds;
    let dir = scratch.join("attack");
    for attack in attacks {
        let mut a = AttackOutcome {
            tried: false,
            passed: false,
            present_only: false,
            ber: None,
            z: None,
            attack_ms: 0.0,
            detect_ms: 0.0,
            failure: None,
            not_applicable: false,
        };
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            a.failure = Some(format!("{name} (scratch: {e})"));
            outcome.attacks.push(a);
            continue;
        }
        // What of the excerpt was marked, and where within it (the splice's expected span
        // starts and ends with the marked audio: silence at its ends is the same in the
        // unmarked original, so no detector could place the boundary there).
        let excerpt = attack
            .excerpt
            .zip(marked.frames.as_ref())
            .map(|(part, frames)| {
                let (start, len) = part(marked.seconds);
                (len, frames.within(start, len))
            });
        if let Some((len, (marked_s, _))) = excerpt
            && marked_s < MIN_MARKED_SHARE * len
        {
            a.not_applicable = true;
            outcome.attacks.push(a);
            continue;
        }
        let input = AttackInput {
            marked: &marked.path,
            original: file,
            dir: &dir,
            width: marked.width,
            height: marked.height,
            seconds: marked.seconds,
            font,
        };
        let t = Instant::now();
        let attacked = match attack.apply(&input) {
            Ok(p) => p,
            Err(e) => {
                a.failure = Some(format!("{name} (attack failed: {e})"));
                outcome.attacks.push(a);
                continue;
            }
        };
        a.attack_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let found = detect(&attacked, options.modality, &options.key.key);
        a.detect_ms = t.elapsed().as_secs_f64() * 1e3;
        a.tried = true;
        match found {
            Ok(f) => {
                let misplaced = attack
                    .expected_span
                    .map(|expect| {
                        let (start, end) = expect(marked.seconds);
                        match excerpt {
                            Some((_, (_, Some((a, b))))) => (start + a, start + b),
                            _ => (start, end),
                        }
                    })
                    .and_then(|(start, end)| match f.span {
                        Some((s, e))
                            if (s - start).abs() < SPAN_TOLERANCE_S
                                && (e - end).abs() < SPAN_TOLERANCE_S =>
                        {
                            None
                        }
                        Some((s, e)) => Some(format!(
                            "{name} (located at {s:.1}–{e:.1} s, spliced at {start:.1}–{end:.1} s)"
                        )),
                        None => Some(format!("{name} (not located)")),
                    });
                if f.payload == Some(payload) && misplaced.is_none() {
                    a.passed = true;
                    outcome.row.passed += 1;
                } else {
                    a.failure = Some(misplaced.unwrap_or_else(|| name.clone()));
                    a.present_only = f.present && f.payload != Some(payload);
                }
                a.ber = f.ber;
                a.z = Some(f.z);
            }
            Err(e) => a.failure = Some(format!("{name} (detection failed: {e})")),
        }
        outcome.attacks.push(a);
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
            outcome.unmarked_runs += 1;
            outcome.unmarked_false += usize::from(f.present);
            outcome.unmarked_max_z = Some(outcome.unmarked_max_z.map_or(f.z, |m| m.max(f.z)));
        }
    }
    if let Ok(f) = detect(&marked.path, options.modality, wrong_key) {
        outcome.wrong_key_runs += 1;
        outcome.wrong_key_false += usize::from(f.present);
    }
    outcome
}

/// How far the located span of a splice may be from where it was spliced, seconds.
const SPAN_TOLERANCE_S: f64 = 2.5;

/// The report from the files' outcomes, in corpus order.
fn assemble_report(
    attacks: &[Attack],
    outcomes: Vec<FileOutcome>,
    options: &RobustnessOptions<'_>,
    interrupted: bool,
) -> RobustnessReport {
    let mut report = RobustnessReport {
        modality: options.modality,
        quick: options.quick,
        key_id: options.key.key_id.clone(),
        strength: options.strength,
        jobs: options.jobs.max(1),
        files: Vec::new(),
        attacks: Vec::new(),
        unmarked_runs: 0,
        unmarked_false: 0,
        unmarked_max_z: f64::NEG_INFINITY,
        wrong_key_runs: 0,
        wrong_key_false: 0,
        audio_seconds: 0.0,
        interrupted,
    };
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
            not_applicable: Vec::new(),
        })
        .collect();
    // Sums for the means: (ber sum, ber count, z sum, attack ms, detect ms).
    let mut sums = vec![(0.0f64, 0usize, 0.0f64, 0.0f64, 0.0f64); attacks.len()];
    for o in outcomes {
        report.audio_seconds += o.seconds;
        report.unmarked_runs += o.unmarked_runs;
        report.unmarked_false += o.unmarked_false;
        if let Some(z) = o.unmarked_max_z {
            report.unmarked_max_z = report.unmarked_max_z.max(z);
        }
        report.wrong_key_runs += o.wrong_key_runs;
        report.wrong_key_false += o.wrong_key_false;
        for ((a, row), sum) in o.attacks.iter().zip(rows.iter_mut()).zip(sums.iter_mut()) {
            if a.not_applicable {
                row.not_applicable.push(o.row.file.clone());
            }
            if let Some(f) = &a.failure {
                row.failed.push(f.clone());
            }
            if !a.tried {
                continue;
            }
            row.tried += 1;
            row.passed += usize::from(a.passed);
            row.present_without_payload += usize::from(a.present_only);
            if let Some(b) = a.ber {
                sum.0 += b;
                sum.1 += 1;
            }
            sum.2 += a.z.unwrap_or(0.0);
            sum.3 += a.attack_ms;
            sum.4 += a.detect_ms;
        }
        report.files.push(o.row);
    }
    for (row, sum) in rows.iter_mut().zip(&sums) {
        let tried = row.tried.max(1) as f64;
        row.mean_ber = (sum.1 > 0).then(|| sum.0 / sum.1 as f64);
        row.mean_z = sum.2 / tried;
        row.mean_attack_ms = sum.3 / tried;
        row.mean_detect_ms = sum.4 / tried;
    }
    report.attacks = rows;
    report
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
            "{} files marked of {} (key {}, strength {}, {} at a time){}. Pass = the exact 64-bit payload recovered blind (for a splice, also located within {SPAN_TOLERANCE_S} s of where it was spliced).\n",
            marked.len(),
            self.files.len(),
            self.key_id,
            self.strength,
            self.jobs,
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
        let left_out: Vec<String> = self
            .attacks
            .iter()
            .filter(|r| !r.not_applicable.is_empty())
            .map(|r| format!("{} ({})", r.attack, r.not_applicable.join(", ")))
            .collect();
        if !left_out.is_empty() {
            let _ = writeln!(
                s,
                "Left out (under {:.0} % of the excerpt above the embedder's −60 dBFS gate, so it holds too little of the mark to test it): {}.",
                100.0 * MIN_MARKED_SHARE,
                left_out.join("; ")
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(12.4), "12 s");
        assert_eq!(human_duration(450.0), "8 min");
        assert_eq!(human_duration(3599.0), "60 min");
        assert_eq!(human_duration(7190.0), "2 h 00 min");
        assert_eq!(human_duration(-3.0), "0 s");
    }

    #[test]
    fn an_excerpt_counts_its_marked_frames_and_their_span() {
        let frames = MarkedFrames {
            flags: vec![true, true, false, false, true],
            frame_s: 1.0,
        };
        // Frames 1, 2 and 3 lie wholly inside 0.5–4.5 s; of them only frame 1 is marked.
        assert_eq!(frames.within(0.5, 4.0), (1.0, Some((0.5, 1.5))));
        assert_eq!(frames.within(0.0, 5.0), (3.0, Some((0.0, 5.0))));
        assert_eq!(frames.within(2.0, 2.0), (0.0, None));
        // A marked frame that only grazes the start (its sound may all lie before it) does
        // not start the span, whose first marked frame is then frame 4.
        assert_eq!(frames.within(1.1, 3.9), (1.0, Some((2.9, 3.9))));
    }

    #[test]
    fn a_splice_fits_files_of_any_length() {
        // 30 s: the original's first 15 s, the marked 5–25 s, the original's last 15 s.
        assert_eq!(splice_plan(30.0), (15.0, 5.0, 20.0));
        // 12 s: all of it marked, between two copies of the whole original.
        assert_eq!(splice_plan(12.0), (12.0, 0.0, 12.0));
        assert_eq!(splice_plan(22.0), (15.0, 2.0, 20.0));
    }
}
