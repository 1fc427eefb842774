//! End-to-end: visible labels drawn by `aigc-mark label`, measured on the decoded output and
//! read back with independent tools (ffmpeg, exiftool, python3).

mod common;

use aigc_explicit::jpeg_quality::JpegHeader;
use aigc_explicit::{contrast_ratio, relative_luminance, required_ink_height};
use common::{CODE, Scratch, exiftool_tags, sample, text, tool};
use image::{AnimationDecoder, ImageDecoder, ImageEncoder};
use std::path::Path;

/// ffmpeg decodes every frame of `file` without an error message.
fn assert_ffmpeg_decodes(file: &Path) {
    let out = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            &file.display().to_string(),
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg cannot decode {}: {}",
        file.display(),
        text(&out.stderr)
    );
}

fn exif_value(file: &Path, key: &str) -> Option<String> {
    exiftool_tags(file)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Relative luminances inside `plate` (x, y, w, h) of a displayed RGB image, less a 3 px ring.
fn plate_luminances(img: &image::RgbImage, plate: &serde_json::Value) -> Vec<f64> {
    let g = |k: &str| plate[k].as_u64().expect("plate field") as u32;
    let (x, y, w, h) = (g("x"), g("y"), g("width"), g("height"));
    let mut out = Vec::new();
    for yy in y + 3..y + h - 3 {
        for xx in x + 3..x + w - 3 {
            out.push(relative_luminance(img.get_pixel(xx, yy).0));
        }
    }
    out
}

/// Ink rows inside the plate: rows holding a pixel at least half-way from the plate's
/// luminance to the ink's.
fn ink_rows(img: &image::RgbImage, plate: &serde_json::Value, plate_l: f64, ink_l: f64) -> u32 {
    let g = |k: &str| plate[k].as_u64().expect("plate field") as u32;
    let (x, y, w, h) = (g("x"), g("y"), g("width"), g("height"));
    let half = (plate_l + ink_l) / 2.0;
    let inked: Vec<u32> = (y + 3..y + h - 3)
        .filter(|&yy| {
            (x + 3..x + w - 3).any(|xx| {
                let l = relative_luminance(img.get_pixel(xx, yy).0);
                if ink_l > plate_l { l > half } else { l < half }
            })
        })
        .collect();
    match (inked.first(), inked.last()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    }
}

/// Checks the drawn label on a displayed image against the placement reported in JSON.
fn check_label(img: &image::RgbImage, label: &serde_json::Value, what: &str) {
    let placement = &label["placement"];
    let plate = &placement["plate"];
    let lum = plate_luminances(img, plate);
    let mut sorted = lum.clone();
    sorted.sort_by(f64::total_cmp);
    // The plate dominates the box; the text is the other extreme.
    let median = sorted[sorted.len() / 2];
    let plate_rgb: Vec<u8> = placement["plate_rgb"]
        .as_array()
        .expect("plate_rgb")
        .iter()
        .map(|v| v.as_u64().expect("u8") as u8)
        .collect();
    let expected = relative_luminance([plate_rgb[0], plate_rgb[1], plate_rgb[2]]);
    assert!(
        (median - expected).abs() < 0.08,
        "{what}: plate luminance {median:.3}, expected {expected:.3}"
    );
    let ink = if expected > 0.5 {
        sorted[sorted.len() / 200]
    } else {
        sorted[sorted.len() - 1 - sorted.len() / 200]
    };
    let c = contrast_ratio(median, ink);
    assert!(c >= 4.5, "{what}: measured text/plate contrast {c:.2}");
    let rows = ink_rows(img, plate, median, ink);
    let need = required_ink_height(img.width(), img.height());
    assert!(rows >= need, "{what}: ink {rows} px < required {need} px");
}

fn label_json(s: &Scratch, input: &Path, output: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "label",
        input.to_str().expect("utf-8 path"),
        "-o",
        output.to_str().expect("utf-8 path"),
        "--producer",
        CODE,
        "--json",
    ];
    args.extend_from_slice(extra);
    let v = s.json(&args, 0);
    v["labelled"][0].clone()
}

