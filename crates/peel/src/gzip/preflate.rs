//! preflate-rs: any other deflate encoder, reproduced from the plain data plus correction data.
//!
//! preflate-rs 0.7.6 estimates the encoder's parameters from the first chunk it is given and then
//! keeps them; when that chunk was not representative a later chunk fails (PredictionFailure). So
//! the analysis keeps the member's deflate bytes from its start until it has processed more than
//! the memory cap, and on such a failure starts over with a first chunk four times larger. Past
//! the cap it gives up and the caller keeps the layer as stored bytes.
//!
//! Chunk boundaries depend only on the deflate bytes (never on how reads happened to return), so
//! the same input gives the same correction data. Each chunk is proven right away by recreating it
//! from the plain text and corrections, exactly as [`rebuild_member`] will.

use std::io::{Cursor, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Receiver;

use preflate_rs::{
    ExitCode, PreflateConfig, PreflateError, PreflateStreamProcessor, RecreateStreamProcessor,
};
use serde::{Deserialize, Serialize};

use super::verify::Chunk;

/// Deflate bytes given to the analysis at once after the first chunk.
const NEXT_CHUNK: usize = 1 << 20;
/// First chunk of the first attempt.
const FIRST_CHUNK: usize = 1 << 20;

/// One chunk of a preflate-reproduced deflate stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflateChunk {
    /// Plain bytes this chunk covers.
    pub plain_size: u64,
    /// preflate-rs correction data for the chunk.
    pub corrections: crate::recipe::Bytes,
}

/// What a successful analysis found.
pub(crate) struct Analysis {
    pub chunks: Vec<PreflateChunk>,
    pub attempts: u32,
    /// CRC32 and length of the plain text preflate decoded (checked against the member's).
    pub crc: u32,
    pub plain_size: u64,
}

/// The member's deflate bytes as they arrive, kept from the start until the analysis commits.
struct Feed {
    rx: Receiver<Chunk>,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: usize,
    done: bool,
}

impl Feed {
    /// Receives until the stream holds `end` bytes or is complete.
    fn fill_to(&mut self, end: usize) {
        while !self.done && self.base + self.buf.len() < end {
            match self.rx.recv() {
                Ok(chunk) => self.buf.extend_from_slice(&chunk.deflate),
                Err(_) => self.done = true,
            }
        }
    }

    fn slice(&self, from: usize, len: usize) -> &[u8] {
        let start = from - self.base;
        let end = (start + len).min(self.buf.len());
        &self.buf[start..end]
    }

    /// Forgets the bytes before `pos` (no restart from the start is possible afterwards).
    fn release_before(&mut self, pos: usize) {
        self.buf.drain(..pos - self.base);
        self.base = pos;
    }
}

enum Failure {
    /// A restart with a larger first chunk may help.
    Retry(String),
    Fatal(String),
}

/// Runs preflate on the member's deflate stream from `rx`, with at most about `cap` bytes of
/// deflate and of plain text held at once.
pub(crate) fn analyse(rx: Receiver<Chunk>, cap: usize) -> Result<Analysis, String> {
    let mut feed = Feed {
        rx,
        buf: Vec::new(),
        base: 0,
        done: false,
    };
    let mut committed = false;
    let mut first = FIRST_CHUNK.min(cap.max(1));
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(&mut feed, first, cap, &mut committed) {
            Ok(mut a) => {
                a.attempts = attempts;
                return Ok(a);
            }
            Err(Failure::Retry(why)) => {
                let whole_seen = feed.done && feed.base + feed.buf.len() <= first;
                if committed || whole_seen || first.saturating_mul(4) > cap {
                    return Err(format!("preflate-rs after {attempts} attempt(s): {why}"));
                }
                first *= 4;
            }
            Err(Failure::Fatal(why)) => {
                return Err(format!("preflate-rs after {attempts} attempt(s): {why}"))
            }
        }
    }
}

fn describe(e: &PreflateError) -> String {
    format!("{:?}: {}", e.exit_code(), e)
}

