//! The invisible watermark in the journeys: the embedding step of `label` and `wm embed`
//! (images through aigc-explicit's decode-once/encode-once path, audio through the audio mark's
//! file API), and detection for `inspect` and `wm detect`, with the mark checked against the
//! metadata label (no database) or resolved through the ledger when the label is gone.

use crate::PipelineError;
use crate::label::{ExplicitReport, LabelRequest, MarkStatus};
use aigc_core::{AigcRecord, Format, FormatFamily, sniff};
use aigc_explicit::image_file::{EditedImage, FrameEdit, edit_image};
use aigc_explicit::{ExplicitError, LabelSpec, PixelLayout};
use aigc_ledger::{Ledger, LedgerEntry};
use aigc_media::MediaError;
use aigc_watermark::audio::{AudioDetection, AudioWatermarkError, DEFAULT_STRENGTH, EmbedStats};
use aigc_watermark::image::{DetectOptions, EmbedOptions, ImageDetection, ImageMarkError};
use aigc_watermark::{CODED_BITS, NamedKey, Payload, WatermarkKey};
use serde::Serialize;
use std::path::Path;

/// Which signal a format's mark lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Modality {
    /// Still images: the luminance plane.
    Image,
    /// Audio: FFT magnitudes.
    Audio,
}

impl Modality {
    /// The modality of a format, when the watermark handles it.
    pub fn of(format: Format) -> Option<Self> {
        if aigc_explicit::image_file::supports(format) {
            return Some(Modality::Image);
        }
        (format.family() == FormatFamily::Audio).then_some(Modality::Audio)
    }

    /// The modality of a file, judged from its first 64 KiB.
    pub fn of_file(path: &Path) -> Option<Self> {
        use std::io::Read;
        let mut head = Vec::new();
        std::fs::File::open(path)
            .ok()?
            .take(1 << 16)
            .read_to_end(&mut head)
            .ok()?;
        sniff(&head).and_then(Self::of)
    }

    /// A word for messages.
    pub fn word(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Audio => "audio",
        }
    }
}

/// Why a watermark could not be embedded or searched for; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The format carries no watermark in this version.
    #[error("{path}: {what}")]
    Unsupported {
        /// The file.
        path: String,
        /// What is not supported.
        what: String,
    },
    /// The image could not be decoded, marked or encoded.
    #[error("{path}: {detail}")]
    Image {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The audio could not be read, marked or written.
    #[error("{path}: {source}")]
    Audio {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: AudioWatermarkError,
    },
    /// The mark was embedded but could not be read back from the output.
    #[error("{path}: the mark was embedded but its payload could not be read back from the output")]
    NotReadable {
        /// The file.
        path: String,
    },
}

/// The key and strength the label journey marks with.
#[derive(Debug, Clone)]
pub struct WatermarkSettings {
    /// The key, or why there is none (the mark is then reported as unavailable).
    pub key: Result<NamedKey, String>,
    /// Mark amplitude relative to the default (1.0).
    pub strength: f64,
}

impl WatermarkSettings {
    /// Settings without a key: every mark is reported unavailable with `reason`.
    pub fn without_key(reason: &str) -> Self {
        Self {
            key: Err(reason.to_string()),
            strength: 1.0,
        }
    }
}

/// The image embedder's options for a relative `strength` (1.0 = default, 2.0 = twice the
/// amplitude, i.e. 6 dB lower PSNR).
pub fn image_options(strength: f64) -> Result<EmbedOptions, String> {
    if !(strength.is_finite() && strength > 0.0) {
        return Err(format!("strength {strength} must be a positive number"));
    }
    let target = EmbedOptions::default().target_psnr_db - 20.0 * strength.log10();
    if !(20.0..=60.0).contains(&target) {
        return Err(format!(
            "strength {strength} gives a target PSNR of {target:.1} dB, outside 20–60 dB"
        ));
    }
    Ok(EmbedOptions {
        target_psnr_db: target,
    })
}