#[test]
fn sample_images_get_a_measurable_label_decodable_by_ffmpeg_and_read_by_exiftool() {
    let s = Scratch::new();
    for name in [
        "image.jpg",
        "image-exif-xmp.jpg",
        "image.png",
        "image-xmp.png",
        "image.webp",
        "image-lossy.webp",
        "image.gif",
        "image.bmp",
    ] {
        let out = s.path(name);
        let o = label_json(&s, &sample(name), &out, &[]);
        assert_eq!(o["explicit"]["status"], "applied", "{name}: {o}");
        assert_ffmpeg_decodes(&out);
        if name.ends_with(".bmp") {
            assert_eq!(o["metadata"]["status"], "unavailable", "{name}");
        } else {
            let aigc = exif_value(&out, "XMP-TC260:Aigc").unwrap_or_default();
            assert!(aigc.contains(CODE), "{name}: exiftool sees no label");
        }
        let img = image::open(&out).expect("decode output").to_rgb8();
        check_label(&img, &o["explicit_label"], name);
    }
}

/// A minimal ICC v2 profile whose description exiftool reports.
fn icc_profile(description: &str) -> Vec<u8> {
    let mut desc = b"desc\0\0\0\0".to_vec();
    let ascii = format!("{description}\0");
    desc.extend_from_slice(&(ascii.len() as u32).to_be_bytes());
    desc.extend_from_slice(ascii.as_bytes());
    desc.extend_from_slice(&[0u8; 8 + 3 + 67]);
    while !desc.len().is_multiple_of(4) {
        desc.push(0);
    }
    let offset = 128 + 4 + 12;
    let size = offset + desc.len();
    let mut p = Vec::new();
    p.extend_from_slice(&(size as u32).to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&0x0210_0000u32.to_be_bytes());
    p.extend_from_slice(b"mntrRGB XYZ ");
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(b"acsp");
    p.extend_from_slice(&[0; 28]);
    for v in [0xF6D6u32, 0x1_0000, 0xD32D] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    p.resize(128, 0);
    p.extend_from_slice(&1u32.to_be_bytes());
    p.extend_from_slice(b"desc");
    p.extend_from_slice(&(offset as u32).to_be_bytes());
    p.extend_from_slice(&(desc.len() as u32).to_be_bytes());
    p.extend_from_slice(&desc);
    p
}

/// A busy test picture: stripes and a gradient.
fn picture(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x * 255) / w) as u8,
            if (x / 16 + y / 16) % 2 == 0 { 200 } else { 60 },
            ((y * 255) / h) as u8,
        ])
    })
}

