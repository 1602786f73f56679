//! One COPY block as a folder: its rows in key order, one file per column (the values one per
//! line, exactly as COPY wrote them) or per run of adjacent wide columns (see
//! [`column_groups`]), and the file `order` back to pg_dump's order.
//!
//! Splitting COPY text at tabs and newlines is lossless: inside a value COPY escapes both
//! (`\t`, `\n`), so every row of a block has the same number of tab-separated fields and joining
//! the files' lines with tabs gives the rows back byte for byte.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::order;
use super::LayoutError;

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
    /// Column files in field order, relative to `dir`: each holds one column, or a run of
    /// adjacent wide columns joined by tabs.
    pub columns: Vec<String>,
    /// Bytes of the rows as pg_dump wrote them.
    pub bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: String,
}

/// Mean value size in bytes from which a column counts as wide: wide columns next to each
/// other share one file (see [`column_groups`]). Far above timestamps, counters and titles, far
/// below post and profile texts, so a column does not flip between days.
pub(crate) const WIDE_COLUMN_BYTES: u64 = 256;

/// Rows sampled (evenly over the block) to measure column widths.
const WIDTH_SAMPLE_ROWS: usize = 4096;

/// The block's files as runs of columns: every narrow column alone, and each run of adjacent
/// wide columns together, row by row (their values joined by tabs, as in COPY). The wide values
/// of a row change together and repeat each other (a post's `raw` markdown and its `cooked`
/// HTML): side by side, an edit rewrites one stretch of one file instead of a chunk in each,
/// and zstd finds the repetition inside a chunk. Only adjacent columns are joined, so
/// reassembly stays "join line k of every file with tabs".
fn column_groups(
    src: &File,
    rows: &[Row],
    order: &[u32],
    ncols: usize,
) -> io::Result<Vec<std::ops::Range<usize>>> {
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
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for k in 0..ncols {
        match groups.last_mut() {
            Some(g) if wide(k) && wide(g.start) => g.end = k + 1,
            _ => groups.push(k..k + 1),
        }
    }
    Ok(groups)
}

/// The file name of a run of columns: the first column's name, then `+` and the names of the
/// others without their number (`004-raw+cooked`).
fn group_name(columns: &[String], g: &std::ops::Range<usize>) -> String {
    let mut name = columns[g.start].clone();
    for c in &columns[g.start + 1..g.end] {
        name.push('+');
        name.push_str(c.split_once('-').map_or(c.as_str(), |(_, n)| n));
    }
    name
}

/// Writes the block folder `dir` for `rows` of `src`, in the order `order` (indices into
/// `rows`), with `columns` the names of the block's columns. Returns the files written, in
/// field order (see [`column_groups`]). Every row must end with a newline and have
/// `columns.len()` fields (the caller checked).
pub(crate) fn write_block(
    src: &File,
    rows: &[Row],
    order: &[u32],
    dir: &Path,
    columns: &[String],
) -> Result<Vec<String>, LayoutError> {
    fs::create_dir_all(dir).map_err(|e| LayoutError::io(dir, e))?;
    let groups = column_groups(src, rows, order, columns.len()).map_err(|e| {
        LayoutError::new(
            format!("{} (measuring columns)", dir.display()),
            e.to_string(),
        )
    })?;
    let files: Vec<String> = groups.iter().map(|g| group_name(columns, g)).collect();
    // For each column: its file, and whether it ends that file's line.
    let mut target = Vec::with_capacity(columns.len());
    for (n, g) in groups.iter().enumerate() {
        for k in g.clone() {
            target.push((n, k + 1 == g.end));
        }
    }
    let mut writers = Vec::with_capacity(files.len());
    for c in &files {
        let p = dir.join(c);
        let f = File::create(&p).map_err(|e| LayoutError::io(&p, e))?;
        writers.push(BufWriter::with_capacity(64 * 1024, f));
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
            let w = &mut writers[n];
            w.write_all(field)
                .and_then(|()| w.write_all(if last { b"\n" } else { b"\t" }))
                .map_err(|e| LayoutError::io(&dir.join(&files[n]), e))?;
        }
    }
    for (w, c) in writers.into_iter().zip(&files) {
        w.into_inner()
            .map_err(|e| LayoutError::io(&dir.join(c), e.into_error()))?;
    }
    let runs = order::runs_of(order);
    let p = dir.join(ORDER_FILE);
    let f = File::create(&p).map_err(|e| LayoutError::io(&p, e))?;
    let mut w = BufWriter::new(f);
    order::write_runs(&mut w, &runs)
        .and_then(|()| w.flush())
        .map_err(|e| LayoutError::io(&p, e))?;
    Ok(files)
}

/// Writes the rows of the block folder `dir` (described by `meta`) to `out` in pg_dump's order.
/// Checks the shape (every column has `meta.rows` values, the order file is a permutation);
/// the caller checks the SHA-256.
pub(crate) fn reassemble_block(
    dir: &Path,
    meta: &BlockMeta,
    out: &mut dyn Write,
) -> Result<(), LayoutError> {
    let p = dir.join(ORDER_FILE);
    let f = File::open(&p).map_err(|e| LayoutError::io(&p, e))?;
    let runs = order::read_runs(&mut BufReader::new(f), meta.rows)
        .map_err(|m| LayoutError::new(p.display(), m))?;
    let mut readers = Vec::with_capacity(meta.columns.len());
    for c in &meta.columns {
        // Names come from layout.json: only plain names inside the block folder are read.
        if super::safe_relative(c).is_none_or(|p| p.components().count() != 1) {
            return Err(LayoutError::new(
                dir.display(),
                format!("column file `{c}` is not a plain name"),
            ));
        }
        let p = dir.join(c);
        let f = File::open(&p).map_err(|e| LayoutError::io(&p, e))?;
        readers.push((p, BufReader::with_capacity(64 * 1024, f)));
    }
    if meta.rows == 0 || readers.is_empty() {
        return Err(LayoutError::new(
            dir.display(),
            "a laid-out block needs at least one row and one column",
        ));
    }
    let in_order = runs.len() == 1;
    let io_out = |e| LayoutError::new(format!("{} (writing)", dir.display()), format!("{e}"));
    if in_order {
        let mut row = Vec::new();
        for n in 0..meta.rows {
            join_row(&mut readers, n, &mut row)?;
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
                join_row(&mut readers, n, &mut row)?;
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
    for (p, r) in &mut readers {
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

/// Reads value `n` of every column and joins them into one COPY row (tabs between, newline
/// at the end).
fn join_row(
    readers: &mut [(std::path::PathBuf, BufReader<File>)],
    n: u64,
    row: &mut Vec<u8>,
) -> Result<(), LayoutError> {
    row.clear();
    let last = readers.len() - 1;
    for (k, (p, r)) in readers.iter_mut().enumerate() {
        let before = row.len();
        let got = r
            .read_until(b'\n', row)
            .map_err(|e| LayoutError::io(p, e))?;
        if got == 0 || row.last() != Some(&b'\n') {
            return Err(LayoutError::new(
                p.display(),
                format!("ends at value {n}: expected one value per row, ended by a newline"),
            ));
        }
        debug_assert!(row.len() > before);
        if k != last {
            let end = row.len() - 1;
            row[end] = b'\t';
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
