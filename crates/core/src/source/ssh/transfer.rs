//! Copying one remote backup into the scratch folder over SFTP: hashed while it streams,
//! resumable, bandwidth-limited, with progress notes.
//!
//! The copy grows as `<scratch>/<name>.part` beside `<name>.part.json`, which records the remote
//! file it is a prefix of (size and modification time as listed). A run that was killed leaves
//! both; the next run that finds the same remote file continues at the partial file's length,
//! after checking that the last bytes it holds still equal the remote ones (a torn write or a
//! replaced file starts over instead). The SHA-256 is computed from the first byte on: when
//! resuming, the partial file is read and hashed again before new bytes are added, so the hash
//! never depends on a figure saved by an earlier process. A finished copy is renamed to `<name>`
//! and kept until a newer backup replaces it, so a run that finds nothing new transfers nothing.
//!
//! Reads are pipelined (several requests in flight) because one request per round trip would
//! cap the speed at the request size divided by the latency.

use std::collections::VecDeque;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use openssh_sftp_client::file::File as RemoteFile;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncSeek as _;

use super::Transfer;
use crate::repo::{ProgressBars, ProgressKind};

/// The command line's progress display, when it has one (stderr is a terminal).
static BARS: std::sync::OnceLock<std::sync::Arc<dyn ProgressBars>> = std::sync::OnceLock::new();

/// Shows copies as a progress bar from now on (the command line calls this when stderr is a
/// terminal; without it, progress is a log line every few seconds).
pub fn show_progress(bars: std::sync::Arc<dyn ProgressBars>) {
    let _ = BARS.set(bars);
}

/// Bytes asked for in one SFTP read request (below every server's limit).
const CHUNK: u64 = 64 * 1024;
/// Read requests in flight at once.
const IN_FLIGHT: usize = 16;
/// Bytes compared at the end of a partial copy before resuming it.
const OVERLAP: u64 = 64 * 1024;
/// How often a progress note is given.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// A read in flight: offset, length, and the task reading it.
type Pending = (u64, u64, tokio::task::JoinHandle<Result<Vec<u8>, String>>);

/// Which remote file a partial or finished copy belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    origin: String,
    size: u64,
    modified: u64,
}

/// What to copy.
pub struct Job<'a> {
    /// Remote path.
    pub remote: &'a str,
    /// `sftp://...` for messages.
    pub origin: &'a str,
    /// The backup's file name (the copy's name in `dir`).
    pub file_name: &'a str,
    /// Size and mtime as listed.
    pub size: u64,
    /// Modification time as listed.
    pub modified: SystemTime,
    /// The scratch folder of this source.
    pub dir: &'a Path,
    /// Bytes per second at most.
    pub limit: Option<u64>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: {what}: {e}", path.display())
}

/// Removes everything in `dir` that is not the copy (finished or partial) of `keep`: older
/// backups and abandoned partial copies.
fn clear_others(dir: &Path, keep: &str) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir, "cannot list", e))?;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = [
            keep.to_string(),
            format!("{keep}.json"),
            format!("{keep}.part"),
            format!("{keep}.part.json"),
        ];
        if !ours.iter().any(|o| *o == name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn read_stamp(path: &Path) -> Option<Stamp> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_stamp(path: &Path, stamp: &Stamp) -> Result<(), String> {
    let text = serde_json::to_vec(stamp).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| io_err(path, "cannot write", e))
}

/// Hashes the first `len` bytes of `file` (the partial copy, read again from its start).
fn hash_prefix(file: &mut std::fs::File, path: &Path, len: u64) -> Result<Sha256, String> {
    let mut h = Sha256::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_err(path, "cannot read", e))?;
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..want])
            .map_err(|e| io_err(path, "cannot read", e))?;
        h.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(h)
}

/// Reads `len` bytes at `offset` of the remote file, however many requests that takes.
async fn read_at(file: &RemoteFile, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut f = file.clone();
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let at = offset + out.len() as u64;
        Pin::new(&mut f)
            .start_seek(SeekFrom::Start(at))
            .map_err(|e| e.to_string())?;
        let want = (len - out.len() as u64).min(CHUNK) as u32;
        match f
            .read(want, BytesMut::with_capacity(want as usize))
            .await
            .map_err(|e| e.to_string())?
        {
            Some(b) if !b.is_empty() => out.extend_from_slice(&b),
            _ => break, // end of file: the caller checks the length
        }
    }
    Ok(out)
}

