//! Reading inputs (memory-mapped when large) and writing outputs atomically.

use crate::PipelineError;
use aigc_meta::Rewrite;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Files at least this large are memory-mapped instead of read.
const MMAP_THRESHOLD: u64 = 4 << 20;

/// An input file's bytes.
pub enum InputFile {
    /// Read into memory.
    Owned(Vec<u8>),
    /// Memory-mapped.
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
            Ok(InputFile::Mapped(map))
        } else {
            std::fs::read(path)
                .map(InputFile::Owned)
                .map_err(|e| PipelineError::io(path, e))
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            InputFile::Owned(v) => v,
            InputFile::Mapped(m) => m,
        }
    }
}

/// Whether two paths name the same existing file (so an output would overwrite an input).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Writes `rewrite` of `input` to `dest` atomically: a temporary file in the same directory is
/// written, flushed to disk, checked by `verify` (given the bytes as written), and only then
/// renamed over `dest` with `permissions` (0644 when `None`). On any error no file is left behind.
pub fn atomic_write_rewrite<T>(
    dest: &Path,
    input: &[u8],
    rewrite: &Rewrite,
    permissions: Option<std::fs::Permissions>,
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
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
        rewrite
            .write_to(input, &mut w)
            .map_err(|e| PipelineError::io(dest, e))?;
        w.flush().map_err(|e| PipelineError::io(dest, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| PipelineError::io(dest, e))?;
    let written = InputFile::open(tmp.path())?;
    let result = verify(written.bytes())?;
    drop(written);
    // tempfile creates 0600; give the output the input's permissions, as cp does.
    #[cfg(unix)]
    let permissions = permissions.or_else(|| {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::Permissions::from_mode(0o644))
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
        let err = atomic_write_rewrite(&dest, b"abc", &r, None, |_| -> Result<(), PipelineError> {
            Err(PipelineError::Verify {
                path: "out.bin".into(),
                detail: "no".into(),
            })
        });
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            0,
            "no temp file left"
        );
        atomic_write_rewrite(&dest, b"abc", &r, None, |bytes| {
            assert_eq!(bytes, b"abcx");
            Ok(())
        })
        .expect("write");
        assert_eq!(std::fs::read(&dest).expect("read"), b"abcx");
    }
}
