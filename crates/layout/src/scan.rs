//! Reading pg_dump's COPY text: the `COPY ... FROM stdin;` line that opens a block, the
//! end-of-data line, and the sort key of a row.
//!
//! Why hand-written: no crate parses pg_dump's plain output, and the layout needs only these
//! three facts of COPY's text format (fields split by tab, rows ended by newline, both escaped
//! inside values as `\t` and `\n`; see PostgreSQL's documentation of COPY, "Text Format").

/// The end-of-data line of a COPY block.
pub(crate) const END_OF_DATA: &[u8] = b"\\.\n";

/// What the opening line of a COPY block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyHeader {
    /// The table as pg_dump names it (`public.users`).
    pub table: String,
    /// The column names, when the line lists them.
    pub columns: Option<Vec<String>>,
}

/// Parses `COPY <table> [(<col>, ...)] FROM stdin;\n`; `None` for any other line.
pub(crate) fn parse_copy_line(line: &[u8]) -> Option<CopyHeader> {
    let rest = line.strip_prefix(b"COPY ")?;
    let rest = rest.strip_suffix(b" FROM stdin;\n")?;
    let text = std::str::from_utf8(rest).ok()?;
    match text.find(" (") {
        Some(i) if text.ends_with(')') => Some(CopyHeader {
            table: text[..i].to_string(),
            columns: split_columns(&text[i + 2..text.len() - 1]),
        }),
        _ => Some(CopyHeader {
            table: text.to_string(),
            columns: None,
        }),
    }
}

/// Splits `a, "b, c", d` at the commas outside double quotes; `None` when the quotes do not
/// balance.
fn split_columns(list: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in list.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    out.push(cur.trim().to_string());
    Some(out)
}

/// Which fields order a table's rows: the `id` column when the header names one, else the first
/// column, with the second column as tie-break (join tables such as `topic_users` in a
/// directory-format dump, whose data files carry no column names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// Index of the primary key field.
    pub primary: usize,
    /// Index of the tie-break field, if any.
    pub secondary: Option<usize>,
}

impl KeySpec {
    /// The key for a block with these column names (or none known).
    pub fn for_columns(columns: Option<&[String]>) -> Self {
        match columns.and_then(|c| c.iter().position(|n| n == "id" || n == "\"id\"")) {
            Some(i) => Self {
                primary: i,
                secondary: None,
            },
            None => Self {
                primary: 0,
                secondary: Some(1),
            },
        }
    }

    /// The row's key (`row` without its newline); `None` when the primary field is not a
    /// decimal integer. A missing or non-numeric tie-break counts as 0.
    pub fn key(&self, row: &[u8]) -> Option<(i64, i64)> {
        let mut primary = None;
        let mut secondary = 0;
        let last = self.secondary.unwrap_or(0).max(self.primary);
        for (i, field) in row.split(|b| *b == b'\t').enumerate().take(last + 1) {
            if i == self.primary {
                primary = Some(parse_i64(field)?);
            } else if Some(i) == self.secondary {
                secondary = parse_i64(field).unwrap_or(0);
            }
        }
        primary.map(|p| (p, secondary))
    }
}

/// A decimal integer as COPY writes it (optional minus sign, digits only).
fn parse_i64(field: &[u8]) -> Option<i64> {
    let (neg, digits) = match field.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

/// Number of fields of a row (`row` without its newline).
pub(crate) fn field_count(row: &[u8]) -> usize {
    1 + row.iter().filter(|b| **b == b'\t').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_line_gives_table_and_quoted_columns() {
        let h = parse_copy_line(
            b"COPY public.categories (id, name, \"position\", \"a, b\") FROM stdin;\n",
        )
        .expect("a COPY line");
        assert_eq!(h.table, "public.categories");
        assert_eq!(
            h.columns.as_deref(),
            Some(&["id", "name", "\"position\"", "\"a, b\""].map(String::from)[..])
        );
        assert_eq!(
            parse_copy_line(b"COPY public.t FROM stdin;\n").map(|h| h.columns),
            Some(None)
        );
        assert_eq!(parse_copy_line(b"COPY public.t (a) TO stdout;\n"), None);
        assert_eq!(parse_copy_line(b"-- COPY public.t (a) FROM stdin;\n"), None);
    }

    #[test]
    fn key_uses_the_id_column_or_the_first_two() {
        let cols: Vec<String> = ["user_id", "topic_id", "id"].map(String::from).to_vec();
        let k = KeySpec::for_columns(Some(&cols));
        assert_eq!(k.key(b"5\t7\t42"), Some((42, 0)));
        let k = KeySpec::for_columns(None);
        assert_eq!(k.key(b"5\t7\t42"), Some((5, 7)));
        assert_eq!(k.key(b"5\t\\N\t42"), Some((5, 0)));
        assert_eq!(k.key(b"\\N\t7"), None);
        assert_eq!(k.key(b"abc\t7"), None);
        assert_eq!(k.key(b"-3"), Some((-3, 0)));
        assert_eq!(k.key(b""), None);
    }
}
