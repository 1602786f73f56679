//! Byte plumbing of a laid-out file: exact copies of byte ranges of the source or the
//! skeleton, and writers that count or hash the bytes passing through.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

/// Copies exactly `n` bytes of `r` to `w`; fewer is an error.
pub(crate) fn copy_exact(r: &mut File, n: u64, w: &mut dyn Write) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), w)?;
    if copied != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("skeleton ends {} bytes early", n - copied),
        ));
    }
    Ok(())
}

/// Copies `len` bytes of `src` from `start` to `w`, exactly.
pub(crate) fn copy_range(src: &File, start: u64, len: u64, w: &mut dyn Write) -> io::Result<()> {
    let mut f = src.try_clone()?;
    f.seek(SeekFrom::Start(start))?;
    copy_exact(&mut f, len, w)
}

/// Passes bytes on to a buffered file and counts them.
pub(crate) struct CountingWriter {
    pub(crate) inner: BufWriter<File>,
    pub(crate) n: u64,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes bytes on and hashes them.
pub(crate) struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hash: Sha256,
    n: u64,
}

impl<'a> HashingWriter<'a> {
    pub(crate) fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }

    pub(crate) fn finish(self) -> (u64, String) {
        (self.n, hex::encode(self.hash.finalize()))
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
