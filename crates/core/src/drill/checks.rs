//! The checks a drill makes against the backup once the dump is loaded: every table of the
//! dump exists and holds as many rows as its `COPY` block, every sequence has the value the
//! dump sets, and every `uploads` row that points into the forum's own uploads has its file in
//! the backup with a matching SHA-1. All queries run as the drill database's own role.

use anyhow::Result;

use super::database::DrillDatabase;
use super::server::Server;
use super::uploads::{self, UploadIndex};
use super::{DrillReport, SequenceCheck, TableCheck, UploadsCheck, MAX_LISTED};
use crate::dump::DumpFacts;

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Which of these relations exist (by `to_regclass`).
fn existing(server: &Server, db: &DrillDatabase<'_>, names: &[&str]) -> Result<Vec<bool>> {
    let mut exists = vec![false; names.len()];
    if names.is_empty() {
        return Ok(exists);
    }
    let values: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("({i}, {})", sql_literal(n)))
        .collect();
    let sql = format!(
        "SELECT i, to_regclass(n) IS NOT NULL FROM (VALUES {}) AS v(i, n);\n",
        values.join(", ")
    );
    server.query_each(db, &sql, &mut |f| {
        let i: usize = field(f, 0)?.parse()?;
        if let Some(slot) = exists.get_mut(i) {
            *slot = field(f, 1)? == "t";
        }
        Ok(())
    })?;
    Ok(exists)
}

/// Asks one row of `select(i, name)` (a `SELECT {i}, ...`: the relation's index first) of each
/// relation of `names` that exists, in batches of 200 joined by `UNION ALL`; `row` gets each
/// answer's index and all its fields. Returns which relations exist.
fn select_existing(
    server: &Server,
    db: &DrillDatabase<'_>,
    names: &[&str],
    select: impl Fn(usize, &str) -> String,
    mut row: impl FnMut(usize, &[Option<&str>]) -> Result<()>,
) -> Result<Vec<bool>> {
    let exists = existing(server, db, names)?;
    let selects: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| exists[*i])
        .map(|(i, n)| select(i, n))
        .collect();
    for chunk in selects.chunks(200) {
        let sql = format!("{};\n", chunk.join(" UNION ALL "));
        server.query_each(db, &sql, &mut |f| row(field(f, 0)?.parse()?, f))?;
    }
    Ok(exists)
}

fn field<'a>(f: &[Option<&'a str>], i: usize) -> Result<&'a str> {
    f.get(i)
        .copied()
        .flatten()
        .ok_or_else(|| anyhow::anyhow!("psql returned a row without field {i}: {f:?}"))
}

pub(super) fn check_tables(
    server: &Server,
    db: &DrillDatabase<'_>,
    facts: &DumpFacts,
    report: &mut DrillReport,
) -> Result<()> {
    let names: Vec<&str> = facts.tables.keys().map(String::as_str).collect();
    let mut counts: Vec<Option<u64>> = vec![None; names.len()];
    let exists = select_existing(
        server,
        db,
        &names,
        |i, n| format!("SELECT {i}, count(*) FROM ONLY {n}"),
        |i, f| {
            if let Some(slot) = counts.get_mut(i) {
                *slot = Some(field(f, 1)?.parse()?);
            }
            Ok(())
        },
    )?;
    let mut failures = Vec::new();
    for (i, (name, t)) in facts.tables.iter().enumerate() {
        let expected = t.copy_rows.unwrap_or(0);
        let ok = exists[i] && counts[i] == Some(expected);
        if !exists[i] {
            failures.push(format!(
                "table {name}: missing from the database (the dump creates it at line {})",
                t.line
            ));
        } else if !ok {
            failures.push(match t.copy_rows {
                Some(n) => format!(
                    "table {name}: {} rows in the database, the dump's COPY block (line {}) has {n}",
                    counts[i].map_or("?".into(), |c| c.to_string()),
                    t.copy_line
                ),
                None => format!(
                    "table {name}: {} rows in the database, the dump has no data for it",
                    counts[i].map_or("?".into(), |c| c.to_string())
                ),
            });
        }
        report.tables.push(TableCheck {
            name: name.clone(),
            dump_rows: t.copy_rows,
            exists: exists[i],
            db_rows: counts[i],
            ok,
        });
    }
    push_capped(&mut report.failures, failures, "tables");
    Ok(())
}

