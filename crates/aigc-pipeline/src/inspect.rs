//! The inspect journey: every label a file holds, checked against Annex E, with signatures.

use crate::io::InputFile;
use aigc_core::{
    AigcRecord, Format, FormatFamily, LabelForm, LegacyRecord, Problem, Severity, sniff,
};
use aigc_explicit::audio_detect::{FoundRhythm, find_rhythm_file};
use aigc_explicit::detect::{DEFAULT_TEXTS, ImageLabelScan, scan_image_file};
use aigc_explicit::pdf_stamp::FoundStamp;
use aigc_explicit::text::{FoundPrompt, find_prompts};
use aigc_ledger::{Ledger, LedgerEntry};
use aigc_meta::carrier_for;
use aigc_sign::{KeyRing, SignatureState, verify_record};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// One label found in a file.
#[derive(Debug, Clone, Serialize)]
pub struct LabelFinding {
    /// Where it was found.
    pub placement: String,
    /// Whether that is the placement the guides name first.
    pub primary: bool,
    /// The value as stored.
    pub value: String,
    /// Wrapped, bare, legacy or unrecognised.
    pub form: LabelForm,
    /// The Annex E record, when it is one.
    pub record: Option<AigcRecord>,
    /// The 2023 legacy record, when it is one.
    pub legacy: Option<LegacyRecord>,
    /// Departures from Annex E.
    pub problems: Vec<Problem>,
    /// ReservedCode1.
    pub producer_signature: SignatureState,
    /// ReservedCode2.
    pub propagator_signature: SignatureState,
    /// A usable Annex E label with no errors and no invalid signature.
    pub valid: bool,
}

/// The overall result for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Exactly one valid label.
    Labelled,
    /// Labels found, but with errors (several labels, invalid values, bad signature…).
    LabelledWithProblems,
    /// No label at all.
    Unlabelled,
    /// The file could not be read or is of no supported format.
    Unreadable,
}

impl Verdict {
    /// A short word for tables.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Labelled => "labelled",
            Verdict::LabelledWithProblems => "problems",
            Verdict::Unlabelled => "unlabelled",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// The inspect report of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path as given.
    pub path: String,
    /// The detected format.
    pub format: Option<Format>,
    /// File size.
    pub bytes: u64,
    /// Overall result.
    pub verdict: Verdict,
    /// Every label found, in file order.
    pub labels: Vec<LabelFinding>,
    /// Problems of the file as a whole (several labels, disagreeing labels, …).
    pub problems: Vec<Problem>,
    /// Why the file could not be read, when it could not.
    pub error: Option<String>,
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    /// Explicit prompts found in text, Markdown, HTML and DOCX (paragraphs count as lines);
    /// None for other formats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_prompts: Option<Vec<FoundPrompt>>,
    /// Morse 「短长 短短」 rhythms found in audio by tone detection (None for other formats, or
    /// when the signal was not analysed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_rhythms: Option<Vec<FoundRhythm>>,
    /// Our visible stamps found on PDF pages (None for other formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_stamps: Option<Vec<FoundStamp>>,
    /// The search for our drawn label on images (None for other formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_image: Option<ImageLabelScan>,
    /// Ledger entries matching the labels' IDs or the file's hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<Vec<LedgerEntry>>,
    /// The invisible watermark's verdict (images and audio, when a watermark key was available;
    /// filled by the caller with [`crate::watermark::find_watermark`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<crate::watermark::WatermarkFinding>,
}

impl FileReport {
    fn unreadable(path: &str, bytes: u64, error: String) -> Self {
        Self {
            path: path.to_string(),
            format: None,
            bytes,
            verdict: Verdict::Unreadable,
            labels: Vec::new(),
            problems: Vec::new(),
            error: Some(error),
            sha256: None,
            explicit_prompts: None,
            explicit_rhythms: None,
            explicit_stamps: None,
            explicit_image: None,
            ledger: None,
            watermark: None,
        }
    }

    /// Whether the file holds exactly one valid label.
    pub fn has_valid_label(&self) -> bool {
        self.verdict == Verdict::Labelled
    }
}

