//! The label journey.

use crate::PipelineError;
use crate::io::{InputFile, OutputOptions, atomic_write_rewrite, same_file};
use crate::watermark::{self, EmbedSummary, Modality, WatermarkSettings};
use aigc_core::{AigcRecord, Format, FormatFamily, Label, sniff};
use aigc_explicit::audio::{
    AudioLabelOptions, AudioLabelReport, label_audio_file, label_audio_into,
};
use aigc_explicit::docx::{find_docx_prompts, label_docx};
use aigc_explicit::image_file::{LabelledImage, label_image};
use aigc_explicit::pdf_stamp::{StampPages, StampedPage, find_pdf_stamps, stamp_pdf};
use aigc_explicit::text::{FoundPrompt, TextPosition, TextPrompt, find_prompts, label_text_file};
use aigc_explicit::{LabelSpec, Placement};
use aigc_ledger::{Action, Ledger, NewEntry};
use aigc_media::AudioWriter;
use aigc_meta::{Carrier, Rewrite, carrier_for};
use aigc_sign::SecretKey;
use aigc_watermark::Payload;
use aigc_watermark::audio::{AudioEmbedder, MarkingSink};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Who is labelling.
#[derive(Debug, Clone)]
pub enum LabelRole {
    /// The generating provider labels its own output.
    Produce {
        /// Provider code (or name, when codes are not required).
        producer: String,
        /// Content ID; generated when `None`.
        produce_id: Option<String>,
        /// Label value.
        label: Label,
    },
    /// A platform adds its propagator fields to an existing label (or labels unlabelled
    /// content as possibly/suspected AI-generated).
    Propagate {
        /// Platform code (or name).
        propagator: String,
        /// The platform's content ID.
        propagate_id: String,
        /// Label for content that arrived unlabelled (2 or 3).
        label: Option<Label>,
    },
}

/// Which marks to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkPlan {
    /// The implicit metadata label.
    pub metadata: bool,
    /// The visible/audible label.
    pub explicit: bool,
    /// The invisible watermark.
    pub watermark: bool,
}

impl Default for MarkPlan {
    fn default() -> Self {
        Self {
            metadata: true,
            explicit: true,
            watermark: true,
        }
    }
}

/// What the explicit (visible) label says and where it goes.
#[derive(Debug, Clone)]
pub struct ExplicitOptions {
    /// The label drawn on images.
    pub image: LabelSpec,
    /// The prompt added to text, Markdown and HTML.
    pub text: TextPrompt,
    /// The audible prompt inserted into audio.
    pub audio: AudioLabelOptions,
    /// The paragraph added to Word documents.
    pub document: TextPrompt,
    /// Which PDF pages get the stamp (its text and corner are `image`'s).
    pub pdf_pages: StampPages,
}

impl Default for ExplicitOptions {
    fn default() -> Self {
        Self {
            image: LabelSpec::default_label(),
            text: TextPrompt::default_at(TextPosition::End),
            audio: AudioLabelOptions::default(),
            document: aigc_explicit::docx::default_document_prompt(TextPosition::End),
            pdf_pages: StampPages::First,
        }
    }
}

/// The explicit label as applied to one file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ExplicitReport {
    /// A label drawn on an image.
    Image {
        /// Where and how it was drawn.
        placement: Placement,
        /// Frames labelled.
        frames: usize,
        /// The EXIF orientation it was drawn for.
        orientation: u8,
        /// JPEG quality estimated from the input and used for the output.
        jpeg_quality: Option<u8>,
        /// Lossy WebP: libwebp quality estimated from the input and used for the output.
        #[serde(skip_serializing_if = "Option::is_none")]
        webp_quality: Option<u8>,
        /// What the re-encode could not keep exactly.
        notes: Vec<String>,
    },
    /// A prompt added to text.
    Text {
        /// The prompt line.
        prompt: String,
        /// Where it went.
        position: TextPosition,
    },
    /// An audible prompt inserted into audio.
    Audio(AudioLabelReport),
    /// A stamp drawn on PDF pages.
    PdfStamp {
        /// Each stamped page: corner, font size, plate.
        pages: Vec<StampedPage>,
    },
    /// A paragraph added to a Word document.
    DocxParagraph {
        /// The paragraph text.
        prompt: String,
        /// Where it went.
        position: TextPosition,
        /// The part that changed.
        part: String,
    },
    /// The PDF already carries our stamp; none was added.
    StampPresent {
        /// The pages stamped.
        pages: Vec<usize>,
    },
    /// The text already held a prompt meeting the wording rule; none was added.
    AlreadyPresent {
        /// The prompts found.
        found: Vec<FoundPrompt>,
    },
}

