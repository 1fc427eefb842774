//! FLAC: the label is the entry `AIGC=<wrapped JSON>` in the `VORBIS_COMMENT` metadata block
//! (type 4). Entries whose field name contains `AIGC` are read from every comment block, and
//! labels in an ID3v2 tag before `fLaC` too. Writing replaces them in the first comment block
//! (or inserts one after `STREAMINFO`), keeps the vendor string and other entries, and takes
//! the size change from (or gives it to) a `PADDING` block so that the audio frames keep their
//! offset whenever the padding allows.

use crate::bytes::{array, slice};
use crate::carrier::{Carrier, FoundLabel};
use crate::carriers::{mp3, vorbis_comment};
use crate::error::MetaError;
use crate::rewrite::Rewrite;
use aigc_core::{AigcRecord, Format};
use std::ops::Range;

const FORMAT: &str = "FLAC";
const MARKER: &[u8; 4] = b"fLaC";
const STREAMINFO: u8 = 0;
const PADDING: u8 = 1;
const VORBIS_COMMENT: u8 = 4;
/// Block lengths are 24-bit.
const MAX_BLOCK_LEN: usize = (1 << 24) - 1;
const BLOCK_HEADER_LEN: usize = 4;
/// The vendor string of a comment block we create.
const VENDOR: &str = "aigc-mark";

/// The FLAC carrier.
pub struct FlacCarrier;

/// One metadata block as found.
struct Block {
    /// Where its 4-byte header starts.
    start: usize,
    kind: u8,
    body: Range<usize>,
}

/// The metadata blocks after the `fLaC` marker at `at`, and where the audio frames start.
fn blocks(input: &[u8], at: usize) -> Result<(Vec<Block>, usize), MetaError> {
    if slice(input, at, MARKER.len(), "FLAC marker")? != MARKER {
        return Err(MetaError::malformed(FORMAT, "missing fLaC marker"));
    }
    let mut at = at + MARKER.len();
    let mut out = Vec::new();
    loop {
        let [flags, l0, l1, l2] = array(input, at, "FLAC metadata block header")?;
        let kind = flags & 0x7F;
        if kind == 127 {
            return Err(MetaError::malformed(
                FORMAT,
                "metadata block type 127 is invalid",
            ));
        }
        let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        let body_at = at + BLOCK_HEADER_LEN;
        slice(input, body_at, len, "FLAC metadata block")?;
        out.push(Block {
            start: at,
            kind,
            body: body_at..body_at + len,
        });
        at = body_at + len;
        if flags & 0x80 != 0 {
            break;
        }
    }
    if out.first().map(|b| b.kind) != Some(STREAMINFO) {
        return Err(MetaError::malformed(
            FORMAT,
            "first metadata block is not STREAMINFO",
        ));
    }
    Ok((out, at))
}

/// A block's body in the output.
enum Body {
    Keep(Range<usize>),
    New(Vec<u8>),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Keep(r) => r.len(),
            Body::New(b) => b.len(),
        }
    }
}

/// A block of the output: its type, body and, when unchanged, where its header was.
struct OutBlock {
    kind: u8,
    body: Body,
    header_at: Option<usize>,
}

fn comment_list<'a>(
    input: &'a [u8],
    block: &Block,
) -> Result<vorbis_comment::CommentList<'a>, MetaError> {
    let body = input
        .get(block.body.clone())
        .ok_or_else(|| MetaError::truncated("FLAC VORBIS_COMMENT block", block.start))?;
    vorbis_comment::parse(body, "FLAC VORBIS_COMMENT")
}

