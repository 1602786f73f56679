//! The expanded tree as one uncompressed, deterministic tar stream, and the rebuild from such a
//! stream read once: how a peeled backup goes into any store that deduplicates a tar (Tarsnap,
//! borg, restic) and comes back out bit for bit.
//!
//! # The stream
//! A plain GNU-format tar (GNU `././@LongLink` records for paths over 100 bytes),
//! members in this order:
//! 1. `.peel/recipe.json`: the recipe (the same JSON as in a tree on disk);
//! 2. every tar layer's header entry (`.peel/tar/N.headers`), in the order the rebuild needs
//!    them;
//! 3. every other entry, in exactly the order the rebuild consumes them (the recipe's order);
//! 4. two zero blocks.
//!
//! Every member header is the same function of path and size: mode 0644, uid/gid 0, empty
//! owner names, mtime 0. Nothing in the stream depends on the day or the machine, so two days of
//! a forum differ only where their entries differ. `tar -x` of the stream gives the tree that
//! [`crate::tree::rebuild_from_dir`] reads.
//!
//! # Why the recipe comes first, and what that costs
//! A tar header needs the size before the data, and a rebuild that reads its input once needs
//! the recipe and the original tar header blocks before the member data they precede. The
//! expansion only knows those at its end (a tar layer's header blocks are collected while its
//! members go by; the content size of a gzip layer is known only after decompressing it).
//! Holding the entries back until then would need a temporary copy of the whole tree, on
//! expansion or on rebuild. Instead [`expand_to_tar`] reads the input twice:
//! - pass 1 is the ordinary, proving expansion ([`crate::expand_path_as`]); it keeps only the
//!   small internal entries (header blocks, in an anonymous temporary file each) and the size
//!   and SHA-256 of every other entry, and yields the recipe;
//! - pass 2 follows the recipe through the input again, only decompressing (no recompression,
//!   no method search), and writes each entry to the stream as it comes out, its size already
//!   known from the recipe. Each entry's SHA-256 must equal pass 1's, and the input's SHA-256 the
//!   recipe's, or the stream is left unfinished (no end blocks) and an error returned.
//!
//! Costs: one extra decompression of the input (cheap next to pass 1's recompression), disk for
//! the header entries only (about 1 KiB per tar member), memory for one digest per entry.
//! The input must be a file (a stream to expand is spooled by the caller: its compressed size,
//! not the tree's).
//!
//! [`rebuild_from_tar`] then streams: it reads the recipe into memory (at most
//! [`MAX_RECIPE_BYTES`]), spools the header entries to a temporary directory, and pipes every
//! other entry straight from the stream into [`crate::rebuild`] through a bounded channel.
//! Directories and other non-file members a store may add (borg's `export-tar`) are skipped;
//! an entry out of order, missing or left over is an error naming it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use crate::gzip::GzipRecipe;
use crate::recipe::Node;
use crate::stream::{drain, read_full, CountRead, HashRead};
use crate::tar::TarRecipe;
use crate::tree::{parse_recipe, RECIPE_PATH};
use crate::{
    expand_path_as, names, rebuild, Digest, EntrySink, EntrySource, Error, ExpandOptions, Recipe,
    Report, Result,
};

/// Largest recipe [`rebuild_from_tar`] accepts (it is held in memory).
pub const MAX_RECIPE_BYTES: u64 = 512 << 20;

const BLOCK: usize = 512;
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the stream reader and the rebuild: bounds the rebuild's memory.
const CHANNEL_CHUNKS: usize = 16;

// ---------------------------------------------------------------------------------------------
// Writing

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

