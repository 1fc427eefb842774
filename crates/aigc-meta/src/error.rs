//! Errors of the carriers. They describe the problem in the file; callers add the file's name.

/// Why a file's metadata could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The file ends inside a structure.
    #[error("truncated: {what} at byte {offset} runs past the end of the file")]
    Truncated { what: String, offset: u64 },
    /// A structure is inconsistent.
    #[error("malformed {format}: {detail}")]
    Malformed {
        format: &'static str,
        detail: String,
    },
    /// The file is valid but uses a feature this carrier does not handle.
    #[error("unsupported {format}: {detail}")]
    Unsupported {
        format: &'static str,
        detail: String,
    },
    /// The format has no place for a metadata label.
    #[error("{0} files have no metadata field for a label")]
    NoPlacement(&'static str),
}

impl MetaError {
    /// A truncated-structure error.
    pub fn truncated(what: impl Into<String>, offset: usize) -> Self {
        MetaError::Truncated {
            what: what.into(),
            offset: offset as u64,
        }
    }

    /// A malformed-structure error.
    pub fn malformed(format: &'static str, detail: impl Into<String>) -> Self {
        MetaError::Malformed {
            format,
            detail: detail.into(),
        }
    }

    /// An unsupported-feature error.
    pub fn unsupported(format: &'static str, detail: impl Into<String>) -> Self {
        MetaError::Unsupported {
            format,
            detail: detail.into(),
        }
    }
}
