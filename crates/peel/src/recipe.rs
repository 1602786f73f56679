//! The recipe: everything besides the plain entries that is needed to rebuild the original bytes.
//!
//! The on-disk form is JSON, documented in `docs/recipe.md`. It is versioned: a reader refuses a
//! version it does not know instead of guessing.

use serde::{Deserialize, Serialize};

/// The recipe format version this build writes and the only one it reads.
pub const RECIPE_VERSION: u32 = 1;

/// How to rebuild one original file from the entries of its tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    /// Format version; see [`RECIPE_VERSION`].
    pub version: u32,
    /// Size and SHA-256 of the original file; every rebuild is checked against it.
    pub original: Digest,
    /// The original file's name, when it was known (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The outermost layer.
    pub root: Node,
}

/// Size and SHA-256 (lower-case hex) of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Length in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// One layer of the original file, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    /// Plain bytes, kept as the entry `path` of the tree.
    Entry {
        /// Path of the entry in the tree (`/`-separated, relative).
        path: String,
        /// Length in bytes.
        size: u64,
    },
    /// A compressed layer that no exact method reproduced, kept as its original bytes.
    Stored {
        /// Path of the entry in the tree that holds the original compressed bytes.
        path: String,
        /// Length in bytes.
        size: u64,
        /// Why no exact method applied (shown in reports).
        reason: String,
    },
    /// A gzip file (one or more members) whose concatenated content is `inner`.
    Gzip {
        /// Headers, methods and trailing bytes of the members.
        gzip: crate::gzip::GzipRecipe,
        /// The decompressed content.
        inner: Box<Node>,
    },
    /// A tar archive.
    Tar(crate::tar::TarRecipe),
}

/// Raw bytes that serialize as base64 in the recipe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}
