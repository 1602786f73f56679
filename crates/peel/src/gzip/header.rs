//! The gzip member header and trailer (RFC 1952 section 2.3).
//!
//! The header is kept byte for byte in the recipe, so parsing only has to find where it ends and
//! check it; the fields that matter later are the XFL level hint and the flags.

use super::source::Source;
use crate::error::{Error, Result};

/// First two bytes of every gzip member.
pub(crate) const MAGIC: [u8; 2] = [0x1f, 0x8b];
const CM_DEFLATE: u8 = 8;
const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const RESERVED: u8 = 0xe0;
/// A file name or comment longer than this is treated as a damaged header rather than kept.
const MAX_TEXT_FIELD: usize = 64 * 1024;

/// A parsed member header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The header bytes exactly as they were in the file.
    pub raw: Vec<u8>,
    /// The XFL byte (2: slowest compression, 4: fastest), a hint at the level.
    pub xfl: u8,
}

fn format(location: &str, offset: u64, problem: impl std::fmt::Display) -> Error {
    Error::Format {
        location: format!("{location} at byte {offset}"),
        problem: problem.to_string(),
    }
}

pub(crate) fn io_error(location: &str, offset: u64, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{location}: reading at byte {offset}"),
        source,
    }
}

/// Reads one member header starting at the current position of `src`.
pub(crate) fn read(src: &mut Source<'_>, location: &str) -> Result<Header> {
    let start = src.offset();
    let mut raw = Vec::with_capacity(10);
    let got = src
        .read_into(10, &mut raw)
        .map_err(|e| io_error(location, src.offset(), e))?;
    if got >= 2 && raw[..2] != MAGIC {
        return Err(format(
            location,
            start,
            format!(
                "not gzip data: expected magic bytes 1f 8b, found {:02x} {:02x}",
                raw[0], raw[1]
            ),
        ));
    }
    if got < 10 {
        return Err(format(
            location,
            start + got as u64,
            format!("truncated gzip header: expected 10 bytes, input ends after {got}"),
        ));
    }
    if raw[2] != CM_DEFLATE {
        return Err(format(
            location,
            start + 2,
            format!(
                "unknown compression method {} (only 8, deflate, exists)",
                raw[2]
            ),
        ));
    }
    let flags = raw[3];
    if flags & RESERVED != 0 {
        return Err(format(
            location,
            start + 3,
            format!("reserved header flag bits set (flags {flags:#04x})"),
        ));
    }
    let xfl = raw[8];
    if flags & FEXTRA != 0 {
        read_field(src, &mut raw, 2, location, |_| {
            "truncated gzip header: input ends inside the FEXTRA length".to_string()
        })?;
        let xlen = u16::from_le_bytes([raw[10], raw[11]]) as usize;
        read_field(src, &mut raw, xlen, location, |got| {
            format!("truncated gzip header: FEXTRA field says {xlen} bytes, input ends after {got}")
        })?;
    }
    if flags & FNAME != 0 {
        read_zero_terminated(src, &mut raw, location, "file name")?;
    }
    if flags & FCOMMENT != 0 {
        read_zero_terminated(src, &mut raw, location, "comment")?;
    }
    if flags & FHCRC != 0 {
        let at = src.offset();
        let expected = (crc32fast::hash(&raw) & 0xffff) as u16;
        read_field(src, &mut raw, 2, location, |_| {
            "truncated gzip header: input ends inside the header CRC16 (FHCRC)".to_string()
        })?;
        let stored = u16::from_le_bytes([raw[raw.len() - 2], raw[raw.len() - 1]]);
        if stored != expected {
            return Err(format(
                location,
                at,
                format!("header CRC16 (FHCRC) mismatch: header says {stored:04x}, computed {expected:04x}"),
            ));
        }
    }
    Ok(Header { raw, xfl })
}

/// Appends exactly `n` header bytes to `raw`; when the input ends first, the error points at
/// where it ended and says what was cut (`truncated` gets the count that was read).
fn read_field(
    src: &mut Source<'_>,
    raw: &mut Vec<u8>,
    n: usize,
    location: &str,
    truncated: impl FnOnce(usize) -> String,
) -> Result<()> {
    let at = src.offset();
    let got = src
        .read_into(n, raw)
        .map_err(|e| io_error(location, src.offset(), e))?;
    if got < n {
        return Err(format(location, at + got as u64, truncated(got)));
    }
    Ok(())
}

fn read_zero_terminated(
    src: &mut Source<'_>,
    raw: &mut Vec<u8>,
    location: &str,
    what: &str,
) -> Result<()> {
    let field_start = src.offset();
    let mut len = 0usize;
    loop {
        match src
            .read_byte()
            .map_err(|e| io_error(location, src.offset(), e))?
        {
            None => {
                return Err(format(
                    location,
                    src.offset(),
                    format!(
                    "truncated gzip header: input ends inside the {what} (no closing zero byte)"
                ),
                ))
            }
            Some(b) => {
                raw.push(b);
                if b == 0 {
                    return Ok(());
                }
                len += 1;
                if len > MAX_TEXT_FIELD {
                    return Err(format(
                        location,
                        field_start,
                        format!(
                            "gzip header {what} longer than {MAX_TEXT_FIELD} bytes: damaged header"
                        ),
                    ));
                }
            }
        }
    }
}

/// Reads and checks the 8-byte trailer (CRC32 and ISIZE of the member's content).
pub(crate) fn read_trailer(
    src: &mut Source<'_>,
    location: &str,
    crc: u32,
    size: u64,
) -> Result<()> {
    let at = src.offset();
    let mut t = Vec::with_capacity(8);
    let got = src
        .read_into(8, &mut t)
        .map_err(|e| io_error(location, src.offset(), e))?;
    if got < 8 {
        return Err(format(
            location,
            at + got as u64,
            format!(
                "truncated gzip trailer: expected 8 bytes (CRC32, ISIZE), input ends after {got}"
            ),
        ));
    }
    let stored_crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let stored_size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    if stored_crc != crc {
        return Err(format(
            location,
            at,
            format!("CRC32 mismatch: trailer says {stored_crc:08x}, the content has {crc:08x}"),
        ));
    }
    if stored_size != size as u32 {
        return Err(format(
            location,
            at + 4,
            format!(
                "length mismatch: trailer ISIZE says {stored_size}, the content has {size} bytes (mod 2^32: {})",
                size as u32
            ),
        ));
    }
    Ok(())
}

/// The 8-byte trailer for content with this CRC32 and length.
pub(crate) fn trailer(crc: u32, size: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(size as u32).to_le_bytes());
    t
}