pub(super) fn check_sequences(
    server: &Server,
    db: &DrillDatabase<'_>,
    facts: &DumpFacts,
    report: &mut DrillReport,
) -> Result<()> {
    let names: Vec<&str> = facts.sequences.keys().map(String::as_str).collect();
    let mut values: Vec<Option<(i64, bool)>> = vec![None; names.len()];
    select_existing(
        server,
        db,
        &names,
        // setval names the sequence as a regclass text; it is valid SQL as it is.
        |i, n| format!("SELECT {i}, last_value, is_called FROM {n}"),
        |i, f| {
            if let Some(slot) = values.get_mut(i) {
                *slot = Some((field(f, 1)?.parse()?, field(f, 2)? == "t"));
            }
            Ok(())
        },
    )?;
    let mut failures = Vec::new();
    for (i, (name, s)) in facts.sequences.iter().enumerate() {
        let got = values[i];
        let ok = got == Some((s.value, s.is_called));
        if !ok {
            failures.push(match got {
                None => format!(
                    "sequence {name}: missing from the database (the dump sets it at line {})",
                    s.line
                ),
                Some((v, c)) => format!(
                    "sequence {name}: last_value {v} (is_called {c}) in the database, the dump \
                     sets {} (is_called {}) at line {}",
                    s.value, s.is_called, s.line
                ),
            });
        }
        report.sequences.push(SequenceCheck {
            name: name.clone(),
            dump_value: s.value,
            dump_is_called: s.is_called,
            db_value: got.map(|g| g.0),
            db_is_called: got.map(|g| g.1),
            ok,
        });
    }
    push_capped(&mut report.failures, failures, "sequences");
    Ok(())
}

pub(super) fn check_uploads(
    server: &Server,
    db: &DrillDatabase<'_>,
    facts: &DumpFacts,
    index: &UploadIndex,
    has_uploads_dir: bool,
    report: &mut DrillReport,
) -> Result<()> {
    let mut check = UploadsCheck {
        files_in_backup: index.len() as u64,
        ..UploadsCheck::default()
    };
    let table = "public.uploads";
    if !facts.tables.contains_key(table) {
        check.note = Some("the dump has no public.uploads table".into());
        report.uploads = check;
        return Ok(());
    }
    if !has_uploads_dir {
        check.note = Some(
            "the backup holds no uploads (a database-only backup); upload rows not checked".into(),
        );
        report.uploads = check;
        return Ok(());
    }
    let mut columns = Vec::new();
    server.query_each(
        db,
        "SELECT column_name FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = 'uploads';\n",
        &mut |f| {
            columns.push(field(f, 0)?.to_string());
            Ok(())
        },
    )?;
    let has = |c: &str| columns.iter().any(|x| x == c);
    if !has("id") || !has("url") {
        report.failures.push(format!(
            "table {table}: has no id or url column (columns: {})",
            columns.join(", ")
        ));
        report.uploads = check;
        return Ok(());
    }
    let sha1 = if has("sha1") { "sha1" } else { "NULL" };
    let original = if has("original_sha1") {
        "original_sha1"
    } else {
        "NULL"
    };
    let extension = if has("extension") {
        "extension"
    } else {
        "NULL"
    };
    let sql =
        format!("SELECT id, url, {sha1}, {original}, {extension} FROM {table} ORDER BY id;\n");
    server.query_each(db, &sql, &mut |f| {
        let row = uploads::UploadRow {
            id: field(f, 0)?.parse()?,
            url: f.get(1).copied().flatten().unwrap_or(""),
            sha1: f.get(2).copied().flatten(),
            original_sha1: f.get(3).copied().flatten(),
            extension: f.get(4).copied().flatten(),
        };
        check.check(index, &row);
        Ok(())
    })?;
    check.checked = true;
    let failures: Vec<String> = check.problems.iter().map(|p| p.to_string()).collect();
    push_capped(&mut report.failures, failures, "uploads");
    check.problems.truncate(1000);
    report.uploads = check;
    Ok(())
}

fn push_capped(out: &mut Vec<String>, failures: Vec<String>, what: &str) {
    let n = failures.len();
    out.extend(failures.into_iter().take(MAX_LISTED));
    if n > MAX_LISTED {
        out.push(format!(
            "... and {} more failures of {what}",
            n - MAX_LISTED
        ));
    }
}
