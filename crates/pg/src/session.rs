//! `psql` reading SQL (and `COPY ... FROM stdin` data) from a pipe, for loading large data
//! without a temporary file; [`TempCluster::psql_session`] starts one.
//!
//! Both output pipes are drained on threads so a chatty `psql` never blocks our writes.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};

#[cfg(doc)]
use crate::TempCluster;

/// A `psql` process reading SQL from a pipe; see [`TempCluster::psql_session`].
pub struct PsqlSession {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    what: String,
}

impl PsqlSession {
    pub(crate) fn spawn(mut cmd: Command, what: String) -> Result<PsqlSession> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
        let stdin = child.stdin.take();
        // Drain both output pipes on threads so a chatty psql never blocks our writes.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Ok(PsqlSession {
            child,
            stdin,
            stdout,
            stderr,
            what,
        })
    }

    /// Closes the input, waits for `psql` and returns its standard output; an error carries the
    /// exit status and `psql`'s error messages.
    pub fn finish(mut self) -> Result<String> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for {}", self.what))?;
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        if !status.success() {
            bail!(
                "{} failed ({status}): {}",
                self.what,
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }
}

impl Write for PsqlSession {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.stdin.as_mut() {
            Some(s) => s.write(buf),
            None => Err(std::io::Error::other("psql input already closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

pub(crate) fn psql_args(db: &str) -> Vec<String> {
    ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