/// Everything `label` needs besides the file.
#[derive(Clone)]
pub struct LabelRequest {
    /// Producer or propagator.
    pub role: LabelRole,
    /// Marks to apply.
    pub plan: MarkPlan,
    /// Key that signs the label (ReservedCode1 for producers, ReservedCode2 for propagators).
    pub sign: Option<SecretKey>,
    /// Whether producer/propagator must be 27-character codes (not names).
    pub require_codes: bool,
    /// The explicit label's text and position.
    pub explicit: ExplicitOptions,
    /// The watermark key (or why there is none) and strength.
    pub watermark: WatermarkSettings,
}

/// What happened to one kind of mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum MarkStatus {
    /// Applied.
    Applied,
    /// Not requested.
    Skipped,
    /// Requested but not available for this format in this version.
    Unavailable { reason: String },
}

/// The result of labelling one file.
#[derive(Debug, Clone, Serialize)]
pub struct LabelOutcome {
    /// The input path.
    pub input: String,
    /// The output path.
    pub output: String,
    /// The detected format.
    pub format: Format,
    /// The record written (none when the format has no metadata carrier or it was switched off).
    pub record: Option<AigcRecord>,
    /// The record as written (canonical bare JSON).
    pub record_json: Option<String>,
    /// Where it was written.
    pub placement: Option<&'static str>,
    /// How many labels the input held (all replaced by the one written).
    pub replaced_labels: usize,
    /// Metadata label status.
    pub metadata: MarkStatus,
    /// Visible/audible label status.
    pub explicit: MarkStatus,
    /// Watermark status.
    pub watermark: MarkStatus,
    /// Details of the explicit label, when applied.
    pub explicit_label: Option<ExplicitReport>,
    /// Input size in bytes.
    pub input_bytes: u64,
    /// Output size in bytes.
    pub output_bytes: u64,
    /// Input bytes copied verbatim into the output.
    pub kept_bytes: u64,
    /// SHA-256 of the input, hex.
    pub input_sha256: String,
    /// SHA-256 of the output, hex.
    pub output_sha256: String,
    /// The signing key id, when signed.
    pub signer_key_id: Option<String>,
    /// The ledger row, when recorded.
    pub ledger_id: Option<i64>,
    /// The 64-bit watermark payload that ties a mark to this record (16 hex digits), when a
    /// metadata label was written or the mark embedded.
    pub watermark_payload: Option<String>,
    /// What the watermark embedding did, when applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark_mark: Option<EmbedSummary>,
}

/// The labels of a file in memory: the record and the rewrite that puts it in place.
pub struct PreparedLabel {
    /// The detected format.
    pub format: Format,
    /// The carrier used.
    pub carrier: &'static dyn Carrier,
    /// The record to write.
    pub record: AigcRecord,
    /// How many labels the input held.
    pub replaced_labels: usize,
    /// The output as a rewrite of the input.
    pub rewrite: Rewrite,
}

/// Plans the metadata label of `input`; `path` names it in errors.
pub fn label_bytes(
    input: &[u8],
    req: &LabelRequest,
    path: &str,
) -> Result<PreparedLabel, PipelineError> {
    let format = sniff(input).ok_or_else(|| PipelineError::UnknownFormat {
        path: path.to_string(),
    })?;
    let carrier = carrier_for(format).ok_or(PipelineError::NoCarrier {
        path: path.to_string(),
        format,
    })?;
    let planned = plan_record(input, format, req, path)?;
    write_planned(input, format, carrier, planned, path)
}

/// The record a file is labelled with, planned from the labels it already holds.
#[derive(Debug, Clone)]
pub(crate) struct PlannedRecord {
    record: AigcRecord,
    replaced_labels: usize,
}

/// Puts the planned record into `base` (the input, or its re-encoded signal).
fn write_planned(
    base: &[u8],
    format: Format,
    carrier: &'static dyn Carrier,
    planned: PlannedRecord,
    path: &str,
) -> Result<PreparedLabel, PipelineError> {
    let rewrite = carrier
        .write(base, &planned.record)
        .map_err(|source| PipelineError::Meta {
            path: path.to_string(),
            source,
        })?;
    Ok(PreparedLabel {
        format,
        carrier,
        record: planned.record,
        replaced_labels: planned.replaced_labels,
        rewrite,
    })
}

