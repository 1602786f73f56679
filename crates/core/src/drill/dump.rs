//! Reading a plain SQL dump (pg_dump's text format) while it streams into `psql`: what it
//! declares (tables, the rows of each `COPY` block, sequence values) and the few edits
//! Discourse's own restore makes before `psql` sees it.
//!
//! A directory-format dump is read the same way, as the script `pg_restore -f -` prints, so one
//! reader serves both formats.
//!
//! Hand-written because no crate parses pg_dump output; it relies only on pg_dump's fixed
//! layout: one statement head per line (`CREATE TABLE name (`, `COPY name (...) FROM stdin;`,
//! `SELECT pg_catalog.setval('name', N, true);`), and one row per line inside a `COPY` block,
//! ended by a line `\.` (newlines inside values are escaped as `\n`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::Serialize;

use super::meta::MetaScan;

/// Statement lines Discourse's restore deletes before `psql` runs the dump (its
/// `DatabaseRestorer#sed_command`, lib/backup_restore/database_restorer.rb): the dump's `public`
/// schema already exists in the target, and PostgreSQL 12's access-method setting is unknown to
/// older servers. `CREATE EXTENSION` and `COMMENT ON EXTENSION` go too (issue 17 reports newer
/// Discourse removing them; the stored copy of that file, commit 3a481af, predates it): the
/// drill's database gets its extensions from dvault itself, as the server's administrator,
/// before the load (each one the dump names, if allowed: see `extensions.rs`), and the load
/// runs as a role that may not create or comment on them.
/// `SET transaction_timeout` (pg_dump 17 and later) is unknown to older servers, and issue 17
/// lists it among Discourse's filters too.
const DROPPED_PREFIXES: [&[u8]; 7] = [
    b"DROP SCHEMA",
    b"CREATE SCHEMA",
    b"COMMENT ON SCHEMA",
    b"SET default_table_access_method",
    b"SET transaction_timeout",
    b"CREATE EXTENSION",
    b"COMMENT ON EXTENSION",
];

/// Statements dropped whole, over as many lines as they take (issue 17's list of newer
/// Discourse's filters): the `discourse_functions` readonly functions (created by the
/// restore itself, here by the scanner at the trigger that needs them), and foreign servers,
/// user mappings and foreign tables (they point at other servers, need an extension the
/// drill's database does not have, and hold no forum data).
const DROPPED_STATEMENTS: [&[u8]; 4] = [
    b"CREATE FUNCTION discourse_functions.",
    b"CREATE SERVER ",
    b"CREATE USER MAPPING ",
    b"CREATE FOREIGN TABLE ",
];

/// psql's own restricted-mode lines, written by pg_dump 13.22, 14.19, 15.14, 16.10, 17.6 and
/// later: dropped, because the drill wraps the whole load in a `\restrict` with its own key
/// (in restricted mode a second `\restrict` is an error).
const RESTRICT_LINES: [&[u8]; 2] = [b"\\restrict ", b"\\unrestrict "];

/// The longest line outside `COPY` data the scanner holds in memory. pg_dump writes SQL
/// statements a few kilobytes long at most; a longer "line" is not a dump (a decompression bomb
/// of zeros is one endless line).
pub const MAX_SQL_LINE: usize = 16 << 20;

/// The schema of the functions Discourse's readonly triggers call (`Migration::BaseDropper`).
/// A dump made with `--schema=public` refers to them without defining them; Discourse's restore
/// creates them first, and so do we.
const FUNCTION_SCHEMA: &str = "discourse_functions";

/// A table the dump creates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DumpTable {
    /// Line of its `CREATE TABLE` (1-based; 0 if the dump only copies into it).
    pub line: u64,
    /// Rows in its `COPY` block; `None` when the dump has no data for it.
    pub copy_rows: Option<u64>,
    /// Line of the `COPY` statement.
    pub copy_line: u64,
}

/// A sequence value the dump sets with `setval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DumpSequence {
    /// The value set.
    pub value: i64,
    /// Whether `nextval` returns the next value (`true`) or this one (`false`).
    pub is_called: bool,
    /// Line of the `setval` call.
    pub line: u64,
}

