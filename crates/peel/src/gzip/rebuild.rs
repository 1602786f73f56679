//! Rebuilding a gzip file from its recipe: each member's header, its deflate body recompressed
//! by the recorded method from the plain content, the trailer computed again.

use std::io::{Read, Write};

use super::verify::Candidate;
use super::{header, preflate, GzipRecipe, MemberRecipe, Method, STEP_PLAIN};
use crate::error::{Error, Result};

/// Reads the plain content from `plain`, writes the exact original gzip bytes to `out`.
///
/// GNU gzip members need `gzip` on PATH. `location` names the layer in errors.
pub fn rebuild(
    recipe: &GzipRecipe,
    plain: &mut (dyn Read + Send),
    out: &mut (dyn Write + Send),
    location: &str,
) -> Result<()> {
    for (i, m) in recipe.members.iter().enumerate() {
        rebuild_member(i, m, plain, out, location)?;
    }
    out.write_all(&recipe.trailing.0)
        .map_err(|source| write_error(location, source))?;
    expect_end(plain, location)
}

/// The error of writing rebuilt gzip bytes.
pub(super) fn write_error(location: &str, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{location}: writing rebuilt gzip data"),
        source,
    }
}

/// Checks that `plain` holds nothing after the last member's content.
pub(super) fn expect_end(plain: &mut (dyn Read + Send), location: &str) -> Result<()> {
    let mut extra = [0u8; 1];
    loop {
        match plain.read(&mut extra) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(Error::Recipe(format!(
                    "{location}: the plain data is longer than the gzip members hold"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    context: format!("{location}: reading plain data"),
                    source,
                })
            }
        }
    }
}

/// Writes member `i` (header, deflate body recompressed from `m.plain_size` bytes of `plain`,
/// trailer) to `out`. Errors name `location` and the member.
pub(super) fn rebuild_member(
    i: usize,
    m: &MemberRecipe,
    plain: &mut (dyn Read + Send),
    out: &mut (dyn Write + Send),
    location: &str,
) -> Result<()> {
    let write_err = |source| write_error(location, source);
    let at = || format!("{location} (gzip member {i})");
    out.write_all(&m.header.0).map_err(write_err)?;
    let mut crc = crc32fast::Hasher::new();
    let mut counting = CountingWriter {
        inner: &mut *out,
        count: 0,
    };
    match &m.method {
        Method::Zlib { .. } | Method::GnuGzip { .. } => {
            let candidate = match m.method {
                Method::Zlib { level, mem_level } => Candidate::Zlib { level, mem_level },
                Method::GnuGzip { level } => Candidate::Gnu { level },
                Method::Preflate { .. } => unreachable!("matched above"),
            };
            recompress(candidate, m.plain_size, plain, &mut counting, &mut crc, &at)?;
        }
        Method::Preflate { chunks } => {
            let total: u64 = chunks.iter().map(|c| c.plain_size).sum();
            if total != m.plain_size {
                return Err(Error::Recipe(format!(
                    "{}: preflate chunks cover {total} plain bytes, the member has {}",
                    at(),
                    m.plain_size
                )));
            }
            preflate::rebuild_member(chunks, plain, &mut counting, &mut crc)
                .map_err(|e| Error::Recipe(format!("{}: {e}", at())))?;
        }
    }
    if counting.count != m.deflate_size {
        return Err(Error::Recipe(format!(
            "{}: {} produced {} deflate bytes, the recipe says {}",
            at(),
            m.method,
            counting.count,
            m.deflate_size
        )));
    }
    out.write_all(&header::trailer(crc.finalize(), m.plain_size))
        .map_err(write_err)?;
    Ok(())
}

struct CountingWriter<'a> {
    inner: &'a mut (dyn Write + Send),
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Compresses `size` bytes of `plain` with a deterministic encoder, writing the deflate body.
fn recompress(
    candidate: Candidate,
    size: u64,
    plain: &mut (dyn Read + Send),
    out: &mut CountingWriter<'_>,
    crc: &mut crc32fast::Hasher,
    at: &dyn Fn() -> String,
) -> Result<()> {
    let io = |what: &str, source| Error::Io {
        context: format!("{}: {what} ({candidate})", at()),
        source,
    };
    let mut enc = candidate
        .start()
        .map_err(|e| io("starting the encoder", e))?;
    let mut buf = vec![0u8; STEP_PLAIN];
    let mut produced = Vec::new();
    let mut left = size;
    while left > 0 {
        let want = (left.min(buf.len() as u64)) as usize;
        let n = match plain.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::Recipe(format!(
                    "{}: the plain data ends {left} bytes before the member's end",
                    at()
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("reading plain data", e)),
        };
        left -= n as u64;
        crc.update(&buf[..n]);
        enc.write(&buf[..n], &mut produced)
            .map_err(|e| io("compressing", e))?;
        out.write_all(&produced).map_err(|e| io("writing", e))?;
        produced.clear();
    }
    enc.finish(&mut produced)
        .map_err(|e| io("compressing", e))?;
    out.write_all(&produced).map_err(|e| io("writing", e))?;
    Ok(())
}
