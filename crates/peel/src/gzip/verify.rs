//! Choosing and proving an exact method: candidates, the probe on a prefix, and the streaming
//! comparison of a recompression with the original deflate bytes.

use std::io;
use std::time::{Duration, Instant};

use super::gnu::GnuDeflate;
use super::zlib::ZlibDeflate;
use super::{GzipOptions, Method};

/// A piece of one member: deflate bytes as read and the plain bytes they decoded to.
pub(crate) struct Chunk {
    pub deflate: Vec<u8>,
    pub plain: Vec<u8>,
}

/// A deterministic encoder that may have produced the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Candidate {
    Zlib { level: u8, mem_level: u8 },
    Gnu { level: u8 },
}

impl Candidate {
    pub(crate) fn method(self) -> Method {
        match self {
            Candidate::Zlib { level, mem_level } => Method::Zlib { level, mem_level },
            Candidate::Gnu { level } => Method::GnuGzip { level },
        }
    }

    pub(crate) fn start(self) -> io::Result<Encoder> {
        Ok(match self {
            Candidate::Zlib { level, mem_level } => {
                Encoder::Zlib(ZlibDeflate::new(level, mem_level)?)
            }
            Candidate::Gnu { level } => Encoder::Gnu(GnuDeflate::new(level)?),
        })
    }
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Candidate::Zlib { level, mem_level } => {
                write!(f, "zlib level {level} memLevel {mem_level}")
            }
            Candidate::Gnu { level } => write!(f, "gzip -{level}"),
        }
    }
}

/// A running encoder of either kind.
pub(crate) enum Encoder {
    Zlib(ZlibDeflate),
    Gnu(GnuDeflate),
}

impl Encoder {
    /// Compresses `plain`, appending final output bytes to `out`.
    pub(crate) fn write(&mut self, plain: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Encoder::Zlib(z) => z.write(plain, out),
            Encoder::Gnu(g) => g.write(plain, out),
        }
    }

    /// Ends the stream, appending the rest of the deflate body to `out`.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Encoder::Zlib(z) => z.finish(out),
            Encoder::Gnu(g) => g.finish(out),
        }
    }
}

/// Levels in the order to try them, most likely first, from the header's XFL byte: zlib and GNU
/// gzip write 2 for level 9 and 4 for level 1; everything else writes 0 (levels 2..8).
fn level_order(xfl: u8, gnu: bool) -> [u8; 9] {
    match xfl {
        2 => [9, 8, 7, 6, 5, 4, 3, 2, 1],
        4 => [1, 2, 3, 4, 5, 6, 7, 8, 9],
        // zlib's default is 6 and pg_dump uses 4; Discourse runs `gzip -5`.
        _ if gnu => [6, 5, 4, 7, 8, 3, 2, 1, 9],
        _ => [6, 4, 5, 7, 8, 3, 2, 1, 9],
    }
}

/// The exact deterministic candidates for a member, in the order to try them.
///
/// zlib with memLevel 9 is GNU gzip without gzip's early block flush (same 32 K symbol buffer),
/// so the two often agree on a prefix and sometimes on a whole member. memLevel 9 is rare among
/// zlib users (pg_dump, Ruby and Python use 8) while `gzip -8`/`-9` is common, so when both fit, GNU
/// gzip should win: memLevel 9 comes last.
pub(crate) fn candidates(xfl: u8, opts: &GzipOptions) -> Vec<Candidate> {
    let mut out = Vec::new();
    let zlib = |out: &mut Vec<Candidate>, mem_level| {
        for level in level_order(xfl, false) {
            out.push(Candidate::Zlib { level, mem_level });
        }
    };
    if opts.zlib {
        zlib(&mut out, 8);
    }
    if opts.gnu_gzip {
        for level in level_order(xfl, true) {
            out.push(Candidate::Gnu { level });
        }
    }
    if opts.zlib {
        zlib(&mut out, 9);
    }
    out
}

