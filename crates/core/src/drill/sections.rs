//! Loading a directory-format dump (format B's `db/`) the way Discourse's restore does:
//! `pg_restore --list` first, then the pre-data section as a script through the same edits as a
//! plain dump into psql, then `pg_restore --jobs=N --section=data --section=post-data
//! --exit-on-error` straight into the database (issue 17, from Discourse's
//! lib/backup_restore/database_restorer.rb; the pg_restore is chosen as in
//! lib/backup_restore/postgres_tools.rb, see `tools.rs`).
//!
//! Safety. The dump is untrusted. The pre-data script goes through the scanner and psql's
//! `\restrict` exactly as a plain dump does, so it can run no psql meta-command. The data and
//! post-data sections go to the server from pg_restore itself, which runs no meta-commands at
//! all: whatever SQL a crafted `toc.dat` puts in those entries runs as the drill's own role
//! (not a superuser, no `CREATEDB`/`CREATEROLE`, no `pg_execute_server_program` or server file
//! access, connected to its own database only; see `database.rs`), so it can do no more than
//! the pre-data script could, inside the drill's database that is dropped afterwards. A
//! decompression bomb in the `.dat.gz` files is found by the scan below, under the drill's
//! expansion cap, before pg_restore writes anything of it into the database.
//!
//! Row counts. The rows go to the server directly, so the drill counts them on their own:
//! `pg_restore --section=data --section=post-data -f -` prints the same entries pg_restore
//! loads (the TOC's mapping of each table to its `NNNN.dat.gz`), and the scanner counts each
//! `COPY` block's rows and reads each `setval`, writing nothing anywhere. That scan also finds
//! the `discourse_functions` readonly functions the post-data triggers call, which are created
//! before the load as Discourse's restore creates them first.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::bomb::ExpansionBudget;
use super::database::DrillDatabase;
use super::load::LoadError;
use super::phases::{starts_post_data, Phases};
use super::server::{drain, tail, Server};
use crate::dump::{readonly_function_sql, DumpFacts, DumpScanner};

/// What loading a directory dump took, by phase.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DirectoryTimes {
    /// Pre-data, data and post-data.
    pub phases: Phases,
    /// `pg_restore --list`.
    pub list_secs: f64,
    /// Counting the rows of the data section (drill-only work, not part of a restore).
    pub scan_secs: f64,
}

impl Server {
    /// Loads the directory dump `dir` into `db`; see the module's documentation. `cap` bounds
    /// the scripts pg_restore prints (it decompresses the `.dat.gz` files).
    pub(crate) fn load_directory(
        &self,
        db: &DrillDatabase<'_>,
        dir: &Path,
        cap: &ExpansionBudget,
        times: &mut DirectoryTimes,
    ) -> Result<DumpFacts, LoadError> {
        let pg_restore = self.pg_restore().map_err(|e| LoadError::Read {
            message: e.to_string(),
            facts: DumpFacts::default(),
        })?;
        let t = Instant::now();
        list(pg_restore, dir)?;
        times.list_secs = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut ignored = Phases::default();
        let pre = script(
            pg_restore,
            dir,
            &["--section=pre-data"],
            cap,
            &mut |input| self.load_plain(db, input, &mut ignored),
        )?;
        times.phases.pre_data_secs = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let sections = ["--section=data", "--section=post-data"];
        let rows = script(pg_restore, dir, &sections, cap, &mut |input| {
            let mut scanner = DumpScanner::new(io::sink());
            let copied = io::copy(input, &mut scanner);
            let so_far = scanner.facts().clone();
            let finished = copied.and_then(|_| scanner.finish());
            match finished {
                Ok((Ok(facts), _)) => Ok(facts),
                Ok((Err(e), _)) => Err(LoadError::Dump {
                    message: format!("the data sections of {}: {e}", dir.display()),
                    facts: so_far,
                }),
                Err(e) => Err(LoadError::Read {
                    message: format!("the data sections of {}: {e}", dir.display()),
                    facts: so_far,
                }),
            }
        })
        .map_err(|e| with_facts(e, &pre))?;
        times.scan_secs = t.elapsed().as_secs_f64();
        let facts = merge(pre, rows);

        if !facts.readonly_functions.is_empty() {
            let sql: String = facts
                .readonly_functions
                .iter()
                .map(|f| readonly_function_sql(f))
                .collect();
            self.query_each(db, &format!("{sql}\n"), &mut |_| Ok(()))
                .map_err(|e| LoadError::Psql {
                    message: format!("creating the discourse_functions readonly functions: {e:#}"),
                    facts: Some(facts.clone()),
                })?;
        }

        let (data, result) = self.restore_sections(db, pg_restore, dir);
        times.phases.data_secs = data.data_secs;
        times.phases.post_data_secs = data.post_data_secs;
        result.map_err(|message| LoadError::Psql {
            message,
            facts: Some(facts.clone()),
        })?;
        Ok(facts)
    }