/// Builds the record for `input` from the request and the labels `input` already holds (read
/// before any re-encode, so the watermark can carry the record's payload).
fn plan_record(
    input: &[u8],
    format: Format,
    req: &LabelRequest,
    path: &str,
) -> Result<PlannedRecord, PipelineError> {
    let meta = |source| PipelineError::Meta {
        path: path.to_string(),
        source,
    };
    let existing = match carrier_for(format) {
        Some(carrier) => carrier.read(input).map_err(meta)?,
        None => Vec::new(),
    };
    let request = |detail: String| PipelineError::Request {
        path: path.to_string(),
        detail,
    };
    let mut record = match &req.role {
        LabelRole::Produce {
            producer,
            produce_id,
            label,
        } => {
            let id = produce_id.clone().unwrap_or_else(crate::new_produce_id);
            AigcRecord::new(*label, producer, &id)
        }
        LabelRole::Propagate {
            propagator,
            propagate_id,
            label,
        } => {
            // Prefer a valid label in the primary placement, then any valid one.
            let mut valid: Vec<_> = existing.iter().filter(|f| f.parsed.is_valid()).collect();
            valid.sort_by_key(|f| !f.primary);
            let mut record = match (valid.first().and_then(|f| f.parsed.record.clone()), label) {
                (Some(r), Some(l)) if r.label != *l => {
                    return Err(request(format!(
                        "the file already carries Label {} from {}; a propagator keeps the producer's label",
                        r.label, r.content_producer
                    )));
                }
                (Some(r), _) => r,
                (None, Some(l @ (Label::Possibly | Label::Suspected))) => AigcRecord {
                    label: *l,
                    content_producer: String::new(),
                    produce_id: String::new(),
                    reserved_code1: String::new(),
                    content_propagator: String::new(),
                    propagate_id: String::new(),
                    reserved_code2: String::new(),
                },
                (None, Some(Label::Generated)) => {
                    return Err(request(
                        "the file carries no valid label; a platform labels unlabelled content --label 2 \
                         (declared by the uploader) or --label 3 (detected), not 1"
                            .into(),
                    ));
                }
                (None, None) => {
                    return Err(request(
                        "the file carries no valid label to propagate; give --label 2 (declared by the uploader) \
                         or --label 3 (detected) to label it as a platform"
                            .into(),
                    ));
                }
            };
            record.content_propagator = propagator.clone();
            record.propagate_id = propagate_id.clone();
            record.reserved_code2 = String::new();
            record
        }
    };
    if let Some(key) = &req.sign {
        match req.role {
            LabelRole::Produce { .. } => aigc_sign::sign_as_producer(&mut record, key),
            LabelRole::Propagate { .. } => aigc_sign::sign_as_propagator(&mut record, key),
        }
    }
    record
        .validate(req.require_codes)
        .map_err(|source| PipelineError::Record {
            path: path.to_string(),
            source,
        })?;
    Ok(PlannedRecord {
        record,
        replaced_labels: existing.len(),
    })
}

/// Checks that `output` holds exactly `record` and nothing else.
fn verify_output(output: &[u8], prepared: &PreparedLabel, path: &str) -> Result<(), PipelineError> {
    let fail = |detail: String| PipelineError::Verify {
        path: path.to_string(),
        detail,
    };
    // A plain text file with front matter reads as Markdown: same carrier, so that is fine.
    if !sniff(output).is_some_and(|f| prepared.carrier.formats().contains(&f)) {
        return Err(fail(format!(
            "the output is no longer recognised as {}",
            prepared.format
        )));
    }
    let found = prepared
        .carrier
        .read(output)
        .map_err(|e| fail(format!("cannot read the output back: {e}")))?;
    match found.as_slice() {
        [one] if one.parsed.record.as_ref() == Some(&prepared.record) => Ok(()),
        [one] => Err(fail(format!("the label read back differs: {}", one.value))),
        many => Err(fail(format!(
            "{} labels read back, expected exactly one",
            many.len()
        ))),
    }
}

