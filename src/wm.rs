//! `wm embed`, `wm detect`, `robustness` and `keygen --watermark`: the invisible watermark on
//! the command line.

use crate::cli::{KeygenArgs, RobustnessArgs, StoreArgs, WmDetectArgs, WmEmbedArgs};
use crate::output;
use aigc_core::{AigcRecord, sniff};
use aigc_ledger::{Ledger, default_ledger_path};
use aigc_pipeline::robustness::{RobustnessOptions, corpus_files, run_id, run_robustness};
use aigc_pipeline::watermark::{
    Agreement, Modality, WatermarkFinding, audio_strength, find_watermark, image_options,
    mark_audio_file, mark_image,
};
use aigc_pipeline::{OutputOptions, atomic_write_rewrite, inspect_file};
use aigc_sign::{KeyRing, default_key_dir};
use aigc_watermark::{NamedKey, Payload, WatermarkKey, WatermarkKeyFile, resolve_key};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

fn key_dir(stores: &StoreArgs) -> PathBuf {
    stores.keys.clone().unwrap_or_else(default_key_dir)
}

/// The watermark key named on the command line, or the only one in the key directory.
pub fn load_key(spec: Option<&str>, stores: &StoreArgs) -> Result<NamedKey> {
    Ok(resolve_key(spec, &key_dir(stores))?)
}

