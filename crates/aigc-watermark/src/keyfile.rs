//! Watermark key files: `<name>.wmkey.json` in the same key directory as the signing keys,
//! mode 0600, JSON (`aigc-mark-wmkey/1`):
//!
//! ```json
//! {"format":"aigc-mark-wmkey/1","name":"studio","key_id":"<16 hex>","secret_key":"<64 hex>","provider":"<code, optional>"}
//! ```
//!
//! A watermark key is symmetric (embedding and detection both need it), so there is no public
//! half: give it only to parties that may detect the mark.

use crate::key::WatermarkKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` value of a watermark key file.
pub const WMKEY_FORMAT: &str = "aigc-mark-wmkey/1";
/// The file-name suffix of watermark key files.
pub const WMKEY_SUFFIX: &str = ".wmkey.json";

/// Why a watermark key could not be made, found or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a watermark key file.
    #[error("{path}: not a watermark key file: {detail}")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// No key of that name, id or path.
    #[error(
        "no watermark key {spec:?} (not a file, and no {spec}{WMKEY_SUFFIX} or key id in {dir})"
    )]
    NotFound {
        /// What was asked for.
        spec: String,
        /// The key directory searched.
        dir: String,
    },
    /// The key directory holds no watermark key.
    #[error(
        "no watermark key in {dir}: create one with `aigc-mark keygen --watermark` (or pass --key FILE)"
    )]
    NoKey {
        /// The key directory.
        dir: String,
    },
    /// Several keys and none chosen.
    #[error("{dir} holds several watermark keys ({names}): choose one with --key NAME")]
    Ambiguous {
        /// The key directory.
        dir: String,
        /// Their names.
        names: String,
    },
    /// The name cannot be a file name.
    #[error(
        "watermark key name {0:?}: use 1–64 letters, digits, '-', '_' or '.' (not starting with '.')"
    )]
    BadName(String),
    /// A key of that name already exists.
    #[error("{0} already exists: choose another --name")]
    Exists(String),
    /// The system's random source failed.
    #[error("cannot draw a random key: {0}")]
    Random(String),
}

/// A watermark key as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatermarkKeyFile {
    /// Always `aigc-mark-wmkey/1`.
    pub format: String,
    /// The key's name (also the file name stem).
    pub name: String,
    /// Public identifier: hex of the first 8 bytes of SHA-256 over the key.
    pub key_id: String,
    /// The 32 secret bytes in hex.
    pub secret_key: String,
    /// The provider code the key belongs to, when given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A key loaded from a file, with what identifies it.
#[derive(Debug, Clone)]
pub struct NamedKey {
    /// The key.
    pub key: WatermarkKey,
    /// Its name.
    pub name: String,
    /// Its public id.
    pub key_id: String,
    /// Its provider, when recorded.
    pub provider: Option<String>,
    /// The file it came from.
    pub path: PathBuf,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl WatermarkKeyFile {
    /// The file form of `key`.
    pub fn new(key: &WatermarkKey, name: &str, provider: Option<&str>) -> Self {
        Self {
            format: WMKEY_FORMAT.into(),
            name: name.into(),
            key_id: key.key_id(),
            secret_key: hex::encode(key.as_bytes()),
            provider: provider.map(str::to_string),
        }
    }

    /// Reads and checks a key file.
    pub fn load(path: &Path) -> Result<NamedKey, KeyFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
            path: shown.clone(),
            source,
        })?;
        let bad = |detail: String| KeyFileError::Bad {
            path: shown.clone(),
            detail,
        };
        let file: WatermarkKeyFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON of the form: {e}")))?;
        if file.format != WMKEY_FORMAT {
            return Err(bad(format!(
                "format {:?} is not {WMKEY_FORMAT}",
                file.format
            )));
        }
        let bytes: [u8; 32] = hex::decode(&file.secret_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("secret_key is not 64 hex digits".into()))?;
        let key = WatermarkKey::from_bytes(bytes);
        if key.key_id() != file.key_id {
            return Err(bad("key_id does not match the secret key".into()));
        }
        Ok(NamedKey {
            key,
            name: file.name,
            key_id: file.key_id,
            provider: file.provider,
            path: path.to_path_buf(),
        })
    }

    /// Creates a new random key named `name` in `dir` (mode 0600, never overwriting).
    pub fn generate(
        dir: &Path,
        name: &str,
        provider: Option<&str>,
    ) -> Result<NamedKey, KeyFileError> {
        if !valid_name(name) {
            return Err(KeyFileError::BadName(name.into()));
        }
        let key = WatermarkKey::generate().map_err(|e| KeyFileError::Random(e.to_string()))?;
        let path = dir.join(format!("{name}{WMKEY_SUFFIX}"));
        let io = |source| KeyFileError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|source| KeyFileError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let file = Self::new(&key, name, provider);
        // A struct of strings always serialises.
        let text = serde_json::to_string_pretty(&file).unwrap_or_default() + "\n";
        match aigc_core::secret_file::write_new_secret_file(&path, &text) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(KeyFileError::Exists(path.display().to_string()));
            }
            Err(e) => return Err(io(e)),
        }
        Ok(NamedKey {
            key_id: key.key_id(),
            key,
            name: name.into(),
            provider: provider.map(str::to_string),
            path,
        })
    }
}

/// Every watermark key file in `dir`, sorted by name (a missing directory has none); files that
/// do not load are returned as errors beside the keys.
pub fn list_keys(dir: &Path) -> (Vec<NamedKey>, Vec<KeyFileError>) {
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (keys, errors);
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(WMKEY_SUFFIX))
        })
        .collect();
    paths.sort();
    for p in paths {
        match WatermarkKeyFile::load(&p) {
            Ok(k) => keys.push(k),
            Err(e) => errors.push(e),
        }
    }
    (keys, errors)
}

/// The key `spec` names (a key file path, a key name or a key id in `dir`), or with no spec
/// the only key in `dir`.
pub fn resolve_key(spec: Option<&str>, dir: &Path) -> Result<NamedKey, KeyFileError> {
    let dir_shown = dir.display().to_string();
    match spec {
        Some(spec) => {
            let as_path = Path::new(spec);
            if as_path.is_file() {
                return WatermarkKeyFile::load(as_path);
            }
            let by_name = dir.join(format!("{spec}{WMKEY_SUFFIX}"));
            if by_name.is_file() {
                return WatermarkKeyFile::load(&by_name);
            }
            let (keys, _) = list_keys(dir);
            keys.into_iter()
                .find(|k| k.key_id == spec)
                .ok_or(KeyFileError::NotFound {
                    spec: spec.into(),
                    dir: dir_shown,
                })
        }
        None => {
            let (mut keys, mut errors) = list_keys(dir);
            match (keys.len(), errors.len()) {
                (1, _) => Ok(keys.remove(0)),
                (0, 0) => Err(KeyFileError::NoKey { dir: dir_shown }),
                (0, _) => Err(errors.remove(0)),
                _ => Err(KeyFileError::Ambiguous {
                    dir: dir_shown,
                    names: keys
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_private_found_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            resolve_key(None, dir.path()),
            Err(KeyFileError::NoKey { .. })
        ));
        let a =
            WatermarkKeyFile::generate(dir.path(), "studio", Some("001191440300708461136T1XGW3"))
                .expect("generate");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a.path)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            WatermarkKeyFile::generate(dir.path(), "studio", None),
            Err(KeyFileError::Exists(_))
        ));
        assert!(matches!(
            WatermarkKeyFile::generate(dir.path(), "../x", None),
            Err(KeyFileError::BadName(_))
        ));
        let only = resolve_key(None, dir.path()).expect("the only key");
        assert_eq!(only.key, a.key);
        assert_eq!(
            only.provider.as_deref(),
            Some("001191440300708461136T1XGW3")
        );
        let b = WatermarkKeyFile::generate(dir.path(), "other", None).expect("second");
        assert!(matches!(
            resolve_key(None, dir.path()),
            Err(KeyFileError::Ambiguous { .. })
        ));
        assert_eq!(
            resolve_key(Some("other"), dir.path()).expect("by name").key,
            b.key
        );
        assert_eq!(
            resolve_key(Some(&a.key_id), dir.path()).expect("by id").key,
            a.key
        );
        let path = a.path.display().to_string();
        assert_eq!(
            resolve_key(Some(&path), dir.path()).expect("by path").key,
            a.key
        );
        assert!(matches!(
            resolve_key(Some("nope"), dir.path()),
            Err(KeyFileError::NotFound { .. })
        ));
        // A tampered id or secret is refused, naming the file.
        let text = std::fs::read_to_string(&b.path).expect("read");
        let bad = dir.path().join("bad.wmkey.json");
        std::fs::write(&bad, text.replace(&b.key_id, "0000000000000000")).expect("write");
        let err = WatermarkKeyFile::load(&bad).expect_err("mismatch");
        assert!(err.to_string().contains("bad.wmkey.json"), "{err}");
        std::fs::write(&bad, "{}").expect("write");
        assert!(WatermarkKeyFile::load(&bad).is_err());
    }
}