/// Compares a recompressed stream with the original as both arrive, in any interleaving.
#[derive(Default)]
pub(crate) struct Comparator {
    /// Bytes of one side not yet matched by the other side.
    pending: Vec<u8>,
    start: usize,
    pending_is_original: bool,
    /// Bytes known equal so far.
    pub matched: u64,
}

/// Where two streams first differ.
#[derive(Debug)]
pub(crate) struct Divergence {
    /// Offset in the deflate body of the first differing byte.
    pub at: u64,
}

impl Comparator {
    pub(crate) fn original(&mut self, data: &[u8]) -> Result<(), Divergence> {
        self.push(data, true)
    }

    pub(crate) fn produced(&mut self, data: &[u8]) -> Result<(), Divergence> {
        self.push(data, false)
    }

    fn push(&mut self, mut data: &[u8], is_original: bool) -> Result<(), Divergence> {
        if self.start < self.pending.len() && self.pending_is_original != is_original {
            let pending = &self.pending[self.start..];
            let n = pending.len().min(data.len());
            if let Some(i) = first_difference(&pending[..n], &data[..n]) {
                return Err(Divergence {
                    at: self.matched + i as u64,
                });
            }
            self.matched += n as u64;
            self.start += n;
            data = &data[n..];
        }
        if self.start == self.pending.len() {
            self.pending.clear();
            self.start = 0;
        } else if self.start > self.pending.len() / 2 && self.start > 1 << 20 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
        if !data.is_empty() {
            self.pending_is_original = is_original;
            self.pending.extend_from_slice(data);
        }
        Ok(())
    }

    /// Both streams ended: they must have had the same length.
    pub(crate) fn finish(&self) -> Result<(), Divergence> {
        if self.start < self.pending.len() {
            return Err(Divergence { at: self.matched });
        }
        Ok(())
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    // Compare in blocks first: the equal case is the hot one.
    let mut off = 0;
    for (x, y) in a.chunks(4096).zip(b.chunks(4096)) {
        if x != y {
            return x.iter().zip(y).position(|(p, q)| p != q).map(|i| off + i);
        }
        off += x.len();
    }
    None
}

/// What a candidate did on the probe.
#[derive(Debug)]
pub(crate) enum Probe {
    /// The whole member was in the probe and the candidate reproduced it exactly.
    Exact,
    /// The candidate agrees with the original as far as it can be judged on a prefix; `score` is
    /// how many deflate bytes agreed.
    Consistent { score: u64 },
    /// The candidate's output differs from the original (final).
    Rejected { reason: String },
}

/// Plain bytes fed per write during a probe: small enough that a wrong candidate is stopped soon
/// after its first block.
const PROBE_STEP: usize = 64 * 1024;

/// Tries `candidate` on the member's first `plain` bytes, which decode from `deflate`.
/// `complete` says whether that is the whole member.
pub(crate) fn probe(candidate: Candidate, plain: &[u8], deflate: &[u8], complete: bool) -> Probe {
    let mut enc = match candidate.start() {
        Ok(e) => e,
        Err(e) => {
            return Probe::Rejected {
                reason: e.to_string(),
            }
        }
    };
    let mut out = Vec::new();
    // Bytes an encoder emits before it has seen the end of its input are final, so any difference
    // there rules the candidate out at once.
    for piece in plain.chunks(PROBE_STEP) {
        if let Err(e) = enc.write(piece, &mut out) {
            return Probe::Rejected {
                reason: e.to_string(),
            };
        }
        let n = out.len().min(deflate.len());
        if let Some(i) = first_difference(&out[..n], &deflate[..n]) {
            return Probe::Rejected {
                reason: format!("differs at deflate byte {i}"),
            };
        }
        if complete && out.len() > deflate.len() {
            return Probe::Rejected {
                reason: format!("longer than the original ({} bytes)", deflate.len()),
            };
        }
    }
    let fed_matched = out.len().min(deflate.len()) as u64;
    if let Err(e) = enc.finish(&mut out) {
        return Probe::Rejected {
            reason: e.to_string(),
        };
    }
    if complete {
        return match first_difference(&out, deflate) {
            None if out.len() == deflate.len() => Probe::Exact,
            None => Probe::Rejected {
                reason: format!(
                    "length {} differs from the original's {}",
                    out.len(),
                    deflate.len()
                ),
            },
            Some(i) => Probe::Rejected {
                reason: format!("differs at deflate byte {i}"),
            },
        };
    }
    // On a prefix everything before the candidate's last (final) block must agree; that block
    // holds at most one symbol buffer's worth.
    let n = out.len().min(deflate.len());
    let common = first_difference(&out[..n], &deflate[..n]).unwrap_or(n);
    if common + LAST_BLOCK_SLACK < out.len() {
        return Probe::Rejected {
            reason: format!("differs at deflate byte {common}"),
        };
    }
    Probe::Consistent {
        score: (common as u64).max(fed_matched),
    }
}

/// How many bytes of a candidate's output on a prefix may differ from the original at its end:
/// the final block it writes there, at most 32 K symbols (zlib memLevel 9 and GNU gzip); 14 to
/// 17 KiB on SQL text. A larger difference is a real divergence.
const LAST_BLOCK_SLACK: usize = 64 * 1024;

/// Where the proof thread's time went.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProofTime {
    /// Recompressing and comparing.
    pub busy: Duration,
    /// Waiting for the next chunk.
    pub idle: Duration,
}

