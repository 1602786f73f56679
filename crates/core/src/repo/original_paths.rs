//! The paths of the original backup file, read back from a peel recipe.
//!
//! A snapshot stores the peeled tree (`dump.sql`, `db/NNNN.dat`, the dedup layout's folders),
//! not the paths an admin knows from the backup itself (`dump.sql.gz`, `db/NNNN.dat.gz`,
//! `uploads/default/original/1X/…`). Those live in the recipe: every tar member's header blocks
//! are kept byte for byte in `.peel/tar/N.headers` (docs/recipe.md), in the order of the
//! recipe's members, so walking the recipe and reading each member's own header gives the
//! member's original name, type and size, and the recipe node under it says which tree entry
//! holds its bytes. `dvault ls`, `find` and `diff` list these paths.

use std::collections::BTreeMap;

use peel::tar::header::{self, Header, Kind, BLOCK};
use peel::{Node, Recipe};
use serde::{Deserialize, Serialize};

/// What an original path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file (the backup file itself for a bare `.sql.gz`).
    File,
    /// A directory member of a tar archive.
    Dir,
    /// A symbolic link member.
    Symlink,
    /// A hard link member (S3-stored uploads that share their content).
    Hardlink,
}

impl EntryKind {
    /// Short name for text listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Hardlink => "hardlink",
        }
    }
}

/// One path of the original backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalEntry {
    /// The path as the backup holds it (normalized: no `./`, no trailing `/`); members of a
    /// nested archive are under the archive member's path.
    pub path: String,
    /// File, directory or link.
    pub kind: EntryKind,
    /// The member's size in the backup (compressed size for a `.gz` member); 0 for
    /// directories and links.
    pub size: u64,
    /// Link target, for links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The entry of the peeled tree that holds its (decompressed) bytes, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_as: Option<String>,
}