/// Moves `delta` bytes (positive: the metadata grew) out of or into a padding block so the
/// audio keeps its offset; leaves the blocks alone when the padding cannot absorb it.
fn absorb_in_padding(out: &mut Vec<OutBlock>, delta: isize) {
    if delta == 0 {
        return;
    }
    let padding = out.iter().position(|b| b.kind == PADDING);
    match padding {
        Some(i) => {
            let p = out[i].body.len() as isize;
            let new_len = p - delta;
            if new_len >= 0 && new_len as usize <= MAX_BLOCK_LEN {
                out[i].body = Body::New(vec![0; new_len as usize]);
                out[i].header_at = None;
            } else if new_len == -(BLOCK_HEADER_LEN as isize) {
                out.remove(i);
            }
        }
        None if delta <= -(BLOCK_HEADER_LEN as isize) => {
            let len = (-delta) as usize - BLOCK_HEADER_LEN;
            if len <= MAX_BLOCK_LEN {
                out.push(OutBlock {
                    kind: PADDING,
                    body: Body::New(vec![0; len]),
                    header_at: None,
                });
            }
        }
        None => {}
    }
}

impl Carrier for FlacCarrier {
    fn formats(&self) -> &'static [Format] {
        &[Format::Flac]
    }

    fn placement(&self) -> &'static str {
        "VORBIS_COMMENT block entry AIGC"
    }

    fn read(&self, input: &[u8]) -> Result<Vec<FoundLabel>, MetaError> {
        let (mut found, at) = mp3::id3_prefix_labels(input)?;
        let (blocks, _) = blocks(input, at)?;
        let mut first_comment_block = true;
        for b in blocks.iter().filter(|b| b.kind == VORBIS_COMMENT) {
            let list = comment_list(input, b)?;
            for l in vorbis_comment::labels(&list) {
                found.push(FoundLabel::new(
                    format!("FLAC VORBIS_COMMENT {}", l.name),
                    first_comment_block && l.is_primary_field(),
                    l.value,
                ));
            }
            first_comment_block = false;
        }
        Ok(found)
    }

    fn write(&self, input: &[u8], record: &AigcRecord) -> Result<Rewrite, MetaError> {
        let value = record.to_wrapped_json();
        let mut rw = Rewrite::new();
        // An ID3v2 tag before fLaC is kept, with any labels in it removed.
        let at = mp3::id3_prefix_without_labels(input, &mut rw)?;
        let (blocks, audio_at) = blocks(input, at)?;
        let mut out = Vec::with_capacity(blocks.len() + 2);
        let mut written = false;
        // Growth of the metadata, to be taken from padding.
        let mut delta: isize = 0;
        for b in &blocks {
            let mut body = Body::Keep(b.body.clone());
            if b.kind == VORBIS_COMMENT {
                let list = comment_list(input, b)?;
                if !written {
                    body = Body::New(vorbis_comment::rebuild(&list, Some(&value))?);
                    written = true;
                } else if vorbis_comment::has_labels(&list) {
                    body = Body::New(vorbis_comment::rebuild(&list, None)?);
                }
                delta += body.len() as isize - b.body.len() as isize;
            }
            let header_at = matches!(body, Body::Keep(_)).then_some(b.start);
            out.push(OutBlock {
                kind: b.kind,
                body,
                header_at,
            });
        }
        if !written {
            let body = Body::New(vorbis_comment::new_list(VENDOR, &value)?);
            delta += (BLOCK_HEADER_LEN + body.len()) as isize;
            // Right after STREAMINFO, which `blocks` checked is first.
            out.insert(
                1,
                OutBlock {
                    kind: VORBIS_COMMENT,
                    body,
                    header_at: None,
                },
            );
        }
        absorb_in_padding(&mut out, delta);
        rw.keep(at..at + MARKER.len());
        let count = out.len();
        for (i, b) in out.into_iter().enumerate() {
            let len = b.body.len();
            if len > MAX_BLOCK_LEN {
                return Err(MetaError::unsupported(
                    FORMAT,
                    format!("a metadata block of {len} bytes exceeds the 24-bit block length"),
                ));
            }
            let last = if i + 1 == count { 0x80 } else { 0 };
            let header = [
                last | b.kind,
                (len >> 16) as u8,
                (len >> 8) as u8,
                len as u8,
            ];
            // Keep an unchanged header's bytes so untouched blocks stay one kept range.
            match b.header_at {
                Some(h) if input.get(h..h + BLOCK_HEADER_LEN) == Some(&header[..]) => {
                    rw.keep(h..h + BLOCK_HEADER_LEN)
                }
                _ => rw.insert(header),
            };
            match b.body {
                Body::Keep(r) => rw.keep(r),
                Body::New(bytes) => rw.insert(bytes),
            };
        }
        rw.keep(audio_at..input.len());
        Ok(rw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    const SAMPLE: &str = "audio.flac";

    fn audio_offset(b: &[u8]) -> usize {
        let (_, at) = mp3::id3_prefix_labels(b).expect("id3");
        blocks(b, at).expect("blocks").1
    }

    #[test]
    fn flac_write_read_one_label_and_audio_keeps_its_offset() {
        let input = sample(SAMPLE);
        let record = record("flac-1");
        let out = write_and_check_idempotent(&FlacCarrier, &input, &record);
        // The sample has a PADDING block: it absorbed the growth, so nothing after it moved.
        assert_eq!(out.len(), input.len());
        let at = audio_offset(&input);
        assert_eq!(audio_offset(&out), at);
        assert_eq!(out[at..], input[at..]);
        // A shorter label gives the bytes back to the padding.
        let long = write_and_check_idempotent(
            &FlacCarrier,
            &input,
            &crate::test_support::record(&"L".repeat(300)),
        );
        let short = write_and_check_idempotent(&FlacCarrier, &long, &record);
        assert_eq!(short, out);
    }

    #[test]
    fn flac_independent_tools_read_our_label() {
        let record = record("flac-tools");
        let input = sample(SAMPLE);
        let out = write_and_check_idempotent(&FlacCarrier, &input, &record);
        let path = temp_file("labelled.flac", &out);
        let exif = exiftool(&path, &[]);
        assert_eq!(exif["Vorbis:Aigc"], record.to_wrapped_json(), "{exif}");
        assert_eq!(exif["Vorbis:Vendor"], "Lavf59.27.100");
        assert_eq!(exif["Vorbis:Encoder"], "Lavf59.27.100");
        let probe = ffprobe_tags(&path);
        assert_eq!(
            probe["format"]["tags"]["AIGC"],
            record.to_wrapped_json(),
            "{probe}"
        );
        assert_same_media(&temp_file("in.flac", &input), &path);
    }

    #[test]
    fn flac_ffmpeg_labels_are_read_and_replaced() {
        let old = record("by-ffmpeg").to_wrapped_json();
        let labelled = ffmpeg_labelled("src.flac", &sample(SAMPLE), &old, &[]);
        let found = FlacCarrier.read(&labelled).expect("read");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].value, old);
        assert!(found[0].primary);
        let record = record("replaced");
        let out = write_and_check_idempotent(&FlacCarrier, &labelled, &record);
        let path = temp_file("replaced.flac", &out);
        assert_eq!(
            exiftool(&path, &[])["Vorbis:Aigc"],
            record.to_wrapped_json()
        );
        assert_same_media(&temp_file("l.flac", &labelled), &path);
    }

    /// The sample without its comment block (STREAMINFO, then the rest).
    fn without_comment_block(input: &[u8]) -> Vec<u8> {
        let (blocks, audio_at) = blocks(input, 0).expect("blocks");
        let mut out = MARKER.to_vec();
        let kept: Vec<_> = blocks.iter().filter(|b| b.kind != VORBIS_COMMENT).collect();
        for (i, b) in kept.iter().enumerate() {
            let mut header = input[b.start..b.body.start].to_vec();
            header[0] = b.kind | if i + 1 == kept.len() { 0x80 } else { 0 };
            out.extend(header);
            out.extend_from_slice(&input[b.body.clone()]);
        }
        out.extend_from_slice(&input[audio_at..]);
        out
    }

    #[test]
    fn flac_without_comment_block_gets_one_after_streaminfo() {
        let input = without_comment_block(&sample(SAMPLE));
        assert!(FlacCarrier.read(&input).expect("read").is_empty());
        let record = record("inserted");
        let out = write_and_check_idempotent(&FlacCarrier, &input, &record);
        let (blocks, _) = blocks(&out, 0).expect("blocks");
        let kinds: Vec<_> = blocks.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [STREAMINFO, VORBIS_COMMENT, PADDING]);
        assert_eq!(out.len(), input.len());
        let path = temp_file("inserted.flac", &out);
        assert_eq!(
            exiftool(&path, &[])["Vorbis:Aigc"],
            record.to_wrapped_json()
        );
        assert_decodes(&path);
        // Without padding the block is inserted anyway and the audio moves.
        let (b, audio_at) = self::blocks(&input, 0).expect("blocks");
        let mut bare = MARKER.to_vec();
        bare.push(0x80);
        bare.extend_from_slice(&input[b[0].start + 1..b[0].body.end]);
        bare.extend_from_slice(&input[audio_at..]);
        let out = write_and_check_idempotent(&FlacCarrier, &bare, &record);
        assert!(out.ends_with(&input[audio_at..]));
        let kinds: Vec<_> = self::blocks(&out, 0)
            .expect("blocks")
            .0
            .iter()
            .map(|b| b.kind)
            .collect();
        assert_eq!(kinds, [STREAMINFO, VORBIS_COMMENT]);
        assert_decodes(&temp_file("bare.flac", &out));
    }

    #[test]
    fn flac_id3_prefix_is_kept_and_its_labels_removed() {
        let json = record("id3").to_wrapped_json();
        let mut frame_data = b"\x03AIGC\x00".to_vec();
        frame_data.extend_from_slice(json.as_bytes());
        let mut frames = b"TIT2\x00\x00\x00\x03\x00\x00\x03ab".to_vec();
        frames.extend_from_slice(b"TXXX");
        frames.extend_from_slice(&[
            0,
            0,
            (frame_data.len() >> 7) as u8,
            (frame_data.len() & 0x7F) as u8,
            0,
            0,
        ]);
        frames.extend(frame_data);
        let mut input = b"ID3\x04\x00\x00".to_vec();
        input.extend_from_slice(&[0, 0, (frames.len() >> 7) as u8, (frames.len() & 0x7F) as u8]);
        input.extend(frames);
        let tag_len = input.len();
        let flac = ffmpeg_labelled("src.flac", &sample(SAMPLE), &json, &[]);
        input.extend_from_slice(&flac);
        let found = FlacCarrier.read(&input).expect("read");
        let places = placements(&found);
        assert_eq!(places, ["ID3v2.4 TXXX:AIGC", "FLAC VORBIS_COMMENT AIGC"]);
        let record = record("after-id3");
        let out = write_and_check_idempotent(&FlacCarrier, &input, &record);
        // The tag keeps its size and its title; the label frame became padding.
        assert_eq!(&out[..10], &input[..10]);
        assert_eq!(&out[10..23], b"TIT2\x00\x00\x00\x03\x00\x00\x03ab");
        assert!(out[23..tag_len].iter().all(|b| *b == 0));
        assert_eq!(out.len(), input.len());
    }

    #[test]
    fn flac_hostile_input_never_panics() {
        let input = sample(SAMPLE);
        let labelled = write(&FlacCarrier, &input, &record("f"));
        let head = &labelled[..audio_offset(&labelled) + 64];
        HostileInputs::head_first(2000, 1).assert_never_panic(&FlacCarrier, head);
        HostileInputs::head_first(1000, 7).assert_never_panic(&FlacCarrier, &labelled);
        assert!(FlacCarrier.read(b"fLaC\x84\x00\x00\x00").is_err());
        assert!(FlacCarrier.read(b"fLaC\x7f\x00\x00\x00").is_err());
    }
}
