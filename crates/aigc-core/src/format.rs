//! File formats, recognised from their magic bytes and structure, never from the file name.

use serde::Serialize;
use std::fmt;

/// What kind of content a format holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatFamily {
    /// Still images.
    Image,
    /// Video (possibly with audio).
    Video,
    /// Audio only.
    Audio,
    /// Office documents and PDF.
    Document,
    /// Plain text, Markdown, HTML.
    Text,
}

/// A file format aigc-mark recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
    Tiff,
    Bmp,
    Heif,
    Mp4,
    Mov,
    M4a,
    Mkv,
    WebM,
    Avi,
    Flv,
    Wav,
    Mp3,
    Flac,
    OggVorbis,
    OggOpus,
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Markdown,
    Html,
    Svg,
    Text,
}

impl Format {
    /// Every format, in a stable order (for tables and docs).
    pub const ALL: [Format; 27] = [
        Format::Jpeg,
        Format::Png,
        Format::WebP,
        Format::Gif,
        Format::Tiff,
        Format::Bmp,
        Format::Heif,
        Format::Mp4,
        Format::Mov,
        Format::M4a,
        Format::Mkv,
        Format::WebM,
        Format::Avi,
        Format::Flv,
        Format::Wav,
        Format::Mp3,
        Format::Flac,
        Format::OggVorbis,
        Format::OggOpus,
        Format::Pdf,
        Format::Docx,
        Format::Xlsx,
        Format::Pptx,
        Format::Markdown,
        Format::Html,
        Format::Svg,
        Format::Text,
    ];

    /// A short display name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::WebP => "WebP",
            Format::Gif => "GIF",
            Format::Tiff => "TIFF",
            Format::Bmp => "BMP",
            Format::Heif => "HEIF/AVIF",
            Format::Mp4 => "MP4",
            Format::Mov => "MOV",
            Format::M4a => "M4A",
            Format::Mkv => "MKV",
            Format::WebM => "WebM",
            Format::Avi => "AVI",
            Format::Flv => "FLV",
            Format::Wav => "WAV",
            Format::Mp3 => "MP3",
            Format::Flac => "FLAC",
            Format::OggVorbis => "Ogg Vorbis",
            Format::OggOpus => "Ogg Opus",
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Xlsx => "XLSX",
            Format::Pptx => "PPTX",
            Format::Markdown => "Markdown",
            Format::Html => "HTML",
            Format::Svg => "SVG",
            Format::Text => "plain text",
        }
    }

    /// The usual file extension (for naming outputs, never for recognising inputs).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::WebP => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tif",
            Format::Bmp => "bmp",
            Format::Heif => "heic",
            Format::Mp4 => "mp4",
            Format::Mov => "mov",
            Format::M4a => "m4a",
            Format::Mkv => "mkv",
            Format::WebM => "webm",
            Format::Avi => "avi",
            Format::Flv => "flv",
            Format::Wav => "wav",
            Format::Mp3 => "mp3",
            Format::Flac => "flac",
            Format::OggVorbis => "ogg",
            Format::OggOpus => "opus",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Svg => "svg",
            Format::Text => "txt",
        }
    }

    /// The kind of content.
    pub fn family(self) -> FormatFamily {
        use Format::*;
        match self {
            Jpeg | Png | WebP | Gif | Tiff | Bmp | Heif | Svg => FormatFamily::Image,
            Mp4 | Mov | Mkv | WebM | Avi | Flv => FormatFamily::Video,
            M4a | Wav | Mp3 | Flac | OggVorbis | OggOpus => FormatFamily::Audio,
            Pdf | Docx | Xlsx | Pptx => FormatFamily::Document,
            Markdown | Html | Text => FormatFamily::Text,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Recognises the format of `bytes` from its content, or `None` when it is none we know.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let b = bytes;
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some(Format::Gif);
    }
    if b.starts_with(b"II*\0")
        || b.starts_with(b"MM\0*")
        || b.starts_with(b"II+\0")
        || b.starts_with(b"MM\0+")
    {
        return Some(Format::Tiff);
    }
    if b.len() >= 26
        && b.starts_with(b"BM")
        && matches!(u32le(b, 14), Some(12 | 40 | 52 | 56 | 64 | 108 | 124))
    {
        return Some(Format::Bmp);
    }
    if b.len() >= 12 && (b.starts_with(b"RIFF") || b.starts_with(b"RF64")) {
        match &b[8..12] {
            b"WEBP" => return Some(Format::WebP),
            b"WAVE" => return Some(Format::Wav),
            b"AVI " => return Some(Format::Avi),
            _ => return None,
        }
    }
    if b.starts_with(b"FLV\x01") {
        return Some(Format::Flv);
    }
    if b.starts_with(b"fLaC") {
        return Some(Format::Flac);
    }
    if b.starts_with(b"OggS") {
        return sniff_ogg(b);
    }
    if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some(if ebml_doctype_is_webm(b) {
            Format::WebM
        } else {
            Format::Mkv
        });
    }
    if let Some(f) = sniff_isobmff(b) {
        return Some(f);
    }
    if b.starts_with(b"ID3") {
        // An ID3v2 tag may precede FLAC as well as MP3.
        let size = id3_tag_len(b)?;
        return match b.get(size..size + 4) {
            Some(b"fLaC") => Some(Format::Flac),
            _ => Some(Format::Mp3),
        };
    }
    if is_mpeg_audio_frame(b) {
        return Some(Format::Mp3);
    }
    if b.get(..1024.min(b.len()))
        .is_some_and(|head| find(head, b"%PDF-").is_some())
    {
        return Some(Format::Pdf);
    }
    if b.starts_with(b"PK\x03\x04") {
        return sniff_ooxml(b);
    }
    sniff_text(b)
}

fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of an ID3v2 tag including its header and footer.
pub fn id3_tag_len(b: &[u8]) -> Option<usize> {
    let h = b.get(..10)?;
    if &h[..3] != b"ID3" || h[6..10].iter().any(|x| x & 0x80 != 0) {
        return None;
    }
    let size = h[6..10]
        .iter()
        .fold(0usize, |acc, x| (acc << 7) | *x as usize);
    let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

fn is_mpeg_audio_frame(b: &[u8]) -> bool {
    let Some(h) = b.get(..4) else { return false };
    // 11 sync bits, layer III, a real bitrate and sample rate.
    h[0] == 0xFF
        && h[1] & 0xE0 == 0xE0
        && (h[1] >> 1) & 0x3 == 0x1
        && (h[1] >> 3) & 0x3 != 0x1
        && (h[2] >> 4) != 0xF
        && (h[2] >> 4) != 0
        && (h[2] >> 2) & 0x3 != 0x3
}

fn sniff_ogg(b: &[u8]) -> Option<Format> {
    let nseg = *b.get(26)? as usize;
    let body = b.get(27 + nseg..)?;
    if body.starts_with(b"\x01vorbis") {
        Some(Format::OggVorbis)
    } else if body.starts_with(b"OpusHead") {
        Some(Format::OggOpus)
    } else {
        None
    }
}

fn ebml_doctype_is_webm(b: &[u8]) -> bool {
    let head = &b[..b.len().min(64)];
    find(head, b"\x42\x82").is_some_and(|i| head.get(i + 3..i + 7) == Some(b"webm"))
}

fn sniff_isobmff(b: &[u8]) -> Option<Format> {
    let kind = b.get(4..8)?;
    if kind == b"ftyp" {
        let size = u32be(b, 0)? as usize;
        let major = b.get(8..12)?;
        let compat = b.get(16..size.clamp(16, 64).min(b.len()))?;
        let has = |brand: &[u8]| major == brand || compat.chunks(4).any(|c| c == brand);
        if has(b"heic") || has(b"heix") || has(b"mif1") || has(b"avif") || has(b"msf1") {
            return Some(Format::Heif);
        }
        return Some(match major {
            b"M4A " | b"M4B " | b"M4P " | b"F4A " => Format::M4a,
            b"qt  " => Format::Mov,
            _ => Format::Mp4,
        });
    }
    // Old QuickTime files start with a movie box and no ftyp.
    if matches!(kind, b"moov" | b"mdat" | b"wide" | b"pnot")
        && u32be(b, 0).is_some_and(|s| s >= 8 || s == 1)
    {
        return Some(Format::Mov);
    }
    None
}

/// Names of the entries in a ZIP's central directory.
fn zip_entry_names(b: &[u8]) -> Option<Vec<&[u8]>> {
    let tail_start = b.len().saturating_sub(65_557);
    let eocd = b[tail_start..]
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")?
        + tail_start;
    let count = u16::from_le_bytes(b.get(eocd + 10..eocd + 12)?.try_into().ok()?) as usize;
    let mut at = u32le(b, eocd + 16)? as usize;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        if b.get(at..at + 4)? != b"PK\x01\x02" {
            return None;
        }
        let n = u16::from_le_bytes(b.get(at + 28..at + 30)?.try_into().ok()?) as usize;
        let m = u16::from_le_bytes(b.get(at + 30..at + 32)?.try_into().ok()?) as usize;
        let k = u16::from_le_bytes(b.get(at + 32..at + 34)?.try_into().ok()?) as usize;
        names.push(b.get(at + 46..at + 46 + n)?);
        at += 46 + n + m + k;
    }
    Some(names)
}

