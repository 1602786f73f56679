//! Small reader and writer adapters the layers compose: peeking at the first bytes, counting,
//! hashing.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::recipe::Digest;

/// A reader whose first bytes have been read ahead for detection and are served again.
pub struct Peek<'r> {
    head: Vec<u8>,
    pos: usize,
    inner: &'r mut (dyn Read + Send),
}

impl<'r> Peek<'r> {
    /// Reads up to `n` bytes ahead (fewer only at the end of the input).
    pub fn new(inner: &'r mut (dyn Read + Send), n: usize) -> io::Result<Self> {
        let mut head = vec![0u8; n];
        let got = read_full(inner, &mut head)?;
        head.truncate(got);
        Ok(Peek {
            head,
            pos: 0,
            inner,
        })
    }

    /// The bytes read ahead.
    pub fn head(&self) -> &[u8] {
        &self.head
    }
}

impl Read for Peek<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.head.len() {
            let n = buf.len().min(self.head.len() - self.pos);
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads and discards the rest of `r`; returns how many bytes that was.
pub fn drain(r: &mut dyn Read) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

/// Refuses to write more than `left` bytes in all.
pub struct Limit<W> {
    /// The wrapped writer.
    pub inner: W,
    /// Bytes that may still be written.
    pub left: u64,
}

impl<W> Limit<W> {
    /// The text of the error when the limit is reached.
    pub const MESSAGE: &'static str = "more bytes than the recorded size";
}

impl<W: Write> Write for Limit<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other(Self::MESSAGE));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes read through it into a counter other threads can see.
pub struct SharedCount<'c, R> {
    /// The wrapped reader.
    pub inner: R,
    /// Bytes read so far.
    pub count: &'c std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for SharedCount<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Adds the time spent in its reads (nanoseconds) to a counter other threads can see.
pub struct TimedRead<'c, R> {
    /// The wrapped reader.
    pub inner: R,
    /// Nanoseconds spent reading so far.
    pub nanos: &'c std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for TimedRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = std::time::Instant::now();
        let n = self.inner.read(buf);
        self.nanos.fetch_add(
            started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        n
    }
}

/// Counts the bytes read through it.
pub struct CountRead<R> {
    /// The wrapped reader.
    pub inner: R,
    /// Bytes read so far.
    pub count: u64,
}

impl<R: Read> Read for CountRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Counts the bytes written through it.
pub struct CountWrite<W> {
    /// The wrapped writer.
    pub inner: W,
    /// Bytes written so far.
    pub count: u64,
}

impl<W: Write> Write for CountWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes (SHA-256) and counts the bytes read through it.
pub struct HashRead<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashRead<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashRead {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Size and SHA-256 of what was read.
    pub fn digest(self) -> Digest {
        Digest {
            size: self.count,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hashes (SHA-256) and counts the bytes written through it.
pub struct HashWrite<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWrite<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashWrite {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    /// Size and SHA-256 of what was written.
    pub fn digest(self) -> Digest {
        Digest {
            size: self.count,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
