//! Restore drills: prove that a stored backup restores into a real PostgreSQL.
//!
//! A drill reads the original backup file once ([`archive`]): it checks the file's SHA-256,
//! streams the plain dump into `psql` as Discourse's restore does (a directory dump goes through
//! `pg_restore`), and hashes every upload file. It then checks the loaded database against the
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
pub mod dump;
mod extensions;
pub mod load;
mod meta;
pub mod phases;
mod sections;
pub mod snapshot;
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
pub use bomb::ExpansionLimit;
pub use dump::{DumpFacts, DumpSequence, DumpTable};
pub use load::{PostgresTarget, TempClusterInfo};
pub use phases::Phases;
pub use snapshot::{drill_snapshot, RepoDrillHook};
pub use uploads::{UploadProblem, UploadsCheck};

use bomb::ExpansionBudget;
use checks::{check_sequences, check_tables, check_uploads};
use database::DrillDatabase;
use load::{LoadError, Server};
use sections::DirectoryTimes;

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

/// One table of the dump, checked.
#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    /// The name as the dump writes it (`public.posts`).
    pub name: String,
    /// Rows in the dump's `COPY` block (`None`: the dump has no data for it, so 0 expected).
    pub dump_rows: Option<u64>,
    /// Whether the table exists after the load.
    pub exists: bool,
    /// Rows in the table after the load (`SELECT count(*) FROM ONLY ...`).
    pub db_rows: Option<u64>,
    /// Whether it matches.
    pub ok: bool,
}

/// One sequence of the dump, checked.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceCheck {
    /// The name as the dump's `setval` writes it.
    pub name: String,
    /// The value the dump sets.
    pub dump_value: i64,
    /// The dump's `is_called`.
    pub dump_is_called: bool,
    /// `last_value` after the load (`None`: the sequence is missing).
    pub db_value: Option<i64>,
    /// `is_called` after the load.
    pub db_is_called: Option<bool>,
    /// Whether it matches.
    pub ok: bool,
}

/// How long the parts of a drill took, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Rebuilding the original from a peeled tree (or taking it out of the repository).
    pub rebuild_secs: f64,
    /// Starting PostgreSQL and creating the database.
    pub server_secs: f64,
    /// Reading the backup and loading the dump: `read_secs`, `list_secs`, the three phases
    /// and `scan_secs` together.
    pub load_secs: f64,
    /// Reading the backup apart from the load: its SHA-256, the upload files, unpacking a
    /// directory dump.
    pub read_secs: f64,
    /// `pg_restore --list` of a directory dump (0 for a plain dump).
    pub list_secs: f64,
    /// The restore's pre-data, data and post-data phases (see [`Phases`]).
    #[serde(flatten)]
    pub phases: Phases,
    /// Counting the rows of a directory dump's data section before it is loaded: drill-only
    /// work, not part of a restore (0 for a plain dump, whose rows are counted as they pass).
    pub scan_secs: f64,
    /// The checks against the backup.
    pub check_secs: f64,
    /// The restore itself, as Discourse's restore runs it: creating the database and its
    /// extensions, `pg_restore --list` (directory dumps), then the pre-data, data and
    /// post-data phases; roughly the time a forum's database takes to come back on this
    /// server (Discourse adds its migrations and, for a full backup, copying the uploads).
    pub restore_secs: f64,
    /// The whole drill.
    pub total_secs: f64,
}

/// The result of a drill.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// Whether every check passed.
    pub ok: bool,
    /// Everything that is wrong, one line each, naming the table, count or file.
    pub failures: Vec<String>,
    /// Problems of the drill's own housekeeping (e.g. a database that could not be dropped).
    pub warnings: Vec<String>,
    /// The snapshot drilled, when it came from a repository.
    pub snapshot: Option<String>,
    /// The backup file's name.
    pub backup: String,
    /// Its format.
    pub format: Option<BackupFormat>,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256 as read.
    pub sha256: String,
    /// The SHA-256 it should have.
    pub expected_sha256: Option<String>,
    /// The dump loaded (its name in the archive).
    pub dump: Option<String>,
    /// Lines of the plain dump.
    pub dump_lines: u64,
    /// The PostgreSQL server used.
    pub server: String,
    /// Its major version.
    pub server_major: Option<u32>,
    /// The psql that loaded the dump, chosen no newer than the server as Discourse does.
    pub psql: Option<String>,
    /// The pg_restore for directory dumps chosen the same way, or why none fits.
    pub pg_restore: Option<String>,
    /// The database loaded (dropped afterwards).
    pub database: String,
    /// The throwaway cluster, when one was used.
    pub temp_cluster: Option<TempClusterInfo>,
    /// Tables.
    pub tables: Vec<TableCheck>,
    /// Sequences.
    pub sequences: Vec<SequenceCheck>,
    /// Uploads.
    pub uploads: UploadsCheck,
    /// Durations.
    pub timings: Timings,
}

