//! Reading inputs (memory-mapped when large) and writing outputs atomically.

use crate::PipelineError;
use aigc_meta::{Piece, Rewrite};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Files at least this large are memory-mapped instead of read.
const MMAP_THRESHOLD: u64 = 4 << 20;

/// An input file's bytes, and the open file when it is large (so kept ranges can be copied by
/// the kernel instead of through user space).
pub struct InputFile {
    data: InputData,
    file: Option<std::fs::File>,
}

enum InputData {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl InputFile {
    /// Opens `path` for reading; the file is never modified.
    pub fn open(path: &Path) -> Result<Self, PipelineError> {
        let file = std::fs::File::open(path).map_err(|e| PipelineError::io(path, e))?;
        let meta = file.metadata().map_err(|e| PipelineError::io(path, e))?;
        if meta.is_dir() {
            return Err(PipelineError::io(
                path,
                std::io::Error::other("is a directory"),
            ));
        }
        if meta.len() >= MMAP_THRESHOLD {
            // SAFETY: the map is read-only; like every tool that maps inputs, we rely on no
            // other process truncating the file while it is being labelled.
            let map =
                unsafe { memmap2::Mmap::map(&file) }.map_err(|e| PipelineError::io(path, e))?;
            Ok(Self {
                data: InputData::Mapped(map),
                file: Some(file),
            })
        } else {
            let bytes = std::fs::read(path).map_err(|e| PipelineError::io(path, e))?;
            Ok(Self {
                data: InputData::Owned(bytes),
                file: None,
            })
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            InputData::Owned(v) => v,
            InputData::Mapped(m) => m,
        }
    }

    /// The open file, for large inputs.
    pub fn file(&self) -> Option<&std::fs::File> {
        self.file.as_ref()
    }
}

/// Whether two paths name the same existing file (so an output would overwrite an input).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// How an output is written.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    /// Permissions of the output (0644 when `None`).
    pub permissions: Option<std::fs::Permissions>,
    /// Flush the output to disk before it replaces anything (used for `--in-place`, where a crash
    /// must not lose the original). New files are left to the OS, as `cp` does.
    pub durable: bool,
}

/// Kept ranges at least this long are copied file-to-file by the kernel (copy_file_range).
const KERNEL_COPY_MIN: usize = 1 << 20;

/// Writes the pieces of `rewrite`, copying large kept ranges from `input_file` in the kernel.
fn write_pieces(
    out: &std::fs::File,
    input: &[u8],
    input_file: Option<&std::fs::File>,
    rewrite: &Rewrite,
) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    for piece in rewrite.pieces() {
        match (piece, input_file) {
            (Piece::Keep(r), Some(src)) if r.len() >= KERNEL_COPY_MIN => {
                w.flush()?;
                let mut src = src.try_clone()?;
                src.seek(SeekFrom::Start(r.start as u64))?;
                let want = r.len() as u64;
                let copied = std::io::copy(&mut src.take(want), w.get_mut())?;
                if copied != want {
                    return Err(std::io::Error::other(
                        "the input changed while it was being labelled",
                    ));
                }
            }
            (Piece::Keep(r), _) => w.write_all(input.get(r.clone()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "rewrite keeps a range past the end of its input",
                )
            })?)?,
            (Piece::Insert(b), _) => w.write_all(b)?,
        }
    }
    w.flush()
}

/// Writes `rewrite` of `input` to `dest` atomically: a temporary file in the same directory is
/// written, checked by `verify` (given the bytes as written), and only then renamed over `dest`.
/// On any error no file is left behind.
pub fn atomic_write_rewrite<T>(
    dest: &Path,
    input: &[u8],
    input_file: Option<&std::fs::File>,
    rewrite: &Rewrite,
    options: OutputOptions,
    verify: impl FnOnce(&[u8]) -> Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".aigc-mark-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| PipelineError::io(dest, e))?;
    write_pieces(tmp.as_file(), input, input_file, rewrite)
        .map_err(|e| PipelineError::io(dest, e))?;
    if options.durable {
        tmp.as_file()
            .sync_all()
            .map_err(|e| PipelineError::io(dest, e))?;
    }
    let written = InputFile::open(tmp.path())?;
    let result = verify(written.bytes())?;
    drop(written);
    // tempfile creates 0600; give the output the input's permissions, as cp does.
    let permissions = options.permissions.or_else(|| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            Some(std::fs::Permissions::from_mode(0o644))
        }
        #[cfg(not(unix))]
        None
    });
    if let Some(p) = permissions {
        tmp.as_file()
            .set_permissions(p)
            .map_err(|e| PipelineError::io(dest, e))?;
    }
    tmp.persist(dest)
        .map_err(|e| PipelineError::io(dest, e.error))?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_verification_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.bin");
        let mut r = Rewrite::new();
        r.keep(0..3).insert(b"x");
        let err = atomic_write_rewrite(
            &dest,
            b"abc",
            None,
            &r,
            OutputOptions::default(),
            |_| -> Result<(), PipelineError> {
                Err(PipelineError::Verify {
                    path: "out.bin".into(),
                    detail: "no".into(),
                })
            },
        );
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            0,
            "no temp file left"
        );
        atomic_write_rewrite(&dest, b"abc", None, &r, OutputOptions::default(), |bytes| {
            assert_eq!(bytes, b"abcx");
            Ok(())
        })
        .expect("write");
        assert_eq!(std::fs::read(&dest).expect("read"), b"abcx");
    }
}
