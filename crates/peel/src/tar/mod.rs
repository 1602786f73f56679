//! The tar layer: header blocks kept byte for byte, data as entries, padding and the end kept
//! exactly.
//!
//! All header material of an archive (each member's header block, preceded by its GNU long
//! name/link blocks and PAX headers with their data) is written, in order, to one internal entry
//! `.peel/tar/N.headers`. Header blocks of a big uploads tree are many but alike from day to
//! day, so as an entry they deduplicate, and the JSON recipe stays small: per member only the
//! number of header blocks, the data size, where the data went, and the padding when it is not
//! zeros.

pub mod header;
mod links;

use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use serde::{Deserialize, Serialize};

use crate::layer::{Expander, Place, Step};
use crate::names;
use crate::recipe::{Bytes, Node};
use crate::stream::{read_full, CountRead, CountWrite};
use crate::{EntrySource, Error, Result};
use header::{Header, Kind, BLOCK};

/// Largest PAX header data we accept (real ones are a few hundred bytes; extended attributes
/// can take some KB). A GNU long name or link is at most `PATH_MAX` bytes with its NUL.
const MAX_EXTENSION: u64 = 1 << 20;

/// Largest total of extension headers (with their data) before one member: a chain of them is
/// held in memory until its member comes.
const MAX_PENDING: usize = 4 << 20;

/// Everything about a tar archive except its members' data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarRecipe {
    /// Internal entry holding all header blocks (extension headers and their data included).
    pub headers: String,
    /// Its length in bytes (a multiple of 512).
    pub headers_size: u64,
    /// The members, in archive order.
    pub members: Vec<Member>,
    /// Zero bytes after the last member: the end-of-archive blocks and record padding.
    pub end_zeros: u64,
    /// Whatever follows those zeros, kept as an internal entry (usually absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Box<Node>>,
}

/// One member of a tar archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
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

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Extension headers seen before the member they apply to.
#[derive(Default)]
struct Pending {
    raw: Vec<u8>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: header::PaxFields,
}

