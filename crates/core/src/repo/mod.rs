//! The repository: encrypted, deduplicated storage of peeled backups.
//!
//! This module is dvault's own small interface; [`restic`] implements it with `rustic_core`
//! (restic repository format v2), so no rustic type leaks to the rest of dvault and a second
//! store could be added behind the same API.

pub mod backend;
pub mod browse;
pub mod copy;
mod error;
pub mod keys;
mod lock_store;
pub mod original_paths;
pub mod password;
pub(crate) mod peeled;
pub mod profile;
pub mod repo_lock;
pub mod rest_auth;
pub mod snapshot_ledger;
pub(crate) mod state_file;
pub mod stats;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use backend::Location;
pub use error::RepoError;
pub use password::Password;
// The restic-format implementation moved to `store/restic/`; these paths stay for callers.
pub use crate::store::restic;
pub(crate) use crate::store::restic::remove_stale_of;
pub use crate::store::restic::Repo;
pub use crate::store::tarsnap;
pub use crate::store::tarsnap::ledger as tarsnap_ledger;

/// Rebuilds the original file from a peeled tree on disk (for example one that the stock
/// `restic restore` wrote) into `out`, checked against the recipe's SHA-256; returns the size
/// and SHA-256 written.
pub fn rebuild_tree(
    dir: &std::path::Path,
    out: &mut (dyn std::io::Write + Send),
) -> Result<(u64, String), RepoError> {
    // A tree restored by the stock restic still has the dedup layout: put the dumps back first.
    crate::layout::undo(dir)?;
    peeled::rebuild_from_dir(dir, out)
}

use crate::snapshot::BackupMeta;

/// Tag every dvault snapshot carries (so other snapshots in a shared repository are ignored).
pub const TAG: &str = "dvault";

/// How to reach a repository and where to keep local scratch data.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// Where the repository lives.
    pub location: Location,
    /// Folder for the local cache of repository metadata; `None` uses rustic's default
    /// (`$XDG_CACHE_HOME/rustic`).
    pub cache_dir: Option<PathBuf>,
    /// Folder in which a backup expands its file before storing it; `None` uses `$TMPDIR`.
    pub scratch_dir: Option<PathBuf>,
    /// For `s3:` locations: a file with the access key id and secret (two lines); `None`
    /// reads `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub s3_credentials_file: Option<PathBuf>,
    /// For `rest:` locations: a file whose first line is the REST server's password (see
    /// [`rest_auth`]); `None` reads `DVAULT_REST_PASSWORD` / `RESTIC_REST_PASSWORD` unless the
    /// URL holds one.
    pub rest_password_file: Option<PathBuf>,
    /// dvault's state folder on this host: holds the ledger of the snapshots it wrote to each
    /// repository (see [`snapshot_ledger`]); `None` keeps no ledger.
    pub state_dir: Option<PathBuf>,
    /// The decompression-bomb cap of a backup's expansion (peel's `max_expansion_ratio`);
    /// `None` keeps peel's default.
    pub max_expansion_ratio: Option<u64>,
    /// Bytes allowed on top of the ratio (peel's `expansion_slack`); `None`: peel's default.
    pub expansion_slack: Option<u64>,
    /// How long to wait for another process's conflicting repository lock (restic's lock
    /// files, see [`repo_lock`]) before failing with exit code 11; zero fails at once.
    pub lock_wait: std::time::Duration,
    /// How a backup lays out the dumps of its peeled tree (`crate::layout`); the command line
    /// reads `DVAULT_LAYOUT` into it ([`crate::layout::Mode::from_env`]).
    pub layout: crate::layout::Mode,
}

impl RepoConfig {
    /// A configuration with default cache and scratch folders.
    pub fn new(location: Location) -> Self {
        Self {
            location,
            cache_dir: None,
            scratch_dir: None,
            s3_credentials_file: None,
            rest_password_file: None,
            state_dir: None,
            max_expansion_ratio: None,
            expansion_slack: None,
            lock_wait: std::time::Duration::ZERO,
            layout: crate::layout::Mode::Columns,
        }
    }
}

