//! The permutation from key order back to pg_dump's order, kept compactly as runs.
//!
//! pg_dump writes a table's rows in heap order: mostly ascending ids, with the rows an UPDATE
//! moved somewhere else. Listed in pg_dump's order, the key-order positions of the rows form a
//! few long ascending runs, so the file `order` holds one line `START COUNT` per run: the next
//! COUNT rows of pg_dump's output are the key-ordered rows START, START+1, ...

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

/// Writes the runs as text lines `START COUNT`.
pub(crate) fn write_runs(w: &mut dyn Write, runs: &[Run]) -> std::io::Result<()> {
    for (start, count) in runs {
        writeln!(w, "{start} {count}")?;
    }
    Ok(())
}

/// Reads runs and checks that they use each of the positions `0..rows` exactly once.
pub(crate) fn read_runs(r: &mut dyn BufRead, rows: u64) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let mut seen = vec![false; usize::try_from(rows).map_err(|_| "too many rows".to_string())?];
    let mut total = 0u64;
    for (n, line) in r.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
        let bad = || format!("line {}: `{line}` is not `START COUNT`", n + 1);
        let (a, b) = line.split_once(' ').ok_or_else(bad)?;
        let start: u64 = a.parse().map_err(|_| bad())?;
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
        let mut text = Vec::new();
        write_runs(&mut text, &runs).unwrap();
        assert_eq!(text, b"0 3\n6 1\n3 3\n");
        assert_eq!(read_runs(&mut &text[..], 7).unwrap(), runs);
    }

    #[test]
    fn bad_runs_are_refused_with_the_line() {
        let e = read_runs(&mut &b"0 3\n2 2\n"[..], 5).unwrap_err();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let e = read_runs(&mut &b"0 3\n"[..], 5).unwrap_err();
        assert!(e.contains("cover 3 rows"), "{e}");
        let e = read_runs(&mut &b"0 x\n"[..], 5).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = read_runs(&mut &b"4 3\n"[..], 5).unwrap_err();
        assert!(e.contains("past"), "{e}");
    }
}
