//! Small JSON files in dvault's state folder (ledgers), read and written whole.
//!
//! They are the host's memory of what it wrote, so a crash must never leave half a file: each
//! save goes through [`crate::atomic_file`] (temporary file beside it, fsync, rename).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Reads `path` as `what`; an absent file is `T::default()`.
pub(crate) fn load<T: DeserializeOwned + Default>(path: &Path, what: &str) -> Result<T> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a {what}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `value` to `path` atomically ([`crate::atomic_file`]), creating the folder.
pub(crate) fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    crate::atomic_file::write(path, &text)?;
    Ok(())
}
