//! Small JSON files in dvault's state folder (ledgers), read and written whole.
//!
//! They are the host's memory of what it wrote, so a crash must never leave half a file: each
//! save goes to a temporary file in the same folder, is synced, and then renamed over the old.

use std::fs;
use std::io::Write;
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

/// Writes `value` to `path` atomically (temporary file, fsync, rename), creating the folder.
pub(crate) fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    serde_json::to_writer_pretty(&mut tmp, value)
        .map_err(std::io::Error::from)
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("{}: cannot write", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
