//! One COPY block as a folder: its rows in key order, one file per column (the values one per
//! line, exactly as COPY wrote them) or per group of columns that change together (see
//! [`column_groups`]), and the file `order` back to pg_dump's order.
//!
//! Splitting COPY text at tabs and newlines is lossless: inside a value COPY escapes both
//! (`\t`, `\n`), so every row of a block has the same number of tab-separated fields and joining
//! the files' lines with tabs gives the rows back byte for byte.
//!
//! The read side, joining the files back into rows, is `join.rs`.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::join::Joiner;
use super::order;
use super::segment::{self, SegmentReader, SegmentWriter};
use super::{LayoutError, LAYOUT_VERSION};

/// Name of the order file inside a block folder.
pub(crate) const ORDER_FILE: &str = "order";

/// One row of a block in the original file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    /// Offset of the row in the source file.
    pub offset: u64,
    /// Length including the newline.
    pub len: u32,
}

/// A laid-out block as recorded in `layout.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BlockMeta {
    /// Offset in the skeleton where the block's rows go.
    pub at: u64,
    /// Folder of the block, relative to the file's layout folder.
    pub dir: String,
    /// The table (or data file) the rows belong to.
    pub table: String,
    /// Number of rows.
    pub rows: u64,
    /// Column files, relative to `dir`, ordered by their first field: each holds one column,
    /// or a group of columns joined by tabs.
    pub columns: Vec<String>,
    /// For each column file, the fields it holds (0-based positions in the row), when a file
    /// holds fields that are not next to each other (layout version 2). Absent when the files
    /// are runs of consecutive fields in order: joining their lines with tabs gives the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Fields>,
    /// For each column file, the number of segment folders it is stored in (`000000/values`,
    /// …; 0 for a plain file), when a file is segmented (layout version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<u32>>,
    /// Bytes of the rows as pg_dump wrote them.
    pub bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: String,
}

/// For each column file of a block, the positions in the row of the values on its lines.
pub(crate) type Fields = Vec<Vec<usize>>;

/// Mean value size in bytes from which a column counts as wide: wide columns next to each
/// other share one file (see [`column_groups`]). Far above timestamps, counters and titles, far
/// below post and profile texts, so a column does not flip between days.
pub(crate) const WIDE_COLUMN_BYTES: u64 = 256;

/// Rows sampled (evenly over the block) to measure column widths.
const WIDTH_SAMPLE_ROWS: usize = 4096;

