//! Detecting what a byte stream is (gzip, tar, or plain) and dispatching to the layer that takes
//! it apart or puts it back together. Layers nest: a tar member that is itself gzip or tar is
//! peeled the same way.
//!
//! Streaming: only the first 512 bytes of a layer are read ahead for detection. A gzip layer is
//! decompressed (and its recompression proven) on its own thread, writing into a pipe that this
//! thread reads to expand the content, so both run at once.
//!
//! Retries: a gzip layer that no exact method reproduces, or a tar member that looked like a
//! container but could not be peeled, is kept as its original bytes. Those bytes have gone by in
//! the stream, so they are read again from the original input along the layer's [`Step`]s
//! (decompress, skip, take); the entries already handed out for it are discarded.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::gzip::GzipRecipe;
use crate::names::{self, Names};
use crate::recipe::Node;
use crate::report::{LayerProfile, LayerReport, Profile, Report};
use crate::stream::{drain, CountRead, CountWrite, Peek};
use crate::{EntrySink, EntrySource, Error, ExpandOptions, Result};

/// What a layer's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// gzip magic `1f 8b 08`.
    Gzip,
    /// A valid tar header block.
    Tar,
    /// Anything else: kept as it is.
    Plain,
}

/// Buffer size on each side of the pipes between layers.
const PIPE_BUFFER: usize = 256 * 1024;

/// How many bytes [`detect`] wants to see.
pub const DETECT_BYTES: usize = crate::tar::header::BLOCK;

/// Decides what a stream is from its first bytes (up to [`DETECT_BYTES`]).
pub fn detect(head: &[u8]) -> Detected {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Detected::Gzip;
    }
    if let Ok(block) = <&[u8; DETECT_BYTES]>::try_from(head) {
        if crate::tar::header::looks_like_tar(block) {
            return Detected::Tar;
        }
    }
    Detected::Plain
}

/// One way down from the original input to a layer's bytes.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Decompress (all gzip members, concatenated).
    Gunzip,
    /// Skip `offset` bytes and take `size`.
    Slice { offset: u64, size: u64 },
}

/// Opens the original input again from its start.
pub(crate) type Reopen<'a> = &'a (dyn Fn() -> io::Result<Box<dyn Read + Send>> + Sync);

/// Where a layer sits.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// For messages and reports.
    pub location: String,
    /// The entry name the layer's bytes get when they are kept whole.
    pub leaf: String,
    /// The directory a tar layer's members go under ("" for the root).
    pub dir: String,
    /// How to read the layer again from the original input.
    pub steps: Vec<Step>,
    /// Nesting depth (the input is 0).
    pub depth: u32,
    /// Bytes known to remain in the layer, when known (a file's or a member's size).
    pub limit: Option<u64>,
}

/// State of one expansion.
pub(crate) struct Expander<'a> {
    sink: &'a mut dyn EntrySink,
    opts: &'a ExpandOptions,
    reopen: Option<Reopen<'a>>,
    names: Names,
    /// Every entry handed to the sink, in order, so a failed layer's entries can be discarded.
    emitted: Vec<(String, u64)>,
    layers: Vec<LayerReport>,
    tars: u32,
    /// Bytes of the original input read so far (all threads), for the expansion cap.
    input_read: &'a AtomicU64,
    /// Bytes in `emitted`.
    emitted_bytes: u64,
    /// Where the time went (wall time and input reading are filled in by the caller).
    profile: Profile,
}

impl<'a> Expander<'a> {
    pub(crate) fn new(
        sink: &'a mut dyn EntrySink,
        opts: &'a ExpandOptions,
        reopen: Option<Reopen<'a>>,
        input_read: &'a AtomicU64,
    ) -> Self {
        Expander {
            input_read,
            emitted_bytes: 0,
            profile: Profile::default(),
            sink,
            opts,
            reopen,
            names: Names::default(),
            emitted: Vec::new(),
            layers: Vec::new(),
            tars: 0,
        }
    }

