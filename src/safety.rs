//! The text-safety commands: `check` and `safety lexicon|train|evaluate|bank|eval-corpus|
//! eval-model|report`.

use crate::output::print_json;
use aigc_safety::bank::{BankKind, BankReport, parse_bank, read_banks, validate_banks};
use aigc_safety::chat::{ChatClient, ChatConfig};
use aigc_safety::classifier::{
    Classifier, EvalReport, Featurizer, TrainOptions, evaluate, evaluate_lexicon_only,
    read_labelled, train,
};
use aigc_safety::eval::{
    AnsweredQuestion, CorpusOptions, ModelOptions, Rate, evaluate_corpus, evaluate_model,
    write_atomic,
};
use aigc_safety::judge::{Judge, LocalJudge, RemoteJudge};
use aigc_safety::lexicon::{LexiconSources, parse_lexicon, read_text};
use aigc_safety::report::{Evidence, assess, parse_config};
use aigc_safety::validate::{ValidationReport, validate};
use aigc_safety::{CompiledLexicon, Severity, Verdict, check};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

/// `aigc-mark check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The text to check, or `-` to read standard input.
    #[arg(conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the text from a file (UTF-8).
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Lexicon file(s) to use instead of the bundled seed lexicon (repeat the option).
    #[arg(long, value_name = "FILE")]
    pub lexicon: Vec<PathBuf>,
    /// Extra allow-list file(s), added to the bundled one.
    #[arg(long, value_name = "FILE")]
    pub allow: Vec<PathBuf>,
    /// Findings at or above this severity block (exit 1).
    #[arg(long, default_value = "medium", value_parser = ["low", "medium", "high"])]
    pub block_at: String,
    /// Classifier weights (`safety train -o`); the bundled seed classifier when absent.
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteJudgeArgs,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// An optional remote judge (a guard model behind an OpenAI-compatible chat endpoint). The API
/// key, if needed, is read from the environment variable AIGC_MARK_JUDGE_API_KEY.
#[derive(Debug, Args)]
pub struct RemoteJudgeArgs {
    /// Base URL of the judge's OpenAI-compatible endpoint (e.g. http://host:8000/v1).
    #[arg(long, value_name = "URL", requires = "judge_model")]
    pub judge_endpoint: Option<String>,
    /// Model name of the remote judge.
    #[arg(long, value_name = "NAME", requires = "judge_endpoint")]
    pub judge_model: Option<String>,
}

/// The local judge's inputs.
#[derive(Debug, Args)]
pub struct LocalJudgeArgs {
    /// Lexicon file(s) instead of the bundled seed lexicon.
    #[arg(long, value_name = "FILE")]
    pub lexicon: Vec<PathBuf>,
    /// Extra allow-list file(s).
    #[arg(long, value_name = "FILE")]
    pub allow: Vec<PathBuf>,
    /// Classifier weights; the bundled seed classifier when absent.
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    /// Lexicon hits at or above this severity make a text harmful (lower ones: borderline).
    #[arg(long, default_value = "medium", value_parser = ["low", "medium", "high"])]
    pub harmful_at: String,
    #[command(flatten)]
    pub remote: RemoteJudgeArgs,
}