#[test]
fn exif_orientation_icc_and_jpeg_quality_survive_and_the_label_is_upright() {
    let s = Scratch::new();
    let icc = s.path("test.icc");
    std::fs::write(&icc, icc_profile("aigc test profile")).expect("write icc");
    // Stored 320×200 with orientation 6: displayed 200×320 portrait.
    let (w, h) = (320, 200);
    let pic = picture(w, h);
    let jpg = s.path("in.jpg");
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
        .write_image(pic.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("encode");
    std::fs::write(&jpg, &bytes).expect("write");
    let png = s.path("in.png");
    pic.save(&png).expect("png");
    for f in [&jpg, &png] {
        let st = tool(
            "exiftool",
            &[
                "-q",
                "-overwrite_original",
                &format!("-ICC_Profile<={}", icc.display()),
                "-Orientation#=6",
                "-Make=TestCam",
                &f.display().to_string(),
            ],
        );
        assert!(st.status.success(), "{}", text(&st.stderr));
    }
    let input_header = JpegHeader::parse(&std::fs::read(&jpg).expect("read")).expect("header");
    for (input, corner) in [(&jpg, "bottom-right"), (&png, "top-left")] {
        let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("");
        let out = s.path(&format!("out-{corner}.{ext}"));
        let o = label_json(&s, input, &out, &["--position", corner]);
        assert_eq!(o["explicit_label"]["orientation"], 6);
        assert_eq!(o["explicit_label"]["placement"]["position"], corner);
        // Independent read-back of the kept metadata and the new label.
        assert_eq!(
            exif_value(&out, "ICC_Profile:ProfileDescription").as_deref(),
            Some("aigc test profile"),
            "{ext}"
        );
        assert_eq!(
            exif_value(&out, "IFD0:Orientation").as_deref(),
            Some("Rotate 90 CW")
        );
        assert_eq!(exif_value(&out, "IFD0:Make").as_deref(), Some("TestCam"));
        assert!(exif_value(&out, "XMP-TC260:Aigc").is_some_and(|v| v.contains(CODE)));
        assert_ffmpeg_decodes(&out);
        // Show the output as a viewer does and find the label in the asked-for corner.
        let mut decoder = image::ImageReader::open(&out)
            .expect("open")
            .with_guessed_format()
            .expect("guess")
            .into_decoder()
            .expect("decoder");
        let orientation = decoder.orientation().expect("orientation");
        let mut shown = image::DynamicImage::from_decoder(decoder).expect("decode");
        shown.apply_orientation(orientation);
        let shown = shown.to_rgb8();
        assert_eq!(shown.dimensions(), (h, w));
        let plate = &o["explicit_label"]["placement"]["plate"];
        let (px, py) = (
            plate["x"].as_u64().unwrap_or(0),
            plate["y"].as_u64().unwrap_or(0),
        );
        let (pw, ph) = (
            plate["width"].as_u64().unwrap_or(0),
            plate["height"].as_u64().unwrap_or(0),
        );
        assert!(pw > ph, "upright text makes a wide plate");
        match corner {
            "bottom-right" => {
                assert!(px + pw > u64::from(h) * 3 / 4 && py + ph > u64::from(w) * 3 / 4)
            }
            _ => assert!(px < u64::from(h) / 4 && py < u64::from(w) / 4),
        }
        check_label(&shown, &o["explicit_label"], &format!("{ext} {corner}"));
        if ext == "jpg" {
            let q = o["explicit_label"]["jpeg_quality"].as_u64().unwrap_or(0);
            assert!(q.abs_diff(80) <= 5, "estimated quality {q} for a q80 input");
            let out_header =
                JpegHeader::parse(&std::fs::read(&out).expect("read")).expect("header");
            assert_eq!(out_header.estimated_quality(), Some(q as u8));
            assert_eq!(
                out_header.chroma_subsampling(),
                input_header.chroma_subsampling()
            );
        }
    }
}

/// ImageMagick's `identify` fields of a JPEG: (quality, sampling factor).
fn identify_jpeg(file: &Path) -> (String, String) {
    let out = tool(
        "identify",
        &[
            "-format",
            "%Q %[jpeg:sampling-factor]",
            &file.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    let (q, sf) = t.trim().split_once(' ').expect("two fields");
    (q.to_string(), sf.to_string())
}

#[test]
fn labelled_jpeg_keeps_quality_and_subsampling_and_stays_about_the_input_size() {
    let s = Scratch::new();
    for (q, sf) in [("75", "2x2"), ("92", "1x1")] {
        // libjpeg (through ImageMagick) with its optimised Huffman tables, as cameras and
        // editors write them.
        let input = s.path(&format!("in-q{q}-{sf}.jpg"));
        let made = tool(
            "convert",
            &[
                "-size",
                "800x600",
                "-seed",
                "3",
                "plasma:fractal",
                "-quality",
                q,
                "-sampling-factor",
                sf,
                &input.display().to_string(),
            ],
        );
        assert!(made.status.success(), "{}", text(&made.stderr));
        let out = s.path(&format!("out-q{q}-{sf}.jpg"));
        let o = label_json(&s, &input, &out, &["--no-watermark"]);
        assert_eq!(o["explicit"]["status"], "applied");
        let (in_q, in_sf) = identify_jpeg(&input);
        assert_eq!(identify_jpeg(&out), (in_q, in_sf), "q{q} {sf}");
        let (a, b) = (
            std::fs::metadata(&input).expect("size").len(),
            std::fs::metadata(&out).expect("size").len(),
        );
        // The label's plate and glyph edges cost a few per cent; the re-encode itself no more.
        assert!(
            b * 100 <= a * 108,
            "q{q} {sf}: {a} bytes in, {b} bytes out ({:.3}×)",
            b as f64 / a as f64
        );
        assert_ffmpeg_decodes(&out);
        // libjpeg (ImageMagick) and zune-jpeg (the image crate) decode the same picture: the
        // rewritten Huffman tables are read alike by both.
        let png = s.path(&format!("out-q{q}-{sf}.png"));
        let conv = tool(
            "convert",
            &[&out.display().to_string(), &png.display().to_string()],
        );
        assert!(conv.status.success(), "{}", text(&conv.stderr));
        let by_libjpeg = image::open(&png).expect("png").to_rgb8();
        let by_zune = image::open(&out).expect("jpeg").to_rgb8();
        let diff: u64 = by_libjpeg
            .as_raw()
            .iter()
            .zip(by_zune.as_raw())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        let mean = diff as f64 / by_zune.as_raw().len() as f64;
        assert!(
            mean < 1.5,
            "q{q} {sf}: decoders differ by {mean:.2} per sample"
        );
        check_label(&by_zune, &o["explicit_label"], &format!("q{q} {sf}"));
    }
}

/// The format webpinfo reports for a WebP file: "Lossy" or "Lossless".
fn webp_format(file: &Path) -> String {
    let out = tool("webpinfo", &[&file.display().to_string()]);
    assert!(out.status.success(), "webpinfo: {}", text(&out.stdout));
    let t = text(&out.stdout);
    assert!(t.contains("No error detected."), "webpinfo: {t}");
    t.lines()
        .find_map(|l| l.trim().strip_prefix("Format: "))
        .and_then(|f| f.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn lossy_webp_stays_lossy_at_its_quality_and_lossless_stays_lossless() {
    let s = Scratch::new();
    let png = s.path("src.png");
    let made = tool(
        "convert",
        &[
            "-size",
            "640x480",
            "-seed",
            "5",
            "plasma:fractal",
            &png.display().to_string(),
        ],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    for (kind, args) in [("q60", &["-q", "60"][..]), ("lossless", &["-lossless"][..])] {
        let input = s.path(&format!("in-{kind}.webp"));
        let mut cwebp = vec!["-quiet"];
        cwebp.extend_from_slice(args);
        let (src, dst) = (png.display().to_string(), input.display().to_string());
        cwebp.extend_from_slice(&[&src, "-o", &dst]);
        let made = tool("cwebp", &cwebp);
        assert!(made.status.success(), "{}", text(&made.stderr));
        let out = s.path(&format!("out-{kind}.webp"));
        let o = label_json(&s, &input, &out, &["--no-watermark"]);
        assert_eq!(o["explicit"]["status"], "applied");
        assert_eq!(webp_format(&out), webp_format(&input), "{kind}");
        assert_ffmpeg_decodes(&out);
        assert!(exif_value(&out, "XMP-TC260:Aigc").is_some_and(|v| v.contains(CODE)));
        let (a, b) = (
            std::fs::metadata(&input).expect("size").len(),
            std::fs::metadata(&out).expect("size").len(),
        );
        if kind == "q60" {
            let q = o["explicit_label"]["webp_quality"].as_u64().unwrap_or(0);
            assert!(
                q.abs_diff(60) <= 8,
                "estimated WebP quality {q} for a q60 input"
            );
            assert!(b * 100 <= a * 110, "lossy: {a} bytes in, {b} bytes out");
        } else {
            assert!(o["explicit_label"]["webp_quality"].is_null());
            // Every pixel outside the label is exactly the input's.
            let before = image::open(&input).expect("in").to_rgb8();
            let after = image::open(&out).expect("out").to_rgb8();
            let plate = &o["explicit_label"]["placement"]["plate"];
            let g = |k: &str| plate[k].as_u64().unwrap_or(0) as u32;
            let (px, py, pw, ph) = (g("x"), g("y"), g("width"), g("height"));
            let changed = before
                .enumerate_pixels()
                .filter(|(x, y, p)| {
                    let inside = (px..px + pw).contains(x) && (py..py + ph).contains(y);
                    !inside && after.get_pixel(*x, *y) != *p
                })
                .count();
            assert_eq!(
                changed, 0,
                "lossless output changed pixels outside the label"
            );
        }
        let img = image::open(&out).expect("decode").to_rgb8();
        check_label(&img, &o["explicit_label"], kind);
    }
}

#[test]
fn rgb_and_ycbcr_tiffs_are_labelled_and_read_like_ffmpeg_reads_them() {
    let s = Scratch::new();
    let tif = s.path("in.tif");
    picture(300, 200).save(&tif).expect("tiff");
    let out = s.path("out.tif");
    let o = label_json(&s, &tif, &out, &[]);
    assert_eq!(o["explicit"]["status"], "applied");
    assert_ffmpeg_decodes(&out);
    assert!(exif_value(&out, "XMP-TC260:Aigc").is_some_and(|v| v.contains(CODE)));
    let img = image::open(&out).expect("decode").to_rgb8();
    check_label(&img, &o["explicit_label"], "TIFF");
    // YCbCr TIFFs (which the image crate refuses) as ffmpeg writes them, and the bundled
    // sample: labelled, and outside the label the pixels match ffmpeg's own decode.
    let src = s.path("src.png");
    picture(300, 200).save(&src).expect("png");
    let mut inputs = vec![(sample("image.tif"), "sample".to_string())];
    for (pix, algo) in [
        ("yuv420p", "deflate"),
        ("yuv422p", "lzw"),
        ("yuv444p", "raw"),
        ("yuv411p", "packbits"),
    ] {
        let f = s.path(&format!("{pix}-{algo}.tif"));
        let made = tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-i",
                &src.display().to_string(),
                "-pix_fmt",
                pix,
                "-compression_algo",
                algo,
                &f.display().to_string(),
            ],
        );
        assert!(made.status.success(), "{}", text(&made.stderr));
        inputs.push((f, format!("{pix} {algo}")));
    }
    for (input, what) in inputs {
        let out = s.path("ycbcr-out.tif");
        let o = label_json(&s, &input, &out, &[]);
        assert_eq!(o["explicit"]["status"], "applied", "{what}: {o}");
        let reference = s.path("reference.png");
        let conv = tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-i",
                &input.display().to_string(),
                "-pix_fmt",
                "rgb24",
                &reference.display().to_string(),
            ],
        );
        assert!(conv.status.success(), "{}", text(&conv.stderr));
        let by_ffmpeg = image::open(&reference).expect("reference").to_rgb8();
        let ours = image::open(&out).expect("output").to_rgb8();
        assert_eq!(ours.dimensions(), by_ffmpeg.dimensions(), "{what}");
        let plate = &o["explicit_label"]["placement"]["plate"];
        let g = |k: &str| plate[k].as_u64().unwrap_or(0) as u32;
        let (px, py, pw, ph) = (g("x"), g("y"), g("width"), g("height"));
        let outside = |x: u32, y: u32| !((px..px + pw).contains(&x) && (py..py + ph).contains(&y));
        let mean_diff = |a: &image::RgbImage, b: &image::RgbImage| {
            let (mut sum, mut n) = (0u64, 0u64);
            for (x, y, p) in a.enumerate_pixels().filter(|(x, y, _)| outside(*x, *y)) {
                let q = b.get_pixel(x, y);
                sum +=
                    p.0.iter()
                        .zip(q.0)
                        .map(|(a, b)| u64::from(a.abs_diff(b)))
                        .sum::<u64>();
                n += 3;
            }
            sum as f64 / n as f64
        };
        let vs_ffmpeg = mean_diff(&ours, &by_ffmpeg);
        if what == "sample" {
            assert!(
                vs_ffmpeg < 3.0,
                "{what}: {vs_ffmpeg:.2} per sample from ffmpeg's decode"
            );
        } else {
            // Against the picture the TIFF was made from, our decode is as close as ffmpeg's
            // (ffmpeg interpolates chroma, we replicate it as TIFF 6.0 §21 describes).
            let original = image::open(&src).expect("source").to_rgb8();
            let (ours_err, ffmpeg_err) = (
                mean_diff(&ours, &original),
                mean_diff(&by_ffmpeg, &original),
            );
            assert!(
                ours_err <= ffmpeg_err * 1.25 + 0.5,
                "{what}: ours {ours_err:.2}, ffmpeg {ffmpeg_err:.2} per sample from the source"
            );
        }
        check_label(&ours, &o["explicit_label"], &what);
    }
}

#[test]
fn every_gif_frame_is_labelled() {
    let s = Scratch::new();
    let input = sample("image-animated.gif");
    let out = s.path("anim.gif");
    let o = label_json(&s, &input, &out, &[]);
    let frames_in = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&input).expect("open"),
    ))
    .expect("gif")
    .into_frames()
    .collect_frames()
    .expect("frames");
    let frames_out = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&out).expect("open"),
    ))
    .expect("gif")
    .into_frames()
    .collect_frames()
    .expect("frames");
    assert!(frames_in.len() > 1);
    assert_eq!(frames_out.len(), frames_in.len());
    assert_eq!(o["explicit_label"]["frames"], frames_in.len());
    for (i, f) in frames_out.iter().enumerate() {
        let rgb = image::DynamicImage::ImageRgba8(f.buffer().clone()).to_rgb8();
        check_label(&rgb, &o["explicit_label"], &format!("GIF frame {i}"));
    }
    assert_ffmpeg_decodes(&out);
    assert!(exif_value(&out, "XMP-TC260:Aigc").is_some());
}

