//! The COPY statements of a directory-format dump's `toc.dat`, by data file.
//!
//! The data files `NNNN.dat` hold bare rows; only `toc.dat` says which table and columns they
//! belong to, and the layout needs the column names to keep the columns Discourse writes
//! together in one file (`affinity`). pg_dump writes each TOC entry as a sequence of
//! length-prefixed strings in which the entry's COPY statement comes before its data file's
//! name, so scanning for `COPY … FROM stdin;` and the next `NNNN.dat` pairs them without
//! parsing the archive format (which changes between pg_dump versions). A wrong pairing could
//! only cost deduplication: the layout's proof by SHA-256 keeps every file exact, and a block
//! whose rows do not have the named columns' count stays plain.

use std::collections::HashMap;

use super::scan;
pub use super::scan::CopyHeader;

/// The COPY header of each data file named in `toc` (`"1234.dat"` → `COPY public.posts …`).
pub fn copy_headers(toc: &[u8]) -> HashMap<String, CopyHeader> {
    const START: &[u8] = b"COPY ";
    const END: &[u8] = b" FROM stdin;\n";
    let mut out = HashMap::new();
    let mut at = 0;
    while let Some(i) = find(&toc[at..], START).map(|i| at + i) {
        let Some(len) = find(&toc[i..], END).map(|e| e + END.len()) else {
            break;
        };
        at = i + len;
        let Some(header) = scan::parse_copy_line(&toc[i..i + len]) else {
            continue;
        };
        // The entry's data file name, before the next entry's COPY statement.
        let until = find(&toc[at..], START).map_or(toc.len(), |n| at + n);
        if let Some(name) = dat_name(&toc[at..until]) {
            out.insert(name, header);
        }
    }
    out
}

/// The first `DIGITS.dat` in `bytes`.
fn dat_name(bytes: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(i) = find(&bytes[from..], b".dat").map(|i| from + i) {
        let digits = bytes[..i]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            return String::from_utf8(bytes[i - digits..i + 4].to_vec()).ok();
        }
        from = i + 4;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_pair_with_the_data_file_named_after_them() {
        // Length-prefixed strings as pg_dump writes them (sign byte + 4-byte length).
        let mut toc = b"PGDMP\x01\x10\x00".to_vec();
        for (stmt, file) in [
            (
                "COPY public.posts (id, raw, cooked) FROM stdin;\n",
                "3456.dat",
            ),
            ("COPY public.users (id, username) FROM stdin;\n", "3457.dat"),
        ] {
            for s in [
                "public",
                "",
                "heap",
                "discourse",
                "false",
                "2345",
                stmt,
                file,
            ] {
                toc.push(0);
                toc.extend_from_slice(&(s.len() as u32).to_le_bytes());
                toc.extend_from_slice(s.as_bytes());
            }
        }
        let h = copy_headers(&toc);
        assert_eq!(h.len(), 2);
        assert_eq!(h["3456.dat"].table, "public.posts");
        assert_eq!(
            h["3456.dat"].columns.as_deref(),
            Some(&["id".to_string(), "raw".into(), "cooked".into()][..])
        );
        assert_eq!(h["3457.dat"].table, "public.users");
    }
}
