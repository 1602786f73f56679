//! Round trips of hand-made dumps through real files: what the layout writes, that undo gives
//! the same bytes, and what stays plain.

use std::fs;
use std::path::Path;

use super::*;

/// A dump with one COPY block of `rows` (each without newline) and text around it.
fn dump(columns: &str, rows: &[String]) -> Vec<u8> {
    dump_of("public.t", columns, rows)
}

/// [`dump`] of the table `table`.
fn dump_of(table: &str, columns: &str, rows: &[String]) -> Vec<u8> {
    let mut d = b"--\n-- PostgreSQL database dump\n--\n\nSET x = 1;\n\n".to_vec();
    d.extend_from_slice(format!("COPY {table} ({columns}) FROM stdin;\n").as_bytes());
    for r in rows {
        d.extend_from_slice(r.as_bytes());
        d.push(b'\n');
    }
    d.extend_from_slice(b"\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n");
    d
}

/// Writes `bytes` as `dump.sql` of a new tree, applies the layout, checks undo gives the bytes
/// back, and returns the report and (before undo) the laid-out folder's copy.
fn round_trip(bytes: &[u8]) -> (LayoutReport, tempfile::TempDir) {
    let tree = tempfile::tempdir().unwrap();
    fs::write(tree.path().join("dump.sql"), bytes).unwrap();
    let report = apply(tree.path()).expect("layout applies");
    let copy = tempfile::tempdir().unwrap();
    copy_dir(tree.path(), copy.path());
    undo(tree.path()).expect("layout undoes");
    assert_eq!(
        fs::read(tree.path().join("dump.sql")).unwrap(),
        bytes,
        "reassembled dump differs"
    );
    assert!(!tree.path().join(LAYOUT_DIR).exists());
    (report, copy)
}

/// The block folder of the `posts` table of [`dump_of`] in a laid-out tree.
const POSTS_BLOCK: &str = ".dvault-layout/dump.sql/0000-public.posts";

/// A new tree holding `bytes` as `dump.sql`, laid out (for tests that then damage it).
fn laid_out(bytes: &[u8]) -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    fs::write(tree.path().join("dump.sql"), bytes).unwrap();
    apply(tree.path()).expect("layout applies");
    tree
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            fs::create_dir_all(&dst).unwrap();
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Rows with every escape COPY text uses, empty strings, NULLs, ids out of order and repeated.
fn tricky_rows(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            // ids descend and come in pairs: key order differs from file order, with ties.
            let id = (n - i) / 2;
            let text = match i % 5 {
                0 => "tab\\there".to_string(),
                1 => "line\\nbreak and \\\\ backslash".to_string(),
                2 => "\\\\N is not null".to_string(),
                3 => String::new(),
                _ => format!("plain text {i} ünïcödé"),
            };
            let null = if i % 3 == 0 { "\\N" } else { "" };
            format!("{id}\t{text}\t{null}\t2026-01-0{} 10:00:00", i % 9 + 1)
        })
        .collect()
}

#[test]
fn tricky_escapes_round_trip_and_rows_are_stored_in_id_order() {
    let rows = tricky_rows(2000);
    let (report, laid) = round_trip(&dump("id, body, note, \"position\"", &rows));
    let f = &report.files[0];
    assert!(f.laid_out, "{report:?}");
    assert_eq!((f.blocks, f.rows), (1, 2000));
    let block = laid.path().join(LAYOUT_DIR).join("dump.sql/0000-public.t");
    let ids = fs::read_to_string(block.join("000-id")).unwrap();
    let ids: Vec<i64> = ids.lines().map(|l| l.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "ids not in key order");
    assert!(block.join("003-position").exists());
    let skeleton =
        fs::read_to_string(laid.path().join(LAYOUT_DIR).join("dump.sql/skeleton")).unwrap();
    assert!(
        skeleton.contains("FROM stdin;\n\\.\n"),
        "rows not cut out: {skeleton}"
    );
    assert!(
        !laid.path().join("dump.sql").exists(),
        "the plain dump is replaced"
    );
}