/// The header entries of every tar layer in `recipe`, in the order a rebuild opens them.
pub fn header_entries(recipe: &Recipe) -> Vec<String> {
    fn walk(node: &Node, out: &mut Vec<String>) {
        match node {
            Node::Entry { .. } | Node::Stored { .. } => {}
            Node::Gzip { inner, .. } => walk(inner, out),
            Node::Tar(t) => {
                out.push(t.headers.clone());
                for m in &t.members {
                    if let Some(d) = &m.data {
                        walk(d, out);
                    }
                }
                if let Some(a) = &t.after {
                    walk(a, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&recipe.root, &mut out);
    out
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

/// Pass 2: follows the recipe through the input, writing entries to the stream.
struct Replay<'a, 'w> {
    w: &'a mut TarWriter<'w>,
    digests: &'a HashMap<String, (u64, [u8; 32])>,
    location: &'a str,
}

impl Replay<'_, '_> {
    fn changed(&self, problem: String) -> Error {
        Error::Format {
            location: self.location.to_string(),
            problem: format!("the input changed between the two passes: {problem}"),
        }
    }

    fn node(&mut self, node: &Node, input: &mut dyn Read) -> Result<()> {
        match node {
            Node::Entry { path, size } | Node::Stored { path, size, .. } => {
                self.entry(path, *size, input)
            }
            Node::Gzip { gzip, inner } => self.gzip(gzip, inner, input),
            Node::Tar(t) => self.tar(t, input),
        }
    }

    fn entry(&mut self, path: &str, size: u64, input: &mut dyn Read) -> Result<()> {
        let mut hashed = HashRead::new(input.take(size));
        self.w.member(path, size, &mut hashed)?;
        let got = hashed.digest();
        match self.digests.get(path) {
            Some((n, sha)) if *n == got.size && hex::encode(sha) == got.sha256 => Ok(()),
            Some((n, sha)) => Err(self.changed(format!(
                "entry {path} was {n} bytes, sha256 {}; now {} bytes, sha256 {}",
                hex::encode(sha),
                got.size,
                got.sha256
            ))),
            None => Err(Error::Recipe(format!(
                "entry {path} is in the recipe but was never written"
            ))),
        }
    }

    fn skip(&self, input: &mut dyn Read, n: u64, what: &str) -> Result<()> {
        let got = io::copy(&mut input.take(n), &mut io::sink()).map_err(|e| Error::Io {
            context: format!("{}: reading {what}", self.location),
            source: e,
        })?;
        if got != n {
            return Err(self.changed(format!("it ends inside {what}")));
        }
        Ok(())
    }

    fn tar(&mut self, t: &TarRecipe, input: &mut dyn Read) -> Result<()> {
        for (i, m) in t.members.iter().enumerate() {
            self.skip(
                input,
                u64::from(m.blocks) * BLOCK as u64,
                &format!("the headers of tar member {i}"),
            )?;
            if let Some(data) = &m.data {
                let mut member = CountRead {
                    inner: (&mut *input).take(m.size),
                    count: 0,
                };
                self.node(data, &mut member)?;
                let rest = drain(&mut member).map_err(|e| Error::Io {
                    context: format!("{}: reading tar member {i}", self.location),
                    source: e,
                })?;
                if rest != 0 || member.count != m.size {
                    return Err(self.changed(format!(
                        "tar member {i} was {} bytes, its layers now account for {}",
                        m.size,
                        member.count - rest
                    )));
                }
            }
            let pad = (BLOCK as u64 - m.size % BLOCK as u64) % BLOCK as u64;
            self.skip(input, pad, &format!("the padding of tar member {i}"))?;
        }
        self.skip(input, t.end_zeros, "the end of a tar archive")?;
        if let Some(after) = &t.after {
            self.node(after, input)?;
        }
        Ok(())
    }

    fn gzip(&mut self, g: &GzipRecipe, inner: &Node, input: &mut dyn Read) -> Result<()> {
        let mut content = Gunzip {
            input: Some(input),
            members: &g.members,
            next: 0,
            current: None,
            location: self.location,
        };
        self.node(inner, &mut content)?;
        let rest = drain(&mut content).map_err(|e| self.changed(e.to_string()))?;
        if rest != 0 {
            return Err(self.changed(format!(
                "a gzip layer has {rest} bytes of content beyond what the recipe uses"
            )));
        }
        let input = content.input.take().ok_or_else(|| {
            self.changed("a gzip member did not end where the recipe says".into())
        })?;
        let mut trailing = vec![0u8; g.trailing.0.len()];
        let got = read_full(input, &mut trailing).map_err(|e| Error::Io {
            context: format!("{}: reading", self.location),
            source: e,
        })?;
        if got != trailing.len() || trailing != g.trailing.0 {
            return Err(self.changed("the bytes after the last gzip member differ".into()));
        }
        Ok(())
    }
}

/// The concatenated content of a gzip layer's members, decompressed member by member at the
/// offsets the recipe gives (plain inflate: pass 1 already proved the recompression).
struct Gunzip<'a, 'r> {
    input: Option<&'r mut dyn Read>,
    members: &'a [crate::gzip::MemberRecipe],
    next: usize,
    current: Option<(
        flate2::read::DeflateDecoder<io::Take<&'r mut dyn Read>>,
        u64,
    )>,
    location: &'a str,
}

impl Gunzip<'_, '_> {
    fn bad(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: gzip member {}: {what}", self.location, self.next),
        )
    }
}

impl Read for Gunzip<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((dec, count)) = &mut self.current {
                let n = dec.read(buf)?;
                if n > 0 {
                    *count += n as u64;
                    return Ok(n);
                }
                let (dec, count) = self.current.take().expect("current member");
                let member = &self.members[self.next - 1];
                if count != member.plain_size {
                    return Err(self.bad(format!(
                        "{count} bytes of content, the recipe says {}",
                        member.plain_size
                    )));
                }
                let mut rest = dec.into_inner();
                drain(&mut rest)?;
                let input = rest.into_inner();
                let mut trailer = [0u8; 8];
                if read_full(input, &mut trailer)? != 8 {
                    return Err(self.bad("the input ends inside the trailer".into()));
                }
                self.input = Some(input);
                continue;
            }
            let Some(member) = self.members.get(self.next) else {
                return Ok(0);
            };
            let Some(input) = self.input.take() else {
                return Ok(0);
            };
            let mut header = vec![0u8; member.header.0.len()];
            if read_full(input, &mut header)? != header.len() || header != member.header.0 {
                return Err(self.bad("the header differs from the recipe's".into()));
            }
            self.next += 1;
            let body = input.take(member.deflate_size);
            self.current = Some((flate2::read::DeflateDecoder::new(body), 0));
        }
    }
}

/// Writes tar members with fixed metadata; hand-written over `tar::Header` because the tar
/// crate's `Builder` writes the end blocks when dropped, even after an error, and a failed
/// expansion must not look like a complete stream.
struct TarWriter<'w> {
    out: &'w mut dyn Write,
}

