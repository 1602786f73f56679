//! The output of rebuild jobs that run side by side, written strictly in their order, in
//! bounded memory (issue 19: format B's `db/NNNN.dat.gz` members and the members of one gzip
//! stream are recompressed on every core at once, and the rebuilt file is still byte-identical).
//!
//! One thread (the scheduler) starts jobs in output order with [`Ordered::begin`]; each job
//! writes its output into its [`JobOut`] and ends with [`JobOut::finish`]; one writer thread takes
//! the outputs in that order with [`Ordered::write_next`] and writes them out.
//!
//! # Why memory stays bounded, and why nothing deadlocks
//! - At most `jobs` jobs run at once: [`Ordered::begin`] waits for a free place. A job that has
//!   finished no longer counts; its output waits in memory (within the cap below) for its turn.
//! - The job at the head (the oldest whose output is not all written) streams: it may hold at
//!   most [`HEAD_BYTES`] not yet written, then waits for the writer, which waits for nothing but
//!   the head. So a huge member holds about 1 MiB, however large it is.
//! - A job behind the head may add output only while all jobs together hold less than `cap`
//!   bytes; otherwise it waits until the writer drains some or it becomes the head. The head is
//!   never held back by the cap, so the head always progresses; when it ends, the next job
//!   becomes the head (and is woken). Every job is thus eventually at the head: no deadlock,
//!   whatever the sizes (one huge member followed by many small ones included).
//! - Plain content handed to jobs ahead of time (the members of one gzip stream, read from one
//!   stream in order) is bounded the same way: [`Ordered::take_plain`] waits while `cap` plain
//!   bytes are handed out and not yet read by their jobs. The jobs it waits for have all their
//!   plain input already (it is handed out in order), and the oldest of them is at the head or
//!   ahead of it, so it reads its input and frees room.
//! - [`Ordered::close`] (on an error, or when the writer is done) wakes everyone: writes and
//!   waits then fail at once, so the threads end and can be joined.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Output bytes the job at the head may hold before waiting for the writer.
pub(crate) const HEAD_BYTES: usize = 1 << 20;
/// Output bytes kept in one piece at most.
const PIECE: usize = 256 * 1024;
/// The smallest cap accepted: below it every write would be cut into tiny pieces.
const MIN_CAP: usize = 4096;

/// Jobs whose outputs are written in order (see the module docs).
pub(crate) struct Ordered {
    state: Mutex<State>,
    changed: Condvar,
    jobs: usize,
    cap: usize,
}

struct State {
    /// Jobs begun so far; the next one gets this number.
    begun: u64,
    /// The job whose output is being written; `slots[0]` is its slot.
    head: u64,
    slots: VecDeque<Slot>,
    running: usize,
    /// Output bytes held in all slots.
    held: usize,
    /// The most `held` has been (for the tests of the bound).
    #[cfg(test)]
    peak: usize,
    /// Plain bytes handed out and not yet read by their jobs.
    plain_held: usize,
    /// No job will begin any more.
    ended: bool,
    /// Everything stops: writes fail, waits end.
    closed: bool,
}

#[derive(Default)]
struct Slot {
    pieces: VecDeque<Vec<u8>>,
    bytes: usize,
    done: Option<Result<()>>,
}

impl Ordered {
    /// Up to `jobs` (at least 1) jobs at once, `cap` bytes held (see the module docs).
    pub(crate) fn new(jobs: usize, cap: usize) -> Self {
        Ordered {
            state: Mutex::new(State {
                begun: 0,
                head: 0,
                slots: VecDeque::new(),
                running: 0,
                held: 0,
                #[cfg(test)]
                peak: 0,
                plain_held: 0,
                ended: false,
                closed: false,
            }),
            changed: Condvar::new(),
            jobs: jobs.max(1),
            cap: cap.max(MIN_CAP),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until fewer than `jobs` jobs run, and begins the next one; `None` once closed.
    pub(crate) fn begin(&self) -> Option<JobOut<'_>> {
        let mut st = self.lock();
        while st.running >= self.jobs && !st.closed {
            st = self.wait(st);
        }
        if st.closed {
            return None;
        }
        let ticket = st.begun;
        st.begun += 1;
        st.running += 1;
        st.slots.push_back(Slot::default());
        Some(JobOut {
            ordered: self,
            ticket,
            result: None,
        })
    }

    /// Says that no job will begin any more (the writer then stops waiting for one).
    pub(crate) fn end(&self) {
        self.lock().ended = true;
        self.changed.notify_all();
    }

    /// Stops everything: jobs' writes fail, [`Ordered::begin`] and the waits return at once.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// A guard that closes when dropped, so that a scope of threads always ends (also when the
    /// writer returns early or panics).
    pub(crate) fn closer(&self) -> Closer<'_> {
        Closer(self, true)
    }

