//! The decompression-bomb cap, applied to every entry while it streams.

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Stops an entry once the expansion holds more than the cap allows for the input read so far
/// (see [`ExpandOptions::max_expansion_ratio`]): a decompression bomb fails early and clearly.
pub(super) struct Capped<'r> {
    pub(super) inner: &'r mut dyn Read,
    /// Time spent waiting for `inner` (the layers above producing the data).
    pub(super) waited: Duration,
    /// Entry bytes of the expansion before this entry.
    pub(super) before: u64,
    pub(super) count: u64,
    pub(super) input_read: &'r AtomicU64,
    pub(super) ratio: u64,
    pub(super) slack: u64,
    /// Set to the explanation when the cap stopped the entry.
    pub(super) tripped: &'r Cell<Option<String>>,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        let n = self.inner.read(buf);
        self.waited += started.elapsed();
        let n = n?;
        self.count += n as u64;
        let total = self.before + self.count;
        let input = self.input_read.load(Ordering::Relaxed);
        let allowed = input.saturating_mul(self.ratio).saturating_add(self.slack);
        if total > allowed {
            let problem = format!(
                "expands to more than {allowed} bytes from {input} input bytes (the cap is \
                 {} times the input plus {} bytes; a decompression bomb? raise \
                 max_expansion_ratio or expansion_slack if this input is genuine)",
                self.ratio, self.slack
            );
            self.tripped.set(Some(problem.clone()));
            return Err(io::Error::other(problem));
        }
        Ok(n)
    }
}
