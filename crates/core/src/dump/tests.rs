//! The scanner's unit tests: facts, edits and refusals on small hand-written dumps.

use super::*;

fn scan(text: &str) -> (Result<DumpFacts, DumpError>, String) {
    let mut s = DumpScanner::new(Vec::new());
    // Feed in small pieces so lines straddle writes.
    for chunk in text.as_bytes().chunks(7) {
        if s.write_all(chunk).is_err() {
            // A refusal: finish reports it.
            break;
        }
    }
    let (facts, out) = s.finish().unwrap();
    (facts, String::from_utf8(out).unwrap())
}

const DUMP: &str = "SET default_table_access_method = heap;\n\
    CREATE SCHEMA public;\n\
    CREATE TABLE public.users (\n    id integer\n);\n\
    CREATE TABLE public.\"user\"\"s\" (\n    id integer\n);\n\
    CREATE TRIGGER t BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION discourse_functions.raise_users_readonly();\n\
    COPY public.users (id) FROM stdin;\n1\n2\nDROP SCHEMA x\n\\.\n\n\
    COPY public.\"user\"\"s\" (id) FROM stdin;\n\\.\n\
    SELECT pg_catalog.setval('public.\"odd''seq\"', 42, true);\n\
    SELECT pg_catalog.setval('public.users_id_seq', 1, false);\n";

#[test]
fn counts_copy_rows_and_reads_setval() {
    let (facts, _) = scan(DUMP);
    let facts = facts.unwrap();
    assert_eq!(facts.tables["public.users"].copy_rows, Some(3));
    assert_eq!(facts.tables["public.users"].line, 3);
    assert_eq!(facts.tables["public.\"user\"\"s\""].copy_rows, Some(0));
    assert_eq!(
        facts.sequences["public.\"odd'seq\""],
        DumpSequence {
            value: 42,
            is_called: true,
            line: 18
        }
    );
    assert!(!facts.sequences["public.users_id_seq"].is_called);
    assert_eq!(facts.lines, 19);
}

#[test]
fn applies_discourse_edits_keeping_line_numbers() {
    let (_, out) = scan(DUMP);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 19);
    assert_eq!(lines[0], "");
    assert_eq!(lines[1], "");
    assert!(lines[8].starts_with("CREATE SCHEMA IF NOT EXISTS discourse_functions;"));
    assert!(lines[8].ends_with("raise_users_readonly();"));
    // Data lines are never edited, even when they look like a dropped statement.
    assert_eq!(lines[12], "DROP SCHEMA x");
}

