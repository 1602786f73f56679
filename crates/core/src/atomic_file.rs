//! The one way dvault replaces a file: write a temporary file in the same folder, fsync it,
//! rename it over the target, fsync the folder.
//!
//! Used for everything a reader must never see half-written: the run state, the ledgers, the
//! metrics textfile (node_exporter may read it at any moment), the HTML report, lock files in
//! a local repository, and the files `rebuild` and `expand --tar` write. The temporary file
//! lives beside the target because `rename` is atomic only within one file system; it is
//! hidden (`.NAME.dvault-tmp…`) so that a collector globbing `*.prom` or an admin's `ls`
//! passes over it, and removed when the write fails or is dropped. Syncing the folder after
//! the rename makes the new name itself survive a power cut, not only the bytes.
//!
//! Every error names the target file and the step that failed (the `io::ErrorKind` is kept).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written under a temporary name beside `path`; [`AtomicFile::commit`] puts it
/// in place, dropping it without a commit removes it.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

/// An `io::Error` whose text names `path` and the step (`cannot create a temporary file`).
fn err(path: &Path, step: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {step}: {e}", path.display()))
}

/// The folder `path` is in (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl AtomicFile {
    /// Starts writing `path`: a new temporary file in its folder (which must exist).
    pub fn create(path: &Path) -> io::Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| {
                err(
                    path,
                    "cannot write",
                    io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
                )
            })?
            .to_string_lossy();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.dvault-tmp"))
            .tempfile_in(folder(path))
            // The folder is what needs fixing (Debian's node_exporter textfile folder is
            // root's): name it, not only the file.
            .map_err(|e| {
                let step = format!(
                    "cannot create a file in the folder {}",
                    folder(path).display()
                );
                err(path, &step, e)
            })?;
        Ok(AtomicFile {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Sets the permission bits the file will have (the temporary file starts at 0600).
    pub fn set_mode(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| err(&self.path, "cannot set its mode", e))
    }

    /// The file being written.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Syncs the written bytes, renames the file over `path` and syncs the folder.
    pub fn commit(self) -> io::Result<()> {
        let AtomicFile { tmp, path } = self;
        tmp.as_file()
            .sync_all()
            .map_err(|e| err(&path, "cannot write", e))?;
        tmp.persist(&path)
            .map_err(|e| err(&path, "cannot rename the temporary file over it", e.error))?;
        File::open(folder(&path))
            .and_then(|d| d.sync_all())
            .map_err(|e| err(&path, "cannot sync its folder", e))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp
            .write(buf)
            .map_err(|e| err(&self.path, "cannot write", e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp
            .flush()
            .map_err(|e| err(&self.path, "cannot write", e))
    }
}

/// Replaces `path` with `bytes` (mode 0600, as the temporary file is made).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Replaces `path` with `bytes`, readable as `mode` (e.g. 0o644 for files other users read).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.set_mode(mode)?;
    f.write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old").unwrap();
        write_with_mode(&path, b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_write_dropped_before_commit_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        std::fs::write(&path, b"old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("metrics.prom");
        let e = write(&path, b"x").unwrap_err().to_string();
        assert!(e.contains("missing-folder/metrics.prom"), "{e}");
        assert!(
            e.contains(&format!(
                "cannot create a file in the folder {}",
                dir.path().join("missing-folder").display()
            )),
            "{e}"
        );
    }
}