/// Inspects bytes already in memory; `path` is only used in the report.
pub fn inspect_bytes(bytes: &[u8], keys: &KeyRing, path: &str) -> FileReport {
    let size = bytes.len() as u64;
    let Some(format) = sniff(bytes) else {
        return FileReport::unreadable(
            path,
            size,
            "unrecognised file format (looked at the content, not the name)".into(),
        );
    };
    // A format without a metadata carrier (BMP) is still readable: it is searched for drawn
    // labels and the watermark, and reported unlabelled rather than unreadable.
    let carrier = carrier_for(format);
    let found = match carrier.map(|c| c.read(bytes)) {
        None => Vec::new(),
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            let mut r = FileReport::unreadable(path, size, e.to_string());
            r.format = Some(format);
            return r;
        }
    };
    let labels: Vec<LabelFinding> = found
        .into_iter()
        .map(|f| {
            let (producer_signature, propagator_signature) = match &f.parsed.record {
                Some(r) => verify_record(r, keys),
                None => (SignatureState::Absent, SignatureState::Absent),
            };
            let mut problems = f.parsed.problems.clone();
            for (who, state) in [
                ("producer", &producer_signature),
                ("propagator", &propagator_signature),
            ] {
                match state {
                    SignatureState::Invalid { key_id, .. } => problems.push(Problem::error(
                        "signature-invalid",
                        format!("the {who} signature (key {key_id}) does not match the label"),
                    )),
                    SignatureState::Malformed { detail } => problems.push(Problem::error(
                        "signature-malformed",
                        format!("the {who} signature is malformed: {detail}"),
                    )),
                    _ => {}
                }
            }
            let valid = f.parsed.record.is_some()
                && !problems.iter().any(|p| p.severity == Severity::Error);
            LabelFinding {
                placement: f.placement,
                primary: f.primary,
                value: f.value,
                form: f.parsed.form,
                record: f.parsed.record,
                legacy: f.parsed.legacy,
                problems,
                producer_signature,
                propagator_signature,
                valid,
            }
        })
        .collect();
    let mut problems = Vec::new();
    if carrier.is_none() {
        problems.push(Problem::warning(
            "no-metadata-carrier",
            format!("{format} files cannot carry a metadata label (GB 45438 implicit label)"),
        ));
    }
    if labels.len() > 1 {
        problems.push(Problem::error(
            "multiple-labels",
            format!(
                "{} labels found; GB 45438 6.1 c) allows exactly one per file",
                labels.len()
            ),
        ));
        let records: Vec<_> = labels.iter().filter_map(|l| l.record.as_ref()).collect();
        if records.windows(2).any(|w| w[0] != w[1]) {
            problems.push(Problem::error(
                "labels-disagree",
                "the labels found do not say the same thing",
            ));
        }
    }
    if !labels.is_empty() && !labels.iter().any(|l| l.primary) {
        problems.push(Problem::warning(
            "alternative-placement",
            format!(
                "no label in the primary placement ({})",
                carrier.map_or("", |c| c.placement())
            ),
        ));
    }
    let explicit_prompts = match format {
        Format::Text | Format::Markdown | Format::Html => {
            Some(find_prompts(&String::from_utf8_lossy(bytes)))
        }
        Format::Docx => match aigc_explicit::docx::find_docx_prompts(bytes) {
            Ok(found) => Some(found),
            Err(e) => {
                problems.push(Problem::warning(
                    "explicit-unreadable",
                    format!("the document body could not be searched for prompts: {e}"),
                ));
                None
            }
        },
        _ => None,
    };
    let explicit_stamps = match format {
        Format::Pdf => match aigc_explicit::pdf_stamp::find_pdf_stamps(bytes) {
            Ok(found) => Some(found),
            Err(e) => {
                problems.push(Problem::warning(
                    "explicit-unreadable",
                    format!("the pages could not be searched for a stamp: {e}"),
                ));
                None
            }
        },
        _ => None,
    };
    let explicit_image = if aigc_explicit::image_file::supports(format) {
        match scan_image_file(bytes, format, &DEFAULT_TEXTS) {
            Ok(scan) => {
                if scan.found && !scan.meets_size {
                    problems.push(Problem::warning(
                        "explicit-size",
                        format!(
                            "the drawn label's text is {:.1} px high, {:.1} % of the shorter side (GB 45438 asks for 5 %)",
                            scan.ink_height,
                            scan.ink_share * 100.0
                        ),
                    ));
                }
                Some(scan)
            }
            Err(e) => {
                problems.push(Problem::warning(
                    "explicit-unreadable",
                    format!("the pixels could not be searched for a drawn label: {e}"),
                ));
                None
            }
        }
    } else {
        None
    };
    for s in explicit_stamps.iter().flatten() {
        if !s.wording_ok {
            problems.push(Problem::warning(
                "explicit-wording",
                format!(
                    "the stamp on page {} ({:?}) lacks 人工智能/AI or 生成/合成 (GB 45438 chapter 5)",
                    s.page, s.text
                ),
            ));
        }
        if !s.legible {
            problems.push(Problem::warning(
                "explicit-size",
                format!(
                    "the stamp on page {} is set in {:.1} pt, below the {} pt legibility floor",
                    s.page,
                    s.font_size_pt,
                    aigc_explicit::pdf_stamp::MIN_FONT_SIZE_PT
                ),
            ));
        }
    }
    for p in explicit_prompts.iter().flatten().filter(|p| !p.wording_ok) {
        problems.push(Problem::warning(
            "explicit-wording",
            format!(
                "the prompt on line {} ({:?}) lacks 人工智能/AI or 生成/合成 (GB 45438 chapter 5)",
                p.line, p.text
            ),
        ));
    }
    let verdict = match labels.as_slice() {
        [] => Verdict::Unlabelled,
        [one] if one.valid && !problems.iter().any(|p| p.severity == Severity::Error) => {
            Verdict::Labelled
        }
        _ => Verdict::LabelledWithProblems,
    };
    FileReport {
        path: path.to_string(),
        format: Some(format),
        bytes: size,
        verdict,
        labels,
        problems,
        error: None,
        sha256: Some(hex::encode(Sha256::digest(bytes))),
        explicit_prompts,
        explicit_rhythms: None,
        explicit_stamps,
        explicit_image,
        ledger: None,
        watermark: None,
    }
}