/// Plain bytes after which undecided candidates stop running side by side.
pub(crate) const SIDE_BY_SIDE_LIMIT: u64 = 256 << 20;

/// Recompresses the plain side of `chunks` with each of `candidates` and compares with their
/// deflate side, to the end of the member; returns the first candidate (in the given order) that
/// reproduces it all. Runs in a proof job's thread (`proof.rs`) next to the decompression.
///
/// Usually there is one candidate. There are several when the probe could not tell them apart
/// (data so compressible that the probe produced few bytes): they then run side by side and drop
/// out as they diverge. Encoders of one family can agree on such data for as long as it lasts (a
/// disk image of zeros), so after [`SIDE_BY_SIDE_LIMIT`] plain bytes only the first still in
/// agreement goes on; should it diverge later, the layer is stored.
pub(crate) fn verify_stream(
    candidates: Vec<Candidate>,
    chunks: impl Iterator<Item = Chunk>,
) -> (Result<Candidate, String>, ProofTime) {
    let mut time = ProofTime::default();
    let verdict = verify_timed(candidates, chunks, &mut time);
    (verdict, time)
}

fn verify_timed(
    candidates: Vec<Candidate>,
    mut chunks: impl Iterator<Item = Chunk>,
    time: &mut ProofTime,
) -> Result<Candidate, String> {
    struct Run {
        candidate: Candidate,
        enc: Encoder,
        cmp: Comparator,
    }
    fn step(run: &mut Run, deflate: &[u8], plain: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let candidate = run.candidate;
        let diverged = |d: Divergence| {
            format!(
                "{candidate} diverges from the original at deflate byte {}",
                d.at
            )
        };
        out.clear();
        run.cmp.original(deflate).map_err(diverged)?;
        run.enc
            .write(plain, out)
            .map_err(|e| format!("{candidate}: {e}"))?;
        run.cmp.produced(out).map_err(diverged)
    }
    let mut failures = Vec::new();
    let mut runs = Vec::new();
    for candidate in candidates {
        match candidate.start() {
            Ok(enc) => runs.push(Run {
                candidate,
                enc,
                cmp: Comparator::default(),
            }),
            Err(e) => failures.push(format!("{candidate}: {e}")),
        }
    }
    let mut out = Vec::new();
    let mut plain_seen = 0u64;
    loop {
        let waiting = Instant::now();
        let Some(chunk) = chunks.next() else { break };
        let started = Instant::now();
        time.idle += started - waiting;
        plain_seen += chunk.plain.len() as u64;
        if plain_seen > SIDE_BY_SIDE_LIMIT {
            runs.truncate(1);
        }
        runs.retain_mut(
            |run| match step(run, &chunk.deflate, &chunk.plain, &mut out) {
                Ok(()) => true,
                Err(why) => {
                    failures.push(why);
                    false
                }
            },
        );
        time.busy += started.elapsed();
        if runs.is_empty() {
            return Err(failures.join("; "));
        }
    }
    let started = Instant::now();
    let verdict = finish_runs(
        runs.into_iter().map(|r| (r.candidate, r.enc, r.cmp)),
        failures,
    );
    time.busy += started.elapsed();
    verdict
}

