//! What an expansion found: every layer, the method that reproduces it, sizes, and how much of
//! the original ends up in the recipe rather than in deduplicable entries.

use serde::{Deserialize, Serialize};

use crate::recipe::Digest;

/// The outcome of one expansion, for `dvault inspect` and for snapshot metadata.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Size and SHA-256 of the original input.
    pub original: Digest,
    /// Every container layer (gzip, tar, stored) and every member kept plain after a failed
    /// peel, outermost first, in stream order.
    pub layers: Vec<LayerReport>,
    /// Number of entries written to the sink (tar header files and tails included).
    pub entries: u64,
    /// Total bytes of those entries.
    pub entry_bytes: u64,
    /// Bytes that only serve the rebuild: the recipe JSON plus tar header blocks and tails.
    pub recipe_bytes: u64,
    /// `recipe_bytes` as a share of the original size (0.0 for an empty input).
    pub recipe_share: f64,
    /// Whether any compressed layer had to be kept as its original bytes.
    pub stored_fallback: bool,
    /// Where the time went. Not in the JSON of the report: it differs from run to run, and
    /// the report is stored in snapshots; callers show it on its own.
    #[serde(skip)]
    pub profile: Profile,
}

/// Where the time of one expansion went, in wall-clock seconds. The layers run on threads of
/// their own, side by side, so the figures overlap: the layer whose busy time (decompress,
/// probe, proof) comes closest to `wall_s` is the one that sets the pace; large `downstream_s`
/// means a layer waited for the layers inside it or for the sink.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// From the start to the end of the expansion.
    pub wall_s: f64,
    /// Reading the original input (the file or stream), waiting for the disk included.
    pub read_input_s: f64,
    /// The sink storing entries (writing the tree), not counting waiting for their data.
    pub store_entries_s: f64,
    /// Waiting for entry data while the layers above decompressed and proved it.
    pub wait_entries_s: f64,
    /// One per gzip layer, outermost first, in stream order.
    pub layers: Vec<LayerProfile>,
}

/// Where the time of one gzip layer went (seconds; its two threads run side by side).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerProfile {
    /// The layer (as in [`LayerReport::location`]).
    pub location: String,
    /// Decompressing thread: reading the compressed bytes (for a nested layer: waiting for its
    /// container to hand them on).
    pub read_s: f64,
    /// Decompressing thread: inflating.
    pub decompress_s: f64,
    /// Decompressing thread: trying the candidate methods on the probe prefix.
    pub probe_s: f64,
    /// Decompressing thread: handing plain bytes on, blocked while the layers inside and the
    /// sink catch up.
    pub downstream_s: f64,
    /// Proof thread: recompressing and comparing every byte (for GNU gzip mostly the `gzip`
    /// process's own time).
    pub proof_s: f64,
    /// Proof thread: waiting for decompressed chunks.
    pub proof_idle_s: f64,
}

/// One layer of the input.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Where the layer is: the input name, then `>gunzip` for a gzip's content and `>PATH` for a
    /// tar member.
    pub location: String,
    /// `gzip`, `tar`, `stored` (compressed bytes kept as they are) or `plain` (a member that
    /// looked like a container but could not be peeled; kept as its bytes).
    pub kind: String,
    /// The exact method that reproduces the layer (gzip), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Bytes of the layer as it appears in its container.
    pub compressed_size: u64,
    /// Bytes of its content (decompressed size for gzip, member data for tar).
    pub plain_size: u64,
    /// Bytes the recipe needs for this layer itself (nested layers not counted).
    pub recipe_bytes: u64,
    /// `recipe_bytes` as a share of `compressed_size`.
    pub recipe_share: f64,
    /// Why the layer was stored or kept plain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the gzip layer reported (tries, tool versions), as it reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl LayerReport {
    pub(crate) fn new(location: &str, kind: &str) -> Self {
        LayerReport {
            location: location.to_string(),
            kind: kind.to_string(),
            method: None,
            compressed_size: 0,
            plain_size: 0,
            recipe_bytes: 0,
            recipe_share: 0.0,
            note: None,
            details: None,
        }
    }

    pub(crate) fn set_recipe_bytes(&mut self, bytes: u64) {
        self.recipe_bytes = bytes;
        self.recipe_share = share(bytes, self.compressed_size);
    }
}

/// `part / whole`, 0.0 when `whole` is 0.
pub(crate) fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "original: {} bytes, sha256 {}",
            self.original.size, self.original.sha256
        )?;
        for l in &self.layers {
            write!(
                f,
                "{:<6} {}  {} -> {} bytes, recipe {} bytes ({:.3}%)",
                l.kind,
                l.location,
                l.compressed_size,
                l.plain_size,
                l.recipe_bytes,
                l.recipe_share * 100.0
            )?;
            if let Some(m) = &l.method {
                write!(f, ", method {m}")?;
            }
            if let Some(n) = &l.note {
                write!(f, " ({n})")?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "entries: {} ({} bytes); recipe: {} bytes ({:.3}% of the original)",
            self.entries,
            self.entry_bytes,
            self.recipe_bytes,
            self.recipe_share * 100.0
        )?;
        if self.stored_fallback {
            writeln!(
                f,
                "warning: some layers are kept as stored compressed bytes (not deduplicated)"
            )?;
        }
        Ok(())
    }
}
