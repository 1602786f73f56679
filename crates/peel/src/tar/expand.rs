//! Taking a tar archive apart, block by block, in named steps:
//! [`expand`] reads header blocks until the end-of-archive zeros; an extension header (GNU long
//! name or link, PAX) is collected by [`Archive::extension`] until the member it applies to;
//! [`Archive::member`] checks that member ([`Archive::resolve`]), spools its header blocks and
//! hands its data to the caller ([`Archive::file_data`]); [`Archive::end`] keeps the zeros and
//! whatever follows them; [`Archive::finish`] writes the headers entry and the layer's report.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use serde::Serialize;

use super::header::{self, Header, Kind, BLOCK};
use super::{links, padding, Nest, TarRecipe};
use crate::error::{Error, Result};
use crate::names;
use crate::place::{Place, Step};
use crate::recipe::{Bytes, Node, TarMember};
use crate::stream::{read_full, CountRead};

/// Largest PAX header data we accept (real ones are a few hundred bytes; extended attributes
/// can take some KB). A GNU long name or link is at most `PATH_MAX` bytes with its NUL.
const MAX_EXTENSION: u64 = 1 << 20;

/// Largest total of extension headers (with their data) before one member: a chain of them is
/// held in memory until its member comes.
const MAX_PENDING: usize = 4 << 20;

/// Expands a tar archive read from `input` (its first block already known to be a header).
pub(crate) fn expand(
    input: &mut (dyn Read + Send),
    nest: &mut dyn Nest,
    place: &Place,
) -> Result<Node> {
    let index = nest.next_tar_index();
    let layer = nest.begin_layer(&place.location, "tar");
    let mut ar = Archive::new(place, index)?;
    loop {
        let mut block = [0u8; BLOCK];
        let n = read_full(input, &mut block).map_err(|e| ar.io_err("reading", e))?;
        if n < BLOCK || block.iter().all(|&b| b == 0) {
            ar.end(input, &block[..n], nest)?;
            break;
        }
        if !header::checksum_ok(&block) {
            return Err(ar.fmt_err(format!(
                "offset {}: expected a tar header block, found one whose checksum does \
                 not match",
                ar.offset
            )));
        }
        let h = Header::new(&block);
        let hsize = h
            .size()
            .map_err(|why| ar.fmt_err(format!("offset {}: {why}", ar.offset)))?;
        match h.kind() {
            kind @ (Kind::LongName | Kind::LongLink | Kind::Pax | Kind::PaxGlobal) => {
                ar.extension(input, &block, kind, hsize)?
            }
            kind => ar.member(input, &block, kind, hsize, nest)?,
        }
    }
    ar.finish(nest, layer)
}

/// Extension headers seen before the member they apply to.
#[derive(Default)]
struct Pending {
    raw: Vec<u8>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: header::PaxFields,
}

/// One archive while its blocks go by.
struct Archive<'p> {
    place: &'p Place,
    /// Number of this archive's internal entries (`.peel/tar/N.*`).
    index: u32,
    /// Every header block so far, in order: becomes the headers entry.
    spool: BufWriter<File>,
    members: Vec<TarMember>,
    pending: Pending,
    /// PAX global records (`g`), in force until the end of the archive.
    global: header::PaxFields,
    symlinks: links::Links,
    hardlinks: links::Links,
    /// Bytes of the archive read so far.
    offset: u64,
    /// Member data bytes so far (the layer's plain size in the report).
    data_bytes: u64,
    end_zeros: u64,
    after: Option<Box<Node>>,
}

impl<'p> Archive<'p> {
    fn new(place: &'p Place, index: u32) -> Result<Self> {
        let spool = tempfile::tempfile().map_err(|e| Error::Io {
            context: format!("{}: creating a temporary file", place.location),
            source: e,
        })?;
        Ok(Archive {
            place,
            index,
            spool: BufWriter::new(spool),
            members: Vec::new(),
            pending: Pending::default(),
            global: header::PaxFields::default(),
            symlinks: links::Links::default(),
            hardlinks: links::Links::default(),
            offset: 0,
            data_bytes: 0,
            end_zeros: 0,
            after: None,
        })
    }

    fn fmt_err(&self, problem: String) -> Error {
        Error::Format {
            location: self.place.location.clone(),
            problem,
        }
    }