/// `keygen --watermark`.
pub fn keygen(a: &KeygenArgs) -> Result<ExitCode> {
    let dir = a.out.clone().unwrap_or_else(default_key_dir);
    let name = a
        .name
        .clone()
        .or_else(|| a.provider.clone())
        .unwrap_or_else(|| "default".into());
    let key = WatermarkKeyFile::generate(&dir, &name, a.provider.as_deref())?;
    if a.json {
        output::print_json(&json!({
            "kind": "watermark", "name": key.name, "key_id": key.key_id, "key_file": key.path,
            "provider": key.provider,
        }));
    } else {
        println!("created watermark key {} ({})", key.name, key.key_id);
        println!(
            "  secret: {} (keep private: whoever holds it can embed and detect the mark)",
            key.path.display()
        );
        println!(
            "  label marks images and audio with it; wm detect --key {} finds the mark",
            key.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The record of the label `path` carries, or of a JSON label in it.
fn record_from(path: &Path) -> Result<AigcRecord> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let carried = sniff(&bytes).is_some_and(|f| aigc_meta::carrier_for(f).is_some());
    if carried {
        let report = inspect_file(path, &KeyRing::default(), None);
        if let Some(r) = report
            .labels
            .iter()
            .filter(|l| l.valid)
            .find_map(|l| l.record.clone())
        {
            return Ok(r);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    aigc_core::parse_label_value(text.trim())
        .record
        .with_context(|| {
            format!(
                "{}: holds no valid metadata label and is not an Annex E label (JSON)",
                path.display()
            )
        })
}

/// `wm embed`.
pub fn embed(a: &WmEmbedArgs) -> Result<ExitCode> {
    let (payload, record) = match (&a.payload, &a.record_from) {
        (Some(hex), _) => (
            Payload::from_hex(hex.trim()).with_context(|| {
                format!("--payload {hex:?}: give exactly 16 hex digits (64 bits)")
            })?,
            None,
        ),
        (None, Some(path)) => {
            let r = record_from(path)?;
            (Payload::from_record(&r), Some(r))
        }
        (None, None) => bail!("give --payload HEX or --record-from FILE"),
    };
    let key = load_key(a.key.as_deref(), &a.stores)?;
    let shown = a.input.display().to_string();
    if aigc_pipeline::same_file(&a.input, &a.output) {
        bail!("{shown}: the output is the input; write the marked file elsewhere");
    }
    let bytes = std::fs::read(&a.input).with_context(|| format!("{shown}: cannot read"))?;
    let format = sniff(&bytes)
        .with_context(|| format!("{shown}: unrecognised file format (looked at the content)"))?;
    let summary = match Modality::of(format) {
        Some(Modality::Image) => {
            let options = image_options(a.strength).map_err(anyhow::Error::msg)?;
            let marked = mark_image(&bytes, format, None, payload, &key, &options)
                .with_context(|| shown.clone())?;
            let summary = marked
                .mark
                .map_err(|reason| anyhow::anyhow!("{shown}: cannot mark: {reason}"))?;
            let out = marked.edited.bytes;
            let mut rewrite = aigc_meta::Rewrite::new();
            rewrite.keep(0..out.len());
            atomic_write_rewrite(
                &a.output,
                &out,
                None,
                &rewrite,
                OutputOptions::default(),
                |_| Ok(()),
            )?;
            summary
        }
        Some(Modality::Audio) => {
            let strength = audio_strength(a.strength).map_err(anyhow::Error::msg)?;
            mark_audio_file(&a.input, &a.output, payload, &key, strength)?
        }
        None => bail!(
            "{shown}: {format} files carry no invisible watermark in this version (images and audio do)"
        ),
    };
    if a.json {
        output::print_json(&json!({
            "input": shown, "output": a.output.display().to_string(), "format": format,
            "record": record, "mark": summary,
        }));
    } else {
        let quality = match (summary.psnr_db, summary.snr_db) {
            (Some(p), _) => format!("PSNR(Y) {p:.1} dB"),
            (None, Some(s)) => format!("SNR {s:.1} dB"),
            _ => String::new(),
        };
        println!(
            "marked {shown} -> {} ({format}, payload {}, key {}, {quality}; read back OK)",
            a.output.display(),
            summary.payload,
            key.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The ledger at `path` (or the default) when it exists; never creates one.
fn existing_ledger(path: Option<&Path>) -> Option<Ledger> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(default_ledger_path);
    if !path.is_file() {
        return None;
    }
    match Ledger::open(&path) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!(
                "aigc-mark: warning: ledger {} not used: {e}",
                path.display()
            );
            None
        }
    }
}

/// The valid Annex E records of a file's metadata labels.
fn label_records(path: &Path) -> Vec<AigcRecord> {
    inspect_file(path, &KeyRing::default(), None)
        .labels
        .into_iter()
        .filter(|l| l.valid)
        .filter_map(|l| l.record)
        .collect()
}

/// `wm detect`.
pub fn detect(a: &WmDetectArgs) -> Result<ExitCode> {
    let key = load_key(a.key.as_deref(), &a.stores)?;
    let ledger = existing_ledger(a.stores.ledger.as_deref());
    let files = crate::commands::expand_paths(&a.files)?;
    let mut results = Vec::new();
    let (mut missing, mut errors) = (0usize, 0usize);
    for (path, from_dir) in &files {
        // Files met while walking a directory that cannot carry a mark are skipped.
        if *from_dir && aigc_pipeline::watermark::Modality::of_file(path).is_none() {
            continue;
        }
        let shown = path.display().to_string();
        let records = label_records(path);
        match find_watermark(path, std::slice::from_ref(&key), &records, ledger.as_ref()) {
            Ok(finding) => {
                if finding.detection.payload.is_none() {
                    missing += 1;
                }
                if !a.json {
                    println!(
                        "{shown}  [{}]  {}",
                        finding.detection.modality.word(),
                        if finding.detection.payload.is_some() {
                            "MARK FOUND"
                        } else if finding.detection.present {
                            "MARK PRESENT, payload not recovered"
                        } else {
                            "NO MARK"
                        }
                    );
                    print_finding(&finding, &records);
                }
                results.push(json!({ "path": shown, "watermark": finding }));
            }
            Err(e) => {
                errors += 1;
                if !a.json {
                    eprintln!("aigc-mark: error: {e}");
                }
                results.push(json!({ "path": shown, "error": e.to_string() }));
            }
        }
    }
    if a.json {
        output::print_json(&json!({ "key_id": key.key_id, "files": results }));
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if missing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The indented lines describing a finding (shared by `wm detect` and `inspect`).
pub fn print_finding(f: &WatermarkFinding, records: &[AigcRecord]) {
    let d = &f.detection;
    println!(
        "    watermark: {} under key {} ({}): z {:.2}, false-positive probability {:.2e} ({:.2e} hypotheses{})",
        if d.present { "present" } else { "not found" },
        d.key_name,
        d.key_id,
        d.z,
        d.false_positive_probability,
        d.hypotheses,
        if f.keys_tried > 1 {
            format!(", {} keys", f.keys_tried)
        } else {
            String::new()
        }
    );
    if let Some(p) = &d.payload {
        println!(
            "      payload {p} (check passed; {} of {} coded bits corrected)",
            d.bit_errors.unwrap_or(0),
            d.coded_chips
        );
    }
    if let Some(t) = &d.transform
        && d.present
    {
        println!(
            "      transform: scale {:.3}, rotation {:+.2}°, grid offset ({}, {})",
            t.scale, t.rotation_degrees, t.offset.0, t.offset.1
        );
    }
    if let Some(s) = &d.span {
        println!(
            "      marked span: {:.1}–{:.1} s (speed {:.3}, pitch {:.3})",
            s.start_seconds, s.end_seconds, s.speed, s.pitch
        );
    }
    match &f.label {
        Agreement::Agree => {
            let r = records.iter().find(|r| {
                d.payload
                    .as_deref()
                    .and_then(Payload::from_hex)
                    .is_some_and(|p| p.matches(r))
            });
            match r {
                Some(r) => println!(
                    "      label: AGREES with the metadata label (producer {}, ProduceID {})",
                    r.content_producer, r.produce_id
                ),
                None => println!("      label: AGREES with the metadata label"),
            }
        }
        Agreement::Disagree { label_payload } => println!(
            "      label: DISAGREES: the metadata label implies payload {label_payload} (label changed or swapped)"
        ),
        Agreement::NoLabel => println!("      label: none in the file's metadata"),
        Agreement::NoPayload => {}
    }
    match (&f.ledger, &f.label) {
        (Some(entries), _) if !entries.is_empty() => {
            for e in entries {
                println!(
                    "      ledger #{}: {} {} {} {}",
                    e.id, e.issued_at, e.action, e.format, e.record_json
                );
            }
        }
        (Some(_), Agreement::NoLabel) => println!("      ledger: no entry holds this payload"),
        _ => {}
    }
}

/// Set by SIGINT while `robustness` runs: finish the current file, then print the partial table.
static STOP: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
fn stop_on_interrupt() {
    extern "C" fn on_sigint(_: libc::c_int) {
        // Only an atomic store: async-signal-safe.
        STOP.store(true, Ordering::Relaxed);
    }
    // SAFETY: installs a handler that performs only an atomic store.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

#[cfg(not(unix))]
fn stop_on_interrupt() {}

/// Names this program build (size and modification time of the executable), so a journal is
/// resumed only by the build that wrote it.
fn program_build() -> String {
    let meta = std::env::current_exe().and_then(std::fs::metadata);
    match meta {
        Ok(m) => format!(
            "{} {} {:?}",
            env!("CARGO_PKG_VERSION"),
            m.len(),
            m.modified().ok()
        ),
        Err(_) => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// `robustness`.
pub fn robustness(a: &RobustnessArgs) -> Result<ExitCode> {
    let modality = match a.modality.as_str() {
        "image" => Modality::Image,
        _ => Modality::Audio,
    };
    let key = match (a.key.as_deref(), load_key(a.key.as_deref(), &a.stores)) {
        (_, Ok(k)) => k,
        (None, Err(_)) => {
            // Fixed by the corpus directory rather than random, so that an interrupted run
            // resumes with the same key. It only measures; it labels nothing.
            let dir = a.dir.canonicalize().unwrap_or_else(|_| a.dir.clone());
            let key = WatermarkKey::from_bytes(
                WatermarkKey::from_bytes([0; 32])
                    .derive(&format!("aigc-mark/robustness/throwaway/{}", dir.display())),
            );
            eprintln!(
                "robustness: no watermark key chosen; using a throwaway key {} (made from the directory's path)",
                key.key_id()
            );
            NamedKey {
                key_id: key.key_id(),
                key,
                name: "throwaway".into(),
                provider: None,
                path: PathBuf::new(),
            }
        }
        (Some(_), Err(e)) => return Err(e),
    };
    if !a.dir.is_dir() {
        bail!("{}: not a directory", a.dir.display());
    }
    let files = corpus_files(&a.dir, modality)
        .with_context(|| format!("{}: cannot list", a.dir.display()))?;
    eprintln!(
        "robustness: {} {} files in {}, {} attacks",
        files.len(),
        modality.word(),
        a.dir.display(),
        match (a.quick, a.attacks.is_empty()) {
            (true, true) => "CI-subset".to_string(),
            (false, true) => "all".to_string(),
            (quick, false) => format!(
                "{}\"{}\"",
                if quick { "CI-subset " } else { "" },
                a.attacks.join(",")
            ),
        }
    );
    stop_on_interrupt();
    let mut options = RobustnessOptions {
        modality,
        quick: a.quick,
        key: &key,
        strength: a.strength,
        extra_fp_keys: a.fp_keys,
        only: a.attacks.clone(),
        jobs: a.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
        journal: None,
        build: program_build(),
    };
    let journal = a.journal.clone().unwrap_or_else(|| {
        aigc_core::user_dirs::aigc_mark_dir(aigc_core::user_dirs::UserDir::Cache)
            .join(format!("robustness-{}.jsonl", run_id(&files, &options)))
    });
    if a.fresh {
        match std::fs::remove_file(&journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                bail!("{}: cannot remove the journal: {e}", journal.display())
            }
            _ => {}
        }
    }
    options.journal = Some(&journal);
    let report = run_robustness(&files, &options, &mut |line| eprintln!("{line}"), &STOP)?;
    if report.interrupted {
        eprintln!(
            "robustness: interrupted; run the same command again to resume (journal {})",
            journal.display()
        );
    }
    let markdown = report.to_markdown();
    if let Some(out) = &a.output {
        let mut rewrite = aigc_meta::Rewrite::new();
        rewrite.keep(0..markdown.len());
        atomic_write_rewrite(
            out,
            markdown.as_bytes(),
            None,
            &rewrite,
            OutputOptions::default(),
            |_| Ok(()),
        )?;
        eprintln!("robustness: report written to {}", out.display());
    }
    if a.json {
        output::print_json(&report);
    } else {
        print!("{markdown}");
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