#[test]
fn non_numeric_ids_keep_pg_dump_order_and_round_trip() {
    let rows: Vec<String> = (0..1500)
        .map(|i| format!("key-{}\tvalue {i}\t\\N", 1500 - i))
        .collect();
    let (report, laid) = round_trip(&dump("name, value, extra", &rows));
    assert!(report.files[0].laid_out, "{report:?}");
    let block = laid.path().join(LAYOUT_DIR).join("dump.sql/0000-public.t");
    let order = fs::read_to_string(block.join("order")).unwrap();
    assert_eq!(
        order, "0 1500\n",
        "a table without numeric key keeps its order"
    );
    let first = fs::read_to_string(block.join("000-name")).unwrap();
    assert!(first.starts_with("key-1500\n"));
}

#[test]
fn a_table_without_id_column_sorts_by_its_first_two_columns() {
    let rows: Vec<String> = (0..1500)
        .map(|i| format!("{}\t{}\tv{i}", i % 7, 1500 - i))
        .collect();
    let (report, laid) = round_trip(&dump("user_id, topic_id, v", &rows));
    assert!(report.files[0].laid_out);
    let block = laid.path().join(LAYOUT_DIR).join("dump.sql/0000-public.t");
    let a = fs::read_to_string(block.join("000-user_id")).unwrap();
    let b = fs::read_to_string(block.join("001-topic_id")).unwrap();
    let keys: Vec<(i64, i64)> = a
        .lines()
        .zip(b.lines())
        .map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn a_block_with_uneven_rows_stays_plain_and_says_which_row() {
    let mut rows = tricky_rows(1500);
    rows[700].push_str("\textra field");
    let bytes = dump("id, body, note, \"position\"", &rows);
    let (report, _) = round_trip(&bytes);
    let f = &report.files[0];
    assert!(!f.laid_out, "nothing else to lay out: {report:?}");
    assert_eq!(f.plain_blocks.len(), 1, "{report:?}");
    assert_eq!(f.plain_blocks[0].table, "public.t");
    assert!(
        f.plain_blocks[0].reason.contains("row 701")
            && f.plain_blocks[0].reason.contains("5 fields"),
        "{}",
        f.plain_blocks[0].reason
    );
}

#[test]
fn a_plain_block_beside_a_laid_out_one_round_trips() {
    let mut bytes = dump("id, body, note, \"position\"", &tricky_rows(1500));
    // A second block whose end-of-data line is missing (the file ends inside it).
    bytes.extend_from_slice(b"COPY public.u (id, v) FROM stdin;\n");
    for i in 0..2000 {
        bytes.extend_from_slice(format!("{i}\tv\n").as_bytes());
    }
    bytes.extend_from_slice(b"7\tno newline at the end");
    let (report, _) = round_trip(&bytes);
    let f = &report.files[0];
    assert!(f.laid_out && f.blocks == 1, "{report:?}");
    assert_eq!(f.plain_blocks[0].table, "public.u");
    assert!(
        f.plain_blocks[0].reason.contains("end-of-data"),
        "{report:?}"
    );
}

#[test]
fn tampered_column_is_refused_naming_the_table() {
    let bytes = dump("id, body, note, \"position\"", &tricky_rows(1500));
    let tree = laid_out(&bytes);
    let col = tree
        .path()
        .join(LAYOUT_DIR)
        .join("dump.sql/0000-public.t/001-body");
    let mut text = fs::read(&col).unwrap();
    text[0] ^= 1;
    fs::write(&col, text).unwrap();
    let e = undo(tree.path()).unwrap_err().to_string();
    assert!(e.contains("public.t") && e.contains("SHA-256"), "{e}");
    assert!(!tree.path().join("dump.sql").exists(), "no half-made dump");
    // One value too few in a column: refused naming the column file.
    let col = tree
        .path()
        .join(LAYOUT_DIR)
        .join("dump.sql/0000-public.t/002-note");
    let text = fs::read_to_string(&col).unwrap();
    fs::write(&col, &text[..text.len() - 3]).unwrap();
    let e = undo(tree.path()).unwrap_err().to_string();
    assert!(e.contains("002-note"), "{e}");
}

#[test]
fn small_files_and_other_files_are_left_alone() {
    let tree = tempfile::tempdir().unwrap();
    let small = dump("id, v", &["1\ta".to_string()]);
    fs::write(tree.path().join("dump.sql"), &small).unwrap();
    fs::write(tree.path().join("notes.sql"), b"SELECT 1;\n").unwrap();
    let report = apply(tree.path()).unwrap();
    assert_eq!(report.files.len(), 1, "only pg_dump output is considered");
    assert!(!report.files[0].laid_out);
    assert!(!tree.path().join(LAYOUT_DIR).exists());
    assert_eq!(fs::read(tree.path().join("dump.sql")).unwrap(), small);
}

#[test]
fn a_manifest_naming_files_outside_the_block_is_refused() {
    let bytes = dump("id, body, note, \"position\"", &tricky_rows(1500));
    let tree = laid_out(&bytes);
    let m = tree.path().join(LAYOUT_DIR).join("dump.sql/layout.json");
    let text = fs::read_to_string(&m).unwrap();
    fs::write(&m, text.replace("\"000-id\"", "\"../../../etc/hostname\"")).unwrap();
    let e = undo(tree.path()).unwrap_err().to_string();
    assert!(e.contains("not a plain name"), "{e}");
}

#[test]
fn adjacent_wide_columns_share_a_file_row_by_row_and_narrow_ones_stay_alone() {
    // `raw` and `cooked` are wide (mean far above WIDE_COLUMN_BYTES) and adjacent; `title` is
    // wide too but stands alone between narrow columns; escapes inside the wide values survive.
    let rows: Vec<String> = (0..600)
        .map(|i| {
            let raw = format!("post {i} says\\tthat {}", "words ".repeat(60));
            let cooked = format!("<p>post {i} says\\nthat {}</p>", "words ".repeat(60));
            let title = "t".repeat(300 + i % 7);
            format!("{}\t{raw}\t{cooked}\t{i}\t{title}\t2026-01-01", 600 - i)
        })
        .collect();
    let (report, laid) = round_trip(&dump("id, raw, cooked, likes, title, at", &rows));
    assert!(report.files[0].laid_out, "{report:?}");
    let block = laid.path().join(LAYOUT_DIR).join("dump.sql/0000-public.t");
    let mut names: Vec<String> = fs::read_dir(&block)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "000-id",
            "001-raw+cooked",
            "003-likes",
            "004-title",
            "005-at",
            "order"
        ]
    );
    // Line k of the shared file is row k's two values, joined by a tab, in key (id) order.
    let shared = fs::read_to_string(block.join("001-raw+cooked")).unwrap();
    let first = shared.lines().next().unwrap();
    assert_eq!(first.split('\t').count(), 2, "{first}");
    assert!(first.starts_with("post 599 says\\tthat"), "{first}");
    assert!(first.contains("\t<p>post 599 says\\nthat"), "{first}");
    let manifest = fs::read_to_string(laid.path().join(LAYOUT_DIR).join("dump.sql/layout.json"));
    assert!(manifest.unwrap().contains("\"001-raw+cooked\""));
}