    /// Expands a whole layer read from `input`.
    pub(crate) fn expand(&mut self, input: &mut (dyn Read + Send), place: Place) -> Result<Node> {
        let mut peek = Peek::new(input, DETECT_BYTES).map_err(|e| Error::Io {
            context: format!("{}: reading", place.location),
            source: e,
        })?;
        let kind = if place.depth >= self.opts.max_depth {
            Detected::Plain
        } else {
            detect(peek.head())
        };
        match kind {
            Detected::Gzip => self.expand_gzip(&mut peek, place),
            Detected::Tar => crate::tar::expand(&mut peek, self, &place),
            Detected::Plain if place.depth == 0 && !self.opts.allow_plain_root => {
                let head: Vec<String> = peek
                    .head()
                    .iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Err(Error::Format {
                    location: place.location.clone(),
                    problem: format!(
                        "neither gzip nor tar (first bytes: {}); expected a backup file",
                        if head.is_empty() {
                            "none, the input is empty".to_string()
                        } else {
                            head.join(" ")
                        }
                    ),
                })
            }
            Detected::Plain => self.emit_named(&mut peek, &place.leaf),
        }
    }

    /// Expands a tar member; if it looked like a container but cannot be peeled, keeps it as
    /// plain bytes instead of failing the whole input (uploads are arbitrary user files).
    pub(crate) fn expand_member(
        &mut self,
        input: &mut (dyn Read + Send),
        place: Place,
    ) -> Result<Node> {
        let mark = self.emitted.len();
        let layers_mark = self.layers.len();
        match self.expand(input, place.clone()) {
            Ok(node) => Ok(node),
            Err(e @ Error::Sink { .. }) => Err(e),
            Err(e) => {
                tracing::info!("{}: kept as plain bytes: {e}", place.location);
                self.discard_since(mark)?;
                self.layers.truncate(layers_mark);
                drain(input).map_err(|e| Error::Io {
                    context: format!("{}: reading", place.location),
                    source: e,
                })?;
                let size = place.limit.unwrap_or(0);
                let mut layer = LayerReport::new(&place.location, "plain");
                layer.compressed_size = size;
                layer.plain_size = size;
                layer.note = Some(format!("not peeled: {e}"));
                let node = self.emit_reread(&place, false, e.to_string())?;
                self.layers.push(layer);
                Ok(node)
            }
        }
    }