/// The audio embedder's strength for a relative `strength` (1.0 = default).
pub fn audio_strength(strength: f64) -> Result<f32, String> {
    let s = DEFAULT_STRENGTH as f64 * strength;
    if !(s.is_finite() && s > 0.0 && s <= 0.9) {
        return Err(format!(
            "strength {strength} gives an audio bin change of {s:.2}, outside (0, 0.9]"
        ));
    }
    Ok(s as f32)
}

/// What one embedding did.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedSummary {
    /// Image or audio.
    pub modality: Modality,
    /// The payload embedded (16 hex digits).
    pub payload: String,
    /// The key's public id.
    pub key_id: String,
    /// PSNR of the marked luminance against the input's (images), dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psnr_db: Option<f64>,
    /// Signal-to-mark ratio (audio), dB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snr_db: Option<f64>,
    /// Frames marked (images: GIF frames).
    pub frames: usize,
}

/// Marks one decoded frame: the luminance is marked, and for colour frames the same change is
/// added to R, G and B (any luma weighting whose weights sum to 1 sees exactly that change;
/// chroma is untouched). Returns the PSNR of the marked luminance.
pub fn mark_frame(
    frame: FrameEdit<'_>,
    payload: Payload,
    key: &WatermarkKey,
    options: &EmbedOptions,
) -> Result<f64, ImageMarkError> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = match frame.layout {
        PixelLayout::Luma => {
            let r = aigc_watermark::image::embed_luma(frame.data, w, h, w, payload, key, options)?;
            return Ok(r.psnr_db);
        }
        PixelLayout::Rgb => 3,
        PixelLayout::Rgba => 4,
    };
    let mut luma: Vec<u8> = frame
        .data
        .chunks_exact(channels)
        .map(|p| luma_of(p[0], p[1], p[2]))
        .collect();
    let before = luma.clone();
    let report = aigc_watermark::image::embed_luma(&mut luma, w, h, w, payload, key, options)?;
    for ((px, new), old) in frame
        .data
        .chunks_exact_mut(channels)
        .zip(&luma)
        .zip(&before)
    {
        let delta = i16::from(*new) - i16::from(*old);
        if delta != 0 {
            for c in &mut px[..3] {
                *c = (i16::from(*c) + delta).clamp(0, 255) as u8;
            }
        }
    }
    Ok(report.psnr_db)
}

/// BT.601 luma, rounded.
fn luma_of(r: u8, g: u8, b: u8) -> u8 {
    let y = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    ((y + 500) / 1000) as u8
}

/// An image file edited by [`mark_image`]: the re-encoded bytes, and what the mark did (or why
/// it could not be embedded, e.g. an image smaller than the mark needs).
pub struct MarkedImage {
    /// The decode/label/encode result.
    pub edited: EditedImage,
    /// The mark's summary, or why it was not embedded.
    pub mark: Result<EmbedSummary, String>,
    /// Whether any frame's pixels were marked (false when the image was refused as too small).
    pub touched: bool,
}

