//! The spec's audio attack table over a corpus: a thin wrapper around the library code of
//! `aigc-mark robustness --modality audio` (one attack table, one runner).
//!
//! `bash benches/make-audio-corpus.sh DIR` makes the corpus, then
//! `AUDIO_CORPUS=DIR cargo bench --bench audio_robustness` (add `AUDIO_ATTACKS=ci` for the CI
//! subset, `AUDIO_FP_KEYS=N` for N further keys in the false-positive run, default 40; `AUDIO_JOBS=N`
//! files at a time, default 1).
//! The same run from the command line:
//! `aigc-mark robustness --modality audio DIR [--quick] --fp-keys 40`.

use aigc_pipeline::robustness::{RobustnessOptions, corpus_files, run_robustness};
use aigc_pipeline::watermark::Modality;
use aigc_watermark::{NamedKey, WatermarkKey};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

fn main() {
    let Some(corpus) = std::env::var_os("AUDIO_CORPUS").map(PathBuf::from) else {
        eprintln!(
            "audio_robustness: set AUDIO_CORPUS=DIR (make it with bash benches/make-audio-corpus.sh DIR); skipped"
        );
        return;
    };
    let quick = std::env::var("AUDIO_ATTACKS").is_ok_and(|v| v == "ci");
    let extra_fp_keys = std::env::var("AUDIO_FP_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let key = WatermarkKey::from_bytes([0x42; 32]);
    let key = NamedKey {
        key_id: key.key_id(),
        key,
        name: "bench".into(),
        provider: None,
        path: PathBuf::new(),
    };
    let files = match corpus_files(&corpus, Modality::Audio) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("audio_robustness: {}: {e}", corpus.display());
            std::process::exit(2);
        }
    };
    let options = RobustnessOptions {
        modality: Modality::Audio,
        quick,
        key: &key,
        strength: 1.0,
        extra_fp_keys,
        only: Vec::new(),
        jobs: std::env::var("AUDIO_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        journal: None,
        build: String::new(),
    };
    let stop = AtomicBool::new(false);
    match run_robustness(&files, &options, &mut |line| eprintln!("{line}"), &stop) {
        Ok(report) => print!("{}", report.to_markdown()),
        Err(e) => {
            eprintln!("audio_robustness: {e}");
            std::process::exit(2);
        }
    }
}
