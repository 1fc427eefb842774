//! What each subcommand does.

use crate::cli::{Cli, Command, InspectArgs, KeygenArgs, LabelArgs, LedgerArgs, StoreArgs};
use crate::output;
use aigc_core::Label;
use aigc_explicit::audio::{AudioLabelOptions, AudioPosition, AudioPrompt};
use aigc_explicit::audio_morse::RhythmSpec;
use aigc_explicit::audio_speech::SpeechSource;
use aigc_explicit::pdf_stamp::StampPages;
use aigc_explicit::text::{TextPosition, TextPrompt};
use aigc_explicit::{LabelSpec, Position};
use aigc_ledger::{Ledger, default_ledger_path};
use aigc_pipeline::{
    ExplicitOptions, LabelRequest, LabelRole, MarkPlan, WatermarkSettings, inspect_file, label_file,
};
use aigc_sign::{Algorithm, KeyFile, KeyRing, SecretKey, default_key_dir, load_secret};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Label(a) => label(*a),
        Command::Inspect(a) => inspect(a),
        Command::Keygen(a) if a.watermark => crate::wm::keygen(&a),
        Command::Keygen(a) => keygen(a),
        Command::Wm(crate::cli::WmCommand::Embed(a)) => crate::wm::embed(&a),
        Command::Wm(crate::cli::WmCommand::Detect(a)) => crate::wm::detect(&a),
        Command::Robustness(a) => crate::wm::robustness(&a),
        Command::Ledger(a) => ledger(a),
        Command::Formats(a) => {
            output::formats(a.json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(a) => crate::safety::check_command(a),
        Command::Safety(a) => crate::safety::safety_command(a),
    }
}

fn key_dir(stores: &StoreArgs) -> PathBuf {
    stores.keys.clone().unwrap_or_else(default_key_dir)
}

fn open_ledger(path: Option<&Path>) -> Result<Ledger> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(default_ledger_path);
    Ledger::open(&path).with_context(|| format!("cannot open the ledger {}", path.display()))
}

/// A file to process and where its output goes.
struct Job {
    input: PathBuf,
    output: PathBuf,
    from_dir: bool,
}

/// A file named on the command line or found in a directory.
struct Found {
    path: PathBuf,
    /// Path relative to the directory it was found in (or its file name).
    rel: PathBuf,
    /// Whether it came from walking a directory (then unsupported files are skipped, not errors).
    from_dir: bool,
}

/// Expands directories (recursively, sorted) into files, each with whether it came from a
/// directory walk.
pub fn expand_paths(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>> {
    Ok(expand(inputs)?
        .into_iter()
        .map(|f| (f.path, f.from_dir))
        .collect())
}

/// Expands directories (recursively, sorted) into files, keeping their relative paths.
fn expand(inputs: &[PathBuf]) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .with_context(|| format!("{}: cannot read", input.display()))?;
        if meta.is_dir() {
            let mut stack = vec![input.clone()];
            let mut files = Vec::new();
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)
                    .with_context(|| format!("{}: cannot list", dir.display()))?
                {
                    let path = entry?.path();
                    let hidden = path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                    if hidden {
                        continue;
                    }
                    if path.is_dir() {
                        stack.push(path);
                    } else {
                        files.push(path);
                    }
                }
            }
            files.sort();
            for f in files {
                let rel = f
                    .strip_prefix(input)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| f.clone());
                out.push(Found {
                    path: f,
                    rel,
                    from_dir: true,
                });
            }
        } else {
            let name = input
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| input.clone());
            out.push(Found {
                path: input.clone(),
                rel: name,
                from_dir: false,
            });
        }
    }
    Ok(out)
}

fn plan_jobs(a: &LabelArgs) -> Result<Vec<Job>> {
    let files = expand(&a.inputs)?;
    if a.in_place {
        return Ok(files
            .into_iter()
            .map(|f| Job {
                output: f.path.clone(),
                input: f.path,
                from_dir: f.from_dir,
            })
            .collect());
    }
    let Some(output) = &a.output else {
        bail!("give --output (-o) or --in-place")
    };
    let to_dir = files.len() > 1 || a.inputs.iter().any(|i| i.is_dir()) || output.is_dir();
    if !to_dir {
        return Ok(files
            .into_iter()
            .map(|f| Job {
                input: f.path,
                output: output.clone(),
                from_dir: f.from_dir,
            })
            .collect());
    }
    if output.exists() && !output.is_dir() {
        bail!(
            "{}: several inputs need --output to be a directory",
            output.display()
        );
    }
    Ok(files
        .into_iter()
        .map(|f| Job {
            input: f.path,
            output: output.join(f.rel),
            from_dir: f.from_dir,
        })
        .collect())
}