/// Decodes an image file once, draws the explicit label `spec` when given, marks every frame
/// with `payload` and encodes once in the same format (aigc-explicit's encode path: JPEG
/// quality from the input's tables, metadata and colour profile kept). The output is then
/// decoded and searched: the mark counts as embedded only when its payload reads back.
pub fn mark_image(
    input: &[u8],
    format: Format,
    spec: Option<&LabelSpec>,
    payload: Payload,
    key: &NamedKey,
    options: &EmbedOptions,
) -> Result<MarkedImage, ExplicitError> {
    let mut psnr: Option<f64> = None;
    let mut failure: Option<String> = None;
    let mut frames = 0usize;
    let mut step = |frame: FrameEdit<'_>| -> Result<(), ExplicitError> {
        if failure.is_some() {
            return Ok(());
        }
        match mark_frame(frame, payload, &key.key, options) {
            Ok(p) => {
                frames += 1;
                psnr = Some(psnr.map_or(p, |q: f64| q.min(p)));
            }
            Err(e) => failure = Some(e.to_string()),
        }
        Ok(())
    };
    let edited = edit_image(input, format, spec, Some(&mut step))?;
    let mark = match failure {
        Some(reason) => Err(reason),
        // The output has the input's geometry: the read-back checks the unscaled grid only
        // (no scale/rotation search, a third of the detector's time).
        None => match read_back_image(&edited.bytes, &key.key) {
            Ok(d) if d.payload == Some(payload) => Ok(EmbedSummary {
                modality: Modality::Image,
                payload: payload.to_hex(),
                key_id: key.key_id.clone(),
                psnr_db: psnr,
                snr_db: None,
                frames,
            }),
            Ok(_) => Err(format!(
                "the mark did not survive re-encoding the {format} (payload not read back){}",
                if format == Format::Gif {
                    ": GIF's 256-colour palette is too coarse for it"
                } else {
                    ""
                }
            )),
            Err(e) => Err(format!("the marked output could not be searched: {e}")),
        },
    };
    Ok(MarkedImage {
        edited,
        mark,
        touched: frames > 0,
    })
}

/// Decodes an image file (first frame) into its luminance plane and searches it for `key`'s mark.
pub fn detect_image_bytes(bytes: &[u8], key: &WatermarkKey) -> Result<ImageDetection, String> {
    detect_image_with(bytes, key, &DetectOptions::default())
}

/// Reads the mark back from an image just marked and encoded (same geometry: no search).
fn read_back_image(bytes: &[u8], key: &WatermarkKey) -> Result<ImageDetection, String> {
    let options = DetectOptions {
        geometric_search: false,
    };
    detect_image_with(bytes, key, &options)
}

/// Decodes an image file (first frame) into its luminance plane and searches it as `options` say.
fn detect_image_with(
    bytes: &[u8],
    key: &WatermarkKey,
    options: &DetectOptions,
) -> Result<ImageDetection, String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("cannot decode: {e}"))?;
    let luma = img.to_luma8();
    let (w, h) = (luma.width() as usize, luma.height() as usize);
    aigc_watermark::image::detect_luma_with(luma.as_raw(), w, h, w, key, options)
        .map_err(|e| e.to_string())
}

/// Marks the audio file `input` into `output` (WAV in this version) and checks that the
/// payload reads back; `output` appears only when it does (temporary file + rename).
pub fn mark_audio_file(
    input: &Path,
    output: &Path,
    payload: Payload,
    key: &NamedKey,
    strength: f32,
) -> Result<EmbedSummary, WatermarkError> {
    let shown = input.display().to_string();
    let out_shown = output.display().to_string();
    let io = |source| WatermarkError::Io {
        path: out_shown.clone(),
        source,
    };
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The audio mark picks the container from the extension, so the temporary keeps it.
    let ext = output
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(".aigc-mark-")
        .suffix(&ext)
        .tempfile_in(dir)
        .map_err(io)?;
    let report = aigc_watermark::audio::embed_file(input, tmp.path(), payload, &key.key, strength)
        .map_err(|source| WatermarkError::Audio {
            path: shown.clone(),
            source,
        })?;
    if !audio_mark_reads_back(tmp.path(), payload, &key.key, &out_shown)? {
        return Err(WatermarkError::NotReadable { path: shown });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The audio writer replaced the temporary path with its own file: set it by path.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    tmp.persist(output).map_err(|e| io(e.error))?;
    Ok(audio_summary(payload, key, &report.stats))
}

/// What marking audio needs besides the signal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AudioMarkPlan<'a> {
    /// The payload (from the record).
    pub payload: Payload,
    /// The provider's key.
    pub key: &'a NamedKey,
    /// Relative magnitude change ([`audio_strength`]).
    pub strength: f32,
}

/// Why marked audio is left unmarked when its mark does not read back.
pub(crate) const AUDIO_NOT_READABLE: &str = "the mark was embedded but did not read back (too little signal between 0.34 and 6 kHz, or too short); the audio is left unmarked";