/// Looks for the Morse rhythm in an audio file's signal (streaming decode) and notes rhythms that
/// break the rules; a signal that cannot be decoded is a warning, not a failure.
fn find_audible_label(path: &Path, report: &mut FileReport) {
    match find_rhythm_file(path) {
        Ok(found) => {
            for r in found.iter().filter(|r| !r.meets_rules) {
                report.problems.push(Problem::warning(
                    "explicit-rhythm",
                    format!(
                        "the Morse rhythm at {:.2} s does not meet the rules: {}",
                        r.start_s,
                        r.notes.join("; ")
                    ),
                ));
            }
            report.explicit_rhythms = Some(found);
        }
        Err(e) => report.problems.push(Problem::warning(
            "explicit-audio-unreadable",
            format!("the audio signal was not analysed for an audible label: {e}"),
        )),
    }
}

/// Inspects a file; errors are part of the report, never a panic or an early return.
pub fn inspect_file(path: &Path, keys: &KeyRing, ledger: Option<&Ledger>) -> FileReport {
    let shown = path.display().to_string();
    let input = match InputFile::open(path) {
        Ok(i) => i,
        Err(e) => {
            let msg = e.to_string();
            let msg = msg
                .strip_prefix(&format!("{shown}: "))
                .unwrap_or(&msg)
                .to_string();
            return FileReport::unreadable(&shown, 0, msg);
        }
    };
    let mut report = inspect_bytes(input.bytes(), keys, &shown);
    if report
        .format
        .is_some_and(|f| f.family() == FormatFamily::Audio)
    {
        find_audible_label(path, &mut report);
    }
    if let Some(ledger) = ledger {
        let mut entries: Vec<LedgerEntry> = Vec::new();
        let mut lookups = Vec::new();
        for r in report.labels.iter().filter_map(|l| l.record.as_ref()) {
            lookups.push(ledger.find_by_id(&r.produce_id));
        }
        if let Some(h) = &report.sha256 {
            lookups.push(ledger.find_by_hash(h));
        }
        for found in lookups {
            match found {
                Ok(list) => {
                    for e in list {
                        if !entries.iter().any(|x| x.id == e.id) {
                            entries.push(e);
                        }
                    }
                }
                Err(e) => report
                    .problems
                    .push(Problem::warning("ledger-unavailable", e.to_string())),
            }
        }
        report.ledger = Some(entries);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_without_a_carrier_is_unlabelled_not_unreadable() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/media/image.bmp");
        let bytes = std::fs::read(path).expect("bundled BMP sample");
        let report = inspect_bytes(&bytes, &KeyRing::default(), "image.bmp");
        assert_eq!(report.format, Some(Format::Bmp));
        assert_eq!(report.verdict, Verdict::Unlabelled);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.code == "no-metadata-carrier" && p.severity == Severity::Warning),
            "{:?}",
            report.problems
        );
    }
}
