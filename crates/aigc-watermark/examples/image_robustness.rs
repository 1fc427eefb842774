//! Runs the spec's image attack table with the real ImageMagick 6 `convert` over a corpus made
//! by `image_corpus`, and the false-positive count over its unmarked images.
//!
//! `cargo run --release -p aigc-watermark --example image_robustness -- DIR [--quick] [--only N]
//! [--skip N] [--attacks A,B] [--unmarked N]`
//! reads DIR/marked/*.png and DIR/unmarked/*.png, writes marked copies and attacked files under
//! DIR/work/, and prints a markdown table: pass rate per attack (payload fully recovered and
//! equal to the embedded one), mean raw bit error rate before correction (decoded images),
//! median z, PSNR(Y) of the marked images and embed/detect times (this process, all threads
//! rayon gives it; set RAYON_NUM_THREADS=1 for one core).
//!
//! The mark goes into luminance: Y = BT.601 luma of the RGB image, and the change of Y is added
//! to R, G and B alike, so the hue is kept.

mod common;

use aigc_watermark::image::{EmbedOptions, detect_luma, embed_luma};
use aigc_watermark::{Payload, WatermarkKey};
use common::{CONVERT, load_luma, luma, s};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One attack: a name, the spec's target pass rate, the output extension and the `convert`
/// arguments between input and output (W/H stand for the input's size, computed per image).
struct Attack {
    name: &'static str,
    target: f64,
    ext: &'static str,
    args: fn(usize, usize) -> Vec<String>,
    quick: bool,
}