/// Whether the audio file at `path` (shown as `shown`) carries `payload` under `key`, read back
/// the way a verifier would read it.
pub(crate) fn audio_mark_reads_back(
    path: &Path,
    payload: Payload,
    key: &WatermarkKey,
    shown: &str,
) -> Result<bool, WatermarkError> {
    let back =
        aigc_watermark::audio::detect_file(path, key).map_err(|source| WatermarkError::Audio {
            path: shown.to_string(),
            source,
        })?;
    Ok(back.payload == Some(payload))
}

/// The summary of an audio embedding.
pub(crate) fn audio_summary(payload: Payload, key: &NamedKey, stats: &EmbedStats) -> EmbedSummary {
    EmbedSummary {
        modality: Modality::Audio,
        payload: payload.to_hex(),
        key_id: key.key_id.clone(),
        psnr_db: None,
        snr_db: Some(stats.snr_db()),
        frames: usize::try_from(stats.frames_marked).unwrap_or(usize::MAX),
    }
}

/// The recovered geometry of an image mark.
#[derive(Debug, Clone, Serialize)]
pub struct ImageTransform {
    /// Suspect size / marked size.
    pub scale: f64,
    /// Rotation of the suspect against the marked image, degrees (positive: clockwise as
    /// displayed, as ImageMagick's `-rotate`).
    pub rotation_degrees: f64,
    /// Tile-grid offset (x, y) in marked-image pixels, modulo the tile period.
    pub offset: (usize, usize),
}

/// Where in an audio file the mark was found.
#[derive(Debug, Clone, Serialize)]
pub struct AudioSpan {
    /// Start, seconds.
    pub start_seconds: f64,
    /// End, seconds.
    pub end_seconds: f64,
    /// Time factor of the best hypothesis (replay speed, or the tempo of a time stretch).
    pub speed: f64,
    /// Frequency factor of the best hypothesis, in 1 % steps (within 0.5 % of the speed for a
    /// replay-speed change, 1 for a tempo-only stretch, the pitch ratio for a pitch shift).
    pub pitch: f64,
}

/// One file searched under one key.
#[derive(Debug, Clone, Serialize)]
pub struct WatermarkDetection {
    /// Image or audio.
    pub modality: Modality,
    /// The key's name.
    pub key_name: String,
    /// The key's public id.
    pub key_id: String,
    /// Presence: the corrected false-positive probability is at most 1e-6, or a payload passed
    /// its keyed check.
    pub present: bool,
    /// Presence score (standard normal on unmarked content).
    pub z: f64,
    /// Analytic false-positive probability, corrected for every hypothesis searched (and for
    /// every key tried).
    pub false_positive_probability: f64,
    /// Hypotheses searched.
    pub hypotheses: f64,
    /// Coded chips the decoder corrected, when a payload was decoded.
    pub bit_errors: Option<usize>,
    /// Coded chips per codeword.
    pub coded_chips: usize,
    /// The payload (16 hex digits), only when its keyed check passed.
    pub payload: Option<String>,
    /// Images: the recovered transform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<ImageTransform>,
    /// Audio: where the mark is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<AudioSpan>,
}

impl WatermarkDetection {
    fn from_image(d: &ImageDetection, key: &NamedKey) -> Self {
        Self {
            modality: Modality::Image,
            key_name: key.name.clone(),
            key_id: key.key_id.clone(),
            present: d.present || d.payload.is_some(),
            z: d.z,
            false_positive_probability: d.false_positive_probability,
            hypotheses: d.hypotheses,
            bit_errors: d.payload.map(|_| d.bit_errors),
            coded_chips: CODED_BITS,
            payload: d.payload.map(Payload::to_hex),
            transform: Some(ImageTransform {
                scale: d.scale,
                rotation_degrees: d.rotation_degrees,
                offset: d.offset,
            }),
            span: None,
        }
    }

