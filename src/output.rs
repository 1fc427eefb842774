//! Human-readable and JSON output.

use aigc_pipeline::{FileReport, LabelOutcome, MarkStatus};
use serde::Serialize;

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("aigc-mark: error: cannot encode JSON: {e}"),
    }
}

fn status(s: &MarkStatus) -> &'static str {
    match s {
        MarkStatus::Applied => "yes",
        MarkStatus::Skipped => "off",
        MarkStatus::Unavailable { .. } => "n/a",
    }
}

/// One line per labelled file.
pub fn label_line(n: usize, total: usize, o: &LabelOutcome) {
    println!(
        "[{n}/{total}] labelled {} -> {} ({}; {}; metadata {}, explicit {}, watermark {}{})",
        o.input,
        o.output,
        o.format,
        o.placement.unwrap_or("no metadata label"),
        status(&o.metadata),
        status(&o.explicit),
        status(&o.watermark),
        if o.replaced_labels > 0 {
            format!("; replaced {} existing", o.replaced_labels)
        } else {
            String::new()
        },
    );
}

/// The inspect table for people.
pub fn inspect_reports(reports: &[FileReport]) {
    for r in reports {
        let format = r.format.map(|f| f.name()).unwrap_or("?");
        println!(
            "{}  [{format}]  {}",
            r.path,
            r.verdict.word().to_uppercase()
        );
        if let Some(e) = &r.error {
            println!("    error: {e}");
        }
        for l in &r.labels {
            let what = match (&l.record, &l.legacy) {
                (Some(rec), _) => format!(
                    "Label {} ({}), producer {}, ProduceID {}, propagator {}, PropagateID {}",
                    rec.label,
                    rec.label.describe(),
                    or_dash(&rec.content_producer),
                    or_dash(&rec.produce_id),
                    or_dash(&rec.content_propagator),
                    or_dash(&rec.propagate_id)
                ),
                (None, Some(leg)) => format!(
                    "legacy 2023 label: ServiceProvider {}, Time {}, ContentID {}",
                    leg.service_provider, leg.time, leg.content_id
                ),
                _ => format!("unreadable value {:?}", truncate(&l.value, 60)),
            };
            println!(
                "    {}{}: {what}",
                l.placement,
                if l.primary {
                    ""
                } else {
                    " (alternative placement)"
                }
            );
            if l.record.is_some() {
                println!(
                    "      signatures: producer {}, propagator {}",
                    l.producer_signature.word(),
                    l.propagator_signature.word()
                );
            }
            for p in &l.problems {
                println!("      {:?}: {} [{}]", p.severity, p.message, p.code);
            }
        }
        if let Some(prompts) = &r.explicit_prompts {
            if prompts.is_empty() {
                println!("    explicit prompt: none found");
            }
            for p in prompts {
                println!(
                    "    explicit {}: line {} ({}), {:?}, wording {}",
                    if p.badge { "badge" } else { "prompt" },
                    p.line,
                    p.location,
                    truncate(&p.text, 60),
                    if p.wording_ok {
                        "meets the rule"
                    } else {
                        "does NOT meet the rule"
                    }
                );
            }
        }
        if let Some(rhythms) = &r.explicit_rhythms {
            if rhythms.is_empty() {
                println!("    audible label: no Morse rhythm 短长 短短 found");
            }
            for m in rhythms {
                println!(
                    "    audible label: Morse rhythm 短长 短短 at {:.2}–{:.2} s ({}), {:.0} Hz, unit {:.0} ms, \
                     {:.1} dBFS, timing within {:.1} ms, {}",
                    m.start_s,
                    m.end_s,
                    m.position,
                    m.tone_hz,
                    m.unit_ms,
                    m.level_dbfs,
                    m.max_timing_error_ms,
                    if m.meets_rules {
                        "meets the rules"
                    } else {
                        "does NOT meet the rules"
                    }
                );
            }
        }
        if let Some(scan) = &r.explicit_image {
            if scan.found {
                println!(
                    "    explicit image label: {:?} at {:?} (plate {}×{} at {},{}), text ≈{:.0} px = {:.1} % of the shorter side ({}), wording {}, match {:.2}",
                    scan.text,
                    scan.position,
                    scan.plate.width,
                    scan.plate.height,
                    scan.plate.x,
                    scan.plate.y,
                    scan.ink_height,
                    scan.ink_share * 100.0,
                    if scan.meets_size {
                        "meets 5 %"
                    } else {
                        "below 5 %"
                    },
                    if scan.meets_wording {
                        "meets the rule"
                    } else {
                        "does NOT meet the rule"
                    },
                    scan.score
                );
            } else {
                println!(
                    "    explicit image label: none found (best match {:.2})",
                    scan.score
                );
            }
        }
        if let Some(stamps) = &r.explicit_stamps {
            if stamps.is_empty() {
                println!("    explicit stamp: none found");
            }
            for s in stamps {
                println!(
                    "    explicit stamp: page {}, {:?}, {:.1} pt, wording {}",
                    s.page,
                    s.text,
                    s.font_size_pt,
                    if s.wording_ok {
                        "meets the rule"
                    } else {
                        "does NOT meet the rule"
                    }
                );
            }
        }
        for p in &r.problems {
            println!("    {:?}: {} [{}]", p.severity, p.message, p.code);
        }
        if let Some(w) = &r.watermark {
            let records: Vec<_> = r.labels.iter().filter_map(|l| l.record.clone()).collect();
            crate::wm::print_finding(w, &records);
        }
        if let Some(entries) = &r.ledger {
            println!(
                "    ledger: {} matching entr{}",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" }
            );
        }
    }
    let count = |v: aigc_pipeline::Verdict| reports.iter().filter(|r| r.verdict == v).count();
    if reports.len() > 1 {
        println!(
            "{} files: {} labelled, {} with problems, {} unlabelled, {} unreadable",
            reports.len(),
            count(aigc_pipeline::Verdict::Labelled),
            count(aigc_pipeline::Verdict::LabelledWithProblems),
            count(aigc_pipeline::Verdict::Unlabelled),
            count(aigc_pipeline::Verdict::Unreadable)
        );
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// The supported-formats table.
pub fn formats(json: bool) {
    let list = aigc_meta::supported_formats();
    if json {
        let rows: Vec<_> = list
            .iter()
            .map(|(f, p)| serde_json::json!({ "format": f, "name": f.name(), "family": f.family(), "placement": p }))
            .collect();
        print_json(&rows);
    } else {
        for (f, p) in list {
            println!("{:<12} {p}", f.name());
        }
    }
}