/// The block's files as groups of fields, each sorted, ordered by their first field: every
/// narrow column alone, each run of adjacent wide columns together, and the columns of each
/// group of `together` (indices into the row's fields) together. The wide values of a row
/// change together and repeat each other (a post's `raw` markdown and its `cooked` HTML): side
/// by side, an edit rewrites one stretch of one file instead of a chunk in each, and zstd finds
/// the repetition inside a chunk; `together` does the same for columns known to be written in
/// one statement (see `affinity`).
fn column_groups(
    src: &File,
    rows: &[Row],
    order: &[u32],
    ncols: usize,
    together: &[Vec<usize>],
) -> io::Result<(Vec<Vec<usize>>, Vec<u64>)> {
    let mut sums = vec![0u64; ncols];
    let step = (order.len() / WIDTH_SAMPLE_ROWS).max(1);
    let mut sampled = 0u64;
    let mut window = Window::new(src);
    for &i in order.iter().step_by(step) {
        let r = rows[i as usize];
        let bytes = window.get(r.offset, r.len as usize)?;
        for (k, field) in bytes[..bytes.len() - 1].split(|b| *b == b'\t').enumerate() {
            if let Some(s) = sums.get_mut(k) {
                *s += field.len() as u64;
            }
        }
        sampled += 1;
    }
    let wide = |k: usize| sampled > 0 && sums[k] / sampled >= WIDE_COLUMN_BYTES;
    // Each field's group, named by its smallest field: merging two groups relabels one.
    let mut group: Vec<usize> = (0..ncols).collect();
    let merge = |group: &mut Vec<usize>, a: usize, b: usize| {
        let (ga, gb) = (group[a], group[b]);
        let (keep, drop) = (ga.min(gb), ga.max(gb));
        for g in group.iter_mut().filter(|g| **g == drop) {
            *g = keep;
        }
    };
    for k in 1..ncols {
        if wide(k) && wide(k - 1) {
            merge(&mut group, k - 1, k);
        }
    }
    for t in together {
        for w in t.windows(2) {
            if w[0] < ncols && w[1] < ncols {
                merge(&mut group, w[0], w[1]);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (k, &label) in group.iter().enumerate() {
        match groups.iter_mut().find(|g| g[0] == label) {
            Some(g) => g.push(k),
            None => groups.push(vec![k]),
        }
    }
    let means = sums.iter().map(|s| s / sampled.max(1)).collect();
    Ok((groups, means))
}

/// Longest file name a group gets before its other columns are counted instead of named.
const GROUP_NAME_MAX: usize = 160;

/// The file name of a group of columns: the first column's name, then `+` and the names of the
/// others without their number (`004-raw+cooked`); `+N-more` when that grows too long.
fn group_name(columns: &[String], g: &[usize]) -> String {
    let mut name = columns[g[0]].clone();
    for (i, &k) in g.iter().enumerate().skip(1) {
        let c = &columns[k];
        let bare = c.split_once('-').map_or(c.as_str(), |(_, n)| n);
        if name.len() + 1 + bare.len() > GROUP_NAME_MAX {
            name.push_str(&format!("+{}-more", g.len() - i));
            break;
        }
        name.push('+');
        name.push_str(bare);
    }
    name
}

/// What [`write_block`] wrote, for `layout.json`.
pub(crate) struct Written {
    /// The column files (see [`BlockMeta::columns`]).
    pub columns: Vec<String>,
    /// See [`BlockMeta::fields`].
    pub fields: Option<Fields>,
    /// See [`BlockMeta::segments`].
    pub segments: Option<Vec<u32>>,
}

/// One column file being written: a plain file, or a folder of segments.
enum ColumnOut {
    File(BufWriter<File>),
    Segments(SegmentWriter),
}

impl ColumnOut {
    /// Writes one value and what follows it (`\t`, or `\n` at the end of the row `key`'s line).
    fn write_value(&mut self, value: &[u8], last: bool, key: Option<(i64, i64)>) -> io::Result<()> {
        let end: &[u8] = if last { b"\n" } else { b"\t" };
        match self {
            Self::File(w) => w.write_all(value).and_then(|()| w.write_all(end)),
            Self::Segments(w) => {
                w.write_all(value)?;
                w.write_all(end)?;
                match key {
                    Some(key) if last => w.end_line(key),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Flushes; the number of segments written (0 for a plain file).
    fn finish(self) -> io::Result<u32> {
        match self {
            Self::File(w) => w.into_inner().map(|_| 0).map_err(|e| e.into_error()),
            Self::Segments(w) => w.finish(),
        }
    }
}

/// Writes the block folder `dir` for `rows` of `src`, in the order `order` (indices into
/// `rows`), with `columns` the names of the block's columns and `together` groups of columns
/// to keep in one file (see [`column_groups`]). With `keys` (the rows' sort keys, indexed like
/// `rows`), a big column file is written as segments (see `segment`). Every row must
/// end with a newline and have `columns.len()` fields (the caller checked).
pub(crate) fn write_block(
    src: &File,
    rows: &[Row],
    order: &[u32],
    dir: &Path,
    columns: &[String],
    together: &[Vec<usize>],
    keys: Option<&[(i64, i64)]>,
) -> Result<Written, LayoutError> {
    fs::create_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
    let (groups, means) =
        column_groups(src, rows, order, columns.len(), together).map_err(|e| {
            LayoutError::new(
                format!("{} (measuring columns)", dir.display()),
                e.to_string(),
            )
        })?;
    let files: Vec<String> = groups.iter().map(|g| group_name(columns, g)).collect();
    // For each column: its file, and whether it ends that file's line.
    let mut target = vec![(0, false); columns.len()];
    for (n, g) in groups.iter().enumerate() {
        for &k in g {
            target[k] = (n, Some(&k) == g.last());
        }
    }
    let runs_in_order = groups.iter().flatten().copied().eq(0..columns.len());
    let segmented = |g: &Vec<usize>| {
        let line: u64 = g.iter().map(|&k| means[k] + 1).sum();
        keys.is_some() && line * rows.len() as u64 >= segment::MIN_SEGMENTED_BYTES
    };
    let mut writers = Vec::with_capacity(files.len());
    for (c, g) in files.iter().zip(&groups) {
        let p = dir.join(c);
        writers.push(if segmented(g) {
            ColumnOut::Segments(SegmentWriter::create(&p).map_err(|e| LayoutError::io(&p, e))?)
        } else {
            let f = File::create(&p).map_err(|e| LayoutError::io(&p, e))?;
            ColumnOut::File(BufWriter::with_capacity(64 * 1024, f))
        });
    }
    let mut window = Window::new(src);
    for &i in order {
        let r = rows[i as usize];
        let bytes = window.get(r.offset, r.len as usize).map_err(|e| {
            LayoutError::new(
                format!("{} (row at offset {})", dir.display(), r.offset),
                e.to_string(),
            )
        })?;
        let body = &bytes[..bytes.len() - 1];
        let mut fields = body.split(|b| *b == b'\t');
        for (k, &(n, last)) in target.iter().enumerate() {
            let field = fields.next().ok_or_else(|| {
                LayoutError::new(
                    format!("{} (row at offset {})", dir.display(), r.offset),
                    format!("row has {k} fields, expected {}", columns.len()),
                )
            })?;
            writers[n]
                .write_value(field, last, keys.map(|k| k[i as usize]))
                .map_err(|e| LayoutError::io(&dir.join(&files[n]), e))?;
        }
    }
    let mut segments = Vec::with_capacity(files.len());
    for (w, c) in writers.into_iter().zip(&files) {
        segments.push(w.finish().map_err(|e| LayoutError::io(&dir.join(c), e))?);
    }
    let runs = order::runs_of(order);
    let p = dir.join(ORDER_FILE);
    let f = File::create(&p).map_err(|e| LayoutError::io(&p, e))?;
    let mut w = BufWriter::new(f);
    order::write_runs(&mut w, &runs, order::Starts::of_version(LAYOUT_VERSION))
        .and_then(|()| w.flush())
        .map_err(|e| LayoutError::io(&p, e))?;
    Ok(Written {
        columns: files,
        fields: (!runs_in_order).then_some(groups),
        segments: segments.iter().any(|&n| n > 0).then_some(segments),
    })
}

/// Writes the rows of the block folder `dir` (described by `meta`, of layout version `version`)
/// to `out` in pg_dump's order. Checks the shape (every column has `meta.rows` values, the order
/// file is a permutation); the caller checks the SHA-256.
pub(crate) fn reassemble_block(
    dir: &Path,
    meta: &BlockMeta,
    version: u32,
    out: &mut dyn Write,
) -> Result<(), LayoutError> {
    let p = dir.join(ORDER_FILE);
    let f = File::open(&p).map_err(|e| LayoutError::io(&p, e))?;
    let runs = order::read_runs(
        &mut BufReader::new(f),
        meta.rows,
        order::Starts::of_version(version),
    )
    .map_err(|m| LayoutError::new(p.display(), m))?;
    let segments = match &meta.segments {
        Some(s) if s.len() != meta.columns.len() => {
            return Err(LayoutError::new(
                dir.display(),
                format!(
                    "`segments` has {} entries for {} column files",
                    s.len(),
                    meta.columns.len()
                ),
            ))
        }
        Some(s) => s.clone(),
        None => vec![0; meta.columns.len()],
    };
    let mut readers = Vec::with_capacity(meta.columns.len());
    for (c, &count) in meta.columns.iter().zip(&segments) {
        // Names come from layout.json: only plain names inside the block folder are read.
        if super::safe_relative(c).is_none_or(|p| p.components().count() != 1) {
            return Err(LayoutError::new(
                dir.display(),
                format!("column file `{c}` is not a plain name"),
            ));
        }
        let p = dir.join(c);
        let r: Box<dyn Read> = if count > 0 {
            Box::new(SegmentReader::new(&p, count))
        } else {
            Box::new(File::open(&p).map_err(|e| LayoutError::io(&p, e))?)
        };
        readers.push((p, BufReader::with_capacity(64 * 1024, r)));
    }
    if meta.rows == 0 || readers.is_empty() {
        return Err(LayoutError::new(
            dir.display(),
            "a laid-out block needs at least one row and one column",
        ));
    }
    let mut joiner = Joiner::new(readers, meta.fields.as_deref())
        .map_err(|m| LayoutError::new(dir.display(), m))?;
    let in_order = runs.len() == 1;
    let io_out = |e| LayoutError::new(format!("{} (writing)", dir.display()), format!("{e}"));
    if in_order {
        let mut row = Vec::new();
        for n in 0..meta.rows {
            joiner.join(n, &mut row)?;
            out.write_all(&row).map_err(io_out)?;
        }
    } else {
        // Rows in key order go to an unnamed scratch file next to the block, then are copied out
        // run by run: memory stays at one offset per row whatever the table's size.
        let mut tmp = tempfile::tempfile_in(dir).map_err(|e| LayoutError::io(dir, e))?;
        let mut offsets = Vec::with_capacity(meta.rows as usize + 1);
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut tmp);
            let mut row = Vec::new();
            let mut at = 0u64;
            for n in 0..meta.rows {
                offsets.push(at);
                joiner.join(n, &mut row)?;
                w.write_all(&row).map_err(|e| LayoutError::io(dir, e))?;
                at += row.len() as u64;
            }
            offsets.push(at);
            w.flush().map_err(|e| LayoutError::io(dir, e))?;
        }
        let mut buf = vec![0u8; 1 << 20];
        for (start, count) in runs {
            let from = offsets[start as usize];
            let to = offsets[(start + count) as usize];
            tmp.seek(SeekFrom::Start(from))
                .map_err(|e| LayoutError::io(dir, e))?;
            let mut left = to - from;
            while left > 0 {
                let n = (left as usize).min(buf.len());
                tmp.read_exact(&mut buf[..n])
                    .map_err(|e| LayoutError::io(dir, e))?;
                out.write_all(&buf[..n]).map_err(io_out)?;
                left -= n as u64;
            }
        }
    }
    for (p, r) in &mut joiner.readers {
        let more = r.fill_buf().map_err(|e| LayoutError::io(p, e))?;
        if !more.is_empty() {
            return Err(LayoutError::new(
                p.display(),
                format!("has more than the block's {} values", meta.rows),
            ));
        }
    }
    Ok(())
}

/// Reads byte ranges of a file through a 1 MiB window: rows in key order mostly follow the
/// file's order, so most reads are served from memory.
struct Window<'a> {
    file: &'a File,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn new(file: &'a File) -> Self {
        Self {
            file,
            start: 0,
            buf: Vec::new(),
        }
    }

    fn get(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        let end = offset + len as u64;
        if offset < self.start || end > self.start + self.buf.len() as u64 {
            self.buf.resize(len.max(1 << 20), 0);
            let mut filled = 0;
            while filled < len {
                let n = self
                    .file
                    .read_at(&mut self.buf[filled..], offset + filled as u64)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ends before offset {end}"),
                    ));
                }
                filled += n;
            }
            self.buf.truncate(filled);
            self.start = offset;
        }
        let from = (offset - self.start) as usize;
        Ok(&self.buf[from..from + len])
    }
}
