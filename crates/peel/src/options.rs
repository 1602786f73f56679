//! The settings of an expansion: nesting depth, which gzip methods may be tried, and the
//! decompression-bomb cap; and of a rebuild: how many gzip members are recompressed at once.

use crate::gzip;

/// Settings of an expansion.
#[derive(Debug, Clone)]
pub struct ExpandOptions {
    /// Layers nested deeper than this are kept as plain entries (a guard against archives
    /// crafted to nest endlessly).
    pub max_depth: u32,
    /// Whether an input that is neither gzip nor tar is accepted (as one plain entry). The
    /// command line refuses such input: a backup is always one or the other.
    pub allow_plain_root: bool,
    /// Which exact methods the gzip layer may try, and its memory bounds.
    pub gzip: gzip::GzipOptions,
    /// The decompression-bomb cap: the entries of one expansion may hold at most
    /// `max_expansion_ratio` times the input bytes read so far, plus [`Self::expansion_slack`].
    /// Checked while the data streams, so a bomb stops early instead of filling the disk.
    /// A nested layer that trips it is kept as its original bytes; the outermost fails.
    pub max_expansion_ratio: u64,
    /// Entry bytes allowed on top of the ratio (small inputs may expand more than the ratio).
    pub expansion_slack: u64,
    /// How many gzip members whose input has been read may still be being proven at once
    /// (members of one gzip stream, and gzip layers in different tar members, such as format B's
    /// `db/NNNN.dat.gz`); the thread reading the input goes on meanwhile. 0 proves each member
    /// before reading the next. Only for an input that can be read again ([`crate::expand_path`]):
    /// should a proof fail, the input is expanded again with 0, so the result is always the same.
    /// The default is the number of cores.
    pub parallel_proofs: usize,
}

impl Default for ExpandOptions {
    fn default() -> Self {
        ExpandOptions {
            max_depth: 8,
            allow_plain_root: true,
            gzip: gzip::GzipOptions::default(),
            // A pg_dump compresses about 3 to 10 times; deflate's own ceiling is 1032 times
            // per layer, and nesting multiplies it.
            max_expansion_ratio: 200,
            expansion_slack: 256 << 20,
            parallel_proofs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Settings of a rebuild: how many gzip members are recompressed at once, and how much
/// recompressed output may wait for its turn.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// How many independent gzip members (tar members that are gzip layers, such as format B's
    /// `db/NNNN.dat.gz`, and the members of one gzip stream) are recompressed at once. The output
    /// is still written strictly in order, so the bytes are the same whatever this is. 0 rebuilds
    /// one member after another on the writing thread (the sequential path); the default is the
    /// number of cores. Only a source that can open entries from several threads
    /// ([`crate::EntrySource::try_clone`], a tree on disk) rebuilds tar members in parallel.
    pub parallel_jobs: usize,
    /// The most bytes held in memory at one place that rebuilds in parallel (a tar layer, or a
    /// gzip stream of several members): recompressed output of members ahead of the one being
    /// written, and (for a gzip stream) plain content handed to members not yet compressing it.
    /// A member ahead that reaches the cap waits until the writer has caught up; the member being
    /// written streams straight through, so a huge member holds no more than about 1 MiB. In
    /// all, one such place holds at most about twice the cap plus a few MiB per job (its
    /// encoder's buffers); places nest only as deep as the layers do.
    pub buffer_cap: usize,
}

impl RebuildOptions {
    /// One member after another (no threads beyond one per gzip layer).
    pub fn sequential() -> Self {
        RebuildOptions {
            parallel_jobs: 0,
            ..RebuildOptions::default()
        }
    }
}

impl Default for RebuildOptions {
    fn default() -> Self {
        RebuildOptions {
            parallel_jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            // While a big member (format B's posts table: about 20 MB compressed on a medium
            // forum) is being written, the members after it are compressed into this room: 16
            // MiB holds most of the rest of such a dump, and keeps a rebuild within a few tens
            // of MB (restore runs it after rustic_core's restore, under the 300 MB target).
            buffer_cap: 16 << 20,
        }
    }
}