/// What a dump declares, keyed by the names exactly as pg_dump wrote them (already quoted where
/// SQL needs it, e.g. `public."user"`), so they can be put back into queries as they are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DumpFacts {
    /// Tables created or filled.
    pub tables: BTreeMap<String, DumpTable>,
    /// Sequences with a `setval`.
    pub sequences: BTreeMap<String, DumpSequence>,
    /// `discourse_functions` trigger functions the dump uses without defining.
    pub readonly_functions: BTreeSet<String>,
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// A problem with the dump's text itself.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The input ended inside a `COPY` block (a truncated dump).
    #[error("the dump ends inside the COPY block of {table} begun at line {line} (no `\\.` line): the dump is truncated")]
    Truncated {
        /// The table being copied.
        table: String,
        /// Line of its `COPY`.
        line: u64,
    },
    /// A `COPY` block for a table that already had one.
    #[error("line {line}: a second COPY block for {table} (the first began at line {first})")]
    DuplicateCopy {
        /// The table.
        table: String,
        /// This `COPY` line.
        line: u64,
        /// The first one.
        first: u64,
    },
    /// A psql meta-command outside `COPY` data: pg_dump writes none but `\restrict` and
    /// `\unrestrict`, and a backup must never make psql run a shell command, write a file or
    /// connect elsewhere.
    #[error(
        "line {line}: the dump holds the psql meta-command `{text}` outside COPY data; a \
         backup must never make psql run commands, write files or connect elsewhere, so the \
         dump is refused before psql sees that line (pg_dump writes no such line: the backup \
         was altered or crafted)"
    )]
    MetaCommand {
        /// The line.
        line: u64,
        /// The command, shortened.
        text: String,
    },
    /// A `CREATE EXTENSION` line whose extension is not created (not allowed, not on the
    /// server, or its name unreadable).
    #[error("line {line}: {message}")]
    Extension {
        /// The line.
        line: u64,
        /// Why.
        message: String,
    },
    /// A line outside `COPY` data longer than [`MAX_SQL_LINE`].
    #[error(
        "line {line}: more than {MAX_SQL_LINE} bytes without a line break outside COPY data: \
         not a pg_dump plain dump"
    )]
    LongLine {
        /// The line.
        line: u64,
    },
}

/// Reads a plain dump written to it, passing it on to `out` (usually `psql`'s input) with
/// Discourse's restore edits applied, and gathers [`DumpFacts`].
///
/// Line numbers stay those of the dump: a dropped line becomes an empty line, and the
/// definitions of missing readonly functions go on the same line as the trigger that needs
/// them, so `psql`'s error messages point at the right line of the dump.
pub struct DumpScanner<'h, W: Write> {
    out: W,
    /// Called with the name of each extension a `CREATE EXTENSION` line names, before the
    /// lines after it are passed on; an error refuses the dump.
    on_extension: Option<ExtensionHook<'h>>,
    facts: DumpFacts,
    line: Vec<u8>,
    /// Inside a `COPY` block: the table and the rows so far.
    copying: Option<(String, u64)>,
    /// Inside a `COPY` block: the first bytes of the current data line (enough to see `\.`);
    /// data lines stream straight through and are never held whole.
    copy_head: Vec<u8>,
    /// psql's view of quoting outside `COPY` data, to find meta-commands.
    meta: MetaScan,
    /// Inside a statement of [`DROPPED_STATEMENTS`]: its own lexer, to find where it ends.
    skipping: Option<MetaScan>,
    error: Option<DumpError>,
    /// A fatal refusal: nothing more is passed on.
    refused: bool,
}

/// See [`DumpScanner::on_extension`].
pub type ExtensionHook<'h> = Box<dyn FnMut(&str) -> Result<(), String> + 'h>;

impl<'h, W: Write> DumpScanner<'h, W> {
    /// A scanner passing the edited dump on to `out`.
    pub fn new(out: W) -> Self {
        DumpScanner {
            out,
            on_extension: None,
            facts: DumpFacts::default(),
            line: Vec::with_capacity(8192),
            copying: None,
            copy_head: Vec::with_capacity(4),
            meta: MetaScan::default(),
            skipping: None,
            error: None,
            refused: false,
        }
    }

