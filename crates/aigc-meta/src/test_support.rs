//! Helpers every carrier's tests share: sample files, records, temp files, the independent tools
//! that read our output back (exiftool, ffprobe, ffmpeg, python3, pdfinfo), label assertions and
//! the hostile-input driver.

use crate::carrier::{Carrier, FoundLabel};
use aigc_core::{AigcRecord, Label};
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A valid provider code (with its GB 32100 check character) for test records.
pub(crate) const PROVIDER: &str = "001191440300708461136T1XGW3";

/// A sample file's bytes from the repository's `samples/media/` folder.
pub(crate) fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/../../samples/media/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read sample {path}: {e}"))
}

/// A first-write record (label 1, [`PROVIDER`]) with a distinguishing produce ID.
pub(crate) fn record(produce_id: &str) -> AigcRecord {
    AigcRecord::new(Label::Generated, PROVIDER, produce_id)
}

/// [`record`] with `reserved` bytes in ReservedCode1, to make labels of a chosen size.
pub(crate) fn record_with_reserved(produce_id: &str, reserved: usize) -> AigcRecord {
    let mut r = record(produce_id);
    r.reserved_code1 = "S".repeat(reserved);
    r
}

/// A path in the temp dir, unique per process and call, removed (if it exists) when dropped.
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    /// The path as a string, for command lines (our temp paths are UTF-8).
    pub(crate) fn arg(&self) -> &str {
        path_arg(&self.0)
    }

    /// The file's current bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap_or_else(|e| panic!("reading {}: {e}", self.0.display()))
    }
}

impl Deref for TempFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh temp path ending in `name`, for a tool to write; nothing is created yet.
pub(crate) fn temp_path(name: &str) -> TempFile {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    TempFile(std::env::temp_dir().join(format!("aigc-meta-{}-{n}-{name}", std::process::id())))
}

/// `bytes` written to a fresh temp file whose name ends in `name` (the extension tools go by).
pub(crate) fn temp_file(name: &str, bytes: &[u8]) -> TempFile {
    let file = temp_path(name);
    std::fs::write(&file.0, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", file.0.display()));
    file
}

/// `path` as a command-line argument.
pub(crate) fn path_arg(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("temp path {} is not UTF-8", path.display()))
}

/// The Debian package that provides `tool`, for the install hint.
fn package_of(tool: &str) -> &str {
    match tool {
        "ffmpeg" | "ffprobe" => "ffmpeg",
        "exiftool" => "libimage-exiftool-perl libarchive-zip-perl",
        "pdfinfo" | "pdftotext" => "poppler-utils",
        other => other,
    }
}

/// Runs `tool` and returns what it did, whatever its exit status; a missing tool fails the test
/// with how to install it.
pub(crate) fn run_output(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {tool} ({e}), the independent reader this test needs: \
             install it (apt-get install {}, or bash .ci/install-deps)",
            package_of(tool)
        )
    })
}

/// Runs `tool` and returns its stdout, failing the test when it is missing or fails.
pub(crate) fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = run_output(tool, args);
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An exiftool config naming the TC260 XMP namespace and the PDF Info `AIGC` key, so exiftool
/// can write labels and names the tags `XMP-TC260:AIGC` / `PDF:AIGC` (without it, it still reads
/// them, as `…:Aigc`).
pub(crate) fn exiftool_config() -> TempFile {
    temp_file(
        "tc260.config",
        br#"%Image::ExifTool::UserDefined = (
    'Image::ExifTool::PDF::Info' => { AIGC => { } },
    'Image::ExifTool::XMP::Main' => {
        TC260 => { SubDirectory => { TagTable => 'Image::ExifTool::UserDefined::TC260' } },
    },
);
%Image::ExifTool::UserDefined::TC260 = (
    GROUPS => { 0 => 'XMP', 1 => 'XMP-TC260', 2 => 'Image' },
    NAMESPACE => { 'TC260' => 'http://www.tc260.org.cn/ns/AIGC/1.0/' },
    WRITABLE => 'string',
    AIGC => { },
);
1;
"#,
    )
}

