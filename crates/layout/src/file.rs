//! One dump file as a layout folder: `layout.json`, the `skeleton` (the file with the rows of
//! each laid-out COPY block cut out) and one folder per laid-out block.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::block::{self, BlockMeta, Row};
use super::bytes::{copy_exact, copy_range, CountingWriter, HashingWriter};
use super::scan::{self, CopyHeader, KeySpec, END_OF_DATA};
use super::{affinity, FileReport, LayoutError, PlainBlock, LAYOUT_VERSION, OLDEST_LAYOUT_VERSION};

/// The description of a laid-out file.
pub(crate) const MANIFEST: &str = "layout.json";
/// The file minus the rows of its laid-out blocks.
pub(crate) const SKELETON: &str = "skeleton";
/// Blocks smaller than this stay in the skeleton: a folder of column files costs more tree
/// metadata than such a block can save.
pub(crate) const MIN_BLOCK_BYTES: u64 = 16 * 1024;

/// `layout.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// The original file's path in the tree.
    file: String,
    /// Its size and SHA-256.
    size: u64,
    sha256: String,
    /// The laid-out blocks, in file order.
    blocks: Vec<BlockMeta>,
}

/// Lays out the dump `src` (`rel` is its path in the tree) into the new folder `dir`, proves the
/// reassembly by SHA-256 and reports. When nothing could be laid out or the proof fails, `dir`
/// is removed and the report says why; `src` is never touched (the caller removes it).
/// `header` is the COPY statement of a directory-format data file, from `toc.dat`.
pub(crate) fn apply_file(
    src: &Path,
    dir: &Path,
    rel: &str,
    header: Option<&CopyHeader>,
) -> Result<FileReport, LayoutError> {
    let mut excluded = BTreeSet::new();
    // A block whose reassembly fails the proof is kept plain and the file laid out again; a
    // second failure of the same kind (or one outside any block) keeps the whole file plain.
    for _attempt in 0..3 {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
        }
        let mut report = write_layout(src, dir, rel, header, &excluded)?;
        if report.blocks == 0 {
            fs::remove_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
            report.laid_out = false;
            report.reason = Some("no COPY block large enough to lay out".to_string());
            return Ok(report);
        }
        match verify(dir) {
            Ok(()) => {
                report.laid_out = true;
                return Ok(report);
            }
            Err(Failure {
                block: Some(name),
                error,
            }) if !excluded.contains(&name) => {
                tracing::warn!("layout of {rel}: block {name} kept plain: {error}");
                excluded.insert(name);
            }
            Err(Failure { error, .. }) => {
                fs::remove_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
                return Ok(FileReport {
                    file: rel.to_string(),
                    laid_out: false,
                    reason: Some(format!("reassembly not proven: {error}")),
                    ..FileReport::default()
                });
            }
        }
    }
    fs::remove_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
    Ok(FileReport {
        file: rel.to_string(),
        laid_out: false,
        reason: Some("reassembly not proven after keeping failing blocks plain".to_string()),
        ..FileReport::default()
    })
}

/// Rebuilds the original file from its layout folder `dir` into `out`; checks every block's
/// and the whole file's size and SHA-256 against `layout.json`. Returns the size and SHA-256.
pub fn reassemble_file(dir: &Path, out: &mut dyn Write) -> Result<(u64, String), LayoutError> {
    reassemble(dir, out).map_err(|f| f.error)
}

/// A failed reassembly, with the folder of the block at fault when one is.
struct Failure {
    block: Option<String>,
    error: LayoutError,
}

impl From<LayoutError> for Failure {
    fn from(error: LayoutError) -> Self {
        Self { block: None, error }
    }
}

fn verify(dir: &Path) -> Result<(), Failure> {
    reassemble(dir, &mut io::sink()).map(|_| ())
}