fn attempt(
    feed: &mut Feed,
    first: usize,
    cap: usize,
    committed: &mut bool,
) -> Result<Analysis, Failure> {
    let config = PreflateConfig {
        plain_text_limit: cap,
        // Verified below against the original bytes, the way rebuild will do it.
        verify_compression: false,
        ..PreflateConfig::default()
    };
    let mut analyser = PreflateStreamProcessor::new(&config);
    let mut recreator = RecreateStreamProcessor::new();
    let mut chunks = Vec::new();
    let mut crc = crc32fast::Hasher::new();
    let mut plain_size = 0u64;
    let mut pos = 0usize;
    let mut want = first;
    loop {
        feed.fill_to(pos + want);
        let slice = feed.slice(pos, want);
        if slice.is_empty() {
            return Err(Failure::Fatal(format!(
                "deflate stream ends at byte {pos} before its last block"
            )));
        }
        let at_end = feed.done && slice.len() < want;
        let result = catch_unwind(AssertUnwindSafe(|| analyser.decompress(slice)))
            .map_err(|_| Failure::Retry(format!("panicked in chunk at deflate byte {pos}")))?;
        let r = match result {
            Ok(r) if r.compressed_size > 0 => r,
            Ok(_) if !at_end => {
                want = want.saturating_mul(2);
                continue;
            }
            Err(e) if e.exit_code() == ExitCode::ShortRead && !at_end => {
                // No complete block in the slice: give it more, deterministically.
                if want > cap {
                    return Err(Failure::Fatal(format!(
                        "a deflate block at byte {pos} is larger than the memory cap ({cap} bytes)"
                    )));
                }
                want = want.saturating_mul(2);
                continue;
            }
            Ok(_) => return Err(Failure::Fatal(format!("no progress at deflate byte {pos}"))),
            Err(e) => {
                let why = format!("chunk at deflate byte {pos}: {}", describe(&e));
                return Err(match e.exit_code() {
                    ExitCode::PredictionFailure
                    | ExitCode::RoundtripMismatch
                    | ExitCode::AssertionFailure => Failure::Retry(why),
                    _ => Failure::Fatal(why),
                });
            }
        };
        let original = &slice[..r.compressed_size];
        let text = analyser.plain_text().text();
        let recreated = catch_unwind(AssertUnwindSafe(|| {
            recreator.recompress(&mut Cursor::new(text), &r.corrections)
        }))
        .map_err(|_| Failure::Retry(format!("recreation panicked at deflate byte {pos}")))?
        .map_err(|e| {
            Failure::Retry(format!(
                "recreating chunk at deflate byte {pos}: {}",
                describe(&e)
            ))
        })?
        .0;
        if recreated != original {
            return Err(Failure::Retry(format!(
                "recreated chunk at deflate byte {pos} differs from the original"
            )));
        }
        crc.update(text);
        plain_size += text.len() as u64;
        chunks.push(PreflateChunk {
            plain_size: text.len() as u64,
            corrections: crate::recipe::Bytes(r.corrections),
        });
        analyser.shrink_to_dictionary();
        pos += r.compressed_size;
        if pos > cap {
            *committed = true;
        }
        if *committed {
            feed.release_before(pos);
        }
        if analyser.is_done() {
            return Ok(Analysis {
                chunks,
                attempts: 0,
                crc: crc.finalize(),
                plain_size,
            });
        }
        want = NEXT_CHUNK;
    }
}

/// Writes the deflate body recreated from `plain` and the chunks' corrections to `out`; returns
/// the number of deflate bytes written.
pub(crate) fn rebuild_member(
    chunks: &[PreflateChunk],
    plain: &mut dyn Read,
    out: &mut dyn Write,
    crc: &mut crc32fast::Hasher,
) -> Result<u64, String> {
    let mut recreator = RecreateStreamProcessor::new();
    let mut written = 0u64;
    let mut text = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        text.clear();
        let got = plain
            .take(chunk.plain_size)
            .read_to_end(&mut text)
            .map_err(|e| format!("reading plain data for preflate chunk {i}: {e}"))?;
        if got as u64 != chunk.plain_size {
            return Err(format!(
                "plain data ends inside preflate chunk {i}: expected {} bytes, got {got}",
                chunk.plain_size
            ));
        }
        crc.update(&text);
        let (deflate, _) = catch_unwind(AssertUnwindSafe(|| {
            recreator.recompress(&mut Cursor::new(&text[..]), &chunk.corrections.0)
        }))
        .map_err(|_| format!("preflate-rs panicked recreating chunk {i}"))?
        .map_err(|e| format!("preflate-rs recreating chunk {i}: {}", describe(&e)))?;
        out.write_all(&deflate)
            .map_err(|e| format!("writing chunk {i}: {e}"))?;
        written += deflate.len() as u64;
    }
    Ok(written)
}
