//! Joining a block's column files back into COPY rows: line `n` of every file, its fields put
//! at their places in the row (`fields` in `layout.json`, when the files do not simply hold
//! runs of fields in order), tabs between the fields and a newline at the end.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::LayoutError;

/// Joins line `n` of every column file into one COPY row (tabs between the fields, a newline at
/// the end), putting each file's fields at their places in the row.
pub(crate) struct Joiner {
    pub(crate) readers: Vec<(PathBuf, BufReader<Box<dyn Read>>)>,
    /// Where each file's values go, when the files do not simply hold runs of fields in order.
    placed: Option<Placed>,
    lines: Vec<Vec<u8>>,
    spans: Vec<Vec<(usize, usize)>>,
}

/// The `fields` of a block turned around: for each field of the row, its file and its index in
/// that file's line; and how many fields each file's line holds.
struct Placed {
    slots: Vec<(usize, usize)>,
    widths: Vec<usize>,
}

impl Joiner {
    /// Checks that `fields` (per file, as in `layout.json`) places every field of the row once.
    pub(crate) fn new(
        readers: Vec<(PathBuf, BufReader<Box<dyn Read>>)>,
        fields: Option<&[Vec<usize>]>,
    ) -> Result<Self, String> {
        let placed = match fields {
            None => None,
            Some(fields) => {
                let total: usize = fields.iter().map(Vec::len).sum();
                let mut slots = vec![None; total];
                if fields.len() != readers.len() || fields.iter().any(Vec::is_empty) {
                    return Err(format!(
                        "`fields` lists {} files with at least one field each, `columns` {}",
                        fields.len(),
                        readers.len()
                    ));
                }
                for (f, list) in fields.iter().enumerate() {
                    for (i, &k) in list.iter().enumerate() {
                        match slots.get_mut(k) {
                            Some(s @ None) => *s = Some((f, i)),
                            _ => {
                                return Err(format!(
                                    "`fields` places field {k} twice or outside the row's {total} fields"
                                ))
                            }
                        }
                    }
                }
                Some(Placed {
                    slots: slots.into_iter().flatten().collect(),
                    widths: fields.iter().map(Vec::len).collect(),
                })
            }
        };
        let n = readers.len();
        Ok(Self {
            readers,
            placed,
            lines: vec![Vec::new(); n],
            spans: vec![Vec::new(); n],
        })
    }

    pub(crate) fn join(&mut self, n: u64, row: &mut Vec<u8>) -> Result<(), LayoutError> {
        row.clear();
        let Some(placed) = &self.placed else {
            let last = self.readers.len() - 1;
            for (k, (p, r)) in self.readers.iter_mut().enumerate() {
                read_value(p, r, n, row)?;
                if k != last {
                    let end = row.len() - 1;
                    row[end] = b'\t';
                }
            }
            return Ok(());
        };
        for (f, (p, r)) in self.readers.iter_mut().enumerate() {
            let line = &mut self.lines[f];
            line.clear();
            read_value(p, r, n, line)?;
            let spans = &mut self.spans[f];
            spans.clear();
            let mut start = 0;
            for (i, b) in line.iter().enumerate() {
                if *b == b'\t' || *b == b'\n' {
                    spans.push((start, i));
                    start = i + 1;
                }
            }
            if spans.len() != placed.widths[f] {
                return Err(LayoutError::new(
                    p.display(),
                    format!(
                        "value {n} has {} fields, `fields` places {}",
                        spans.len(),
                        placed.widths[f]
                    ),
                ));
            }
        }
        for (k, &(f, i)) in placed.slots.iter().enumerate() {
            let (a, b) = self.spans[f][i];
            row.extend_from_slice(&self.lines[f][a..b]);
            row.push(if k + 1 == placed.slots.len() {
                b'\n'
            } else {
                b'\t'
            });
        }
        Ok(())
    }
}

/// Appends value `n` of a column file, with its newline, to `buf`.
fn read_value(
    p: &Path,
    r: &mut BufReader<Box<dyn Read>>,
    n: u64,
    buf: &mut Vec<u8>,
) -> Result<(), LayoutError> {
    let got = r
        .read_until(b'\n', buf)
        .map_err(|e| LayoutError::io(p, e))?;
    if got == 0 || buf.last() != Some(&b'\n') {
        return Err(LayoutError::new(
            p.display(),
            format!("ends at value {n}: expected one value per row, ended by a newline"),
        ));
    }
    Ok(())
}
