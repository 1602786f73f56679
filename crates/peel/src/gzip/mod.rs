//! The gzip layer (RFC 1952): header fields, members, trailer, trailing bytes, and the exact
//! methods that reproduce each member's deflate stream (zlib, GNU gzip, preflate).
//!
//! Interface (keep it stable):
//! - [`expand`] reads a whole gzip file from `input`, writes the concatenated plain content of
//!   all members to `plain`, proves that each member's deflate body is reproduced by the chosen
//!   method, and returns the [`GzipRecipe`]. When no exact method reproduces a member it returns
//!   [`crate::Error::NotReproducible`], and the caller keeps the layer as stored bytes.
//! - `decompress` (used by `layer/gzip.rs`) does the same but returns once the input is read,
//!   the proofs possibly still running (`proof.rs`); `Unproven::prove` waits for them. So the
//!   members of one stream, and the gzip layers of a tar's members, are proven side by side.
//! - [`rebuild`] reads the plain content from `plain` and writes the exact original gzip bytes;
//!   [`rebuild_with`] recompresses several members at once (`parallel.rs`).
//!
//! # How a method is chosen and proven
//! Each member is decompressed once, in the calling thread, and its plain bytes go to `plain` as
//! they appear; they also go, with the deflate bytes they came from, through a bounded channel to
//! the member's proof job (`proof.rs`). The job keeps the first [`GzipOptions::probe_size`] plain
//! bytes and their deflate bytes, and tries the deterministic candidates (bundled zlib at levels 1..9 with memLevel
//! 8, GNU gzip -1..-9, zlib with memLevel 9; levels ordered by the XFL byte) are tried on it. An
//! encoder's output before it sees the end of its input is final, so a wrong candidate is ruled
//! out as soon as its first block differs. A member that fits in the probe is proven there. For a
//! longer one the winning candidate then recompresses the whole member in the job while the
//! calling thread keeps decompressing, and every byte is compared.
//! When the prefix cannot tell candidates apart (very compressible data: a few output bytes for
//! megabytes of input), all those still in agreement run side by side in the job and drop
//! out where they diverge; the first, in the order above, that reproduces the member wins (see
//! `verify::verify_stream` for the bound on how long they run side by side).
//!
//! If that full comparison diverges after the probe agreed (not seen in practice: the encoders are
//! deterministic and the probe covers megabytes), the input is no longer available here, so the
//! member is reported as [`crate::Error::NotReproducible`] and the caller stores the layer; the
//! reason names the candidate, and a caller may retry with [`GzipOptions::without`] it.
//! When no deterministic candidate agrees, preflate-rs analyses the member instead (see
//! `preflate.rs`; in one piece, so only members within [`GzipOptions::preflate_memory_cap`]).
//!
//! The header is kept byte for byte; the trailer (CRC32, ISIZE) is checked on expand and computed
//! again on rebuild. Bytes after the last member that do not start another member are kept as
//! trailing bytes, up to [`GzipOptions::max_trailing`].

mod expand;
mod gnu;
mod header;
mod inflate;
mod parallel;
mod preflate;
pub(crate) mod proof;
mod rebuild;
mod source;
mod verify;
mod zlib;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
pub use crate::recipe::{GzipRecipe, MemberRecipe, Method, MethodKind, PreflateChunk};
pub use expand::expand;
pub(crate) use expand::{decompress, Unproven};
pub use gnu::gzip_version;
pub use parallel::rebuild_with;
pub use rebuild::rebuild;
use source::Source;
pub use zlib::zlib_version;

/// Which methods [`expand`] may use, and its memory bounds.
#[derive(Debug, Clone)]
pub struct GzipOptions {
    /// Try the bundled zlib.
    pub zlib: bool,
    /// Try GNU gzip (needs `gzip` on PATH, for expand and for rebuild).
    pub gnu_gzip: bool,
    /// Try preflate-rs when neither matches.
    pub preflate: bool,
    /// Plain bytes of a member the candidates are tried on before one is verified over the
    /// whole member (several side by side when this prefix cannot tell them apart).
    pub probe_size: usize,
    /// Upper bound for preflate-rs, which analyses a member in one piece: members with more
    /// deflate bytes or more plain bytes than this are not reproducible (stored).
    pub preflate_memory_cap: usize,
    /// Bytes after the last member kept in the recipe; more means the layer is stored.
    pub max_trailing: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        GzipOptions {
            zlib: true,
            gnu_gzip: true,
            preflate: true,
            probe_size: 4 << 20,
            preflate_memory_cap: 32 << 20,
            max_trailing: 1 << 20,
        }
    }
}

impl GzipOptions {
    /// These options without the methods of `kind` (to retry after a late divergence).
    pub fn without(mut self, kind: MethodKind) -> Self {
        match kind {
            MethodKind::Zlib => self.zlib = false,
            MethodKind::GnuGzip => self.gnu_gzip = false,
            MethodKind::Preflate => self.preflate = false,
        }
        self
    }
}

/// Parses the gzip member header at the start of `data` and returns its length in bytes and its
/// XFL byte. Errors name `location` and the byte offset. For tools and the fuzz targets; the
/// layer itself parses headers from its stream.
pub fn parse_header(data: &[u8], location: &str) -> Result<(usize, u8)> {
    let mut input: &[u8] = data;
    let mut src = Source::new(&mut input);
    let h = header::read(&mut src, location)?;
    Ok((h.raw.len(), h.xfl))
}

/// What [`expand`] did, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzipReport {
    /// One entry per member, in file order.
    pub members: Vec<MemberReport>,
    /// Bytes after the last member.
    pub trailing_size: u64,
    /// First line of `gzip --version` when a member uses GNU gzip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_version: Option<String>,
    /// The bundled zlib's version when a member uses zlib.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zlib_version: Option<String>,
    /// Where the time went (not serialized: it differs from run to run).
    #[serde(skip)]
    pub timing: GzipTiming,
}

/// Where the time of [`expand`] went, all members together (see [`crate::report::LayerProfile`]
/// for what each figure means).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GzipTiming {
    /// Reading compressed input, waiting for it included.
    pub read: Duration,
    /// Inflating.
    pub decompress: Duration,
    /// Trying candidates on the probe prefix.
    pub probe: Duration,
    /// Writing plain bytes to the caller (blocked while it catches up).
    pub downstream: Duration,
    /// The proof thread recompressing and comparing.
    pub proof: Duration,
    /// The proof thread waiting for chunks.
    pub proof_idle: Duration,
}

/// How one member was reproduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// The method chosen.
    pub method: MethodKind,
    /// Compression level (zlib and GNU gzip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// zlib's memLevel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_level: Option<u8>,
    /// Decompressed size.
    pub plain_size: u64,
    /// Size of the deflate body.
    pub deflate_size: u64,
    /// Size of preflate's correction data (0 for the other methods).
    pub corrections_size: u64,
    /// Candidates tried on the probe, plus preflate attempts.
    pub tries: u32,
}

/// Plain bytes the decompressor produces per step at most (about; one step's output).
pub(crate) const STEP_PLAIN: usize = 1 << 20;
