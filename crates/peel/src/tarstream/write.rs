//! Writing the tar stream: pass 1 (the proving expansion, header entries spooled, other entries
//! measured), then pass 2 ([`super::replay`]) through a [`TarWriter`].

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::replay::Replay;
use super::{header_entries, BLOCK, CHUNK};
use crate::stream::{drain, HashRead};
use crate::tree::RECIPE_PATH;
use crate::{expand_path_as, names, EntrySink, Error, ExpandOptions, Recipe, Report, Result};

/// Expands the file `input` and writes the tree as one tar stream to `out` (see the module
/// docs). `name` is the original file name (`None`: unknown). Returns the recipe and report of
/// the expansion. On error the stream is left without its end blocks.
pub fn expand_to_tar(
    input: &Path,
    name: Option<&str>,
    out: &mut dyn Write,
    opts: &ExpandOptions,
) -> Result<(Recipe, Report)> {
    let mut pass1 = PassOne::default();
    let (recipe, report) = expand_path_as(input, name, &mut pass1, opts)?;

    let mut w = TarWriter::new(out);
    let mut json = serde_json::to_vec(&recipe).map_err(|e| Error::Recipe(e.to_string()))?;
    json.push(b'\n');
    w.member(RECIPE_PATH, json.len() as u64, &mut &json[..])?;
    for path in header_entries(&recipe) {
        let file = pass1.internal.get_mut(&path).ok_or_else(|| {
            Error::Recipe(format!(
                "entry {path} is in the recipe but was never written"
            ))
        })?;
        let size = file.stream_position().map_err(|e| Error::Io {
            context: format!("reading the spooled entry {path}"),
            source: e,
        })?;
        file.rewind().map_err(|e| Error::Io {
            context: format!("reading the spooled entry {path}"),
            source: e,
        })?;
        w.member(&path, size, &mut BufReader::new(&mut *file))?;
    }

    let shown = name.unwrap_or(crate::UNNAMED);
    let file = crate::input::open_file(input).map_err(|e| Error::Io {
        context: format!("opening {} again", input.display()),
        source: e,
    })?;
    let mut hashed = HashRead::new(BufReader::with_capacity(256 * 1024, file));
    let mut replay = Replay {
        w: &mut w,
        digests: &pass1.digests,
        location: shown,
    };
    replay.node(&recipe.root, &mut hashed)?;
    drain(&mut hashed).map_err(|e| Error::Io {
        context: format!("{shown}: reading"),
        source: e,
    })?;
    let again = hashed.digest();
    if again != recipe.original {
        return Err(Error::Format {
            location: shown.to_string(),
            problem: format!(
                "the input changed while it was read twice: first {} bytes, sha256 {}; then \
                 {} bytes, sha256 {}",
                recipe.original.size, recipe.original.sha256, again.size, again.sha256
            ),
        });
    }
    w.finish()?;
    Ok((recipe, report))
}

/// Pass 1's sink: internal entries spooled, the others only measured.
#[derive(Default)]
struct PassOne {
    internal: HashMap<String, File>,
    digests: HashMap<String, (u64, [u8; 32])>,
}

impl EntrySink for PassOne {
    fn entry(&mut self, path: &str, data: &mut dyn Read) -> io::Result<u64> {
        if path.starts_with(&format!("{}/", names::RESERVED)) {
            let mut w = BufWriter::new(tempfile::tempfile()?);
            let n = io::copy(data, &mut w)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            self.internal.insert(path.to_string(), file);
            return Ok(n);
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0u64;
        loop {
            let got = data.read(&mut buf)?;
            if got == 0 {
                break;
            }
            hasher.update(&buf[..got]);
            n += got as u64;
        }
        self.digests
            .insert(path.to_string(), (n, hasher.finalize().into()));
        Ok(n)
    }

    fn discard(&mut self, path: &str) -> io::Result<()> {
        self.internal.remove(path);
        self.digests.remove(path);
        Ok(())
    }
}

/// Writes tar members with fixed metadata; hand-written over `tar::Header` because the tar
/// crate's `Builder` writes the end blocks when dropped, even after an error, and a failed
/// expansion must not look like a complete stream.
pub(super) struct TarWriter<'w> {
    out: &'w mut dyn Write,
}

impl<'w> TarWriter<'w> {
    pub(super) fn new(out: &'w mut dyn Write) -> Self {
        TarWriter { out }
    }

    fn write_err(e: io::Error) -> Error {
        Error::Io {
            context: "writing the tar stream".to_string(),
            source: e,
        }
    }

    fn header(&mut self, name: &[u8], size: u64, kind: tar::EntryType) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        let field = &mut h.as_old_mut().name;
        let n = name.len().min(field.len());
        field[..n].copy_from_slice(&name[..n]);
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(Self::write_err)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.out
            .write_all(&[0u8; BLOCK][..pad as usize])
            .map_err(Self::write_err)
    }

    /// One regular file member of exactly `size` bytes read from `data`.
    pub(super) fn member(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let name = path.as_bytes();
        if name.len() > 100 {
            // GNU long name: the path (NUL-terminated) as the data of a `L` member.
            let len = name.len() as u64 + 1;
            self.header(b"././@LongLink", len, tar::EntryType::GNULongName)?;
            self.out
                .write_all(name)
                .and_then(|()| self.out.write_all(&[0]))
                .map_err(Self::write_err)?;
            self.pad(len)?;
        }
        self.header(name, size, tar::EntryType::Regular)?;
        let n = io::copy(&mut data.take(size), self.out).map_err(|e| Error::Io {
            context: format!("writing entry {path} to the tar stream"),
            source: e,
        })?;
        if n != size {
            return Err(Error::Format {
                location: format!("entry {path}"),
                problem: format!("{n} bytes, the recipe says {size}"),
            });
        }
        self.pad(size)
    }

    pub(super) fn finish(&mut self) -> Result<()> {
        self.out
            .write_all(&[0u8; 2 * BLOCK])
            .and_then(|()| self.out.flush())
            .map_err(Self::write_err)
    }
}