    fn io_err(&self, what: &str, e: io::Error) -> Error {
        Error::Io {
            context: format!("{}: {what}", self.place.location),
            source: e,
        }
    }

    /// Reads a GNU long name/link or PAX header's data and keeps it for the next member (or,
    /// for a PAX global header, for the rest of the archive).
    fn extension(
        &mut self,
        input: &mut (dyn Read + Send),
        block: &[u8; BLOCK],
        kind: Kind,
        hsize: u64,
    ) -> Result<()> {
        let offset = self.offset;
        // Refused before anything is read or allocated for it.
        let long = matches!(kind, Kind::LongName | Kind::LongLink);
        if long && hsize > names::MAX_PATH as u64 + 1 {
            return Err(self.fmt_err(format!(
                "offset {offset}: GNU long {} of {hsize} bytes is longer than PATH_MAX \
                 ({} bytes with its NUL)",
                if kind == Kind::LongName {
                    "name"
                } else {
                    "link name"
                },
                names::MAX_PATH + 1
            )));
        }
        if hsize > MAX_EXTENSION {
            return Err(self.fmt_err(format!(
                "offset {offset}: extension header of {hsize} bytes (at most \
                 {MAX_EXTENSION} expected)"
            )));
        }
        let padded = (hsize + padding(hsize)) as usize;
        if self.pending.raw.len() + BLOCK + padded > MAX_PENDING {
            return Err(self.fmt_err(format!(
                "offset {offset}: extension headers of more than {MAX_PENDING} bytes \
                 before one member"
            )));
        }
        let mut data = vec![0u8; padded];
        let got = read_full(input, &mut data).map_err(|e| self.io_err("reading", e))?;
        if got != padded {
            return Err(self.fmt_err(format!(
                "offset {offset}: input ends inside an extension header ({got} of \
                 {padded} bytes)"
            )));
        }
        let body = &data[..hsize as usize];
        let until_nul = |b: &[u8]| b.split(|&c| c == 0).next().unwrap_or(b).to_vec();
        let pax = |body: &[u8]| -> Result<header::PaxFields> {
            let f = header::pax_fields(body)
                .map_err(|why| self.fmt_err(format!("offset {offset}: {why}")))?;
            long_pax_value(&f).map_err(|why| self.fmt_err(format!("offset {offset}: {why}")))?;
            Ok(f)
        };
        match kind {
            Kind::LongName => self.pending.long_name = Some(until_nul(body)),
            Kind::LongLink => self.pending.long_link = Some(until_nul(body)),
            Kind::Pax => {
                let f = pax(body)?;
                let p = &mut self.pending.pax;
                p.path = f.path.or(p.path.take());
                p.linkpath = f.linkpath.or(p.linkpath.take());
                p.size = f.size.or(p.size);
                p.sparse |= f.sparse;
            }
            _ => {
                let f = pax(body)?;
                let g = &mut self.global;
                g.path = f.path.or(g.path.take());
                g.size = f.size.or(g.size);
                g.sparse |= f.sparse;
            }
        }
        self.pending.raw.extend_from_slice(block);
        self.pending.raw.extend_from_slice(&data);
        self.offset += BLOCK as u64 + padded as u64;
        Ok(())
    }

    /// Takes one member: checks it, spools its header blocks, expands its data.
    fn member(
        &mut self,
        input: &mut (dyn Read + Send),
        block: &[u8; BLOCK],
        kind: Kind,
        hsize: u64,
        nest: &mut dyn Nest,
    ) -> Result<()> {
        let raw_path = self
            .pending
            .pax
            .path
            .take()
            .or(self.pending.long_name.take())
            .or(self.global.path.clone())
            .unwrap_or_else(|| Header::new(block).path_bytes());
        let shown = names::shorten(&String::from_utf8_lossy(&raw_path));
        let at = format!(
            "{}: entry {shown:?} at offset {}",
            self.place.location, self.offset
        );
        let entry_err = |problem: String| Error::Format {
            location: at.clone(),
            problem,
        };
        let (name, size) = self.resolve(&raw_path, kind, hsize).map_err(entry_err)?;
        let blocks = self.pending.raw.len() / BLOCK + 1;
        let pending = std::mem::take(&mut self.pending);
        self.spool
            .write_all(&pending.raw)
            .and_then(|()| self.spool.write_all(block))
            .map_err(|e| self.io_err("writing a temporary file", e))?;
        let data_offset = self.offset + BLOCK as u64;
        let mut member = TarMember {
            blocks: u32::try_from(blocks).map_err(|_| entry_err("too many headers".into()))?,
            size,
            data: None,
            pad: None,
        };
        self.offset = data_offset;
        match kind {
            Kind::Symlink => self.symlinks.insert(&name),
            Kind::HardLink => self.hardlinks.insert(&name),
            Kind::File => self.file_data(input, &name, &mut member, nest, &entry_err)?,
            _ => {}
        }
        self.members.push(member);
        Ok(())
    }