fn reassemble(dir: &Path, out: &mut dyn Write) -> Result<(u64, String), Failure> {
    let mpath = dir.join(MANIFEST);
    let text = fs::read(&mpath).map_err(|e| LayoutError::io(&mpath, e))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| LayoutError::new(mpath.display(), format!("not a layout manifest: {e}")))?;
    if !(OLDEST_LAYOUT_VERSION..=LAYOUT_VERSION).contains(&m.version) {
        return Err(LayoutError::new(
            mpath.display(),
            format!(
                "layout version {} is not supported (this dvault reads versions \
                 {OLDEST_LAYOUT_VERSION} to {LAYOUT_VERSION})",
                m.version
            ),
        )
        .into());
    }
    let skel_path = dir.join(SKELETON);
    let mut skel = File::open(&skel_path).map_err(|e| LayoutError::io(&skel_path, e))?;
    let mut all = HashingWriter::new(out);
    let mut pos = 0u64;
    for (i, b) in m.blocks.iter().enumerate() {
        if b.at < pos {
            return Err(LayoutError::new(
                mpath.display(),
                format!("block {i} ({}) starts at {} before {pos}", b.table, b.at),
            )
            .into());
        }
        copy_exact(&mut skel, b.at - pos, &mut all).map_err(|e| {
            LayoutError::new(skel_path.display(), format!("up to offset {}: {e}", b.at))
        })?;
        pos = b.at;
        let bdir = dir.join(&b.dir);
        if super::safe_relative(&b.dir).is_none_or(|p| p.components().count() != 1) {
            return Err(LayoutError::new(
                mpath.display(),
                format!("block folder `{}` is not a plain name", b.dir),
            )
            .into());
        }
        let mut hw = HashingWriter::new(&mut all);
        block::reassemble_block(&bdir, b, m.version, &mut hw).map_err(|error| Failure {
            block: Some(b.dir.clone()),
            error,
        })?;
        let (n, sha) = hw.finish();
        if n != b.bytes || sha != b.sha256 {
            return Err(Failure {
                block: Some(b.dir.clone()),
                error: LayoutError::new(
                    bdir.display(),
                    format!(
                        "rows of {} rebuild to {n} bytes with SHA-256 {sha}, expected {} bytes with {}",
                        b.table, b.bytes, b.sha256
                    ),
                ),
            });
        }
    }
    io::copy(&mut skel, &mut all).map_err(|e| LayoutError::io(&skel_path, e))?;
    let (n, sha) = all.finish();
    if n != m.size || sha != m.sha256 {
        return Err(LayoutError::new(
            dir.display(),
            format!(
                "{} rebuilds to {n} bytes with SHA-256 {sha}, expected {} bytes with {}",
                m.file, m.size, m.sha256
            ),
        )
        .into());
    }
    Ok((n, sha))
}

/// A block being read from the source file.
struct OpenBlock {
    header: Option<CopyHeader>,
    table: String,
    start: u64,
    rows: Vec<Row>,
    keys: Option<Vec<(i64, i64)>>,
    key: KeySpec,
    fields: Option<usize>,
    problem: Option<String>,
    hash: Sha256,
}

impl OpenBlock {
    fn new(header: Option<CopyHeader>, table: String, start: u64) -> Self {
        let key = KeySpec::for_columns(header.as_ref().and_then(|h| h.columns.as_deref()));
        let fields = header
            .as_ref()
            .and_then(|h| h.columns.as_ref())
            .map(Vec::len);
        Self {
            header,
            table,
            start,
            rows: Vec::new(),
            keys: Some(Vec::new()),
            key,
            fields,
            problem: None,
            hash: Sha256::new(),
        }
    }

    fn push(&mut self, offset: u64, line: &[u8]) {
        self.hash.update(line);
        if self.problem.is_some() {
            return;
        }
        let Some(body) = line.strip_suffix(b"\n") else {
            self.problem = Some("the last row has no newline".to_string());
            return;
        };
        let n = scan::field_count(body);
        match self.fields {
            None => self.fields = Some(n),
            Some(f) if f != n => {
                self.problem = Some(format!(
                    "row {} at offset {offset} has {n} fields, expected {f}",
                    self.rows.len() + 1
                ));
                return;
            }
            Some(_) => {}
        }
        let Ok(len) = u32::try_from(line.len()) else {
            self.problem = Some(format!("row at offset {offset} is over 4 GiB"));
            return;
        };
        if self.rows.len() >= u32::MAX as usize {
            self.problem = Some("more than 2^32 rows".to_string());
            return;
        }
        self.rows.push(Row { offset, len });
        if let Some(keys) = &mut self.keys {
            match self.key.key(body) {
                Some(k) => keys.push(k),
                None => self.keys = None,
            }
        }
    }

    fn bytes(&self, end: u64) -> u64 {
        end - self.start
    }
}