#[test]
fn bad_label_requests_fail_clearly_and_write_nothing() {
    let s = Scratch::new();
    let out = s.path("out.png");
    let png = sample("image.png").display().to_string();
    let o = out.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["label", &png, "-o", &o, "--producer", CODE];
        args.extend_from_slice(extra);
        s.run(&args)
    };
    let st = run(&["--text", "由AI提供"]);
    assert_eq!(st.status.code(), Some(2));
    assert!(
        text(&st.stderr).contains("wording rule"),
        "{}",
        text(&st.stderr)
    );
    let st = run(&["--text", "AI生成龘"]);
    assert_eq!(st.status.code(), Some(2));
    assert!(
        text(&st.stderr).contains("no glyph"),
        "{}",
        text(&st.stderr)
    );
    let st = run(&["--position", "middle"]);
    assert_eq!(st.status.code(), Some(2));
    assert!(!out.exists());
    // Too small for a 20 px label: a clear error naming the size; --no-explicit still works.
    let tiny = s.path("tiny.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([9, 9, 9]))
        .save(&tiny)
        .expect("png");
    let tiny_s = tiny.display().to_string();
    let st = s.run(&["label", &tiny_s, "-o", &o, "--producer", CODE]);
    assert_eq!(st.status.code(), Some(2));
    let err = text(&st.stderr);
    assert!(
        err.contains("tiny.png") && err.contains("too small") && err.contains("64×64"),
        "{err}"
    );
    assert!(!out.exists());
    let v = s.json(
        &[
            "label",
            &tiny_s,
            "-o",
            &o,
            "--producer",
            CODE,
            "--no-explicit",
            "--json",
        ],
        0,
    );
    assert_eq!(v["labelled"][0]["explicit"]["status"], "skipped");
    // BMP without the drawn label has nothing to carry the metadata label.
    let bmp = sample("image.bmp").display().to_string();
    let st = s.run(&[
        "label",
        &bmp,
        "-o",
        &s.path("x.bmp").display().to_string(),
        "--producer",
        CODE,
        "--no-explicit",
    ]);
    assert_eq!(st.status.code(), Some(2));
}