/// exiftool's `-j -G1 -a` view of the file at `path`, `extra` options first (where `-config`
/// must be): its one object.
pub(crate) fn exiftool(path: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = extra.to_vec();
    args.extend(["-j", "-G1", "-a", path_arg(path)]);
    let out = run("exiftool", &args);
    let mut all: serde_json::Value = serde_json::from_slice(&out).expect("exiftool prints JSON");
    all[0].take()
}

/// exiftool's `-j -G1 -a` view of `bytes` (in a temp file named `name`), TC260 names defined.
pub(crate) fn exiftool_json(name: &str, bytes: &[u8]) -> serde_json::Value {
    let file = temp_file(name, bytes);
    let config = exiftool_config();
    let out = run(
        "exiftool",
        &["-config", config.arg(), "-j", "-G1", "-a", file.arg()],
    );
    let mut all: serde_json::Value = serde_json::from_slice(&out).expect("exiftool prints JSON");
    all[0].take()
}

/// `bytes` after exiftool ran `args` on them (in a temp file named `name`); the TC260 names are
/// defined, so `-XMP-TC260:AIGC=…` works.
pub(crate) fn exiftool_write(name: &str, bytes: &[u8], args: &[&str]) -> Vec<u8> {
    let file = temp_file(name, bytes);
    let config = exiftool_config();
    let mut all = vec!["-config", config.arg(), "-q", "-overwrite_original"];
    all.extend(args);
    all.push(file.arg());
    run("exiftool", &all);
    file.bytes()
}

/// `bytes` (in a temp file named `name`) with `record` written by exiftool as XMP `TC260:AIGC`,
/// `extra` exiftool arguments added: a label another tool wrote.
pub(crate) fn exiftool_xmp_labelled(
    name: &str,
    bytes: &[u8],
    record: &AigcRecord,
    extra: &[&str],
) -> Vec<u8> {
    let label = format!("-XMP-TC260:AIGC={}", record.to_bare_json());
    let mut args = vec![label.as_str()];
    args.extend(extra);
    exiftool_write(name, bytes, &args)
}

/// exiftool's view of `bytes` (in a temp file named `name`), asserted to hold `record` as XMP
/// `TC260:AIGC` and to give no warning.
pub(crate) fn assert_exiftool_reads_xmp_label(
    name: &str,
    bytes: &[u8],
    record: &AigcRecord,
) -> serde_json::Value {
    let tags = exiftool_json(name, bytes);
    assert_eq!(
        tags["XMP-TC260:AIGC"],
        record.to_bare_json(),
        "{name}: {tags:#}"
    );
    assert!(tags.get("ExifTool:Warning").is_none(), "{name}: {tags:#}");
    tags
}

/// Labels written by exiftool and by us, and our output, from
/// [`assert_replaces_exiftool_xmp_label`].
pub(crate) struct Replaced {
    /// The label exiftool wrote.
    pub(crate) theirs: AigcRecord,
    /// The label we wrote over it.
    pub(crate) ours: AigcRecord,
    /// Our output.
    pub(crate) out: Vec<u8>,
}

/// A label exiftool wrote in XMP (next to a `dc:Title`) into `input` is read as the one label;
/// ours replaces it, and exiftool then reads ours with the title kept.
pub(crate) fn assert_replaces_exiftool_xmp_label(
    carrier: &dyn Carrier,
    name: &str,
    input: &[u8],
) -> Replaced {
    let theirs = record("by-exiftool");
    let labelled = exiftool_xmp_labelled(name, input, &theirs, &["-XMP-dc:Title=t"]);
    assert_one_label(carrier, &labelled, &theirs);
    let ours = record("ours");
    let out = write_and_check(carrier, &labelled, &ours);
    let tags = assert_exiftool_reads_xmp_label(name, &out, &ours);
    assert_eq!(tags["XMP-dc:Title"], "t");
    Replaced { theirs, ours, out }
}

