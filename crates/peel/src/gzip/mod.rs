//! The gzip layer (RFC 1952): header fields, members, trailer, trailing bytes, and the exact
//! methods that reproduce each member's deflate stream (zlib, GNU gzip, preflate).
//!
//! Interface used by `layer.rs` (keep it stable):
//! - [`expand`] reads a whole gzip file from `input`, writes the concatenated plain content of
//!   all members to `plain`, proves that each member's deflate body is reproduced by the chosen
//!   method, and returns the [`GzipRecipe`]. When no exact method reproduces a member it returns
//!   [`crate::Error::NotReproducible`], and the caller keeps the layer as stored bytes.
//! - [`rebuild`] reads the plain content from `plain` and writes the exact original gzip bytes.
//!
//! # How a method is chosen and proven
//! Each member is decompressed once, in the calling thread, and its plain bytes go to `plain` as
//! they appear. The first [`GzipOptions::probe_size`] plain bytes (and the deflate bytes they came
//! from) are also kept, and the deterministic candidates (bundled zlib at levels 1..9 with memLevel
//! 8, GNU gzip -1..-9, zlib with memLevel 9; levels ordered by the XFL byte) are tried on it. An
//! encoder's output before it sees the end of its input is final, so a wrong candidate is ruled
//! out as soon as its first block differs. A member that fits in the probe is proven there. For a
//! longer one the winning candidate then recompresses the whole member in a second thread while
//! this thread keeps decompressing (bounded channel between them), and every byte is compared.
//! When the prefix cannot tell candidates apart (very compressible data: a few output bytes for
//! megabytes of input), all those still in agreement run side by side in that thread and drop
//! out where they diverge; the first, in the order above, that reproduces the member wins (see
//! `verify::verify_stream` for the bound on how long they run side by side).
//!
//! If that full comparison diverges after the probe agreed (not seen in practice: the encoders are
//! deterministic and the probe covers megabytes), the input is no longer available here, so the
//! member is reported as [`crate::Error::NotReproducible`] and the caller stores the layer; the
//! reason names the candidate, and a caller may retry with [`GzipOptions::without`] it.
//! When no deterministic candidate agrees, preflate-rs analyses the member instead (see
//! `preflate.rs`; in one piece, so only members within [`GzipOptions::preflate_memory_cap`]).
//!
//! The header is kept byte for byte; the trailer (CRC32, ISIZE) is checked on expand and computed
//! again on rebuild. Bytes after the last member that do not start another member are kept as
//! trailing bytes, up to [`GzipOptions::max_trailing`].

mod gnu;
mod header;
mod preflate;
mod source;
mod verify;
mod zlib;

use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use gnu::gzip_version;
pub use preflate::PreflateChunk;
pub use zlib::zlib_version;

use crate::{Error, Result};
use source::Source;
use verify::{Candidate, Chunk, Probe};

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

/// Which methods [`expand`] may use, and its memory bounds.
#[derive(Debug, Clone)]
pub struct GzipOptions {
    /// Try the bundled zlib.
    pub zlib: bool,
    /// Try GNU gzip (needs `gzip` on PATH, for expand and for rebuild).
    pub gnu_gzip: bool,
    /// Try preflate-rs when neither matches.
    pub preflate: bool,
    /// Plain bytes of a member the candidates are tried on before one is verified over the
    /// whole member (several side by side when this prefix cannot tell them apart).
    pub probe_size: usize,
    /// Upper bound for preflate-rs, which analyses a member in one piece: members with more
    /// deflate bytes or more plain bytes than this are not reproducible (stored).
    pub preflate_memory_cap: usize,
    /// Bytes after the last member kept in the recipe; more means the layer is stored.
    pub max_trailing: usize,
}

impl Default for GzipOptions {
    fn default() -> Self {
        GzipOptions {
            zlib: true,
            gnu_gzip: true,
            preflate: true,
            probe_size: 4 << 20,
            preflate_memory_cap: 32 << 20,
            max_trailing: 1 << 20,
        }
    }
}