    fn expand_gzip(&mut self, input: &mut (dyn Read + Send), place: Place) -> Result<Node> {
        let mark = self.emitted.len();
        let layers_mark = self.layers.len();
        self.layers.push(LayerReport::new(&place.location, "gzip"));
        // Reserved now so that the profile lists layers outermost first, like the report.
        let profile_index = self.profile.layers.len();
        self.profile.layers.push(LayerProfile {
            location: place.location.clone(),
            ..LayerProfile::default()
        });
        let mut steps = place.steps.clone();
        steps.push(Step::Gunzip);
        let inner_place = Place {
            location: format!("{}>gunzip", place.location),
            leaf: names::gunzipped(&place.leaf),
            dir: if place.dir == place.leaf {
                names::gunzipped(&place.dir)
            } else {
                place.dir.clone()
            },
            steps,
            depth: place.depth + 1,
            limit: None,
        };
        let (reader, writer) = io::pipe().map_err(|e| Error::Io {
            context: format!("{}: creating a pipe", place.location),
            source: e,
        })?;
        let opts = self.opts;
        let location = place.location.clone();
        let mut counted_in = CountRead {
            inner: input,
            count: 0,
        };
        let (gz, inner, plain_size) = std::thread::scope(|s| {
            let counted_in = &mut counted_in;
            let gz = s.spawn(move || {
                let mut writer = writer;
                gzip_calls::expand(counted_in, &mut writer, opts, &location)
            });
            // Buffered: the tar layer reads 512-byte header blocks, one syscall each otherwise.
            let mut plain = CountRead {
                inner: io::BufReader::with_capacity(PIPE_BUFFER, reader),
                count: 0,
            };
            let inner = self.expand(&mut plain, inner_place);
            if inner.is_ok() {
                // The content must be read to its end, or the gzip thread would block.
                let _ = drain(&mut plain);
            }
            let plain_size = plain.count;
            drop(plain);
            let gz = gz.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (gz, inner, plain_size)
        });
        let compressed_size = counted_in.count;
        if gz.is_err() {
            // Its time is not known; the layer is stored, or the error ends the expansion.
            self.profile.layers.truncate(profile_index);
        }
        match gz {
            Ok((recipe, details, t)) => {
                let secs = |d: Duration| d.as_secs_f64();
                self.profile.layers[profile_index] = LayerProfile {
                    location: place.location.clone(),
                    read_s: secs(t.read),
                    decompress_s: secs(t.decompress),
                    probe_s: secs(t.probe),
                    downstream_s: secs(t.downstream),
                    proof_s: secs(t.proof),
                    proof_idle_s: secs(t.proof_idle),
                };
                let inner = inner?;
                // Whatever the gzip layer did not take would be missing from the rebuild.
                let extra = drain(counted_in.inner).map_err(|e| Error::Io {
                    context: format!("{}: reading", place.location),
                    source: e,
                })?;
                if extra != 0 {
                    return Err(Error::Format {
                        location: place.location.clone(),
                        problem: format!(
                            "{extra} bytes after offset {compressed_size} are not part of the                              gzip layer"
                        ),
                    });
                }
                let layer = &mut self.layers[layers_mark];
                layer.compressed_size = compressed_size;
                layer.plain_size = plain_size;
                layer.method = Some(describe_methods(&recipe));
                layer.details = details;
                let recipe_bytes = serde_json::to_vec(&recipe).map_or(0, |v| v.len() as u64);
                layer.set_recipe_bytes(recipe_bytes);
                Ok(Node::Gzip {
                    gzip: recipe,
                    inner: Box::new(inner),
                })
            }
            Err(Error::NotReproducible { reason, .. }) => {
                tracing::info!("{}: kept as stored bytes: {reason}", place.location);
                self.discard_since(mark)?;
                self.layers.truncate(layers_mark);
                let rest = drain(counted_in.inner).map_err(|e| Error::Io {
                    context: format!("{}: reading", place.location),
                    source: e,
                })?;
                let mut layer = LayerReport::new(&place.location, "stored");
                layer.compressed_size = compressed_size + rest;
                layer.plain_size = compressed_size + rest;
                layer.note = Some(reason.clone());
                let node = self.emit_reread(&place, true, reason)?;
                self.layers.push(layer);
                Ok(node)
            }
            Err(gz_err) => match inner {
                // The content's reader stopped first; the gzip thread only saw the closed pipe.
                Err(inner_err) if is_broken_pipe(&gz_err) => Err(inner_err),
                _ => Err(gz_err),
            },
        }
    }

