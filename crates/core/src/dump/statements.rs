//! The few SQL statement heads the scanner reads (`CREATE TABLE name (`, qualified and quoted
//! names, `SELECT pg_catalog.setval('name', N, true);`, `CREATE EXTENSION name`), parsed by
//! pg_dump's fixed layout.

pub(super) fn strip_create_table(body: &[u8]) -> Option<&[u8]> {
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
pub(super) fn split_name(s: &[u8]) -> Option<(String, &[u8])> {
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
pub(super) fn parse_setval(s: &[u8]) -> Option<(String, i64, bool)> {
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

/// The extension a `CREATE EXTENSION [IF NOT EXISTS] name ...` line names, unquoted.
pub(super) fn extension_named_in(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"CREATE EXTENSION ")?;
    let rest = rest.strip_prefix(b"IF NOT EXISTS ").unwrap_or(rest);
    let text = std::str::from_utf8(rest).ok()?;
    let text = text.trim_start();
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    name.push('"');
                    continue;
                }
                return Some(name);
            }
            name.push(c);
        }
        None
    } else {
        let name: String = text
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        // Unquoted names fold to lower case, as PostgreSQL folds them.
        (!name.is_empty()).then(|| name.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::extension_named_in as named_in;

    #[test]
    fn names_are_read_as_pg_dump_writes_them() {
        assert_eq!(
            named_in(b"CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;").as_deref(),
            Some("hstore")
        );
        assert_eq!(
            named_in(b"CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA public;")
                .as_deref(),
            Some("uuid-ossp")
        );
        assert_eq!(
            named_in(b"CREATE EXTENSION Vector;").as_deref(),
            Some("vector")
        );
        assert_eq!(
            named_in(b"CREATE EXTENSION \"a\"\"b\";").as_deref(),
            Some("a\"b")
        );
        assert_eq!(named_in(b"CREATE TABLE x ();"), None);
    }
}