/// Content-defined chunking sizes for a new repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerSizes {
    /// Smallest chunk in bytes (at least 4 KiB, see [`ChunkerSizes::validate`]).
    pub min: u64,
    /// Average chunk size in bytes (a power of two).
    pub avg: u64,
    /// Largest chunk in bytes.
    pub max: u64,
}

impl ChunkerSizes {
    /// Smallest minimum chunk size accepted: rustic_core 0.13 accepts less but then mis-chunks
    /// silently (a size calculation wraps in release builds).
    pub const MIN_MIN: u64 = 4096;

    /// dvault's default for new repositories: 4 KiB minimum and average (about 8 KiB real mean),
    /// 16 KiB maximum. Chosen by `scripts/bench-dedup` on the simulated medium forum with the
    /// dedup layout: 4.6 MB/day with 16 KiB average chunks, 3.7 MB/day with these, 30 MB/day with
    /// restic's 1 MiB (see docs/layout.md). Uploads lose little: they never change, so whole
    /// files deduplicate at any chunk size; the first backup grows about 7 % (more, smaller
    /// zstd frames and index entries).
    pub const DVAULT_DEFAULT: ChunkerSizes = ChunkerSizes {
        min: 4096,
        avg: 4096,
        max: 16384,
    };

    /// restic's own sizes (512 KiB / 1 MiB / 8 MiB).
    pub const RESTIC_DEFAULT: ChunkerSizes = ChunkerSizes {
        min: 512 * 1024,
        avg: 1024 * 1024,
        max: 8 * 1024 * 1024,
    };

    /// Rejects settings the chunker cannot honour.
    pub fn validate(&self) -> Result<(), RepoError> {
        let bad = |reason: String| Err(RepoError::Chunker(reason));
        if self.min < Self::MIN_MIN {
            return bad(format!(
                "minimum chunk size {} B is below {} B (rustic_core 0.13 mis-chunks below it)",
                self.min,
                Self::MIN_MIN
            ));
        }
        if !self.avg.is_power_of_two() {
            return bad(format!(
                "average chunk size {} B is not a power of two",
                self.avg
            ));
        }
        if !(self.min <= self.avg && self.avg <= self.max) {
            return bad(format!(
                "chunk sizes must satisfy min <= avg <= max (got {} / {} / {})",
                self.min, self.avg, self.max
            ));
        }
        Ok(())
    }
}

/// Settings for a new repository.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Chunk sizes; `None` uses [`ChunkerSizes::DVAULT_DEFAULT`].
    pub chunker: Option<ChunkerSizes>,
}

/// What `backup_file` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BackupOutcome {
    /// A new snapshot was written.
    Stored(SnapshotSummary),
    /// A snapshot of a file with the same SHA-256 exists already; nothing was written.
    AlreadyStored {
        /// The existing snapshot.
        snapshot: SnapshotInfo,
    },
}

/// Figures of one backup run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// The snapshot written.
    pub snapshot: SnapshotInfo,
    /// Plain bytes of the peeled tree (what deduplication reads), not the file's size.
    pub bytes_processed: u64,
    /// New data before compression (not what the repository grew by: that is
    /// `bytes_added_packed`, the "added" of every other report).
    pub bytes_added_uncompressed: u64,
    /// New data as stored (compressed, encrypted, packed): what the repository grew by.
    pub bytes_added_packed: u64,
    /// Of `bytes_added_packed`, the new tree (directory listing) metadata.
    #[serde(default)]
    pub tree_bytes_added_packed: u64,
    /// What the dedup layout did to the dumps (`None` with `DVAULT_LAYOUT=plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<crate::layout::LayoutReport>,
    /// Files in the peeled tree.
    pub files: u64,
    /// Seconds the whole backup took (expansion included).
    pub seconds: f64,
    /// Where those seconds went, phase by phase.
    #[serde(default)]
    pub profile: profile::BackupProfile,
}

/// One dvault snapshot as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Full snapshot id (hex).
    pub id: String,
    /// First 8 hex digits, as restic shows them.
    pub short_id: String,
    /// When the snapshot was made (RFC 3339).
    pub time: String,
    /// Host that made it.
    pub host: String,
    /// The snapshot's tags.
    pub tags: Vec<String>,
    /// What dvault recorded about the original file.
    pub meta: BackupMeta,
}

