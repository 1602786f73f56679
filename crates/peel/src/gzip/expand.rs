//! Expanding a gzip file member by member: decompress, choose the method on a probe prefix,
//! prove it over the whole member (see the module docs of `gzip/mod.rs`).

use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use super::inflate::Inflater;
use super::source::Source;
use super::verify::{self, Chunk, Probe};
use super::{
    gzip_version, header, preflate, zlib_version, GzipOptions, GzipRecipe, GzipReport, GzipTiming,
    MemberRecipe, MemberReport, Method, MethodKind, STEP_PLAIN,
};
use crate::error::{Error, Result};

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
