//! Writing PostgreSQL `COPY ... FROM stdin` text and SQL literals, and simulated timestamps.

use std::fmt::Write as _;

/// One row of COPY text being built; fields are tab-separated, the row ends with a newline.
pub struct Row<'a> {
    buf: &'a mut String,
    first: bool,
}

impl<'a> Row<'a> {
    /// Starts a row at the end of `buf`.
    pub fn new(buf: &'a mut String) -> Row<'a> {
        Row { buf, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push('\t');
        }
        self.first = false;
    }

    /// A text field, escaped as COPY's text format requires.
    pub fn s(&mut self, v: &str) -> &mut Self {
        self.sep();
        for c in v.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\t' => self.buf.push_str("\\t"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                c => self.buf.push(c),
            }
        }
        self
    }

    /// A number or other value whose `Display` needs no escaping.
    pub fn n<T: std::fmt::Display>(&mut self, v: T) -> &mut Self {
        self.sep();
        let _ = write!(self.buf, "{v}");
        self
    }

    /// SQL NULL.
    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.push_str("\\N");
        self
    }

    /// A boolean (`t`/`f`).
    pub fn b(&mut self, v: bool) -> &mut Self {
        self.sep();
        self.buf.push(if v { 't' } else { 'f' });
        self
    }

    /// A timestamp given as microseconds since the Unix epoch.
    pub fn ts(&mut self, micros: i64) -> &mut Self {
        self.sep();
        push_timestamp(self.buf, micros);
        self
    }

    /// An optional timestamp.
    pub fn ots(&mut self, micros: Option<i64>) -> &mut Self {
        match micros {
            Some(t) => self.ts(t),
            None => self.null(),
        }
    }

    /// An optional number.
    pub fn on<T: std::fmt::Display>(&mut self, v: Option<T>) -> &mut Self {
        match v {
            Some(v) => self.n(v),
            None => self.null(),
        }
    }

    /// Ends the row.
    pub fn end(&mut self) {
        self.buf.push('\n');
    }
}

/// Appends `micros` since the epoch as PostgreSQL's text form of `timestamp`
/// (`YYYY-MM-DD HH:MM:SS[.ffffff]`, trailing zeros of the fraction dropped as PostgreSQL does).
pub fn push_timestamp(buf: &mut String, micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if frac != 0 {
        let mut f = format!("{frac:06}");
        while f.ends_with('0') {
            f.pop();
        }
        buf.push('.');
        buf.push_str(&f);
    }
}

/// A timestamp as a string (see [`push_timestamp`]).
pub fn timestamp(micros: i64) -> String {
    let mut s = String::new();
    push_timestamp(&mut s, micros);
    s
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm: shift to an era starting on 0000-03-01.
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An SQL string literal (standard_conforming_strings is on, so only quotes are doubled).
pub fn lit(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('\'');
    for c in v.chars() {
        if c == '\'' {
            s.push('\'');
        }
        s.push(c);
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_print_like_postgres() {
        let d = days_from_civil(2026, 3, 1);
        assert_eq!(civil_from_days(d), (2026, 3, 1));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        let t = (d * 86_400 + 3 * 3600 + 30 * 60 + 5) * 1_000_000 + 120_000;
        assert_eq!(timestamp(t), "2026-03-01 03:30:05.12");
    }

    #[test]
    fn copy_text_escapes_control_characters() {
        let mut buf = String::new();
        Row::new(&mut buf).s("a\tb\\c\nd").null().b(true).n(5).end();
        assert_eq!(buf, "a\\tb\\\\c\\nd\t\\N\tt\t5\n");
        assert_eq!(lit("it's"), "'it''s'");
    }
}
