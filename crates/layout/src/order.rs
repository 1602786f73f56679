//! The permutation from key order back to pg_dump's order, kept compactly as runs.
//!
//! pg_dump writes a table's rows in heap order: mostly ascending ids, with the rows an UPDATE
//! moved somewhere else. Listed in pg_dump's order, the key-order positions of the rows form a
//! few long ascending runs, so the file `order` holds one line per run: the next COUNT rows of
//! pg_dump's output are the key-ordered rows START, START+1, ...
//!
//! Layout version 1 writes `START COUNT`. Version 2 writes `DELTA COUNT`, START less the end of
//! the last run that continued the main sequence (a run of more than one row, or one starting
//! where that sequence ended): rows moved by an UPDATE interrupt the ascending sequence of the
//! rows that stayed, and relative to it those rows' runs are small numbers that compress
//! better (20-28 % smaller under zstd on a month-old forum's `posts` and `notifications`,
//! where the file changes in every chunk daily).

use std::io::{BufRead, Write};

/// A run of consecutive key-order positions.
pub(crate) type Run = (u64, u64);

/// The runs of `order`, where `order[s]` is the pg_dump index of the row at key position `s`.
pub(crate) fn runs_of(order: &[u32]) -> Vec<Run> {
    // pos[i]: key position of the pg_dump row i.
    let mut pos = vec![0u32; order.len()];
    for (s, &i) in order.iter().enumerate() {
        pos[i as usize] = s as u32;
    }
    let mut runs: Vec<Run> = Vec::new();
    for &p in &pos {
        match runs.last_mut() {
            Some((start, count)) if *start + *count == u64::from(p) => *count += 1,
            _ => runs.push((u64::from(p), 1)),
        }
    }
    runs
}

/// How the first number of a line is written (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Starts {
    /// `START` (layout version 1).
    Absolute,
    /// `DELTA` from the end of the main sequence (layout version 2).
    Relative,
}

impl Starts {
    /// The encoding of layout version `version`.
    pub(crate) fn of_version(version: u32) -> Self {
        if version >= 2 {
            Self::Relative
        } else {
            Self::Absolute
        }
    }
}

/// Where the main sequence ends after the run `(start, count)`, given where it ended before.
fn next_base(base: u64, (start, count): Run) -> u64 {
    if count > 1 || start == base {
        start + count
    } else {
        base
    }
}

/// Writes the runs as text lines, one per run.
pub(crate) fn write_runs(w: &mut dyn Write, runs: &[Run], starts: Starts) -> std::io::Result<()> {
    let mut base = 0u64;
    for &(start, count) in runs {
        match starts {
            Starts::Absolute => writeln!(w, "{start} {count}")?,
            Starts::Relative => writeln!(w, "{} {count}", start as i64 - base as i64)?,
        }
        base = next_base(base, (start, count));
    }
    Ok(())
}

/// Reads runs and checks that they use each of the positions `0..rows` exactly once.
pub(crate) fn read_runs(
    r: &mut dyn BufRead,
    rows: u64,
    starts: Starts,
) -> Result<Vec<Run>, String> {
    let mut base = 0u64;
    let mut runs = Vec::new();
    let mut seen = vec![false; usize::try_from(rows).map_err(|_| "too many rows".to_string())?];
    let mut total = 0u64;
    for (n, line) in r.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
        let bad = || format!("line {}: `{line}` is not `START COUNT`", n + 1);
        let (a, b) = line.split_once(' ').ok_or_else(bad)?;
        let start: u64 = match starts {
            Starts::Absolute => a.parse().map_err(|_| bad())?,
            Starts::Relative => {
                let delta: i64 = a.parse().map_err(|_| bad())?;
                u64::try_from(base as i64 + delta)
                    .map_err(|_| format!("line {}: run starts before row 0", n + 1))?
            }
        };
        let count: u64 = b.parse().map_err(|_| bad())?;
        let end = start
            .checked_add(count)
            .filter(|e| *e <= rows)
            .ok_or_else(|| {
                format!(
                    "line {}: run {start}+{count} goes past the {rows} rows of the block",
                    n + 1
                )
            })?;
        for p in start..end {
            let slot = &mut seen[p as usize];
            if *slot {
                return Err(format!("line {}: row {p} is used twice", n + 1));
            }
            *slot = true;
        }
        total += count;
        runs.push((start, count));
        base = next_base(base, (start, count));
    }
    if total != rows {
        return Err(format!("the runs cover {total} rows, the block has {rows}"));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_and_are_few_for_mostly_sorted_rows() {
        // pg_dump order: ids 1 2 3 7 4 5 6 (row with id 7 moved up by an update).
        let keys = [1, 2, 3, 7, 4, 5, 6];
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_by_key(|&i| keys[i as usize]);
        let runs = runs_of(&order);
        assert_eq!(runs, vec![(0, 3), (6, 1), (3, 3)]);
        // Relative: the moved row is +3 from where the main sequence ended, which resumes at 0.
        for (starts, want) in [
            (Starts::Absolute, &b"0 3\n6 1\n3 3\n"[..]),
            (Starts::Relative, &b"0 3\n3 1\n0 3\n"[..]),
        ] {
            let mut text = Vec::new();
            write_runs(&mut text, &runs, starts).unwrap();
            assert_eq!(text, want, "{starts:?}");
            assert_eq!(read_runs(&mut &text[..], 7, starts).unwrap(), runs);
        }
    }

    #[test]
    fn relative_starts_round_trip_a_fragmented_order() {
        // Rows moved to the end, singletons in the middle, rows moved backwards.
        let keys: Vec<u32> = (0..500u32).map(|i| (i * 7919) % 500).collect();
        let mut order: Vec<u32> = (0..500).collect();
        order.sort_by_key(|&i| keys[i as usize]);
        let runs = runs_of(&order);
        let mut text = Vec::new();
        write_runs(&mut text, &runs, Starts::Relative).unwrap();
        assert_eq!(
            read_runs(&mut &text[..], 500, Starts::Relative).unwrap(),
            runs
        );
        let e = read_runs(&mut &b"-1 1\n"[..], 5, Starts::Relative).unwrap_err();
        assert!(e.contains("before row 0"), "{e}");
    }

    #[test]
    fn bad_runs_are_refused_with_the_line() {
        let e = read_runs(&mut &b"0 3\n2 2\n"[..], 5, Starts::Absolute).unwrap_err();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let e = read_runs(&mut &b"0 3\n"[..], 5, Starts::Absolute).unwrap_err();
        assert!(e.contains("cover 3 rows"), "{e}");
        let e = read_runs(&mut &b"0 x\n"[..], 5, Starts::Relative).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = read_runs(&mut &b"4 3\n"[..], 5, Starts::Absolute).unwrap_err();
        assert!(e.contains("past"), "{e}");
    }
}
