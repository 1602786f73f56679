//! Reading a Discourse backup file in one pass, as Discourse's restore would unpack it: the
//! format from its first bytes, the plain dump streamed to a loader as it is read, a directory
//! dump unpacked for `pg_restore`, and the SHA-1 of each upload file; the SHA-256 of the whole
//! file on the way.

use std::cell::Cell;
use std::fs::{self, File};
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::bomb::ExpansionBudget;
use super::uploads::UploadIndex;
use crate::discourse::Format;

/// What one pass over a backup file found.
#[derive(Debug)]
pub(crate) struct Walked {
    pub format: Format,
    /// SHA-256 of the whole file (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The plain dump's name in the archive, when one was streamed to the loader.
    pub plain_dump: Option<String>,
    /// The unpacked directory dump, when the archive has `db/toc.dat`.
    pub directory_dump: Option<PathBuf>,
    /// The upload files.
    pub uploads: UploadIndex,
    /// Whether the archive had an `uploads/` folder at all.
    pub has_uploads_dir: bool,
}

/// Reads `path` once. Each plain dump found (`dump.sql.gz`, `dump.sql` or the file itself) is
/// handed to `on_plain_dump` with its name, as a stream to read to its end; files under `db/`
/// are written to `work/db`. Errors name the file and the archive entry. Everything
/// decompressed counts against `budget` (a decompression bomb fails, naming the member).
pub(crate) fn walk(
    path: &Path,
    work: &Path,
    budget: &ExpansionBudget,
    on_plain_dump: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<Walked> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut raw = HashingReader::new(BufReader::with_capacity(1 << 16, file));
    raw.counter = budget.input_counter();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut walked = Walked {
        format: Format::PlainSql,
        sha256: String::new(),
        size: 0,
        plain_dump: None,
        directory_dump: None,
        uploads: UploadIndex::default(),
        has_uploads_dir: false,
    };
    {
        let head = read_head(&mut raw).with_context(|| format!("reading {}", path.display()))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let tar = is_tar(&head);
        if !gzip && !tar && !looks_like_sql(&head) {
            bail!(
                "{}: not a Discourse backup: neither gzip, tar nor SQL text (first bytes {})",
                path.display(),
                hex::encode(&head[..head.len().min(16)])
            );
        }
        let mut src = Cursor::new(head).chain(&mut raw);
        if gzip {
            let mut gz = budget.reader(
                MultiGzDecoder::new(BufReader::with_capacity(1 << 16, &mut src)),
                path.display().to_string(),
            );
            let dhead = read_head(&mut gz).with_context(|| {
                format!("{}: decompressing (gzip) at the start", path.display())
            })?;
            if is_tar(&dhead) {
                walked.format = Format::TarGz;
                let mut inner = Cursor::new(dhead).chain(&mut gz);
                walk_tar(&mut inner, &name, work, budget, &mut walked, on_plain_dump)?;
                io::copy(&mut inner, &mut io::sink()).with_context(|| {
                    format!("{}: decompressing after the tar archive", path.display())
                })?;
            } else if looks_like_sql(&dhead) {
                walked.format = Format::SqlGz;
                let dump_name = name.strip_suffix(".gz").unwrap_or(&name).to_string();
                let mut inner = Cursor::new(dhead).chain(&mut gz);
                on_plain_dump(&dump_name, &mut inner)?;
                walked.plain_dump = Some(dump_name);
            } else {
                bail!(
                    "{}: not a Discourse backup: gzip of neither a tar archive nor SQL text \
                     (first bytes {})",
                    path.display(),
                    hex::encode(&dhead[..dhead.len().min(16)])
                );
            }
        } else if tar {
            walked.format = Format::Tar;
            walk_tar(&mut src, &name, work, budget, &mut walked, on_plain_dump)?;
        } else {
            walked.format = Format::PlainSql;
            on_plain_dump(&name, &mut src)?;
            walked.plain_dump = Some(name.clone());
        }
    }
    io::copy(&mut raw, &mut io::sink()).with_context(|| format!("reading {}", path.display()))?;
    walked.size = raw.bytes;
    walked.sha256 = hex::encode(raw.hasher.finalize_reset());
    walked.uploads.resolve_links();
    Ok(walked)
}

