//! Embed/detect time of the image mark on a generated 1920×1080 luminance plane, on however
//! many threads rayon is given (set RAYON_NUM_THREADS=1 for the spec's one-core figures), and
//! the detection score. Run:
//! `RAYON_NUM_THREADS=1 cargo bench -p aigc-watermark --bench image_mark`.
//! Targets (spec, one core): embed ≤ 40 ms; detect ≤ 60 ms without geometric search, ≤ 400 ms
//! with it.

use aigc_watermark::image::{DetectOptions, EmbedOptions, detect_luma_with, embed_luma};
use aigc_watermark::{Payload, WatermarkKey};
use std::time::Instant;

const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (w, h) = (1920usize, 1080usize);
    let mut state = 0x1234_5678_9abc_def1u64;
    let original: Vec<u8> = (0..w * h)
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
    let mut img = original.clone();
    let (mut embed_ms, mut fast_ms, mut full_ms) = (Vec::new(), Vec::new(), Vec::new());
    let fast = DetectOptions {
        geometric_search: false,
    };
    let full = DetectOptions::default();
    for _ in 0..RUNS {
        img.copy_from_slice(&original);
        let t = Instant::now();
        let report = embed_luma(&mut img, w, h, w, payload, &key, &EmbedOptions::default());
        embed_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let d_fast = detect_luma_with(&img, w, h, w, &key, &fast);
        fast_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let d_full = detect_luma_with(&img, w, h, w, &key, &full);
        full_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if let (Ok(r), Ok(a), Ok(b)) = (report, d_fast, d_full) {
            println!(
                "PSNR {:.2} dB; fast: z {:.2} payload ok {}; search: z {:.2} payload ok {} \
                 (scale {:.4}, rotation {:.3}°)",
                r.psnr_db,
                a.z,
                a.payload == Some(payload),
                b.z,
                b.payload == Some(payload),
                b.scale,
                b.rotation_degrees
            );
        }
    }
    println!(
        "1920×1080, {} rayon thread(s): embed median {:.1} ms; detect median {:.1} ms without \
         geometric search, {:.1} ms with it",
        rayon_threads(),
        median(embed_ms),
        median(fast_ms),
        median(full_ms)
    );
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
}