impl GzipOptions {
    /// These options without the methods of `kind` (to retry after a late divergence).
    pub fn without(mut self, kind: MethodKind) -> Self {
        match kind {
            MethodKind::Zlib => self.zlib = false,
            MethodKind::GnuGzip => self.gnu_gzip = false,
            MethodKind::Preflate => self.preflate = false,
        }
        self
    }
}

/// Parses the gzip member header at the start of `data` and returns its length in bytes and its
/// XFL byte. Errors name `location` and the byte offset. For tools and the fuzz targets; the
/// layer itself parses headers from its stream.
pub fn parse_header(data: &[u8], location: &str) -> Result<(usize, u8)> {
    let mut input: &[u8] = data;
    let mut src = Source::new(&mut input);
    let h = header::read(&mut src, location)?;
    Ok((h.raw.len(), h.xfl))
}

/// What [`expand`] did, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GzipReport {
    /// One entry per member, in file order.
    pub members: Vec<MemberReport>,
    /// Bytes after the last member.
    pub trailing_size: u64,
    /// First line of `gzip --version` when a member uses GNU gzip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip_version: Option<String>,
    /// The bundled zlib's version when a member uses zlib.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zlib_version: Option<String>,
    /// Where the time went (not serialized: it differs from run to run).
    #[serde(skip)]
    pub timing: GzipTiming,
}

/// Where the time of [`expand`] went, all members together (see [`crate::report::LayerProfile`]
/// for what each figure means).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GzipTiming {
    /// Reading compressed input, waiting for it included.
    pub read: Duration,
    /// Inflating.
    pub decompress: Duration,
    /// Trying candidates on the probe prefix.
    pub probe: Duration,
    /// Writing plain bytes to the caller (blocked while it catches up).
    pub downstream: Duration,
    /// The proof thread recompressing and comparing.
    pub proof: Duration,
    /// The proof thread waiting for chunks.
    pub proof_idle: Duration,
}

/// How one member was reproduced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// The method chosen.
    pub method: MethodKind,
    /// Compression level (zlib and GNU gzip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// zlib's memLevel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_level: Option<u8>,
    /// Decompressed size.
    pub plain_size: u64,
    /// Size of the deflate body.
    pub deflate_size: u64,
    /// Size of preflate's correction data (0 for the other methods).
    pub corrections_size: u64,
    /// Candidates tried on the probe, plus preflate attempts.
    pub tries: u32,
}

/// Plain bytes the decompressor produces per step at most (about; one step's output).
const STEP_PLAIN: usize = 1 << 20;
/// A probe whose winner agreed on this many deflate bytes is conclusive.
const MIN_EVIDENCE: u64 = 32 * 1024;
/// Candidates the probe could not tell apart that are verified side by side, at most (all of
/// them, today). They can only tie on very compressible data, which every encoder gets through
/// fast, and the wrong ones drop out soon after it ends.
const MAX_PARALLEL_CANDIDATES: usize = 32;
/// Chunks in flight between the decompressing and the verifying thread.
const CHANNEL_CHUNKS: usize = 4;

