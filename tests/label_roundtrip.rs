//! End to end: `aigc-mark label` on every bundled sample, then the label is read back by our
//! `inspect` and by independent tools (exiftool, ffprobe, pdfinfo), and the payload is shown
//! to be untouched.

mod common;

use common::*;
use std::collections::HashMap;
use std::path::Path;

/// How to prove the content itself did not change.
#[derive(Clone, Copy, Debug)]
enum Payload {
    /// Packet hashes of every audio/video stream (ffmpeg stream copy).
    Streams,
    /// Decoded image frames.
    Decoded,
    /// The input is an exact prefix of the output (incremental update).
    Prefix,
    /// Every ZIP entry except the metadata parts keeps its bytes.
    Zip,
    /// The text after the front matter is unchanged.
    Text,
}

struct Case {
    file: &'static str,
    exiftool: bool,
    ffprobe: bool,
    payload: Payload,
}

const fn case(file: &'static str, exiftool: bool, ffprobe: bool, payload: Payload) -> Case {
    Case {
        file,
        exiftool,
        ffprobe,
        payload,
    }
}

const CASES: &[Case] = &[
    case("image.jpg", true, false, Payload::Decoded),
    case("image-exif-xmp.jpg", true, false, Payload::Decoded),
    case("image.png", true, false, Payload::Decoded),
    case("image-xmp.png", true, false, Payload::Decoded),
    case("image.webp", true, false, Payload::Decoded),
    case("image-lossy.webp", true, false, Payload::Decoded),
    case("image.gif", true, false, Payload::Decoded),
    case("image-animated.gif", true, false, Payload::Decoded),
    case("image.tif", true, false, Payload::Decoded),
    case("video.mp4", true, true, Payload::Streams),
    case("video-moov-last.mp4", true, true, Payload::Streams),
    case("video.mov", true, true, Payload::Streams),
    case("audio.m4a", true, true, Payload::Streams),
    case("video.mkv", true, true, Payload::Streams),
    case("video.webm", true, true, Payload::Streams),
    case("video.avi", true, true, Payload::Streams),
    case("video.flv", true, true, Payload::Streams),
    case("audio.wav", true, false, Payload::Streams),
    case("audio.mp3", true, true, Payload::Streams),
    case("audio.flac", true, true, Payload::Streams),
    case("audio.ogg", true, true, Payload::Streams),
    case("audio.opus", true, true, Payload::Streams),
    case("document.pdf", true, false, Payload::Prefix),
    case("document-xref-stream.pdf", true, false, Payload::Prefix),
    case("document.docx", true, false, Payload::Zip),
    case("document-custom.docx", true, false, Payload::Zip),
    case("sheet.xlsx", true, false, Payload::Zip),
    case("slides.pptx", true, false, Payload::Zip),
    case("text.md", false, false, Payload::Text),
    case("text-frontmatter.md", false, false, Payload::Text),
    case("text.txt", false, false, Payload::Text),
];

/// Whether a tool's tags hold our label: a tag named like AIGC (or an ID3 user text described as
/// AIGC) whose value contains the ProduceID. Binary values are extracted with `exiftool -b`.
fn holds_label(tags: &[(String, String)], produce_id: &str, file: &Path) -> bool {
    tags.iter().any(|(k, v)| {
        let named = k.to_ascii_lowercase().contains("aigc") || v.starts_with("(AIGC) ");
        if !named {
            return false;
        }
        if v.starts_with("(Binary data") {
            let out = tool(
                "exiftool",
                &["-b", "-u", &format!("-{k}"), &file.display().to_string()],
            );
            return text(&out.stdout).contains(produce_id);
        }
        v.contains(produce_id)
    })
}

fn warnings(tags: &[(String, String)]) -> Vec<String> {
    tags.iter()
        .filter(|(k, _)| k.ends_with(":Warning"))
        .map(|(_, v)| v.clone())
        .collect()
}

