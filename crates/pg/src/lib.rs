//! A throwaway PostgreSQL cluster for the simulator, the restore drill and tests.
//!
//! [`TempCluster::start`] runs `initdb` and `pg_ctl start` in a fresh temporary folder, listening
//! only on 127.0.0.1 at a free port, with trust authentication for the `postgres` superuser.
//! Dropping the value stops the server (`pg_ctl stop -m immediate`) and deletes the folder, also
//! when start-up failed half way. PostgreSQL refuses to run as root, so when this process is root
//! the server runs as the system user `dvault-pg` (created when missing) or, failing that, as
//! `nobody`; the client programs (`psql`, `pg_dump`, `pg_restore`) run as the caller.
//!
//! The binaries come from `DVAULT_PG_BINDIR` when set, else the newest
//! `/usr/lib/postgresql/<major>/bin` (Debian's layout), else `PATH`.
//!
//! The server runs with `fsync=off` and `autovacuum=off`: it holds throwaway data, and a database
//! that only changes when told to keeps the simulator's output reproducible.
//!
//! A crate of its own (not part of `dvault-core`) so the simulator can use it without core:
//! core's tests use the simulator. `session.rs` is `psql` on a pipe; `host.rs` finds the
//! installation, the service user and a free port.

mod host;
mod session;

use std::io::Write;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

pub use host::find_bindir;
use host::{free_port, is_root, service_user};
use session::psql_args;
pub use session::PsqlSession;

/// The superuser name the cluster is initialised with.
pub const SUPERUSER: &str = "postgres";

/// The address the server listens on.
pub const HOST: &str = "127.0.0.1";

/// The unprivileged system user the server runs as when the caller is root.
pub const SERVICE_USER: &str = "dvault-pg";

/// A running, private PostgreSQL cluster that is stopped and deleted on drop.
#[derive(Debug)]
pub struct TempCluster {
    dir: TempDir,
    bindir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    running: bool,
}

impl TempCluster {
    /// Initialises and starts a new cluster on a free 127.0.0.1 port.
    pub fn start() -> Result<TempCluster> {
        Self::start_in(find_bindir()?)
    }

    /// Like [`TempCluster::start`], with the programs of the installation in `bindir` (a test
    /// that needs a server of another major version than the default).
    pub fn start_in(bindir: PathBuf) -> Result<TempCluster> {
        let run_as = if is_root() {
            Some(service_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("dvault-pg-")
            .tempdir()
            .context("creating a temporary folder for PostgreSQL")?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), Some(uid), Some(gid))
                .with_context(|| format!("giving {} to uid {uid}", dir.path().display()))?;
        }
        let mut cluster = TempCluster {
            dir,
            bindir,
            port: 0,
            run_as,
            running: false,
        };
        cluster.initdb()?;
        // Another process may take the port between our probe and the server's bind: retry.
        let mut last_err = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.running = true;
                    return Ok(cluster);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    /// The TCP port the server listens on (at [`HOST`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq connection URL for database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://{SUPERUSER}@{HOST}:{}/{db}", self.port)
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file (read it when something failed).
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The folder holding this cluster's PostgreSQL programs.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The path of a PostgreSQL program (`psql`, `pg_dump`, `pg_restore`, ...) of this cluster's
    /// installation.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// A command for the program `name` with the connection set up through the environment
    /// (`PGHOST`, `PGPORT`, `PGUSER`); stray libpq settings of the caller are removed.
    pub fn command(&self, name: &str) -> Command {
        self.command_for(&self.bin(name))
    }