    /// Reads a layer again from the original input and hands it to the sink whole, as a
    /// `Stored` node (when `stored`) or a plain `Entry`.
    fn emit_reread(&mut self, place: &Place, stored: bool, reason: String) -> Result<Node> {
        let Some(reopen) = self.reopen else {
            return Err(Error::Format {
                location: place.location.clone(),
                problem: format!(
                    "this layer must be kept as its original bytes ({reason}), but the input \
                     cannot be read a second time; expand from a file instead of a stream"
                ),
            });
        };
        let io_err = |e| Error::Io {
            context: format!("{}: reading the input again", place.location),
            source: e,
        };
        let mut r = reopen().map_err(io_err)?;
        for step in &place.steps {
            r = match *step {
                Step::Gunzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(r))),
                Step::Slice { offset, size } => {
                    let skipped =
                        io::copy(&mut (&mut r).take(offset), &mut io::sink()).map_err(io_err)?;
                    if skipped != offset {
                        return Err(Error::Format {
                            location: place.location.clone(),
                            problem: format!(
                                "the input changed: it ends before offset {offset} on re-reading"
                            ),
                        });
                    }
                    Box::new(r.take(size))
                }
            };
        }
        let node = self.emit_named(&mut r, &place.leaf)?;
        match node {
            Node::Entry { path, size } if stored => Ok(Node::Stored { path, size, reason }),
            other => Ok(other),
        }
    }

    /// Hands `data` to the sink under the first free name for `wanted`.
    fn emit_named(&mut self, data: &mut dyn Read, wanted: &str) -> Result<Node> {
        let path = self.names.claim(wanted);
        let size = self.emit(&path, data)?;
        Ok(Node::Entry { path, size })
    }

    /// Hands an internal entry (tar header blocks, tails) to the sink.
    pub(crate) fn emit_internal(&mut self, path: &str, data: &mut dyn Read) -> Result<u64> {
        self.emit(path, data)
    }

    fn emit(&mut self, path: &str, data: &mut dyn Read) -> Result<u64> {
        if let Some(why) = names::unsafe_reason(path) {
            return Err(Error::Format {
                location: format!("entry {:?}", names::shorten(path)),
                problem: why.to_string(),
            });
        }
        let tripped = Cell::new(None);
        let started = Instant::now();
        let mut capped = Capped {
            waited: Duration::ZERO,
            inner: data,
            before: self.emitted_bytes,
            count: 0,
            input_read: self.input_read,
            ratio: self.opts.max_expansion_ratio,
            slack: self.opts.expansion_slack,
            tripped: &tripped,
        };
        let stored = self.sink.entry(path, &mut capped);
        let waited = capped.waited;
        self.profile.wait_entries_s += waited.as_secs_f64();
        self.profile.store_entries_s += started.elapsed().saturating_sub(waited).as_secs_f64();
        let n = stored.map_err(|e| match tripped.take() {
            Some(problem) => Error::Format {
                location: format!("entry {:?}", names::shorten(path)),
                problem,
            },
            None => Error::Sink {
                path: names::shorten(path),
                source: e,
            },
        })?;
        self.emitted.push((path.to_string(), n));
        self.emitted_bytes += n;
        Ok(n)
    }

    fn discard_since(&mut self, mark: usize) -> Result<()> {
        for (path, n) in self.emitted.drain(mark..).rev() {
            self.emitted_bytes -= n;
            self.sink.discard(&path).map_err(|e| Error::Sink {
                path: names::shorten(&path),
                source: e,
            })?;
        }
        Ok(())
    }

    /// A fresh index for a tar layer's internal entries.
    pub(crate) fn next_tar_index(&mut self) -> u32 {
        self.tars += 1;
        self.tars - 1
    }

    /// Starts the report of a layer; returns its index for [`Self::layer_mut`].
    pub(crate) fn begin_layer(&mut self, location: &str, kind: &str) -> usize {
        self.layers.push(LayerReport::new(location, kind));
        self.layers.len() - 1
    }

    /// The report of a layer begun with [`Self::begin_layer`].
    pub(crate) fn layer_mut(&mut self, index: usize) -> &mut LayerReport {
        &mut self.layers[index]
    }

    /// The report of the whole expansion, once the recipe JSON size is known.
    pub(crate) fn finish(self, original: crate::Digest, recipe_json_bytes: u64) -> Report {
        let internal: u64 = self
            .emitted
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{}/", names::RESERVED)))
            .map(|(_, n)| n)
            .sum();
        let recipe_bytes = recipe_json_bytes + internal;
        let stored_fallback = self.layers.iter().any(|l| l.kind == "stored");
        Report {
            profile: self.profile,
            recipe_share: crate::report::share(recipe_bytes, original.size),
            original,
            entries: self.emitted.len() as u64,
            entry_bytes: self.emitted.iter().map(|(_, n)| n).sum(),
            recipe_bytes,
            stored_fallback,
            layers: self.layers,
        }
    }
}

/// Stops an entry once the expansion holds more than the cap allows for the input read so far
/// (see [`ExpandOptions::max_expansion_ratio`]): a decompression bomb fails early and clearly.
struct Capped<'r> {
    inner: &'r mut dyn Read,
    /// Time spent waiting for `inner` (the layers above producing the data).
    waited: Duration,
    /// Entry bytes of the expansion before this entry.
    before: u64,
    count: u64,
    input_read: &'r AtomicU64,
    ratio: u64,
    slack: u64,
    /// Set to the explanation when the cap stopped the entry.
    tripped: &'r Cell<Option<String>>,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        let n = self.inner.read(buf);
        self.waited += started.elapsed();
        let n = n?;
        self.count += n as u64;
        let total = self.before + self.count;
        let input = self.input_read.load(Ordering::Relaxed);
        let allowed = input.saturating_mul(self.ratio).saturating_add(self.slack);
        if total > allowed {
            let problem = format!(
                "expands to more than {allowed} bytes from {input} input bytes (the cap is \
                 {} times the input plus {} bytes; a decompression bomb? raise \
                 max_expansion_ratio or expansion_slack if this input is genuine)",
                self.ratio, self.slack
            );
            self.tripped.set(Some(problem.clone()));
            return Err(io::Error::other(problem));
        }
        Ok(n)
    }
}

