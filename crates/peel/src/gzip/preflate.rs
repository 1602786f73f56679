//! preflate-rs: any other deflate encoder, reproduced from the plain data plus correction data.
//!
//! preflate-rs 0.7.6 has a chunked mode, but on our test data (pigz and GNU gzip output of
//! SQL-like text) its predictor fails a few chunks in with MatchNotFound, at any chunk size,
//! while the same streams analysed in one piece reproduce fine. So a member is analysed in one
//! piece: its deflate bytes are collected (up to the memory cap) while the calling thread keeps
//! decompressing, then analysed with a plain-text limit of the same cap. A member larger than
//! that is not reproducible here and the caller stores the layer. The recipe keeps a list of
//! chunks anyway, so a later version can analyse in several without a format change.
//!
//! The result is proven in the same thread by recreating the deflate bytes from the plain text and
//! the corrections, exactly as [`rebuild_member`] will, and comparing them with the original.

use std::io::{Cursor, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use preflate_rs::{
    PreflateConfig, PreflateError, PreflateStreamProcessor, RecreateStreamProcessor,
};

use super::verify::Chunk;
use crate::recipe::PreflateChunk;

/// What a successful analysis found.
pub(crate) struct Analysis {
    pub chunks: Vec<PreflateChunk>,
    /// CRC32 and length of the plain text preflate decoded (checked against the member's).
    pub crc: u32,
    pub plain_size: u64,
}

fn describe(e: &PreflateError) -> String {
    format!("{:?}: {}", e.exit_code(), e)
}

/// Runs preflate on the member's deflate stream from `chunks`, holding at most `cap` deflate bytes
/// and `cap` plain bytes.
pub(crate) fn analyse(
    chunks: impl IntoIterator<Item = Chunk>,
    cap: usize,
) -> Result<Analysis, String> {
    let mut deflate = Vec::new();
    for chunk in chunks {
        // Drop our copy of the plain bytes at once; preflate decodes its own.
        let Chunk {
            deflate: d,
            plain: _,
        } = chunk;
        if deflate.len() + d.len() > cap {
            return Err(format!(
                "the deflate stream is larger than the preflate memory cap ({cap} bytes)"
            ));
        }
        deflate.extend_from_slice(&d);
    }
    let config = PreflateConfig {
        plain_text_limit: cap,
        // Verified below against the original bytes, the way rebuild will do it.
        verify_compression: false,
        ..PreflateConfig::default()
    };
    let mut analyser = PreflateStreamProcessor::new(&config);
    let result = catch_unwind(AssertUnwindSafe(|| analyser.decompress(&deflate)))
        .map_err(|_| "preflate-rs panicked while analysing".to_owned())?
        .map_err(|e| format!("preflate-rs: {}", describe(&e)))?;
    if !analyser.is_done() || result.compressed_size != deflate.len() {
        return Err(format!(
            "preflate-rs stopped after {} of {} deflate bytes (the plain text is larger than the memory cap of {cap} bytes?)",
            result.compressed_size,
            deflate.len()
        ));
    }
    let text = analyser.plain_text().text();
    let mut recreator = RecreateStreamProcessor::new();
    let (recreated, _) = catch_unwind(AssertUnwindSafe(|| {
        recreator.recompress(&mut Cursor::new(text), &result.corrections)
    }))
    .map_err(|_| "preflate-rs panicked while recreating".to_owned())?
    .map_err(|e| format!("preflate-rs recreating: {}", describe(&e)))?;
    if recreated != deflate {
        return Err("preflate-rs recreated different deflate bytes".to_owned());
    }
    Ok(Analysis {
        crc: crc32fast::hash(text),
        plain_size: text.len() as u64,
        chunks: vec![PreflateChunk {
            plain_size: text.len() as u64,
            corrections: crate::recipe::Bytes(result.corrections),
        }],
    })
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
