//! A big column file stored as a folder of segments, one folder each.
//!
//! A restic tree blob lists every chunk id of every file in its folder, and the whole blob is
//! stored again whenever one of those files changes. The file of a post's texts has about ten
//! thousand chunks on a medium forum, and a few edits a day change it: its folder's tree blob
//! (~340 KiB packed) was the largest single cost of a day after the edits themselves. Cut into
//! segments, each in a folder of its own, an edit stores again only its segment's short list
//! and the list of segment folders. Narrow columns of big tables gain the same way where rows
//! are added at the end and removed at the start (`notifications`, `user_actions`); where
//! changes are scattered every segment changes, which costs about one folder entry per segment
//! more than the flat list.
//!
//! Cuts must not move when rows change or are added, or every segment after a change would be
//! new: a row ends a segment when a hash of its key, read as a fraction, falls below the row's
//! share of [`SEGMENT_BYTES`]. That depends on the row alone (its key and the length of its
//! line), so an edit can at most move the cut at its own row, and new rows (higher keys) only
//! add segments at the end.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Mean size of a segment's values: about thirty chunks of 4-16 KiB.
pub(crate) const SEGMENT_BYTES: u64 = 256 * 1024;

/// Files expected below this size stay one file: a few segments would not pay their folders.
pub(crate) const MIN_SEGMENTED_BYTES: u64 = 4 * SEGMENT_BYTES;

/// The file of values inside each segment folder.
pub(crate) const VALUES_FILE: &str = "values";

/// The name of segment folder `n`: zero-padded, so the folders sort in order.
pub(crate) fn folder_name(n: u32) -> String {
    format!("{n:06}")
}

/// True when the row with `key`, whose line in the file is `line_len` bytes, ends a segment.
fn ends_segment(key: (i64, i64), line_len: u64) -> bool {
    // SplitMix64's finalizer, written out because the cut points must stay the same in every
    // build and version (std's hashers promise no stable output).
    let mut z = (key.0 as u64) ^ (key.1 as u64).rotate_left(32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * (SEGMENT_BYTES as f64) < line_len as f64
}

/// Writes a column's lines into segment folders `dir/000000/values`, `dir/000001/values`, ….
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    count: u32,
    current: Option<BufWriter<File>>,
    line_len: u64,
}

impl SegmentWriter {
    /// Creates the folder `dir`.
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            count: 0,
            current: None,
            line_len: 0,
        })
    }

    /// Writes part of the current line.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.current.is_none() {
            let d = self.dir.join(folder_name(self.count));
            fs::create_dir(&d)?;
            let f = File::create(d.join(VALUES_FILE))?;
            self.current = Some(BufWriter::with_capacity(64 * 1024, f));
            self.count += 1;
        }
        self.line_len += bytes.len() as u64;
        self.current
            .as_mut()
            .expect("opened above")
            .write_all(bytes)
    }

    /// Ends the current line (already written with its newline), the row of `key`: the
    /// segment ends here when the row is a cut point.
    pub(crate) fn end_line(&mut self, key: (i64, i64)) -> io::Result<()> {
        if ends_segment(key, self.line_len) {
            if let Some(w) = self.current.take() {
                w.into_inner().map_err(|e| e.into_error())?;
            }
        }
        self.line_len = 0;
        Ok(())
    }

    /// Flushes and returns the number of segments written.
    pub(crate) fn finish(mut self) -> io::Result<u32> {
        if let Some(w) = self.current.take() {
            w.into_inner().map_err(|e| e.into_error())?;
        }
        Ok(self.count)
    }
}

/// Reads the values of a segmented column: its segments' files one after the other.
pub(crate) struct SegmentReader {
    dir: PathBuf,
    count: u32,
    next: u32,
    current: Option<File>,
}

impl SegmentReader {
    /// The column stored in `count` segment folders under `dir`; each is opened when reached.
    pub(crate) fn new(dir: &Path, count: u32) -> Self {
        Self {
            dir: dir.to_path_buf(),
            count,
            next: 0,
            current: None,
        }
    }
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = &mut self.current {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            if self.next == self.count {
                return Ok(0);
            }
            let p = self.dir.join(folder_name(self.next)).join(VALUES_FILE);
            let f = File::open(&p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            self.current = Some(f);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points_depend_on_the_row_alone_and_average_the_target() {
        // The same key and length give the same answer; a mean line of 1 KiB cuts about every
        // 256 rows.
        let cuts = (0..100_000i64)
            .filter(|&k| ends_segment((k, 0), 1024))
            .count();
        assert!((300..500).contains(&cuts), "{cuts} cuts in 100,000 rows");
        assert_eq!(ends_segment((4242, 0), 1024), ends_segment((4242, 0), 1024));
    }

    #[test]
    fn a_segmented_column_reads_back_as_one_file() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("004-raw");
        let mut w = SegmentWriter::create(&d).unwrap();
        let mut want = Vec::new();
        for k in 0..5000i64 {
            let line = format!("value {k} {}\n", "x".repeat((k % 900) as usize));
            w.write_all(line.as_bytes()).unwrap();
            w.end_line((k, 0)).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        let n = w.finish().unwrap();
        assert!(n > 4, "{n} segments");
        let mut got = Vec::new();
        SegmentReader::new(&d, n).read_to_end(&mut got).unwrap();
        assert_eq!(got, want);
        // A missing segment is named.
        fs::remove_dir_all(d.join(folder_name(2))).unwrap();
        let e = SegmentReader::new(&d, n).read_to_end(&mut got).unwrap_err();
        assert!(e.to_string().contains("000002/values"), "{e}");
    }
}