/// The decision for one snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForgetDecision {
    /// The snapshot.
    pub snapshot: SnapshotInfo,
    /// Kept or removed.
    pub keep: bool,
    /// Which rules kept it.
    pub reasons: Vec<String>,
    /// Kept: why it was chosen over a newer snapshot of its period (the most complete backup);
    /// removed: which more complete snapshot its period keeps instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What `forget` decided and did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForgetReport {
    /// Every dvault snapshot with its decision.
    pub decisions: Vec<ForgetDecision>,
    /// True when nothing was removed on purpose.
    pub dry_run: bool,
    /// Ids removed.
    pub removed: Vec<String>,
    /// Bytes the prune freed in the storage (`None` without `--prune`): the same as
    /// `prune.freed_bytes`.
    pub pruned_bytes: Option<u64>,
    /// What the prune did (`None` without `--prune`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneReport>,
}

/// What a prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Pack files deleted whole: no snapshot needed anything in them, or no index lists them.
    pub packs_deleted: u64,
    /// Partly used pack files whose used blobs were copied into new packs, then deleted.
    pub packs_repacked: u64,
    /// Bytes of the blobs in the packs deleted whole (pack headers not counted).
    pub bytes_deleted: u64,
    /// Bytes of the blobs in the repacked packs; of these, `bytes_repacked - bytes_unused_dropped`
    /// were written again.
    pub bytes_repacked: u64,
    /// Unused blobs the repacking left behind, in bytes.
    pub bytes_unused_dropped: u64,
    /// The plan's figure of bytes freed: `bytes_deleted + bytes_unused_dropped`, plus the
    /// pack headers of what goes (37 bytes per blob entry, 41 for a compressed blob, which
    /// the plan does not tell apart: counted as 37; 36 bytes per pack).
    pub planned_freed_bytes: u64,
    /// Total size of the pack files (`data/`) before the prune, as the storage lists them.
    pub pack_bytes_before: u64,
    /// The same after the prune.
    pub pack_bytes_after: u64,
    /// `pack_bytes_before - pack_bytes_after`: what the prune really freed.
    pub freed_bytes: u64,
    /// Unused bytes left in partly used packs, within the tolerance (5 % of the data).
    pub unused_bytes_left: u64,
}

/// How much packed data `check` reads back and decrypts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// Only structure: index, snapshots and trees.
    None,
    /// Every pack.
    All,
    /// About this percentage (0 < p <= 100) of the packs, chosen at random.
    Percent(f64),
}

/// The result of `check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    /// Problems that make data unreadable.
    pub errors: Vec<String>,
    /// Oddities that do not affect integrity (for example unused blobs after an interrupted
    /// backup).
    pub warnings: Vec<String>,
    /// What was checked.
    #[serde(default)]
    pub checked: Checked,
}

/// What `check` looked at, so that "no errors were found" says of what.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checked {
    /// Snapshots in the repository (dvault's and any other's), each with its trees.
    pub snapshots: u64,
    /// Pack files in the repository, each compared with its index entry.
    pub packs: u64,
    /// Their total size in bytes.
    pub pack_bytes: u64,
    /// How much pack data was read back and decrypted: `none`, `all` or a percentage (`10%`).
    pub read_data: String,
}

impl CheckReport {
    /// True when no error was found.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Progress reporting for long operations; the command line implements it with bars.
pub trait ProgressBars: Send + Sync + std::fmt::Debug + 'static {
    /// Starts a progress display of `kind` titled `title`.
    fn start(&self, kind: ProgressKind, title: &str) -> Box<dyn ProgressBar>;

    /// Counts `bytes` newly written to the repository's pack files (data the repository did
    /// not have yet, compressed and encrypted).
    fn added(&self, _bytes: u64) {}
}

/// What a progress display counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// Nothing countable.
    Spinner,
    /// Items.
    Counter,
    /// Bytes.
    Bytes,
}

/// One running progress display.
pub trait ProgressBar: Send + Sync + std::fmt::Debug {
    /// Sets the total.
    fn set_length(&self, len: u64);
    /// Changes the title.
    fn set_title(&self, title: &str);
    /// Advances by `n`.
    fn inc(&self, n: u64);
    /// Ends the display.
    fn finish(&self);
}
