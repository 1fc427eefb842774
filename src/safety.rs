//! The text-safety commands: `check` and `safety lexicon validate|compile`.

use crate::output::print_json;
use aigc_safety::lexicon::{LexiconSources, parse_lexicon, read_text};
use aigc_safety::validate::{ValidationReport, validate};
use aigc_safety::{CompiledLexicon, Severity, Verdict, check};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
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
    let report = check(&lexicon, &text, block_at);
    if a.json {
        print_json(&report);
    } else {
        println!(
            "verdict: {} ({} lexicon hit(s), {} personal-information item(s); blocking at {})",
            match report.verdict {
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
    }
    Ok(if report.verdict == Verdict::Block {
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
                    "compiled {} entries into {} patterns ({} pinyin, {} initials, {} homophone); \
                     {} duplicate and {} unmatchable entries skipped; {} allowed phrases",
                    s.entries,
                    s.patterns,
                    s.pinyin,
                    s.initials,
                    s.homophones,
                    s.duplicates,
                    s.unmatchable,
                    s.allow_phrases
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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