/// ffprobe's format and stream tags of the file at `path`, as its JSON
/// (`{"format":{"tags":…},"streams":[{"tags":…}]}`).
pub(crate) fn ffprobe_tags(path: &Path) -> serde_json::Value {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format_tags:stream_tags",
            "-of",
            "json",
            path_arg(path),
        ],
    );
    serde_json::from_slice(&out).expect("ffprobe prints JSON")
}

/// ffprobe's format (container) tags of the file at `path`.
pub(crate) fn ffprobe_format_tags(path: &Path) -> serde_json::Value {
    ffprobe_tags(path)["format"]["tags"].take()
}

/// Asserts every format tag ffprobe reads in `before` is still in `after_tags` (ffprobe's format
/// tags of the labelled file), with the same value: other metadata survives labelling.
pub(crate) fn assert_format_tags_kept(before: &Path, after_tags: &serde_json::Value) {
    let tags = ffprobe_format_tags(before);
    for (k, v) in tags.as_object().expect("ffprobe format tags") {
        assert_eq!(&after_tags[k], v, "{}: tag {k}", before.display());
    }
}

/// A hash of every packet of every stream (`-c copy -f streamhash`): equal for two files exactly
/// when their media bytes are, whatever their container bytes.
pub(crate) fn streamhash(path: &Path) -> String {
    let out = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path_arg(path),
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "streamhash",
            "-",
        ],
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Asserts the file at `after` holds the same media packets as `before` and decodes cleanly.
pub(crate) fn assert_same_media(before: &Path, after: &Path) {
    assert_eq!(
        streamhash(before),
        streamhash(after),
        "media of {} and {} differ",
        before.display(),
        after.display()
    );
    assert_decodes(after);
}