    fn from_audio(d: &AudioDetection, key: &NamedKey) -> Self {
        Self {
            modality: Modality::Audio,
            key_name: key.name.clone(),
            key_id: key.key_id.clone(),
            present: d.present || d.payload.is_some(),
            z: d.z,
            false_positive_probability: d.false_positive_probability,
            hypotheses: d.hypotheses,
            bit_errors: d.payload.and(d.bit_errors),
            coded_chips: d.chips,
            payload: d.payload.map(Payload::to_hex),
            transform: None,
            span: d.span.as_ref().map(|s| AudioSpan {
                start_seconds: s.start_seconds,
                end_seconds: s.end_seconds,
                speed: d.speed,
                pitch: d.pitch,
            }),
        }
    }
}

/// Searches one file for the mark of `key`; the format is sniffed from its content.
pub fn detect_file(path: &Path, key: &NamedKey) -> Result<WatermarkDetection, WatermarkError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WatermarkError::Io {
        path: shown.clone(),
        source,
    })?;
    let format = sniff(&bytes).ok_or_else(|| WatermarkError::Unsupported {
        path: shown.clone(),
        what: "unrecognised file format (looked at the content, not the name)".into(),
    })?;
    match Modality::of(format) {
        Some(Modality::Image) => {
            let d =
                detect_image_bytes(&bytes, &key.key).map_err(|detail| WatermarkError::Image {
                    path: shown,
                    detail,
                })?;
            Ok(WatermarkDetection::from_image(&d, key))
        }
        Some(Modality::Audio) => {
            drop(bytes);
            let d = aigc_watermark::audio::detect_file(path, &key.key).map_err(|source| {
                WatermarkError::Audio {
                    path: shown,
                    source,
                }
            })?;
            Ok(WatermarkDetection::from_audio(&d, key))
        }
        None => Err(WatermarkError::Unsupported {
            path: shown,
            what: format!(
                "{format} files carry no invisible watermark in this version (images and audio do)"
            ),
        }),
    }
}

/// How the mark relates to the metadata label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Agreement {
    /// The mark's payload is the one derived from the label's record.
    Agree,
    /// The mark's payload differs from every label's (the label was changed or swapped).
    Disagree {
        /// The payload the label implies.
        label_payload: String,
    },
    /// The file carries no Annex E label to compare with.
    NoLabel,
    /// No payload was read from the mark, so there is nothing to compare.
    NoPayload,
}

/// A file's watermark verdict: the best detection over the keys tried, its agreement with the
/// label, and (when the label is gone) the ledger entries its payload resolves to.
#[derive(Debug, Clone, Serialize)]
pub struct WatermarkFinding {
    /// The detection (under the key that found the mark, or the best score when none did).
    pub detection: WatermarkDetection,
    /// Keys tried (the false-positive probability is corrected for all of them).
    pub keys_tried: usize,
    /// Mark vs. metadata label.
    pub label: Agreement,
    /// Ledger entries holding the mark's payload (looked up when a ledger is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<Vec<LedgerEntry>>,
}