/// Copies the job's file into `job.dir`, returning the local path and the figures.
pub async fn fetch(
    file: RemoteFile,
    job: &Job<'_>,
    note: &mut dyn FnMut(&str),
) -> Result<(PathBuf, Transfer), String> {
    std::fs::create_dir_all(job.dir).map_err(|e| io_err(job.dir, "cannot create", e))?;
    // The copy is the forum's backup in plain (private messages, e-mail addresses): this
    // process's user only. It stays on purpose after a signal or a kill, for the resume.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(job.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(job.dir, "cannot make private", e))?;
    }
    clear_others(job.dir, job.file_name)?;
    let stamp = Stamp {
        origin: job.origin.to_string(),
        size: job.size,
        modified: secs(job.modified),
    };
    let started = Instant::now();
    let done = job.dir.join(job.file_name);
    let done_stamp = job.dir.join(format!("{}.json", job.file_name));
    let part = job.dir.join(format!("{}.part", job.file_name));
    let part_stamp = job.dir.join(format!("{}.part.json", job.file_name));

    // A finished copy of this very file from an earlier run: nothing to transfer.
    if read_stamp(&done_stamp).as_ref() == Some(&stamp)
        && std::fs::metadata(&done).map(|m| m.len()).ok() == Some(job.size)
    {
        let mut f = std::fs::File::open(&done).map_err(|e| io_err(&done, "cannot open", e))?;
        let h = hash_prefix(&mut f, &done, job.size)?;
        note(&format!(
            "{} was copied by an earlier run ({}); transferring nothing",
            job.file_name,
            done.display()
        ));
        return Ok((
            done,
            Transfer {
                bytes_transferred: 0,
                resumed_from: job.size,
                seconds: started.elapsed().as_secs_f64(),
                sha256: hex::encode(h.finalize()),
            },
        ));
    }
    let _ = std::fs::remove_file(&done);
    let _ = std::fs::remove_file(&done_stamp);

    let mut local = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&part)
        .map_err(|e| io_err(&part, "cannot open", e))?;
    let have = local
        .metadata()
        .map_err(|e| io_err(&part, "cannot stat", e))?
        .len();
    let mut start = 0;
    if have > 0 && have <= job.size && read_stamp(&part_stamp).as_ref() == Some(&stamp) {
        // The bytes at the end of the copy must still be the remote ones.
        let from = have - have.min(OVERLAP);
        let remote = read_at(&file, from, have - from).await?;
        let mut mine = vec![0u8; (have - from) as usize];
        local
            .seek(SeekFrom::Start(from))
            .and_then(|_| local.read_exact(&mut mine))
            .map_err(|e| io_err(&part, "cannot read", e))?;
        if remote == mine {
            start = have;
        } else {
            note(&format!(
                "the partial copy {} does not end like the remote file; starting over",
                part.display()
            ));
        }
    } else if have > 0 {
        note(&format!(
            "the partial copy {} belongs to another version of the file; starting over",
            part.display()
        ));
    }
    if start == 0 {
        local
            .set_len(0)
            .map_err(|e| io_err(&part, "cannot truncate", e))?;
    }
    write_stamp(&part_stamp, &stamp)?;
    let mut hash = hash_prefix(&mut local, &part, start)?;
    local
        .seek(SeekFrom::Start(start))
        .map_err(|e| io_err(&part, "cannot seek", e))?;
    if start > 0 {
        note(&format!(
            "resuming {} at byte {start} of {} (the first {start} bytes hashed again)",
            job.origin, job.size
        ));
    } else {
        note(&format!(
            "copying {} ({} bytes) into {}",
            job.origin,
            job.size,
            part.display()
        ));
    }

    // Small limits get small requests and no pipeline, so the rate stays even.
    let chunk = job.limit.map_or(CHUNK, |l| (l / 4).clamp(4096, CHUNK));
    let in_flight = job
        .limit
        .map_or(IN_FLIGHT, |l| ((l / chunk) as usize).clamp(1, IN_FLIGHT));
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut next = start;
    let mut pos = start;
    let copy_started = Instant::now();
    let mut last_note = Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut local);
    let bar = BARS.get().map(|b| {
        let bar = b.start(ProgressKind::Bytes, &format!("copying {}", job.file_name));
        bar.set_length(job.size);
        bar.inc(start);
        bar
    });
    while pos < job.size {
        while queue.len() < in_flight && next < job.size {
            let len = chunk.min(job.size - next);
            let f = file.clone();
            let at = next;
            queue.push_back((
                at,
                len,
                tokio::spawn(async move { read_at(&f, at, len).await }),
            ));
            next += len;
        }
        let Some((at, len, task)) = queue.pop_front() else {
            break;
        };
        let data = task
            .await
            .map_err(|e| format!("reading {}: {e}", job.origin))?
            .map_err(|e| format!("reading {} at byte {at}: {e}", job.origin))?;
        if (data.len() as u64) < len {
            return Err(format!(
                "{} ended at byte {} but was listed with {} bytes (changed while copying); the \
                 next run tries again",
                job.origin,
                at + data.len() as u64,
                job.size
            ));
        }
        out.write_all(&data)
            .map_err(|e| io_err(&part, "cannot write", e))?;
        hash.update(&data);
        pos += len;
        if let Some(bar) = &bar {
            bar.inc(len);
        }
        let moved = pos - start;
        if let Some(limit) = job.limit {
            let due = Duration::from_secs_f64(moved as f64 / limit as f64);
            let spent = copy_started.elapsed();
            if due > spent {
                // Keeps the written bytes visible to a reader (and a killed run's resume).
                out.flush().map_err(|e| io_err(&part, "cannot write", e))?;
                tokio::time::sleep(due - spent).await;
            }
        }
        if bar.is_none() && last_note.elapsed() >= PROGRESS_EVERY && pos < job.size {
            last_note = Instant::now();
            note(&progress(pos, job.size, moved, copy_started.elapsed()));
        }
    }
    out.flush().map_err(|e| io_err(&part, "cannot write", e))?;
    drop(out);
    if let Some(bar) = &bar {
        bar.finish();
    }
    local
        .sync_all()
        .map_err(|e| io_err(&part, "cannot sync", e))?;
    drop(local);
    // The size read must be the size listed, and the remote file must not have grown since.
    let now = file
        .clone()
        .metadata()
        .await
        .map_err(|e| format!("{}: cannot stat after copying: {e}", job.origin))?;
    if now.len() != Some(job.size) {
        return Err(format!(
            "{} changed while copying ({} bytes listed, now {:?}); the next run tries again",
            job.origin,
            job.size,
            now.len()
        ));
    }
    std::fs::rename(&part, &done).map_err(|e| io_err(&part, "cannot rename", e))?;
    let _ = std::fs::remove_file(&part_stamp);
    write_stamp(&done_stamp, &stamp)?;
    let transfer = Transfer {
        bytes_transferred: job.size - start,
        resumed_from: start,
        seconds: started.elapsed().as_secs_f64(),
        sha256: hex::encode(hash.finalize()),
    };
    note(&format!(
        "copied {}: {} bytes over the network in {:.1}s{}",
        job.file_name,
        transfer.bytes_transferred,
        transfer.seconds,
        if start > 0 {
            format!(" (resumed at byte {start})")
        } else {
            String::new()
        }
    ));
    Ok((done, transfer))
}

/// `received 120.0 MiB of 1.2 GiB (10%), 12.0 MiB/s, about 1m 30s left`.
fn progress(pos: u64, size: u64, moved: u64, spent: Duration) -> String {
    let rate = moved as f64 / spent.as_secs_f64().max(0.001);
    let left = Duration::from_secs(((size - pos) as f64 / rate.max(1.0)) as u64);
    format!(
        "received {} of {} ({}%), {}/s, about {} left",
        bytesize::ByteSize::b(pos),
        bytesize::ByteSize::b(size),
        pos * 100 / size.max(1),
        bytesize::ByteSize::b(rate as u64),
        humantime::format_duration(left)
    )
}
