//! Where aigc-mark keeps its per-user files: `$AIGC_MARK_HOME` when set, else the XDG base
//! directories, else the usual places under `$HOME`.

use std::path::PathBuf;

/// A kind of per-user directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDir {
    /// Settings and keys (`$XDG_CONFIG_HOME`, `~/.config`).
    Config,
    /// Data that must be kept, such as the ledger (`$XDG_DATA_HOME`, `~/.local/share`).
    Data,
    /// Files that may be deleted at any time, such as resumable job journals
    /// (`$XDG_CACHE_HOME`, `~/.cache`).
    Cache,
}

/// The aigc-mark directory of this kind. `$AIGC_MARK_HOME` holds config and data itself, and
/// the cache in its `cache/` subdirectory.
pub fn aigc_mark_dir(kind: UserDir) -> PathBuf {
    if let Some(home) = std::env::var_os("AIGC_MARK_HOME") {
        let home = PathBuf::from(home);
        return match kind {
            UserDir::Cache => home.join("cache"),
            UserDir::Config | UserDir::Data => home,
        };
    }
    let (xdg, fallback): (&str, &[&str]) = match kind {
        UserDir::Config => ("XDG_CONFIG_HOME", &[".config"]),
        UserDir::Data => ("XDG_DATA_HOME", &[".local", "share"]),
        UserDir::Cache => ("XDG_CACHE_HOME", &[".cache"]),
    };
    let base = std::env::var_os(xdg)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| fallback.iter().fold(PathBuf::from(h), |p, c| p.join(c)))
        })
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("aigc-mark")
}