/// Searches `path` under every key in `keys` (the false-positive probability is multiplied by
/// their number), compares the payload with the records of the file's labels, and resolves it
/// through `ledger` when given.
pub fn find_watermark(
    path: &Path,
    keys: &[NamedKey],
    records: &[AigcRecord],
    ledger: Option<&Ledger>,
) -> Result<WatermarkFinding, WatermarkError> {
    let mut best: Option<WatermarkDetection> = None;
    let k = keys.len().max(1) as f64;
    for key in keys {
        let mut d = detect_file(path, key)?;
        d.false_positive_probability = (d.false_positive_probability * k).min(1.0);
        d.present = d.payload.is_some()
            || d.false_positive_probability <= aigc_watermark::image::PRESENCE_FPR;
        let better = match &best {
            None => true,
            Some(b) => {
                (d.present, d.payload.is_some(), d.z) > (b.present, b.payload.is_some(), b.z)
            }
        };
        if better {
            best = Some(d);
        }
        if best.as_ref().is_some_and(|b| b.payload.is_some()) {
            break;
        }
    }
    let detection = best.ok_or_else(|| WatermarkError::Unsupported {
        path: path.display().to_string(),
        what: "no watermark key to search with".into(),
    })?;
    let payload = detection.payload.as_deref().and_then(Payload::from_hex);
    let label = match (payload, records.first()) {
        (None, _) => Agreement::NoPayload,
        (Some(_), None) => Agreement::NoLabel,
        (Some(p), Some(first)) => {
            if records.iter().any(|r| p.matches(r)) {
                Agreement::Agree
            } else {
                Agreement::Disagree {
                    label_payload: Payload::from_record(first).to_hex(),
                }
            }
        }
    };
    let ledger = match (ledger, payload) {
        (Some(l), Some(p)) => {
            Some(
                l.find_by_payload(&p.to_hex())
                    .map_err(|e| WatermarkError::Unsupported {
                        path: path.display().to_string(),
                        what: format!("ledger lookup failed: {e}"),
                    })?,
            )
        }
        _ => None,
    };
    Ok(WatermarkFinding {
        detection,
        keys_tried: keys.len(),
        label,
        ledger,
    })
}

/// What the combined explicit-label + watermark step did to an image in the label journey.
pub(crate) struct ImageMarks {
    /// The re-encoded file, when anything was drawn or marked.
    pub bytes: Option<Vec<u8>>,
    /// Explicit label status.
    pub explicit: MarkStatus,
    /// Explicit label details.
    pub explicit_label: Option<ExplicitReport>,
    /// Watermark status.
    pub watermark: MarkStatus,
    /// Watermark details, when applied.
    pub mark: Option<EmbedSummary>,
}

/// The watermark status when no mark was attempted (switched off, no key, format without one).
pub(crate) fn status_without_mark(req: &LabelRequest, format: Format) -> MarkStatus {
    if !req.plan.watermark {
        return MarkStatus::Skipped;
    }
    let reason = match (Modality::of(format), &req.watermark.key) {
        (Some(_), Err(reason)) => reason.clone(),
        (Some(_), Ok(_)) => "no record to tie the mark to".into(),
        (None, _) if format.family() == FormatFamily::Video => format!(
            "the video watermark is not implemented in aigc-mark {}",
            env!("CARGO_PKG_VERSION")
        ),
        (None, _) => format!("{format} files carry no invisible watermark (images and audio do)"),
    };
    MarkStatus::Unavailable { reason }
}