#[test]
fn columns_written_together_share_a_file_wherever_they_stand_and_reassemble_by_hand() {
    // `posts` as Discourse writes it on an edit: `raw`, `cooked`, `updated_at` and `word_count`
    // change together (see affinity.rs); `like_count` and `reads` change on their own.
    let rows: Vec<String> = (0..400)
        .map(|i| {
            let raw = format!("post {i} says\\tthat {}", "words ".repeat(20));
            let cooked = format!("<p>post {i}</p>");
            format!(
                "{}\t{raw}\t{}\t{cooked}\t2026-01-{:02}\t{}\t{}",
                400 - i,
                i % 9,
                1 + i % 28,
                i * 3,
                i % 50
            )
        })
        .collect();
    let cols = "id, raw, like_count, cooked, updated_at, reads, word_count";
    let bytes = dump_of("public.posts", cols, &rows);
    let (report, laid) = round_trip(&bytes);
    assert!(report.files[0].laid_out, "{report:?}");
    let block = laid.path().join(POSTS_BLOCK);
    let mut names: Vec<String> = fs::read_dir(&block)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let group = "001-raw+cooked+updated_at+word_count";
    assert_eq!(
        names,
        ["000-id", group, "002-like_count", "005-reads", "order"]
    );
    let first = fs::read_to_string(block.join(group)).unwrap();
    let first = first.lines().next().unwrap().to_string();
    assert_eq!(
        first.split('\t').collect::<Vec<_>>(),
        [
            "post 399 says\\tthat ".to_string() + &"words ".repeat(20),
            "<p>post 399</p>".into(),
            "2026-01-08".into(),
            "49".into()
        ],
    );
    let mpath = laid.path().join(LAYOUT_DIR).join("dump.sql/layout.json");
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(&mpath).unwrap()).unwrap();
    assert_eq!(manifest["version"], 2);
    let fields = &manifest["blocks"][0]["fields"];
    assert_eq!(fields, &serde_json::json!([[0], [1, 3, 4, 6], [2], [5]]));

    // docs/layout.md's by-hand recipe for such a block: paste, then put the fields in place.
    let perm: Vec<String> = fields
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| {
            f.as_array()
                .unwrap()
                .iter()
                .map(|k| (k.as_u64().unwrap() + 1).to_string())
        })
        .collect();
    let script = format!(
        "cd '{}' && paste [0-9][0-9][0-9]* | awk -F'\\t' -v OFS='\\t' -v perm='{}' \
         'BEGIN {{ n = split(perm, p, \" \") }} {{ for (i = 1; i <= n; i++) r[p[i]] = $i; \
         s = r[1]; for (i = 2; i <= n; i++) s = s OFS r[i]; print s }}' > ../sorted",
        block.display(),
        perm.join(" ")
    );
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert!(st.success());
    let sorted = fs::read_to_string(block.parent().unwrap().join("sorted")).unwrap();
    let mut want: Vec<&String> = rows.iter().collect();
    want.reverse(); // ids descend in the dump: key order is the reverse
    assert_eq!(sorted.lines().collect::<Vec<_>>(), want);

    // A `fields` that does not place every field once is refused, naming the block.
    let tree = laid_out(&bytes);
    let m = tree.path().join(LAYOUT_DIR).join("dump.sql/layout.json");
    let good: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
    let with_fields = |f: serde_json::Value| {
        let mut v = good.clone();
        v["blocks"][0]["fields"][1] = f;
        fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    with_fields(serde_json::json!([1, 3, 3, 6]));
    let e = undo(tree.path()).unwrap_err().to_string();
    assert!(
        e.contains("0000-public.posts") && e.contains("places field 3 twice"),
        "{e}"
    );
    // Fields swapped between places: a permutation, but the proof by SHA-256 catches it.
    with_fields(serde_json::json!([1, 3, 6, 4]));
    let e = undo(tree.path()).unwrap_err().to_string();
    assert!(e.contains("public.posts") && e.contains("SHA-256"), "{e}");
    assert!(!tree.path().join("dump.sql").exists(), "no half-made dump");
}