fn is_broken_pipe(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
        _ => false,
    }
}

/// A short description of the methods of a gzip layer's members ("gzip -5").
fn describe_methods(recipe: &GzipRecipe) -> String {
    let mut parts: Vec<String> = Vec::new();
    for m in &recipe.members {
        let d = m.method.to_string();
        if parts.last() != Some(&d) {
            parts.push(d);
        }
    }
    if recipe.members.len() > 1 {
        format!("{} ({} members)", parts.join(", "), recipe.members.len())
    } else {
        parts.join(", ")
    }
}

/// Rebuilds the bytes of `node` into `out`.
pub(crate) fn rebuild_node(
    node: &Node,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
    location: &str,
) -> Result<()> {
    match node {
        Node::Entry { path, size } | Node::Stored { path, size, .. } => {
            copy_entry(path, *size, source, out)
        }
        Node::Tar(t) => crate::tar::rebuild(t, source, out, location),
        Node::Gzip { gzip, inner } => {
            let (reader, writer) = io::pipe().map_err(|e| Error::Io {
                context: "creating a pipe".to_string(),
                source: e,
            })?;
            let (inner_res, gz_res) = std::thread::scope(|s| {
                let t = s.spawn(move || {
                    // Buffered: the tar layer writes 512-byte header blocks.
                    let mut writer = io::BufWriter::with_capacity(PIPE_BUFFER, writer);
                    rebuild_node(inner, source, &mut writer, &format!("{location}>gunzip"))?;
                    writer.flush().map_err(|e| Error::Io {
                        context: format!("{location}: writing to the gzip layer"),
                        source: e,
                    })
                });
                let mut reader = reader;
                let gz = gzip_calls::rebuild(gzip, &mut reader, out, location);
                drop(reader);
                let inner = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                (inner, gz)
            });
            match (gz_res, inner_res) {
                (Ok(()), Ok(())) => Ok(()),
                (Err(g), Err(i)) if !is_broken_pipe(&i) => {
                    // The content could not be produced; that is the cause.
                    let _ = g;
                    Err(i)
                }
                (Err(g), _) => Err(g),
                (Ok(()), Err(i)) => Err(i),
            }
        }
    }
}

fn copy_entry(
    path: &str,
    size: u64,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let mut r = source.open(path).map_err(|e| Error::Io {
        context: format!("opening entry {path}"),
        source: e,
    })?;
    let mut w = CountWrite {
        inner: out,
        count: 0,
    };
    io::copy(&mut (&mut r).take(size.saturating_add(1)), &mut w).map_err(|e| Error::Io {
        context: format!("copying entry {path}"),
        source: e,
    })?;
    if w.count != size {
        return Err(Error::Recipe(format!(
            "entry {path}: the recipe says {size} bytes, the entry has {}{}",
            w.count,
            if w.count > size { " or more" } else { "" }
        )));
    }
    Ok(())
}

/// The calls into the gzip layer, in one place.
mod gzip_calls {
    use super::*;

    pub(super) fn expand(
        input: &mut (dyn Read + Send),
        plain: &mut (dyn Write + Send),
        opts: &ExpandOptions,
        location: &str,
    ) -> Result<(
        GzipRecipe,
        Option<serde_json::Value>,
        crate::gzip::GzipTiming,
    )> {
        let (recipe, report) = crate::gzip::expand(input, plain, &opts.gzip, location)?;
        Ok((recipe, serde_json::to_value(&report).ok(), report.timing))
    }

    pub(super) fn rebuild(
        recipe: &GzipRecipe,
        plain: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
        location: &str,
    ) -> Result<()> {
        crate::gzip::rebuild(recipe, plain, out, location)
    }
}