#[test]
fn html_and_markdown_get_visible_prompts_and_inspect_finds_them() {
    let s = Scratch::new();
    let html = s.path("page.html");
    std::fs::write(
        &html,
        "<!DOCTYPE html>\n<html>\n<head>\n<title>t</title>\n</head>\n<body>\n<p>生成的文章。</p>\n</body>\n</html>\n",
    )
    .expect("write");
    let out = s.path("page-out.html");
    let o = label_json(&s, &html, &out, &[]);
    assert_eq!(o["metadata"]["status"], "applied");
    assert_eq!(o["explicit"]["status"], "applied");
    // Relabel the output: still one notice and one meta tag.
    let again = s.path("page-again.html");
    label_json(&s, &out, &again, &[]);
    let page = std::fs::read_to_string(&again).expect("read");
    assert_eq!(page.matches("class=\"aigc-notice\"").count(), 1, "{page}");
    assert!(page.contains("<p class=\"aigc-notice\" role=\"note\">本内容由AI生成</p>\n</body>"));
    // python3's HTML parser (independent of ours) finds the meta tag and the notice text.
    let script = r#"
import sys, html.parser, json
class P(html.parser.HTMLParser):
    meta = []; notice = []; inside = False
    def handle_starttag(self, t, a):
        a = dict(a)
        if t == 'meta' and a.get('name') == 'AIGC':
            self.meta.append(a['content'])
        self.inside = t == 'p' and a.get('class') == 'aigc-notice'
    def handle_data(self, d):
        if self.inside:
            self.notice.append(d)
p = P(); p.feed(open(sys.argv[1], encoding='utf-8').read())
print(json.dumps({'meta': p.meta, 'notice': p.notice}))
"#;
    let py = tool("python3", &["-c", script, &again.display().to_string()]);
    let parsed: serde_json::Value = serde_json::from_slice(&py.stdout).expect("python JSON");
    assert_eq!(parsed["meta"].as_array().map(Vec::len), Some(1));
    let meta: serde_json::Value =
        serde_json::from_str(parsed["meta"][0].as_str().unwrap_or("")).expect("meta JSON");
    assert_eq!(meta["ContentProducer"], CODE);
    assert_eq!(parsed["notice"][0], "本内容由AI生成");
    let report = s.json(&["inspect", "--json", &again.display().to_string()], 0);
    let file = &report["files"][0];
    assert_eq!(file["verdict"], "labelled");
    assert_eq!(file["explicit_prompts"][0]["location"], "end");
    assert_eq!(file["explicit_prompts"][0]["wording_ok"], true);
    // Markdown: badge at both ends, front matter label kept first.
    let md = s.path("note.md");
    std::fs::write(&md, "# 标题\n\n正文一。\n\n正文二。\n").expect("write");
    let md_out = s.path("note-out.md");
    label_json(&s, &md, &md_out, &["--badge", "--text-position", "both"]);
    let body = std::fs::read_to_string(&md_out).expect("read");
    assert!(body.starts_with("---\nAIGC:"), "{body}");
    assert_eq!(body.matches("*【AI】*").count(), 2, "{body}");
    let report = s.json(&["inspect", "--json", &md_out.display().to_string()], 0);
    let prompts = report["files"][0]["explicit_prompts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(prompts.len(), 2);
    assert!(prompts.iter().all(|p| p["badge"] == true));
    // A weak prompt in plain text is reported as not meeting the rule.
    let weak = s.path("weak.txt");
    std::fs::write(&weak, "正文。\n\n本内容由AI提供\n").expect("write");
    let report = s.json(&["inspect", "--json", &weak.display().to_string()], 0);
    assert_eq!(
        report["files"][0]["explicit_prompts"][0]["wording_ok"],
        false
    );
}

#[test]
fn pdf_stamp_on_every_page_reads_back_with_pdftotext_and_relabelling_does_not_stack() {
    let s = Scratch::new();
    // A three-page PDF made by qpdf from the sample, its second page rotated.
    let three = s.path("three.pdf");
    let src = sample("document.pdf").display().to_string();
    let q = tool(
        "qpdf",
        &[
            "--empty",
            "--pages",
            &src,
            &src,
            &src,
            "--",
            &three.display().to_string(),
        ],
    );
    assert!(q.status.success(), "qpdf: {}", text(&q.stderr));
    let rotated = s.path("rotated.pdf");
    let q = tool(
        "qpdf",
        &[
            &three.display().to_string(),
            "--rotate=+90:2",
            &rotated.display().to_string(),
        ],
    );
    assert!(q.status.success(), "qpdf: {}", text(&q.stderr));
    let out = s.path("stamped.pdf");
    let o = label_json(&s, &rotated, &out, &["--pages", "all"]);
    assert_eq!(o["explicit"]["status"], "applied");
    assert_eq!(o["metadata"]["status"], "applied");
    let pages = o["explicit_label"]["pages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(pages.len(), 3, "{o}");
    for p in &pages {
        assert!(p["font_size_pt"].as_f64().unwrap_or(0.0) >= 12.0, "{p}");
    }
    // Independent tools: structure, metadata label, and the stamp text on every page.
    let check = tool("qpdf", &["--check", &out.display().to_string()]);
    assert!(
        check.status.success(),
        "qpdf --check: {}",
        text(&check.stdout)
    );
    let info = tool("pdfinfo", &["-custom", &out.display().to_string()]);
    assert!(
        text(&info.stdout).contains("AIGC:"),
        "{}",
        text(&info.stdout)
    );
    for page in ["1", "2", "3"] {
        let t = tool(
            "pdftotext",
            &["-f", page, "-l", page, &out.display().to_string(), "-"],
        );
        let t = text(&t.stdout);
        assert!(
            t.contains("AI生成") && t.contains("sample"),
            "page {page}: {t:?}"
        );
    }
    // inspect reports the stamps; labelling again adds none.
    let report = s.json(&["inspect", "--json", &out.display().to_string()], 0);
    let stamps = report["files"][0]["explicit_stamps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(stamps.len(), 3, "{report}");
    assert!(
        stamps
            .iter()
            .all(|x| x["wording_ok"] == true && x["legible"] == true)
    );
    let again = s.path("again.pdf");
    let o = label_json(&s, &out, &again, &["--pages", "all"]);
    assert_eq!(o["explicit_label"]["kind"], "stamp-present", "{o}");
    let t = tool("pdftotext", &[&again.display().to_string(), "-"]);
    assert_eq!(text(&t.stdout).matches("AI生成").count(), 3);
    // The default stamps the first page only.
    let first = s.path("first.pdf");
    label_json(&s, &three, &first, &[]);
    let t = text(&tool("pdftotext", &[&first.display().to_string(), "-"]).stdout);
    assert_eq!(t.matches("AI生成").count(), 1, "{t:?}");
}

#[test]
fn docx_gets_a_visible_paragraph_and_the_custom_property() {
    let s = Scratch::new();
    let out = s.path("out.docx");
    let o = label_json(
        &s,
        &sample("document.docx"),
        &out,
        &["--text-position", "start"],
    );
    assert_eq!(o["explicit_label"]["kind"], "docx-paragraph", "{o}");
    assert_eq!(o["metadata"]["status"], "applied");
    // Python's zipfile and ElementTree read the paragraphs and the custom property.
    let script = r#"
import sys, zipfile, json, xml.etree.ElementTree as ET
W = '{http://schemas.openxmlformats.org/wordprocessingml/2006/main}'
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
body = ET.fromstring(z.read('word/document.xml')).find(W + 'body')
paras = [''.join(t.text or '' for t in p.iter(W + 't')) for p in body.iter(W + 'p')]
custom = z.read('docProps/custom.xml').decode('utf-8')
print(json.dumps({'paras': paras, 'has_label': 'AIGC' in custom}))
"#;
    let py = tool("python3", &["-c", script, &out.display().to_string()]);
    assert!(py.status.success(), "{}", text(&py.stderr));
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).expect("json");
    assert_eq!(v["paras"][0], "本内容由人工智能生成", "{v}");
    assert_eq!(v["has_label"], true);
    let tags = exiftool_tags(&out);
    assert!(
        tags.iter()
            .any(|(k, v)| k.ends_with("AIGC") && v.contains(CODE)),
        "{tags:?}"
    );
    let report = s.json(&["inspect", "--json", &out.display().to_string()], 0);
    let file = &report["files"][0];
    assert_eq!(file["verdict"], "labelled");
    assert_eq!(file["explicit_prompts"][0]["location"], "start");
    assert_eq!(file["explicit_prompts"][0]["wording_ok"], true);
    // Relabelling keeps one paragraph; a custom text replaces the default wording.
    let again = s.path("again.docx");
    let o = label_json(&s, &out, &again, &[]);
    assert_eq!(o["explicit_label"]["kind"], "already-present");
    let custom = s.path("custom.docx");
    label_json(
        &s,
        &sample("document.docx"),
        &custom,
        &["--text", "本文由AI合成"],
    );
    let py = tool("python3", &["-c", script, &custom.display().to_string()]);
    let v: serde_json::Value = serde_json::from_slice(&py.stdout).expect("json");
    let paras = v["paras"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        paras.last(),
        Some(&serde_json::json!("本文由AI合成")),
        "{v}"
    );
}

#[test]
fn inspect_finds_the_drawn_label_on_labelled_samples_and_not_on_originals() {
    let s = Scratch::new();
    for name in ["image.jpg", "image-exif-xmp.jpg", "image.png", "image.webp"] {
        let out = s.path(name);
        let o = label_json(&s, &sample(name), &out, &[]);
        let report = s.json(&["inspect", "--json", &out.display().to_string()], 0);
        let scan = &report["files"][0]["explicit_image"];
        assert_eq!(scan["found"], true, "{name}: {scan}");
        assert_eq!(
            scan["position"], o["explicit_label"]["placement"]["position"],
            "{name}"
        );
        assert_eq!(scan["meets_size"], true, "{name}: {scan}");
        assert_eq!(scan["meets_wording"], true, "{name}: {scan}");
        assert_eq!(scan["text"], "AI生成");
        let report = s.json(
            &["inspect", "--json", &sample(name).display().to_string()],
            0,
        );
        let clean = &report["files"][0]["explicit_image"];
        assert_eq!(clean["found"], false, "{name} unlabelled: {clean}");
    }
}