/// Draws the explicit label (when planned) and embeds the mark of `record` in one
/// decode/encode. A mark that cannot be embedded (image too small) or does not read back is
/// reported unavailable, and the output then holds the explicit label alone.
pub(crate) fn label_and_mark_image(
    input: &[u8],
    format: Format,
    req: &LabelRequest,
    record: &AigcRecord,
    key: &NamedKey,
    path: &str,
) -> Result<ImageMarks, PipelineError> {
    let options =
        image_options(req.watermark.strength).map_err(|detail| PipelineError::Request {
            path: path.to_string(),
            detail,
        })?;
    let spec = req.plan.explicit.then_some(&req.explicit.image);
    let payload = Payload::from_record(record);
    let explicit_error = |source| PipelineError::Explicit {
        path: path.to_string(),
        source,
    };
    let marked = match mark_image(input, format, spec, payload, key, &options) {
        Ok(m) => m,
        Err(ExplicitError::Unsupported(reason)) => {
            let unavailable = MarkStatus::Unavailable { reason };
            return Ok(ImageMarks {
                bytes: None,
                explicit: if spec.is_some() {
                    unavailable.clone()
                } else {
                    MarkStatus::Skipped
                },
                explicit_label: None,
                watermark: unavailable,
                mark: None,
            });
        }
        Err(e) => return Err(explicit_error(e)),
    };
    let explicit_report = |e: &EditedImage| {
        e.placement.clone().map(|placement| ExplicitReport::Image {
            placement,
            frames: e.frames,
            orientation: e.orientation,
            jpeg_quality: e.jpeg_quality,
            webp_quality: e.webp_quality,
            notes: e.notes.clone(),
        })
    };
    let explicit = if spec.is_some() {
        MarkStatus::Applied
    } else {
        MarkStatus::Skipped
    };
    match marked.mark {
        Ok(summary) => Ok(ImageMarks {
            explicit_label: explicit_report(&marked.edited),
            bytes: Some(marked.edited.bytes),
            explicit,
            watermark: MarkStatus::Applied,
            mark: Some(summary),
        }),
        Err(reason) => {
            let watermark = MarkStatus::Unavailable { reason };
            // Keep the signal free of a mark that cannot be read: redo the explicit label alone.
            let (bytes, explicit_label) = match (spec, marked.touched) {
                (None, _) => (None, None),
                (Some(_), false) => (
                    explicit_report(&marked.edited).map(|_| marked.edited.bytes.clone()),
                    explicit_report(&marked.edited),
                ),
                (Some(spec), true) => {
                    let labelled =
                        edit_image(input, format, Some(spec), None).map_err(explicit_error)?;
                    // The detector can lose the mark beside a freshly drawn plate in the same
                    // encode (seen on ≥ 1080p images); marking the encoded label in a second
                    // pass reads back, at the cost of one more generation.
                    let second = mark_image(&labelled.bytes, format, None, payload, key, &options)
                        .map_err(explicit_error)?;
                    if let Ok(summary) = second.mark {
                        let mut report = explicit_report(&labelled);
                        if let Some(ExplicitReport::Image { notes, .. }) = &mut report {
                            notes.push(
                                "watermark embedded in a second encode after the label (it did not read back from the single encode)"
                                    .into(),
                            );
                        }
                        return Ok(ImageMarks {
                            bytes: Some(second.edited.bytes),
                            explicit,
                            explicit_label: report,
                            watermark: MarkStatus::Applied,
                            mark: Some(summary),
                        });
                    }
                    (Some(labelled.bytes.clone()), explicit_report(&labelled))
                }
            };
            Ok(ImageMarks {
                bytes,
                explicit,
                explicit_label,
                watermark,
                mark: None,
            })
        }
    }
}

/// Marks audio (`base`, which is the file at `from` when that is given) with the payload of
/// `record`: the marked file's bytes, or why it cannot be marked in this version.
pub(crate) fn mark_audio_bytes(
    base: &[u8],
    from: Option<&Path>,
    format: Format,
    record: &AigcRecord,
    key: &NamedKey,
    req: &LabelRequest,
    path: &str,
) -> Result<Result<(Vec<u8>, EmbedSummary), String>, PipelineError> {
    let strength =
        audio_strength(req.watermark.strength).map_err(|detail| PipelineError::Request {
            path: path.to_string(),
            detail,
        })?;
    let io = |e| PipelineError::io(Path::new(path), e);
    let work = tempfile::tempdir().map_err(io)?;
    let ext = format.extension();
    let input = match from {
        Some(p) => p.to_path_buf(),
        None => {
            let p = work.path().join(format!("in.{ext}"));
            std::fs::write(&p, base).map_err(io)?;
            p
        }
    };
    // The marked signal goes back into the input's own format; the audio mark's file API says
    // when it cannot write that format (reported as unavailable, the file is left unmarked).
    let output = work.path().join(format!("marked.{ext}"));
    match mark_audio_file(&input, &output, Payload::from_record(record), key, strength) {
        Ok(summary) => {
            let bytes = std::fs::read(&output).map_err(io)?;
            Ok(Ok((bytes, summary)))
        }
        Err(WatermarkError::NotReadable { .. }) => Ok(Err(AUDIO_NOT_READABLE.into())),
        Err(WatermarkError::Audio {
            source: AudioWatermarkError::Media(MediaError::Unsupported { what, .. }),
            ..
        }) => Ok(Err(format!(
            "{format} cannot be marked in this version: {what}"
        ))),
        Err(e) => Ok(Err(e.to_string())),
    }
}
