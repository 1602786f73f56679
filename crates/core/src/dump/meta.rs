//! Finding psql meta-commands (`\! cmd`, `\o file`, `\connect db`, `\copy ... program`) in a
//! plain dump before psql sees it, so that a crafted backup is refused instead of run.
//!
//! psql treats a backslash as the start of a meta-command anywhere outside a string literal,
//! a quoted identifier, a dollar-quoted body or a comment, also in the middle of a line
//! (psql's own lexer, `src/fe_utils/psqlscan.l`). So this follows the same quoting rules, byte
//! by byte, across lines. One rule depends on the session: whether a backslash inside a plain
//! `'...'` string escapes the next character (`standard_conforming_strings = off`). A dump can
//! change that setting in ways a line reader cannot follow (`set_config`, a function's `SET`
//! clause), so two lexers run side by side, one for each setting, and a backslash that either of
//! them sees outside quotes counts. That can only refuse more, never less, than psql would run.
//!
//! This is one of two guards: the drill's load also runs inside psql's `\restrict` mode (see
//! `drill/load.rs`), which blocks every meta-command but `\unrestrict` with the right key. On a
//! psql too old for `\restrict`, this scanner alone keeps meta-commands out.

/// Where a lexer is, carried across lines.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Plain SQL text.
    Normal,
    /// After a `-` or a `/` in plain text: maybe a comment starts.
    Slash,
    Dash,
    /// Inside `'...'`; `escapes`: a backslash escapes the next byte (`E'...'`, or every string
    /// when standard_conforming_strings is off).
    Quote {
        escapes: bool,
    },
    /// After a backslash inside such a string.
    QuoteEscape,
    /// After a `'` inside a string: a second `'` continues it.
    QuoteEnd {
        escapes: bool,
    },
    /// Inside `"..."`.
    Ident,
    IdentEnd,
    /// Reading the tag of a possible dollar quote (`$tag$`).
    DollarTag(Vec<u8>),
    /// Inside a dollar-quoted body ending with `$tag$`.
    Dollar(Vec<u8>),
    /// `-- ...` up to the end of the line.
    LineComment,
    /// `/* ... */`, nested as PostgreSQL nests them.
    BlockComment(u32),
}

