//! The expanded tree on disk: entries as files under a directory, the recipe at
//! [`RECIPE_PATH`]. Writing is safe against hostile archives: nothing lands outside the
//! directory, nothing is written through a symbolic link, and a failed expansion leaves no
//! half-written directory behind (it is built under a temporary sibling name and renamed at the
//! end).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::{
    expand_path_as, names, rebuild_with, Digest, EntrySink, EntrySource, Error, ExpandOptions,
    RebuildOptions, Recipe, Report, Result, RECIPE_VERSION,
};

/// Where the recipe lives inside an expanded tree.
pub const RECIPE_PATH: &str = ".peel/recipe.json";

/// Expands the file `input` into the new directory `dir` (which must not exist, or be empty).
pub fn expand_to_dir(input: &Path, dir: &Path, opts: &ExpandOptions) -> Result<(Recipe, Report)> {
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned());
    expand_to_dir_as(input, name.as_deref(), dir, opts)
}

/// Like [`expand_to_dir`], with the original name given instead of taken from `input`.
pub fn expand_to_dir_as(
    input: &Path,
    name: Option<&str>,
    dir: &Path,
    opts: &ExpandOptions,
) -> Result<(Recipe, Report)> {
    let io_err = |what: String| {
        move |e| Error::Io {
            context: what,
            source: e,
        }
    };
    if let Ok(mut it) = fs::read_dir(dir) {
        if it.next().is_some() {
            return Err(Error::Io {
                context: format!("{}", dir.display()),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "directory exists and is not empty",
                ),
            });
        }
    } else if fs::symlink_metadata(dir).is_ok() {
        return Err(Error::Io {
            context: format!("{}", dir.display()),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            ),
        });
    }
    let tmp = temp_sibling(dir);
    fs::create_dir(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    let result = (|| {
        let mut sink = DirSink::new(&tmp);
        let (recipe, report) = expand_path_as(input, name, &mut sink, opts)?;
        write_recipe(&tmp.join(RECIPE_PATH), &recipe)?;
        fs::rename(&tmp, dir).map_err(io_err(format!(
            "renaming {} to {}",
            tmp.display(),
            dir.display()
        )))?;
        Ok((recipe, report))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Rebuilds the original file from the tree `dir` into `out`; checks its SHA-256. Gzip members
/// are recompressed on every core at once ([`RebuildOptions::default`]).
pub fn rebuild_from_dir(dir: &Path, out: &mut (dyn Write + Send)) -> Result<Digest> {
    rebuild_from_dir_with(dir, out, &RebuildOptions::default())
}

/// Like [`rebuild_from_dir`], with the given options.
pub fn rebuild_from_dir_with(
    dir: &Path,
    out: &mut (dyn Write + Send),
    opts: &RebuildOptions,
) -> Result<Digest> {
    let recipe = read_recipe(&dir.join(RECIPE_PATH))?;
    let mut source = DirSource::new(dir);
    rebuild_with(&recipe, &mut source, out, opts)
}

/// Reads a recipe file; refuses a version this build does not know.
pub fn read_recipe(path: &Path) -> Result<Recipe> {
    let bytes = fs::read(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    parse_recipe(&bytes).map_err(|e| match e {
        Error::Recipe(m) => Error::Recipe(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Parses a recipe from JSON; refuses a version this build does not know.
pub fn parse_recipe(bytes: &[u8]) -> Result<Recipe> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: Option<u64>,
    }
    let v: Versioned = serde_json::from_slice(bytes)
        .map_err(|e| Error::Recipe(format!("not a recipe (invalid JSON: {e})")))?;
    match v.version {
        Some(v) if v == u64::from(RECIPE_VERSION) => {}
        Some(v) => {
            return Err(Error::Recipe(format!(
                "recipe version {v} is not supported: this build reads version \
                 {RECIPE_VERSION} only (a newer dvault wrote it?)"
            )))
        }
        None => return Err(Error::Recipe("not a recipe (no \"version\" field)".into())),
    }
    serde_json::from_slice(bytes).map_err(|e| Error::Recipe(format!("malformed recipe: {e}")))
}

/// Writes a recipe as JSON (compact, one line, deterministic), creating parent directories.
pub fn write_recipe(path: &Path, recipe: &Recipe) -> Result<()> {
    let io_err = |e| Error::Io {
        context: format!("writing {}", path.display()),
        source: e,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    let mut json = serde_json::to_vec(recipe).map_err(|e| Error::Recipe(e.to_string()))?;
    json.push(b'\n');
    fs::write(path, json).map_err(io_err)
}

/// Where this process builds the tree for `dir` before renaming it into place: beside `dir`,
/// under a name starting with this path's file name (which holds the process id), so a caller
/// can remove what an interrupted expansion left.
pub fn temp_prefix(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tree".into());
    dir.with_file_name(format!(".{name}.peel-tmp-{}-", std::process::id()))
}

fn temp_sibling(dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut p = temp_prefix(dir).into_os_string();
    p.push(nanos.to_string());
    PathBuf::from(p)
}

fn unsafe_path(path: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("refusing entry {:?}: {why}", names::shorten(path)),
    )
}

/// Opens the directory that holds `path`'s last component under `root` and returns it with that
/// component, refusing unsafe paths and any existing component that is a symbolic link (so
/// nothing is read or written through one); missing directories are made when `create_dirs`.
/// It walks one component at a time from directory handles, so a path 2,000 directories deep
/// costs 2,000 short lookups, not 2,000 lookups of ever longer paths (minutes of system time
/// for a few hundred such entries).
fn resolve<'p>(root: &Path, path: &'p str, create_dirs: bool) -> io::Result<(OwnedFd, &'p str)> {
    if let Some(why) = names::unsafe_reason(path) {
        return Err(unsafe_path(path, why));
    }
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rfs::open(root, dir_flags, Mode::empty())?;
    let (parents, last) = path.rsplit_once('/').unwrap_or(("", path));
    for c in parents.split('/').filter(|c| !c.is_empty()) {
        match rfs::statat(&dir, c, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    return Err(unsafe_path(path, "it would go through a symbolic link"))
                }
                FileType::Directory => {}
                _ => return Err(unsafe_path(path, "a parent is not a directory")),
            },
            Err(Errno::NOENT) if create_dirs => {
                rfs::mkdirat(&dir, c, Mode::from_raw_mode(0o777))?;
            }
            Err(e) => return Err(e.into()),
        }
        // O_NOFOLLOW: a symbolic link put there since the look is refused, not followed.
        dir = rfs::openat(&dir, c, dir_flags | OFlags::NOFOLLOW, Mode::empty())?;
    }
    match rfs::statat(&dir, last, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            Err(unsafe_path(path, "it would go through a symbolic link"))
        }
        Ok(_) | Err(Errno::NOENT) => Ok((dir, last)),
        Err(e) => Err(e.into()),
    }
}

/// Writes entries as files under a directory.
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing under `root` (which must exist).
    pub fn new(root: &Path) -> Self {
        DirSink {
            root: root.to_path_buf(),
        }
    }
}

impl EntrySink for DirSink {
    fn entry(&mut self, path: &str, data: &mut dyn Read) -> io::Result<u64> {
        let (dir, name) = resolve(&self.root, path, true)?;
        // O_EXCL: never replaces or follows whatever is there; O_NOFOLLOW for good measure.
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let fd = rfs::openat(
            &dir,
            name,
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )?;
        let mut w = BufWriter::with_capacity(256 * 1024, File::from(fd));
        let written = io::copy(data, &mut w).and_then(|n| w.flush().map(|()| n));
        if written.is_err() {
            // The expansion may go on (a nested layer that fails is kept whole instead): a
            // half-written entry it never recorded must not stay in the tree.
            drop(w);
            let _ = rfs::unlinkat(&dir, name, AtFlags::empty());
        }
        written
    }

    fn discard(&mut self, path: &str) -> io::Result<()> {
        let (dir, name) = resolve(&self.root, path, false)?;
        Ok(rfs::unlinkat(&dir, name, AtFlags::empty())?)
    }
}

/// Reads entries from files under a directory.
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A source reading under `root`.
    pub fn new(root: &Path) -> Self {
        DirSource {
            root: root.to_path_buf(),
        }
    }
}

impl EntrySource for DirSource {
    fn try_clone(&self) -> Option<Box<dyn EntrySource>> {
        Some(Box::new(DirSource::new(&self.root)))
    }

    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        let shown = || self.root.join(names::shorten(path));
        let opened = resolve(&self.root, path, false).and_then(|(dir, name)| {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            Ok(rfs::openat(&dir, name, flags, Mode::empty())?)
        });
        let fd = opened.map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput => e,
            kind => io::Error::new(kind, format!("{}: {e}", shown().display())),
        })?;
        Ok(Box::new(io::BufReader::with_capacity(
            256 * 1024,
            File::from(fd),
        )))
    }
}