/// Applies the explicit label to `input` when its format takes one: the new bytes and what
/// was done, or why nothing could be done (`Err` of the outer result is a hard failure).
pub(crate) fn apply_explicit(
    input: &[u8],
    format: Format,
    options: &ExplicitOptions,
    path: &str,
) -> Result<Result<(Vec<u8>, ExplicitReport), String>, PipelineError> {
    let fail = |e: aigc_explicit::ExplicitError| PipelineError::Explicit {
        path: path.to_string(),
        source: e,
    };
    if aigc_explicit::image_file::supports(format) {
        let LabelledImage {
            bytes,
            placement,
            frames,
            orientation,
            jpeg_quality,
            webp_quality,
            notes,
        } = match label_image(input, format, &options.image) {
            Ok(l) => l,
            Err(aigc_explicit::ExplicitError::Unsupported(reason)) => return Ok(Err(reason)),
            Err(e) => return Err(fail(e)),
        };
        return Ok(Ok((
            bytes,
            ExplicitReport::Image {
                placement,
                frames,
                orientation,
                jpeg_quality,
                webp_quality,
                notes,
            },
        )));
    }
    if matches!(format, Format::Text | Format::Markdown | Format::Html) {
        let text = String::from_utf8_lossy(input);
        let found: Vec<FoundPrompt> = find_prompts(&text)
            .into_iter()
            .filter(|f| f.wording_ok)
            .collect();
        // Relabelling must not stack prompts: one that meets the rule is enough.
        if !found.is_empty() {
            return Ok(Ok((
                input.to_vec(),
                ExplicitReport::AlreadyPresent { found },
            )));
        }
        let bytes = label_text_file(input, format, &options.text).map_err(fail)?;
        return Ok(Ok((
            bytes,
            ExplicitReport::Text {
                prompt: options.text.plain_line(),
                position: options.text.position,
            },
        )));
    }
    if format == Format::Pdf {
        let found = find_pdf_stamps(input).map_err(fail)?;
        // Relabelling must not stack stamps.
        if found.iter().any(|f| f.wording_ok) {
            let mut pages: Vec<usize> = found.iter().map(|f| f.page).collect();
            pages.dedup();
            return Ok(Ok((input.to_vec(), ExplicitReport::StampPresent { pages })));
        }
        let stamped = stamp_pdf(input, &options.image, options.pdf_pages).map_err(fail)?;
        return Ok(Ok((
            stamped.bytes,
            ExplicitReport::PdfStamp {
                pages: stamped.pages,
            },
        )));
    }
    if format == Format::Docx {
        let found: Vec<FoundPrompt> = find_docx_prompts(input)
            .map_err(fail)?
            .into_iter()
            .filter(|f| f.wording_ok)
            .collect();
        if !found.is_empty() {
            return Ok(Ok((
                input.to_vec(),
                ExplicitReport::AlreadyPresent { found },
            )));
        }
        let labelled = label_docx(input, &options.document).map_err(fail)?;
        return Ok(Ok((
            labelled.bytes,
            ExplicitReport::DocxParagraph {
                prompt: labelled.prompt,
                position: options.document.position,
                part: labelled.part,
            },
        )));
    }
    let what = match format.family() {
        FormatFamily::Audio => "audio prompts",
        FormatFamily::Video => "labels on video frames",
        FormatFamily::Document => "visible notices in spreadsheets and slides",
        _ => "explicit labels for this format",
    };
    Ok(Err(format!(
        "{what} are not implemented in aigc-mark {}",
        env!("CARGO_PKG_VERSION")
    )))
}

/// The audio with its audible label, in a temporary file beside the output (memory-mapped when
/// large, so long recordings are never held in memory twice).
struct LabelledAudio {
    bytes: InputFile,
    _temp: tempfile::TempPath,
}

/// The audio after its audible label (and the watermark, when marked in the same pass).
struct AudioLabelOutcome {
    /// The labelled audio; `None` when the input already held a rhythm and nothing was written.
    audio: Option<LabelledAudio>,
    report: ExplicitReport,
    /// Marked in the same pass: what was embedded, or why the audio is left unmarked.
    mark: Option<Result<EmbedSummary, String>>,
}