/// Reads a whole gzip file (one or more members, then optional trailing bytes) from `input`,
/// writes the concatenated decompressed content of all members to `plain`, and proves that each
/// member's deflate body is reproduced exactly by the chosen method.
///
/// On [`Error::NotReproducible`] `plain` may already have received data; the caller re-reads the
/// input and stores the layer. `location` names the layer in errors.
pub fn expand(
    input: &mut (dyn Read + Send),
    plain: &mut (dyn Write + Send),
    opts: &GzipOptions,
    location: &str,
) -> Result<(GzipRecipe, GzipReport)> {
    let mut src = Source::new(input);
    let mut sink = PlainSink {
        out: plain,
        location,
        crc: crc32fast::Hasher::new(),
        size: 0,
        waited: Duration::ZERO,
    };
    let mut members = Vec::new();
    let mut reports = Vec::new();
    let mut timing = GzipTiming::default();
    let trailing = loop {
        let (member, report) = expand_member(
            &mut src,
            &mut sink,
            opts,
            location,
            members.len(),
            &mut timing,
        )?;
        members.push(member);
        reports.push(report);
        let at = src.offset();
        let next = src.peek(2).map_err(|e| header::io_error(location, at, e))?;
        if next.is_empty() {
            break Vec::new();
        }
        if next.len() >= 2 && next[..2] == header::MAGIC {
            continue;
        }
        // Not another member: keep whatever follows as trailing bytes, if it is small.
        let mut rest = Vec::new();
        src.read_into(opts.max_trailing + 1, &mut rest)
            .map_err(|e| header::io_error(location, src.offset(), e))?;
        if rest.len() > opts.max_trailing {
            return Err(Error::NotReproducible {
                location: location.to_owned(),
                reason: format!(
                    "more than {} bytes follow the last gzip member (from byte {at})",
                    opts.max_trailing
                ),
            });
        }
        break rest;
    };
    let uses = |k: MethodKind| members.iter().any(|m: &MemberRecipe| m.method.kind() == k);
    let report = GzipReport {
        trailing_size: trailing.len() as u64,
        gzip_version: if uses(MethodKind::GnuGzip) {
            gzip_version()
        } else {
            None
        },
        zlib_version: uses(MethodKind::Zlib).then(zlib_version),
        members: reports,
        timing: GzipTiming {
            downstream: sink.waited,
            ..timing
        },
    };
    Ok((
        GzipRecipe {
            members,
            trailing: crate::recipe::Bytes(trailing),
        },
        report,
    ))
}

/// Writes plain bytes to the caller and keeps the current member's CRC32 and length.
struct PlainSink<'a> {
    out: &'a mut (dyn Write + Send),
    location: &'a str,
    crc: crc32fast::Hasher,
    size: u64,
    /// Time spent in writes to `out`.
    waited: Duration,
}

impl PlainSink<'_> {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.crc.update(data);
        self.size += data.len() as u64;
        let started = Instant::now();
        let written = self.out.write_all(data).map_err(|source| Error::Io {
            context: format!("{}: writing decompressed data", self.location),
            source,
        });
        self.waited += started.elapsed();
        written
    }

    /// CRC32 and length of the member just finished; resets for the next member.
    fn take_member(&mut self) -> (u32, u64) {
        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        (crc, std::mem::take(&mut self.size))
    }
}

/// Raw inflate of one member's deflate body, consuming exactly its bytes from the source.
struct Inflater {
    dec: flate2::Decompress,
    ended: bool,
    member_start: u64,
    /// Time spent reading input and inflating.
    read: Duration,
    decompress: Duration,
}

impl Inflater {
    /// Decompresses one buffer's worth: appends the deflate bytes consumed to `deflate` and the
    /// plain bytes produced to `plain`.
    fn step(
        &mut self,
        src: &mut Source<'_>,
        location: &str,
        deflate: &mut Vec<u8>,
        plain: &mut Vec<u8>,
    ) -> Result<()> {
        let at = src.offset();
        let started = Instant::now();
        let input = src
            .fill_buf()
            .map_err(|e| header::io_error(location, at, e))?;
        let read = started.elapsed();
        self.read += read;
        if input.is_empty() {
            return Err(Error::Format {
                location: format!("{location} at byte {at}"),
                problem: format!(
                    "truncated gzip member (starts at byte {}): input ends inside the compressed data",
                    self.member_start
                ),
            });
        }
        plain.reserve(STEP_PLAIN);
        let (in_before, out_before) = (self.dec.total_in(), self.dec.total_out());
        let status = self
            .dec
            .decompress_vec(input, plain, flate2::FlushDecompress::None)
            .map_err(|e| Error::Format {
                location: format!("{location} at byte {at}"),
                problem: format!(
                    "invalid deflate data in gzip member starting at byte {}: {e}",
                    self.member_start
                ),
            })?;
        self.decompress += started.elapsed() - read;
        let consumed = (self.dec.total_in() - in_before) as usize;
        let produced = self.dec.total_out() - out_before;
        deflate.extend_from_slice(&input[..consumed]);
        src.consume(consumed);
        if status == flate2::Status::StreamEnd {
            self.ended = true;
        } else if consumed == 0 && produced == 0 {
            return Err(Error::Format {
                location: format!("{location} at byte {at}"),
                problem: "deflate decoder made no progress".to_owned(),
            });
        }
        Ok(())
    }
}