/// The explicit label's wording and positions from the command line, checked before any file.
fn explicit_options(a: &LabelArgs) -> Result<ExplicitOptions> {
    let position = Position::parse(&a.position).context("--position")?;
    let text_position = TextPosition::parse(&a.text_position).context("--text-position")?;
    let image = match &a.text {
        Some(t) => LabelSpec::new(t, position).context("--text")?,
        None => {
            let mut spec = LabelSpec::default_label();
            spec.position = position;
            spec
        }
    };
    let text = match (&a.text, a.badge) {
        (_, true) => TextPrompt::badge(text_position),
        (Some(t), false) => TextPrompt::new(t, text_position).context("--text")?,
        (None, false) => TextPrompt::default_at(text_position),
    };
    let document = match (&a.text, a.badge) {
        (_, true) => TextPrompt::badge(text_position),
        (Some(t), false) => TextPrompt::new(t, text_position).context("--text")?,
        (None, false) => aigc_explicit::docx::default_document_prompt(text_position),
    };
    let pdf_pages = StampPages::parse(&a.pages).context("--pages")?;
    Ok(ExplicitOptions {
        image,
        text,
        document,
        pdf_pages,
        audio: audio_options(a)?,
    })
}

/// The audible label's options from the command line.
fn audio_options(a: &LabelArgs) -> Result<AudioLabelOptions> {
    let speech = match &a.speech_file {
        Some(path) => {
            if !path.is_file() {
                bail!("--speech-file {}: no such file", path.display());
            }
            SpeechSource::File(path.clone())
        }
        None => SpeechSource::parse_lang(&a.speech_lang).context("--speech-lang")?,
    };
    Ok(AudioLabelOptions {
        prompt: AudioPrompt::parse(&a.audio_prompt).context("--audio-prompt")?,
        positions: AudioPosition::parse_list(&a.audio_position).context("--audio-position")?,
        rhythm: RhythmSpec::new(a.morse_unit_ms, a.tone_hz).context("--tone-hz/--morse-unit-ms")?,
        speech,
    })
}

