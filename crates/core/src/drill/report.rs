//! What a drill reports: each table and sequence checked, the uploads, the time of each phase,
//! and the verdict, as a readable summary, one line for logs, and JSON (`Serialize`).

use serde::Serialize;

use super::{BackupFormat, Phases, TempClusterInfo, UploadsCheck};

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
             {:.1}s (restore {:.1}s){s3}",
            report.backup,
            report.tables.len(),
            report.sequences.len(),
            u.sha1_verified + u.present_without_sha1,
            report.timings.total_secs,
            report.timings.restore_secs
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