fn zip_entries(file: &Path) -> HashMap<String, String> {
    // Python's zipfile is an independent reader of the package.
    let script = "import sys,zipfile,hashlib\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n\
                  for i in z.infolist(): print(i.filename, hashlib.sha256(z.read(i)).hexdigest(), i.CRC)";
    let out = tool("python3", &["-c", script, &file.display().to_string()]);
    assert!(
        out.status.success(),
        "python zipfile rejects {}: {}",
        file.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect()
}

fn check_payload(case: &Case, input: &Path, output: &Path) {
    match case.payload {
        Payload::Streams => assert_eq!(
            stream_hash(input),
            stream_hash(output),
            "{}: streams changed",
            case.file
        ),
        Payload::Decoded => assert_eq!(
            decoded_md5(input),
            decoded_md5(output),
            "{}: pixels changed",
            case.file
        ),
        Payload::Prefix => {
            let (a, b) = (
                std::fs::read(input).expect("read"),
                std::fs::read(output).expect("read"),
            );
            assert!(
                b.starts_with(&a) && b.len() > a.len(),
                "{}: not an incremental update",
                case.file
            );
            let info = tool("pdfinfo", &[&output.display().to_string()]);
            assert!(
                info.status.success() && info.stderr.is_empty(),
                "pdfinfo: {}",
                text(&info.stderr)
            );
        }
        Payload::Zip => {
            let (a, b) = (zip_entries(input), zip_entries(output));
            for (name, hash) in &a {
                let changed_ok = matches!(
                    name.as_str(),
                    "[Content_Types].xml" | "_rels/.rels" | "docProps/custom.xml"
                );
                if !changed_ok {
                    assert_eq!(
                        b.get(name),
                        Some(hash),
                        "{}: entry {name} changed",
                        case.file
                    );
                }
            }
        }
        Payload::Text => {
            let (a, b) = (
                std::fs::read_to_string(input).expect("read"),
                std::fs::read_to_string(output).expect("read"),
            );
            let body = |s: &str| -> String {
                match s
                    .strip_prefix("---\n")
                    .and_then(|r| r.split_once("\n---\n"))
                {
                    Some((front, rest)) => {
                        let kept: Vec<_> = front
                            .lines()
                            .filter(|l| !l.starts_with("AIGC:") && !l.starts_with("  "))
                            .collect();
                        format!("{}|{rest}", kept.join("\n"))
                    }
                    None => format!("|{s}"),
                }
            };
            assert_eq!(body(&a), body(&b), "{}: text changed", case.file);
        }
    }
}

#[test]
fn every_sample_is_labelled_and_read_back_by_independent_tools() {
    let s = Scratch::new();
    let out_dir = s.path("out");
    let out_str = out_dir.display().to_string();
    let samples = samples_dir().display().to_string();
    let report = s.json(
        &[
            "label",
            &samples,
            "-o",
            &out_str,
            "--producer",
            CODE,
            "--metadata-only",
            "--json",
        ],
        0,
    );
    let labelled = report["labelled"].as_array().expect("labelled list");
    let ids: HashMap<String, String> = labelled
        .iter()
        .map(|o| {
            let name = Path::new(o["output"].as_str().unwrap_or_default())
                .file_name()
                .unwrap_or_default();
            (
                name.to_string_lossy().into_owned(),
                o["record"]["ProduceID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut failures = Vec::new();
    for case in CASES {
        let Some(id) = ids.get(case.file) else {
            failures.push(format!("{}: not labelled ({report})", case.file));
            continue;
        };
        let output = out_dir.join(case.file);
        let input = sample(case.file);
        // Our reader: exactly one valid label.
        let inspect = s.json(
            &[
                "inspect",
                "--json",
                "--require-label",
                &output.display().to_string(),
            ],
            0,
        );
        let labels = inspect["files"][0]["labels"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if labels.len() != 1 || labels[0]["record"]["ProduceID"] != id.as_str() {
            failures.push(format!("{}: inspect found {labels:?}", case.file));
        }
        let tags = exiftool_tags(&output);
        if case.exiftool && !holds_label(&tags, id, &output) {
            failures.push(format!(
                "{}: exiftool does not show the label: {tags:?}",
                case.file
            ));
        }
        let before = warnings(&exiftool_tags(&input));
        let new_warnings: Vec<_> = warnings(&tags)
            .into_iter()
            .filter(|w| !before.contains(w))
            .collect();
        if !new_warnings.is_empty() {
            failures.push(format!(
                "{}: exiftool warns about our output: {new_warnings:?}",
                case.file
            ));
        }
        if case.ffprobe && !holds_label(&ffprobe_tags(&output), id, &output) {
            failures.push(format!(
                "{}: ffprobe does not show the label: {:?}",
                case.file,
                ffprobe_tags(&output)
            ));
        }
        check_payload(case, &input, &output);
        // Labelling the output again leaves exactly one label.
        let again = s.path(&format!("again-{}", case.file));
        let again_str = again.display().to_string();
        s.json(
            &[
                "label",
                &output.display().to_string(),
                "-o",
                &again_str,
                "--producer",
                CODE,
                "--json",
            ],
            0,
        );
        let inspect = s.json(&["inspect", "--json", "--require-label", &again_str], 0);
        if inspect["files"][0]["labels"].as_array().map(Vec::len) != Some(1) {
            failures.push(format!(
                "{}: relabelling left {:?}",
                case.file, inspect["files"][0]["labels"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        labelled.len(),
        CASES.len(),
        "every sample with a carrier is covered by a case"
    );
}

#[test]
fn pdfinfo_lists_the_custom_aigc_entry() {
    let s = Scratch::new();
    let out = s.path("doc.pdf").display().to_string();
    s.json(
        &[
            "label",
            &sample("document.pdf").display().to_string(),
            "-o",
            &out,
            "--producer",
            CODE,
            "--produce-id",
            "pdf-1",
            "--json",
        ],
        0,
    );
    let info = tool("pdfinfo", &["-custom", &out]);
    let listing = text(&info.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("AIGC:") && l.contains("pdf-1")),
        "{listing}"
    );
}

#[test]
fn labels_written_by_ffmpeg_and_exiftool_are_read() {
    let s = Scratch::new();
    let value = format!(
        r#"{{"Label":"1","ContentProducer":"{CODE}","ProduceID":"by-ffmpeg","ReservedCode1":"","ContentPropagator":"{CODE}","PropagateID":"by-ffmpeg","ReservedCode2":""}}"#
    );
    let mp4 = s.path("ffmpeg.mp4").display().to_string();
    let st = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &sample("video.mp4").display().to_string(),
            "-c",
            "copy",
            "-metadata",
            &format!("AIGC={value}"),
            "-movflags",
            "use_metadata_tags",
            &mp4,
        ],
    );
    assert!(st.status.success(), "{}", text(&st.stderr));
    let r = s.json(&["inspect", "--json", "--require-label", &mp4], 0);
    assert_eq!(
        r["files"][0]["labels"][0]["record"]["ProduceID"],
        "by-ffmpeg"
    );

    // exiftool writes the TC260 XMP property when told the namespace in a config file.
    let cfg = s.path("tc260.config");
    std::fs::write(
        &cfg,
        "%Image::ExifTool::UserDefined = ('Image::ExifTool::XMP::Main' => { TC260 => { SubDirectory => \
         { TagTable => 'Image::ExifTool::UserDefined::TC260' } } });\n\
         %Image::ExifTool::UserDefined::TC260 = (GROUPS => { 0 => 'XMP', 1 => 'XMP-TC260', 2 => 'Image' }, \
         NAMESPACE => { 'TC260' => 'http://www.tc260.org.cn/ns/AIGC/1.0/' }, WRITABLE => 'string', AIGC => { });\n1;\n",
    )
    .expect("config");
    let jpg = s.path("exiftool.jpg");
    std::fs::copy(sample("image.jpg"), &jpg).expect("copy");
    let jpg = jpg.display().to_string();
    let st = tool(
        "exiftool",
        &[
            "-config",
            &cfg.display().to_string(),
            "-q",
            "-overwrite_original",
            &format!(
                "-XMP-TC260:AIGC={}",
                value.replace("by-ffmpeg", "by-exiftool")
            ),
            &jpg,
        ],
    );
    assert!(st.status.success(), "{}", text(&st.stderr));
    let r = s.json(&["inspect", "--json", "--require-label", &jpg], 0);
    assert_eq!(
        r["files"][0]["labels"][0]["record"]["ProduceID"],
        "by-exiftool"
    );
    // Our label replaces theirs: exactly one remains.
    let out = s.path("ours.jpg").display().to_string();
    s.json(
        &[
            "label",
            &jpg,
            "-o",
            &out,
            "--producer",
            CODE,
            "--produce-id",
            "ours",
            "--json",
        ],
        0,
    );
    let r = s.json(&["inspect", "--json", "--require-label", &out], 0);
    assert_eq!(r["files"][0]["labels"].as_array().map(Vec::len), Some(1));
    assert_eq!(r["files"][0]["labels"][0]["record"]["ProduceID"], "ours");
}
