//! Expanding a gzip file member by member: each member is decompressed on the calling thread,
//! its plain bytes written to the caller as they appear, while a proof job (`proof.rs`) proves
//! its method on a thread of its own. [`decompress`] returns once the input is read, with the
//! proofs possibly still running; [`Unproven::prove`] waits for them, in member order.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inflate::Inflater;
use super::proof::{Job, Proofs, Proven};
use super::source::Source;
use super::verify::Chunk;
use super::{
    gzip_version, header, zlib_version, GzipOptions, GzipRecipe, GzipReport, GzipTiming,
    MemberRecipe, MemberReport, Method, MethodKind, STEP_PLAIN,
};
use crate::error::{Error, Result};
use crate::recipe::Bytes;

/// Reads a whole gzip file (one or more members, then optional trailing bytes) from `input`,
/// writes the concatenated decompressed content of all members to `plain`, and proves that each
/// member's deflate body is reproduced exactly by the chosen method (one member after another).
///
/// On [`Error::NotReproducible`] `plain` may already have received data; the caller re-reads the
/// input and stores the layer. `location` names the layer in errors.
pub fn expand(
    input: &mut (dyn Read + Send),
    plain: &mut (dyn Write + Send),
    opts: &GzipOptions,
    location: &str,
) -> Result<(GzipRecipe, GzipReport)> {
    decompress(input, plain, opts, location, &Proofs::sequential())?.prove()
}

/// A gzip file read to its end, its members' proofs started (and with a sequential [`Proofs`],
/// finished).
pub(crate) struct Unproven {
    location: String,
    members: Vec<UnprovenMember>,
    trailing: Vec<u8>,
    /// Reading, decompressing and writing downstream; the proofs add theirs in [`Self::prove`].
    timing: GzipTiming,
}

struct UnprovenMember {
    index: usize,
    /// Offset of the member's header in the layer.
    start: u64,
    header: Vec<u8>,
    crc: u32,
    plain_size: u64,
    deflate_size: u64,
    job: Arc<Job>,
}

impl UnprovenMember {
    /// Waits for the member's proof; a member no method reproduces is
    /// [`Error::NotReproducible`], naming the member.
    fn outcome(&self, layer: &str) -> Result<Proven> {
        let not_reproducible = |reason: String| Error::NotReproducible {
            location: format!(
                "{layer} (gzip member {} at byte {})",
                self.index, self.start
            ),
            reason,
        };
        let proven = self
            .job
            .wait()
            .clone()
            .map_err(|f| not_reproducible(f.reason))?;
        if proven
            .preflate_decoded
            .is_some_and(|d| d != (self.crc, self.plain_size))
        {
            return Err(not_reproducible(
                "preflate-rs decoded different plain data than zlib".to_owned(),
            ));
        }
        Ok(proven)
    }
}

impl Unproven {
    /// Where the time of reading, decompressing and writing downstream went.
    pub(crate) fn timing(&self) -> GzipTiming {
        self.timing
    }

    /// The recipe with a stand-in method for every member, until [`Self::prove`] gives the real
    /// one (the layer puts its node in place meanwhile).
    pub(crate) fn placeholder(&self) -> GzipRecipe {
        GzipRecipe {
            members: self
                .members
                .iter()
                .map(|m| MemberRecipe {
                    header: Bytes(m.header.clone()),
                    plain_size: m.plain_size,
                    deflate_size: m.deflate_size,
                    method: Method::Zlib {
                        level: 0,
                        mem_level: 0,
                    },
                })
                .collect(),
            trailing: Bytes(self.trailing.clone()),
        }
    }

    /// Waits for every member's proof, in member order; the first member no method reproduces
    /// makes the layer [`Error::NotReproducible`].
    pub(crate) fn prove(self) -> Result<(GzipRecipe, GzipReport)> {
        let mut timing = self.timing;
        let mut members = Vec::new();
        let mut reports = Vec::new();
        for m in self.members {
            let p = m.outcome(&self.location)?;
            timing.probe += p.probe;
            timing.proof += p.proof;
            timing.proof_idle += p.proof_idle;
            let (level, mem_level, corrections_size) = match &p.method {
                Method::Zlib { level, mem_level } => (Some(*level), Some(*mem_level), 0),
                Method::GnuGzip { level } => (Some(*level), None, 0),
                Method::Preflate { chunks } => (
                    None,
                    None,
                    chunks.iter().map(|c| c.corrections.0.len() as u64).sum(),
                ),
            };
            reports.push(MemberReport {
                method: p.method.kind(),
                level,
                mem_level,
                plain_size: m.plain_size,
                deflate_size: m.deflate_size,
                corrections_size,
                tries: p.tries,
            });
            members.push(MemberRecipe {
                header: Bytes(m.header),
                plain_size: m.plain_size,
                deflate_size: m.deflate_size,
                method: p.method,
            });
        }
        let uses = |k: MethodKind| members.iter().any(|m: &MemberRecipe| m.method.kind() == k);
        let report = GzipReport {
            trailing_size: self.trailing.len() as u64,
            gzip_version: if uses(MethodKind::GnuGzip) {
                gzip_version()
            } else {
                None
            },
            zlib_version: uses(MethodKind::Zlib).then(zlib_version),
            members: reports,
            timing,
        };
        Ok((
            GzipRecipe {
                members,
                trailing: Bytes(self.trailing),
            },
            report,
        ))
    }
}