/// Expands a tar archive read from `input` (its first block already known to be a header).
pub(crate) fn expand(
    input: &mut (dyn Read + Send),
    exp: &mut Expander<'_>,
    place: &Place,
) -> Result<Node> {
    let index = exp.next_tar_index();
    let layer = exp.begin_layer(&place.location, "tar");
    let loc = &place.location;
    let fmt_err = |problem: String| Error::Format {
        location: loc.clone(),
        problem,
    };
    let io_err = |what: &str, e: io::Error| Error::Io {
        context: format!("{loc}: {what}"),
        source: e,
    };

    let spool = tempfile::tempfile().map_err(|e| io_err("creating a temporary file", e))?;
    let mut spool = BufWriter::new(spool);
    let mut members = Vec::new();
    let mut pending = Pending::default();
    let mut global = header::PaxFields::default();
    let mut symlinks = links::Links::default();
    let mut hardlinks = links::Links::default();
    let mut offset: u64 = 0;
    let mut data_bytes: u64 = 0;
    let (end_zeros, after);

    loop {
        let mut block = [0u8; BLOCK];
        let n = read_full(input, &mut block).map_err(|e| io_err("reading", e))?;
        if n < BLOCK || block.iter().all(|&b| b == 0) {
            if !pending.raw.is_empty() {
                return Err(fmt_err(format!(
                    "offset {offset}: extension header is not followed by a member"
                )));
            }
            let (z, a) = tail(input, &block[..n], exp, index, loc)?;
            offset += z + a.as_deref().map_or(0, node_size);
            end_zeros = z;
            after = a;
            break;
        }
        if !header::checksum_ok(&block) {
            return Err(fmt_err(format!(
                "offset {offset}: expected a tar header block, found one whose checksum does \
                 not match"
            )));
        }
        let h = Header::new(&block);
        let kind = h.kind();
        let hsize = h
            .size()
            .map_err(|why| fmt_err(format!("offset {offset}: {why}")))?;
        if matches!(
            kind,
            Kind::LongName | Kind::LongLink | Kind::Pax | Kind::PaxGlobal
        ) {
            // Refused before anything is read or allocated for it.
            let long = matches!(kind, Kind::LongName | Kind::LongLink);
            if long && hsize > names::MAX_PATH as u64 + 1 {
                return Err(fmt_err(format!(
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
                return Err(fmt_err(format!(
                    "offset {offset}: extension header of {hsize} bytes (at most \
                     {MAX_EXTENSION} expected)"
                )));
            }
            let padded = (hsize + padding(hsize)) as usize;
            if pending.raw.len() + BLOCK + padded > MAX_PENDING {
                return Err(fmt_err(format!(
                    "offset {offset}: extension headers of more than {MAX_PENDING} bytes \
                     before one member"
                )));
            }
            let mut data = vec![0u8; padded];
            let got = read_full(input, &mut data).map_err(|e| io_err("reading", e))?;
            if got != padded {
                return Err(fmt_err(format!(
                    "offset {offset}: input ends inside an extension header ({got} of \
                     {padded} bytes)"
                )));
            }
            let body = &data[..hsize as usize];
            let until_nul = |b: &[u8]| b.split(|&c| c == 0).next().unwrap_or(b).to_vec();
            match kind {
                Kind::LongName => pending.long_name = Some(until_nul(body)),
                Kind::LongLink => pending.long_link = Some(until_nul(body)),
                Kind::Pax => {
                    let f = header::pax_fields(body)
                        .map_err(|why| fmt_err(format!("offset {offset}: {why}")))?;
                    long_pax_value(&f).map_err(|why| fmt_err(format!("offset {offset}: {why}")))?;
                    pending.pax.path = f.path.or(pending.pax.path.take());
                    pending.pax.linkpath = f.linkpath.or(pending.pax.linkpath.take());
                    pending.pax.size = f.size.or(pending.pax.size);
                    pending.pax.sparse |= f.sparse;
                }
                _ => {
                    let f = header::pax_fields(body)
                        .map_err(|why| fmt_err(format!("offset {offset}: {why}")))?;
                    long_pax_value(&f).map_err(|why| fmt_err(format!("offset {offset}: {why}")))?;
                    global.path = f.path.or(global.path.take());
                    global.size = f.size.or(global.size);
                    global.sparse |= f.sparse;
                }
            }
            pending.raw.extend_from_slice(&block);
            pending.raw.extend_from_slice(&data);
            offset += BLOCK as u64 + padded as u64;
            continue;
        }

        let raw_path = pending
            .pax
            .path
            .take()
            .or(pending.long_name.take())
            .or(global.path.clone())
            .unwrap_or_else(|| h.path_bytes());
        let shown = names::shorten(&String::from_utf8_lossy(&raw_path));
        let entry_err = |problem: String| Error::Format {
            location: format!("{loc}: entry {shown:?} at offset {offset}"),
            problem,
        };
        match kind {
            Kind::Sparse => {
                return Err(entry_err(
                    "GNU sparse files (type 'S') are not supported".into(),
                ))
            }
            Kind::Device => {
                return Err(entry_err(
                    "device nodes and FIFOs are not supported in backups".into(),
                ))
            }
            Kind::Other(t) => {
                return Err(entry_err(format!(
                    "unsupported member type {:?}",
                    char::from(t)
                )))
            }
            _ => {}
        }
        if pending.pax.sparse || global.sparse {
            return Err(entry_err(
                "GNU sparse files (PAX GNU.sparse records) are not supported".into(),
            ));
        }
        let size = pending.pax.size.or(global.size).unwrap_or(hsize);
        let name = match names::normalize_member(&raw_path) {
            // `./` itself, as GNU tar writes it for `-C dir .`.
            Err("empty path") if kind == Kind::Dir => String::new(),
            other => other.map_err(|why| entry_err(why.into()))?,
        };
        if let Some(link) = symlinks.prefix_of(&name) {
            return Err(entry_err(format!(
                "would be written through the symbolic link {:?}",
                names::shorten(link)
            )));
        }
        // A hard link to a directory does not exist in a genuine archive; tar -x would write
        // such a member wherever the link's target is.
        if let Some(link) = hardlinks.prefix_of(&name) {
            return Err(entry_err(format!(
                "would be written through the hard link {:?}",
                names::shorten(link)
            )));
        }
        if kind != Kind::File && size != 0 {
            return Err(entry_err(format!(
                "a {kind:?} member with {size} data bytes is not supported"
            )));
        }
        let blocks = pending.raw.len() / BLOCK + 1;
        spool
            .write_all(&pending.raw)
            .and_then(|()| spool.write_all(&block))
            .map_err(|e| io_err("writing a temporary file", e))?;
        pending = Pending::default();
        let data_offset = offset + BLOCK as u64;

        let mut member = Member {
            blocks: u32::try_from(blocks).map_err(|_| entry_err("too many headers".into()))?,
            size,
            data: None,
            pad: None,
        };
        match kind {
            Kind::Symlink => {
                symlinks.insert(&name);
                offset = data_offset;
            }
            Kind::HardLink => {
                hardlinks.insert(&name);
                offset = data_offset;
            }
            Kind::File => {
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
                let wanted = names::join(&place.dir, &name);
                let child = Place {
                    location: format!("{loc}>{}", names::shorten(&name)),
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
                let node = exp.expand_member(&mut data, child)?;
                if data.count != size {
                    return Err(entry_err(format!(
                        "input ends after {} of {size} data bytes (truncated, or a bad size \
                         field)",
                        data.count
                    )));
                }
                let pad = padding(size) as usize;
                let mut padbuf = vec![0u8; pad];
                let got = read_full(input, &mut padbuf).map_err(|e| io_err("reading", e))?;
                if got != pad {
                    return Err(entry_err(format!(
                        "input ends inside the padding after the data ({got} of {pad} bytes)"
                    )));
                }
                if padbuf.iter().any(|&b| b != 0) {
                    member.pad = Some(Bytes(padbuf));
                }
                member.data = Some(node);
                data_bytes += size;
                offset = data_offset + size + pad as u64;
            }
            _ => offset = data_offset,
        }
        members.push(member);
    }

    let mut spool = spool
        .into_inner()
        .map_err(|e| io_err("writing a temporary file", e.into_error()))?;
    spool
        .rewind()
        .map_err(|e| io_err("reading a temporary file", e))?;
    let headers = format!("{}/tar/{index}.headers", names::RESERVED);
    let headers_size = exp.emit_internal(&headers, &mut BufReader::new(spool))?;
    let recipe = TarRecipe {
        headers,
        headers_size,
        members,
        end_zeros,
        after,
    };
    let own_json = own_json_bytes(&recipe);
    let report = exp.layer_mut(layer);
    report.compressed_size = offset;
    report.plain_size = data_bytes;
    let after_bytes = recipe.after.as_deref().map_or(0, node_size);
    report.set_recipe_bytes(own_json + headers_size + after_bytes);
    Ok(Node::Tar(recipe))
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

/// Reads the end of an archive: a run of zero bytes (end-of-archive blocks and record padding),
/// then whatever follows, kept as an internal entry.
fn tail(
    input: &mut (dyn Read + Send),
    first: &[u8],
    exp: &mut Expander<'_>,
    index: u32,
    loc: &str,
) -> Result<(u64, Option<Box<Node>>)> {
    let mut zeros: u64 = 0;
    let mut buf = first.to_vec();
    loop {
        if let Some(p) = buf.iter().position(|&b| b != 0) {
            zeros += p as u64;
            let path = format!("{}/tar/{index}.after", names::RESERVED);
            let mut rest = io::Cursor::new(buf[p..].to_vec()).chain(&mut *input);
            let size = exp.emit_internal(&path, &mut rest)?;
            tracing::debug!("{loc}: {size} bytes after the end-of-archive zeros");
            return Ok((zeros, Some(Box::new(Node::Entry { path, size }))));
        }
        zeros += buf.len() as u64;
        buf.resize(64 * 1024, 0);
        let n = read_full(input, &mut buf).map_err(|e| Error::Io {
            context: format!("{loc}: reading"),
            source: e,
        })?;
        if n == 0 {
            return Ok((zeros, None));
        }
        buf.truncate(n);
    }
}

/// Writes the archive described by `recipe`, taking member data from `source`.
pub(crate) fn rebuild(
    recipe: &TarRecipe,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
    location: &str,
) -> Result<()> {
    let open = source.open(&recipe.headers).map_err(|e| Error::Io {
        context: format!("opening entry {}", recipe.headers),
        source: e,
    })?;
    let mut headers = BufReader::new(open);
    let write_err = |e| Error::Io {
        context: "writing the rebuilt tar".to_string(),
        source: e,
    };
    let zeros = [0u8; BLOCK];
    for (i, m) in recipe.members.iter().enumerate() {
        let want = u64::from(m.blocks) * BLOCK as u64;
        let got = io::copy(&mut (&mut headers).take(want), out).map_err(|e| Error::Io {
            context: format!("copying entry {}", recipe.headers),
            source: e,
        })?;
        if got != want {
            return Err(Error::Recipe(format!(
                "entry {} ends inside the headers of member {i}",
                recipe.headers
            )));
        }
        if let Some(data) = &m.data {
            let mut w = CountWrite {
                inner: &mut *out,
                count: 0,
            };
            crate::layer::rebuild_node(data, source, &mut w, &format!("{location}>member {i}"))?;
            if w.count != m.size {
                return Err(Error::Recipe(format!(
                    "tar member {i}: rebuilt {} data bytes, the recipe says {}",
                    w.count, m.size
                )));
            }
        }
        let pad = padding(m.size) as usize;
        match &m.pad {
            Some(p) if p.0.len() == pad => out.write_all(&p.0).map_err(write_err)?,
            Some(p) => {
                return Err(Error::Recipe(format!(
                    "tar member {i}: padding of {} bytes recorded, {pad} expected",
                    p.0.len()
                )))
            }
            None => out.write_all(&zeros[..pad]).map_err(write_err)?,
        }
    }
    let mut left = recipe.end_zeros;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        out.write_all(&zeros[..n]).map_err(write_err)?;
        left -= n as u64;
    }
    if let Some(after) = &recipe.after {
        crate::layer::rebuild_node(after, source, out, location)?;
    }
    Ok(())
}