impl<'w> TarWriter<'w> {
    fn new(out: &'w mut dyn Write) -> Self {
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
    fn member(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
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

    fn finish(&mut self) -> Result<()> {
        self.out
            .write_all(&[0u8; 2 * BLOCK])
            .and_then(|()| self.out.flush())
            .map_err(Self::write_err)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// What the stream reader thread hands over.
enum Msg {
    /// A regular file member starts (its header at byte `offset` of the stream).
    Entry {
        path: String,
        size: u64,
        offset: u64,
    },
    /// Data of the current member.
    Data(Vec<u8>),
    /// The current member's data is complete.
    End,
    /// The stream ended.
    Done,
    /// The stream could not be read.
    Failed(String),
}

/// Reads a tar stream written by [`expand_to_tar`] (or a store's re-export of it) once, from
/// `input`, and writes the original bytes to `out`; checks the size and SHA-256 the recipe
/// records. Memory stays bounded (the recipe, and a few chunks in flight); the header entries
/// are spooled to a temporary directory.
pub fn rebuild_from_tar(
    input: &mut (dyn Read + Send),
    out: &mut (dyn Write + Send),
) -> Result<Digest> {
    let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
    std::thread::scope(|s| {
        s.spawn(move || read_stream(input, &tx));
        let result = rebuild_with(rx, out);
        // Dropping the receiver (inside rebuild_with) stops the reader thread at its next send.
        result
    })
}

fn read_stream(input: &mut (dyn Read + Send), tx: &SyncSender<Msg>) {
    let fail = |e: String| {
        let _ = tx.send(Msg::Failed(e));
    };
    let mut ar = tar::Archive::new(input);
    let entries = match ar.entries() {
        Ok(e) => e,
        Err(e) => return fail(format!("reading the tar stream: {e}")),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return fail(format!("reading the tar stream: {e}")),
        };
        let offset = entry.raw_header_position();
        let kind = entry.header().entry_type();
        if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
            continue;
        }
        let path = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => return fail(format!("tar stream offset {offset}: bad path: {e}")),
        };
        let path = match names::normalize_member(path.as_bytes()) {
            Ok(p) => p,
            Err(why) => {
                let shown = names::shorten(&path);
                return fail(format!(
                    "tar stream offset {offset}: entry {shown:?}: {why}"
                ));
            }
        };
        let size = entry.size();
        if tx.send(Msg::Entry { path, size, offset }).is_err() {
            return;
        }
        loop {
            let mut buf = vec![0u8; CHUNK];
            match read_full(&mut entry, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Msg::Data(buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    return fail(format!(
                        "tar stream: reading the member at offset {offset}: {e}"
                    ))
                }
            }
        }
        if tx.send(Msg::End).is_err() {
            return;
        }
    }
    let _ = tx.send(Msg::Done);
}

/// The receiving end, shared by the source and the entry readers it hands out (one at a time).
struct Stream {
    rx: Receiver<Msg>,
    /// An entry's data is still being delivered.
    inside: bool,
}

impl Stream {
    fn recv(&mut self) -> io::Result<Msg> {
        match self.rx.recv() {
            Ok(Msg::Failed(e)) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            Ok(m) => Ok(m),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar stream reader stopped",
            )),
        }
    }

    /// Skips the rest of the current entry; returns the next member's start or `None` at the end.
    fn next_entry(&mut self) -> io::Result<Option<(String, u64, u64)>> {
        loop {
            match self.recv()? {
                Msg::Entry { path, size, offset } => {
                    self.inside = true;
                    return Ok(Some((path, size, offset)));
                }
                Msg::Data(_) | Msg::End => self.inside = false,
                Msg::Done => return Ok(None),
                Msg::Failed(_) => unreachable!("recv turns Failed into an error"),
            }
        }
    }
}