/// Scans `src` once: writes the skeleton, lays out each block worth it (not in `excluded`) and
/// writes `layout.json`. The proof comes after, in [`verify`].
fn write_layout(
    src: &Path,
    dir: &Path,
    rel: &str,
    header: Option<&CopyHeader>,
    excluded: &BTreeSet<String>,
) -> Result<FileReport, LayoutError> {
    fs::create_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
    let file = File::open(src).map_err(|e| LayoutError::io(src, e))?;
    let rows_src = File::open(src).map_err(|e| LayoutError::io(src, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let skel_path = dir.join(SKELETON);
    let mut skel = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, {
            File::create(&skel_path).map_err(|e| LayoutError::io(&skel_path, e))?
        }),
        n: 0,
    };
    let skel_err = |e| LayoutError::io(&skel_path, e);
    let mut report = FileReport {
        file: rel.to_string(),
        ..FileReport::default()
    };
    let mut whole = Sha256::new();
    let mut blocks: Vec<BlockMeta> = Vec::new();
    let mut candidates = 0usize;
    // A data file of a directory-format dump is one block from its first byte.
    let is_dat = rel.ends_with(".dat");
    let stem = Path::new(rel)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut open: Option<OpenBlock> = is_dat.then(|| match header {
        Some(h) => OpenBlock::new(Some(h.clone()), h.table.clone(), 0),
        None => OpenBlock::new(None, stem.clone(), 0),
    });
    let mut offset = 0u64;
    let mut line = Vec::with_capacity(1 << 16);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| LayoutError::new(src.display(), format!("offset {offset}: {e}")))?;
        if n == 0 {
            break;
        }
        whole.update(&line);
        match &mut open {
            Some(_) if line == END_OF_DATA => {
                let Some(b) = open.take() else { continue };
                let idx = candidates;
                candidates += 1;
                finish_block(
                    b,
                    offset,
                    idx,
                    excluded,
                    &rows_src,
                    dir,
                    &mut skel,
                    &mut blocks,
                    &mut report,
                )?;
                skel.write_all(&line).map_err(skel_err)?;
            }
            Some(b) => b.push(offset, &line),
            None => {
                skel.write_all(&line).map_err(skel_err)?;
                if let Some(h) = scan::parse_copy_line(&line) {
                    let table = h.table.clone();
                    open = Some(OpenBlock::new(Some(h), table, offset + n as u64));
                }
            }
        }
        offset += n as u64;
    }
    if let Some(b) = open.take() {
        // No end-of-data line: the rows stay as they are.
        report.plain_blocks.push(PlainBlock {
            table: b.table.clone(),
            reason: "no end-of-data line `\\.`".to_string(),
        });
        copy_range(&rows_src, b.start, offset - b.start, &mut skel).map_err(skel_err)?;
    }
    skel.inner
        .into_inner()
        .map_err(|e| LayoutError::io(&skel_path, e.into_error()))?;
    let manifest = Manifest {
        version: LAYOUT_VERSION,
        file: rel.to_string(),
        size: offset,
        sha256: hex::encode(whole.finalize()),
        blocks,
    };
    report.blocks = manifest.blocks.len();
    report.rows = manifest.blocks.iter().map(|b| b.rows).sum();
    let mpath = dir.join(MANIFEST);
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| LayoutError::new(mpath.display(), e.to_string()))?;
    fs::write(&mpath, text).map_err(|e| LayoutError::io(&mpath, e))?;
    Ok(report)
}

/// Lays out a finished block (ending at `end`), or copies its rows into the skeleton.
#[allow(clippy::too_many_arguments)]
fn finish_block(
    b: OpenBlock,
    end: u64,
    idx: usize,
    excluded: &BTreeSet<String>,
    src: &File,
    dir: &Path,
    skel: &mut CountingWriter,
    blocks: &mut Vec<BlockMeta>,
    report: &mut FileReport,
) -> Result<(), LayoutError> {
    let bytes = b.bytes(end);
    let name = format!("{:04}-{}", idx, file_safe(&b.table));
    let reason = if excluded.contains(&name) {
        Some("its reassembly did not match (kept plain)".to_string())
    } else if let Some(p) = &b.problem {
        Some(p.clone())
    } else if b.rows.is_empty() || bytes < MIN_BLOCK_BYTES {
        None // too small to be worth it; not worth a line in the report either
    } else {
        let bdir = dir.join(&name);
        let ncols = b.fields.unwrap_or(1);
        let names: Vec<&str> = b
            .header
            .as_ref()
            .and_then(|h| h.columns.as_ref())
            .map(|c| c.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let together = affinity::together(&b.table, &names);
        let columns: Vec<String> = (0..ncols)
            .map(|k| {
                let col = names.get(k);
                match col {
                    Some(c) => format!("{k:03}-{}", file_safe(c)),
                    None => format!("{k:03}"),
                }
            })
            .collect();
        let mut order: Vec<u32> = (0..b.rows.len() as u32).collect();
        if let Some(keys) = &b.keys {
            order.sort_by_key(|&i| keys[i as usize]);
        }
        let written = block::write_block(
            src,
            &b.rows,
            &order,
            &bdir,
            &columns,
            &together,
            b.keys.as_deref(),
        )?;
        blocks.push(BlockMeta {
            at: skel.n,
            dir: name,
            table: b.table.clone(),
            rows: b.rows.len() as u64,
            columns: written.columns,
            fields: written.fields,
            segments: written.segments,
            bytes,
            sha256: hex::encode(b.hash.finalize()),
        });
        return Ok(());
    };
    if let Some(reason) = reason {
        report.plain_blocks.push(PlainBlock {
            table: b.table.clone(),
            reason,
        });
    }
    copy_range(src, b.start, bytes, skel).map_err(|e| LayoutError::io(dir, e))
}

/// A name safe as one path component: ASCII letters, digits, `_`, `-` and `.`; others become `_`.
fn file_safe(s: &str) -> String {
    let t: String = s
        .trim_matches('"')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if t.is_empty() || t.starts_with('.') {
        format!("_{t}")
    } else {
        t
    }
}
