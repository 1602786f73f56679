//! Opening an input file: a regular file only. A FIFO would block the open or the read
//! forever, a character device such as `/dev/zero` never ends, a directory or socket cannot be
//! read at all; each is refused at once with what it is, before anything is read.

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for reading when it is (or a symbolic link leads to) a regular file. Otherwise
/// an [`io::ErrorKind::InvalidInput`] error saying what it is, e.g. "a FIFO (named pipe), not a
/// regular file" (the caller names the path).
pub fn open_file(path: &Path) -> io::Result<File> {
    // Looked at first, so that a socket (which cannot be opened) is named too.
    refuse_unless_regular(&std::fs::metadata(path)?.file_type())?;
    // O_NONBLOCK: a FIFO put there since is opened without waiting for a writer, then refused
    // below; on a regular file the flag changes nothing.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    refuse_unless_regular(&file.metadata()?.file_type())?;
    Ok(file)
}

fn refuse_unless_regular(t: &FileType) -> io::Result<()> {
    if t.is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}, not a regular file", describe(t)),
    ))
}

/// What a file of type `t` is, in words ("a directory", "a FIFO (named pipe)").
pub fn describe(t: &FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &Path) -> String {
        open_file(path).expect_err("must be refused").to_string()
    }

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_file(&file).is_ok());
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_file(&link).is_ok(), "a link to a file is that file");
        assert_eq!(refusal(dir.path()), "a directory, not a regular file");
        assert_eq!(
            refusal(Path::new("/dev/zero")),
            "a character device, not a regular file"
        );
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(refusal(&fifo), "a FIFO (named pipe), not a regular file");
        let sock = dir.path().join("s");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(refusal(&sock), "a socket, not a regular file");
    }
}