fn attacks() -> Vec<Attack> {
    vec![
        Attack {
            name: "none (PNG)",
            target: 1.0,
            ext: "png",
            args: |_, _| vec![],
            quick: true,
        },
        Attack {
            name: "JPEG q90 4:2:0",
            target: 0.99,
            ext: "jpg",
            args: |_, _| q4("90"),
            quick: false,
        },
        Attack {
            name: "JPEG q75 4:2:0",
            target: 0.99,
            ext: "jpg",
            args: |_, _| q4("75"),
            quick: false,
        },
        Attack {
            name: "JPEG q50 4:2:0",
            target: 0.97,
            ext: "jpg",
            args: |_, _| q4("50"),
            quick: true,
        },
        Attack {
            name: "JPEG q30 4:2:0",
            target: 0.85,
            ext: "jpg",
            args: |_, _| q4("30"),
            quick: false,
        },
        Attack {
            name: "JPEG q75 4:4:4",
            target: 0.99,
            ext: "jpg",
            args: |_, _| s(&["-sampling-factor", "4:4:4", "-quality", "75"]),
            quick: false,
        },
        Attack {
            name: "double JPEG 85→70",
            target: 0.99,
            ext: "jpg",
            args: |_, _| {
                s(&[
                    "-sampling-factor",
                    "4:2:0",
                    "-quality",
                    "85",
                    "jpg:-",
                    "|",
                    "-sampling-factor",
                    "4:2:0",
                    "-quality",
                    "70",
                ])
            },
            quick: false,
        },
        Attack {
            name: "WebP q75",
            target: 0.99,
            ext: "webp",
            args: |_, _| s(&["-quality", "75"]),
            quick: false,
        },
        Attack {
            name: "resize 75 %",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-resize", "75%"]),
            quick: false,
        },
        Attack {
            name: "resize 50 %",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-resize", "50%"]),
            quick: true,
        },
        Attack {
            name: "resize 33 %",
            target: 0.80,
            ext: "png",
            args: |_, _| s(&["-resize", "33%"]),
            quick: false,
        },
        Attack {
            name: "upscale 150 %",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-resize", "150%"]),
            quick: false,
        },
        Attack {
            name: "upscale 200 %",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-resize", "200%"]),
            quick: false,
        },
        Attack {
            name: "social ≤1080 px + JPEG 85",
            target: 0.97,
            ext: "jpg",
            args: |_, _| {
                s(&[
                    "-resize",
                    "1080x1080>",
                    "-sampling-factor",
                    "4:2:0",
                    "-quality",
                    "85",
                ])
            },
            quick: false,
        },
        Attack {
            name: "centre crop 81 % area",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-gravity", "center", "-crop", "90%x90%+0+0", "+repage"]),
            quick: false,
        },
        Attack {
            name: "centre crop 50 % area",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-gravity", "center", "-crop", "71%x71%+0+0", "+repage"]),
            quick: true,
        },
        Attack {
            name: "off-centre crop 50 %, odd offset",
            target: 0.95,
            ext: "png",
            args: |w, h| {
                vec![
                    "-crop".into(),
                    format!(
                        "{}x{}+{}+{}",
                        w * 71 / 100,
                        h * 71 / 100,
                        (w * 29 / 100) | 1,
                        (h * 7 / 100) | 1
                    ),
                    "+repage".into(),
                ]
            },
            quick: false,
        },
        Attack {
            name: "crop 64 % area + resize back",
            target: 0.95,
            ext: "png",
            args: |w, h| {
                s(&[
                    "-gravity",
                    "center",
                    "-crop",
                    "80%x80%+0+0",
                    "+repage",
                    "-resize",
                ])
                .into_iter()
                .chain([format!("{w}x{h}!")])
                .collect()
            },
            quick: false,
        },
        Attack {
            name: "rotate +2° (borders cropped)",
            target: 0.95,
            ext: "png",
            args: |w, h| rotate_crop("2", w, h),
            quick: false,
        },
        Attack {
            name: "rotate −2° (borders cropped)",
            target: 0.95,
            ext: "png",
            args: |w, h| rotate_crop("-2", w, h),
            quick: false,
        },
        Attack {
            name: "rotate +5°",
            target: 0.85,
            ext: "png",
            args: |_, _| s(&["-background", "black", "-rotate", "5"]),
            quick: false,
        },
        Attack {
            name: "rotate −5°",
            target: 0.85,
            ext: "png",
            args: |_, _| s(&["-background", "black", "-rotate", "-5"]),
            quick: false,
        },
        Attack {
            name: "brightness +20",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-brightness-contrast", "20x0"]),
            quick: false,
        },
        // The spec's "brightness +20" is the row above (ImageMagick's brightness 20 %, +51
        // levels, as in the CLI's table). This milder +20 levels (x ≥ 235 clips) is kept for
        // comparison with earlier phases, not as a spec row.
        Attack {
            name: "brightness +20 levels (not a spec row)",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-evaluate", "Add", "7.843%"]),
            quick: false,
        },
        Attack {
            name: "contrast +30",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-brightness-contrast", "0x30"]),
            quick: false,
        },
        Attack {
            name: "gamma 1.4",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-gamma", "1.4"]),
            quick: false,
        },
        Attack {
            name: "saturation ×1.5",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-modulate", "100,150"]),
            quick: false,
        },
        Attack {
            name: "grayscale",
            target: 0.97,
            ext: "png",
            args: |_, _| s(&["-colorspace", "Gray"]),
            quick: false,
        },
        Attack {
            name: "gaussian blur σ=1",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-gaussian-blur", "0x1"]),
            quick: false,
        },
        Attack {
            name: "sharpen",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-sharpen", "0x1"]),
            quick: false,
        },
        Attack {
            name: "median 3×3",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-statistic", "Median", "3x3"]),
            quick: false,
        },
        Attack {
            name: "gaussian noise",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-seed", "7", "-attenuate", "0.5", "+noise", "Gaussian"]),
            quick: false,
        },
        Attack {
            name: "text overlay",
            target: 0.95,
            ext: "png",
            args: |w, h| {
                vec![
                    "-font".into(),
                    "DejaVu-Sans-Bold".into(),
                    "-pointsize".into(),
                    format!("{}", h.min(w) / 10),
                    "-fill".into(),
                    "white".into(),
                    "-stroke".into(),
                    "black".into(),
                    "-gravity".into(),
                    "center".into(),
                    "-annotate".into(),
                    "+0+0".into(),
                    "AI GENERATED\nSAMPLE 2026".into(),
                ]
            },
            quick: false,
        },
        Attack {
            name: "10 % border",
            target: 0.95,
            ext: "png",
            args: |_, _| s(&["-bordercolor", "white", "-border", "10%"]),
            quick: false,
        },
        Attack {
            name: "downscale 50 % + JPEG q50",
            target: 0.90,
            ext: "jpg",
            args: |_, _| {
                s(&[
                    "-resize",
                    "50%",
                    "-sampling-factor",
                    "4:2:0",
                    "-quality",
                    "50",
                ])
            },
            quick: false,
        },
        Attack {
            name: "crop 71 % side + brightness + JPEG 60",
            target: 0.80,
            ext: "jpg",
            args: |_, _| {
                s(&[
                    "-gravity",
                    "center",
                    "-crop",
                    "71%x71%+0+0",
                    "+repage",
                    "-brightness-contrast",
                    "-15x0",
                    "-sampling-factor",
                    "4:2:0",
                    "-quality",
                    "60",
                ])
            },
            quick: false,
        },
    ]
}