    /// Like [`TempCluster::command`] for a client program of another installation (a
    /// `pg_restore` chosen for the server's version).
    pub fn command_for(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for var in [
            "PGPASSWORD",
            "PGPASSFILE",
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGDATABASE",
            "PGOPTIONS",
            "PGSSLMODE",
            "PGHOSTADDR",
            "PGTZ",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGHOST", HOST)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER)
            .env("PGCONNECT_TIMEOUT", "10");
        cmd
    }

    /// Creates an empty database (UTF-8, C collation, from `template0`).
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.psql(
            "postgres",
            &format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
                quote_ident(name)
            ),
        )
        .with_context(|| format!("creating database {name}"))?;
        Ok(())
    }

    /// Drops a database if it exists.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        self.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {}", quote_ident(name)),
        )
        .with_context(|| format!("dropping database {name}"))?;
        Ok(())
    }

    /// Runs SQL in database `db` with `psql` (stops at the first error) and returns its output
    /// in unaligned, tuples-only form (`psql -At`), one row a line, columns split by `|`.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let mut session = self.psql_session(db)?;
        session.write_all(sql.as_bytes())?;
        session.finish()
    }

    /// Runs a SQL file in database `db` with `psql -f`; output as for [`TempCluster::psql`].
    pub fn psql_file(&self, db: &str, file: &Path) -> Result<String> {
        let mut cmd = self.command("psql");
        cmd.args(psql_args(db)).arg("-f").arg(file);
        run_checked(cmd, &format!("psql -f {} on database {db}", file.display()))
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Starts `psql` on database `db` reading SQL (and `COPY ... FROM stdin` data) from a pipe:
    /// write to the session, then call [`PsqlSession::finish`]. Made for loading large data.
    pub fn psql_session(&self, db: &str) -> Result<PsqlSession> {
        let mut cmd = self.command("psql");
        cmd.args(psql_args(db));
        PsqlSession::spawn(cmd, format!("psql on database {db}"))
    }

    /// Runs `pg_dump` with the given arguments (connection settings come from the environment).
    pub fn pg_dump<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command("pg_dump");
        cmd.args(args);
        let what = format!("{cmd:?}");
        run_checked(cmd, &what)
    }

    /// Runs `pg_restore` with the given arguments (connection settings come from the
    /// environment; pass `--dbname` to restore into a database).
    pub fn pg_restore<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command("pg_restore");
        cmd.args(args);
        let what = format!("{cmd:?}");
        run_checked(cmd, &what)
    }

    /// Stops the server and deletes its folder, reporting errors that drop would swallow.
    pub fn stop(mut self) -> Result<()> {
        self.stop_server()
    }

    fn stop_server(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
        run_checked(cmd, "pg_ctl stop").map(|_| ())
    }

    fn server_command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin(name));
        cmd.current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        cmd
    }

    fn initdb(&self) -> Result<()> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]);
        run_checked(cmd, "initdb").map(|_| ())
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses={HOST} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c autovacuum=off -c timezone=UTC -c log_timezone=UTC \
             -c max_connections=20 -c shared_buffers=128MB -c max_wal_size=2GB",
            self.port,
            self.dir.path().display()
        );
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        match run_checked(cmd, "pg_ctl start") {
            Ok(_) => Ok(()),
            Err(e) => {
                let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(e.context(format!(
                    "PostgreSQL did not start on port {}; server log {}:\n{}",
                    self.port,
                    self.log_file().display(),
                    tail.join("\n")
                )))
            }
        }
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop_server() {
            tracing::warn!("stopping the temporary PostgreSQL cluster: {e:#}");
        }
    }
}

/// Runs a command to completion; an error names `what`, the exit status and the tail of stderr.
fn run_checked(mut cmd: Command, what: &str) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{what} failed ({}): {}", out.status, tail.join("\n"));
    }
    Ok(out)
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_runs_sql_and_is_removed_on_drop() {
        let cluster = TempCluster::start().expect("start");
        let dir = cluster.data_dir();
        assert!(dir.join("PG_VERSION").is_file());
        cluster.create_database("t1").unwrap();
        let out = cluster
            .psql(
                "t1",
                "CREATE TABLE x(a int); INSERT INTO x VALUES (1),(2); SELECT sum(a) FROM x;",
            )
            .unwrap();
        assert_eq!(out.trim(), "3");
        let mut s = cluster.psql_session("t1").unwrap();
        s.write_all(b"COPY x FROM stdin;\n5\n6\n\\.\nSELECT count(*) FROM x;\n")
            .unwrap();
        assert_eq!(s.finish().unwrap().trim(), "4");
        let err = cluster.psql("t1", "SELECT * FROM nope;").unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
        let port = cluster.port();
        drop(cluster);
        assert!(!dir.exists(), "data folder left behind");
        assert!(
            std::net::TcpStream::connect((HOST, port)).is_err(),
            "server still listening"
        );
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
