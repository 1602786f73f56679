//! The PostgreSQL side of a drill: a server (a throwaway cluster or a given one), a fresh
//! database on it, loading a dump the way Discourse's restore does, and reading results back.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::database::{DrillDatabase, Login};
use super::extensions;
use super::phases::{PhaseClock, Phases};
use super::tools::{self, Tool};
use crate::dump::{DumpFacts, DumpScanner};
use crate::postgres::{self, TempCluster};

/// Where a drill loads the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresTarget {
    /// A throwaway cluster (initdb, pg_ctl) on a free 127.0.0.1 port, removed afterwards.
    Temp,
    /// A running server, as a libpq URL (`postgresql://user@host:port/maintenance_db?...`): the
    /// drill creates a new database there and drops it afterwards. A password in the URL is
    /// handed to the PostgreSQL programs through `PGPASSWORD`, never on their command line;
    /// better still, leave it out and use `PGPASSWORD`/`PGPASSFILE`.
    Url(String),
}

/// Facts about the throwaway cluster of a drill, so that callers (and tests) can see it is gone.
#[derive(Debug, Clone, Serialize)]
pub struct TempClusterInfo {
    /// Its data directory (deleted after the drill).
    pub data_dir: PathBuf,
    /// The postmaster's process id while it ran.
    pub postmaster_pid: Option<u32>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// A PostgreSQL server a drill talks to.
pub(crate) struct Server {
    kind: Kind,
    bindir: PathBuf,
    /// The server's major version (`server_version_num` / 10000).
    major: u32,
    /// The psql that loads and queries: no newer than the server (see `tools.rs`).
    psql: Tool,
    /// The pg_restore for directory dumps, chosen the same way; why none fits otherwise.
    pg_restore: Result<Tool, String>,
    /// Whether this psql has `\restrict` (see [`psql_has_restrict`]).
    psql_restrict: bool,
}

enum Kind {
    Temp(TempCluster),
    Url {
        /// The URL without its password, maintenance database in the path.
        url: url::Url,
        password: Option<String>,
    },
}

impl Server {
    /// Starts a throwaway cluster or prepares to talk to the given server.
    pub(crate) fn open(target: &PostgresTarget) -> Result<Server> {
        match target {
            PostgresTarget::Temp => {
                let cluster =
                    TempCluster::start().context("starting a temporary PostgreSQL cluster")?;
                let bindir = cluster.bindir().to_path_buf();
                Server::with_tools(Kind::Temp(cluster), bindir)
            }
            PostgresTarget::Url(raw) => {
                let mut url = url::Url::parse(raw).map_err(|e| {
                    anyhow!("the PostgreSQL server's URL is not a URL ({e}); expected postgresql://user@host:port/dbname")
                })?;
                if !matches!(url.scheme(), "postgresql" | "postgres") {
                    bail!(
                        "the PostgreSQL server's URL scheme {:?} is not postgresql:// or postgres://",
                        url.scheme()
                    );
                }
                let password = url.password().map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned()
                });
                let _ = url.set_password(None);
                if url.path().trim_start_matches('/').is_empty() {
                    url.set_path("/postgres");
                }
                let bindir = client_bindir()?;
                Server::with_tools(Kind::Url { url, password }, bindir)
            }
        }
    }

    /// Asks the server its version (with the psql of `bindir`), then chooses the psql and
    /// pg_restore no newer than it, as Discourse's restore does (`tools.rs`). A throwaway
    /// cluster's own installation is looked at first: it always fits.
    fn with_tools(kind: Kind, bindir: PathBuf) -> Result<Server> {
        let first = Tool {
            path: bindir.join("psql"),
            major: 0,
        };
        let mut server = Server {
            kind,
            bindir,
            major: 0,
            psql: first,
            pg_restore: Err(String::new()),
            psql_restrict: false,
        };
        let mut num = String::new();
        server
            .query_as(
                &server.maintenance_db(),
                None,
                "SHOW server_version_num;\n",
                &mut |f| {
                    num = f.first().copied().flatten().unwrap_or("").to_string();
                    Ok(())
                },
            )
            .with_context(|| format!("asking {} its version", server.describe()))?;
        server.major = tools::major_of_version_num(&num).ok_or_else(|| {
            anyhow!(
                "{}: server_version_num {num:?} is no version",
                server.describe()
            )
        })?;
        let preferred = matches!(server.kind, Kind::Temp(_)).then(|| server.bindir.clone());
        server.psql =
            tools::find("psql", server.major, preferred.as_deref()).map_err(|e| anyhow!(e))?;
        server.pg_restore = tools::find("pg_restore", server.major, preferred.as_deref());
        server.psql_restrict = psql_has_restrict(&server.psql.path);
        Ok(server)
    }

    /// The server's major version.
    pub(crate) fn major(&self) -> u32 {
        self.major
    }

    /// The psql used, and the pg_restore for directory dumps (or why none fits), for reports.
    pub(crate) fn programs(&self) -> (&Path, Result<&Path, &str>) {
        (
            &self.psql.path,
            self.pg_restore
                .as_ref()
                .map(|t| t.path.as_path())
                .map_err(String::as_str),
        )
    }

    /// The pg_restore chosen for this server, or why none fits (a load error naming the
    /// version wanted).
    pub(crate) fn pg_restore(&self) -> Result<&Path, LoadError> {
        self.pg_restore
            .as_ref()
            .map(|t| t.path.as_path())
            .map_err(|e| LoadError::Read {
                message: e.clone(),
                facts: DumpFacts::default(),
            })
    }

    /// A short description for reports (no password).
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Temp(c) => format!("temporary cluster on {}:{}", postgres::HOST, c.port()),
            Kind::Url { url, .. } => url.to_string(),
        }
    }

    /// Whether the load runs inside psql's `\restrict` mode (psql 13.22, 14.19, 15.14, 16.10,
    /// 17.6 or newer); without it only the scanner keeps meta-commands out.
    pub(crate) fn psql_restrict(&self) -> bool {
        self.psql_restrict
    }

    /// Facts about the throwaway cluster, when this is one.
    pub(crate) fn temp_info(&self) -> Option<TempClusterInfo> {
        match &self.kind {
            Kind::Temp(c) => {
                let pid = std::fs::read_to_string(c.data_dir().join("postmaster.pid"))
                    .ok()
                    .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
                Some(TempClusterInfo {
                    data_dir: c.data_dir(),
                    postmaster_pid: pid,
                    port: c.port(),
                })
            }
            Kind::Url { .. } => None,
        }
    }

    /// Stops and removes a throwaway cluster now, reporting errors; a no-op for a given server.
    pub(crate) fn close(self) -> Result<()> {
        match self.kind {
            Kind::Temp(c) => c.stop(),
            Kind::Url { .. } => Ok(()),
        }
    }

    /// A command for a PostgreSQL client program, with connection settings in its environment.
    fn command(&self, program: &Path) -> Command {
        match &self.kind {
            Kind::Temp(c) => c.command_for(program),
            Kind::Url { password, .. } => {
                let mut cmd = Command::new(program);
                cmd.env_remove("PGDATABASE");
                if let Some(p) = password {
                    cmd.env("PGPASSWORD", p);
                }
                if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
                    cmd.env("PGCONNECT_TIMEOUT", "10");
                }
                cmd
            }
        }
    }

    /// A command for a client program logging in as `login` (the administrator when `None`).
    pub(crate) fn command_as(&self, program: &Path, login: Option<&Login>) -> Command {
        let mut cmd = self.command(program);
        if let Some(login) = login {
            // The URL names the user for a given server; the throwaway cluster trusts local
            // TCP logins, so only the user name changes there.
            cmd.env("PGUSER", &login.role);
            if matches!(self.kind, Kind::Url { .. }) {
                cmd.env("PGPASSWORD", &login.password);
            }
        }
        cmd
    }

    /// The `-d` argument for database `db` as `login`.
    pub(crate) fn conninfo_as(&self, db: &str, login: Option<&Login>) -> String {
        match (&self.kind, login) {
            (Kind::Url { url, .. }, Some(login)) => {
                let mut u = url.clone();
                u.set_path(&format!("/{db}"));
                // Role names are plain ASCII letters, digits and `_`.
                let _ = u.set_username(&login.role);
                u.to_string()
            }
            _ => self.conninfo(db),
        }
    }

    /// The `-d` argument for database `db`: its name (the environment holds the rest) or a URL.
    fn conninfo(&self, db: &str) -> String {
        match &self.kind {
            Kind::Temp(_) => db.to_string(),
            Kind::Url { url, .. } => {
                let mut u = url.clone();
                // Drill database names are plain ASCII letters, digits and `_`.
                u.set_path(&format!("/{db}"));
                u.to_string()
            }
        }
    }

    pub(crate) fn maintenance_db(&self) -> String {
        match &self.kind {
            Kind::Temp(_) => "postgres".to_string(),
            Kind::Url { url, .. } => url.path().trim_start_matches('/').to_string(),
        }
    }

    /// Runs SQL in database `db` as the administrator (the user of the URL, or the throwaway
    /// cluster's superuser) and discards its output. Never used on a drill database after the
    /// dump went in: what the dump defined (functions, views, operators) could run with the
    /// administrator's rights.
    pub(crate) fn execute(&self, db: &str, sql: &str) -> Result<()> {
        self.query_as(db, None, sql, &mut |_| Ok(()))
    }

    /// Runs SQL in the drill database as its unprivileged role (see [`DrillDatabase`]) and
    /// calls `row` with the fields of each output row; SQL NULL comes as `None`.
    pub(crate) fn query_each(
        &self,
        db: &DrillDatabase<'_>,
        sql: &str,
        row: &mut dyn FnMut(&[Option<&str>]) -> Result<()>,
    ) -> Result<()> {
        self.query_as(db.name(), Some(db.login()), sql, row)
    }

    /// Runs SQL in `db` (stopping at the first error) as `login` (the administrator when
    /// `None`) and calls `row` with the fields of each output row.
    pub(crate) fn query_as(
        &self,
        db: &str,
        login: Option<&Login>,
        sql: &str,
        row: &mut dyn FnMut(&[Option<&str>]) -> Result<()>,
    ) -> Result<()> {
        const SEP: &str = "\x1f";
        const NULL: &str = "\x1e";
        let mut cmd = self.command_as(&self.psql.path, login);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-F", SEP, "-P", &format!("null={NULL}")])
            .arg("-d")
            .arg(self.conninfo_as(db, login))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.psql.path.display()))?;
        let stderr = child.stderr.take().map(drain);
        let mut stdin = child.stdin.take().context("psql stdin")?;
        let sql = sql.to_string();
        let writer = std::thread::spawn(move || stdin.write_all(sql.as_bytes()));
        let mut result = Ok(());
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = match line {
                    Ok(l) => l,
                    Err(e) => {
                        result = Err(anyhow!(e).context("reading psql's output"));
                        break;
                    }
                };
                let fields: Vec<Option<&str>> = line
                    .split(SEP)
                    .map(|f| if f == NULL { None } else { Some(f) })
                    .collect();
                if let Err(e) = row(&fields) {
                    result = Err(e);
                    break;
                }
            }
        }
        let _ = writer.join();
        let status = child.wait().context("waiting for psql")?;
        let err = stderr
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        if !status.success() {
            bail!(
                "psql on database {db} failed ({status}): {}",
                String::from_utf8_lossy(&err).trim()
            );
        }
        result
    }

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
        let mut cmd = self.command_as(&self.psql.path, Some(db.login()));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]);
        if self.psql_restrict {
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
            message: format!("starting {}: {e}", self.psql.path.display()),
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

    /// Creates extension `name` in database `db` as the administrator, if it is on the
    /// allow-list (see `extensions.rs`) and the server has it; the error names it otherwise.
    pub(crate) fn create_extension(&self, db: &str, name: &str) -> Result<()> {
        extensions::check_allowed(name)?;
        self.execute(db, &extensions::create_sql(name))
            .with_context(|| format!("creating extension {name:?} as the administrator"))
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

pub(crate) fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The folder of the client programs for a given server: the server installation's when there
/// is one here, else wherever `psql` is on `PATH` (a client-only install).
fn client_bindir() -> Result<PathBuf> {
    if let Ok(dir) = postgres::find_bindir() {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let psql = dir.join("psql");
            if psql.is_file() && dir.join("pg_restore").is_file() {
                let real = std::fs::canonicalize(&psql).unwrap_or(psql);
                if let Some(parent) = real.parent() {
                    return Ok(parent.to_path_buf());
                }
            }
        }
    }
    bail!("psql and pg_restore not found (install the PostgreSQL client programs)")
}

/// Whether the psql `psql` has `\restrict`: added in the minor releases of August 2025
/// (13.22, 14.19, 15.14, 16.10, 17.6; CVE-2025-8714) and in every 18.
fn psql_has_restrict(psql: &Path) -> bool {
    let out = Command::new(psql)
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => return false,
    };
    restrict_supported(&text)
}

/// Reads `psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn restrict_supported(version: &str) -> bool {
    let Some(number) = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
    else {
        return false;
    };
    let mut parts = number.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    match major {
        18.. => true,
        17 => minor >= 6,
        16 => minor >= 10,
        15 => minor >= 14,
        14 => minor >= 19,
        13 => minor >= 22,
        _ => false,
    }
}

/// A fresh key for `\restrict`: 32 letters and digits (psql accepts only those).
fn restrict_key() -> String {
    super::database::random_token(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrict_is_known_from_the_minor_release_on() {
        assert!(restrict_supported(
            "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        ));
        assert!(restrict_supported("psql (PostgreSQL) 18.1"));
        assert!(restrict_supported("psql (PostgreSQL) 17.6"));
        assert!(!restrict_supported("psql (PostgreSQL) 17.5"));
        assert!(!restrict_supported("psql (PostgreSQL) 15.13"));
        assert!(!restrict_supported("psql (PostgreSQL) 12.22"));
        assert!(!restrict_supported("garbage"));
    }
}
