//! How long each phase of a restore took: pre-data (tables, functions, sequences), data (the
//! `COPY` blocks and sequence values), post-data (indexes, constraints, triggers).
//!
//! An admin wants to know how long getting the forum back takes, and which part of it: a
//! large forum spends most of it building indexes. Neither psql nor pg_restore reports
//! phases, so they are read from what passes by:
//! - a plain dump streams into psql through [`PhaseClock`], which notes when the first entry
//!   of the data section and then the first entry after it pass: pg_dump writes its sections in
//!   order and heads every entry with a comment `-- Name: x; Type: T; ...` (`-- Data for
//!   Name: ...` for table data). The clock notes when psql takes the bytes (a pipe and a 64 KiB
//!   buffer ahead of it), so each phase is exact to that much.
//! - pg_restore `--verbose` names each item as it starts it (`processing data for table`,
//!   `creating INDEX ...`, `launching item N INDEX ...` with `--jobs`);
//!   [`starts_post_data`] tells when the first post-data item starts. With `--jobs`, post-data
//!   items of one table may start while another table's data still loads: the data phase is
//!   then the time until the first index or constraint began.

use std::io::{self, Write};
use std::time::Instant;

use serde::Serialize;

/// Durations of the phases of one load, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Creating tables, sequences and functions.
    pub pre_data_secs: f64,
    /// Loading the rows and setting the sequences.
    pub data_secs: f64,
    /// Building indexes, constraints and triggers (and committing, for a plain dump).
    pub post_data_secs: f64,
}

impl Phases {
    /// The three phases from the start, the moments data and post-data began (when seen) and
    /// the end.
    pub(crate) fn split(
        start: Instant,
        data: Option<Instant>,
        post: Option<Instant>,
        end: Instant,
    ) -> Phases {
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let data_at = data.or(post).unwrap_or(end);
        let post_at = post.unwrap_or(end).max(data_at);
        Phases {
            pre_data_secs: secs(start, data_at),
            data_secs: secs(data_at, post_at),
            post_data_secs: secs(post_at, end),
        }
    }

    /// All three together.
    pub fn total(&self) -> f64 {
        self.pre_data_secs + self.data_secs + self.post_data_secs
    }
}

/// Whether an entry type (as pg_dump and pg_restore name it) belongs to the data section.
fn is_data_type(t: &str) -> bool {
    ["TABLE DATA", "SEQUENCE SET", "BLOB", "LARGE OBJECT"]
        .iter()
        .any(|d| t.starts_with(d))
}

/// A writer that passes everything on and notes when the data section and then the
/// post-data section begin in a plain dump going by.
pub(crate) struct PhaseClock<W> {
    inner: W,
    /// The start of the current line, when it may be an entry's comment.
    line: Vec<u8>,
    at_line_start: bool,
    collecting: bool,
    data_at: Option<Instant>,
    post_at: Option<Instant>,
}

/// Enough of a comment line to hold its `Type:` for any name pg_dump writes in practice.
const MAX_HEAD: usize = 4096;

impl<W: Write> PhaseClock<W> {
    pub(crate) fn new(inner: W) -> Self {
        PhaseClock {
            inner,
            line: Vec::new(),
            at_line_start: true,
            collecting: false,
            data_at: None,
            post_at: None,
        }
    }

    /// When the data section and the post-data section began (`None`: not seen).
    pub(crate) fn marks(&self) -> (Option<Instant>, Option<Instant>) {
        (self.data_at, self.post_at)
    }

    #[cfg(test)]
    fn into_inner(self) -> W {
        self.inner
    }

    fn end_of_line(&mut self) {
        if self.collecting {
            if let Some(t) = entry_type(&self.line) {
                let now = Instant::now();
                if is_data_type(&t) {
                    self.data_at.get_or_insert(now);
                } else if self.data_at.is_some() && self.post_at.is_none() {
                    self.post_at = Some(now);
                }
            }
        }
        self.line.clear();
        self.collecting = false;
        self.at_line_start = true;
    }
}

