//! Append-only JSON-lines progress files: how long jobs survive an interruption. One record a
//! line, appended and flushed as each piece of work finishes; a reader skips a torn last line
//! (the write the interruption cut short), so the job resumes with everything else.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A progress file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// The file cannot be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line other than a torn last one is not a record.
    #[error("{}:{line}: not a progress record: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> JsonlError + '_ {
    move |source| JsonlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every record of `path`; a missing file is `None`. An unterminated last line that does
/// not parse is the interrupted write and is dropped.
pub fn read_records<T: DeserializeOwned>(path: &Path) -> Result<Option<Vec<T>>, JsonlError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut records = Vec::with_capacity(lines.len());
    for (k, &(i, line)) in lines.iter().enumerate() {
        match serde_json::from_str::<T>(line) {
            Ok(r) => records.push(r),
            Err(_) if torn_tail && k + 1 == lines.len() => {}
            Err(e) => {
                return Err(JsonlError::Parse {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(Some(records))
}

/// An open progress file that threads append records to.
pub struct RecordAppender {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl RecordAppender {
    /// Opens `path` for appending (created when missing, with its directory). A torn last line
    /// is cut off first, so the next record starts on a line of its own.
    pub fn open(path: &Path) -> Result<Self, JsonlError> {
        let io = io_error(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(&io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(&io)?;
        let whole = std::fs::read(path).map_err(&io)?;
        if whole.last().is_some_and(|&b| b != b'\n') {
            let keep = whole.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64).map_err(&io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line and flushes it.
    pub fn append<T: Serialize>(&self, record: &T) -> Result<(), JsonlError> {
        let io = io_error(&self.path);
        let mut line = serde_json::to_string(record)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        line.push('\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| io(std::io::Error::other("progress file lock poisoned")))?;
        file.write_all(line.as_bytes()).map_err(&io)?;
        file.flush().map_err(&io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        n: u32,
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped_then_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("p.jsonl");
        assert_eq!(read_records::<Rec>(&path).unwrap(), None);
        let w = RecordAppender::open(&path).unwrap();
        w.append(&Rec { n: 1 }).unwrap();
        w.append(&Rec { n: 2 }).unwrap();
        drop(w);
        // An interrupted write leaves half a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"n\":").unwrap();
        drop(f);
        let got: Vec<Rec> = read_records(&path).unwrap().unwrap();
        assert_eq!(got, vec![Rec { n: 1 }, Rec { n: 2 }]);
        // Reopening cuts the torn line off; the next record follows the others.
        let w = RecordAppender::open(&path).unwrap();
        w.append(&Rec { n: 3 }).unwrap();
        drop(w);
        let got: Vec<Rec> = read_records(&path).unwrap().unwrap();
        assert_eq!(got, vec![Rec { n: 1 }, Rec { n: 2 }, Rec { n: 3 }]);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        std::fs::write(&path, "{\"n\":1}\nnot json\n{\"n\":2}\n").unwrap();
        let err = read_records::<Rec>(&path).unwrap_err();
        assert!(err.to_string().contains("p.jsonl:2:"), "{err}");
    }
}