/// Reads a whole gzip file from `input`, writing the concatenated content of its members to
/// `plain`, and starts each member's proof in `proofs`. With a sequential `proofs`, a member no
/// method reproduces ends the layer at once ([`Error::NotReproducible`]), as [`expand`] does.
pub(crate) fn decompress(
    input: &mut (dyn Read + Send),
    plain: &mut (dyn Write + Send),
    opts: &GzipOptions,
    location: &str,
    proofs: &Proofs,
) -> Result<Unproven> {
    let mut src = Source::new(input);
    let mut sink = PlainSink {
        out: plain,
        location,
        crc: crc32fast::Hasher::new(),
        size: 0,
        waited: Duration::ZERO,
    };
    let mut members = Vec::new();
    let mut timing = GzipTiming::default();
    match read_members(
        &mut src,
        &mut sink,
        opts,
        location,
        proofs,
        &mut members,
        &mut timing,
    ) {
        Ok(trailing) => Ok(Unproven {
            location: location.to_owned(),
            members,
            trailing,
            timing: GzipTiming {
                downstream: sink.waited,
                ..timing
            },
        }),
        Err(e) => {
            // Read one after another, an earlier member no method reproduces would have ended
            // the layer before this error: it is the cause.
            for m in &members {
                m.outcome(location)?;
            }
            Err(e)
        }
    }
}

/// Reads the members and the trailing bytes; returns the trailing bytes.
fn read_members(
    src: &mut Source<'_>,
    sink: &mut PlainSink<'_>,
    opts: &GzipOptions,
    location: &str,
    proofs: &Proofs,
    members: &mut Vec<UnprovenMember>,
    timing: &mut GzipTiming,
) -> Result<Vec<u8>> {
    loop {
        let member = read_member(src, sink, opts, location, members.len(), proofs, timing)?;
        members.push(member);
        let at = src.offset();
        let next = src.peek(2).map_err(|e| header::io_error(location, at, e))?;
        if next.is_empty() {
            return Ok(Vec::new());
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
        return Ok(rest);
    }
}

/// After a decompression error inside a member: whether its probe had already found that no
/// method reproduces it (decided, on the sequential path, before the error was reached).
fn decided_on_probe(job: &Job, start: u64, index: usize, location: &str) -> Option<Error> {
    match job.wait() {
        Err(f) if f.on_probe => Some(Error::NotReproducible {
            location: format!("{location} (gzip member {index} at byte {start})"),
            reason: f.reason.clone(),
        }),
        _ => None,
    }
}

/// Decompresses one member, handing its chunks to a new proof job, and checks its trailer.
fn read_member(
    src: &mut Source<'_>,
    sink: &mut PlainSink<'_>,
    opts: &GzipOptions,
    location: &str,
    index: usize,
    proofs: &Proofs,
    timing: &mut GzipTiming,
) -> Result<UnprovenMember> {
    let start = src.offset();
    let header = header::read(src, location)?;
    let mut inf = Inflater {
        dec: flate2::Decompress::new(false),
        ended: false,
        member_start: start,
        read: Duration::ZERO,
        decompress: Duration::ZERO,
    };
    let (job, tx) = Job::start(header.xfl, opts);
    // None once the job has stopped listening (it rejected every method early); the member is
    // still decompressed to its end.
    let mut tx = Some(tx);
    while !inf.ended {
        let mut deflate = Vec::new();
        let mut plain = Vec::with_capacity(STEP_PLAIN);
        let stepped = inf
            .step(src, location, &mut deflate, &mut plain)
            .and_then(|()| sink.write(&plain));
        if let Err(e) = stepped {
            drop(tx);
            return Err(decided_on_probe(&job, start, index, location).unwrap_or(e));
        }
        let chunk = Some(Chunk { deflate, plain });
        if tx.as_ref().is_some_and(|t| t.send(chunk).is_err()) {
            tx = None;
        }
    }
    // The end marker, for the job.
    if let Some(t) = tx {
        let _ = t.send(None);
    }
    timing.read += inf.read;
    timing.decompress += inf.decompress;
    let (crc, plain_size) = sink.take_member();
    let member = UnprovenMember {
        index,
        start,
        header: header.raw,
        crc,
        plain_size,
        deflate_size: inf.dec.total_in(),
        job,
    };
    proofs.seal(&member.job);
    if proofs.limit() == 0 {
        // One after another: a member no method reproduces ends the layer here.
        member.outcome(location)?;
    }
    // Read one after another, a member no method reproduces ends the layer before its trailer
    // is read: that is the cause, not a bad trailer.
    header::read_trailer(src, location, crc, plain_size)
        .map_err(|e| member.outcome(location).err().unwrap_or(e))?;
    Ok(member)
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
