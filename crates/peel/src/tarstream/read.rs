//! Reading the tar stream once and rebuilding the original from it, with bounded memory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::{header_entries, CHANNEL_CHUNKS, CHUNK, MAX_RECIPE_BYTES};
use crate::stream::read_full;
use crate::tree::{parse_recipe, RECIPE_PATH};
use crate::{names, rebuild, Digest, EntrySource, Error, Result};

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
