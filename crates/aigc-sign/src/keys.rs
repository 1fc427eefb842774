//! Key files (versioned JSON) and the ring of public keys used to verify labels.

use crate::{Algorithm, PublicKey, SecretKey, SignError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const KEY_FORMAT: &str = "aigc-mark-key/1";

/// A key as stored on disk: `<key id>.key.json` (secret, mode 0600) or `<key id>.pub.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// Always `aigc-mark-key/1`.
    pub format: String,
    /// `sm2` or `ed25519`.
    pub algorithm: String,
    /// Hex of the first 8 bytes of SHA-256 over the public key.
    pub key_id: String,
    /// Public key in hex (SEC1 uncompressed for SM2).
    pub public_key: String,
    /// Secret key in hex; absent in public key files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// The provider code the key belongs to, when given at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl KeyFile {
    /// The file form of a secret key.
    pub fn from_secret(key: &SecretKey, provider: Option<&str>) -> Self {
        let mut f = Self::from_public(&key.public_key(), provider);
        f.secret_key = Some(hex::encode(key.to_bytes()));
        f
    }

    /// The file form of a public key.
    pub fn from_public(key: &PublicKey, provider: Option<&str>) -> Self {
        Self {
            format: KEY_FORMAT.into(),
            algorithm: key.algorithm().to_string(),
            key_id: key.key_id(),
            public_key: hex::encode(key.to_bytes()),
            secret_key: None,
            provider: provider.map(str::to_string),
        }
    }

    /// Reads and checks a key file.
    pub fn load(path: &Path) -> Result<Self, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let bad = |detail: String| SignError::BadKeyFile {
            path: path.display().to_string(),
            detail,
        };
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a key file: {e}")))?;
        if file.format != KEY_FORMAT {
            return Err(bad(format!("format {:?} is not {KEY_FORMAT}", file.format)));
        }
        let public = file.public().map_err(&bad)?;
        if public.key_id() != file.key_id {
            return Err(bad("key_id does not match the public key".into()));
        }
        if let Some(secret) = file.secret().map_err(&bad)?
            && secret.public_key().to_bytes() != public.to_bytes()
        {
            return Err(bad("secret and public key do not belong together".into()));
        }
        Ok(file)
    }

    /// The public key.
    pub fn public(&self) -> Result<PublicKey, String> {
        let alg: Algorithm = self
            .algorithm
            .parse()
            .map_err(|e: SignError| e.to_string())?;
        let bytes =
            hex::decode(&self.public_key).map_err(|e| format!("public_key is not hex: {e}"))?;
        PublicKey::from_bytes(alg, &bytes)
            .ok_or_else(|| "public_key is not a valid key".to_string())
    }

    /// The secret key, when the file holds one.
    pub fn secret(&self) -> Result<Option<SecretKey>, String> {
        let Some(hexed) = &self.secret_key else {
            return Ok(None);
        };
        let alg: Algorithm = self
            .algorithm
            .parse()
            .map_err(|e: SignError| e.to_string())?;
        let bytes = hex::decode(hexed).map_err(|e| format!("secret_key is not hex: {e}"))?;
        SecretKey::from_bytes(alg, &bytes)
            .map(Some)
            .ok_or_else(|| "secret_key is not a valid key".to_string())
    }

    /// Writes the secret file and the public file into `dir`; returns their paths.
    pub fn save_pair(
        key: &SecretKey,
        provider: Option<&str>,
        dir: &Path,
    ) -> Result<(PathBuf, PathBuf), SignError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| SignError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let secret = Self::from_secret(key, provider);
        let public = Self::from_public(&key.public_key(), provider);
        let secret_path = dir.join(format!("{}.key.json", secret.key_id));
        let public_path = dir.join(format!("{}.pub.json", secret.key_id));
        aigc_core::secret_file::write_new_secret_file(&secret_path, &to_json(&secret))
            .map_err(io(&secret_path))?;
        std::fs::write(&public_path, to_json(&public)).map_err(io(&public_path))?;
        Ok((secret_path, public_path))
    }
}

