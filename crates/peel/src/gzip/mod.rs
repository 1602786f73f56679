//! The gzip layer (RFC 1952): header fields, members, trailer, trailing bytes, and the exact
//! methods that reproduce each member's deflate stream (zlib, GNU gzip, preflate).
//!
//! Interface used by `layer.rs` (keep it stable):
//! - [`expand`] reads a whole gzip file from `input`, writes the concatenated plain content of
//!   all members to `plain`, proves that each member's deflate body is reproduced by the chosen
//!   method, and returns the [`GzipRecipe`]. When no exact method reproduces a member it returns
//!   [`crate::Error::NotReproducible`], and the caller keeps the layer as stored bytes.
//! - [`rebuild`] reads the plain content from `plain` and writes the exact original gzip bytes.

use serde::{Deserialize, Serialize};

/// Everything about a gzip file except its decompressed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzipRecipe {
    /// The members, in file order.
    pub members: Vec<MemberRecipe>,
    /// Bytes after the last member (often none).
    #[serde(default)]
    pub trailing: crate::recipe::Bytes,
}

/// One gzip member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecipe {
    /// The raw header bytes, byte for byte (FEXTRA, FNAME, FCOMMENT, FHCRC included).
    pub header: crate::recipe::Bytes,
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
    /// preflate-rs prediction plus correction data.
    Preflate {
        /// Correction data, as preflate-rs produced it.
        corrections: crate::recipe::Bytes,
    },
}
