//! The recipe: everything besides the plain entries that is needed to rebuild the original bytes.
//!
//! The on-disk form is JSON, documented in `docs/recipe.md`. It is versioned: a reader refuses a
//! version it does not know instead of guessing.
//!
//! All recipe types live here, the gzip and tar layers' included (they re-export theirs): the
//! layers depend on this module and this module on none of them, so the format modules form no
//! import cycle.

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
        gzip: GzipRecipe,
        /// The decompressed content.
        inner: Box<Node>,
    },
    /// A tar archive.
    Tar(TarRecipe),
}

impl Node {
    /// The tree entries this layer reads on a rebuild, in the order a rebuild opens them: a
    /// caller that fetches the entries from somewhere slow (a repository) can fetch them in
    /// this order and let the rebuild start before the last one arrives.
    pub fn entry_paths(&self) -> Vec<&str> {
        let mut paths = Vec::new();
        self.push_entry_paths(&mut paths);
        paths
    }

    fn push_entry_paths<'a>(&'a self, paths: &mut Vec<&'a str>) {
        match self {
            Node::Entry { path, .. } | Node::Stored { path, .. } => paths.push(path),
            Node::Gzip { inner, .. } => inner.push_entry_paths(paths),
            Node::Tar(tar) => {
                paths.push(&tar.headers);
                for data in tar.members.iter().filter_map(|m| m.data.as_ref()) {
                    data.push_entry_paths(paths);
                }
                if let Some(after) = &tar.after {
                    after.push_entry_paths(paths);
                }
            }
        }
    }
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

// ---------------------------------------------------------------------------------------------
// The gzip layer (`gzip/`)

/// Everything about a gzip file except its decompressed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzipRecipe {
    /// The members, in file order.
    pub members: Vec<MemberRecipe>,
    /// Bytes after the last member (often none).
    #[serde(default)]
    pub trailing: Bytes,
}

/// One gzip member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecipe {
    /// The raw header bytes, byte for byte (FEXTRA, FNAME, FCOMMENT, FHCRC included).
    pub header: Bytes,
    /// Length of this member's decompressed content.
    pub plain_size: u64,
    /// Length of this member's deflate body.
    pub deflate_size: u64,
    /// The method that reproduces the deflate body exactly.
    pub method: Method,
}

/// An exact deflate method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// The bundled zlib's deflate, raw (window 15, default strategy).
    Zlib {
        /// Compression level 1..=9.
        level: u8,
        /// memLevel 8 or 9.
        mem_level: u8,
    },
    /// GNU gzip's own deflate, driven through the `gzip` binary.
    GnuGzip {
        /// Compression level 1..=9.
        level: u8,
    },
    /// preflate-rs prediction plus correction data, one entry per chunk of the deflate stream.
    Preflate {
        /// The chunks in stream order; their plain sizes add up to the member's.
        chunks: Vec<PreflateChunk>,
    },
}

/// The kind of a [`Method`], without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// [`Method::Zlib`].
    Zlib,
    /// [`Method::GnuGzip`].
    GnuGzip,
    /// [`Method::Preflate`].
    Preflate,
}

impl Method {
    /// The method's kind.
    pub fn kind(&self) -> MethodKind {
        match self {
            Method::Zlib { .. } => MethodKind::Zlib,
            Method::GnuGzip { .. } => MethodKind::GnuGzip,
            Method::Preflate { .. } => MethodKind::Preflate,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Zlib { level, mem_level } => {
                write!(f, "zlib level {level} memLevel {mem_level}")
            }
            Method::GnuGzip { level } => write!(f, "gzip -{level}"),
            Method::Preflate { chunks } => write!(f, "preflate ({} chunks)", chunks.len()),
        }
    }
}

/// One chunk of a preflate-reproduced deflate stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflateChunk {
    /// Plain bytes this chunk covers.
    pub plain_size: u64,
    /// preflate-rs correction data for the chunk.
    pub corrections: Bytes,
}

// ---------------------------------------------------------------------------------------------
// The tar layer (`tar/`)

/// Everything about a tar archive except its members' data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarRecipe {
    /// Internal entry holding all header blocks (extension headers and their data included).
    pub headers: String,
    /// Its length in bytes (a multiple of 512).
    pub headers_size: u64,
    /// The members, in archive order.
    pub members: Vec<TarMember>,
    /// Zero bytes after the last member: the end-of-archive blocks and record padding.
    pub end_zeros: u64,
    /// Whatever follows those zeros, kept as an internal entry (usually absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Box<Node>>,
}

/// One member of a tar archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarMember {
    /// Number of 512-byte blocks this member takes from the headers entry.
    pub blocks: u32,
    /// Size of the member's data (0 for directories and links).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// The member's data: a plain entry, or a nested layer. Absent for directories and links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Node>,
    /// The padding after the data when it is not all zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<Bytes>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
