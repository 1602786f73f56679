//! Loading a plain dump into a drill database the way Discourse's restore does: the dump
//! streamed through the scanner's edits and guard (`dump.rs`) into `psql --single-transaction
//! -v ON_ERROR_STOP=1`, in psql's `\restrict` mode where psql has it, with the phase times
//! taken on the way; and why a load failed ([`LoadError`]), shared with `sections.rs`.

use std::io::{self, BufWriter, Read, Write};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use super::database::DrillDatabase;
use super::phases::{PhaseClock, Phases};
use super::server::{drain, tail, Server};
use crate::dump::{DumpFacts, DumpScanner};

impl Server {
    /// Loads a plain dump read from `input` into `db` as Discourse's restore does: with its
    /// edits (see [`DumpScanner`]), through `psql --single-transaction -v ON_ERROR_STOP=1`.
    /// Returns what the dump declared; a load that failed is a [`LoadError`].
    ///
    /// The dump cannot steer psql or the server: psql logs in as the drill database's own
    /// unprivileged role, the scanner refuses any meta-command line before psql sees it, and
    /// psql runs in `\restrict` mode with a fresh random key (when this psql has it), so even a
    /// meta-command the scanner missed is refused by psql itself.
    ///
    /// `phases` gets how long the pre-data, data and post-data parts of the stream took
    /// (see [`PhaseClock`]).
    pub(crate) fn load_plain(
        &self,
        db: &DrillDatabase<'_>,
        input: &mut dyn Read,
        phases: &mut Phases,
    ) -> Result<DumpFacts, LoadError> {
        let start = Instant::now();
        let mut cmd = self.command_as(self.psql(), Some(db.login()));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]);
        if self.psql_restrict() {
            // The key only has to be unknown to whoever wrote the dump, which was written
            // before the key was drawn: it is no credential, so the command line may hold it.
            cmd.arg("-c").arg(format!("\\restrict {}", restrict_key()));
        }
        // `-f -` (not plain stdin) makes psql name the line of each error: `psql:<stdin>:N:`.
        cmd.args(["-f", "-"])
            .arg("-d")
            .arg(self.conninfo_as(db.name(), Some(db.login())))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| LoadError::Psql {
            message: format!("starting {}: {e}", self.psql().display()),
            facts: None,
        })?;
        let stderr = child.stderr.take().map(drain);
        let stdin = child.stdin.take().expect("piped stdin");
        let out = PhaseClock::new(BufWriter::with_capacity(1 << 16, stdin));
        let mut scanner = DumpScanner::new(out).on_extension(Box::new(|name| {
            self.create_extension(db.name(), name)
                .map_err(|e| format!("{e:#}"))
        }));
        let copied = copy_until_write_fails(input, &mut scanner);
        let (data_at, post_at) = scanner.get_ref().marks();
        let facts_so_far = scanner.facts().clone();
        if let Some(refusal) = scanner.refusal() {
            // Nothing from the refused line on reached psql; stop it before it commits the
            // statements before it.
            let message = refusal.to_string();
            let _ = child.kill();
            let _ = child.wait();
            *phases = Phases::split(start, data_at, post_at, Instant::now());
            return Err(LoadError::Dump {
                message,
                facts: facts_so_far,
            });
        }
        let finished = match copied {
            Ok(()) => scanner
                .finish()
                .map(|(facts, out)| {
                    drop(out);
                    facts
                })
                .map_err(CopyError::Write),
            Err(e) => {
                drop(scanner);
                Err(e)
            }
        };
        let psql_failed = |child: &mut Child, stderr: Option<JoinHandle<Vec<u8>>>| {
            let status = child.wait().ok();
            let err = stderr
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default();
            match status {
                Some(s) if s.success() => None,
                s => Some(format!(
                    "psql stopped ({}): {}",
                    s.map_or("not started".into(), |s| s.to_string()),
                    tail(&String::from_utf8_lossy(&err), 8)
                )),
            }
        };
        let result = match finished {
            Ok(Ok(facts)) => match psql_failed(&mut child, stderr) {
                None => Ok(facts),
                Some(message) => Err(LoadError::Psql {
                    message,
                    facts: Some(facts),
                }),
            },
            Ok(Err(dump_err)) => {
                // psql already committed what it got; the dump itself is broken.
                let _ = child.wait();
                Err(LoadError::Dump {
                    message: dump_err.to_string(),
                    facts: facts_so_far,
                })
            }
            Err(CopyError::Write(e)) => {
                let message = psql_failed(&mut child, stderr)
                    .unwrap_or_else(|| format!("psql stopped reading its input ({e})"));
                Err(LoadError::Psql {
                    message,
                    facts: Some(facts_so_far),
                })
            }
            Err(CopyError::Read(e)) => {
                // Do not let psql commit a half-read dump.
                let _ = child.kill();
                let _ = child.wait();
                Err(LoadError::Read {
                    message: e.to_string(),
                    facts: facts_so_far,
                })
            }
        };
        *phases = Phases::split(start, data_at, post_at, Instant::now());
        result
    }
}

/// Why loading a dump failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// `psql` reported an error (the dump does not load).
    #[error("{message}")]
    Psql {
        message: String,
        facts: Option<DumpFacts>,
    },
    /// The dump's text is broken (e.g. truncated inside a COPY block).
    #[error("{message}")]
    Dump { message: String, facts: DumpFacts },
    /// The dump could not be read (decompression, pg_restore).
    #[error("{message}")]
    Read { message: String, facts: DumpFacts },
}

impl LoadError {
    /// What the dump declared up to the failure.
    pub(crate) fn facts(&self) -> Option<&DumpFacts> {
        match self {
            LoadError::Psql { facts, .. } => facts.as_ref(),
            LoadError::Dump { facts, .. } | LoadError::Read { facts, .. } => Some(facts),
        }
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy_until_write_fails(input: &mut dyn Read, out: &mut dyn Write) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// A fresh key for `\restrict`: 32 letters and digits (psql accepts only those).
fn restrict_key() -> String {
    super::database::random_token(32)
}