fn sniff_ooxml(b: &[u8]) -> Option<Format> {
    let names = zip_entry_names(b)?;
    if !names.contains(&&b"[Content_Types].xml"[..]) {
        return None;
    }
    let any = |prefix: &[u8]| names.iter().any(|n| n.starts_with(prefix));
    if any(b"word/") {
        Some(Format::Docx)
    } else if any(b"xl/") {
        Some(Format::Xlsx)
    } else if any(b"ppt/") {
        Some(Format::Pptx)
    } else {
        None
    }
}

fn sniff_text(b: &[u8]) -> Option<Format> {
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    if b.contains(&0) {
        return None;
    }
    let text = std::str::from_utf8(b).ok()?;
    let head: String = text
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        return Some(Format::Html);
    }
    if head.starts_with("<svg") || (head.starts_with("<?xml") && head.contains("<svg")) {
        return Some(Format::Svg);
    }
    if text.starts_with("---\n") || text.starts_with("---\r\n") || looks_like_markdown(text) {
        return Some(Format::Markdown);
    }
    Some(Format::Text)
}

fn looks_like_markdown(text: &str) -> bool {
    text.lines().take(200).any(|l| {
        let l = l.trim_start();
        (l.starts_with('#') && l.trim_start_matches('#').starts_with(' '))
            || l.starts_with("```")
            || l.starts_with("- [")
            || (l.contains("](") && l.contains('['))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Format::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(Format::Wav));
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), Some(Format::Avi));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(
            sniff(b"\0\0\0\x18ftypM4A \0\0\0\0M4A isom"),
            Some(Format::M4a)
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypisom\0\0\0\0isomiso2"),
            Some(Format::Mp4)
        );
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  \0\0\0\0qt  "), Some(Format::Mov));
        assert_eq!(sniff(b"ID3\x04\0\0\0\0\0\x02\0\0fLaC"), Some(Format::Flac));
        assert_eq!(
            sniff(b"ID3\x04\0\0\0\0\0\x02\0\0\xFF\xFB\x90\x00"),
            Some(Format::Mp3)
        );
        assert_eq!(sniff(b"\xFF\xFB\x90\x64"), Some(Format::Mp3));
        assert_eq!(sniff(b"\xFF\xF1\x50\x80"), None, "ADTS AAC is not MP3");
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(Format::Pdf));
        assert_eq!(sniff(b"---\ntitle: x\n---\nbody"), Some(Format::Markdown));
        assert_eq!(sniff(b"# Title\n\ntext"), Some(Format::Markdown));
        assert_eq!(sniff("你好，世界".as_bytes()), Some(Format::Text));
        assert_eq!(sniff(b"<!DOCTYPE html><html>"), Some(Format::Html));
        assert_eq!(sniff(b"\x00\x01\x02binary"), None);
        assert_eq!(sniff(b""), Some(Format::Text));
    }

    #[test]
    fn the_file_name_plays_no_part() {
        // The same PNG bytes are PNG whatever they are called; sniff never sees a name.
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Format::Png));
    }
}
