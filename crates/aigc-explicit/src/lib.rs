//! Explicit labels people see (GB 45438 chapter 5): the image/frame overlay, image files
//! relabelled in their own format, text prompts, audible prompts (Morse rhythm and speech), the
//! PDF stamp and the DOCX paragraph.

pub mod audio;
pub mod audio_detect;
pub mod audio_morse;
pub mod audio_speech;

pub mod detect;
pub mod docx;
pub mod font;
pub mod image_file;
pub mod jpeg_huffman;
pub mod jpeg_quality;
pub mod overlay;
pub mod pdf_stamp;
pub mod text;
pub mod tiff_ycbcr;
pub mod webp_quality;
pub mod wording;

pub use overlay::{
    FrameMut, LabelLayout, LabelSpec, Orientation, PixelLayout, Placement, Position, Rect,
    contrast_ratio, draw_label, draw_label_luma, draw_label_rgb, relative_luminance,
    required_ink_height,
};
pub use wording::{meets_wording_rule, validate_label_text};

/// Why an explicit label could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExplicitError {
    /// The label text breaks the wording rule.
    #[error("label text {text:?} does not meet the wording rule: {detail}")]
    Wording { text: String, detail: String },
    /// The bundled font lacks characters of the text.
    #[error(
        "label text {text:?}: the bundled font has no glyph for {missing:?} (it covers ASCII, CJK punctuation and the 3755 GB2312 level-1 hanzi)"
    )]
    MissingGlyphs { text: String, missing: String },
    /// The image cannot hold a legible label.
    #[error(
        "a {width}×{height} image is too small for the label {text:?}: text {ink} px high needs at least {need_w}×{need_h} px"
    )]
    TooSmall {
        width: u32,
        height: u32,
        text: String,
        ink: u32,
        need_w: u32,
        need_h: u32,
    },
    /// A frame buffer does not match its stated size.
    #[error("bad frame buffer: {0}")]
    Frame(String),
    /// An option value is invalid.
    #[error("{0}")]
    BadOption(String),
    /// The image could not be decoded or encoded.
    #[error("{0}")]
    Image(String),
    /// The image format or variant is not supported for explicit labels.
    #[error("{0}")]
    Unsupported(String),
    /// Audio could not be read or written (the message names the file).
    #[error(transparent)]
    Media(#[from] aigc_media::MediaError),
    /// The audio has no samples, so there is nothing to put a prompt before or after.
    #[error("the audio has no samples (zero length); an audible label needs content")]
    EmptyAudio,
    /// A PDF or OOXML document could not be read or updated.
    #[error("{0}")]
    Document(#[from] aigc_meta::MetaError),
    /// A PDF page is too small to hold a legible stamp.
    #[error(
        "page {page} ({width}×{height} pt as displayed) is too small for the stamp: it needs {need_w}×{need_h} pt"
    )]
    PdfPageTooSmall {
        page: usize,
        width: u32,
        height: u32,
        need_w: u32,
        need_h: u32,
    },
}