    /// Processes the last line (if it had no newline), flushes `out` and returns the facts and
    /// `out`. Fails when the dump was truncated inside a `COPY` block or had another structural
    /// error.
    pub fn finish(mut self) -> io::Result<(Result<DumpFacts, DumpError>, W)> {
        if self.refused {
            let err = self.error.take().expect("a refusal has its error");
            return Ok((Err(err), self.out));
        }
        if self.copying.is_some() && !self.copy_head.is_empty() {
            self.end_copy_line();
        } else if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.handle_line(&line)?;
        }
        self.out.flush()?;
        if let Some(err) = self.error.take() {
            return Ok((Err(err), self.out));
        }
        if let Some((table, _)) = self.copying.take() {
            let line = self.facts.tables.get(&table).map_or(0, |t| t.copy_line);
            return Ok((Err(DumpError::Truncated { table, line }), self.out));
        }
        Ok((Ok(self.facts), self.out))
    }

    /// Calls `hook` with each extension the dump's `CREATE EXTENSION` lines name (the line
    /// itself is still dropped), before anything after that line is passed on, so `hook` can
    /// create it elsewhere in time; an `Err` refuses the dump with that reason.
    pub fn on_extension(mut self, hook: ExtensionHook<'h>) -> Self {
        self.on_extension = Some(hook);
        self
    }

    /// The writer the edited dump goes to.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The facts gathered so far.
    pub fn facts(&self) -> &DumpFacts {
        &self.facts
    }

    /// Why the dump was refused, when it was: after a write error, this tells a refusal (stop
    /// psql before it commits anything) from psql closing its input.
    pub fn refusal(&self) -> Option<&DumpError> {
        self.error.as_ref().filter(|_| self.refused)
    }

    fn refuse(&mut self, err: DumpError) -> io::Error {
        let e = io::Error::other(err.to_string());
        self.error = Some(err);
        self.refused = true;
        e
    }

    /// Passes on `COPY` data up to and including the next newline (or all of `data`); returns
    /// how many bytes were taken.
    fn copy_data(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = data.iter().position(|&b| b == b'\n').map(|p| p + 1);
        let chunk = &data[..end.unwrap_or(data.len())];
        let room = 4usize.saturating_sub(self.copy_head.len());
        self.copy_head
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
        self.out.write_all(chunk)?;
        if end.is_some() {
            self.end_copy_line();
        }
        Ok(chunk.len())
    }

    /// A data line of a `COPY` block ended: a row, or the block's end `\.`.
    fn end_copy_line(&mut self) {
        self.facts.lines += 1;
        let head = std::mem::take(&mut self.copy_head);
        let body = head.strip_suffix(b"\n").unwrap_or(&head);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let Some((table, rows)) = self.copying.as_mut() else {
            return;
        };
        if body == b"\\." {
            let (table, rows) = (std::mem::take(table), *rows);
            if let Some(t) = self.facts.tables.get_mut(&table) {
                t.copy_rows = Some(rows);
            }
            self.copying = None;
        } else {
            *rows += 1;
        }
        self.copy_head = head;
        self.copy_head.clear();
    }

    fn handle_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.facts.lines += 1;
        let n = self.facts.lines;
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let statement_start = self.meta.at_statement_start();
        if statement_start
            && self.skipping.is_none()
            && DROPPED_STATEMENTS.iter().any(|p| body.starts_with(p))
        {
            self.skipping = Some(MetaScan::default());
        }
        if let Some(skip) = self.skipping.as_mut() {
            // psql sees an empty line; the statement's own quoting decides where it ends.
            skip.line(line);
            if skip.at_statement_start() {
                self.skipping = None;
            }
            self.meta.line(b"\n");
            return self.out.write_all(b"\n");
        }
        if statement_start && body.starts_with(b"CREATE EXTENSION") {
            let name = super::extensions::named_in(body);
            if let Some(hook) = self.on_extension.as_mut() {
                let verdict = match &name {
                    Some(name) => hook(name),
                    None => {
                        Err("a CREATE EXTENSION line whose extension name cannot be read".into())
                    }
                };
                if let Err(message) = verdict {
                    return Err(self.refuse(DumpError::Extension { line: n, message }));
                }
            }
        }
        if DROPPED_PREFIXES.iter().any(|p| body.starts_with(p))
            || (statement_start && RESTRICT_LINES.iter().any(|p| body.starts_with(p)))
        {
            self.meta.line(b"\n");
            return self.out.write_all(b"\n");
        }
        if let Some(at) = self.meta.line(line) {
            let text: String = String::from_utf8_lossy(&body[at..])
                .chars()
                .take(60)
                .collect();
            return Err(self.refuse(DumpError::MetaCommand { line: n, text }));
        }
        if let Some(rest) = body.strip_prefix(b"COPY ") {
            if let Some((name, _)) = split_name(rest) {
                let table = self.facts.tables.entry(name.clone()).or_default();
                if table.copy_rows.is_some() || table.copy_line != 0 {
                    if self.error.is_none() {
                        self.error = Some(DumpError::DuplicateCopy {
                            table: name.clone(),
                            line: n,
                            first: table.copy_line,
                        });
                    }
                } else {
                    table.copy_line = n;
                }
                // psql reads data after a `COPY ... FROM stdin` statement of its own; a line
                // that only looks like one (inside a string, after an unfinished statement) is
                // SQL, and stays under the meta-command check.
                if body.ends_with(b"FROM stdin;") && statement_start {
                    self.copying = Some((name, 0));
                }
            }
        } else if let Some(rest) = strip_create_table(body) {
            if let Some((name, _)) = split_name(rest) {
                self.facts.tables.entry(name).or_default().line = n;
            }
        } else if let Some(rest) = body.strip_prefix(b"SELECT pg_catalog.setval(") {
            if let Some((name, value, is_called)) = parse_setval(rest) {
                self.facts.sequences.insert(
                    name,
                    DumpSequence {
                        value,
                        is_called,
                        line: n,
                    },
                );
            }
        } else if body.starts_with(b"CREATE TRIGGER")
            || body.starts_with(b"CREATE CONSTRAINT TRIGGER")
        {
            if let Some(func) = readonly_function(body) {
                if self.facts.readonly_functions.insert(func.clone()) {
                    self.out
                        .write_all(readonly_function_sql(&func).as_bytes())?;
                }
            }
        }
        self.out.write_all(line)
    }
}

