//! GNU gzip's deflate, driven through the real `gzip` binary.
//!
//! GNU gzip's encoder is not zlib's (different block splitting), and no crate reproduces it, so we
//! run `gzip -c -n -LEVEL` and keep only its deflate body: its own 10-byte header and 8-byte
//! trailer are dropped, because ours come from the recipe.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::OnceLock;

/// Length of the header `gzip -c -n` writes for data from stdin (no name, mtime 0).
const GZIP_HEADER_LEN: usize = 10;
const GZIP_TRAILER_LEN: usize = 8;

/// The program to run: `gzip` on PATH.
pub(crate) const GZIP_PROGRAM: &str = "gzip";

/// The first line of `gzip --version`, or None when gzip cannot be run.
pub fn gzip_version() -> Option<String> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let out = Command::new(GZIP_PROGRAM)
                .arg("--version")
                .env_remove("GZIP")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .clone()
}

/// A running `gzip -c -n -LEVEL` whose deflate body is collected as it is produced.
pub(crate) struct GnuDeflate {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<io::Result<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Header bytes still to drop from the start of gzip's output.
    header_left: usize,
    /// The last bytes seen, held back because they may be gzip's trailer.
    tail: Vec<u8>,
    level: u8,
}

impl GnuDeflate {
    /// Starts `gzip -c -n -LEVEL`.
    pub(crate) fn new(level: u8) -> io::Result<Self> {
        let mut child = Command::new(GZIP_PROGRAM)
            .arg("-c")
            .arg("-n")
            .arg(format!("-{level}"))
            // GZIP in the environment would add options and change the output.
            .env_remove("GZIP")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {GZIP_PROGRAM}: {e}")))?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        // Unbounded on purpose: the writer drains it after every write, so it never holds more
        // than one write's worth of output, and a bound could deadlock gzip between its pipes.
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        Ok(GnuDeflate {
            child,
            stdin,
            output: rx,
            reader: Some(reader),
            header_left: GZIP_HEADER_LEN,
            tail: Vec::new(),
            level,
        })
    }

    /// Sends `input` to gzip and appends the deflate bytes it has produced so far to `out`.
    /// Bytes appended before [`finish`](Self::finish) are final.
    pub(crate) fn write(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        for piece in input.chunks(256 * 1024) {
            let stdin = self
                .stdin
                .as_mut()
                .ok_or_else(|| io::Error::other("gzip input already closed"))?;
            stdin.write_all(piece).map_err(|e| {
                io::Error::new(e.kind(), format!("writing to gzip -{}: {e}", self.level))
            })?;
            self.drain(out, false)?;
        }
        Ok(())
    }

    /// Closes gzip's input, waits for it, and appends the rest of the deflate body to `out`.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        drop(self.stdin.take());
        self.drain(out, true)?;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let status = self.child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "gzip -{} exited with {status}",
                self.level
            )));
        }
        if self.header_left > 0 || self.tail.len() != GZIP_TRAILER_LEN {
            return Err(io::Error::other(format!(
                "gzip -{} wrote a stream too short to hold its header and trailer",
                self.level
            )));
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<u8>, until_end: bool) -> io::Result<()> {
        loop {
            let chunk = if until_end {
                match self.output.recv() {
                    Ok(c) => c,
                    Err(_) => return Ok(()),
                }
            } else {
                match self.output.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Ok(()),
                }
            };
            let mut data = &chunk?[..];
            let skip = self.header_left.min(data.len());
            self.header_left -= skip;
            data = &data[skip..];
            // Keep the last 8 bytes back: they may be the trailer.
            self.tail.extend_from_slice(data);
            if self.tail.len() > GZIP_TRAILER_LEN {
                let emit = self.tail.len() - GZIP_TRAILER_LEN;
                out.extend_from_slice(&self.tail[..emit]);
                self.tail.drain(..emit);
            }
        }
    }
}

impl Drop for GnuDeflate {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.reader.is_some() {
            // Abandoned before the end (a mismatch was found): stop gzip, by its own pid.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