fn q4(q: &str) -> Vec<String> {
    s(&["-sampling-factor", "4:2:0", "-quality", q])
}

/// Rotate, then crop the centre to the largest axis-aligned box free of fill corners.
fn rotate_crop(deg: &str, w: usize, h: usize) -> Vec<String> {
    let a = deg.parse::<f64>().unwrap_or(0.0).abs().to_radians();
    let (wf, hf) = (w as f64, h as f64);
    // Inner box of the rotated w×h rectangle keeping the aspect ratio.
    let k = 1.0 / (a.cos() + a.sin() * wf.max(hf) / wf.min(hf));
    let (cw, ch) = ((wf * k) as usize, (hf * k) as usize);
    vec![
        "-rotate".into(),
        deg.into(),
        "-gravity".into(),
        "center".into(),
        "-crop".into(),
        format!("{cw}x{ch}+0+0"),
        "+repage".into(),
    ]
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

fn pngs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    v.sort();
    Ok(v)
}

/// Runs `convert IN ARGS OUT`; an argument "|" pipes into a second convert (double JPEG).
fn convert(input: &Path, args: &[String], output: &Path) -> Result<(), String> {
    let run = |mut c: Command| -> Result<(), String> {
        let out = c.output().map_err(|e| format!("{CONVERT}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "convert {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    if let Some(pipe) = args.iter().position(|a| a == "|") {
        let mid = output.with_extension("stage1.jpg");
        let mut first = Command::new(CONVERT);
        first.arg(input).args(&args[..pipe - 1]).arg(&mid);
        run(first)?;
        let mut second = Command::new(CONVERT);
        second.arg(&mid).args(&args[pipe + 1..]).arg(output);
        run(second)
    } else {
        let mut c = Command::new(CONVERT);
        c.arg(input).args(args).arg(output);
        run(c)
    }
}

#[derive(Default)]
struct Tally {
    pass: usize,
    total: usize,
    ber_sum: f64,
    ber_n: usize,
    z: Vec<f64>,
    detect_ms: Vec<f64>,
    wrong_payload: usize,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().ok_or(
        "usage: image_robustness DIR [--quick] [--only N] [--attacks A,B] [--unmarked N]",
    )?);
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let work = dir.join("work");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let key = WatermarkKey::from_bytes(*b"aigc-mark image robustness key!!");
    // `--attacks A,B`: only the attacks whose name contains one of the comma-separated parts
    // (a development loop on the rows being worked on).
    let wanted: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--attacks")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_string).collect());
    let attacks: Vec<Attack> = attacks()
        .into_iter()
        .filter(|a| !quick || a.quick)
        .filter(|a| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|part| a.name.contains(part.as_str())))
        })
        .collect();
    let mut tallies: Vec<Tally> = attacks.iter().map(|_| Tally::default()).collect();
    let mut psnrs = Vec::new();
    let mut embed_ms = Vec::new();
    let originals = pngs(&dir.join("marked"))?;
    // `--skip N`: leave out the first N images (split a long run over processes; the payload
    // index stays the image's position in the corpus).
    let skip: usize = args
        .iter()
        .position(|a| a == "--skip")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let originals: Vec<PathBuf> = originals
        .into_iter()
        .take(only.unwrap_or(usize::MAX))
        .collect();
    for (i, path) in originals.iter().enumerate().skip(skip) {
        let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let y0 = luma(rgb.as_raw());
        let mut y = y0.clone();
        let payload = Payload(0x5eed_0000_0000_0000 | i as u64);
        let t = Instant::now();
        embed_luma(&mut y, w, h, w, payload, &key, &EmbedOptions::default())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
        for (p, (new, old)) in rgb.pixels_mut().zip(y.iter().zip(&y0)) {
            let d = i16::from(*new) - i16::from(*old);
            for c in p.0.iter_mut() {
                *c = (i16::from(*c) + d).clamp(0, 255) as u8;
            }
        }
        let marked = work.join(format!("{i:03}-marked.png"));
        rgb.save(&marked)
            .map_err(|e| format!("{}: {e}", marked.display()))?;
        let y_out = luma(rgb.as_raw());
        let p = psnr(&y0, &y_out);
        psnrs.push(p);
        let mut line = format!("{} {w}×{h} PSNR {p:.2}:", path.display());
        for (a, tally) in attacks.iter().zip(tallies.iter_mut()) {
            let out = work.join(format!("{i:03}-attacked.{}", a.ext));
            convert(&marked, &(a.args)(w, h), &out)?;
            let (ly, lw, lh) = load_luma(&out)?;
            let t = Instant::now();
            let d = detect_luma(&ly, lw, lh, lw, &key)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            tally.detect_ms.push(t.elapsed().as_secs_f64() * 1e3);
            tally.total += 1;
            tally.z.push(d.z);
            if d.payload == Some(payload) {
                tally.pass += 1;
                if let Some(b) = d.raw_ber() {
                    tally.ber_sum += b;
                    tally.ber_n += 1;
                }
            } else if d.payload.is_some() {
                tally.wrong_payload += 1;
            } else {
                line.push_str(&format!(
                    " [{} z {:.1} s {:.3} r {:.2}]",
                    a.name, d.z, d.scale, d.rotation_degrees
                ));
            }
        }
        eprintln!("{line}");
    }

    // False positives on the unmarked images.
    let unmarked = pngs(&dir.join("unmarked"))?;
    let (mut fp_present, mut fp_payload, mut max_z, mut fp_ms) = (0, 0, 0.0f64, Vec::new());
    let unmarked_limit: Option<usize> = args
        .iter()
        .position(|a| a == "--unmarked")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let limit = unmarked_limit.unwrap_or(if quick { 100 } else { usize::MAX });
    for path in unmarked.iter().take(limit) {
        let (ly, lw, lh) = load_luma(path)?;
        let t = Instant::now();
        let d =
            detect_luma(&ly, lw, lh, lw, &key).map_err(|e| format!("{}: {e}", path.display()))?;
        fp_ms.push(t.elapsed().as_secs_f64() * 1e3);
        fp_present += usize::from(d.present);
        fp_payload += usize::from(d.payload.is_some());
        max_z = max_z.max(d.z);
    }

    println!(
        "| attack | pass | rate | target | mean raw BER (decoded) | median z | median detect ms | wrong payloads |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (a, t) in attacks.iter().zip(tallies.iter_mut()) {
        let rate = t.pass as f64 / t.total.max(1) as f64;
        println!(
            "| {} | {}/{} | {:.0} % | {:.0} % {} | {} | {:.1} | {:.0} | {} |",
            a.name,
            t.pass,
            t.total,
            100.0 * rate,
            100.0 * a.target,
            if rate >= a.target { "✅" } else { "❌" },
            if t.ber_n > 0 {
                format!("{:.3}", t.ber_sum / t.ber_n as f64)
            } else {
                "–".into()
            },
            median(&mut t.z),
            median(&mut t.detect_ms),
            t.wrong_payload
        );
    }
    let min_psnr = psnrs.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "\nPSNR(Y) of the {} marked images: median {:.2} dB, min {:.2} dB; embed median {:.1} ms",
        psnrs.len(),
        median(&mut psnrs.clone()),
        min_psnr,
        median(&mut embed_ms)
    );
    println!(
        "Unmarked: {} images, {fp_present} declared present, {fp_payload} with a payload, max z {max_z:.2}, median detect {:.0} ms",
        fp_ms.len(),
        median(&mut fp_ms)
    );
    Ok(())
}