/// What the two evaluations (corpus, model) share: sampling, the judge and where results go.
#[derive(Debug, Args)]
pub struct EvalRunArgs {
    /// Run even below the standard's sample sizes (the result says so).
    #[arg(long)]
    pub allow_small: bool,
    /// Sampling seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the result (evidence for `safety report`) as JSON.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub judge: LocalJudgeArgs,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

impl EvalRunArgs {
    /// Writes the result to `--output` (if given) and prints it as JSON under `--json`; returns
    /// whether the caller still has to print the human summary.
    fn emit<T: serde::Serialize>(&self, result: &T) -> Result<bool> {
        if let Some(p) = &self.output {
            write_atomic(p, serde_json::to_string_pretty(result)?.as_bytes())?;
        }
        if self.json {
            print_json(result);
        }
        Ok(!self.json)
    }
}

/// `aigc-mark safety …`.
#[derive(Debug, Args)]
pub struct SafetyArgs {
    #[command(subcommand)]
    pub command: SafetyCommand,
}

/// The safety subcommands.
#[derive(Debug, Subcommand)]
pub enum SafetyCommand {
    /// Keyword-library tools.
    Lexicon {
        #[command(subcommand)]
        command: LexiconCommand,
    },
    /// Train the classifier on labelled JSONL ({"text": …, "labels": ["A1.4"]}, [] = safe);
    /// thresholds per risk are chosen on out-of-fold predictions.
    Train {
        /// Labelled data.
        data: PathBuf,
        /// Weights file to write.
        #[arg(short, long, value_name = "FILE", default_value = "classifier.clf")]
        output: PathBuf,
        /// Lexicon file(s) for the lexicon-hit features (default: the seed lexicon).
        #[arg(long, value_name = "FILE")]
        lexicon: Vec<PathBuf>,
        /// Passes over the data.
        #[arg(long, default_value_t = 30)]
        epochs: usize,
        /// Feature slots = 2^bits (10–24).
        #[arg(long, default_value_t = 18)]
        hash_bits: u8,
        /// Longest character n-gram (1–5; 2 scored best out-of-fold on the seed data).
        #[arg(long, default_value_t = 2)]
        max_ngram: u8,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Precision, recall and F1 per risk (and macro / micro averages) on labelled JSONL.
    Evaluate {
        /// Labelled data.
        data: PathBuf,
        /// Weights (default: the bundled seed classifier).
        #[arg(long, value_name = "FILE")]
        classifier: Option<PathBuf>,
        /// Lexicon file(s) (default: the seed lexicon).
        #[arg(long, value_name = "FILE")]
        lexicon: Vec<PathBuf>,
        /// Print machine-readable JSON (the evidence for `safety report`).
        #[arg(long)]
        json: bool,
    },
    /// Test banks.
    Bank {
        #[command(subcommand)]
        command: BankCommand,
    },
    /// Corpus evaluation: a random technical sample (≥ 10 %) judged by keywords + classifier,
    /// qualified rate (≥ 98 %), per-source rates and the 5 % blacklist rule.
    EvalCorpus {
        /// Corpus files: .jsonl with "text" (and "source"), or text with one item per line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Fraction of the corpus to sample (the standard: at least 0.1).
        #[arg(long, default_value_t = 0.1)]
        fraction: f64,
        /// Also draw this many items for manual review (the standard: at least 4000).
        #[arg(long, default_value_t = 0)]
        manual_sample: usize,
        /// Where to write the manual-review sample (JSONL).
        #[arg(long, value_name = "FILE", requires = "manual_sample")]
        manual_out: Option<PathBuf>,
        /// Where to write unqualified and borderline items (JSONL) for manual review.
        #[arg(long, value_name = "FILE")]
        review_out: Option<PathBuf>,
        #[command(flatten)]
        run: EvalRunArgs,
    },
    /// Generated-content and refusal evaluation of a model behind an OpenAI-compatible chat
    /// endpoint (API key, if needed, from AIGC_MARK_API_KEY).
    EvalModel {
        /// Base URL of the model's OpenAI-compatible endpoint (e.g. http://host:8000/v1).
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// Model name.
        #[arg(long, value_name = "NAME")]
        model: String,
        /// Test-bank file(s) (JSONL); the bundled seed bank when absent.
        #[arg(long, value_name = "FILE")]
        bank: Vec<PathBuf>,
        /// Which banks to evaluate.
        #[arg(long, value_delimiter = ',', default_value = "generation,should-refuse,should-not-refuse",
              value_parser = ["generation", "should-refuse", "should-not-refuse"])]
        banks: Vec<String>,
        /// Questions per bank (default: the standard's 1000 / 300 / 300).
        #[arg(long)]
        sample: Option<usize>,
        /// Parallel requests.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Attempts per request (retries with exponential backoff).
        #[arg(long, default_value_t = 4)]
        attempts: u32,
        /// First backoff delay in milliseconds (doubles per retry).
        #[arg(long, default_value_t = 500)]
        backoff_ms: u64,
        /// Timeout per request in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Progress file (JSONL): answered questions are appended and not asked again on rerun.
        #[arg(long, value_name = "FILE")]
        progress: Option<PathBuf>,
        /// Where to write borderline cases (JSONL) for manual review.
        #[arg(long, value_name = "FILE")]
        borderline_out: Option<PathBuf>,
        #[command(flatten)]
        run: EvalRunArgs,
    },
    /// The per-clause assessment report of TC260-003 / GB/T 45654 (Markdown, or HTML when the
    /// output ends in .html).
    Report {
        /// The provider's YAML (see assets/safety/provider.example.yaml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Directory of evidence JSON files (default: evidence_dir from the YAML).
        #[arg(long, value_name = "DIR")]
        evidence: Option<PathBuf>,
        /// Report file (.md or .html).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// `aigc-mark safety bank …`.
#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Check test banks against the standard: generation ≥ 2000 (≥ 50 per A.1/A.2 risk, ≥ 20
    /// per other risk), should-refuse ≥ 500 (≥ 20 per A.1/A.2 risk), should-not-refuse ≥ 500
    /// (≥ 20 per topic); duplicates. Exit 1 when not met.
    Validate {
        /// Bank files (JSONL); the bundled seed bank when none.
        files: Vec<PathBuf>,
        /// Print machine-readable JSON (the evidence for `safety report`).
        #[arg(long)]
        json: bool,
    },
}

/// `aigc-mark safety lexicon …`.
#[derive(Debug, Subcommand)]
pub enum LexiconCommand {
    /// Check lexicon files (together) against TC260-003 clause 8.1: entry length, ≥ 10 000
    /// entries, ≥ 200 per A.1 risk, ≥ 100 per A.2 risk, duplicates, entries that can never
    /// match. Exit 1 when a requirement is not met.
    Validate {
        /// Lexicon files (TSV: term, risk, severity, source, lang).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compile lexicon files (or the seed lexicon) and report pattern and variant counts.
    Compile {
        /// Lexicon files; the bundled seed lexicon when none.
        files: Vec<PathBuf>,
        /// Extra allow-list file(s).
        #[arg(long, value_name = "FILE")]
        allow: Vec<PathBuf>,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

fn load_lexicon(lexicons: &[PathBuf], allow: &[PathBuf]) -> Result<CompiledLexicon> {
    let src = LexiconSources::from_files(lexicons, allow)?;
    Ok(CompiledLexicon::compile(&src)?)
}

/// Runs `check`.
pub fn check_command(a: CheckArgs) -> Result<ExitCode> {
    let text = match (&a.text, &a.file) {
        (_, Some(f)) => {
            let bytes =
                std::fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
            String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", f.display()))?
        }
        (Some(t), None) if t == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("standard input: cannot read UTF-8 text")?;
            s
        }
        (Some(t), None) => t.clone(),
        (None, None) => bail!("give the text, -f FILE, or - to read standard input"),
    };
    let block_at = Severity::parse(&a.block_at).unwrap_or(Severity::Medium);
    let lexicon = load_lexicon(&a.lexicon, &a.allow)?;
    let classifier = load_classifier(a.classifier.as_deref())?;
    let report = check(&lexicon, Some(&classifier), &text, block_at);
    let remote = match remote_judge(&a.remote)? {
        Some(j) => Some(j.judge(&text)?),
        None => None,
    };
    let verdict = match &remote {
        Some(r) if r.harmful && report.verdict == Verdict::Pass => Verdict::Review,
        _ => report.verdict,
    };
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let (Some(r), Some(obj)) = (&remote, v.as_object_mut()) {
            obj.insert("remote_judge".into(), serde_json::to_value(r)?);
            obj.insert("verdict".into(), serde_json::to_value(verdict)?);
        }
        print_json(&v);
    } else {
        println!(
            "verdict: {} ({} lexicon hit(s), {} personal-information item(s); blocking at {})",
            match verdict {
                Verdict::Pass => "pass",
                Verdict::Review => "review",
                Verdict::Block => "block",
            },
            report.findings.len(),
            report.pii.len(),
            block_at.as_str()
        );
        for h in &report.findings {
            println!(
                "  {} {:<6} bytes {}..{}  「{}」 entry 「{}」 ({:?}, {})",
                h.risk,
                h.severity.as_str(),
                h.start,
                h.end,
                h.matched,
                h.term,
                h.variant,
                h.source
            );
        }
        for p in &report.pii {
            println!(
                "  {} {:<6} bytes {}..{}  {:?} {} (score {:.2}; {})",
                p.risk,
                p.severity.as_str(),
                p.finding.start,
                p.finding.end,
                p.finding.kind,
                p.finding.masked,
                p.finding.score,
                p.finding.checks.join(", ")
            );
        }
        for s in &report.classifier {
            println!(
                "  classifier {:<5} score {:.3} (threshold {:.3}){}",
                s.risk,
                s.score,
                s.threshold,
                if s.flagged { " FLAGGED" } else { "" }
            );
        }
        if let Some(r) = &remote {
            println!(
                "  remote judge: {}{} ({})",
                if r.harmful { "harmful" } else { "not harmful" },
                if r.risks.is_empty() {
                    String::new()
                } else {
                    format!(" {}", r.risks.join(","))
                },
                r.detail
            );
        }
    }
    Ok(if verdict == Verdict::Block {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `safety …`.
pub fn safety_command(a: SafetyArgs) -> Result<ExitCode> {
    match a.command {
        SafetyCommand::Lexicon {
            command: LexiconCommand::Validate { files, json },
        } => {
            let mut entries = Vec::new();
            for f in &files {
                entries.extend(parse_lexicon(&read_text(f)?, &f.display().to_string())?);
            }
            let report = validate(&entries);
            if json {
                print_json(&report);
            } else {
                print_validation(&report);
            }
            Ok(if report.meets_standard {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SafetyCommand::Lexicon {
            command: LexiconCommand::Compile { files, allow, json },
        } => {
            let lex = load_lexicon(&files, &allow)?;
            let s = lex.stats();
            if json {
                print_json(&json!({ "stats": s }));
            } else {
                println!(
                    "compiled {} entries into {} patterns ({} pinyin, {} initials, {} homophone; \
                     {} initials spelling English words left out); \
                     {} duplicate and {} unmatchable entries skipped; {} allowed phrases",
                    s.entries,
                    s.patterns,
                    s.pinyin,
                    s.initials,
                    s.homophones,
                    s.initials_stopped,
                    s.duplicates,
                    s.unmatchable,
                    s.allow_phrases
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SafetyCommand::Train {
            data,
            output,
            lexicon,
            epochs,
            hash_bits,
            max_ngram,
            json,
        } => train_command(
            &data,
            &output,
            &lexicon,
            epochs,
            Featurizer {
                hash_bits,
                max_ngram,
            },
            json,
        ),
        SafetyCommand::Evaluate {
            data,
            classifier,
            lexicon,
            json,
        } => evaluate_command(&data, classifier.as_deref(), &lexicon, json),
        SafetyCommand::Bank {
            command: BankCommand::Validate { files, json },
        } => {
            let questions = if files.is_empty() {
                parse_bank(
                    aigc_safety::bank::SEED_BANK,
                    "assets/safety/seed-bank.jsonl",
                )?
            } else {
                read_banks(&files)?
            };
            let report = validate_banks(&questions);
            if json {
                print_json(&report);
            } else {
                print_banks(&report);
            }
            Ok(if report.meets_standard {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SafetyCommand::EvalCorpus {
            files,
            fraction,
            manual_sample,
            manual_out,
            review_out,
            run,
        } => {
            let judge = build_judge(&run.judge)?;
            let opt = CorpusOptions {
                fraction,
                manual: manual_sample,
                allow_small: run.allow_small,
                seed: run.seed,
            };
            let mut review = Vec::new();
            let mut manual = Vec::new();
            let result = evaluate_corpus(
                &files,
                judge.as_ref(),
                &opt,
                |item| review.push(serde_json::to_string(item).unwrap_or_default()),
                |item| {
                    manual.push(
                        json!({"origin": item.origin, "source": item.source, "text": item.text})
                            .to_string(),
                    )
                },
            )?;
            if let Some(p) = &review_out {
                write_lines(p, &review)?;
            }
            if let Some(p) = &manual_out {
                write_lines(p, &manual)?;
            }
            if run.emit(&result)? {
                println!(
                    "{} of {} corpus items sampled ({:.1} %); judge: {}",
                    result.sampled,
                    result.corpus_items,
                    result.fraction * 100.0,
                    result.judge
                );
                print_rate("qualified rate (technical sampling)", &result.qualified);
                for s in &result.per_source {
                    print_rate(
                        &format!("  source {} unqualified", s.source),
                        &s.unqualified,
                    );
                    if s.blacklist {
                        println!("    -> BLACKLIST this source (> 5 % unqualified)");
                    }
                }
                if !result.meets_sample_size {
                    println!("NOTE: sample below the standard's size (--allow-small)");
                }
                println!("{} item(s) for manual review", review.len());
            }
            Ok(
                if result.qualified.meets
                    && result.meets_sample_size
                    && result.blacklisted_sources.is_empty()
                {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
        SafetyCommand::EvalModel {
            endpoint,
            model,
            bank,
            banks,
            sample,
            concurrency,
            attempts,
            backoff_ms,
            timeout,
            progress,
            borderline_out,
            run,
        } => {
            let judge = build_judge(&run.judge)?;
            let mut cfg = ChatConfig::new(&endpoint, &model);
            cfg.api_key = std::env::var("AIGC_MARK_API_KEY").ok();
            cfg.attempts = attempts.max(1);
            cfg.backoff = Duration::from_millis(backoff_ms);
            cfg.timeout = Duration::from_secs(timeout.max(1));
            let client = ChatClient::new(cfg)?;
            let questions = if bank.is_empty() {
                parse_bank(
                    aigc_safety::bank::SEED_BANK,
                    "assets/safety/seed-bank.jsonl",
                )?
            } else {
                read_banks(&bank)?
            };
            let opt = ModelOptions {
                banks: banks.iter().filter_map(|b| BankKind::parse(b)).collect(),
                sample,
                concurrency,
                allow_small: run.allow_small,
                seed: run.seed,
                progress,
            };
            let done = Mutex::new(0usize);
            let quiet = run.json;
            let (result, answered) =
                evaluate_model(&questions, &client, judge.as_ref(), &opt, &|a| {
                    if let Ok(mut n) = done.lock() {
                        *n += 1;
                        if !quiet && *n % 50 == 0 {
                            eprintln!("aigc-mark: {} answers judged", *n);
                        }
                    }
                    let _ = a;
                })?;
            if let Some(p) = &borderline_out {
                let lines: Vec<String> = answered
                    .iter()
                    .filter(|a| a.borderline)
                    .map(|a: &AnsweredQuestion| serde_json::to_string(a).unwrap_or_default())
                    .collect();
                write_lines(p, &lines)?;
            }
            if run.emit(&result)? {
                println!(
                    "model {} at {}; judge: {}",
                    result.model, result.endpoint, result.judge
                );
                for b in &result.banks {
                    println!(
                        "{}: {} evaluated: refused {}, answered safely {}, answered unsafely {}; {} borderline",
                        b.bank.as_str(),
                        b.evaluated,
                        b.refused,
                        b.answered_safely,
                        b.answered_unsafely,
                        b.borderline
                    );
                    print_rate(&format!("  {}", b.measure), &b.rate);
                }
                for s in &result.shortfalls {
                    println!("NOTE: {s}");
                }
            }
            Ok(
                if result.meets_sample_size && result.banks.iter().all(|b| b.rate.meets) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
        SafetyCommand::Report {
            config,
            evidence,
            output,
        } => {
            let text = read_text(&config)?;
            let cfg = parse_config(&text, &config.display().to_string())?;
            let dir = match (evidence, &cfg.evidence_dir) {
                (Some(d), _) => Some(d),
                (None, Some(d)) => Some(config.parent().unwrap_or(Path::new(".")).join(d)),
                (None, None) => None,
            };
            let ev = match &dir {
                Some(d) => Evidence::load(d)?,
                None => Evidence::default(),
            };
            let a = assess(&cfg, &ev);
            let html = output
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
            let body = if html { a.to_html() } else { a.to_markdown() };
            write_atomic(&output, body.as_bytes())?;
            let (c, n, na) = a.counts();
            println!(
                "wrote {}: {} clauses — 符合 {c}, 不符合 {n}, 不适用 {na}",
                output.display(),
                a.results.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_classifier(path: Option<&Path>) -> Result<Classifier> {
    Ok(match path {
        Some(p) => Classifier::load(p)?,
        None => Classifier::seed()?,
    })
}

fn remote_judge(a: &RemoteJudgeArgs) -> Result<Option<RemoteJudge>> {
    match (&a.judge_endpoint, &a.judge_model) {
        (Some(url), Some(model)) => {
            let mut cfg = ChatConfig::new(url, model);
            cfg.api_key = std::env::var("AIGC_MARK_JUDGE_API_KEY").ok();
            Ok(Some(RemoteJudge::new(ChatClient::new(cfg)?)))
        }
        _ => Ok(None),
    }
}

fn build_judge(a: &LocalJudgeArgs) -> Result<Box<dyn Judge>> {
    if let Some(r) = remote_judge(&a.remote)? {
        return Ok(Box::new(r));
    }
    Ok(Box::new(LocalJudge {
        lexicon: load_lexicon(&a.lexicon, &a.allow)?,
        classifier: load_classifier(a.classifier.as_deref())?,
        harmful_at: Severity::parse(&a.harmful_at).unwrap_or(Severity::Medium),
    }))
}

fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    write_atomic(path, body.as_bytes())?;
    Ok(())
}

fn print_rate(label: &str, r: &Rate) {
    println!(
        "{label}: {}/{} = {:.2} % (Wilson 95 % CI {:.2}–{:.2} %; required {}) {}",
        r.count,
        r.total,
        r.rate * 100.0,
        r.ci_low * 100.0,
        r.ci_high * 100.0,
        r.requirement,
        if r.meets { "met" } else { "NOT met" }
    );
}

fn train_command(
    data: &Path,
    output: &Path,
    lexicon: &[PathBuf],
    epochs: usize,
    featurizer: Featurizer,
    json: bool,
) -> Result<ExitCode> {
    let examples = read_labelled(data)?;
    let lex = load_lexicon(lexicon, &[])?;
    let opt = TrainOptions {
        featurizer,
        epochs,
        ..TrainOptions::default()
    };
    let (clf, summary) = train(&examples, &lex, &opt)?;
    write_atomic(output, &clf.to_bytes())?;
    if json {
        print_json(&json!({"output": output.display().to_string(), "summary": summary}));
    } else {
        println!(
            "trained on {} examples ({} safe) -> {} ({} weights, {} bytes); out-of-fold micro-F1 {:.3}",
            summary.examples,
            summary.safe_examples,
            output.display(),
            summary.weights,
            summary.file_bytes,
            summary.validation_micro_f1
        );
        let none: Vec<&str> = summary
            .positives
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(c, _)| *c)
            .collect();
        if !none.is_empty() {
            println!(
                "no positive examples for {} (their threshold stays 1.0: never flagged)",
                none.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn evaluate_command(
    data: &Path,
    classifier: Option<&Path>,
    lexicon: &[PathBuf],
    json: bool,
) -> Result<ExitCode> {
    let examples = read_labelled(data)?;
    let lex = load_lexicon(lexicon, &[])?;
    let clf = load_classifier(classifier)?;
    let report = evaluate(&clf, &lex, &examples);
    let baseline = evaluate_lexicon_only(&lex, &examples);
    let covered = clf.thresholds().iter().filter(|(_, t)| *t < 1.0).count();
    if json {
        print_json(&json!({
            "kind": "classifier-evaluation",
            "data": data.display().to_string(),
            "classifier": classifier.map_or_else(|| "bundled seed classifier".to_string(), |p| p.display().to_string()),
            "risks_covered": covered,
            "report": report,
            "lexicon_only": {"micro": baseline.micro, "macro_avg": baseline.macro_avg},
        }));
    } else {
        print_eval(&report);
        println!(
            "lexicon only (baseline): micro P {:.3} R {:.3} F1 {:.3}; macro F1 {:.3}",
            baseline.micro.precision,
            baseline.micro.recall,
            baseline.micro.f1,
            baseline.macro_avg.f1
        );
        println!("the classifier can flag {covered} of 31 risks");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_eval(r: &EvalReport) {
    println!("{} examples", r.examples);
    println!(
        "{:<6} {:>7} {:>4} {:>4} {:>4} {:>9} {:>7} {:>6}",
        "risk", "support", "tp", "fp", "fn", "precision", "recall", "F1"
    );
    for x in &r.per_risk {
        println!(
            "{:<6} {:>7} {:>4} {:>4} {:>4} {:>9.3} {:>7.3} {:>6.3}",
            x.risk, x.support, x.tp, x.fp, x.fn_, x.prf.precision, x.prf.recall, x.prf.f1
        );
    }
    println!(
        "macro ({} risks with support): P {:.3} R {:.3} F1 {:.3}",
        r.risks_with_support, r.macro_avg.precision, r.macro_avg.recall, r.macro_avg.f1
    );
    println!(
        "micro: P {:.3} R {:.3} F1 {:.3}; exact label-set match {:.3}; safe/unsafe accuracy {:.3}",
        r.micro.precision, r.micro.recall, r.micro.f1, r.exact_match, r.binary_accuracy
    );
}

fn print_banks(r: &BankReport) {
    for b in &r.banks {
        println!(
            "{}: {} questions, the standard asks for {} (short by {}){}",
            b.bank.as_str(),
            b.size,
            b.minimum_size,
            b.size_shortfall,
            if b.meets_standard { " — met" } else { "" }
        );
        let short: Vec<String> = b
            .per_category
            .iter()
            .filter(|c| c.shortfall > 0)
            .map(|c| format!("{} {}/{}", c.category, c.count, c.minimum))
            .collect();
        if !short.is_empty() {
            println!("  below minimum (count/minimum): {}", short.join(", "));
        }
        for d in &b.duplicates {
            println!("  {d}");
        }
    }
    println!(
        "{}",
        if r.meets_standard {
            "the banks meet the test-bank requirements"
        } else {
            "the banks do NOT meet the test-bank requirements"
        }
    );
}

fn print_validation(r: &ValidationReport) {
    println!(
        "{} entries, {} usable; the standard asks for at least {} (short by {})",
        r.entries, r.usable, r.minimum_total, r.total_shortfall
    );
    println!(
        "{:<6} {:>6} {:>8} {:>10}  name",
        "risk", "count", "minimum", "shortfall"
    );
    for c in &r.per_risk {
        println!(
            "{:<6} {:>6} {:>8} {:>10}  {}",
            c.risk,
            c.count,
            if c.minimum > 0 {
                c.minimum.to_string()
            } else {
                "-".into()
            },
            c.shortfall,
            c.name_zh
        );
    }
    for (what, list) in [
        ("too long", &r.too_long),
        ("duplicate", &r.duplicates),
        ("can never match", &r.unmatchable),
    ] {
        for i in list.iter() {
            println!("{}: 「{}」 {what}: {}", i.origin, i.term, i.problem);
        }
    }
    println!(
        "{}",
        if r.meets_standard {
            "meets the keyword-library requirements"
        } else {
            "does NOT meet the keyword-library requirements"
        }
    );
}
