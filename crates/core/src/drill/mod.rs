//! Restore drills: prove that a stored backup restores into a real PostgreSQL.
//!
//! A drill reads the original backup file once ([`archive`]): it checks the file's SHA-256,
//! streams the plain dump into `psql` as Discourse's restore does, and hashes every upload
//! file; a directory dump is loaded afterwards in Discourse's sections ([`sections`]), with a
//! psql and pg_restore no newer than the server ([`tools`]). The report gives each phase's time
//! ([`phases`]) and the restore's. It then checks the loaded database against the
//! backup itself: every table of the dump exists, each table holds as many rows as its `COPY`
//! block, every sequence has the value the dump sets, and every `uploads` row that points into
//! the forum's own uploads has its file in the backup with a matching SHA-1.
//!
//! [`drill`] returns a [`DrillReport`]: problems with the backup are failures listed in it
//! (`ok == false`); an `Err` means the drill itself could not run (no PostgreSQL, no disk
//! space). [`drill_outcome`] folds both into one [`DrillOutcome`] for the scheduled run.

pub mod archive;
pub mod bomb;
mod checks;
mod database;
mod extensions;
mod load;
pub mod phases;
mod report;
mod sections;
mod server;
pub mod snapshot;
mod step;
mod tools;
pub mod uploads;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

/// The one format type ([`crate::discourse::Format`]) under the name the drill's callers know.
pub use crate::discourse::Format as BackupFormat;
pub use crate::dump::{DumpFacts, DumpSequence, DumpTable};
pub use bomb::ExpansionLimit;
pub use phases::Phases;
pub use report::{one_line, DrillReport, SequenceCheck, TableCheck, Timings};
pub use server::{PostgresTarget, TempClusterInfo};
pub use snapshot::drill_snapshot;
pub use step::{DrillDone, DrillHook, RepoDrillHook};
pub use uploads::{UploadProblem, UploadsCheck};

use bomb::ExpansionBudget;
use checks::{check_sequences, check_tables, check_uploads};
use database::DrillDatabase;
use load::LoadError;
use sections::DirectoryTimes;
use server::Server;

/// How many failures of one kind the report spells out before it summarises the rest.
const MAX_LISTED: usize = 25;

/// What to drill.
#[derive(Debug, Clone)]
pub enum DrillInput {
    /// An original backup file, with the SHA-256 it must have (from the snapshot's record).
    File {
        /// The file.
        path: PathBuf,
        /// Expected SHA-256 (hex); `None` when nothing records it.
        expected_sha256: Option<String>,
    },
    /// A peeled tree (`peel::tree` layout): the original is rebuilt from it first, which checks
    /// the SHA-256 in its recipe.
    Tree(PathBuf),
}

/// Settings of a drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Where to load the dump.
    pub target: PostgresTarget,
    /// Where to put temporary files (a rebuilt original, an unpacked directory dump); the
    /// system's temporary folder when `None`.
    pub work_dir: Option<PathBuf>,
    /// The decompression-bomb cap (the same as for expand and backup).
    pub cap: ExpansionLimit,
}

/// Runs a drill. `Ok` carries the report, whose `ok` says whether the backup passed; `Err` means
/// the drill could not run (PostgreSQL did not start, the work folder is not writable, a peeled
/// tree could not be rebuilt is a failure in the report though).
pub fn drill(input: &DrillInput, opts: &DrillOptions) -> Result<DrillReport> {
    let started = Instant::now();
    let work = work_dir(opts)?;
    let (file, expected, mut report, rebuild_secs) = match input {
        DrillInput::File {
            path,
            expected_sha256,
        } => {
            // A file that cannot be opened is not worth starting PostgreSQL for; neither is a
            // FIFO or device, which would be read forever.
            peel::input::open_file(path).with_context(|| format!("opening {}", path.display()))?;
            (
                path.clone(),
                expected_sha256.clone(),
                DrillReport::new(file_name(path)),
                0.0,
            )
        }
        DrillInput::Tree(dir) => {
            let t = Instant::now();
            let mut report = DrillReport::new(dir.display().to_string());
            // A tree the stock restic restored may hold dumps in the dedup layout
            // (docs/layout.md): put them back first, proven against their recorded SHA-256.
            let rebuilt = crate::layout::undo(dir)
                .with_context(|| format!("reassembling the dumps in {}", dir.display()))
                .and_then(|()| rebuild_tree(dir, work.path()));
            match rebuilt {
                Ok((file, name, digest)) => {
                    report.backup = name;
                    (file, Some(digest), report, t.elapsed().as_secs_f64())
                }
                Err(e) => {
                    report.failures.push(format!(
                        "rebuilding the original from {}: {e:#}",
                        dir.display()
                    ));
                    report.timings.total_secs = started.elapsed().as_secs_f64();
                    return Ok(report);
                }
            }
        }
    };
    report.timings.rebuild_secs = rebuild_secs;
    drill_file_into(&file, expected, opts, work.path(), &mut report)?;
    report.timings.total_secs = started.elapsed().as_secs_f64();
    report.ok = report.failures.is_empty();
    Ok(report)
}