fn expand_member(
    src: &mut Source<'_>,
    sink: &mut PlainSink<'_>,
    opts: &GzipOptions,
    location: &str,
    index: usize,
    timing: &mut GzipTiming,
) -> Result<(MemberRecipe, MemberReport)> {
    let member_start = src.offset();
    let header = header::read(src, location)?;
    let mut inf = Inflater {
        dec: flate2::Decompress::new(false),
        ended: false,
        member_start,
        read: Duration::ZERO,
        decompress: Duration::ZERO,
    };
    let mut deflate = Vec::new();
    let mut plain = Vec::new();
    let candidates = verify::candidates(header.xfl, opts);
    let mut tries = 0u32;
    let mut rejected = Vec::new();
    let target = opts.probe_size.max(1);
    while !inf.ended && plain.len() < target {
        let before = plain.len();
        inf.step(src, location, &mut deflate, &mut plain)?;
        sink.write(&plain[before..])?;
    }
    let complete = inf.ended;
    // Exactly `target` bytes (unless the member ended): how reads happened to split the input
    // must not change which method wins.
    let probed = if complete {
        &plain[..]
    } else {
        &plain[..target]
    };
    let probed_len = probed.len();
    let mut consistent = Vec::new();
    let mut chosen = None;
    let probe_started = Instant::now();
    for c in candidates {
        tries += 1;
        match verify::probe(c, probed, &deflate, complete) {
            Probe::Exact => chosen = Some((vec![c], true)),
            Probe::Consistent { score } if score >= MIN_EVIDENCE => chosen = Some((vec![c], false)),
            Probe::Consistent { .. } => consistent.push(c),
            Probe::Rejected { reason } => rejected.push(format!("{c}: {reason}")),
        }
        if chosen.is_some() {
            break;
        }
    }
    timing.probe += probe_started.elapsed();
    if chosen.is_none() && !consistent.is_empty() {
        // The prefix could not tell them apart (it compressed to a few bytes): let them run side
        // by side over the whole member; the wrong ones drop out where they diverge.
        consistent.truncate(MAX_PARALLEL_CANDIDATES);
        chosen = Some((consistent, false));
    }
    let member_location = || format!("{location} (gzip member {index} at byte {member_start})");
    let (method, preflate_tries) = match chosen {
        Some((c, true)) => (c[0].method(), 0),
        Some((cs, false)) => {
            let first = Chunk { deflate, plain };
            let ((verdict, proof), _) =
                stream_rest(src, &mut inf, sink, location, first, move |rx| {
                    verify::verify_stream(cs, rx)
                })?;
            timing.proof += proof.busy;
            timing.proof_idle += proof.idle;
            match verdict {
                Ok(c) => (c.method(), 0),
                Err(reason) => {
                    return Err(Error::NotReproducible {
                        location: member_location(),
                        reason: format!(
                            "{reason} (after agreeing on the first {probed_len} plain bytes); \
                             a retry without that method tries the next one"
                        ),
                    })
                }
            }
        }
        None if opts.preflate => {
            let cap = opts.preflate_memory_cap;
            let first = Chunk { deflate, plain };
            let started = Instant::now();
            let (verdict, sink_state) =
                stream_rest(src, &mut inf, sink, location, first, move |rx| {
                    preflate::analyse(rx, cap)
                })?;
            // preflate's waits are not measured apart: all of its thread's time counts.
            timing.proof += started.elapsed();
            let analysis = verdict.map_err(|reason| Error::NotReproducible {
                location: member_location(),
                reason: format!("{}; {reason}", summary(&rejected)),
            })?;
            if (analysis.crc, analysis.plain_size) != sink_state {
                return Err(Error::NotReproducible {
                    location: member_location(),
                    reason: "preflate-rs decoded different plain data than zlib".to_owned(),
                });
            }
            (
                Method::Preflate {
                    chunks: analysis.chunks,
                },
                1,
            )
        }
        None => {
            return Err(Error::NotReproducible {
                location: member_location(),
                reason: summary(&rejected),
            })
        }
    };
    timing.read += inf.read;
    timing.decompress += inf.decompress;
    let deflate_size = inf.dec.total_in();
    let (crc, plain_size) = sink.take_member();
    header::read_trailer(src, location, crc, plain_size)?;
    let (level, mem_level, corrections_size) = match &method {
        Method::Zlib { level, mem_level } => (Some(*level), Some(*mem_level), 0),
        Method::GnuGzip { level } => (Some(*level), None, 0),
        Method::Preflate { chunks } => (
            None,
            None,
            chunks.iter().map(|c| c.corrections.0.len() as u64).sum(),
        ),
    };
    let report = MemberReport {
        method: method.kind(),
        level,
        mem_level,
        plain_size,
        deflate_size,
        corrections_size,
        tries: tries + preflate_tries,
    };
    Ok((
        MemberRecipe {
            header: crate::recipe::Bytes(header.raw),
            plain_size,
            deflate_size,
            method,
        },
        report,
    ))
}