impl<W: Write> Write for DumpScanner<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.refused {
            return Err(io::Error::other("the dump was refused"));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            if self.copying.is_some() {
                let n = self.copy_data(rest)?;
                rest = &rest[n..];
                continue;
            }
            let Some(pos) = rest.iter().position(|&b| b == b'\n') else {
                if self.line.len() + rest.len() > MAX_SQL_LINE {
                    let line = self.facts.lines + 1;
                    return Err(self.refuse(DumpError::LongLine { line }));
                }
                self.line.extend_from_slice(rest);
                break;
            };
            let (head, tail) = rest.split_at(pos + 1);
            if self.line.is_empty() {
                self.handle_line(head)?;
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.handle_line(&line)?;
                self.line = line;
                self.line.clear();
            }
            rest = tail;
        }
        self.facts.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn strip_create_table(body: &[u8]) -> Option<&[u8]> {
    for prefix in [
        &b"CREATE TABLE "[..],
        b"CREATE UNLOGGED TABLE ",
        b"CREATE TABLE IF NOT EXISTS ",
    ] {
        if let Some(rest) = body.strip_prefix(prefix) {
            return Some(rest);
        }
    }
    None
}

/// Splits a possibly qualified, possibly quoted SQL name off the start of `s`: returns the name
/// exactly as written and the rest.
fn split_name(s: &[u8]) -> Option<(String, &[u8])> {
    let mut i = 0;
    loop {
        if s.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match s.get(i) {
                    None => return None,
                    Some(b'"') if s.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        } else {
            let start = i;
            while s
                .get(i)
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80)
            {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
        } else {
            break;
        }
    }
    let name = std::str::from_utf8(&s[..i]).ok()?.to_string();
    Some((name, &s[i..]))
}

/// Parses `'name', 42, true);` (the part after `SELECT pg_catalog.setval(`).
fn parse_setval(s: &[u8]) -> Option<(String, i64, bool)> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_prefix('\'')?;
    let mut name = String::new();
    let mut chars = s.char_indices();
    let end = loop {
        let (i, c) = chars.next()?;
        if c == '\'' {
            if s[i + 1..].starts_with('\'') {
                chars.next();
                name.push('\'');
                continue;
            }
            break i + 1;
        }
        name.push(c);
    };
    let rest = s[end..].strip_suffix(");")?;
    let mut parts = rest.split(',').map(str::trim);
    if !parts.next()?.is_empty() {
        return None;
    }
    let value: i64 = parts.next()?.parse().ok()?;
    let is_called = match parts.next()? {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    Some((name, value, is_called))
}

/// The `discourse_functions` function a trigger line executes, if any.
fn readonly_function(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let needle = format!("{FUNCTION_SCHEMA}.");
    let at = text.find(&needle)? + needle.len();
    let rest = &text[at..];
    let end = rest.find('(')?;
    let name = &rest[..end];
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| name.to_string())
}