/// `posts` rows with wide texts: about 1.5 MB of `raw`, enough to be stored as segments.
fn wide_posts(n: usize, edited: Option<usize>) -> Vec<String> {
    (0..n)
        .map(|i| {
            let word = if Some(i) == edited {
                "edited "
            } else {
                "words "
            };
            let raw = format!("post {i} {}", word.repeat(100 + i % 50));
            format!("{}\t{raw}\t{}", i + 1, i % 7)
        })
        .collect()
}

#[test]
fn a_big_wide_file_is_stored_as_segments_and_an_edit_changes_only_its_own() {
    let cols = "id, raw, like_count";
    let before = dump_of("public.posts", cols, &wide_posts(2500, None));
    let (report, laid) = round_trip(&before);
    assert!(report.files[0].laid_out, "{report:?}");
    let block = laid.path().join(POSTS_BLOCK);
    let raw = block.join("001-raw");
    assert!(raw.is_dir(), "the wide column is a folder of segments");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(laid.path().join(LAYOUT_DIR).join("dump.sql/layout.json")).unwrap(),
    )
    .unwrap();
    let segments = manifest["blocks"][0]["segments"].clone();
    let n = segments[1].as_u64().unwrap();
    assert_eq!(segments, serde_json::json!([0, n, 0]));
    assert!((3..=12).contains(&n), "{n} segments for ~1.5 MB");
    // By hand: the segments' files in name order are the column file.
    let mut whole = Vec::new();
    for k in 0..n {
        whole.extend(fs::read(raw.join(format!("{k:06}")).join("values")).unwrap());
    }
    assert_eq!(whole.iter().filter(|b| **b == b'\n').count(), 2500);

    // An edit of one row (longer text) rewrites its segment only: the others are identical.
    let after = dump_of("public.posts", cols, &wide_posts(2500, Some(1200)));
    let (_, laid2) = round_trip(&after);
    let raw2 = laid2
        .path()
        .join(LAYOUT_DIR)
        .join("dump.sql/0000-public.posts/001-raw");
    let read = |d: &Path, k: u64| fs::read(d.join(format!("{k:06}")).join("values")).ok();
    let same = (0..n).filter(|&k| read(&raw, k) == read(&raw2, k)).count() as u64;
    assert!(
        same >= n - 2,
        "{same} of {n} segments unchanged after one edit"
    );

    // A missing segment is refused, naming it.
    let tree = laid_out(&before);
    let seg = tree
        .path()
        .join(LAYOUT_DIR)
        .join("dump.sql/0000-public.posts/001-raw/000001");
    fs::remove_dir_all(&seg).unwrap();
    let e = undo(tree.path()).unwrap_err().to_string();
    assert!(e.contains("001-raw/000001/values"), "{e}");
}

#[test]
fn a_version_1_layout_of_an_older_snapshot_is_still_read() {
    // Version 1 wrote absolute run starts and no `fields`/`segments`: turn a fresh layout of a
    // table that needs neither back into version 1 and undo it.
    let bytes = dump("id, body, note, \"position\"", &tricky_rows(1500));
    let tree = laid_out(&bytes);
    let root = tree.path().join(LAYOUT_DIR);
    let order_path = root.join("dump.sql/0000-public.t/order");
    let text = fs::read(&order_path).unwrap();
    let rows = 1500;
    let runs = order::read_runs(&mut &text[..], rows, order::Starts::Relative).unwrap();
    let mut absolute = Vec::new();
    order::write_runs(&mut absolute, &runs, order::Starts::Absolute).unwrap();
    assert_ne!(
        absolute, text,
        "the test needs an order that differs between versions"
    );
    fs::write(&order_path, absolute).unwrap();
    for f in [root.join(INDEX_FILE), root.join("dump.sql/layout.json")] {
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert_eq!(v["version"], 2);
        v["version"] = 1.into();
        fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    undo(tree.path()).expect("a version-1 layout undoes");
    assert_eq!(fs::read(tree.path().join("dump.sql")).unwrap(), bytes);
}
