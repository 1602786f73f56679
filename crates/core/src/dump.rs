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
//!
//! A module of its own, below both its readers: the drill (loading and checking a dump) and
//! `repo/browse.rs` (`dvault ls --tables`, counting rows without a database). Children: the
//! statement heads (`statements`), Discourse's edits (`filters`), the meta-command guard
//! (`meta`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::Serialize;

use meta::MetaScan;

mod filters;
mod meta;
mod statements;
#[cfg(test)]
mod tests;

pub(crate) use filters::readonly_function_sql;
use filters::{readonly_function, DROPPED_PREFIXES, DROPPED_STATEMENTS, RESTRICT_LINES};
use statements::{extension_named_in, parse_setval, split_name, strip_create_table};

/// The longest line outside `COPY` data the scanner holds in memory. pg_dump writes SQL
/// statements a few kilobytes long at most; a longer "line" is not a dump (a decompression bomb
/// of zeros is one endless line).
pub const MAX_SQL_LINE: usize = 16 << 20;

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
            let name = extension_named_in(body);
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