/// Asserts ffmpeg decodes the whole file without a single error message.
pub(crate) fn assert_decodes(path: &Path) {
    let out = run_output(
        "ffmpeg",
        &["-v", "error", "-i", path_arg(path), "-f", "null", "-"],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{} does not decode cleanly: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The MD5 of everything ffmpeg decodes from the file at `path` (`-f md5`).
pub(crate) fn decoded_md5(path: &Path) -> String {
    let out = run(
        "ffmpeg",
        &["-v", "error", "-i", path_arg(path), "-f", "md5", "-"],
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// ffmpeg's per-frame MD5s of the video frames of `bytes` (in a temp file named `name`), which
/// must decode cleanly and hold at least one frame.
pub(crate) fn decoded_frames_md5(name: &str, bytes: &[u8]) -> String {
    let file = temp_file(name, bytes);
    let out = run_output(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            file.arg(),
            "-map",
            "0:v",
            "-f",
            "framemd5",
            "-",
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg decode of {name} reported: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md5 = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        md5.lines().any(|l| !l.starts_with('#')),
        "no frames decoded from {name}"
    );
    md5
}

/// `input` (in a temp file named `name`) remuxed by ffmpeg (`-map 0 -c copy`) with `args` before
/// the output: e.g. `-metadata AIGC=…` to get a file labelled by another tool.
pub(crate) fn ffmpeg_copy(name: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
    ffmpeg_copy_to(name, input, args).bytes()
}

/// [`ffmpeg_copy`], returning the output file (named `name`) for further tools to read.
pub(crate) fn ffmpeg_copy_to(name: &str, input: &[u8], args: &[&str]) -> TempFile {
    let src = temp_file(name, input);
    let dst = temp_path(name);
    let mut all = vec!["-v", "error", "-y", "-i", src.arg()];
    all.extend(["-map", "0", "-c", "copy"]);
    all.extend(args);
    all.push(dst.arg());
    run("ffmpeg", &all);
    dst
}

/// `input` (in a temp file named `name`) labelled by ffmpeg with `-metadata AIGC=value`, `extra`
/// options added: a label written by another tool.
pub(crate) fn ffmpeg_labelled(name: &str, input: &[u8], value: &str, extra: &[&str]) -> Vec<u8> {
    let metadata = format!("AIGC={value}");
    let mut args = extra.to_vec();
    args.extend(["-metadata", &metadata]);
    ffmpeg_copy(name, input, &args)
}

/// What [`assert_replaces_ffmpeg_label`] made, for further checks.
pub(crate) struct FfmpegReplaced {
    /// The label we wrote over ffmpeg's.
    pub(crate) ours: AigcRecord,
    /// Our output, in a temp file.
    pub(crate) out: TempFile,
}

/// A label ffmpeg wrote (`-metadata AIGC=…`, `extra` options) into sample `name` is read as the
/// one label; ours (stored in `form`) replaces it, ffprobe reads ours, ffmpeg's `encoder_key`
/// format tag survives and the media packets are unchanged.
pub(crate) fn assert_replaces_ffmpeg_label(
    carrier: &dyn Carrier,
    name: &str,
    extra: &[&str],
    form: Form,
    encoder_key: &str,
) -> FfmpegReplaced {
    let theirs = record("written-by-ffmpeg").to_wrapped_json();
    let ff = ffmpeg_copy_to(
        &format!("ff-{name}"),
        &sample(name),
        &[extra, &["-metadata", &format!("AIGC={theirs}")]].concat(),
    );
    assert_eq!(only_label(carrier, &ff.bytes()).value, theirs, "{name}");
    let ours = record("ours");
    let out = temp_file(&format!("out-{name}"), &write(carrier, &ff.bytes(), &ours));
    assert_one_label_as(carrier, &out.bytes(), &ours, form);
    let tags = ffprobe_format_tags(&out);
    assert_eq!(tags["AIGC"], value_in(&ours, form), "{name}");
    assert_eq!(
        tags[encoder_key],
        ffprobe_format_tags(&ff)[encoder_key],
        "{name}"
    );
    assert_same_media(&ff, &out);
    FfmpegReplaced { ours, out }
}

/// `input` with `record` written by `carrier`.
pub(crate) fn write(carrier: &dyn Carrier, input: &[u8], record: &AigcRecord) -> Vec<u8> {
    carrier.write(input, record).expect("write").to_vec(input)
}

/// The one label in `bytes`, asserted to be a valid primary label.
pub(crate) fn only_label(carrier: &dyn Carrier, bytes: &[u8]) -> FoundLabel {
    let labels = carrier.read(bytes).expect("read");
    assert_eq!(labels.len(), 1, "exactly one label: {labels:#?}");
    let label = labels.into_iter().next().expect("one label");
    assert!(
        label.primary && label.parsed.is_valid(),
        "a valid primary label: {label:#?}"
    );
    label
}

/// Where each label was found, in file order.
pub(crate) fn placements(labels: &[FoundLabel]) -> Vec<&str> {
    labels.iter().map(|l| l.placement.as_str()).collect()
}

/// Asserts `bytes` hold exactly one label: `record`, valid, in the primary placement.
pub(crate) fn assert_one_label(
    carrier: &dyn Carrier,
    bytes: &[u8],
    record: &AigcRecord,
) -> FoundLabel {
    let label = only_label(carrier, bytes);
    assert_eq!(label.parsed.record.as_ref(), Some(record), "{label:#?}");
    label
}

/// How a label value is stored.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Form {
    /// `{"AIGC":{…}}`, where the field has another name.
    Wrapped,
    /// The bare object, where the field is already named AIGC.
    Bare,
}

/// [`assert_one_label`], the value stored exactly as our writer spells `record` in `form`.
pub(crate) fn assert_one_label_as(
    carrier: &dyn Carrier,
    bytes: &[u8],
    record: &AigcRecord,
    form: Form,
) -> FoundLabel {
    let label = assert_one_label(carrier, bytes, record);
    assert_eq!(label.value, value_in(record, form));
    label
}

/// `record` as our writers store it in `form`.
pub(crate) fn value_in(record: &AigcRecord, form: Form) -> String {
    match form {
        Form::Wrapped => record.to_wrapped_json(),
        Form::Bare => record.to_bare_json(),
    }
}

/// Writes `record` into `input` and checks the output holds exactly it, and that writing another
/// record over it leaves exactly that one. Returns the first output.
pub(crate) fn write_and_check(carrier: &dyn Carrier, input: &[u8], record: &AigcRecord) -> Vec<u8> {
    let out = write(carrier, input, record);
    assert_one_label(carrier, &out, record);
    let other = self::record("again");
    let again = write(carrier, &out, &other);
    assert_one_label(carrier, &again, &other);
    out
}

/// [`write_and_check`], and writing the same record again changes nothing.
pub(crate) fn write_and_check_idempotent(
    carrier: &dyn Carrier,
    input: &[u8],
    record: &AigcRecord,
) -> Vec<u8> {
    let out = write_and_check(carrier, input, record);
    let same = write(carrier, &out, record);
    assert_one_label(carrier, &same, record);
    assert_eq!(
        same, out,
        "relabelling with the same record changes nothing"
    );
    out
}

/// xorshift64: a small deterministic generator, so hostile cases are the same on every run.
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Hostile variants of one good input: truncations, and copies with a few bytes changed, aimed
/// mostly at where the parser works.
#[derive(Debug, Clone)]
pub(crate) struct HostileInputs {
    stride: usize,
    cases: usize,
    hot: Vec<Range<usize>>,
    cut_hot_densely: bool,
    read_back: bool,
}

impl HostileInputs {
    /// The input cut at every `stride`-th offset (and whole), and `cases` copies with 1 to 4
    /// bytes changed anywhere.
    pub(crate) fn new(cases: usize, stride: usize) -> Self {
        Self {
            stride: stride.max(1),
            cases,
            hot: Vec::new(),
            cut_hot_densely: false,
            read_back: false,
        }
    }

    /// [`Self::new`] for formats whose metadata comes first (tags before audio frames): changes
    /// aimed at the first 4 KiB, and the outputs of changed copies read back.
    pub(crate) fn head_first(cases: usize, stride: usize) -> Self {
        Self::new(cases, stride).hot(0..4096).read_back()
    }

    /// Aims three in four changed bytes at `range` (clipped to the input) and the other hot
    /// ranges: the metadata the parser reads, rather than payload it only keeps.
    pub(crate) fn hot(mut self, range: Range<usize>) -> Self {
        self.hot.push(range);
        self
    }

    /// Also cuts at every offset inside the hot ranges.
    pub(crate) fn cut_hot_densely(mut self) -> Self {
        self.cut_hot_densely = true;
        self
    }

    /// Also reads back the output written for each changed copy (doubles the time per copy).
    pub(crate) fn read_back(mut self) -> Self {
        self.read_back = true;
        self
    }

    /// Calls `exercise` with every variant of `input`; returns how many there were.
    pub(crate) fn for_each(&self, input: &[u8], mut exercise: impl FnMut(&[u8])) -> usize {
        let len = input.len();
        let hot: Vec<Range<usize>> = self
            .hot
            .iter()
            .map(|r| r.start.min(len)..r.end.min(len))
            .filter(|r| !r.is_empty())
            .collect();
        let in_hot = |c: usize| self.cut_hot_densely && hot.iter().any(|r| r.contains(&c));
        let mut count = 0;
        for cut in (0..=len).filter(|c| c % self.stride == 0 || *c == len || in_hot(*c)) {
            exercise(&input[..cut]);
            count += 1;
        }
        if len == 0 {
            return count;
        }
        let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
        let mut buf = input.to_vec();
        for _ in 0..self.cases {
            buf.copy_from_slice(input);
            for _ in 0..1 + rng.below(4) {
                let span = if !hot.is_empty() && rng.below(4) != 0 {
                    hot[rng.below(hot.len())].clone()
                } else {
                    0..len
                };
                let at = span.start + rng.below(span.len());
                buf[at] ^= (1 + rng.below(255)) as u8;
            }
            exercise(&buf);
            count += 1;
        }
        count
    }

    /// Asserts `carrier` survives every variant: `read` and `write` return (Ok or Err) without
    /// panicking, a rewrite keeps only ranges of its input, and (with [`Self::read_back`]) the
    /// output written for a changed copy can be read again.
    /// `check` sees each accepted (input, output) pair. Returns how many variants there were.
    pub(crate) fn assert_never_panic_and(
        &self,
        carrier: &dyn Carrier,
        input: &[u8],
        mut check: impl FnMut(&[u8], &[u8]),
    ) -> usize {
        let record = record("fuzz");
        self.for_each(input, |b| {
            let _ = carrier.read(b);
            if let Ok(rw) = carrier.write(b, &record) {
                let mut out = Vec::new();
                rw.write_to(b, &mut out)
                    .unwrap_or_else(|e| panic!("rewrite of a {}-byte input: {e}", b.len()));
                if self.read_back && b.len() == input.len() {
                    let _ = carrier.read(&out);
                }
                check(b, &out);
            }
        })
    }

    /// [`Self::assert_never_panic_and`] with no further check.
    pub(crate) fn assert_never_panic(&self, carrier: &dyn Carrier, input: &[u8]) -> usize {
        self.assert_never_panic_and(carrier, input, |_, _| {})
    }
}

/// Cuts `input` at every `stride`-th offset and changes 1 to 4 bytes anywhere in `cases` copies:
/// `carrier` must never panic (see [`HostileInputs`] to aim the changes).
pub(crate) fn assert_hostile_inputs_never_panic(
    carrier: &dyn Carrier,
    input: &[u8],
    cases: usize,
    stride: usize,
) -> usize {
    HostileInputs::new(cases, stride).assert_never_panic(carrier, input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_inputs_cut_where_asked_and_aim_changes_at_hot_ranges() {
        let input: Vec<u8> = (0..100u8).collect();
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let n = HostileInputs::new(50, 10)
            .hot(20..30)
            .cut_hot_densely()
            .for_each(&input, |b| seen.push(b.to_vec()));
        assert_eq!(n, seen.len());
        // The cuts come first: 0, 10, …, 100 plus 21..=29 (20 and 30 are already there).
        let (cuts, copies) = seen.split_at(11 + 9);
        let lens: Vec<usize> = cuts.iter().map(Vec::len).collect();
        assert!(lens.windows(2).all(|w| w[0] < w[1]), "{lens:?}");
        assert!(lens.contains(&25) && lens.contains(&100) && !lens.contains(&35));
        assert!(cuts.iter().all(|c| input.starts_with(c)));
        // Every copy has the input's length, and most have changed bytes in the hot range.
        assert_eq!(copies.len(), 50);
        assert!(copies.iter().all(|c| c.len() == input.len()));
        let hot_changes = copies.iter().filter(|c| c[20..30] != input[20..30]).count();
        assert!(hot_changes > 25, "{hot_changes}");
    }

    /// A broken carrier whose rewrite keeps a byte past the end of its input.
    struct KeepsPastTheEnd;

    impl Carrier for KeepsPastTheEnd {
        fn formats(&self) -> &'static [aigc_core::Format] {
            &[]
        }

        fn placement(&self) -> &'static str {
            "nowhere"
        }

        fn read(&self, _: &[u8]) -> Result<Vec<FoundLabel>, crate::MetaError> {
            Ok(Vec::new())
        }

        fn write(&self, input: &[u8], _: &AigcRecord) -> Result<crate::Rewrite, crate::MetaError> {
            let mut rw = crate::Rewrite::new();
            rw.keep(0..input.len() + 1);
            Ok(rw)
        }
    }

    #[test]
    #[should_panic(expected = "rewrite keeps a range past the end of its input")]
    fn the_driver_fails_a_rewrite_that_keeps_bytes_past_its_input() {
        assert_hostile_inputs_never_panic(&KeepsPastTheEnd, b"abc", 1, 1);
    }

    #[test]
    fn xorshift_is_deterministic_and_bounded() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        for _ in 0..100 {
            let x = a.below(13);
            assert_eq!(x, b.below(13));
            assert!(x < 13);
        }
        assert_ne!(XorShift::new(0).next_u64(), 0);
    }
}