    /// The member's normalized name and data size, or why it is refused.
    fn resolve(&self, raw_path: &[u8], kind: Kind, hsize: u64) -> Result<(String, u64), String> {
        match kind {
            Kind::Sparse => return Err("GNU sparse files (type 'S') are not supported".into()),
            Kind::Device => {
                return Err("device nodes and FIFOs are not supported in backups".into())
            }
            Kind::Other(t) => return Err(format!("unsupported member type {:?}", char::from(t))),
            _ => {}
        }
        if self.pending.pax.sparse || self.global.sparse {
            return Err("GNU sparse files (PAX GNU.sparse records) are not supported".into());
        }
        let size = self.pending.pax.size.or(self.global.size).unwrap_or(hsize);
        let name = match names::normalize_member(raw_path) {
            // `./` itself, as GNU tar writes it for `-C dir .`.
            Err("empty path") if kind == Kind::Dir => String::new(),
            other => other.map_err(str::to_string)?,
        };
        if let Some(link) = self.symlinks.prefix_of(&name) {
            return Err(format!(
                "would be written through the symbolic link {:?}",
                names::shorten(link)
            ));
        }
        // A hard link to a directory does not exist in a genuine archive; tar -x would write
        // such a member wherever the link's target is.
        if let Some(link) = self.hardlinks.prefix_of(&name) {
            return Err(format!(
                "would be written through the hard link {:?}",
                names::shorten(link)
            ));
        }
        if kind != Kind::File && size != 0 {
            return Err(format!(
                "a {kind:?} member with {size} data bytes is not supported"
            ));
        }
        Ok((name, size))
    }

    /// Hands a regular file's data to the caller (as a plain entry or a nested layer), then
    /// reads its padding. `self.offset` is where the data starts.
    fn file_data(
        &mut self,
        input: &mut (dyn Read + Send),
        name: &str,
        member: &mut TarMember,
        nest: &mut dyn Nest,
        entry_err: &dyn Fn(String) -> Error,
    ) -> Result<()> {
        let (place, data_offset, size) = (self.place, self.offset, member.size);
        if let Some(limit) = place.limit {
            let remaining = limit.saturating_sub(data_offset);
            if size > remaining {
                return Err(entry_err(format!(
                    "size field says {size} bytes but only {remaining} bytes of input \
                     remain"
                )));
            }
        }
        let mut steps = place.steps.clone();
        steps.push(Step::Slice {
            offset: data_offset,
            size,
        });
        let wanted = names::join(&place.dir, name);
        let child = Place {
            location: format!("{}>{}", place.location, names::shorten(name)),
            leaf: wanted.clone(),
            dir: wanted,
            steps,
            depth: place.depth + 1,
            limit: Some(size),
        };
        let mut data = CountRead {
            inner: (&mut *input).take(size),
            count: 0,
        };
        let node = nest.expand_member(&mut data, child)?;
        if data.count != size {
            return Err(entry_err(format!(
                "input ends after {} of {size} data bytes (truncated, or a bad size \
                 field)",
                data.count
            )));
        }
        let pad = padding(size) as usize;
        let mut padbuf = vec![0u8; pad];
        let got = read_full(input, &mut padbuf).map_err(|e| self.io_err("reading", e))?;
        if got != pad {
            return Err(entry_err(format!(
                "input ends inside the padding after the data ({got} of {pad} bytes)"
            )));
        }
        if padbuf.iter().any(|&b| b != 0) {
            member.pad = Some(Bytes(padbuf));
        }
        member.data = Some(node);
        self.data_bytes += size;
        self.offset = data_offset + size + pad as u64;
        Ok(())
    }

