//! Helpers for end-to-end tests: run the binary in an isolated home, and run independent tools.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const CODE: &str = "001191440300708461136T1XGW3";
pub const PLATFORM: &str = "001191440300708461136T20000";

/// The bundled samples.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/media")
}

pub fn sample(name: &str) -> PathBuf {
    samples_dir().join(name)
}

/// A scratch directory that also serves as AIGC_MARK_HOME (keys and ledger).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `aigc-mark ARGS` with this scratch dir as its home.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_aigc-mark"))
            .args(args)
            .env("AIGC_MARK_HOME", self.path("home"))
            .output()
            .expect("run aigc-mark")
    }

    /// Runs and parses stdout as JSON, asserting the exit code.
    pub fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "aigc-mark {args:?}\nstdout:{}\nstderr:{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs an independent tool; a missing tool fails the test with a hint.
pub fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed by this test ({e}); install it with: bash .ci/install-deps")
        })
}

/// Every (key, value) pair exiftool reports for a file.
pub fn exiftool_tags(file: &Path) -> Vec<(String, String)> {
    let out = tool(
        "exiftool",
        // -ee: Matroska tags after the clusters are only read with embedded extraction.
        &["-j", "-G1", "-a", "-u", "-ee", &file.display().to_string()],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("exiftool JSON");
    let mut tags = Vec::new();
    if let Some(obj) = v.get(0).and_then(|o| o.as_object()) {
        for (k, val) in obj {
            tags.push((
                k.clone(),
                val.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| val.to_string()),
            ));
        }
    }
    tags
}

/// Every format and stream tag ffprobe reports, as (key, value).
pub fn ffprobe_tags(file: &Path) -> Vec<(String, String)> {
    let out = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format_tags:stream_tags",
            "-of",
            "json",
            &file.display().to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let mut tags = Vec::new();
    let mut collect = |t: &serde_json::Value| {
        if let Some(obj) = t.as_object() {
            for (k, val) in obj {
                tags.push((k.clone(), val.as_str().unwrap_or_default().to_string()));
            }
        }
    };
    if let Some(t) = v.pointer("/format/tags") {
        collect(t);
    }
    for s in v
        .get("streams")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(t) = s.get("tags") {
            collect(t);
        }
    }
    tags
}

/// ffmpeg's hash of every stream's packets, copied without decoding: equal hashes mean the
/// media payload is byte-identical.
pub fn stream_hash(file: &Path) -> String {
    let out = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            &file.display().to_string(),
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "streamhash",
            "-",
        ],
    );
    assert!(
        out.status.success(),
        "ffmpeg streamhash failed on {}: {}",
        file.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// ffmpeg's MD5 of the decoded frames of an image.
pub fn decoded_md5(file: &Path) -> String {
    let out = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            &file.display().to_string(),
            "-map",
            "0:v",
            "-f",
            "framemd5",
            "-",
        ],
    );
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}: {}",
        file.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}