    /// A guard that calls [`Ordered::end`] when dropped, for the thread beginning the jobs (so
    /// the writer stops waiting for more also when that thread panics).
    pub(crate) fn ender(&self) -> Closer<'_> {
        Closer(self, false)
    }

    /// Writes the output of the job at the head to `out` as it comes, until it ends; returns
    /// the job's own result. `None` when no job is left (after [`Ordered::end`] or a close).
    pub(crate) fn write_next(
        &self,
        out: &mut dyn Write,
        write_error: &dyn Fn(io::Error) -> Error,
    ) -> Option<Result<()>> {
        let mut st = self.lock();
        loop {
            if st.head == st.begun {
                if st.ended || st.closed {
                    return None;
                }
                st = self.wait(st);
                continue;
            }
            let slot = st.slots.front_mut().expect("a slot for every job begun");
            if let Some(piece) = slot.pieces.pop_front() {
                slot.bytes -= piece.len();
                st.held -= piece.len();
                drop(st);
                self.changed.notify_all();
                if let Err(e) = out.write_all(&piece) {
                    return Some(Err(write_error(e)));
                }
                st = self.lock();
                continue;
            }
            if let Some(result) = slot.done.take() {
                st.slots.pop_front();
                st.head += 1;
                drop(st);
                // The next job is the head now: it may be waiting for room.
                self.changed.notify_all();
                return Some(result);
            }
            st = self.wait(st);
        }
    }

    /// Waits until `n` more plain bytes may be handed out, and counts them; `false` once
    /// closed. One piece is always allowed when nothing is held, whatever its size.
    pub(crate) fn take_plain(&self, n: usize) -> bool {
        let mut st = self.lock();
        while st.plain_held > 0 && st.plain_held + n > self.cap && !st.closed {
            st = self.wait(st);
        }
        if st.closed {
            return false;
        }
        st.plain_held += n;
        true
    }

    /// Gives back `n` plain bytes counted by [`Ordered::take_plain`] (read by their job, or
    /// never delivered).
    pub(crate) fn give_plain(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut st = self.lock();
        st.plain_held -= n;
        drop(st);
        self.changed.notify_all();
    }
}

/// Closes its [`Ordered`] (or, for [`Ordered::ender`], ends it) when dropped.
pub(crate) struct Closer<'o>(&'o Ordered, bool);

impl Drop for Closer<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.close();
        } else {
            self.0.end();
        }
    }
}

/// Where one job writes its output; [`JobOut::finish`] hands over its result.
pub(crate) struct JobOut<'o> {
    ordered: &'o Ordered,
    ticket: u64,
    result: Option<Result<()>>,
}

impl JobOut<'_> {
    /// Ends the job with `result` (what the writer returns when it reaches this job).
    pub(crate) fn finish(mut self, result: Result<()>) {
        self.result = Some(result);
    }
}

impl Drop for JobOut<'_> {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| {
            Err(Error::Recipe(
                "a rebuild job ended without a result".to_string(),
            ))
        });
        let o = self.ordered;
        let mut st = o.lock();
        let index = (self.ticket - st.head) as usize;
        st.slots[index].done = Some(result);
        st.running -= 1;
        drop(st);
        o.changed.notify_all();
    }
}