/// Lists the original paths described by `recipe`. `read_internal` returns the bytes of an
/// internal entry of the tree (a `.peel/tar/N.headers` file).
pub fn list(
    recipe: &Recipe,
    read_internal: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Result<Vec<OriginalEntry>, String> {
    let mut out = Vec::new();
    let name = recipe.name.clone().unwrap_or_else(|| peel::UNNAMED.into());
    match archive_of(&recipe.root) {
        Some(tar) => walk_tar(tar, "", read_internal, &mut out)?,
        // A bare compressed dump: the backup is one file.
        None => out.push(OriginalEntry {
            path: name,
            kind: EntryKind::File,
            size: recipe.original.size,
            link: None,
            stored_as: plain_entry(&recipe.root),
        }),
    }
    Ok(out)
}

/// The tar archive a node is (directly or under gzip layers), if any.
fn archive_of(node: &Node) -> Option<&peel::tar::TarRecipe> {
    match node {
        Node::Tar(t) => Some(t),
        Node::Gzip { inner, .. } => archive_of(inner),
        _ => None,
    }
}

/// The tree entry holding a node's innermost plain bytes.
fn plain_entry(node: &Node) -> Option<String> {
    match node {
        Node::Entry { path, .. } | Node::Stored { path, .. } => Some(path.clone()),
        Node::Gzip { inner, .. } => plain_entry(inner),
        Node::Tar(_) => None,
    }
}

fn walk_tar(
    tar: &peel::tar::TarRecipe,
    prefix: &str,
    read_internal: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    out: &mut Vec<OriginalEntry>,
) -> Result<(), String> {
    let headers = read_internal(&tar.headers)?;
    let mut at = 0usize;
    let mut global_path: Option<Vec<u8>> = None;
    for (i, m) in tar.members.iter().enumerate() {
        let end = at + m.blocks as usize * BLOCK;
        let blocks = headers.get(at..end).ok_or_else(|| {
            format!(
                "{}: member {i} needs header blocks up to byte {end}, the file has {}",
                tar.headers,
                headers.len()
            )
        })?;
        at = end;
        let (raw_path, kind, link) = member_header(blocks, &mut global_path)
            .map_err(|why| format!("{}: member {i}: {why}", tar.headers))?;
        let Ok(name) = peel::names::normalize_member(&raw_path) else {
            // `./` itself (GNU tar's `-C dir .`) names no path of its own.
            continue;
        };
        let path = format!("{prefix}{name}");
        out.push(OriginalEntry {
            path: path.clone(),
            kind,
            size: m.size,
            link,
            stored_as: m.data.as_ref().and_then(plain_entry),
        });
        if let Some(inner) = m.data.as_ref().and_then(archive_of) {
            walk_tar(inner, &format!("{path}/"), read_internal, out)?;
        }
    }
    Ok(())
}

/// The path, kind and link target of a member from its header blocks (extension headers first,
/// as peel's tar layer keeps them).
fn member_header(
    blocks: &[u8],
    global_path: &mut Option<Vec<u8>>,
) -> Result<(Vec<u8>, EntryKind, Option<String>), String> {
    let mut long_name = None;
    let mut long_link = None;
    let mut pax = header::PaxFields::default();
    let mut at = 0;
    while at + BLOCK <= blocks.len() {
        let block: &[u8; BLOCK] = blocks[at..at + BLOCK]
            .try_into()
            .map_err(|_| "short block".to_string())?;
        let h = Header::new(block);
        let size = h.size()? as usize;
        let kind = h.kind();
        at += BLOCK;
        if !matches!(
            kind,
            Kind::LongName | Kind::LongLink | Kind::Pax | Kind::PaxGlobal
        ) {
            let path = pax
                .path
                .or(long_name)
                .or(global_path.clone())
                .unwrap_or_else(|| h.path_bytes());
            let link = pax.linkpath.or(long_link).unwrap_or_else(|| h.link_bytes());
            let (kind, link) = match kind {
                Kind::Dir => (EntryKind::Dir, None),
                Kind::Symlink => (EntryKind::Symlink, Some(link)),
                Kind::HardLink => (EntryKind::Hardlink, Some(link)),
                _ => (EntryKind::File, None),
            };
            let link = link.map(|l| String::from_utf8_lossy(&l).into_owned());
            return Ok((path, kind, link));
        }
        let body = blocks
            .get(at..at + size)
            .ok_or_else(|| "extension header runs past the member's blocks".to_string())?;
        let until_nul = |b: &[u8]| b.split(|&c| c == 0).next().unwrap_or(b).to_vec();
        match kind {
            Kind::LongName => long_name = Some(until_nul(body)),
            Kind::LongLink => long_link = Some(until_nul(body)),
            Kind::Pax => {
                let f = header::pax_fields(body)?;
                pax.path = f.path.or(pax.path);
                pax.linkpath = f.linkpath.or(pax.linkpath);
            }
            _ => {
                let f = header::pax_fields(body)?;
                if f.path.is_some() {
                    *global_path = f.path;
                }
            }
        }
        at += size.div_ceil(BLOCK) * BLOCK;
    }
    Err("no member header among its blocks".into())
}

/// Uploads of a listing (files under an `uploads/` folder at the top), by path with their
/// size: what `diff` compares.
pub fn uploads(entries: &[OriginalEntry]) -> BTreeMap<&str, u64> {
    entries
        .iter()
        .filter(|e| e.kind != EntryKind::Dir && e.path.starts_with("uploads/"))
        .map(|e| (e.path.as_str(), e.size))
        .collect()
}

/// Whether `path` is `dir` or inside it (`dir` empty or `/`: everything).
pub fn is_under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_matches('/');
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A GNU and a PAX tar (made by the real `tar`) with a name longer than the 100 bytes of
    /// the name field, a link, a directory and a gzip member, peeled: the listing from the
    /// recipe is exactly what `tar --list` says, with the sizes in the archive.
    #[test]
    fn long_names_links_and_gzip_members_list_as_tar_lists_them() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let long = format!("uploads/default/original/{}/a.png", "x".repeat(120));
        std::fs::create_dir_all(src.join(&long).parent().unwrap()).unwrap();
        std::fs::write(src.join(&long), b"png bytes").unwrap();
        std::fs::write(src.join("dump.sql"), "COPY t (a) FROM stdin;\n1\n\\.\n").unwrap();
        let gz = Command::new("gzip")
            .args(["-n", "-4"])
            .arg(src.join("dump.sql"))
            .status();
        assert!(gz.unwrap().success());
        std::os::unix::fs::symlink("dump.sql.gz", src.join("link")).unwrap();
        for format in ["gnu", "pax"] {
            let file = tmp.path().join(format!("{format}.tar"));
            let ok = Command::new("tar")
                .current_dir(&src)
                .arg(format!("--format={format}"))
                .arg("-cf")
                .arg(&file)
                .args(["dump.sql.gz", "link", "uploads"])
                .status()
                .unwrap();
            assert!(ok.success());
            let tree = tmp.path().join(format!("{format}-tree"));
            crate::repo::peeled::expand_to_dir(
                &file,
                "x.tar",
                &tree,
                &peel::ExpandOptions::default(),
            )
            .unwrap();
            let recipe: Recipe =
                serde_json::from_slice(&std::fs::read(tree.join(".peel/recipe.json")).unwrap())
                    .unwrap();
            let mut read = |p: &str| std::fs::read(tree.join(p)).map_err(|e| e.to_string());
            let listed = list(&recipe, &mut read).unwrap();
            let out = Command::new("tar").arg("-tvf").arg(&file).output().unwrap();
            let expected: Vec<String> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| {
                    let name = l.split_whitespace().nth(5).unwrap();
                    name.trim_end_matches('/').to_string()
                })
                .collect();
            let paths: Vec<&str> = listed.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, expected, "{format}");
            let png = listed.iter().find(|e| e.path == long).unwrap();
            assert_eq!((png.kind, png.size), (EntryKind::File, 9));
            assert_eq!(png.stored_as.as_deref(), Some(long.as_str()));
            let link = listed.iter().find(|e| e.path == "link").unwrap();
            assert_eq!(link.kind, EntryKind::Symlink);
            assert_eq!(link.link.as_deref(), Some("dump.sql.gz"));
            let dump = listed.iter().find(|e| e.path == "dump.sql.gz").unwrap();
            assert_eq!(dump.stored_as.as_deref(), Some("dump.sql"));
            assert_eq!(
                dump.size,
                std::fs::metadata(src.join("dump.sql.gz")).unwrap().len()
            );
            assert!(listed.iter().any(|e| e.kind == EntryKind::Dir));
        }
    }

    #[test]
    fn paths_match_a_prefix_only_at_a_slash() {
        assert!(is_under("uploads/default/a.png", "uploads"));
        assert!(is_under("uploads/default/a.png", "/uploads/"));
        assert!(is_under("uploads", "uploads"));
        assert!(!is_under("uploads2/a.png", "uploads"));
        assert!(is_under("dump.sql.gz", ""));
    }
}
