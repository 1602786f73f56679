//! The drill's decompression-bomb cap: the same rule and numbers as `dvault expand` and
//! `dvault backup` (peel's `ExpandOptions::max_expansion_ratio` and `expansion_slack`).
//!
//! What the drill decompresses may be at most `ratio` times the bytes of the backup file read
//! so far, plus `slack`, checked while the data streams. As in peel, the plain contents count:
//! the output of each gzip layer, less the compressed bytes an inner layer (`dump.sql.gz`
//! inside the tar) consumes, so a genuine backup that `backup` accepted is not refused here.
//! pg_restore's script of a directory dump counts too (it decompresses the `.dat.gz` files).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The cap's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpansionLimit {
    /// Plain bytes allowed per byte of the backup file read.
    pub max_expansion_ratio: u64,
    /// Plain bytes allowed on top of the ratio.
    pub expansion_slack: u64,
}

impl Default for ExpansionLimit {
    /// peel's defaults, as for `expand` and `backup`.
    fn default() -> Self {
        let o = peel::ExpandOptions::default();
        ExpansionLimit {
            max_expansion_ratio: o.max_expansion_ratio,
            expansion_slack: o.expansion_slack,
        }
    }
}

/// The running count of one drill: bytes of the backup file read, plain bytes produced.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExpansionBudget {
    limit: ExpansionLimit,
    input: Rc<Cell<u64>>,
    expanded: Rc<Cell<u64>>,
}

impl ExpansionBudget {
    pub(crate) fn new(limit: ExpansionLimit) -> Self {
        ExpansionBudget {
            limit,
            ..Default::default()
        }
    }

    /// The counter of backup-file bytes read, for the reader of the file.
    pub(crate) fn input_counter(&self) -> Rc<Cell<u64>> {
        self.input.clone()
    }

    /// Counts what `inner` produces (a decompressor named `what`) against the cap.
    pub(crate) fn reader<R: Read>(&self, inner: R, what: String) -> Capped<R> {
        Capped {
            inner,
            budget: self.clone(),
            what,
            sign: 1,
        }
    }

    /// Takes back what `inner` yields: compressed bytes an inner layer consumes were counted as
    /// the outer layer's output, and only the inner layer's output is plain.
    pub(crate) fn consumed<R: Read>(&self, inner: R) -> Capped<R> {
        Capped {
            inner,
            budget: self.clone(),
            what: String::new(),
            sign: -1,
        }
    }

    fn check(&self, what: &str) -> io::Result<()> {
        let input = self.input.get();
        let allowed = input
            .saturating_mul(self.limit.max_expansion_ratio)
            .saturating_add(self.limit.expansion_slack);
        if self.expanded.get() > allowed {
            return Err(io::Error::other(format!(
                "{what}: expands to more than {allowed} bytes from {input} bytes of the backup \
                 file read (the cap is {} times the input plus {} bytes, as for expand and \
                 backup; a decompression bomb? raise --max-expansion-ratio or --expansion-slack \
                 if this backup is genuine)",
                self.limit.max_expansion_ratio, self.limit.expansion_slack
            )));
        }
        Ok(())
    }
}

/// A reader counted against an [`ExpansionBudget`].
pub(crate) struct Capped<R> {
    inner: R,
    budget: ExpansionBudget,
    what: String,
    sign: i8,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let e = &self.budget.expanded;
        if self.sign > 0 {
            e.set(e.get().saturating_add(n as u64));
            self.budget.check(&self.what)?;
        } else {
            e.set(e.get().saturating_sub(n as u64));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_beyond_ratio_times_input_plus_slack_is_refused() {
        let budget = ExpansionBudget::new(ExpansionLimit {
            max_expansion_ratio: 10,
            expansion_slack: 100,
        });
        budget.input_counter().set(5);
        let mut ok = budget.reader(&[0u8; 150][..], "a".into());
        io::copy(&mut ok, &mut io::sink()).unwrap();
        let mut back = budget.consumed(&[0u8; 50][..]);
        io::copy(&mut back, &mut io::sink()).unwrap();
        let mut over = budget.reader(&[0u8; 51][..], "dump.sql.gz".into());
        let err = io::copy(&mut over, &mut io::sink())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("dump.sql.gz: expands to more than 150 bytes from 5 bytes"),
            "{err}"
        );
        assert!(err.contains("10 times the input plus 100 bytes"), "{err}");
    }
}
