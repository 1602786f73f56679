//! The two ends an expansion and a rebuild talk to: where plain entries go ([`EntrySink`]) and
//! where they come back from ([`EntrySource`]). A directory on disk (`tree.rs`), a tar stream
//! (`tarstream/`) or a repository implements them.

use std::io::{self, Read};

/// Receives the plain entries of an expansion, one at a time, in stream order.
pub trait EntrySink {
    /// Stores the entry `path` (relative, `/`-separated, already checked to be safe), reading
    /// `data` to its end. Returns the number of bytes read.
    fn entry(&mut self, path: &str, data: &mut dyn Read) -> io::Result<u64>;

    /// Forgets an entry stored earlier: its layer turned out not to be peelable and is kept
    /// whole instead. Sinks that cannot take entries back may keep it; the recipe will not
    /// refer to it.
    fn discard(&mut self, path: &str) -> io::Result<()> {
        let _ = path;
        Ok(())
    }
}

/// Gives back the plain entries of a tree for a rebuild, in any order.
pub trait EntrySource: Send {
    /// Opens the entry `path` for reading.
    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + Send>>;

    /// Another source of the same entries, usable on another thread at the same time, so that
    /// independent parts are rebuilt in parallel ([`crate::RebuildOptions::parallel_jobs`]).
    /// `None` (the default) when entries can only be read one after another, as from a stream.
    fn try_clone(&self) -> Option<Box<dyn EntrySource>> {
        None
    }
}
