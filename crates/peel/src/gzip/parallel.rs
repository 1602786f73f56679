//! Rebuilding a gzip stream of several members with the members recompressed side by side
//! (`RebuildOptions::parallel_jobs` at once), written in order by a thread of their own.
//!
//! The plain content comes from one stream, in order: this thread reads it and hands each
//! member's share to that member's job through a channel, then goes on to the next member while
//! the job compresses. Plain bytes handed out and not yet read, and compressed output waiting
//! for its turn, are both bounded by `RebuildOptions::buffer_cap` (see `crate::ordered` for why
//! that cannot deadlock). A member's errors name it exactly as on the sequential path: the job
//! runs the same `rebuild_member`, and this thread passes on a read error or the early end of
//! the plain content to the member it was reading for.

use std::io::{self, Read, Write};
use std::sync::mpsc::{channel, Receiver, Sender};

use super::rebuild::{expect_end, rebuild_member, write_error};
use super::GzipRecipe;
use crate::error::{Error, Result};
use crate::options::RebuildOptions;
use crate::ordered::Ordered;

/// Plain bytes handed to a job per message.
const PIECE: usize = 256 * 1024;

/// Like [`super::rebuild()`], with up to `opts.parallel_jobs` members recompressed at once.
pub fn rebuild_with(
    recipe: &GzipRecipe,
    plain: &mut (dyn Read + Send),
    out: &mut (dyn Write + Send),
    location: &str,
    opts: &RebuildOptions,
) -> Result<()> {
    if opts.parallel_jobs == 0 || recipe.members.len() < 2 {
        return super::rebuild(recipe, plain, out, location);
    }
    let ordered = Ordered::new(opts.parallel_jobs, opts.buffer_cap);
    std::thread::scope(|s| {
        let _closer = ordered.closer();
        let writer = s.spawn(|| {
            // Done or failed (or panicking), the writer frees whoever waits for it.
            let _closer = ordered.closer();
            let write_err = |e| write_error(location, e);
            for _ in &recipe.members {
                match ordered.write_next(out, &write_err) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(e),
                    None => {
                        return Err(Error::Recipe(format!(
                            "{location}: the rebuild of its gzip members stopped early"
                        )))
                    }
                }
            }
            out.write_all(&recipe.trailing.0).map_err(write_err)
        });
        let handed = {
            let _end = ordered.ender();
            hand_out(recipe, plain, location, &ordered, s)
        };
        let written = writer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        // The writer's error comes first: it names the first member that failed, in order.
        written?;
        match handed? {
            true => expect_end(plain, location),
            false => Ok(()),
        }
    })
}

/// Begins one job per member and hands it its plain bytes; `Ok(false)` when it stopped early
/// (a job ended or the rebuild was closed: the writer reports why).
fn hand_out<'s, 'e: 's>(
    recipe: &'e GzipRecipe,
    plain: &mut (dyn Read + Send),
    location: &'e str,
    ordered: &'e Ordered,
    s: &'s std::thread::Scope<'s, 'e>,
) -> Result<bool> {
    for (i, m) in recipe.members.iter().enumerate() {
        let Some(mut job) = ordered.begin() else {
            return Ok(false);
        };
        let (tx, rx) = channel();
        s.spawn(move || {
            let mut input = JobInput {
                rx,
                ordered,
                piece: Vec::new(),
                at: 0,
            };
            let result = rebuild_member(i, m, &mut input, &mut job, location);
            job.finish(result);
        });
        if !feed(m.plain_size, plain, &tx, ordered) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads `size` plain bytes and sends them to a job; `false` when it stopped early (the job
/// has been told why: a read error is sent on, an early end closes the channel).
fn feed<'o>(
    size: u64,
    plain: &mut (dyn Read + Send),
    tx: &Sender<io::Result<Piece<'o>>>,
    ordered: &'o Ordered,
) -> bool {
    let mut left = size;
    while left > 0 {
        let want = left.min(PIECE as u64) as usize;
        if !ordered.take_plain(want) {
            return false;
        }
        let mut piece = vec![0u8; want];
        let got = loop {
            match plain.read(&mut piece) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let n = match got {
            Ok(0) => {
                ordered.give_plain(want);
                return false;
            }
            Ok(n) => n,
            Err(e) => {
                ordered.give_plain(want);
                let _ = tx.send(Err(e));
                return false;
            }
        };
        ordered.give_plain(want - n);
        piece.truncate(n);
        let piece = Piece {
            data: piece,
            ordered,
        };
        if tx.send(Ok(piece)).is_err() {
            // The job ended early (its error is in its slot); the piece gave its bytes back.
            return false;
        }
        left -= n as u64;
    }
    true
}

/// A job's plain input: the pieces sent to it, counted out of the plain budget as they are read.
struct JobInput<'o> {
    rx: Receiver<io::Result<Piece<'o>>>,
    ordered: &'o Ordered,
    piece: Vec<u8>,
    at: usize,
}

impl Read for JobInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            match self.rx.recv() {
                Ok(Ok(mut piece)) => {
                    self.piece = std::mem::take(&mut piece.data);
                    self.ordered.give_plain(self.piece.len());
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The sender is gone: the member's plain content ends here.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Plain bytes on their way to a job: counted in the plain budget until read, or until dropped
/// unread (a job that ended early, a channel dropped with pieces in it).
struct Piece<'o> {
    data: Vec<u8>,
    ordered: &'o Ordered,
}

impl Drop for Piece<'_> {
    fn drop(&mut self) {
        self.ordered.give_plain(self.data.len());
    }
}
