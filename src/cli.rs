//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Label AI-generated content (GB 45438-2025) and verify those labels.
#[derive(Debug, Parser)]
#[command(name = "aigc-mark", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Label files: write the Annex E metadata label (and, where available, the visible label
    /// and the watermark). Exit 0 when every file was labelled, 2 when any failed.
    Label(Box<LabelArgs>),
    /// Report every label in files: placement, validity, signatures. Exit 1 with
    /// --require-label when a file lacks exactly one valid label, 2 when a file is unreadable.
    Inspect(InspectArgs),
    /// Create a signing key pair (SM2 by default), or with --watermark a watermark key, in the
    /// key directory.
    Keygen(KeygenArgs),
    /// Embed or detect the invisible watermark in images and audio.
    #[command(subcommand)]
    Wm(WmCommand),
    /// Measure the watermark against the spec's attack table (ImageMagick, ffmpeg, sox) on
    /// every image or audio file in a directory.
    Robustness(RobustnessArgs),
    /// Look up issued labels in the ledger.
    Ledger(LedgerArgs),
    /// List the formats that can carry a metadata label and where it goes.
    Formats(JsonFlag),
    /// Check a text for lexicon hits and personal information (exit 1 when a finding at or
    /// above --block-at exists).
    Check(crate::safety::CheckArgs),
    /// Text-safety tools: keyword library, classifier training and evaluation, test banks,
    /// corpus and model evaluation, the assessment report.
    Safety(crate::safety::SafetyArgs),
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Input files or directories (directories are walked recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file, or directory when there are several inputs or a directory input.
    #[arg(short, long, required_unless_present = "in_place")]
    pub output: Option<PathBuf>,
    /// Overwrite the inputs (atomically) instead of writing to --output.
    #[arg(long, conflicts_with = "output")]
    pub in_place: bool,
    /// The generating provider's 27-character code (ContentProducer).
    #[arg(long, required_unless_present = "propagate")]
    pub producer: Option<String>,
    /// Content ID (ProduceID); generated (UUIDv7) when absent. Single input only.
    #[arg(long)]
    pub produce_id: Option<String>,
    /// Label value: 1 AI-generated, 2 possibly (declared), 3 suspected (detected).
    #[arg(long, value_parser = ["1", "2", "3"])]
    pub label: Option<String>,
    /// Sign the label: a secret key file, or a key id in the key directory.
    #[arg(long, value_name = "KEY")]
    pub sign: Option<String>,
    /// Act as a propagating platform: add propagator fields to the existing label.
    #[arg(long, requires_all = ["propagator", "propagate_id"], conflicts_with_all = ["producer", "produce_id"])]
    pub propagate: bool,
    /// The platform's 27-character code (ContentPropagator), with --propagate.
    #[arg(long)]
    pub propagator: Option<String>,
    /// The platform's content ID (PropagateID), with --propagate.
    #[arg(long)]
    pub propagate_id: Option<String>,
    /// Accept a provider name instead of a 27-character code.
    #[arg(long)]
    pub allow_names: bool,
    /// Do not draw/play the visible or audible label.
    #[arg(long)]
    pub no_explicit: bool,
    /// The visible label's wording [default: 「AI生成」 on images and PDF stamps, 「本内容由AI生成」
    /// in text, 「本内容由人工智能生成」 in DOCX]. It
    /// must contain 人工智能 or AI, and 生成 or 合成.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    /// Where the label goes on images and PDF pages, as displayed: auto (images: the most
    /// uniform corner; PDF: top-right), top-left,
    /// top-right, bottom-left, bottom-right, top, bottom, left, right.
    #[arg(long, value_name = "POS", default_value = "auto")]
    pub position: String,
    /// Where the prompt goes in text, Markdown, HTML and DOCX: start, end, both, middle.
    #[arg(long, value_name = "POS", default_value = "end")]
    pub text_position: String,
    /// Which PDF pages get the visible stamp: first or all.
    #[arg(long, value_name = "PAGES", default_value = "first", value_parser = ["first", "all"])]
    pub pages: String,
    /// In text, use the 「AI」 badge (角标) instead of a prompt sentence.
    #[arg(long, conflicts_with = "text")]
    pub badge: bool,
    /// What audio gets: rhythm (Morse 「短长 短短」), speech (the spoken prompt) or both (the
    /// rhythm, then the speech).
    #[arg(long, value_name = "KIND", default_value = "both", value_parser = ["rhythm", "speech", "both"])]
    pub audio_prompt: String,
    /// Where the audio prompt is inserted: start, middle, end, or a list such as start,end.
    #[arg(long, value_name = "POS", default_value = "start")]
    pub audio_position: String,
    /// Language of the bundled spoken prompt: zh (「本内容由人工智能生成」), en ("This content was
    /// generated by AI") or zh+en.
    #[arg(long, value_name = "LANG", default_value = "zh", value_parser = ["zh", "en", "zh+en"])]
    pub speech_lang: String,
    /// Your own spoken prompt (WAV, FLAC, MP3, Ogg Vorbis, M4A; at most 30 s) instead of the
    /// bundled one; it must say the content is AI-generated (人工智能/AI + 生成/合成).
    #[arg(long, value_name = "FILE", conflicts_with = "speech_lang")]
    pub speech_file: Option<PathBuf>,
    /// Frequency of the Morse rhythm's tone in Hz (300–3000).
    #[arg(long, value_name = "HZ", default_value_t = 1000.0)]
    pub tone_hz: f32,
    /// Length of a Morse dot in ms (50–200); a dash is three dots.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub morse_unit_ms: u32,
    /// Do not embed the invisible watermark.
    #[arg(long)]
    pub no_watermark: bool,
    /// The watermark key: a key file, a key name or key id in the key directory [default: the
    /// only watermark key there; none → the watermark is reported unavailable].
    #[arg(long, value_name = "KEY")]
    pub wm_key: Option<String>,
    /// Watermark amplitude relative to the default (1.0; 2.0 doubles it, costing 6 dB PSNR).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub wm_strength: f64,
    /// Do not write the metadata label.
    #[arg(long)]
    pub no_metadata: bool,
    /// Only the metadata label (same as --no-explicit --no-watermark); never re-encodes.
    #[arg(long, conflicts_with = "no_metadata")]
    pub metadata_only: bool,
    /// Skip inputs whose output already exists and carries a valid label (resume a batch).
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Do not record issued labels in the ledger.
    #[arg(long)]
    pub no_ledger: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The ledger database [default: per-user, see README].
    #[arg(long, value_name = "PATH", global = true)]
    pub ledger: Option<PathBuf>,
    /// Directory of key files [default: per-user, see README].
    #[arg(long, value_name = "DIR", global = true)]
    pub keys: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files or directories to inspect.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Exit 1 unless every file holds exactly one valid label.
    #[arg(long)]
    pub require_label: bool,
    /// Also look the labels up in the ledger.
    #[arg(long)]
    pub with_ledger: bool,
    /// The watermark key to detect with [default: every watermark key in the key directory].
    #[arg(long, value_name = "KEY")]
    pub wm_key: Option<String>,
    /// Do not search images and audio for the invisible watermark.
    #[arg(long)]
    pub no_watermark: bool,
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Signature algorithm.
    #[arg(long, default_value = "sm2", value_parser = ["sm2", "ed25519"])]
    pub algorithm: String,
    /// Create a watermark key (`<name>.wmkey.json`, secret: embedding and detection both need it).
    #[arg(long, conflicts_with = "algorithm")]
    pub watermark: bool,
    /// The watermark key's name [default: the provider code, else "default"].
    #[arg(long, requires = "watermark")]
    pub name: Option<String>,
    /// The provider code the key belongs to (recorded in the key file).
    #[arg(long)]
    pub provider: Option<String>,
    /// Directory to write the key into [default: the key directory]; `--keys`, the name the
    /// other commands read keys with, works too.
    #[arg(long, value_name = "DIR", visible_alias = "keys")]
    pub out: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Find entries by ProduceID or PropagateID.
    #[arg(long, group = "by")]
    pub id: Option<String>,
    /// Find entries by the SHA-256 (hex) of an input or output file.
    #[arg(long, group = "by")]
    pub hash: Option<String>,
    /// Find entries by watermark payload (16 hex digits).
    #[arg(long, group = "by")]
    pub payload: Option<String>,
    /// Find entries for this file (by its hash and the IDs in its label).
    #[arg(long, group = "by")]
    pub file: Option<PathBuf>,
    /// The ledger database [default: per-user].
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WmCommand {
    /// Embed the watermark into an image or audio file (the output keeps the input's format;
    /// audio is written as WAV in this version).
    Embed(WmEmbedArgs),
    /// Search files for the watermark: presence, false-positive probability, payload (only
    /// when its check passes), agreement with the metadata label, ledger record. Exit 0 when
    /// every file carries the mark, 1 when any does not, 2 on errors.
    Detect(WmDetectArgs),
}

#[derive(Debug, Args)]
pub struct WmEmbedArgs {
    /// The image or audio file to mark.
    pub input: PathBuf,
    /// Where the marked file goes.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The 64-bit payload, 16 hex digits.
    #[arg(long, group = "source", required_unless_present = "record_from")]
    pub payload: Option<String>,
    /// Take the payload from the label of this file (a labelled file, or a JSON label).
    #[arg(long, value_name = "FILE", group = "source")]
    pub record_from: Option<PathBuf>,
    /// The watermark key: a key file, a key name or key id [default: the only one].
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Amplitude relative to the default (1.0).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub strength: f64,
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WmDetectArgs {
    /// Files or directories to search.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The watermark key: a key file, a key name or key id [default: the only one].
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RobustnessArgs {
    /// Directory of test files (walked recursively; files of the other modality are ignored).
    pub dir: PathBuf,
    /// Which watermark to test.
    #[arg(long, value_parser = ["image", "audio"])]
    pub modality: String,
    /// Only the CI subset (images: JPEG q50, resize 50 %, crop 50 % area; audio: MP3 128k,
    /// AAC 64k, 15 s clip + MP3 128k).
    #[arg(long)]
    pub quick: bool,
    /// The watermark key [default: the only one; none → a throwaway key].
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Amplitude relative to the default (1.0).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub strength: f64,
    /// Also search every unmarked original under N further keys (a larger false-positive count).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fp_keys: usize,
    /// Only the attacks whose name contains one of these (comma-separated, case-insensitive),
    /// e.g. `--attacks "jpeg,resize"`.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub attacks: Vec<String>,
    /// Files measured at a time [default: the number of CPUs]. Timings in the table are per
    /// process, so they rise when files share cores.
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The journal of finished files, which an interrupted run resumes from [default: one per
    /// run under the per-user cache directory, removed when the run completes].
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Ignore (and replace) a journal left by an interrupted run instead of resuming it.
    #[arg(long)]
    pub fresh: bool,
    /// Also write the report (Markdown) to this file.
    #[arg(short, long, value_name = "REPORT.md")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub stores: StoreArgs,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}