impl Write for JobOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let o = self.ordered;
        let mut st = o.lock();
        loop {
            if st.closed {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the rebuild stopped",
                ));
            }
            let index = (self.ticket - st.head) as usize;
            let room = if index == 0 {
                HEAD_BYTES.saturating_sub(st.slots[0].bytes)
            } else {
                o.cap.saturating_sub(st.held)
            };
            if room == 0 {
                st = o.wait(st);
                continue;
            }
            let n = buf.len().min(room).min(PIECE);
            let slot = &mut st.slots[index];
            match slot.pieces.back_mut() {
                Some(last) if last.len() + n <= PIECE => last.extend_from_slice(&buf[..n]),
                _ => slot.pieces.push_back(buf[..n].to_vec()),
            }
            slot.bytes += n;
            st.held += n;
            #[cfg(test)]
            {
                st.peak = st.peak.max(st.held);
            }
            let at_head = index == 0;
            drop(st);
            if at_head {
                // Only the writer waits for the head's output.
                o.changed.notify_all();
            }
            return Ok(n);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Job `i` writes `sizes[i]` bytes of the value `i` in pieces of `piece` bytes.
    fn run(jobs: usize, cap: usize, sizes: &[usize], piece: usize) -> (Vec<u8>, usize) {
        let ordered = Ordered::new(jobs, cap);
        let mut out = Vec::new();
        std::thread::scope(|s| {
            let _closer = ordered.closer();
            let o = &ordered;
            s.spawn(move || {
                for (i, &size) in sizes.iter().enumerate() {
                    let mut job = o.begin().expect("open");
                    s.spawn(move || {
                        let data = vec![i as u8; piece];
                        let mut left = size;
                        let mut result = Ok(());
                        while left > 0 && result.is_ok() {
                            let n = left.min(piece);
                            result = job.write_all(&data[..n]).map_err(|e| Error::Io {
                                context: format!("job {i}"),
                                source: e,
                            });
                            left -= n;
                        }
                        job.finish(result);
                    });
                }
                o.end();
            });
            let err = |e| Error::Io {
                context: "out".into(),
                source: e,
            };
            while let Some(r) = ordered.write_next(&mut out, &err) {
                r.unwrap();
            }
        });
        let peak = ordered.lock().peak;
        (out, peak)
    }

    fn expected(sizes: &[usize]) -> Vec<u8> {
        let mut v = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            v.extend(std::iter::repeat_n(i as u8, n));
        }
        v
    }

    #[test]
    fn a_huge_first_job_and_many_small_ones_stay_in_order_within_the_cap() {
        let mut sizes = vec![40 << 20];
        sizes.extend((0..200).map(|i| 1000 + i * 997));
        for (jobs, cap) in [(1, MIN_CAP), (2, MIN_CAP), (8, 64 * 1024), (8, 1 << 20)] {
            let (out, peak) = run(jobs, cap, &sizes, 100 * 1024);
            assert!(
                out == expected(&sizes),
                "{jobs} jobs, cap {cap}: output out of order"
            );
            assert!(
                peak <= cap + HEAD_BYTES,
                "{jobs} jobs, cap {cap}: {peak} bytes held at once"
            );
        }
    }

    #[test]
    fn a_failed_job_is_returned_in_its_turn_and_close_frees_the_others() {
        let ordered = Ordered::new(4, MIN_CAP);
        std::thread::scope(|s| {
            let _closer = ordered.closer();
            let o = &ordered;
            for i in 0..4u8 {
                let mut job = o.begin().unwrap();
                s.spawn(move || {
                    // Job 1 fails at once; jobs 2 and 3 block on the cap until closed.
                    let result = if i == 1 {
                        Err(Error::Recipe("job 1 failed".into()))
                    } else {
                        job.write_all(&[i; 100_000]).map_err(|e| Error::Io {
                            context: format!("job {i}"),
                            source: e,
                        })
                    };
                    job.finish(result);
                });
            }
            o.end();
            let err = |e| Error::Io {
                context: "out".into(),
                source: e,
            };
            let mut out = Vec::new();
            assert!(o.write_next(&mut out, &err).unwrap().is_ok());
            let second = o.write_next(&mut out, &err).unwrap().unwrap_err();
            assert_eq!(second.to_string(), "recipe: job 1 failed");
            assert_eq!(out, vec![0u8; 100_000]);
            std::thread::sleep(Duration::from_millis(50));
            // Leaving the scope closes: the jobs blocked on the cap end, and the scope joins.
        });
    }
}
