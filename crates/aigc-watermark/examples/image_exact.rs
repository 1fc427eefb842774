//! Bit-exactness check of the image mark across code changes: for each image given, prints the
//! detector's full output (every field, floats in full) and, with `--embed`, the SHA-256 of the
//! plane `image_robustness` would mark (same key, payload by the image's position) with the
//! embed report. Run on two builds and `diff` the outputs: a speed-up must print the same.
//!
//! `cargo run --release -p aigc-watermark --example image_exact -- [--embed] IMG...`

#[allow(dead_code)] // shared with the other examples; this one needs only `load_luma`
mod common;

use aigc_watermark::image::{EmbedOptions, detect_luma, embed_luma};
use aigc_watermark::{Payload, WatermarkKey};
use common::load_luma;
use sha2::{Digest, Sha256};
use std::path::Path;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let embed = args.iter().any(|a| a == "--embed");
    let key = WatermarkKey::from_bytes(*b"aigc-mark image robustness key!!");
    for (i, path) in args.iter().filter(|a| *a != "--embed").enumerate() {
        let (y, w, h) = load_luma(Path::new(path))?;
        let d = detect_luma(&y, w, h, w, &key).map_err(|e| format!("{path}: {e}"))?;
        println!("{path} detect {d:?}");
        if embed {
            let mut marked = y.clone();
            let payload = Payload(0x5eed_0000_0000_0000 | i as u64);
            let r = embed_luma(
                &mut marked,
                w,
                h,
                w,
                payload,
                &key,
                &EmbedOptions::default(),
            )
            .map_err(|e| format!("{path}: {e}"))?;
            let hash = hex::encode(Sha256::digest(&marked));
            println!("{path} embed {hash} {r:?}");
        }
    }
    Ok(())
}
