//! Proof jobs: one per gzip member, each on a thread of its own, so that independent members
//! (the members of one gzip stream, and the gzip layers of different tar members, such as
//! format B's `db/NNNN.dat.gz`) are proven at the same time, up to the core count.
//!
//! A job receives the member's chunks (deflate bytes and the plain bytes they decoded to) from
//! the decompressing thread, collects the probe prefix, tries the candidates on it, and then
//! recompresses the whole member with the winner (or runs preflate-rs), comparing every byte.
//! Its outcome is only read later, by [`Job::wait`]; the decompressing thread goes on with the
//! next member meanwhile.
//!
//! # Why memory stays bounded
//! - A job holds at most the probe prefix ([`GzipOptions::probe_size`] plain bytes and their
//!   deflate bytes) plus [`CHANNEL_CHUNKS`] chunks of at most about 1 MiB in its channel: the
//!   decompressing thread blocks on the channel when a job falls behind.
//! - A job still being fed belongs to a gzip layer that is being decompressed right now: one per
//!   layer on the current path, at most `max_depth` of them.
//! - A job that has all its input ("sealed") is queued in [`Proofs`]; when more than
//!   [`Proofs::limit`] sealed jobs are still running, the thread that sealed the last one waits for
//!   the oldest. A sealed job needs nothing from anyone to finish, so this wait cannot deadlock.
//!   With a limit of 0 every member is proven before the next one is read (the sequential path).

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::verify::{self, Candidate, Chunk, Probe};
use super::{preflate, GzipOptions, Method};

/// A probe whose winner agreed on this many deflate bytes is conclusive.
const MIN_EVIDENCE: u64 = 32 * 1024;
/// Candidates the probe could not tell apart that are verified side by side, at most (all of
/// them, today). They can only tie on very compressible data, which every encoder gets through
/// fast, and the wrong ones drop out soon after it ends.
const MAX_PARALLEL_CANDIDATES: usize = 32;
/// Chunks in flight between the decompressing thread and a member's proof job.
pub(crate) const CHANNEL_CHUNKS: usize = 4;

/// What a member's proof found.
#[derive(Debug, Clone)]
pub(crate) struct Proven {
    pub method: Method,
    /// Candidates tried on the probe, plus preflate attempts.
    pub tries: u32,
    /// For preflate: the CRC32 and length of the plain text it decoded, to be compared with the
    /// member's.
    pub preflate_decoded: Option<(u32, u64)>,
    pub probe: Duration,
    pub proof: Duration,
    pub proof_idle: Duration,
}

/// Why no method reproduces a member.
#[derive(Debug, Clone)]
pub(crate) struct Failed {
    pub reason: String,
    /// Decided on the probe prefix alone (every candidate rejected, preflate not enabled): the
    /// sequential path decided this before reading the rest of the member, so a decompression
    /// error further on does not hide it.
    pub on_probe: bool,
}

/// A proof's outcome: the method, or why no method reproduces the member.
pub(crate) type Outcome = std::result::Result<Proven, Failed>;

/// What a proof job receives: the member's chunks, then `None` when the member ended. A channel
/// closed without `None` means the decompression failed.
pub(crate) type Message = Option<Chunk>;

/// One member's proof, running or done.
pub(crate) struct Job {
    handle: Mutex<Option<JoinHandle<Outcome>>>,
    outcome: OnceLock<Outcome>,
}

impl Job {
    /// Starts the proof of a member whose header has XFL `xfl`; returns the job and the sending
    /// end for the member's chunks (drop it right after the member's last chunk).
    pub(crate) fn start(xfl: u8, opts: &GzipOptions) -> (Arc<Job>, SyncSender<Message>) {
        let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
        let opts = opts.clone();
        let handle = std::thread::spawn(move || prove(rx, xfl, &opts));
        let job = Job {
            handle: Mutex::new(Some(handle)),
            outcome: OnceLock::new(),
        };
        (Arc::new(job), tx)
    }