/// Ends each remaining run in order; the first whose whole output matches wins.
fn finish_runs(
    runs: impl Iterator<Item = (Candidate, Encoder, Comparator)>,
    mut failures: Vec<String>,
) -> Result<Candidate, String> {
    let mut out = Vec::new();
    for (candidate, mut enc, mut cmp) in runs {
        out.clear();
        let finished = enc
            .finish(&mut out)
            .map_err(|e| format!("{candidate}: {e}"))
            .and_then(|()| {
                cmp.produced(&out).map_err(|d| {
                    format!(
                        "{candidate} diverges from the original at deflate byte {}",
                        d.at
                    )
                })
            })
            .and_then(|()| {
                cmp.finish().map_err(|d| {
                    format!(
                        "{candidate} output and the original differ in length after {} equal bytes",
                        d.at
                    )
                })
            });
        match finished {
            Ok(()) => return Ok(candidate),
            Err(why) => failures.push(why),
        }
    }
    Err(failures.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `a` as the original and `b` as the recompression, in pieces of the given sizes,
    /// alternating sides.
    fn compare(a: &[u8], b: &[u8], piece_a: usize, piece_b: usize) -> Result<(), Divergence> {
        let mut cmp = Comparator::default();
        let (mut ia, mut ib) = (a.chunks(piece_a), b.chunks(piece_b));
        loop {
            let (x, y) = (ia.next(), ib.next());
            if x.is_none() && y.is_none() {
                return cmp.finish();
            }
            if let Some(x) = x {
                cmp.original(x)?;
            }
            if let Some(y) = y {
                cmp.produced(y)?;
            }
        }
    }

    #[test]
    fn comparator_finds_the_first_difference_whatever_the_interleaving() {
        let a: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (pa, pb) in [(1, 1), (7, 3000), (65536, 5), (100_000, 100_000)] {
            assert!(compare(&a, &a, pa, pb).is_ok());
            let mut b = a.clone();
            b[54_321] ^= 1;
            assert_eq!(compare(&a, &b, pa, pb).unwrap_err().at, 54_321);
            assert_eq!(compare(&a, &a[..99_999], pa, pb).unwrap_err().at, 99_999);
            assert_eq!(compare(&a[..99_000], &a, pa, pb).unwrap_err().at, 99_000);
        }
    }

    #[test]
    fn candidates_follow_the_xfl_hint() {
        let opts = GzipOptions::default();
        assert_eq!(
            candidates(2, &opts)[0],
            Candidate::Zlib {
                level: 9,
                mem_level: 8
            }
        );
        assert_eq!(
            candidates(4, &opts)[0],
            Candidate::Zlib {
                level: 1,
                mem_level: 8
            }
        );
        let all = candidates(0, &opts);
        assert_eq!(all.len(), 27);
        assert_eq!(
            all[1],
            Candidate::Zlib {
                level: 4,
                mem_level: 8
            }
        );
        assert_eq!(all[9], Candidate::Gnu { level: 6 });
        assert_eq!(all[10], Candidate::Gnu { level: 5 });
        assert_eq!(
            all[18],
            Candidate::Zlib {
                level: 6,
                mem_level: 9
            }
        );
        let no_zlib = candidates(0, &opts.clone().without(super::super::MethodKind::Zlib));
        assert!(no_zlib.iter().all(|c| matches!(c, Candidate::Gnu { .. })));
    }
}