#[derive(Debug, Clone)]
struct Lexer {
    state: State,
    /// In plain `'...'` strings a backslash escapes (standard_conforming_strings = off).
    plain_escapes: bool,
    /// The last two bytes of plain text (for `E'`: an `E` that starts a token).
    last: [u8; 2],
    /// Something other than white space or comments since the last `;`.
    in_statement: bool,
    /// The recent bytes of a dollar-quoted body, to find its end tag.
    window: Vec<u8>,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Lexer {
    fn new(plain_escapes: bool) -> Self {
        Lexer {
            state: State::Normal,
            plain_escapes,
            last: [b' ', b' '],
            in_statement: false,
            window: Vec::new(),
        }
    }

    /// Feeds one byte; returns `true` when it is a backslash psql would read as a meta-command.
    fn byte(&mut self, b: u8) -> bool {
        match std::mem::replace(&mut self.state, State::Normal) {
            State::Normal => return self.normal(b),
            State::Dash if b == b'-' => self.state = State::LineComment,
            State::Slash if b == b'*' => self.state = State::BlockComment(1),
            State::Dash | State::Slash => {
                self.in_statement = true;
                return self.normal(b);
            }
            State::Quote { escapes } => {
                self.state = match b {
                    b'\'' => State::QuoteEnd { escapes },
                    b'\\' if escapes => State::QuoteEscape,
                    _ => State::Quote { escapes },
                }
            }
            // Only strings with escapes get here.
            State::QuoteEscape => self.state = State::Quote { escapes: true },
            State::QuoteEnd { escapes } => {
                if b == b'\'' {
                    self.state = State::Quote { escapes };
                } else {
                    self.last = [b'\'', b'\''];
                    return self.normal(b);
                }
            }
            State::Ident => {
                self.state = if b == b'"' {
                    State::IdentEnd
                } else {
                    State::Ident
                }
            }
            State::IdentEnd => {
                if b == b'"' {
                    self.state = State::Ident;
                } else {
                    self.last = [b'"', b'"'];
                    return self.normal(b);
                }
            }
            State::DollarTag(mut tag) => {
                let first = tag.is_empty();
                if b == b'$' {
                    self.window.clear();
                    self.state = State::Dollar(tag);
                } else if is_ident(b) && !(first && b.is_ascii_digit()) {
                    tag.push(b);
                    self.state = State::DollarTag(tag);
                } else {
                    // `$1` or a lone `$`: not a dollar quote.
                    self.last = [b'x', b'x'];
                    return self.normal(b);
                }
            }
            State::Dollar(tag) => {
                self.window.push(b);
                let end_len = tag.len() + 2;
                if self.window.len() > end_len {
                    self.window.drain(..self.window.len() - end_len);
                }
                let closed = self.window.len() == end_len
                    && self.window[0] == b'$'
                    && self.window[end_len - 1] == b'$'
                    && self.window[1..end_len - 1] == tag[..];
                self.state = if closed {
                    self.last = [b'$', b'$'];
                    State::Normal
                } else {
                    State::Dollar(tag)
                };
            }
            State::LineComment => {
                self.state = if b == b'\n' {
                    State::Normal
                } else {
                    State::LineComment
                }
            }
            State::BlockComment(depth) => {
                // Two-byte markers: look at the previous byte kept in `last`.
                let prev = self.last[1];
                self.last = [prev, b];
                self.state = if prev == b'*' && b == b'/' {
                    self.last[1] = b' ';
                    if depth == 1 {
                        State::Normal
                    } else {
                        State::BlockComment(depth - 1)
                    }
                } else if prev == b'/' && b == b'*' {
                    self.last[1] = b' ';
                    State::BlockComment(depth + 1)
                } else {
                    State::BlockComment(depth)
                };
            }
        }
        false
    }

    fn normal(&mut self, b: u8) -> bool {
        let [p2, p1] = self.last;
        self.last = [p1, b];
        match b {
            b'\\' => return true,
            b'\'' => {
                // `E'...'` takes backslash escapes whatever the setting; `nameE'` does not
                // start one (psql's lexer reads `nameE` as one identifier).
                let e_string = (p1 == b'e' || p1 == b'E') && !is_ident(p2);
                self.state = State::Quote {
                    escapes: e_string || self.plain_escapes,
                };
            }
            b'"' => self.state = State::Ident,
            b'$' if !is_ident(p1) => self.state = State::DollarTag(Vec::new()),
            b'-' => {
                self.state = State::Dash;
                return false;
            }
            b'/' => {
                self.state = State::Slash;
                self.last = [p1, b' '];
                return false;
            }
            b';' => {
                self.in_statement = false;
                return false;
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            self.in_statement = true;
        }
        false
    }

    /// Plain text, no statement begun since the last `;`.
    fn at_statement_start(&self) -> bool {
        self.state == State::Normal && !self.in_statement
    }
}

/// Two lexers, one for each `standard_conforming_strings` setting, fed the dump outside
/// `COPY` data.
#[derive(Debug, Clone)]
pub(crate) struct MetaScan {
    lexers: [Lexer; 2],
}

impl Default for MetaScan {
    fn default() -> Self {
        MetaScan {
            lexers: [Lexer::new(false), Lexer::new(true)],
        }
    }
}

impl MetaScan {
    /// Feeds one line (with its newline); returns the byte offset of the first backslash that
    /// psql would read as a meta-command under either setting.
    pub(crate) fn line(&mut self, line: &[u8]) -> Option<usize> {
        let mut found = None;
        for (i, &b) in line.iter().enumerate() {
            let mut hit = false;
            for lexer in &mut self.lexers {
                hit |= lexer.byte(b);
            }
            if hit && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// Whether psql is between statements here under both settings: only then does a
    /// `COPY ... FROM stdin;` line start a block of data.
    pub(crate) fn at_statement_start(&self) -> bool {
        self.lexers.iter().all(Lexer::at_statement_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_meta(text: &str) -> Option<(usize, usize)> {
        let mut scan = MetaScan::default();
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if let Some(at) = scan.line(line.as_bytes()) {
                return Some((n + 1, at));
            }
        }
        None
    }

    #[test]
    fn meta_commands_are_found_at_line_start_and_after_a_statement() {
        assert_eq!(first_meta("\\! id\n"), Some((1, 0)));
        assert_eq!(first_meta("SELECT 1;\n  \\o /tmp/x\n"), Some((2, 2)));
        assert_eq!(
            first_meta("CREATE TABLE t (a int); \\! id\n"),
            Some((1, 24))
        );
        assert_eq!(first_meta("SELECT 1 \\g\n"), Some((1, 9)));
    }

    #[test]
    fn backslashes_inside_quotes_comments_and_dollar_bodies_are_sql() {
        let sql = "COMMENT ON TABLE t IS 'C:\\dir';\n\
                   SELECT E'it\\'s \\n';\n\
                   SELECT \"we\\ird\"\"\\\";\n\
                   -- a comment \\! id\n\
                   /* block /* nested \\o */ still \\q */ SELECT 1;\n\
                   CREATE FUNCTION f() RETURNS text AS $body$ SELECT '\\'; $x$ \\! $body$ LANGUAGE sql;\n\
                   SELECT $$a\\b$$, 'multi\nline \\ string';\n";
        assert_eq!(first_meta(sql), None);
    }

    #[test]
    fn either_string_setting_counts() {
        // With standard_conforming_strings off, `\'` does not end the string, so the
        // backslash command after it is inside quotes; with it on (pg_dump's setting) it is
        // outside. Both readings are checked.
        assert_eq!(first_meta("SELECT 'a\\' \\! id ;'\n"), Some((1, 12)));
        assert_eq!(first_meta("SELECT 'a\\'b' \\! id\n"), Some((1, 14)));
    }

    #[test]
    fn an_identifier_ending_in_e_does_not_start_an_escape_string() {
        // psql reads `nameE` as one identifier, then a plain string: with standard strings on,
        // the backslash ends nothing, the string closes and `\!` is a command.
        assert_eq!(first_meta("SELECT nameE'x\\' \\! id\n"), Some((1, 17)));
    }

    #[test]
    fn statement_starts_are_tracked() {
        let mut scan = MetaScan::default();
        assert!(scan.at_statement_start());
        scan.line(b"SELECT 'open\n");
        assert!(!scan.at_statement_start());
        scan.line(b"string';\n");
        assert!(scan.at_statement_start());
        scan.line(b"CREATE TABLE t (\n");
        assert!(!scan.at_statement_start());
        scan.line(b");  -- done\n");
        assert!(scan.at_statement_start());
    }
}
