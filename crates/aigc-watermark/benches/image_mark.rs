//! Embed/detect time of the image mark on a generated 1920×1080 luminance plane (one thread),
//! and the detection score. Run: `cargo bench -p aigc-watermark --bench image_mark`.

use aigc_watermark::image::{EmbedOptions, detect_luma, embed_luma};
use aigc_watermark::{Payload, WatermarkKey};
use std::time::Instant;

fn main() {
    let (w, h) = (1920usize, 1080usize);
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut img: Vec<u8> = (0..w * h)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let v = 128.0
                + 50.0 * (x * 0.01 + y * 0.004).sin()
                + 20.0 * (x * 0.07).cos()
                + 16.0 * ((state >> 40) as f32 / 16_777_216.0 - 0.5);
            v.clamp(0.0, 255.0) as u8
        })
        .collect();
    let key = WatermarkKey::from_bytes([3; 32]);
    let payload = Payload(0xfeed_beef_0000_0042);
    let mut embed_ms = Vec::new();
    let mut detect_ms = Vec::new();
    let original = img.clone();
    for _ in 0..5 {
        img.copy_from_slice(&original);
        let t = Instant::now();
        let report = embed_luma(&mut img, w, h, w, payload, &key, &EmbedOptions::default());
        embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let d = detect_luma(&img, w, h, w, &key);
        detect_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if let (Ok(r), Ok(d)) = (report, d) {
            println!(
                "PSNR {:.2} dB, z {:.2}, p {:.1e}, payload ok {}",
                r.psnr_db,
                d.z,
                d.false_positive_probability,
                d.payload == Some(payload)
            );
        }
    }
    embed_ms.sort_by(f64::total_cmp);
    detect_ms.sort_by(f64::total_cmp);
    println!(
        "1920×1080, one core: embed median {:.1} ms, detect median {:.1} ms",
        embed_ms[2], detect_ms[2]
    );
}
