//! Detecting what a byte stream is (gzip, tar, or plain) and dispatching to the layer that takes
//! it apart or puts it back together. Layers nest: a tar member that is itself gzip or tar is
//! peeled the same way.
//!
//! Streaming: only the first 512 bytes of a layer are read ahead for detection. A gzip layer is
//! decompressed on its own thread, writing into a pipe that this thread reads to expand the
//! content, so both run at once; each of its members is proven by a job of its own, which may
//! still run when the layer's node is made: `Expander::settle` puts the proven recipes in at
//! the end.
//!
//! Retries: a gzip layer that no exact method reproduces, or a tar member that looked like a
//! container but could not be peeled, is kept as its original bytes. Those bytes have gone by in
//! the stream, so they are read again from the original input along the layer's [`Step`]s
//! (decompress, skip, take); the entries already handed out for it are discarded.

mod cap;
mod gzip;
mod rebuild;

use std::cell::Cell;
use std::io::{self, Read};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::entries::EntrySink;
use crate::error::{Error, Result};
use crate::gzip::proof::Proofs;
use crate::names::{self, Names};
use crate::options::ExpandOptions;
use crate::place::{Place, Reopen, Step};
use crate::recipe::{Digest, GzipRecipe, Node};
use crate::report::{LayerReport, Profile, Report};
use crate::stream::{drain, Peek};
use crate::tar::Nest;
use cap::Capped;
use gzip::Deferred;

pub(crate) use rebuild::rebuild_node;

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
    /// The proof jobs of the gzip members (sequential, or up to the core count at once).
    proofs: &'a Proofs,
    /// Gzip layers whose proofs may still be running, in the order their nodes were made (inner
    /// layers before the layer holding them, tar members in order: post-order).
    deferred: Vec<Deferred>,
}

impl<'a> Expander<'a> {
    pub(crate) fn new(
        sink: &'a mut dyn EntrySink,
        opts: &'a ExpandOptions,
        reopen: Option<Reopen<'a>>,
        input_read: &'a AtomicU64,
        proofs: &'a Proofs,
    ) -> Self {
        Expander {
            proofs,
            deferred: Vec::new(),
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

    /// Reads a layer again from the original input and hands it to the sink whole, as a
    /// `Stored` node (when `stored`) or a plain `Entry`.
    pub(super) fn emit_reread(
        &mut self,
        place: &Place,
        stored: bool,
        reason: String,
    ) -> Result<Node> {
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

    /// Forgets the reports (and pending proofs) of the layers begun since `mark`: their input is
    /// kept another way.
    fn forget_layers(&mut self, mark: usize) {
        self.layers.truncate(mark);
        self.deferred.retain(|d| d.layer < mark);
    }

    /// Waits for the proofs still running and puts each gzip layer's real recipe in place of its
    /// stand-in, in `root` (the expansion's result). Returns `None` when a member turned out not
    /// to be reproducible: the sequential path would have stored that layer (and maybe done
    /// differently after it), so the caller discards everything and expands again one member
    /// after another; this is rare (no method reproduces the member), and keeps the result
    /// exactly the sequential one.
    pub(crate) fn settle(&mut self, root: Result<Node>) -> Option<Result<Node>> {
        if self.proofs.limit() == 0 {
            // Every recipe was complete when its node was made.
            return Some(root);
        }
        let mut proven = Vec::new();
        let mut again = false;
        for d in std::mem::take(&mut self.deferred) {
            match d.unproven.prove() {
                Ok(done) => proven.push((d.layer, d.profile, done)),
                Err(Error::NotReproducible { .. }) => again = true,
                Err(e) => return Some(Err(e)),
            }
        }
        if again {
            return None;
        }
        let mut root = match root {
            Ok(root) => root,
            Err(e) => return Some(Err(e)),
        };
        let mut recipes = Vec::new();
        for (layer, profile, (recipe, report)) in proven {
            self.proven(layer, profile, &recipe, &report);
            recipes.push(recipe);
        }
        let mut recipes = recipes.into_iter();
        let placed = put_recipes(&mut root, &mut recipes);
        if !placed || recipes.next().is_some() {
            return Some(Err(Error::Recipe(
                "internal error: the gzip layers' proofs do not match the recipe's layers"
                    .to_string(),
            )));
        }
        Some(Ok(root))
    }

    /// Discards every entry of this expansion (before expanding again).
    pub(crate) fn discard_all(&mut self) -> Result<()> {
        self.discard_since(0)
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

    /// The report of the whole expansion, once the recipe JSON size is known.
    pub(crate) fn finish(self, original: Digest, recipe_json_bytes: u64) -> Report {
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

/// The tar layer calls back into the expansion through this trait (see `tar/mod.rs`).
impl Nest for Expander<'_> {
    /// Expands a tar member; if it looked like a container but cannot be peeled, keeps it as
    /// plain bytes instead of failing the whole input (uploads are arbitrary user files).
    fn expand_member(&mut self, input: &mut (dyn Read + Send), place: Place) -> Result<Node> {
        let mark = self.emitted.len();
        let layers_mark = self.layers.len();
        match self.expand(input, place.clone()) {
            Ok(node) => Ok(node),
            Err(e @ Error::Sink { .. }) => Err(e),
            Err(e) => {
                tracing::info!("{}: kept as plain bytes: {e}", place.location);
                self.discard_since(mark)?;
                self.forget_layers(layers_mark);
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

    /// Hands an internal entry (tar header blocks, tails) to the sink.
    fn emit_internal(&mut self, path: &str, data: &mut dyn Read) -> Result<u64> {
        self.emit(path, data)
    }

    /// A fresh index for a tar layer's internal entries.
    fn next_tar_index(&mut self) -> u32 {
        self.tars += 1;
        self.tars - 1
    }

    /// Starts the report of a layer; returns its index for [`Nest::layer_mut`].
    fn begin_layer(&mut self, location: &str, kind: &str) -> usize {
        self.layers.push(LayerReport::new(location, kind));
        self.layers.len() - 1
    }

    /// The report of a layer begun with [`Nest::begin_layer`].
    fn layer_mut(&mut self, index: usize) -> &mut LayerReport {
        &mut self.layers[index]
    }
}

/// Puts the proven gzip recipes in place of the stand-ins, visiting the gzip nodes in the order
/// they were made (post-order). False when there are fewer recipes than gzip nodes.
fn put_recipes(node: &mut Node, recipes: &mut impl Iterator<Item = GzipRecipe>) -> bool {
    match node {
        Node::Entry { .. } | Node::Stored { .. } => true,
        Node::Gzip { gzip, inner } => {
            if !put_recipes(inner, recipes) {
                return false;
            }
            match recipes.next() {
                Some(r) if r.members.len() == gzip.members.len() => {
                    *gzip = r;
                    true
                }
                _ => false,
            }
        }
        Node::Tar(t) => t
            .members
            .iter_mut()
            .filter_map(|m| m.data.as_mut())
            .chain(t.after.as_deref_mut())
            .all(|n| put_recipes(n, recipes)),
    }
}

fn is_broken_pipe(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.kind() == io::ErrorKind::BrokenPipe,
        _ => false,
    }
}