/// Inserts the audible prompt into `input_path` (streaming decode, re-encoded in the input's
/// codec beside `output_path`) and, with `mark`, embeds the watermark in the same decode/encode
/// pass: what was done, or why it cannot be done in this build.
fn apply_audio_explicit(
    input_path: &Path,
    output_path: &Path,
    options: &AudioLabelOptions,
    mark: Option<watermark::AudioMarkPlan<'_>>,
    path: &str,
) -> Result<Result<AudioLabelOutcome, String>, PipelineError> {
    let dir = match output_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".aigc-mark-audio-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| PipelineError::io(output_path, e))?
        .into_temp_path();
    let labelled = match mark {
        None => label_audio_file(input_path, &temp, options).map(|r| (r, None)),
        Some(m) => label_audio_into(input_path, options, |info| {
            let writer = AudioWriter::create_like(info, &temp)?;
            let embedder = AudioEmbedder::new(
                info.sample_rate,
                info.channels,
                m.payload,
                &m.key.key,
                m.strength,
                writer.full_scale(),
            );
            Ok(MarkingSink::new(embedder, writer))
        })
        .and_then(|(report, sink)| match sink {
            Some(sink) => {
                let (writer, stats) = sink.finish()?;
                writer.finish()?;
                Ok((report, Some(stats)))
            }
            None => Ok((report, None)),
        }),
    };
    let (report, stats) = match labelled {
        Ok(r) => r,
        Err(aigc_explicit::ExplicitError::Unsupported(reason)) => return Ok(Err(reason)),
        // Media errors name their file already.
        Err(aigc_explicit::ExplicitError::Media(e)) => {
            let message = e.to_string();
            return Err(PipelineError::Request {
                path: path.to_string(),
                detail: message
                    .strip_prefix(&format!("{path}: "))
                    .unwrap_or(&message)
                    .to_string(),
            });
        }
        Err(source) => {
            return Err(PipelineError::Explicit {
                path: path.to_string(),
                source,
            });
        }
    };
    // The content already held a rhythm: nothing was written, the input stays as it is.
    if report.inserted.is_empty() {
        return Ok(Ok(AudioLabelOutcome {
            audio: None,
            report: ExplicitReport::Audio(report),
            mark: None,
        }));
    }
    let mark = match (mark, stats) {
        (Some(m), Some(stats)) => {
            let shown = temp.display().to_string();
            let reads_back = watermark::audio_mark_reads_back(&temp, m.payload, &m.key.key, &shown)
                .map_err(|e| PipelineError::Request {
                    path: path.to_string(),
                    detail: e.to_string(),
                })?;
            if reads_back {
                Some(Ok(watermark::audio_summary(m.payload, m.key, &stats)))
            } else {
                // Left unmarked, as promised: the prompt alone, written again.
                return apply_audio_explicit(input_path, output_path, options, None, path).map(
                    |r| {
                        r.map(|o| AudioLabelOutcome {
                            mark: Some(Err(watermark::AUDIO_NOT_READABLE.into())),
                            ..o
                        })
                    },
                );
            }
        }
        _ => None,
    };
    let bytes = InputFile::open(&temp)?;
    Ok(Ok(AudioLabelOutcome {
        audio: Some(LabelledAudio { bytes, _temp: temp }),
        report: ExplicitReport::Audio(report),
        mark,
    }))
}