/// Reads the data of the current entry from the shared stream.
struct EntryReader {
    stream: Arc<Mutex<Stream>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for EntryReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            let mut s = self
                .stream
                .lock()
                .map_err(|_| io::Error::other("tar stream reader poisoned"))?;
            match s.recv()? {
                Msg::Data(v) => {
                    self.buf = v;
                    self.pos = 0;
                }
                Msg::End => {
                    s.inside = false;
                    self.done = true;
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "tar stream: a member's data ended early",
                    ))
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Entries for the rebuild: header entries from the spool, the rest from the stream in order.
struct StreamSource {
    stream: Arc<Mutex<Stream>>,
    spooled: HashMap<String, std::path::PathBuf>,
}

impl EntrySource for StreamSource {
    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        if let Some(file) = self.spooled.get(path) {
            return Ok(Box::new(BufReader::new(File::open(file)?)));
        }
        let mut s = self
            .stream
            .lock()
            .map_err(|_| io::Error::other("tar stream reader poisoned"))?;
        match s.next_entry()? {
            Some((got, _, _)) if got == path => {}
            Some((got, _, offset)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the tar stream has entry {got:?} at offset {offset} where the recipe \
                         needs {path:?} (entries reordered, or a different stream)"
                    ),
                ))
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the tar stream ends before entry {path:?}"),
                ))
            }
        }
        Ok(Box::new(EntryReader {
            stream: Arc::clone(&self.stream),
            buf: Vec::new(),
            pos: 0,
            done: false,
        }))
    }
}

fn stream_err(e: io::Error) -> Error {
    Error::Io {
        context: "reading the tar stream".to_string(),
        source: e,
    }
}

fn rebuild_with(rx: Receiver<Msg>, out: &mut (dyn Write + Send)) -> Result<Digest> {
    let stream = Arc::new(Mutex::new(Stream { rx, inside: false }));
    let mut source = StreamSource {
        stream: Arc::clone(&stream),
        spooled: HashMap::new(),
    };
    let mut first = source.open(RECIPE_PATH).map_err(|e| Error::Format {
        location: "tar stream".into(),
        problem: format!("not a dvault tar stream: it must start with {RECIPE_PATH}: {e}"),
    })?;
    let mut json = Vec::new();
    (&mut first)
        .take(MAX_RECIPE_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(stream_err)?;
    if json.len() as u64 > MAX_RECIPE_BYTES {
        return Err(Error::Recipe(format!(
            "{RECIPE_PATH} in the tar stream is over {MAX_RECIPE_BYTES} bytes"
        )));
    }
    drop(first);
    let recipe = parse_recipe(&json)
        .map_err(|e| Error::Recipe(format!("{RECIPE_PATH} in the tar stream: {e}")))?;

    let spool = tempfile::tempdir().map_err(|e| Error::Io {
        context: "creating a temporary directory for tar headers".into(),
        source: e,
    })?;
    let wanted = header_entries(&recipe);
    let unique: HashSet<&String> = wanted.iter().collect();
    if unique.len() != wanted.len() {
        return Err(Error::Recipe("a tar header entry is used twice".into()));
    }
    for (i, path) in wanted.iter().enumerate() {
        let mut r = source.open(path).map_err(stream_err)?;
        let file = spool.path().join(i.to_string());
        let mut w = BufWriter::new(File::create(&file).map_err(|e| Error::Io {
            context: format!("creating {}", file.display()),
            source: e,
        })?);
        io::copy(&mut r, &mut w)
            .and_then(|_| w.flush())
            .map_err(|e| Error::Io {
                context: format!("spooling entry {path} to {}", file.display()),
                source: e,
            })?;
        source.spooled.insert(path.clone(), file);
    }

    let digest = rebuild(&recipe, &mut source, out)?;
    let left = stream
        .lock()
        .map_err(|_| Error::Recipe("tar stream reader poisoned".into()))?
        .next_entry()
        .map_err(stream_err)?;
    if let Some((path, _, offset)) = left {
        return Err(Error::Format {
            location: "tar stream".into(),
            problem: format!(
                "entry {path:?} at offset {offset} is not used by the recipe (the stream has \
                 more than one backup, or was changed)"
            ),
        });
    }
    Ok(digest)
}