/// The result of a scheduled drill, for a metric (last successful drill time) and a ping.
#[derive(Debug, Clone, Serialize)]
pub struct DrillOutcome {
    /// Whether the backup restored and passed every check.
    pub ok: bool,
    /// When the drill started (seconds since the Unix epoch).
    pub started_unix: f64,
    /// How long it took in seconds.
    pub duration_secs: f64,
    /// One line for logs and pings: what was drilled and the verdict or the first failure.
    pub summary: String,
    /// The full report, when the drill could run.
    pub report: Option<DrillReport>,
    /// Why the drill could not run.
    pub error: Option<String>,
}

/// Runs a drill and never fails: problems with the backup and problems running the drill both
/// give `ok == false`, with a one-line summary. Meant for `dvault run`.
pub fn drill_outcome(input: &DrillInput, opts: &DrillOptions) -> DrillOutcome {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let t = Instant::now();
    match drill(input, opts) {
        Ok(report) => DrillOutcome {
            ok: report.ok,
            started_unix,
            duration_secs: t.elapsed().as_secs_f64(),
            summary: one_line(&report),
            report: Some(report),
            error: None,
        },
        Err(e) => DrillOutcome {
            ok: false,
            started_unix,
            duration_secs: t.elapsed().as_secs_f64(),
            summary: format!("drill could not run: {e:#}"),
            report: None,
            error: Some(format!("{e:#}")),
        },
    }
}

