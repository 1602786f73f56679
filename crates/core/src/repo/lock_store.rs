//! Reading and writing the repository's `locks/` folder, in restic's format.
//!
//! restic keeps a repository's locks as files `locks/<id>`: the JSON lock record, encrypted
//! with the repository's master key like every other unpacked file (16-byte IV, AES-256-CTR
//! ciphertext, Poly1305-AES tag; in format v2 the plain text is a version byte 2 followed by
//! zstd, or bare JSON), named by the SHA-256 of the stored bytes (restic's
//! `internal/repository/lock.go`, `SaveJSONUnpacked`). rustic_core 0.13 neither writes such
//! files nor lets its backends reach that folder (its `FileType` has no lock kind), so this file
//! does both itself: one small client per kind of location (local folder, REST server, S3),
//! and the sealing with the same AEAD crate rustic_core uses.

use std::path::PathBuf;
use std::time::Duration;

use aes256ctr_poly1305aes::aead::{Aead, AeadInPlace};
use aes256ctr_poly1305aes::{Aes256CtrPoly1305Aes, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Location;

/// Seals and opens lock files with the repository's master key.
#[derive(Clone)]
pub(crate) struct Sealer {
    cipher: Aes256CtrPoly1305Aes,
    /// Repository format 2 and later compress unpacked files (restic does it for locks too).
    compress: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// The master key's parts as rustic_core's `MasterKey` holds them (AES key, Poly1305 `k`
    /// and `r`), and the repository's format version.
    pub(crate) fn new(encrypt: &[u8], k: &[u8], r: &[u8], version: u32) -> Result<Self, String> {
        if encrypt.len() != 32 || k.len() != 16 || r.len() != 16 {
            return Err("the repository's master key has an unexpected length".into());
        }
        let mut key = aes256ctr_poly1305aes::Key::default();
        key[..32].copy_from_slice(encrypt);
        key[32..48].copy_from_slice(k);
        key[48..].copy_from_slice(r);
        Ok(Self {
            cipher: Aes256CtrPoly1305Aes::new(&key),
            compress: version >= 2,
        })
    }

    /// The stored bytes of a lock file holding `json`, and its id (SHA-256 of those bytes).
    pub(crate) fn seal(&self, json: &[u8]) -> Result<(String, Vec<u8>), String> {
        let mut plain = if self.compress {
            let mut p = vec![2u8];
            p.extend(zstd::encode_all(json, 3).map_err(|e| format!("zstd: {e}"))?);
            p
        } else {
            json.to_vec()
        };
        let mut iv = Nonce::default();
        rand::rng().fill_bytes(&mut iv);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&iv, &[], &mut plain)
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = Vec::with_capacity(plain.len() + 32);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&plain);
        out.extend_from_slice(&tag);
        let id = hex::encode(Sha256::digest(&out));
        Ok((id, out))
    }

    /// The JSON inside a stored lock file.
    pub(crate) fn open(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        if data.len() < 32 {
            return Err("too short to be an encrypted file".into());
        }
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&data[..16]), &data[16..])
            .map_err(|_| "MAC check failed (not this repository's key, or damaged)".to_string())?;
        match plain.first() {
            Some(b'{') | Some(b'[') => Ok(plain),
            Some(2) => zstd::decode_all(&plain[1..]).map_err(|e| format!("zstd: {e}")),
            _ => Err("unknown compression version".into()),
        }
    }
}

/// The `locks/` folder of one repository.
pub(crate) enum LockStore {
    /// `<folder>/locks/`.
    Local(PathBuf),
    /// `<url>/locks/` on a rest-server (restic's REST protocol, v2 listings).
    Rest {
        /// Base URL ending in `/`.
        base: String,
        client: reqwest::blocking::Client,
    },
    /// `<prefix>/locks/` in an S3 bucket.
    #[cfg(feature = "s3")]
    S3(opendal::blocking::Operator),
}

impl std::fmt::Debug for LockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(p) => write!(f, "LockStore::Local({})", p.display()),
            Self::Rest { .. } => f.write_str("LockStore::Rest"),
            #[cfg(feature = "s3")]
            Self::S3(_) => f.write_str("LockStore::S3"),
        }
    }
}