impl DrillReport {
    pub(crate) fn new(backup: String) -> Self {
        DrillReport {
            ok: false,
            failures: Vec::new(),
            warnings: Vec::new(),
            snapshot: None,
            backup,
            format: None,
            size: 0,
            sha256: String::new(),
            expected_sha256: None,
            dump: None,
            dump_lines: 0,
            server: String::new(),
            server_major: None,
            psql: None,
            pg_restore: None,
            database: String::new(),
            temp_cluster: None,
            tables: Vec::new(),
            sequences: Vec::new(),
            uploads: UploadsCheck::default(),
            timings: Timings::default(),
        }
    }

    /// A human summary: a verdict line, the figures, then every failure.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let verdict = if self.ok { "PASSED" } else { "FAILED" };
        let what = match &self.snapshot {
            Some(id) => format!("snapshot {id} ({})", self.backup),
            None => self.backup.clone(),
        };
        s.push_str(&format!("restore drill {verdict}: {what}\n"));
        if let Some(f) = self.format {
            s.push_str(&format!("  format      {f}, {} bytes\n", self.size));
        }
        let sha_state = match &self.expected_sha256 {
            // The drill stopped before it read the whole file: no verdict either way.
            _ if self.sha256.is_empty() => "not computed: the drill stopped before",
            Some(e) if *e == self.sha256 => "matches the record",
            Some(_) => "DOES NOT match the record",
            None => "no record to compare",
        };
        s.push_str(&format!("  sha256      {} ({sha_state})\n", self.sha256));
        s.push_str(&format!(
            "  database    {} on {}, {} dump lines from {}\n",
            self.database,
            self.server,
            self.dump_lines,
            self.dump.as_deref().unwrap_or("(no dump)")
        ));
        let tables_ok = self.tables.iter().filter(|t| t.ok).count();
        let rows: u64 = self.tables.iter().filter_map(|t| t.db_rows).sum();
        s.push_str(&format!(
            "  tables      {tables_ok}/{} match their COPY blocks ({rows} rows)\n",
            self.tables.len()
        ));
        let seq_ok = self.sequences.iter().filter(|q| q.ok).count();
        s.push_str(&format!(
            "  sequences   {seq_ok}/{} set as in the dump\n",
            self.sequences.len()
        ));
        let u = &self.uploads;
        if u.checked {
            s.push_str(&format!(
                "  uploads     {} rows ({} local, {} on S3 of which {} in the backup): {} files \
                 with matching SHA-1, {} present without a recorded SHA-1, {} wrong; {} not \
                 checked (S3-stored, file not in the backup); {} files in the backup\n",
                u.rows,
                u.local_rows,
                u.remote_rows,
                u.remote_in_backup,
                u.sha1_verified,
                u.present_without_sha1,
                u.problems.len(),
                u.not_checked,
                u.files_in_backup
            ));
        } else {
            s.push_str(&format!(
                "  uploads     not checked: {}\n",
                u.note.as_deref().unwrap_or("-")
            ));
        }
        if let (Some(major), Some(psql)) = (self.server_major, &self.psql) {
            s.push_str(&format!(
                "  programs    PostgreSQL {major}: {psql}, {}\n",
                self.pg_restore.as_deref().unwrap_or("-")
            ));
        }
        let t = &self.timings;
        let p = &t.phases;
        s.push_str(&format!(
            "  time        {:.2}s: rebuild {:.2}s, server {:.2}s, read {:.2}s, list {:.2}s, \
             pre-data {:.2}s, data {:.2}s, post-data {:.2}s, row scan {:.2}s, checks {:.2}s\n",
            t.total_secs,
            t.rebuild_secs,
            t.server_secs,
            t.read_secs,
            t.list_secs,
            p.pre_data_secs,
            p.data_secs,
            p.post_data_secs,
            t.scan_secs,
            t.check_secs
        ));
        s.push_str(&format!(
            "  restore     {:.2}s (database and extensions, list, pre-data, data, post-data)\n",
            t.restore_secs
        ));
        for f in &self.failures {
            s.push_str(&format!("FAIL: {f}\n"));
        }
        for w in &self.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        s
    }
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

/// A one-line verdict of a report.
pub fn one_line(report: &DrillReport) -> String {
    if report.ok {
        let rows: u64 = report.tables.iter().filter_map(|t| t.db_rows).sum();
        let u = &report.uploads;
        // An S3 forum's admin wants to see that its S3-stored uploads were checked too, and
        // how many could not be (their files are not in the backup).
        let s3 = if u.remote_rows > 0 {
            format!(
                " ({} S3-stored ones among them; {} S3-stored rows not checked, their files are \
                 not in the backup)",
                u.remote_in_backup, u.not_checked
            )
        } else {
            String::new()
        };
        format!(
            "{} restored: {} tables, {rows} rows, {} sequences, {} upload files verified in \
             {:.1}s{s3}",
            report.backup,
            report.tables.len(),
            report.sequences.len(),
            u.sha1_verified + u.present_without_sha1,
            report.timings.total_secs
        )
    } else {
        format!(
            "{} FAILED ({} problems): {}",
            report.backup,
            report.failures.len(),
            report.failures.first().map_or("-", String::as_str)
        )
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