/// A fresh work folder for one drill, removed when dropped.
fn work_dir(opts: &DrillOptions) -> Result<tempfile::TempDir> {
    match &opts.work_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix(".dvault-drill-")
            .tempdir_in(dir)
            .with_context(|| format!("creating a work folder in {}", dir.display())),
        None => tempfile::Builder::new()
            .prefix("dvault-drill-")
            .tempdir()
            .context("creating a work folder"),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Rebuilds the original file of a peeled tree into `work`; returns it, its name and SHA-256.
fn rebuild_tree(dir: &Path, work: &Path) -> Result<(PathBuf, String, String)> {
    let recipe = peel::tree::read_recipe(&dir.join(peel::tree::RECIPE_PATH))?;
    let name = recipe_name(&recipe).unwrap_or_else(|| "backup".to_string());
    let out = work.join(format!("original-{name}"));
    let file = File::create(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = BufWriter::new(file);
    let digest = peel::tree::rebuild_from_dir(dir, &mut w)?;
    w.flush()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok((out, name, digest.sha256))
}

fn recipe_name(recipe: &peel::Recipe) -> Option<String> {
    let name = recipe.name.as_deref()?;
    let base = Path::new(name).file_name()?.to_str()?;
    Some(base.to_string())
}

pub(crate) fn drill_file_into(
    path: &Path,
    expected_sha256: Option<String>,
    opts: &DrillOptions,
    work: &Path,
    report: &mut DrillReport,
) -> Result<()> {
    report.expected_sha256 = expected_sha256.map(|s| s.to_ascii_lowercase());
    let t = Instant::now();
    let server = Server::open(&opts.target)?;
    report.server = server.describe();
    report.temp_cluster = server.temp_info();
    report.server_major = Some(server.major());
    let (psql, pg_restore) = server.programs();
    report.psql = Some(psql.display().to_string());
    report.pg_restore = Some(match pg_restore {
        Ok(p) => p.display().to_string(),
        Err(why) => why.to_string(),
    });
    if !server.psql_restrict() {
        report.warnings.push(
            "this psql has no \\restrict (PostgreSQL 13.22, 14.19, 15.14, 16.10, 17.6 and later \
             have it): only dvault's own scan keeps psql meta-commands of the dump out"
                .into(),
        );
    }
    let result = (|| -> Result<()> {
        let restore_started = Instant::now();
        let db = DrillDatabase::create(&server)?;
        report.database = db.name().to_string();
        prepare_extensions(&server, db.name(), report);
        let database_secs = restore_started.elapsed().as_secs_f64();
        report.timings.server_secs = t.elapsed().as_secs_f64();
        let budget = ExpansionBudget::new(opts.cap);
        let result = load_and_check(&server, &db, path, work, &budget, report);
        let t = &mut report.timings;
        t.restore_secs = database_secs + t.list_secs + t.phases.total();
        t.read_secs = (t.load_secs - t.list_secs - t.phases.total() - t.scan_secs).max(0.0);
        if let Err(e) = db.drop_now() {
            report.warnings.push(format!("{e:#}"));
        }
        result
    })();
    if let Err(e) = server.close() {
        report
            .warnings
            .push(format!("stopping the temporary cluster: {e:#}"));
    }
    result
}

/// Creates the extensions every Discourse database has ([`extensions::BASELINE`]) in the drill
/// database as the administrator, before the dump goes in: a dump made with `--schema=public`
/// uses them (hstore columns, trigram indexes, embeddings) without creating them. A server
/// without hstore or pg_trgm (no contrib package) gets a warning, and the load then names what
/// is missing; vector (pgvector) is only there when installed, and only discourse-ai needs it.
/// Extensions the dump's own `CREATE EXTENSION` lines name are created during the load (see
/// [`Server::create_extension`]).
fn prepare_extensions(server: &Server, db: &str, report: &mut DrillReport) {
    for ext in extensions::BASELINE {
        if let Err(e) = server.create_extension(db, ext) {
            if *ext != "vector" {
                report.warnings.push(format!(
                    "extension {ext} could not be created on {} (a Discourse dump may need it): \
                     {e:#}",
                    server.describe()
                ));
            }
        }
    }
}

fn load_and_check(
    server: &Server,
    db: &DrillDatabase<'_>,
    path: &Path,
    work: &Path,
    budget: &ExpansionBudget,
    report: &mut DrillReport,
) -> Result<()> {
    let t = Instant::now();
    let mut loaded: Option<(String, Result<DumpFacts, LoadError>)> = None;
    let walked = archive::walk(path, work, budget, &mut |name, input| {
        if loaded.is_some() {
            anyhow::bail!("a second database dump {name} in the backup");
        }
        let result = server.load_plain(db, input, &mut report.timings.phases);
        // Read the rest so the pass goes on (the SHA-256 and the uploads need all of it).
        io::copy(input, &mut io::sink()).with_context(|| format!("reading {name}"))?;
        loaded = Some((name.to_string(), result));
        Ok(())
    });
    let walked = match walked {
        Ok(w) => w,
        Err(e) => {
            report
                .failures
                .push(format!("reading the backup {}: {e:#}", path.display()));
            if let Some((name, Err(le))) = &loaded {
                report.failures.push(format!("loading {name}: {le}"));
            }
            report.timings.load_secs = t.elapsed().as_secs_f64();
            return Ok(());
        }
    };
    report.format = Some(walked.format);
    report.size = walked.size;
    report.sha256 = walked.sha256.clone();
    if let Some(expected) = &report.expected_sha256 {
        if *expected != walked.sha256 {
            report.failures.push(format!(
                "{}: SHA-256 is {}, the snapshot records {expected}",
                report.backup, walked.sha256
            ));
        }
    }
    if loaded.is_none() {
        if let Some(dir) = &walked.directory_dump {
            let mut times = DirectoryTimes::default();
            let result = server.load_directory(db, dir, budget, &mut times);
            report.timings.phases = times.phases;
            report.timings.list_secs = times.list_secs;
            report.timings.scan_secs = times.scan_secs;
            loaded = Some(("db/ (directory dump)".into(), result));
        }
    }
    report.timings.load_secs = t.elapsed().as_secs_f64();
    let Some((dump_name, result)) = loaded else {
        report.failures.push(format!(
            "{}: no database dump in the backup (no dump.sql.gz, dump.sql or db/toc.dat)",
            report.backup
        ));
        return Ok(());
    };
    report.dump = Some(dump_name.clone());
    let facts = match result {
        Ok(facts) => facts,
        Err(e) => {
            let mut msg = format!("loading {dump_name} into PostgreSQL failed: {e}");
            if let Some(f) = e.facts() {
                report.dump_lines = f.lines;
                if let Some(place) = locate_copy_error(&msg, f) {
                    msg.push_str(&format!("\n({place})"));
                }
            }
            report.failures.push(msg);
            return Ok(());
        }
    };
    report.dump_lines = facts.lines;
    if facts.tables.is_empty() {
        report.failures.push(format!(
            "{dump_name}: the dump creates no tables ({} lines): not a Discourse database dump",
            facts.lines
        ));
        return Ok(());
    }
    let t = Instant::now();
    check_tables(server, db, &facts, report)?;
    check_sequences(server, db, &facts, report)?;
    check_uploads(
        server,
        db,
        &facts,
        &walked.uploads,
        walked.has_uploads_dir,
        report,
    )?;
    report.timings.check_secs = t.elapsed().as_secs_f64();
    Ok(())
}

/// psql names the line where a `COPY` ended, and PostgreSQL the row inside the block
/// (`CONTEXT:  COPY users, line 2`); this turns that into the dump's own line number.
fn locate_copy_error(message: &str, facts: &DumpFacts) -> Option<String> {
    let at = message.find("COPY ")? + "COPY ".len();
    let rest = &message[at..];
    let comma = rest.find(", line ")?;
    let table = &rest[..comma];
    let digits: String = rest[comma + ", line ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let row: u64 = digits.parse().ok()?;
    let (name, t) = facts
        .tables
        .iter()
        .find(|(name, t)| t.copy_line > 0 && unquoted_last_part(name) == table)?;
    Some(format!(
        "row {row} of the COPY block of {name}: line {} of the dump",
        t.copy_line + row
    ))
}

/// `public."user"` -> `user`, `public.posts` -> `posts`.
fn unquoted_last_part(name: &str) -> String {
    let last = if name.ends_with('"') {
        // The last quoted part: find its opening quote (doubled quotes are escapes).
        let bytes = name.as_bytes();
        let mut i = bytes.len() - 1;
        loop {
            if i == 0 {
                break 0;
            }
            i -= 1;
            if bytes[i] == b'"' {
                if i > 0 && bytes[i - 1] == b'"' {
                    i -= 1;
                    continue;
                }
                break i;
            }
        }
    } else {
        name.rfind('.').map_or(0, |d| d + 1)
    };
    let part = &name[last..];
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => part.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_error_is_placed_on_the_dump_line() {
        let mut facts = DumpFacts::default();
        facts.tables.insert(
            "public.\"us\"\"er\"".into(),
            DumpTable {
                line: 3,
                copy_rows: None,
                copy_line: 100,
            },
        );
        let msg =
            "psql:<stdin>:140: ERROR:  invalid input\nCONTEXT:  COPY us\"er, line 7, column id";
        assert_eq!(
            locate_copy_error(msg, &facts).as_deref(),
            Some("row 7 of the COPY block of public.\"us\"\"er\": line 107 of the dump")
        );
        assert_eq!(unquoted_last_part("public.posts"), "posts");
    }

    #[test]
    fn a_drill_that_stopped_early_gives_no_sha256_verdict() {
        let mut r = DrillReport::new("x.tar.gz".into());
        r.expected_sha256 = Some("ab".repeat(32));
        assert!(r.summary().contains("not computed"), "{}", r.summary());
        r.sha256 = "cd".repeat(32);
        assert!(r.summary().contains("DOES NOT match"), "{}", r.summary());
        r.sha256 = "ab".repeat(32);
        assert!(
            r.summary().contains("(matches the record)"),
            "{}",
            r.summary()
        );
    }
}