fn summary(rejected: &[String]) -> String {
    if rejected.is_empty() {
        return "no exact method is enabled".to_owned();
    }
    let shown: Vec<&str> = rejected.iter().take(4).map(String::as_str).collect();
    format!(
        "{} deterministic candidates differ ({}{})",
        rejected.len(),
        shown.join("; "),
        if rejected.len() > shown.len() {
            "; ..."
        } else {
            ""
        }
    )
}

/// Decompresses the rest of the member in this thread while `worker` checks the chunks (starting
/// with `first`) in another. Returns the worker's verdict and the member's (CRC32, length) so far.
fn stream_rest<T: Send>(
    src: &mut Source<'_>,
    inf: &mut Inflater,
    sink: &mut PlainSink<'_>,
    location: &str,
    first: Chunk,
    worker: impl FnOnce(Receiver<Chunk>) -> T + Send,
) -> Result<(T, (u32, u64))> {
    let (verdict, ()) = std::thread::scope(|s| -> Result<(T, ())> {
        let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
        let handle = s.spawn(move || worker(rx));
        let mut sending = tx.send(first).is_ok();
        let mut failure = None;
        while sending && !inf.ended {
            let mut deflate = Vec::new();
            let mut plain = Vec::with_capacity(STEP_PLAIN);
            if let Err(e) = inf
                .step(src, location, &mut deflate, &mut plain)
                .and_then(|()| sink.write(&plain))
            {
                failure = Some(e);
                break;
            }
            sending = tx.send(Chunk { deflate, plain }).is_ok();
        }
        drop(tx);
        let verdict = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let Some(e) = failure {
            return Err(e);
        }
        Ok((verdict, ()))
    })?;
    // The worker may finish before the last (empty) chunks; finish decompressing alone.
    while !inf.ended {
        let mut deflate = Vec::new();
        let mut plain = Vec::new();
        inf.step(src, location, &mut deflate, &mut plain)?;
        sink.write(&plain)?;
    }
    let crc = sink.crc.clone().finalize();
    Ok((verdict, (crc, sink.size)))
}