#[test]
fn truncated_copy_block_is_an_error_naming_table_and_line() {
    let (facts, _) = scan("COPY public.posts (id) FROM stdin;\n1\n2\n");
    let err = facts.unwrap_err().to_string();
    assert!(
        err.contains("public.posts") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn last_line_without_newline_is_read() {
    let (facts, _) = scan("COPY public.a (id) FROM stdin;\n1\n\\.");
    assert_eq!(facts.unwrap().tables["public.a"].copy_rows, Some(1));
}

#[test]
fn meta_command_lines_are_refused_and_never_passed_on() {
    let mut s = DumpScanner::new(Vec::new());
    s.write_all(b"CREATE TABLE public.a (id int);\n").unwrap();
    let err = s.write_all(b"\\! id > /tmp/x\nSELECT 1;\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(s.refusal().is_some());
    assert!(
        s.write_all(b"SELECT 2;\n").is_err(),
        "a refused dump takes no more"
    );
    let (facts, out) = s.finish().unwrap();
    let msg = facts.unwrap_err().to_string();
    assert!(msg.contains("meta-command `\\! id > /tmp/x`"), "{msg}");
    assert_eq!(out, b"CREATE TABLE public.a (id int);\n");
}

#[test]
fn restrict_lines_and_extensions_are_dropped_but_copy_data_is_kept() {
    let (facts, out) = scan(
        "\\restrict abc\nCREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;\n\
         COMMENT ON EXTENSION hstore IS 'x';\n\
         COPY public.a (t) FROM stdin;\n\\\\! not a command\n\\N\n\\.\n\\unrestrict abc\n",
    );
    assert_eq!(facts.unwrap().tables["public.a"].copy_rows, Some(2));
    assert_eq!(
        out,
        "\n\n\nCOPY public.a (t) FROM stdin;\n\\\\! not a command\n\\N\n\\.\n\n"
    );
}

#[test]
fn a_copy_line_inside_an_open_string_does_not_start_data() {
    // psql is still inside the string, so the "data" after it is SQL to psql.
    let (facts, _) = scan("SELECT 'open\nCOPY public.a (t) FROM stdin;\n';\n\\! id\n\\.\n");
    let msg = facts.unwrap_err().to_string();
    assert!(msg.contains("line 4") && msg.contains("`\\! id`"), "{msg}");
}

#[test]
fn copy_data_streams_without_holding_lines_but_sql_lines_are_capped() {
    let mut s = DumpScanner::new(io::sink());
    s.write_all(b"COPY public.a (t) FROM stdin;\n").unwrap();
    let big = vec![b'x'; 1 << 20];
    for _ in 0..(MAX_SQL_LINE >> 20) + 2 {
        s.write_all(&big).unwrap();
    }
    s.write_all(b"\n\\.\n").unwrap();
    assert!(s.line.capacity() < 1 << 16, "a COPY row was held in memory");
    let err = (0..(MAX_SQL_LINE >> 20) + 2)
        .find_map(|_| s.write_all(&big).err())
        .expect("an endless SQL line is refused");
    assert!(err.to_string().contains("without a line break"), "{err}");
    let (facts, _) = s.finish().unwrap();
    assert!(facts.is_err());
}

#[test]
fn discourse_filters_drop_each_statement_and_keep_line_numbers() {
    // Each statement Discourse's restore removes, as pg_dump writes it, between lines
    // that stay.
    let dropped = [
        "DROP SCHEMA public;",
        "CREATE SCHEMA public;",
        "COMMENT ON SCHEMA public IS 'standard public schema';",
        "SET default_table_access_method = heap;",
        "SET transaction_timeout = 0;",
        "CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;",
        "COMMENT ON EXTENSION hstore IS 'data type for storing sets of (key, value) pairs';",
        "\\restrict Abc123",
        "\\unrestrict Abc123",
        "CREATE FUNCTION discourse_functions.raise_x_readonly() RETURNS trigger\n    \
         LANGUAGE plpgsql\n    AS $$\n  BEGIN\n    RAISE EXCEPTION 'x; y';\n  END\n$$;",
        "CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (\n    \
         host 'db', dbname 'x'\n);",
        "CREATE USER MAPPING FOR discourse SERVER remote OPTIONS (\n    user 'u'\n);",
        "CREATE FOREIGN TABLE public.remote_posts (\n    id integer\n)\nSERVER remote;",
    ];
    for statement in dropped {
        let dump = format!(
            "SET lock_timeout = 0;\n{statement}\nCREATE TABLE public.a (\n    id integer\n);\n"
        );
        let (facts, out) = scan(&dump);
        let lines = statement.lines().count();
        let expected = format!(
            "SET lock_timeout = 0;\n{}CREATE TABLE public.a (\n    id integer\n);\n",
            "\n".repeat(lines)
        );
        assert_eq!(out, expected, "{statement}");
        assert_eq!(facts.unwrap().tables["public.a"].line, 2 + lines as u64);
    }
}

#[test]
fn only_discourse_functions_are_dropped_not_other_functions() {
    let dump =
        "CREATE FUNCTION public.f() RETURNS integer\n    LANGUAGE sql\n    AS $$ SELECT 1 $$;\n";
    let (_, out) = scan(dump);
    assert_eq!(out, dump);
}

#[test]
fn the_extension_hook_runs_before_later_lines_and_can_refuse() {
    let seen = std::cell::RefCell::new(Vec::new());
    let mut s = DumpScanner::new(Vec::new()).on_extension(Box::new(|name| {
        seen.borrow_mut().push(name.to_string());
        if name == "file_fdw" {
            Err(format!("{name} not allowed"))
        } else {
            Ok(())
        }
    }));
    s.write_all(b"CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" WITH SCHEMA public;\n")
        .unwrap();
    assert_eq!(
        *seen.borrow(),
        ["pg_trgm"],
        "called at its line, before more input"
    );
    let err = s
        .write_all(b"SELECT 1;\nCREATE EXTENSION file_fdw;\nSELECT 2;\n")
        .unwrap_err();
    assert!(
        err.to_string().contains("line 3: file_fdw not allowed"),
        "{err}"
    );
    let (facts, out) = s.finish().unwrap();
    assert!(facts.is_err());
    assert_eq!(out, b"\nSELECT 1;\n", "nothing from the refused line on");
}