fn label(a: LabelArgs) -> Result<ExitCode> {
    let label = a.label.as_deref().map(|l| l.parse::<Label>()).transpose()?;
    let role = if a.propagate {
        LabelRole::Propagate {
            propagator: a.propagator.clone().unwrap_or_default(),
            propagate_id: a.propagate_id.clone().unwrap_or_default(),
            label,
        }
    } else {
        LabelRole::Produce {
            producer: a.producer.clone().unwrap_or_default(),
            produce_id: a.produce_id.clone(),
            label: label.unwrap_or(Label::Generated),
        }
    };
    let jobs = plan_jobs(&a)?;
    if a.produce_id.is_some() && jobs.len() > 1 {
        bail!(
            "--produce-id names one piece of content; label several files without it (IDs are generated)"
        );
    }
    let sign = match &a.sign {
        Some(spec) => Some(
            load_secret(spec, &key_dir(&a.stores))
                .with_context(|| "cannot load the signing key")?,
        ),
        None => None,
    };
    let plan = MarkPlan {
        metadata: !a.no_metadata,
        // A platform propagating a label adds its fields; the visible label is the producer's
        // (or the platform's own interface notice), so none is drawn into the file by default.
        explicit: !(a.no_explicit || a.metadata_only || a.propagate),
        // Likewise the producer's watermark: the signal is not touched when propagating.
        watermark: !(a.no_watermark || a.metadata_only || a.propagate),
    };
    let watermark = watermark_settings(&a, plan.watermark)?;
    let explicit = explicit_options(&a)?;
    let request = LabelRequest {
        role,
        plan,
        sign,
        require_codes: !a.allow_names,
        explicit,
        watermark,
    };
    let ledger = if a.no_ledger {
        None
    } else {
        Some(open_ledger(a.stores.ledger.as_deref())?)
    };
    let keys = KeyRing::default();
    let total = jobs.len();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        // A format without a metadata carrier cannot show it was labelled; its output exists
        // only once complete (writes are atomic), so existing is enough.
        if a.resume && job.output.exists() && {
            let r = inspect_file(&job.output, &keys, None);
            r.has_valid_label()
                || r.format
                    .is_some_and(|f| aigc_meta::carrier_for(f).is_none())
        } {
            if !a.json && !a.quiet {
                println!(
                    "[{}/{total}] skipped {} (output already labelled)",
                    i + 1,
                    job.input.display()
                );
            }
            skipped.push(job.output.display().to_string());
            continue;
        }
        if job.from_dir
            && let Some(reason) = unsupported(&job.input, plan.explicit)
        {
            if !a.json && !a.quiet {
                println!(
                    "[{}/{total}] skipped {} ({reason})",
                    i + 1,
                    job.input.display()
                );
            }
            skipped.push(job.input.display().to_string());
            continue;
        }
        if let Some(dir) = job.output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create directory", dir.display()))?;
        }
        match label_file(
            &job.input,
            &job.output,
            &request,
            ledger.as_ref(),
            a.in_place,
        ) {
            Ok(outcome) => {
                if !a.json && !a.quiet {
                    output::label_line(i + 1, total, &outcome);
                }
                results.push(outcome);
            }
            Err(e) => {
                if !a.json {
                    eprintln!("[{}/{total}] error: {e}", i + 1);
                }
                errors.push(
                    json!({ "path": job.input.display().to_string(), "error": e.to_string() }),
                );
            }
        }
    }
    if a.json {
        output::print_json(&json!({ "labelled": results, "skipped": skipped, "errors": errors }));
    } else if !a.quiet && total > 1 {
        println!(
            "{} labelled, {} skipped, {} failed",
            results.len(),
            skipped.len(),
            errors.len()
        );
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The watermark key for `label`: a named key must load (exit 2 otherwise); without one, the
/// only key in the key directory is used, and with none the mark is reported unavailable.
fn watermark_settings(a: &LabelArgs, wanted: bool) -> Result<WatermarkSettings> {
    if !wanted {
        return Ok(WatermarkSettings::without_key("switched off"));
    }
    aigc_pipeline::watermark::image_options(a.wm_strength)
        .and_then(|_| aigc_pipeline::watermark::audio_strength(a.wm_strength))
        .map_err(|e| anyhow::anyhow!("--wm-strength: {e}"))?;
    let key = match crate::wm::load_key(a.wm_key.as_deref(), &a.stores) {
        Ok(k) => Ok(k),
        Err(e) if a.wm_key.is_some() => return Err(e.context("--wm-key")),
        Err(e) => match e.downcast_ref::<aigc_watermark::KeyFileError>() {
            Some(aigc_watermark::KeyFileError::NoKey { .. }) => Err(format!(
                "no watermark key: create one with `aigc-mark keygen --watermark` (key directory {})",
                key_dir(&a.stores).display()
            )),
            _ => return Err(e),
        },
    };
    Ok(WatermarkSettings {
        key,
        strength: a.wm_strength,
    })
}

/// Why a file found in a directory cannot be labelled, judged from its first bytes.
fn unsupported(path: &Path, explicit: bool) -> Option<String> {
    let mut head = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    use std::io::Read;
    // Sniffing needs the whole file only for ZIP packages; their central directory is at the end.
    let len = file.metadata().ok()?.len();
    if len <= 64 << 20 {
        file.take(len).read_to_end(&mut head).ok()?;
    } else {
        file.take(1 << 16).read_to_end(&mut head).ok()?;
    }
    match aigc_core::sniff(&head) {
        None if len <= 64 << 20 => Some("not a supported format".into()),
        None => None,
        Some(f) if explicit && aigc_explicit::image_file::supports(f) => None,
        Some(f) if aigc_meta::carrier_for(f).is_none() => {
            Some(format!("{f} files cannot carry a metadata label"))
        }
        Some(_) => None,
    }
}

fn inspect(a: InspectArgs) -> Result<ExitCode> {
    let mut keys = KeyRing::default();
    let warnings = keys.load_dir(&key_dir(&a.stores));
    for w in warnings {
        eprintln!("aigc-mark: warning: skipped key file: {w}");
    }
    let ledger = if a.with_ledger {
        Some(open_ledger(a.stores.ledger.as_deref())?)
    } else {
        None
    };
    let files = expand(&a.files)?;
    let wm_keys = if a.no_watermark {
        Vec::new()
    } else if let Some(spec) = &a.wm_key {
        vec![crate::wm::load_key(Some(spec), &a.stores).context("--wm-key")?]
    } else {
        let (keys, problems) = aigc_watermark::list_keys(&key_dir(&a.stores));
        for p in problems {
            eprintln!("aigc-mark: warning: skipped watermark key file: {p}");
        }
        keys
    };
    let reports: Vec<_> = files
        .iter()
        .map(|f| {
            let mut r = inspect_file(&f.path, &keys, ledger.as_ref());
            let marked_kind = r
                .format
                .is_some_and(|f| aigc_pipeline::watermark::Modality::of(f).is_some());
            if marked_kind && !wm_keys.is_empty() {
                let records: Vec<_> = r
                    .labels
                    .iter()
                    .filter(|l| l.valid)
                    .filter_map(|l| l.record.clone())
                    .collect();
                match aigc_pipeline::watermark::find_watermark(
                    &f.path,
                    &wm_keys,
                    &records,
                    ledger.as_ref(),
                ) {
                    Ok(w) => r.watermark = Some(w),
                    Err(e) => eprintln!("aigc-mark: warning: watermark search: {e}"),
                }
            }
            r
        })
        .collect();
    if a.json {
        output::print_json(&json!({ "files": reports }));
    } else {
        output::inspect_reports(&reports);
    }
    let unreadable = reports.iter().any(|r| r.error.is_some());
    let failed = a.require_label && reports.iter().any(|r| !r.has_valid_label());
    Ok(if unreadable {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn keygen(a: KeygenArgs) -> Result<ExitCode> {
    let alg: Algorithm = a.algorithm.parse()?;
    if let Some(p) = &a.provider {
        aigc_core::ProviderCode::parse(p).with_context(|| format!("--provider {p}"))?;
    }
    let key = SecretKey::generate(alg)?;
    let dir = a.out.clone().unwrap_or_else(default_key_dir);
    let (secret, public) = KeyFile::save_pair(&key, a.provider.as_deref(), &dir)?;
    let id = key.public_key().key_id();
    if a.json {
        output::print_json(&json!({
            "key_id": id, "algorithm": alg, "secret_key_file": secret, "public_key_file": public,
        }));
    } else {
        println!("created {alg} key {id}");
        println!(
            "  secret: {} (keep private; sign with --sign {id})",
            secret.display()
        );
        println!(
            "  public: {} (give to verifiers: inspect --keys DIR)",
            public.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn ledger(a: LedgerArgs) -> Result<ExitCode> {
    let ledger = open_ledger(a.ledger.as_deref())?;
    let entries = if let Some(id) = &a.id {
        ledger.find_by_id(id)?
    } else if let Some(h) = &a.hash {
        ledger.find_by_hash(h)?
    } else if let Some(p) = &a.payload {
        ledger.find_by_payload(p)?
    } else if let Some(f) = &a.file {
        let report = inspect_file(f, &KeyRing::default(), Some(&ledger));
        if let Some(e) = &report.error {
            bail!("{}: {e}", f.display());
        }
        report.ledger.unwrap_or_default()
    } else {
        let count = ledger.count()?;
        if a.json {
            output::print_json(
                &json!({ "entries": count, "schema_version": ledger.schema_version()? }),
            );
        } else {
            println!(
                "{count} labels recorded (schema version {})",
                ledger.schema_version()?
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    if a.json {
        output::print_json(&json!({ "entries": entries }));
    } else if entries.is_empty() {
        println!("no entries");
    } else {
        for e in &entries {
            println!(
                "#{} {} {} {} {}",
                e.id, e.issued_at, e.action, e.format, e.record_json
            );
            println!(
                "    output sha256 {}  signer {}",
                e.output_sha256,
                e.signer_key_id.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(if entries.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