fn to_json(f: &KeyFile) -> String {
    // Serialising a struct of strings cannot fail.
    serde_json::to_string_pretty(f).unwrap_or_default() + "\n"
}

/// The per-user key directory: `$AIGC_MARK_HOME/keys`, else `$XDG_CONFIG_HOME/aigc-mark/keys`,
/// else `~/.config/aigc-mark/keys`.
pub fn default_key_dir() -> PathBuf {
    aigc_core::user_dirs::aigc_mark_dir(aigc_core::user_dirs::UserDir::Config).join("keys")
}

/// Public keys by key id.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: HashMap<String, PublicKey>,
}

impl KeyRing {
    /// Adds a key.
    pub fn add(&mut self, key: PublicKey) {
        self.keys.insert(key.key_id(), key);
    }

    /// The key with this id.
    pub fn public(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.get(key_id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Loads every `*.json` key file in `dir` (a missing directory gives an empty ring); files
    /// that are not key files are skipped and returned as warnings.
    pub fn load_dir(&mut self, dir: &Path) -> Vec<String> {
        let mut warnings = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return warnings;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Watermark keys (`*.wmkey.json`, aigc-watermark) share the directory.
            let watermark_key = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".wmkey.json"));
            if path.extension().is_some_and(|e| e == "json") && !watermark_key {
                match KeyFile::load(&path).and_then(|f| {
                    f.public().map_err(|detail| SignError::BadKeyFile {
                        path: path.display().to_string(),
                        detail,
                    })
                }) {
                    Ok(k) => self.add(k),
                    Err(e) => warnings.push(e.to_string()),
                }
            }
        }
        warnings
    }
}

/// Finds a secret key given a path to a key file or a key id in `dir`.
pub fn load_secret(spec: &str, dir: &Path) -> Result<SecretKey, SignError> {
    let as_path = Path::new(spec);
    let path = if as_path.is_file() {
        as_path.to_path_buf()
    } else {
        dir.join(format!("{spec}.key.json"))
    };
    if !path.is_file() {
        return Err(SignError::NotFound(spec.to_string()));
    }
    let file = KeyFile::load(&path)?;
    file.secret()
        .map_err(|detail| SignError::BadKeyFile {
            path: path.display().to_string(),
            detail,
        })?
        .ok_or_else(|| SignError::NotSecret(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_ring_loads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::generate(Algorithm::Sm2).expect("key");
        let (secret, public) =
            KeyFile::save_pair(&key, Some("001191440300708461136T1XGW3"), dir.path())
                .expect("save");
        assert!(secret.exists() && public.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&secret)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let id = key.public_key().key_id();
        let loaded = load_secret(&id, dir.path()).expect("by id");
        assert_eq!(loaded.to_bytes(), key.to_bytes());
        assert!(load_secret(secret.to_str().expect("utf8"), Path::new("/nonexistent")).is_ok());
        assert!(matches!(
            load_secret(public.to_str().expect("utf8"), dir.path()),
            Err(SignError::NotSecret(_))
        ));
        let mut ring = KeyRing::default();
        std::fs::write(dir.path().join("junk.json"), "{}").expect("write");
        // A watermark key shares the directory and is not a signing key: no warning for it.
        std::fs::write(dir.path().join("studio.wmkey.json"), "{}").expect("write");
        let warnings = ring.load_dir(dir.path());
        assert_eq!(ring.len(), 1);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(ring.public(&id).is_some());
    }

    #[test]
    fn tampered_key_file_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::generate(Algorithm::Ed25519).expect("key");
        let (secret, _) = KeyFile::save_pair(&key, None, dir.path()).expect("save");
        let text = std::fs::read_to_string(&secret).expect("read");
        let other = SecretKey::generate(Algorithm::Ed25519).expect("key");
        let bad = text.replace(&hex::encode(key.to_bytes()), &hex::encode(other.to_bytes()));
        let path = dir.path().join("bad.json");
        std::fs::write(&path, bad).expect("write");
        let err = KeyFile::load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("do not belong together"), "{err}");
    }
}
