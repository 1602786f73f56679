//! The few SQL statement heads the scanner reads (`CREATE TABLE name (`, qualified and quoted
//! names, `SELECT pg_catalog.setval('name', N, true);`), parsed by pg_dump's fixed layout.

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
