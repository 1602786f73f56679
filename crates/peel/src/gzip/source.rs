//! A buffered reader that knows its byte offset and lets the gzip parser consume exactly the
//! bytes a deflate stream used, so the next member or the trailer starts at the right byte.
//! (`std::io::BufReader` has no offset, and its buffer cannot be pushed back.)

use std::io::{self, Read};

const BUF_SIZE: usize = 256 * 1024;

pub(crate) struct Source<'a> {
    inner: &'a mut (dyn Read + Send),
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    offset: u64,
    eof: bool,
}

impl<'a> Source<'a> {
    pub(crate) fn new(inner: &'a mut (dyn Read + Send)) -> Self {
        Source {
            inner,
            buf: vec![0; BUF_SIZE],
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Offset of the next unconsumed byte from the start of the input.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The buffered bytes, reading more when the buffer is empty; empty only at end of input.
    pub(crate) fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end && !self.eof {
            self.pos = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.end = n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }

    /// The buffered bytes after reading until at least `n` are buffered or the input ended.
    pub(crate) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.end - self.pos < n && !self.eof {
            if self.pos == self.end {
                self.fill_buf()?;
                continue;
            }
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }

    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(self.pos + n <= self.end);
        self.pos += n;
        self.offset += n as u64;
    }

    /// Reads one byte, `None` at end of input.
    pub(crate) fn read_byte(&mut self) -> io::Result<Option<u8>> {
        let b = self.fill_buf()?.first().copied();
        if b.is_some() {
            self.consume(1);
        }
        Ok(b)
    }

    /// Appends up to `n` bytes to `out`; returns how many were appended (fewer only at end).
    pub(crate) fn read_into(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut done = 0;
        while done < n {
            let avail = self.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let take = avail.len().min(n - done);
            out.extend_from_slice(&avail[..take]);
            self.consume(take);
            done += take;
        }
        Ok(done)
    }
}
