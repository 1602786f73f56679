//! Entry names: what a person sees in the expanded tree, safe to write and never colliding.
//!
//! The rule (documented in `docs/recipe.md`): tar members keep their paths; the content of a
//! gzip layer named `X.gz` is named `X` (`X.tgz` gives `X.tar`; other names get `.gunzipped`
//! appended); `.peel` at the root is reserved. The first entry to want a name gets it; a later
//! one that clashes (a duplicate, or a file where a directory is needed, or the reverse) gets
//! `~1`, `~2`, ... appended to the clashing component. The recipe records the actual names, so
//! rebuilding never recomputes them.
//!
//! Hostile names: a member path longer than `PATH_MAX`, or with a component longer than
//! `NAME_MAX`, is refused (no file system here could hold it), and the names handed out are
//! kept component by component, so their memory and time grow with a name's length, never with
//! its length times its depth.

use std::collections::HashMap;

/// The reserved directory at the root of a tree: the recipe and tar header blocks live there.
pub const RESERVED: &str = ".peel";

/// The longest member path accepted, in bytes: `PATH_MAX` (4096 on Linux) less its NUL.
pub const MAX_PATH: usize = libc::PATH_MAX as usize - 1;

/// The longest path component accepted, in bytes: `NAME_MAX` (255 on Linux).
pub const MAX_COMPONENT: usize = 255;

/// How many bytes of each end of a long name [`shorten`] keeps.
const SHOWN_END: usize = 60;

/// A name as it appears in messages: whole when short, else its first and last 60 bytes around
/// `…(N bytes)…`, so an error about a hostile 200 KB path stays one readable line.
pub fn shorten(name: &str) -> String {
    if name.len() <= 3 * SHOWN_END {
        return name.to_string();
    }
    let mut head = SHOWN_END;
    while !name.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = name.len() - SHOWN_END;
    while !name.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…({} bytes)…{}", &name[..head], name.len(), &name[tail..])
}

/// Why a path cannot be an entry name, or `None` when it can. `path` must be relative, use `/`,
/// and contain no empty, `.` or `..` component and no NUL.
pub fn unsafe_reason(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("empty path")
    } else if path.contains('\0') {
        Some("path contains a NUL byte")
    } else if path.starts_with('/') {
        Some("absolute path")
    } else if path.split('/').any(|c| c == "..") {
        Some("path climbs out with '..'")
    } else if path.split('/').any(|c| c.is_empty() || c == ".") {
        Some("path has an empty or '.' component")
    } else {
        None
    }
}

/// Normalizes a member path from an archive: drops `./` and empty components (GNU tar writes
/// `./x` and `dir/`); refuses absolute paths, `..`, NUL. Non-UTF-8 bytes are replaced, which is
/// harmless because the header block itself is kept byte for byte.
pub fn normalize_member(raw: &[u8]) -> Result<String, &'static str> {
    if raw.len() > MAX_PATH {
        return Err("path is longer than PATH_MAX (4095 bytes at most)");
    }
    if raw.split(|&b| b == b'/').any(|c| c.len() > MAX_COMPONENT) {
        return Err("a path component is longer than NAME_MAX (255 bytes at most)");
    }
    if raw.contains(&0) {
        return Err("path contains a NUL byte");
    }
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    let s = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path climbs out with '..'"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err("empty path");
    }
    Ok(parts.join("/"))
}

/// The name of the decompressed content of a gzip layer named `name`.
pub fn gunzipped(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let (dir, base) = match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let lower_base = &lower[dir.len()..];
    if lower_base.len() > 3 && lower_base.ends_with(".gz") {
        format!("{dir}{}", &base[..base.len() - 3])
    } else if lower_base.len() > 4 && lower_base.ends_with(".tgz") {
        format!("{dir}{}.tar", &base[..base.len() - 4])
    } else {
        format!("{name}.gunzipped")
    }
}

/// Joins a directory (possibly empty for the root) and a relative path.
pub fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_string()
    } else {
        format!("{dir}/{path}")
    }
}

/// The names handed out so far in one tree.
///
/// Kept component by component: each name is a slot keyed by its parent directory's number and
/// its last component (`"7/name"`), so a path costs memory for its own components only, not for
/// every prefix of it (a set of whole prefixes grows with depth times length: 10 GB for one
/// hostile path 100,000 directories deep).
#[derive(Debug)]
pub struct Names {
    slots: HashMap<String, Slot>,
    /// For a component that clashed: the first suffix that may still be free for a file, and
    /// the first that may still be free for a directory. Names are never given back, so both
    /// only grow, and a thousand entries wanting one name cost linear time, not quadratic.
    hints: HashMap<String, (u64, u64)>,
    /// The number the next new directory gets (0 is the root).
    next_dir: u64,
}

/// What a name is.
#[derive(Debug, Clone, Copy)]
enum Slot {
    File,
    Dir(u64),
}

fn slot_key(parent: u64, component: &str, n: u64) -> String {
    if n == 0 {
        format!("{parent}/{component}")
    } else {
        format!("{parent}/{component}~{n}")
    }
}

impl Default for Names {
    fn default() -> Self {
        let mut slots = HashMap::new();
        slots.insert(slot_key(0, RESERVED, 0), Slot::File);
        Names {
            slots,
            hints: HashMap::new(),
            next_dir: 1,
        }
    }
}