    /// `pg_restore --jobs=N --section=data --section=post-data --exit-on-error` into `db` as
    /// its role; returns the data and post-data times (up to the failure), and pg_restore's
    /// reason when it failed.
    fn restore_sections(
        &self,
        db: &DrillDatabase<'_>,
        pg_restore: &Path,
        dir: &Path,
    ) -> (Phases, Result<(), String>) {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let mut cmd = self.command_as(pg_restore, Some(db.login()));
        cmd.arg(format!("--jobs={jobs}"))
            .args(["--section=data", "--section=post-data", "--exit-on-error"])
            .args(["--no-owner", "--no-privileges", "--verbose"])
            .arg("-d")
            .arg(self.conninfo_as(db.name(), Some(db.login())))
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let what = format!(
            "{} --jobs={jobs} --section=data --section=post-data --exit-on-error {}",
            pg_restore.display(),
            dir.display()
        );
        let start = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return (Phases::default(), Err(format!("starting {what}: {e}"))),
        };
        let stderr = child.stderr.take().expect("piped stderr");
        let mut post_at = None;
        let mut messages = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if post_at.is_none() && starts_post_data(&line) {
                post_at = Some(Instant::now());
            }
            if is_message(&line) {
                messages.push(line);
            }
        }
        let status = child.wait();
        let phases = Phases::split(start, Some(start), post_at, Instant::now());
        let result = match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!(
                "{what} failed ({s}): {}",
                tail(&messages.join("\n"), 8)
            )),
            Err(e) => Err(format!("waiting for {what}: {e}")),
        };
        (phases, result)
    }
}

/// Whether a line of pg_restore's stderr is an error or warning rather than `--verbose` chatter.
fn is_message(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("pg_restore: ") else {
        // The server's own lines (`Command was: ...`, `DETAIL: ...`) follow an error.
        return true;
    };
    rest.starts_with("error") || rest.starts_with("warning") || rest.starts_with("detail")
}

/// `pg_restore --list dir`: Discourse validates a directory dump this way before restoring it.
/// A `toc.dat` this pg_restore cannot read (damaged, or written by a newer pg_dump) fails here,
/// naming pg_restore and its reason, with nothing loaded.
fn list(pg_restore: &Path, dir: &Path) -> Result<(), LoadError> {
    let out = Command::new(pg_restore)
        .arg("--list")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LoadError::Read {
            message: format!("starting {}: {e}", pg_restore.display()),
            facts: DumpFacts::default(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(LoadError::Read {
        message: format!(
            "{} --list {} failed ({}): {}",
            pg_restore.display(),
            dir.display(),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 8)
        ),
        facts: DumpFacts::default(),
    })
}

/// Runs `pg_restore <sections> --no-owner --no-privileges -f - dir` and hands its script, under
/// the expansion cap, to `read`; pg_restore's own failure comes first in the error.
fn script(
    pg_restore: &Path,
    dir: &Path,
    sections: &[&str],
    cap: &ExpansionBudget,
    read: &mut dyn FnMut(&mut dyn Read) -> Result<DumpFacts, LoadError>,
) -> Result<DumpFacts, LoadError> {
    let mut cmd = Command::new(pg_restore);
    cmd.args(sections)
        .args(["--no-owner", "--no-privileges", "-f", "-"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!(
        "{} {} -f - {}",
        pg_restore.display(),
        sections.join(" "),
        dir.display()
    );
    let mut child = cmd.spawn().map_err(|e| LoadError::Read {
        message: format!("starting {what}: {e}"),
        facts: DumpFacts::default(),
    })?;
    let stderr = child.stderr.take().map(drain);
    let out = child.stdout.take().expect("piped stdout");
    let mut out = cap.reader(out, format!("the script {what} prints"));
    let loaded = read(&mut out);
    if matches!(loaded, Err(LoadError::Read { .. })) {
        // Over the cap: stop pg_restore rather than read the rest.
        let _ = child.kill();
    }
    // Read to the end so pg_restore is not stopped by a closed pipe.
    let _ = io::copy(&mut out, &mut io::sink());
    drop(out);
    let status = child.wait();
    let err = stderr
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    match status {
        Ok(s) if s.success() => loaded,
        s => {
            let message = format!(
                "{what} failed ({}): {}",
                s.map_or_else(|e| e.to_string(), |s| s.to_string()),
                tail(&String::from_utf8_lossy(&err), 8)
            );
            let facts = match loaded {
                Ok(f) => f,
                Err(e) => e.facts().cloned().unwrap_or_default(),
            };
            Err(LoadError::Read { message, facts })
        }
    }
}

/// The tables the pre-data script creates, with the rows and sequence values of the data
/// scan. Line numbers are those of each section's script.
fn merge(pre: DumpFacts, rows: DumpFacts) -> DumpFacts {
    let mut facts = pre;
    for (name, t) in rows.tables {
        let entry = facts.tables.entry(name).or_default();
        entry.copy_rows = t.copy_rows;
        entry.copy_line = t.copy_line;
    }
    facts.sequences.extend(rows.sequences);
    facts.readonly_functions.extend(rows.readonly_functions);
    facts.lines += rows.lines;
    facts.bytes += rows.bytes;
    facts
}

/// A scan error keeps the tables the pre-data part created (for the report's line count).
fn with_facts(e: LoadError, pre: &DumpFacts) -> LoadError {
    match e {
        LoadError::Read { message, facts } => LoadError::Read {
            message,
            facts: merge(pre.clone(), facts),
        },
        LoadError::Dump { message, facts } => LoadError::Dump {
            message,
            facts: merge(pre.clone(), facts),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_chatter_is_not_a_message_but_errors_are() {
        assert!(!is_message("pg_restore: creating INDEX \"public.t_x\""));
        assert!(!is_message("pg_restore: launching item 3 TABLE DATA t"));
        assert!(is_message(
            "pg_restore: error: COPY failed for table \"posts\": ERROR:  invalid input"
        ));
        assert!(is_message("CONTEXT:  COPY posts, line 3"));
    }
}