/// A lock id is the 64-digit hex SHA-256 of the file; anything else in `locks/` is ignored.
fn is_id(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl LockStore {
    /// The `locks/` folder of the repository of `cfg`, with its S3 key or REST login.
    pub(crate) fn new(cfg: &super::RepoConfig) -> Result<Self, String> {
        let s3_credentials_file = cfg.s3_credentials_file.as_deref();
        match &cfg.location {
            Location::Local(p) => Ok(Self::Local(p.join("locks"))),
            Location::Rest(url) => {
                // The login as rustic_backend's client gets it (URL, file or environment).
                let url =
                    super::rest_auth::url_with_credentials(url, cfg.rest_password_file.as_deref())
                        .map_err(|e| e.to_string())?;
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
                Ok(Self::Rest {
                    base: format!("{}/", url.trim_end_matches('/')),
                    client,
                })
            }
            #[cfg(feature = "s3")]
            location @ Location::S3 { .. } => {
                let target = location
                    .s3_target(s3_credentials_file)
                    .map_err(|e| e.to_string())?;
                Ok(Self::S3(crate::s3::blocking_operator(&target)?))
            }
            #[cfg(not(feature = "s3"))]
            Location::S3 { .. } => {
                let _ = s3_credentials_file;
                Err("this dvault was built without S3 support".into())
            }
        }
    }

    /// The lock files present: id and size.
    pub(crate) fn list(&self) -> Result<Vec<(String, u64)>, String> {
        match self {
            Self::Local(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(e) => e,
                    // restic creates `locks/` at init, but an empty folder may not survive a copy.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(format!("{}: {e}", dir.display())),
                };
                let mut out = Vec::new();
                for e in entries {
                    let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if is_id(&name) {
                        out.push((name, e.metadata().map(|m| m.len()).unwrap_or(0)));
                    }
                }
                Ok(out)
            }
            Self::Rest { base, client } => {
                let resp = client
                    .get(format!("{base}locks/"))
                    .header("Accept", "application/vnd.x.restic.rest.v2")
                    .send()
                    .map_err(|e| format!("listing locks: {}", without_url(e)))?;
                let status = resp.status();
                if status == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Vec::new());
                }
                if !status.is_success() {
                    return Err(format!("listing locks: HTTP {status}"));
                }
                let v: serde_json::Value = resp
                    .json()
                    .map_err(|e| format!("listing locks: {}", without_url(e)))?;
                let mut out = Vec::new();
                for item in v.as_array().into_iter().flatten() {
                    // v2: {"name", "size"}; v1: bare names (size unknown, taken as non-empty).
                    let (name, size) = match item {
                        serde_json::Value::String(s) => (s.clone(), 1),
                        o => (
                            o["name"].as_str().unwrap_or_default().to_string(),
                            o["size"].as_u64().unwrap_or(1),
                        ),
                    };
                    if is_id(&name) {
                        out.push((name, size));
                    }
                }
                Ok(out)
            }
            #[cfg(feature = "s3")]
            Self::S3(op) => {
                let entries = op
                    .list("locks/")
                    .map_err(|e| format!("listing locks: {e}"))?;
                Ok(entries
                    .into_iter()
                    .filter(|e| is_id(e.name()))
                    .map(|e| (e.name().to_string(), e.metadata().content_length()))
                    .collect())
            }
        }
    }

    /// The stored bytes of lock `id`; `Ok(None)` if it is gone (removed meanwhile).
    pub(crate) fn read(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Self::Local(dir) => match std::fs::read(dir.join(id)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", dir.join(id).display())),
            },
            Self::Rest { base, client } => {
                let resp = client
                    .get(format!("{base}locks/{id}"))
                    .send()
                    .map_err(|e| format!("reading lock {id}: {}", without_url(e)))?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !resp.status().is_success() {
                    return Err(format!("reading lock {id}: HTTP {}", resp.status()));
                }
                resp.bytes()
                    .map(|b| Some(b.to_vec()))
                    .map_err(|e| format!("reading lock {id}: {}", without_url(e)))
            }
            #[cfg(feature = "s3")]
            Self::S3(op) => match op.read(&format!("locks/{id}")) {
                Ok(b) => Ok(Some(b.to_vec())),
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("reading lock {id}: {e}")),
            },
        }
    }

    /// Stores lock `id`.
    pub(crate) fn write(&self, id: &str, data: &[u8]) -> Result<(), String> {
        match self {
            Self::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                // Atomic, so no reader sees half a file (the error names the file).
                crate::atomic_file::write(&dir.join(id), data).map_err(|e| e.to_string())?;
                Ok(())
            }
            Self::Rest { base, client } => {
                let resp = client
                    .post(format!("{base}locks/{id}"))
                    .body(data.to_vec())
                    .send()
                    .map_err(|e| format!("writing lock {id}: {}", without_url(e)))?;
                if !resp.status().is_success() {
                    return Err(format!("writing lock {id}: HTTP {}", resp.status()));
                }
                Ok(())
            }
            #[cfg(feature = "s3")]
            Self::S3(op) => op
                .write(&format!("locks/{id}"), data.to_vec())
                .map(|_| ())
                .map_err(|e| format!("writing lock {id}: {e}")),
        }
    }

    /// Removes lock `id` (a lock already gone counts as removed).
    pub(crate) fn remove(&self, id: &str) -> Result<(), String> {
        match self {
            Self::Local(dir) => match std::fs::remove_file(dir.join(id)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(format!("{}: {e}", dir.join(id).display()))
                }
                _ => Ok(()),
            },
            Self::Rest { base, client } => {
                let resp = client
                    .delete(format!("{base}locks/{id}"))
                    .send()
                    .map_err(|e| format!("removing lock {id}: {}", without_url(e)))?;
                let status = resp.status();
                if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
                    Ok(())
                } else {
                    Err(format!("removing lock {id}: HTTP {status}"))
                }
            }
            #[cfg(feature = "s3")]
            Self::S3(op) => op
                .delete(&format!("locks/{id}"))
                .map_err(|e| format!("removing lock {id}: {e}")),
        }
    }
}

/// A reqwest error without its URL, which may carry the REST server's user and password.
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(version: u32) -> Sealer {
        Sealer::new(&[7; 32], &[1; 16], &[2; 16], version).unwrap()
    }

    #[test]
    fn sealed_lock_opens_again_and_is_named_by_its_hash() {
        for v in [1, 2] {
            let s = sealer(v);
            let (id, data) = s.seal(br#"{"exclusive":true}"#).unwrap();
            assert_eq!(id, hex::encode(Sha256::digest(&data)));
            assert_eq!(s.open(&data).unwrap(), br#"{"exclusive":true}"#);
        }
    }

    #[test]
    fn a_flipped_byte_is_refused() {
        let s = sealer(2);
        let (_, mut data) = s.seal(b"{}").unwrap();
        data[20] ^= 1;
        assert!(s.open(&data).unwrap_err().contains("MAC"));
    }
}