    /// Waits for the outcome (the job must have been sent all of its chunks, or its sender
    /// dropped).
    pub(crate) fn wait(&self) -> &Outcome {
        self.outcome.get_or_init(|| {
            let handle = self
                .handle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .expect("a proof job is joined once");
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn running(&self) -> bool {
        self.outcome.get().is_none()
            && self
                .handle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|h| !h.is_finished())
    }
}

/// The sealed proof jobs of one expansion (see the module docs for the bound).
pub(crate) struct Proofs {
    limit: usize,
    sealed: Mutex<VecDeque<Arc<Job>>>,
}

impl Proofs {
    /// Every member proven before the next one is read.
    pub(crate) fn sequential() -> Self {
        Proofs::with_limit(0)
    }

    /// Up to `limit` sealed jobs running at once (0: sequential).
    pub(crate) fn with_limit(limit: usize) -> Self {
        Proofs {
            limit,
            sealed: Mutex::new(VecDeque::new()),
        }
    }

    /// How many sealed jobs may run at once; 0 for the sequential path.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Records that `job` has all its input; waits for the oldest sealed jobs while more than
    /// the limit are running.
    pub(crate) fn seal(&self, job: &Arc<Job>) {
        if self.limit == 0 {
            job.wait();
            return;
        }
        let mut oldest = Vec::new();
        {
            let mut sealed = self.sealed.lock().unwrap_or_else(|p| p.into_inner());
            sealed.retain(|j| j.running());
            sealed.push_back(Arc::clone(job));
            while sealed.len() > self.limit {
                oldest.extend(sealed.pop_front());
            }
        }
        // Outside the lock: other layers' threads may seal meanwhile.
        for j in oldest {
            j.wait();
        }
    }
}

/// The body of a proof job.
fn prove(messages: Receiver<Message>, xfl: u8, opts: &GzipOptions) -> Outcome {
    let failed = |reason: String, on_probe| Failed { reason, on_probe };
    let target = opts.probe_size.max(1);
    let mut deflate = Vec::new();
    let mut plain = Vec::new();
    let mut complete = false;
    while plain.len() < target {
        match messages.recv() {
            Ok(Some(c)) => {
                deflate.extend_from_slice(&c.deflate);
                plain.extend_from_slice(&c.plain);
            }
            Ok(None) => {
                complete = true;
                break;
            }
            Err(_) => return Err(failed("the decompression stopped".to_owned(), false)),
        }
    }
    // The member ended with the chunk that completed the probe when the end marker follows it.
    let next = if complete {
        None
    } else {
        match messages.recv() {
            Ok(None) => {
                complete = true;
                None
            }
            Ok(Some(c)) => Some(c),
            // The decompression failed after the probe prefix: the probe still decides.
            Err(_) => None,
        }
    };
    // Exactly `target` bytes (unless the member ended): how reads happened to split the input
    // must not change which method wins.
    let probed = if complete {
        &plain[..]
    } else {
        &plain[..target]
    };
    let probed_len = probed.len();
    let mut tries = 0u32;
    let mut rejected = Vec::new();
    let mut consistent = Vec::new();
    let mut chosen: Option<(Vec<Candidate>, bool)> = None;
    let probe_started = Instant::now();
    for c in verify::candidates(xfl, opts) {
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
    let probe = probe_started.elapsed();
    if chosen.is_none() && !consistent.is_empty() {
        // The prefix could not tell them apart (it compressed to a few bytes): let them run side
        // by side over the whole member; the wrong ones drop out where they diverge.
        consistent.truncate(MAX_PARALLEL_CANDIDATES);
        chosen = Some((consistent, false));
    }
    let proven = |method, tries, proof, proof_idle| Proven {
        method,
        tries,
        preflate_decoded: None,
        probe,
        proof,
        proof_idle,
    };
    let rest = std::iter::once(Chunk { deflate, plain })
        .chain(next)
        .chain(messages.into_iter().map_while(|m| m));
    match chosen {
        Some((c, true)) => Ok(proven(c[0].method(), tries, Duration::ZERO, Duration::ZERO)),
        Some((cs, false)) => {
            let (verdict, time) = verify::verify_stream(cs, rest);
            match verdict {
                Ok(c) => Ok(proven(c.method(), tries, time.busy, time.idle)),
                Err(reason) => Err(failed(
                    format!(
                        "{reason} (after agreeing on the first {probed_len} plain bytes); a \
                         retry without that method tries the next one"
                    ),
                    false,
                )),
            }
        }
        None if opts.preflate => {
            let started = Instant::now();
            let analysis = preflate::analyse(rest, opts.preflate_memory_cap)
                .map_err(|reason| failed(format!("{}; {reason}", summary(&rejected)), false))?;
            // preflate's waits are not measured apart: all of its thread's time counts.
            let mut p = proven(
                Method::Preflate {
                    chunks: analysis.chunks,
                },
                tries + 1,
                started.elapsed(),
                Duration::ZERO,
            );
            p.preflate_decoded = Some((analysis.crc, analysis.plain_size));
            Ok(p)
        }
        None => Err(failed(summary(&rejected), true)),
    }
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
