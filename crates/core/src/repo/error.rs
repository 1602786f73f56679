//! [`RepoError`]: the errors of the repository layer, each naming the repository, file or
//! snapshot concerned, and the translation of rustic_core's errors into them.

use std::path::PathBuf;

use super::{repo_lock, Location};

/// Errors of the repository layer; each names the repository, file or snapshot concerned.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No password source was given (the CLI names its flag and variables).
    #[error("no repository password given")]
    NoPassword,
    /// The password file could not be read.
    #[error("password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The location string is not usable.
    #[error("repository location `{location}`: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// No repository exists there.
    #[error("no repository at {0} (no config file found); run `dvault init` first")]
    NotFound(String),
    /// A repository exists there already.
    #[error("a repository exists already at {0}; refusing to initialize it again")]
    AlreadyExists(String),
    /// The password opens no key of the repository.
    #[error("wrong password for the repository at {0}: no key matches it")]
    WrongPassword(String),
    /// The REST server answered 401 or 403: the login is wrong or missing.
    #[error("REST server refused the credentials (HTTP {status}) for {location}: {hint}")]
    RestRefused {
        /// The repository (password hidden).
        location: String,
        /// 401 or 403.
        status: u16,
        /// What to check.
        hint: &'static str,
    },
    /// Packs a command needed are damaged or missing.
    #[error("repository {location}: {what}: damaged data: {details}")]
    DamagedPacks {
        /// The repository.
        location: String,
        /// What dvault was doing.
        what: String,
        /// Each pack with the files and snapshots it costs, then check's findings.
        details: String,
    },
    /// Bad chunker settings.
    #[error("chunker settings: {0}")]
    Chunker(String),
    /// The server refuses deletion (append-only).
    #[error(
        "the repository at {location} is append-only: {operation} needs to delete files and the server refuses that; run it where the full credentials are"
    )]
    AppendOnly {
        /// The repository.
        location: String,
        /// What was attempted.
        operation: String,
    },
    /// No snapshot matches.
    #[error("no dvault snapshot `{0}` in the repository")]
    NoSuchSnapshot(String),
    /// Bytes did not match their recorded SHA-256.
    #[error("{what}: SHA-256 mismatch, expected {expected}, got {actual}")]
    Mismatch {
        /// What was compared.
        what: String,
        /// Recorded SHA-256.
        expected: String,
        /// SHA-256 of what was produced.
        actual: String,
    },
    /// peel could not take a file apart or put a tree back together.
    #[error("{path}: {message}")]
    Peel {
        /// The file or tree.
        path: PathBuf,
        /// peel's explanation (names the layer, entry and offset).
        message: String,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A refused argument.
    #[error("{0}")]
    Invalid(String),
    /// The dedup layout could not be written or undone.
    #[error("dedup layout: {0}")]
    Layout(#[from] crate::layout::LayoutError),
    /// Another process holds a conflicting lock of the repository.
    #[error(transparent)]
    Locked(#[from] repo_lock::Locked),
    /// An error from the repository engine.
    #[error("repository {location}: {action}: {message}")]
    Engine {
        /// The repository.
        location: String,
        /// What dvault was doing.
        action: String,
        /// The engine's message.
        message: String,
    },
}

impl RepoError {
    pub(crate) fn rustic(
        location: &Location,
        action: &str,
        err: &rustic_core::RusticError,
    ) -> Self {
        // The REST client's URL may hold the password; rustic hides it in most messages, this
        // makes sure of it.
        let mut message = crate::redact::string(&err.display_log());
        if let Location::S3 { .. } = location {
            // rustic reports a refused S3 request as "does not exist"; say what it is.
            if let Some(h) = crate::s3::hint(&message) {
                message = format!("{h}; {message}");
            }
        }
        // rustic's local backend and cache put the file in a context entry that its short
        // message leaves out ("Failed to read the contents of the file ... Permission
        // denied"): the file goes in front, so an admin knows which one (issue 20).
        if let Some(path) = unshown_path(err) {
            message = format!("{path}: {message}");
        }
        Self::Engine {
            location: location.to_string(),
            action: action.to_string(),
            message,
        }
    }
}

/// The `path` (or `path_tmp`) context entry of a rustic error that its message does not show
/// already. rustic_core 0.13 has no getter for the context; its long form lists the unused
/// entries as `- key: value` lines under `Context:`.
fn unshown_path(err: &rustic_core::RusticError) -> Option<String> {
    let long = err.to_string();
    let (_, context) = long.split_once("\nContext:\n")?;
    context
        .lines()
        .take_while(|l| l.starts_with("- "))
        .find_map(|l| {
            l.strip_prefix("- path: ")
                .or_else(|| l.strip_prefix("- path_tmp: "))
        })
        .map(str::to_string)
}
