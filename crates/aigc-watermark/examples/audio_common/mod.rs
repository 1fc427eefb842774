//! Pieces shared by the audio examples (`audio_probe`, `audio_codec_diag`): whole-file PCM
//! reading and writing, and one ffmpeg attack on samples in memory.

use aigc_media::audio::{AudioReader, OutputFormat, WavFormat};
use aigc_media::{AudioWriter, MediaError};
use std::path::Path;
use std::process::Command;

/// All interleaved samples of a file, with its rate and channel count.
pub fn read_all(path: &Path) -> Result<(u32, usize, Vec<f32>), MediaError> {
    let mut r = AudioReader::open(path)?;
    let (rate, ch) = (r.info().sample_rate, r.info().channels);
    let mut all = Vec::new();
    while let Some(b) = r.next_block()? {
        all.extend_from_slice(b);
    }
    Ok((rate, ch, all))
}

/// Writes float WAV.
pub fn write_wav(path: &Path, rate: u32, ch: usize, s: &[f32]) -> Result<(), MediaError> {
    let mut w = AudioWriter::create(path, rate, ch, OutputFormat::Wav(WavFormat::Float), &[])?;
    w.write(s)?;
    w.finish().map(|_| ())
}

/// Runs `ffmpeg -i in.wav ATTACK out.wav`-style attacks: the attack string is split on spaces;
/// a `|` separates an encode step (to a temporary file of the extension after `>`) from the
/// decode back to WAV.
pub fn attack(
    rate: u32,
    ch: usize,
    s: &[f32],
    how: &str,
) -> Result<(u32, usize, Vec<f32>), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let src = dir.path().join("in.wav");
    write_wav(&src, rate, ch, s).map_err(|e| e.to_string())?;
    let (args, ext) = how.split_once('>').unwrap_or((how, "wav"));
    let mid = dir.path().join(format!("mid.{}", ext.trim()));
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&src)
        .args(args.split_whitespace())
        .arg(&mid)
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("ffmpeg {how} failed"));
    }
    read_all(&mid).map_err(|e| e.to_string())
}
