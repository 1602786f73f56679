//! Errors of expanding and rebuilding.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not what it claims to be (bad header, CRC, truncation, unsafe path...).
    #[error("{location}: {problem}")]
    Format {
        /// Layer path and byte offset or entry name.
        location: String,
        /// What was expected and what was found.
        problem: String,
    },
    /// No exact method reproduces a compressed layer; the caller stores it as it is.
    #[error("{location}: no exact method reproduces this layer: {reason}")]
    NotReproducible {
        /// Layer path and member.
        location: String,
        /// What was tried.
        reason: String,
    },
    /// The sink refused or failed to store an entry (disk full, unsafe path...).
    #[error("writing entry {path}: {source}")]
    Sink {
        /// The entry's path in the tree.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The rebuilt bytes differ from the recorded original.
    #[error("rebuild mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// Recorded digest.
        expected: String,
        /// Digest of what was rebuilt.
        actual: String,
    },
    /// The recipe cannot be used (unknown version, missing entry, bad field).
    #[error("recipe: {0}")]
    Recipe(String),
}
