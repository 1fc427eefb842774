//! Development diagnostics of the image mark: for each corpus image given, embeds as
//! `image_robustness` does (same key, payload by index), applies a few attacks whose transform
//! is known, runs the detector, and at the true transform reports the template score, whether
//! the template search listed the truth, the pilot z of the fold, and the raw bit errors; so a
//! miss is told apart as a synchronisation or a payload failure.
//!
//! `cargo run --release -p aigc-watermark --example image_diag -- WORKDIR [--attacks A,B] IMG...`
//! (IMG named NNN-*.png: NNN is the payload index of `image_robustness`).

mod common;

use aigc_watermark::image::{EmbedOptions, detect_luma, diagnose_at, embed_luma};
use aigc_watermark::{Payload, WatermarkKey};
use common::{CONVERT, load_luma, luma, s};
use std::path::PathBuf;
use std::process::Command;

/// One attack: name, output extension, `convert` arguments, true rotation in degrees, and the
/// true scale when it is not the ratio of the output and input widths.
type Attack = (&'static str, &'static str, Vec<String>, f64, Option<f64>);

/// The attacks whose transform is known.
fn attacks(w: usize, h: usize) -> Vec<Attack> {
    let rot = |deg: f64| {
        let a = deg.abs().to_radians();
        let (wf, hf) = (w as f64, h as f64);
        let k = 1.0 / (a.cos() + a.sin() * wf.max(hf) / wf.min(hf));
        let (cw, ch) = ((wf * k) as usize, (hf * k) as usize);
        vec![
            "-rotate".into(),
            format!("{deg}"),
            "-gravity".into(),
            "center".into(),
            "-crop".into(),
            format!("{cw}x{ch}+0+0"),
            "+repage".into(),
        ]
    };
    let q = |q: &str| s(&["-sampling-factor", "4:2:0", "-quality", q]);
    let cw = ((w as f64) * 0.8).round();
    vec![
        ("none", "png", vec![], 0.0, None),
        ("q50", "jpg", q("50"), 0.0, None),
        ("q30", "jpg", q("30"), 0.0, None),
        ("webp75", "webp", s(&["-quality", "75"]), 0.0, None),
        ("resize75", "png", s(&["-resize", "75%"]), 0.0, None),
        ("resize50", "png", s(&["-resize", "50%"]), 0.0, None),
        ("resize33", "png", s(&["-resize", "33%"]), 0.0, None),
        ("up150", "png", s(&["-resize", "150%"]), 0.0, None),
        ("up200", "png", s(&["-resize", "200%"]), 0.0, None),
        (
            "cropresize",
            "png",
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
            .collect(),
            0.0,
            Some(w as f64 / cw),
        ),
        ("rot+2", "png", rot(2.0), 2.0, Some(1.0)),
        ("rot-2", "png", rot(-2.0), -2.0, Some(1.0)),
        (
            "bright",
            "png",
            s(&["-brightness-contrast", "20x0"]),
            0.0,
            None,
        ),
        (
            "add20",
            "png",
            s(&["-evaluate", "Add", "7.843%"]),
            0.0,
            None,
        ),
        (
            "contrast",
            "png",
            s(&["-brightness-contrast", "0x30"]),
            0.0,
            None,
        ),
        (
            "down50q50",
            "jpg",
            s(&[
                "-resize",
                "50%",
                "-sampling-factor",
                "4:2:0",
                "-quality",
                "50",
            ]),
            0.0,
            None,
        ),
    ]
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let work = PathBuf::from(
        args.first()
            .ok_or("usage: image_diag WORKDIR [--attacks A,B] IMG...")?,
    );
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut wanted: Option<Vec<String>> = None;
    let mut images = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--attacks" {
            wanted = it
                .next()
                .map(|v| v.split(',').map(str::to_string).collect());
        } else {
            images.push(PathBuf::from(a));
        }
    }
    let key = WatermarkKey::from_bytes(*b"aigc-mark image robustness key!!");
    let mut pass_count: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for path in &images {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let idx: u64 = name.get(..3).and_then(|v| v.parse().ok()).unwrap_or(0);
        let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut rgb = img.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let y0 = luma(rgb.as_raw());
        let mut y = y0.clone();
        let payload = Payload(0x5eed_0000_0000_0000 | idx);
        let rep = embed_luma(&mut y, w, h, w, payload, &key, &EmbedOptions::default())
            .map_err(|e| e.to_string())?;
        for (p, (new, old)) in rgb.pixels_mut().zip(y.iter().zip(&y0)) {
            let d = i16::from(*new) - i16::from(*old);
            for c in p.0.iter_mut() {
                *c = (i16::from(*c) + d).clamp(0, 255) as u8;
            }
        }
        let marked = work.join(format!("{idx:03}-marked.png"));
        rgb.save(&marked).map_err(|e| e.to_string())?;
        println!("## {name} {w}x{h} psnr {:.2}", rep.psnr_db);
        // Share of the mark's energy in pixels each tone attack clips (marked value past the
        // attack's clipping point): brightness 20 % (+51 levels), +20 levels, contrast +30.
        let share = |clips: &dyn Fn(u8) -> bool| {
            let (mut all, mut lost) = (0.0f64, 0.0f64);
            for (&n, &o) in y.iter().zip(&y0) {
                let d = f64::from(i16::from(n) - i16::from(o)).powi(2);
                all += d;
                if clips(n) {
                    lost += d;
                }
            }
            100.0 * lost / all.max(1e-9)
        };
        println!(
            "mark energy clipped: bright51 {:.1} %, add20 {:.1} %, contrast {:.1} %",
            share(&|v| v >= 204),
            share(&|v| v >= 235),
            share(&|v| v >= 206 || v <= 49)
        );
        for (an, ext, aargs, rotation, scale) in attacks(w, h) {
            if wanted
                .as_ref()
                .is_some_and(|v| !v.iter().any(|p| an.contains(p.as_str())))
            {
                continue;
            }
            let out = work.join(format!("{idx:03}-{an}.{ext}"));
            let st = Command::new(CONVERT)
                .arg(&marked)
                .args(&aargs)
                .arg(&out)
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err(format!("convert failed for {an}"));
            }
            let (ly, lw, lh) = load_luma(&out)?;
            let scale = scale.unwrap_or(lw as f64 / w as f64);
            let d = detect_luma(&ly, lw, lh, lw, &key).map_err(|e| e.to_string())?;
            let g = diagnose_at(&ly, lw, lh, lw, &key, scale, rotation, payload)
                .map_err(|e| e.to_string())?;
            let ok = d.payload == Some(payload);
            let e = pass_count.entry(an).or_default();
            e.0 += usize::from(ok);
            e.1 += 1;
            let rank = g
                .candidates
                .iter()
                .position(|c| (c.0 / scale - 1.0).abs() < 0.01 && (c.1 - rotation).abs() < 0.3);
            let best = g.candidates.first().copied().unwrap_or((0.0, 0.0, 0.0));
            println!(
                "{an:10} {} det z {:5.1} s {:.3} r {:5.2} | truth s {:.3} r {:5.2}: sync {:.2} rank {:?} refined {:?} foldz {:5.1} pol {:5.1} dec {} err {} learned {} | best cand s {:.3} r {:.2} sc {:.2}",
                if ok { "PASS" } else { "fail" },
                d.z,
                d.scale,
                d.rotation_degrees,
                scale,
                rotation,
                g.sync_score_at,
                rank,
                g.refined
                    .map(|(s, r)| (format!("{s:.4}"), format!("{r:.2}"))),
                g.fold_z,
                g.polished_z,
                g.payload == Some(payload),
                g.raw_errors,
                g.raw_errors_learned,
                best.0,
                best.1,
                best.2
            );
        }
    }
    println!("\n| attack | pass |");
    for (k, (p, n)) in pass_count {
        println!("| {k} | {p}/{n} |");
    }
    Ok(())
}
