//! Entry names: what a person sees in the expanded tree, safe to write and never colliding.
//!
//! The rule (documented in `docs/recipe.md`): tar members keep their paths; the content of a
//! gzip layer named `X.gz` is named `X` (`X.tgz` gives `X.tar`; other names get `.gunzipped`
//! appended); `.peel` at the root is reserved. The first entry to want a name gets it; a later
//! one that clashes (a duplicate, or a file where a directory is needed, or the reverse) gets
//! `~1`, `~2`, ... appended to the clashing component. The recipe records the actual names, so
//! rebuilding never recomputes them.

use std::collections::HashSet;

/// The reserved directory at the root of a tree: the recipe and tar header blocks live there.
pub const RESERVED: &str = ".peel";

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
#[derive(Debug)]
pub struct Names {
    files: HashSet<String>,
    dirs: HashSet<String>,
}

impl Default for Names {
    fn default() -> Self {
        let mut files = HashSet::new();
        files.insert(RESERVED.to_string());
        Names {
            files,
            dirs: HashSet::new(),
        }
    }
}

impl Names {
    /// Gives the entry that wants `wanted` (a safe, normalized path) its actual name.
    pub fn claim(&mut self, wanted: &str) -> String {
        let comps: Vec<&str> = wanted.split('/').collect();
        let mut actual = String::new();
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let mut n = 0u64;
            loop {
                let cand = if n == 0 {
                    c.to_string()
                } else {
                    format!("{c}~{n}")
                };
                let full = join(&actual, &cand);
                let free = if last {
                    !self.files.contains(&full) && !self.dirs.contains(&full)
                } else {
                    !self.files.contains(&full)
                };
                if free {
                    if !last {
                        self.dirs.insert(full.clone());
                    }
                    actual = full;
                    break;
                }
                n += 1;
            }
        }
        self.files.insert(actual.clone());
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
}