/// The SQL Discourse runs to create a readonly trigger function, on one line.
pub(crate) fn readonly_function_sql(name: &str) -> String {
    // Discourse's message names the table or column; the name carries both.
    let what = name
        .strip_prefix("raise_")
        .and_then(|n| n.strip_suffix("_readonly"))
        .unwrap_or(name);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {FUNCTION_SCHEMA}; CREATE OR REPLACE FUNCTION \
         {FUNCTION_SCHEMA}.{name}() RETURNS trigger AS $rcr$ BEGIN RAISE EXCEPTION \
         'Discourse: {what} is read only'; END $rcr$ LANGUAGE plpgsql; "
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> (Result<DumpFacts, DumpError>, String) {
        let mut s = DumpScanner::new(Vec::new());
        // Feed in small pieces so lines straddle writes.
        for chunk in text.as_bytes().chunks(7) {
            if s.write_all(chunk).is_err() {
                // A refusal: finish reports it.
                break;
            }
        }
        let (facts, out) = s.finish().unwrap();
        (facts, String::from_utf8(out).unwrap())
    }

    const DUMP: &str = "SET default_table_access_method = heap;\n\
        CREATE SCHEMA public;\n\
        CREATE TABLE public.users (\n    id integer\n);\n\
        CREATE TABLE public.\"user\"\"s\" (\n    id integer\n);\n\
        CREATE TRIGGER t BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION discourse_functions.raise_users_readonly();\n\
        COPY public.users (id) FROM stdin;\n1\n2\nDROP SCHEMA x\n\\.\n\n\
        COPY public.\"user\"\"s\" (id) FROM stdin;\n\\.\n\
        SELECT pg_catalog.setval('public.\"odd''seq\"', 42, true);\n\
        SELECT pg_catalog.setval('public.users_id_seq', 1, false);\n";

    #[test]
    fn counts_copy_rows_and_reads_setval() {
        let (facts, _) = scan(DUMP);
        let facts = facts.unwrap();
        assert_eq!(facts.tables["public.users"].copy_rows, Some(3));
        assert_eq!(facts.tables["public.users"].line, 3);
        assert_eq!(facts.tables["public.\"user\"\"s\""].copy_rows, Some(0));
        assert_eq!(
            facts.sequences["public.\"odd'seq\""],
            DumpSequence {
                value: 42,
                is_called: true,
                line: 18
            }
        );
        assert!(!facts.sequences["public.users_id_seq"].is_called);
        assert_eq!(facts.lines, 19);
    }

    #[test]
    fn applies_discourse_edits_keeping_line_numbers() {
        let (_, out) = scan(DUMP);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 19);
        assert_eq!(lines[0], "");
        assert_eq!(lines[1], "");
        assert!(lines[8].starts_with("CREATE SCHEMA IF NOT EXISTS discourse_functions;"));
        assert!(lines[8].ends_with("raise_users_readonly();"));
        // Data lines are never edited, even when they look like a dropped statement.
        assert_eq!(lines[12], "DROP SCHEMA x");
    }

    #[test]
    fn truncated_copy_block_is_an_error_naming_table_and_line() {
        let (facts, _) = scan("COPY public.posts (id) FROM stdin;\n1\n2\n");
        let err = facts.unwrap_err().to_string();
        assert!(
            err.contains("public.posts") && err.contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn last_line_without_newline_is_read() {
        let (facts, _) = scan("COPY public.a (id) FROM stdin;\n1\n\\.");
        assert_eq!(facts.unwrap().tables["public.a"].copy_rows, Some(1));
    }

    #[test]
    fn meta_command_lines_are_refused_and_never_passed_on() {
        let mut s = DumpScanner::new(Vec::new());
        s.write_all(b"CREATE TABLE public.a (id int);\n").unwrap();
        let err = s.write_all(b"\\! id > /tmp/x\nSELECT 1;\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(s.refusal().is_some());
        assert!(
            s.write_all(b"SELECT 2;\n").is_err(),
            "a refused dump takes no more"
        );
        let (facts, out) = s.finish().unwrap();
        let msg = facts.unwrap_err().to_string();
        assert!(msg.contains("meta-command `\\! id > /tmp/x`"), "{msg}");
        assert_eq!(out, b"CREATE TABLE public.a (id int);\n");
    }

    #[test]
    fn restrict_lines_and_extensions_are_dropped_but_copy_data_is_kept() {
        let (facts, out) = scan(
            "\\restrict abc\nCREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;\n\
             COMMENT ON EXTENSION hstore IS 'x';\n\
             COPY public.a (t) FROM stdin;\n\\\\! not a command\n\\N\n\\.\n\\unrestrict abc\n",
        );
        assert_eq!(facts.unwrap().tables["public.a"].copy_rows, Some(2));
        assert_eq!(
            out,
            "\n\n\nCOPY public.a (t) FROM stdin;\n\\\\! not a command\n\\N\n\\.\n\n"
        );
    }

    #[test]
    fn a_copy_line_inside_an_open_string_does_not_start_data() {
        // psql is still inside the string, so the "data" after it is SQL to psql.
        let (facts, _) = scan("SELECT 'open\nCOPY public.a (t) FROM stdin;\n';\n\\! id\n\\.\n");
        let msg = facts.unwrap_err().to_string();
        assert!(msg.contains("line 4") && msg.contains("`\\! id`"), "{msg}");
    }

    #[test]
    fn copy_data_streams_without_holding_lines_but_sql_lines_are_capped() {
        let mut s = DumpScanner::new(io::sink());
        s.write_all(b"COPY public.a (t) FROM stdin;\n").unwrap();
        let big = vec![b'x'; 1 << 20];
        for _ in 0..(MAX_SQL_LINE >> 20) + 2 {
            s.write_all(&big).unwrap();
        }
        s.write_all(b"\n\\.\n").unwrap();
        assert!(s.line.capacity() < 1 << 16, "a COPY row was held in memory");
        let err = (0..(MAX_SQL_LINE >> 20) + 2)
            .find_map(|_| s.write_all(&big).err())
            .expect("an endless SQL line is refused");
        assert!(err.to_string().contains("without a line break"), "{err}");
        let (facts, _) = s.finish().unwrap();
        assert!(facts.is_err());
    }

    #[test]
    fn discourse_filters_drop_each_statement_and_keep_line_numbers() {
        // Each statement Discourse's restore removes, as pg_dump writes it, between lines
        // that stay.
        let dropped = [
            "DROP SCHEMA public;",
            "CREATE SCHEMA public;",
            "COMMENT ON SCHEMA public IS 'standard public schema';",
            "SET default_table_access_method = heap;",
            "SET transaction_timeout = 0;",
            "CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;",
            "COMMENT ON EXTENSION hstore IS 'data type for storing sets of (key, value) pairs';",
            "\\restrict Abc123",
            "\\unrestrict Abc123",
            "CREATE FUNCTION discourse_functions.raise_x_readonly() RETURNS trigger\n    \
             LANGUAGE plpgsql\n    AS $$\n  BEGIN\n    RAISE EXCEPTION 'x; y';\n  END\n$$;",
            "CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (\n    \
             host 'db', dbname 'x'\n);",
            "CREATE USER MAPPING FOR discourse SERVER remote OPTIONS (\n    user 'u'\n);",
            "CREATE FOREIGN TABLE public.remote_posts (\n    id integer\n)\nSERVER remote;",
        ];
        for statement in dropped {
            let dump = format!(
                "SET lock_timeout = 0;\n{statement}\nCREATE TABLE public.a (\n    id integer\n);\n"
            );
            let (facts, out) = scan(&dump);
            let lines = statement.lines().count();
            let expected = format!(
                "SET lock_timeout = 0;\n{}CREATE TABLE public.a (\n    id integer\n);\n",
                "\n".repeat(lines)
            );
            assert_eq!(out, expected, "{statement}");
            assert_eq!(facts.unwrap().tables["public.a"].line, 2 + lines as u64);
        }
    }

    #[test]
    fn only_discourse_functions_are_dropped_not_other_functions() {
        let dump = "CREATE FUNCTION public.f() RETURNS integer\n    LANGUAGE sql\n    AS $$ SELECT 1 $$;\n";
        let (_, out) = scan(dump);
        assert_eq!(out, dump);
    }

    #[test]
    fn the_extension_hook_runs_before_later_lines_and_can_refuse() {
        let seen = std::cell::RefCell::new(Vec::new());
        let mut s = DumpScanner::new(Vec::new()).on_extension(Box::new(|name| {
            seen.borrow_mut().push(name.to_string());
            if name == "file_fdw" {
                Err(format!("{name} not allowed"))
            } else {
                Ok(())
            }
        }));
        s.write_all(b"CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" WITH SCHEMA public;\n")
            .unwrap();
        assert_eq!(
            *seen.borrow(),
            ["pg_trgm"],
            "called at its line, before more input"
        );
        let err = s
            .write_all(b"SELECT 1;\nCREATE EXTENSION file_fdw;\nSELECT 2;\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("line 3: file_fdw not allowed"),
            "{err}"
        );
        let (facts, out) = s.finish().unwrap();
        assert!(facts.is_err());
        assert_eq!(out, b"\nSELECT 1;\n", "nothing from the refused line on");
    }
}