/// `-- Name: posts_pkey; Type: CONSTRAINT; Schema: public; Owner: -` -> `CONSTRAINT`.
fn entry_type(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    if !(text.starts_with("-- Name: ") || text.starts_with("-- Data for Name: ")) {
        return None;
    }
    let at = text.find("; Type: ")? + "; Type: ".len();
    let rest = &text[at..];
    Some(rest[..rest.find(';')?].to_string())
}

impl<W: Write> Write for PhaseClock<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.end_of_line();
                continue;
            }
            if self.at_line_start {
                self.at_line_start = false;
                self.collecting = b == b'-';
            }
            if self.collecting {
                if self.line.len() < MAX_HEAD {
                    self.line.push(b);
                } else {
                    self.collecting = false;
                    self.line.clear();
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether a line of `pg_restore --verbose` (restoring the data and post-data sections) says
/// a post-data item starts: `creating INDEX "public.t_x"`, or with `--jobs`
/// `launching item 3203 INDEX t_x`; data items are `processing data for table ...`,
/// `executing SEQUENCE SET ...`, `launching item N TABLE DATA ...`.
pub(crate) fn starts_post_data(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("pg_restore: ") else {
        return false;
    };
    let item = if let Some(r) = rest.strip_prefix("creating ") {
        r
    } else if let Some(r) = rest.strip_prefix("launching item ") {
        r.trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
    } else {
        return false;
    };
    !item.is_empty() && !is_data_type(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_comments_mark_the_data_and_post_data_sections() {
        let mut clock = PhaseClock::new(Vec::new());
        let dump = "-- Name: t; Type: TABLE; Schema: public; Owner: -\nCREATE TABLE t (id int);\n\
                    -- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: -\n\
                    COPY public.t (id) FROM stdin;\n-- Name: x; Type: INDEX;\n\\.\n";
        // Write in small pieces: a comment split across writes is still read whole.
        let bytes = dump.as_bytes();
        let split = dump.find("Type: TABLE DATA").unwrap();
        clock.write_all(&bytes[..split]).unwrap();
        assert_eq!(clock.marks(), (None, None));
        clock.write_all(&bytes[split..]).unwrap();
        let (data, post) = clock.marks();
        // The `-- Name:` inside COPY data looks like an entry: the clock cannot tell, and a
        // phase boundary a few rows early is harmless.
        assert!(data.is_some() && post.is_some());
        let mut clock = PhaseClock::new(Vec::new());
        clock
            .write_all(b"-- Name: posts_pkey; Type: CONSTRAINT; Schema: public; Owner: -\n")
            .unwrap();
        assert_eq!(clock.marks(), (None, None), "no post-data before data");
        assert_eq!(clock.into_inner().len(), 64);
    }

    #[test]
    fn pg_restore_verbose_lines_tell_post_data_items() {
        assert!(starts_post_data(
            "pg_restore: creating INDEX \"public.t_x\""
        ));
        assert!(starts_post_data(
            "pg_restore: creating FK CONSTRAINT \"public.u u_id_fkey\""
        ));
        assert!(starts_post_data(
            "pg_restore: launching item 3202 CONSTRAINT t t_pkey"
        ));
        assert!(!starts_post_data(
            "pg_restore: launching item 3347 TABLE DATA t"
        ));
        assert!(!starts_post_data(
            "pg_restore: launching item 3358 SEQUENCE SET s"
        ));
        assert!(!starts_post_data(
            "pg_restore: processing data for table \"public.t\""
        ));
        assert!(!starts_post_data("pg_restore: processing item 214 TABLE t"));
    }

    #[test]
    fn phases_split_at_the_marks() {
        let t0 = Instant::now();
        let d = t0 + std::time::Duration::from_millis(100);
        let p = t0 + std::time::Duration::from_millis(300);
        let e = t0 + std::time::Duration::from_millis(600);
        let ph = Phases::split(t0, Some(d), Some(p), e);
        assert!((ph.pre_data_secs - 0.1).abs() < 1e-9);
        assert!((ph.data_secs - 0.2).abs() < 1e-9);
        assert!((ph.post_data_secs - 0.3).abs() < 1e-9);
        let none = Phases::split(t0, None, None, e);
        assert!((none.pre_data_secs - 0.6).abs() < 1e-9 && none.data_secs == 0.0);
    }
}