/// Reads the plain content from `plain`, writes the exact original gzip bytes to `out`.
///
/// GNU gzip members need `gzip` on PATH. `location` names the layer in errors.
pub fn rebuild(
    recipe: &GzipRecipe,
    plain: &mut (dyn Read + Send),
    out: &mut (dyn Write + Send),
    location: &str,
) -> Result<()> {
    let write_err = |source| Error::Io {
        context: format!("{location}: writing rebuilt gzip data"),
        source,
    };
    for (i, m) in recipe.members.iter().enumerate() {
        let at = || format!("{location} (gzip member {i})");
        out.write_all(&m.header.0).map_err(write_err)?;
        let mut crc = crc32fast::Hasher::new();
        let mut counting = CountingWriter {
            inner: &mut *out,
            count: 0,
        };
        match &m.method {
            Method::Zlib { .. } | Method::GnuGzip { .. } => {
                let candidate = match m.method {
                    Method::Zlib { level, mem_level } => Candidate::Zlib { level, mem_level },
                    Method::GnuGzip { level } => Candidate::Gnu { level },
                    Method::Preflate { .. } => unreachable!("matched above"),
                };
                recompress(candidate, m.plain_size, plain, &mut counting, &mut crc, &at)?;
            }
            Method::Preflate { chunks } => {
                let total: u64 = chunks.iter().map(|c| c.plain_size).sum();
                if total != m.plain_size {
                    return Err(Error::Recipe(format!(
                        "{}: preflate chunks cover {total} plain bytes, the member has {}",
                        at(),
                        m.plain_size
                    )));
                }
                preflate::rebuild_member(chunks, plain, &mut counting, &mut crc)
                    .map_err(|e| Error::Recipe(format!("{}: {e}", at())))?;
            }
        }
        if counting.count != m.deflate_size {
            return Err(Error::Recipe(format!(
                "{}: {} produced {} deflate bytes, the recipe says {}",
                at(),
                m.method,
                counting.count,
                m.deflate_size
            )));
        }
        out.write_all(&header::trailer(crc.finalize(), m.plain_size))
            .map_err(write_err)?;
    }
    out.write_all(&recipe.trailing.0).map_err(write_err)?;
    let mut extra = [0u8; 1];
    loop {
        match plain.read(&mut extra) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                return Err(Error::Recipe(format!(
                    "{location}: the plain data is longer than the gzip members hold"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Io {
                    context: format!("{location}: reading plain data"),
                    source,
                })
            }
        }
    }
}

struct CountingWriter<'a> {
    inner: &'a mut (dyn Write + Send),
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Compresses `size` bytes of `plain` with a deterministic encoder, writing the deflate body.
fn recompress(
    candidate: Candidate,
    size: u64,
    plain: &mut (dyn Read + Send),
    out: &mut CountingWriter<'_>,
    crc: &mut crc32fast::Hasher,
    at: &dyn Fn() -> String,
) -> Result<()> {
    let io = |what: &str, source| Error::Io {
        context: format!("{}: {what} ({candidate})", at()),
        source,
    };
    let mut enc = candidate
        .start()
        .map_err(|e| io("starting the encoder", e))?;
    let mut buf = vec![0u8; STEP_PLAIN];
    let mut produced = Vec::new();
    let mut left = size;
    while left > 0 {
        let want = (left.min(buf.len() as u64)) as usize;
        let n = match plain.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(Error::Recipe(format!(
                    "{}: the plain data ends {left} bytes before the member's end",
                    at()
                )))
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("reading plain data", e)),
        };
        left -= n as u64;
        crc.update(&buf[..n]);
        enc.write(&buf[..n], &mut produced)
            .map_err(|e| io("compressing", e))?;
        out.write_all(&produced).map_err(|e| io("writing", e))?;
        produced.clear();
    }
    enc.finish(&mut produced)
        .map_err(|e| io("compressing", e))?;
    out.write_all(&produced).map_err(|e| io("writing", e))?;
    Ok(())
}
