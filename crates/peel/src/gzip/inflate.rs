//! Raw inflate of one member's deflate body, step by step, keeping the deflate bytes each step
//! consumed next to the plain bytes it produced (the proof compares against the former).

use std::time::{Duration, Instant};

use super::source::Source;
use super::{header, STEP_PLAIN};
use crate::error::{Error, Result};

/// Raw inflate of one member's deflate body, consuming exactly its bytes from the source.
pub(super) struct Inflater {
    pub(super) dec: flate2::Decompress,
    pub(super) ended: bool,
    pub(super) member_start: u64,
    /// Time spent reading input and inflating.
    pub(super) read: Duration,
    pub(super) decompress: Duration,
}

impl Inflater {
    /// Decompresses one buffer's worth: appends the deflate bytes consumed to `deflate` and the
    /// plain bytes produced to `plain`.
    pub(super) fn step(
        &mut self,
        src: &mut Source<'_>,
        location: &str,
        deflate: &mut Vec<u8>,
        plain: &mut Vec<u8>,
    ) -> Result<()> {
        let at = src.offset();
        let started = Instant::now();
        let input = src
            .fill_buf()
            .map_err(|e| header::io_error(location, at, e))?;
        let read = started.elapsed();
        self.read += read;
        if input.is_empty() {
            return Err(Error::Format {
                location: format!("{location} at byte {at}"),
                problem: format!(
                    "truncated gzip member (starts at byte {}): input ends inside the compressed data",
                    self.member_start
                ),
            });
        }
        plain.reserve(STEP_PLAIN);
        let (in_before, out_before) = (self.dec.total_in(), self.dec.total_out());
        let status = self
            .dec
            .decompress_vec(input, plain, flate2::FlushDecompress::None)
            .map_err(|e| Error::Format {
                location: format!("{location} at byte {at}"),
                problem: format!(
                    "invalid deflate data in gzip member starting at byte {}: {e}",
                    self.member_start
                ),
            })?;
        self.decompress += started.elapsed() - read;
        let consumed = (self.dec.total_in() - in_before) as usize;
        let produced = self.dec.total_out() - out_before;
        deflate.extend_from_slice(&input[..consumed]);
        src.consume(consumed);
        if status == flate2::Status::StreamEnd {
            self.ended = true;
        } else if consumed == 0 && produced == 0 {
            return Err(Error::Format {
                location: format!("{location} at byte {at}"),
                problem: "deflate decoder made no progress".to_owned(),
            });
        }
        Ok(())
    }
}