/// Labels `input_path` into `output_path` (which may equal the input only with `in_place`),
/// recording the label in `ledger` when given.
///
/// Order (ARCHITECTURE): sniff → plan the record from the input's labels → decode once →
/// explicit label → watermark (its payload from the record) → encode once → metadata label on
/// the encoded bytes → verify → atomic write → ledger.
pub fn label_file(
    input_path: &Path,
    output_path: &Path,
    req: &LabelRequest,
    ledger: Option<&Ledger>,
    in_place: bool,
) -> Result<LabelOutcome, PipelineError> {
    let shown = input_path.display().to_string();
    if !in_place && same_file(input_path, output_path) {
        return Err(PipelineError::Request {
            path: shown,
            detail: "the output is the input; pass --in-place to overwrite it".into(),
        });
    }
    if !req.plan.metadata && !req.plan.explicit && !req.plan.watermark {
        return Err(PipelineError::Request {
            path: shown,
            detail: "every mark is switched off: nothing to do".into(),
        });
    }
    let input = InputFile::open(input_path)?;
    let bytes = input.bytes();
    let format = sniff(bytes).ok_or_else(|| PipelineError::UnknownFormat {
        path: shown.clone(),
    })?;
    let carrier = carrier_for(format);
    // The record is planned before any re-encode: the watermark carries its payload.
    let marking = req.plan.watermark && Modality::of(format).is_some() && req.watermark.key.is_ok();
    let planned = if (req.plan.metadata && carrier.is_some()) || marking {
        Some(plan_record(bytes, format, req, &shown)?)
    } else {
        None
    };
    // Images: label drawn, mark embedded and encoded in one decode/encode (watermark.rs).
    let marked_image = match (&planned, &req.watermark.key) {
        (Some(p), Ok(key)) if marking && Modality::of(format) == Some(Modality::Image) => Some(
            watermark::label_and_mark_image(bytes, format, req, &p.record, key, &shown)?,
        ),
        _ => None,
    };
    // Audio with an audible prompt is re-encoded into a temporary file beside the output, and
    // marked in the same pass when it is to be marked.
    let audio_mark = match (&planned, &req.watermark.key) {
        (Some(p), Ok(key)) if marking && Modality::of(format) == Some(Modality::Audio) => {
            let strength = watermark::audio_strength(req.watermark.strength).map_err(|detail| {
                PipelineError::Request {
                    path: shown.clone(),
                    detail,
                }
            })?;
            Some(watermark::AudioMarkPlan {
                payload: Payload::from_record(&p.record),
                key,
                strength,
            })
        }
        _ => None,
    };
    let mut marked_with_prompt = None;
    let mut labelled_audio = None;
    let (mut labelled, explicit, explicit_label, mut watermark_status, mut watermark_mark) =
        match marked_image {
            Some(m) => (m.bytes, m.explicit, m.explicit_label, m.watermark, m.mark),
            None => {
                let (labelled, explicit, explicit_label) =
                    if req.plan.explicit && format.family() == FormatFamily::Audio {
                        match apply_audio_explicit(
                            input_path,
                            output_path,
                            &req.explicit.audio,
                            audio_mark,
                            &shown,
                        )? {
                            Ok(outcome) => {
                                labelled_audio = outcome.audio;
                                marked_with_prompt = outcome.mark;
                                (None, MarkStatus::Applied, Some(outcome.report))
                            }
                            Err(reason) => (None, MarkStatus::Unavailable { reason }, None),
                        }
                    } else if req.plan.explicit {
                        match apply_explicit(bytes, format, &req.explicit, &shown)? {
                            Ok((b, report)) => (Some(b), MarkStatus::Applied, Some(report)),
                            Err(reason) => (None, MarkStatus::Unavailable { reason }, None),
                        }
                    } else {
                        (None, MarkStatus::Skipped, None)
                    };
                let status = watermark::status_without_mark(req, format);
                (labelled, explicit, explicit_label, status, None)
            }
        };
    // Audio: the mark goes onto the signal after any audible label, before the metadata (in
    // the same pass as the prompt when one was inserted).
    let marked_in_prompt_pass = marked_with_prompt.is_some();
    match marked_with_prompt {
        Some(Ok(summary)) => {
            watermark_status = MarkStatus::Applied;
            watermark_mark = Some(summary);
        }
        Some(Err(reason)) => watermark_status = MarkStatus::Unavailable { reason },
        None => {}
    }
    if let (Some(p), Ok(key)) = (&planned, &req.watermark.key)
        && marking
        && Modality::of(format) == Some(Modality::Audio)
        && !marked_in_prompt_pass
    {
        let (base, from): (&[u8], Option<&Path>) = match (&labelled_audio, &labelled) {
            (Some(a), _) => (a.bytes.bytes(), Some(&*a._temp)),
            (None, Some(b)) => (b.as_slice(), None),
            (None, None) => (bytes, Some(input_path)),
        };
        match watermark::mark_audio_bytes(base, from, format, &p.record, key, req, &shown)? {
            Ok((marked, summary)) => {
                labelled = Some(marked);
                labelled_audio = None;
                watermark_status = MarkStatus::Applied;
                watermark_mark = Some(summary);
            }
            Err(reason) => watermark_status = MarkStatus::Unavailable { reason },
        }
    }
    let re_encoded = labelled.is_some() || labelled_audio.is_some();
    let base: &[u8] = match (&labelled_audio, &labelled) {
        (Some(a), _) => a.bytes.bytes(),
        (None, Some(b)) => b,
        (None, None) => bytes,
    };
    let prepared = match (req.plan.metadata, carrier, re_encoded) {
        (true, Some(c), _) => {
            let planned = match &planned {
                Some(p) => p.clone(),
                None => plan_record(bytes, format, req, &shown)?,
            };
            Some(write_planned(base, format, c, planned, &shown)?)
        }
        // BMP and the like: the drawn label alone is still worth writing.
        (true, None, true) => None,
        (true, None, false) => {
            return Err(PipelineError::NoCarrier {
                path: shown,
                format,
            });
        }
        (false, _, true) => None,
        (false, _, false) => {
            return Err(PipelineError::Request {
                path: shown,
                detail: format!(
                    "--no-metadata leaves only the explicit label and the watermark, which this version does \
                     not apply to {format} files"
                ),
            });
        }
    };
    let metadata = match (&prepared, req.plan.metadata) {
        (Some(_), _) => MarkStatus::Applied,
        (None, false) => MarkStatus::Skipped,
        (None, true) => MarkStatus::Unavailable {
            reason: format!("{format} files have no metadata field for the label"),
        },
    };
    let whole;
    let rewrite = match &prepared {
        Some(p) => &p.rewrite,
        None => {
            let mut r = Rewrite::new();
            r.keep(0..base.len());
            whole = r;
            &whole
        }
    };
    let permissions = std::fs::metadata(input_path).ok().map(|m| m.permissions());
    let signer_key_id = match &prepared {
        Some(_) => req.sign.as_ref().map(|k| k.public_key().key_id()),
        None => None,
    };
    let action = match req.role {
        LabelRole::Produce { .. } => Action::Produce,
        LabelRole::Propagate { .. } => Action::Propagate,
    };
    let source_name = input_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let format_name = format.extension();
    let out_shown = output_path.display().to_string();
    // The record the ledger keeps: the one written, or the one the mark carries.
    let logged_record = match (&prepared, &planned, &watermark_status) {
        (Some(p), _, _) => Some(&p.record),
        (None, Some(p), MarkStatus::Applied) => Some(&p.record),
        _ => None,
    };
    let watermark_payload = logged_record.map(|r| aigc_watermark::Payload::from_record(r).to_hex());
    let options = OutputOptions {
        permissions,
        durable: in_place,
    };
    // Kept ranges can be copied file-to-file only when they refer to the input file itself.
    let source_file = match (&labelled_audio, &labelled) {
        (Some(a), _) => a.bytes.file(),
        (None, Some(_)) => None,
        (None, None) => input.file(),
    };
    // The input's hash is computed on the second core while the output is written.
    let (input_sha256, output_sha256, ledger_id) = std::thread::scope(|scope| {
        let input_hash = scope.spawn(|| hex::encode(Sha256::digest(bytes)));
        atomic_write_rewrite(
            output_path,
            base,
            source_file,
            rewrite,
            options,
            |written| {
                match &prepared {
                    Some(p) => verify_output(written, p, &out_shown)?,
                    None => {
                        if sniff(written) != Some(format) {
                            return Err(PipelineError::Verify {
                                path: out_shown.clone(),
                                detail: format!("the output is no longer recognised as {format}"),
                            });
                        }
                    }
                }
                let output_sha256 = hex::encode(Sha256::digest(written));
                let input_sha256 = input_hash
                    .join()
                    .unwrap_or_else(|_| hex::encode(Sha256::digest(bytes)));
                let ledger_id = match (ledger, logged_record) {
                    (Some(l), Some(record)) => Some(l.record(&NewEntry {
                        action,
                        record,
                        format: format_name,
                        input_sha256: Some(&input_sha256),
                        output_sha256: &output_sha256,
                        signer_key_id: signer_key_id.as_deref(),
                        source_name: source_name.as_deref(),
                        watermark_payload: watermark_payload.as_deref(),
                    })?),
                    _ => None,
                };
                Ok((input_sha256, output_sha256, ledger_id))
            },
        )
    })?;
    // Input bytes copied verbatim: only when the signal was not re-encoded.
    let kept_bytes = if re_encoded {
        0
    } else {
        rewrite.kept_bytes() as u64
    };
    let output_bytes = rewrite.len() as u64;
    Ok(LabelOutcome {
        input: shown,
        output: out_shown,
        format,
        record_json: prepared.as_ref().map(|p| p.record.to_bare_json()),
        placement: prepared.as_ref().map(|p| p.carrier.placement()),
        replaced_labels: prepared.as_ref().map_or(0, |p| p.replaced_labels),
        record: prepared.map(|p| p.record),
        metadata,
        explicit,
        explicit_label,
        watermark: watermark_status,
        input_bytes: bytes.len() as u64,
        output_bytes,
        kept_bytes,
        input_sha256,
        output_sha256,
        signer_key_id,
        ledger_id,
        watermark_payload,
        watermark_mark,
    })
}