impl Names {
    /// Gives the entry that wants `wanted` (a safe, normalized path) its actual name.
    pub fn claim(&mut self, wanted: &str) -> String {
        let mut actual = String::with_capacity(wanted.len());
        let mut parent = 0u64;
        let mut comps = wanted.split('/').peekable();
        while let Some(c) = comps.next() {
            let last = comps.peek().is_none();
            let base = slot_key(parent, c, 0);
            let (file_from, dir_from) = self.hints.get(&base).copied().unwrap_or((0, 0));
            let start = if last { file_from } else { dir_from };
            let mut n = start;
            loop {
                let key = slot_key(parent, c, n);
                match (self.slots.get(&key).copied(), last) {
                    (None, true) => {
                        self.slots.insert(key, Slot::File);
                        break;
                    }
                    (None, false) => {
                        parent = self.next_dir;
                        self.next_dir += 1;
                        self.slots.insert(key, Slot::Dir(parent));
                        break;
                    }
                    (Some(Slot::Dir(id)), false) => {
                        parent = id;
                        break;
                    }
                    _ => n += 1,
                }
            }
            if n != start || self.hints.contains_key(&base) {
                // Every suffix below `n` is taken; below `n` for a directory, all are files.
                let hint = if last {
                    (n + 1, dir_from)
                } else {
                    (file_from.max(n + 1), n)
                };
                self.hints.insert(base, hint);
            }
            if !actual.is_empty() {
                actual.push('/');
            }
            actual.push_str(c);
            if n != 0 {
                actual.push_str(&format!("~{n}"));
            }
        }
        actual
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_names_drop_the_suffix() {
        assert_eq!(gunzipped("dump.sql.gz"), "dump.sql");
        assert_eq!(gunzipped("db/1234.dat.gz"), "db/1234.dat");
        assert_eq!(gunzipped("x/uploads.tgz"), "x/uploads.tar");
        assert_eq!(gunzipped("a.GZ"), "a");
        assert_eq!(gunzipped("data"), "data.gunzipped");
        assert_eq!(gunzipped(".gz"), ".gz.gunzipped");
    }

    #[test]
    fn clashes_get_deterministic_suffixes() {
        let mut n = Names::default();
        assert_eq!(n.claim("dump.sql"), "dump.sql");
        assert_eq!(n.claim("dump.sql"), "dump.sql~1");
        assert_eq!(n.claim("dump.sql"), "dump.sql~2");
        assert_eq!(n.claim("a"), "a");
        assert_eq!(n.claim("a/b"), "a~1/b");
        assert_eq!(n.claim("a/c"), "a~1/c");
        assert_eq!(n.claim("d/e"), "d/e");
        assert_eq!(n.claim("d"), "d~1");
        assert_eq!(n.claim(".peel/recipe.json"), ".peel~1/recipe.json");
        assert_eq!(n.claim(".peel"), ".peel~2");
    }

    #[test]
    fn member_paths_are_normalized_or_refused() {
        assert_eq!(normalize_member(b"./a//b/").unwrap(), "a/b");
        assert_eq!(normalize_member(b"/etc/passwd"), Err("absolute path"));
        assert_eq!(
            normalize_member(b"a/../../x"),
            Err("path climbs out with '..'")
        );
        assert_eq!(normalize_member(b"./"), Err("empty path"));
        assert!(unsafe_reason("a/b").is_none());
        assert!(unsafe_reason("a/../b").is_some());
    }

    #[test]
    fn names_beyond_path_max_or_name_max_are_refused() {
        let deep = "a/".repeat(MAX_PATH / 2 + 1) + "f";
        assert!(deep.len() > MAX_PATH);
        assert!(normalize_member(deep.as_bytes())
            .unwrap_err()
            .contains("PATH_MAX"));
        let ok = "a/".repeat(MAX_PATH / 2 - 1) + "f";
        assert!(normalize_member(ok.as_bytes()).is_ok());
        let wide = format!("d/{}", "x".repeat(MAX_COMPONENT + 1));
        assert!(normalize_member(wide.as_bytes())
            .unwrap_err()
            .contains("NAME_MAX"));
        assert!(normalize_member("x".repeat(MAX_COMPONENT).as_bytes()).is_ok());
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        assert_eq!(shorten("a/b"), "a/b");
        let long = format!("{}é{}", "h".repeat(59), "t".repeat(1000));
        let s = shorten(&long);
        assert!(
            s.starts_with(&"h".repeat(59)) && s.ends_with(&"t".repeat(60)),
            "{s}"
        );
        assert!(s.contains("…(1061 bytes)…") && s.len() < 200, "{s}");
    }

    #[test]
    fn many_entries_wanting_one_name_get_consecutive_suffixes() {
        let mut n = Names::default();
        for i in 0..20_000u64 {
            let want = if i == 0 {
                "x".to_string()
            } else {
                format!("x~{i}")
            };
            assert_eq!(n.claim("x"), want);
        }
        // A directory wanted where all those files are: the first free suffix after them.
        assert_eq!(n.claim("x/y"), "x~20000/y");
        assert_eq!(n.claim("x/z"), "x~20000/z");
        assert_eq!(n.claim("x"), "x~20001");
    }
}