fn walk_tar(
    input: &mut dyn Read,
    name: &str,
    work: &Path,
    budget: &ExpansionBudget,
    walked: &mut Walked,
    on_plain_dump: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .with_context(|| format!("{name}: reading the tar archive"))?;
    let db_dir = work.join("db");
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{name}: reading a tar header"))?;
        let raw_path = entry
            .path()
            .with_context(|| format!("{name}: a tar entry with an unreadable name"))?
            .into_owned();
        let Some(path) = clean_path(&raw_path) else {
            bail!(
                "{name}: tar entry {:?} is absolute or climbs out with `..`",
                raw_path
            );
        };
        let kind = entry.header().entry_type();
        let what = |e: io::Error| anyhow!(e).context(format!("{name}: reading entry {path}"));
        if path == "uploads" || path.starts_with("uploads/") {
            walked.has_uploads_dir = true;
            if kind.is_file() {
                walked.uploads.add_file(&path, &mut entry).map_err(what)?;
            } else if kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .and_then(|t| clean_path(&t))
                    .ok_or_else(|| anyhow!("{name}: hard link {path} has no usable target"))?;
                walked.uploads.add_link(&path, &target);
            }
        } else if path == "dump.sql.gz" && kind.is_file() {
            let compressed = BufReader::with_capacity(1 << 16, budget.consumed(&mut entry));
            let mut gz = budget.reader(
                MultiGzDecoder::new(compressed),
                format!("{name}: member {path}"),
            );
            on_plain_dump(&path, &mut gz)?;
            io::copy(&mut gz, &mut io::sink()).map_err(what)?;
            walked.plain_dump = Some(path);
        } else if path == "dump.sql" && kind.is_file() {
            on_plain_dump(&path, &mut entry)?;
            walked.plain_dump = Some(path);
        } else if let Some(file) = path.strip_prefix("db/") {
            if kind.is_file() {
                if file.contains('/') {
                    bail!("{name}: unexpected nested entry {path} in the directory dump");
                }
                fs::create_dir_all(&db_dir)
                    .with_context(|| format!("creating {}", db_dir.display()))?;
                let dest = db_dir.join(file);
                let mut out =
                    File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
                io::copy(&mut entry, &mut out).map_err(what)?;
                if file == "toc.dat" {
                    walked.directory_dump = Some(db_dir.clone());
                }
            }
        }
    }
    Ok(())
}

/// A relative, `/`-separated path without `.` parts; `None` if absolute or climbing out.
fn clean_path(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    r.take(512).read_to_end(&mut head)?;
    Ok(head)
}

/// POSIX ustar and GNU tar both put `ustar` at offset 257 of the first header; an archive with
/// no entries at all is zero blocks (Discourse's first step, `tar --create --files-from
/// /dev/null`, writes one).
fn is_tar(head: &[u8]) -> bool {
    (head.len() >= 262 && &head[257..262] == b"ustar")
        || (head.len() == 512 && head.iter().all(|&b| b == 0))
}

/// pg_dump's plain output is UTF-8 text that starts with a comment or a statement.
fn looks_like_sql(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    // The head may end inside a multi-byte character.
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    let t = text.trim_start();
    t.is_empty() && !head.is_empty()
        || t.starts_with("--")
        || t.starts_with("SET ")
        || t.starts_with("CREATE ")
        || t.starts_with("SELECT ")
        || t.starts_with("BEGIN")
        // A psql meta-command: no pg_dump output starts so, but taken as SQL text here the
        // dump scanner refuses it naming the command, a clearer reason than "not a backup".
        || t.starts_with('\\')
}

/// Counts and hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    /// Also counts here, for the decompression cap.
    counter: Rc<Cell<u64>>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            counter: Rc::default(),
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        self.counter.set(self.bytes);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_and_escapes_refused() {
        assert_eq!(
            clean_path(Path::new("./uploads/a")).as_deref(),
            Some("uploads/a")
        );
        assert_eq!(clean_path(Path::new("/etc/passwd")), None);
        assert_eq!(clean_path(Path::new("uploads/../../x")), None);
    }

    #[test]
    fn unknown_and_empty_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = dir.path().join("zeros.tar");
        fs::write(&zeros, vec![0u8; 10240]).unwrap();
        let walked = walk(
            &zeros,
            dir.path(),
            &ExpansionBudget::default(),
            &mut |_, _| panic!("no dump expected"),
        )
        .unwrap();
        assert_eq!(walked.format, Format::Tar);
        assert!(walked.plain_dump.is_none() && walked.directory_dump.is_none());
        let png = dir.path().join("x.bin");
        fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        let err = walk(
            &png,
            dir.path(),
            &ExpansionBudget::default(),
            &mut |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("not a Discourse backup"),
            "{err:#}"
        );
    }

    #[test]
    fn plain_sql_file_is_streamed_whole_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.sql");
        fs::write(&file, b"SELECT 1;\n").unwrap();
        let mut got = Vec::new();
        let walked = walk(
            &file,
            dir.path(),
            &ExpansionBudget::default(),
            &mut |name, r| {
                assert_eq!(name, "x.sql");
                r.read_to_end(&mut got)?;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, b"SELECT 1;\n");
        assert_eq!(walked.format, Format::PlainSql);
        assert_eq!(walked.size, 10);
        assert_eq!(walked.sha256, hex::encode(Sha256::digest(b"SELECT 1;\n")));
    }
}