    /// The end of the archive: a run of zero bytes (end-of-archive blocks and record padding),
    /// then whatever follows, kept as an internal entry. `first` is the block that ended it.
    fn end(
        &mut self,
        input: &mut (dyn Read + Send),
        first: &[u8],
        nest: &mut dyn Nest,
    ) -> Result<()> {
        if !self.pending.raw.is_empty() {
            return Err(self.fmt_err(format!(
                "offset {}: extension header is not followed by a member",
                self.offset
            )));
        }
        let loc = &self.place.location;
        let mut zeros: u64 = 0;
        let mut buf = first.to_vec();
        let after = loop {
            if let Some(p) = buf.iter().position(|&b| b != 0) {
                zeros += p as u64;
                let path = format!("{}/tar/{}.after", names::RESERVED, self.index);
                let mut rest = io::Cursor::new(buf[p..].to_vec()).chain(&mut *input);
                let size = nest.emit_internal(&path, &mut rest)?;
                tracing::debug!("{loc}: {size} bytes after the end-of-archive zeros");
                break Some(Box::new(Node::Entry { path, size }));
            }
            zeros += buf.len() as u64;
            buf.resize(64 * 1024, 0);
            let n = read_full(input, &mut buf).map_err(|e| self.io_err("reading", e))?;
            if n == 0 {
                break None;
            }
            buf.truncate(n);
        };
        self.offset += zeros + after.as_deref().map_or(0, node_size);
        self.end_zeros = zeros;
        self.after = after;
        Ok(())
    }

    /// Hands the spooled header blocks to the sink as the headers entry, fills in the layer's
    /// report, and returns the recipe.
    fn finish(self, nest: &mut dyn Nest, layer: usize) -> Result<Node> {
        let place = self.place;
        let io_err = |what: &str, e: io::Error| Error::Io {
            context: format!("{}: {what}", place.location),
            source: e,
        };
        let mut spool = self
            .spool
            .into_inner()
            .map_err(|e| io_err("writing a temporary file", e.into_error()))?;
        spool
            .rewind()
            .map_err(|e| io_err("reading a temporary file", e))?;
        let headers = format!("{}/tar/{}.headers", names::RESERVED, self.index);
        let headers_size = nest.emit_internal(&headers, &mut BufReader::new(spool))?;
        let recipe = TarRecipe {
            headers,
            headers_size,
            members: self.members,
            end_zeros: self.end_zeros,
            after: self.after,
        };
        let own_json = own_json_bytes(&recipe);
        let report = nest.layer_mut(layer);
        report.compressed_size = self.offset;
        report.plain_size = self.data_bytes;
        let after_bytes = recipe.after.as_deref().map_or(0, node_size);
        report.set_recipe_bytes(own_json + headers_size + after_bytes);
        Ok(Node::Tar(recipe))
    }
}

/// JSON bytes of a tar recipe without its nested layers (they report their own).
fn own_json_bytes(recipe: &TarRecipe) -> u64 {
    let nested: u64 = recipe
        .members
        .iter()
        .filter_map(|m| m.data.as_ref())
        .filter(|n| matches!(n, Node::Gzip { .. } | Node::Tar(_)))
        .map(json_len)
        .sum();
    json_len(recipe).saturating_sub(nested)
}

fn json_len<T: Serialize>(value: &T) -> u64 {
    serde_json::to_vec(value).map_or(0, |v| v.len() as u64)
}

fn node_size(node: &Node) -> u64 {
    match node {
        Node::Entry { size, .. } | Node::Stored { size, .. } => *size,
        _ => 0,
    }
}

/// Refuses a PAX `path` or `linkpath` longer than `PATH_MAX` (its header is at most
/// [`MAX_EXTENSION`] bytes, so nothing grew for it).
fn long_pax_value(f: &header::PaxFields) -> Result<(), String> {
    for (key, value) in [("path", &f.path), ("linkpath", &f.linkpath)] {
        if let Some(v) = value.as_ref().filter(|v| v.len() > names::MAX_PATH) {
            return Err(format!(
                "PAX {key} record of {} bytes is longer than PATH_MAX ({} bytes at most)",
                v.len(),
                names::MAX_PATH
            ));
        }
    }
    Ok(())
}
