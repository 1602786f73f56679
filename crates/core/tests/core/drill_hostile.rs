//! Crafted backups cannot steer a drill (issue 15, item 1). Each test loads a small `.sql.gz`
//! holding one hostile statement, a table and its COPY block into a real PostgreSQL given by
//! URL (the `--postgres` path), and checks that the drill fails naming the cause and that the
//! server is exactly as before: no marker file written by a shell command, the other
//! database's table still there, the same roles, databases and settings, the same
//! `postgresql.auto.conf`. Then the same with a throwaway cluster (`--postgres-temp`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use dvault_core::drill::{self, DrillInput, DrillOptions, DrillReport, PostgresTarget};
use dvault_core::postgres::TempCluster;

/// The server of the URL tests, with a database `other` holding a table `keep`.
fn server() -> &'static TempCluster {
    static S: OnceLock<TempCluster> = OnceLock::new();
    S.get_or_init(|| {
        let c = TempCluster::start().expect("starting PostgreSQL");
        c.create_database("other").unwrap();
        c.psql(
            "other",
            "CREATE TABLE keep (a int); INSERT INTO keep VALUES (7);",
        )
        .unwrap();
        c
    })
}

/// One drill at a time on the shared server, so that the server's state before and after
/// belongs to one drill.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything a hostile dump might change on the server.
fn fingerprint(c: &TempCluster) -> String {
    let sql = "SELECT string_agg(rolname || ':' || rolsuper, ',' ORDER BY rolname) FROM pg_roles;\n\
               SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname) FROM pg_database;\n\
               SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings;\n";
    let mut out = c.psql("postgres", sql).unwrap();
    out.push_str(&c.psql("other", "SELECT a FROM keep;").unwrap());
    let auto = std::fs::read_to_string(c.data_dir().join("postgresql.auto.conf")).unwrap();
    out.push_str(&auto);
    out
}

/// A `.sql.gz` with the pg_dump preamble, `hostile`, one table and its COPY block.
fn backup(dir: &Path, hostile: &str) -> PathBuf {
    let text = format!(
        "--\n-- PostgreSQL database dump\n--\n\
         SET statement_timeout = 0;\n\
         SET standard_conforming_strings = on;\n\
         {hostile}\n\
         CREATE TABLE public.t (id integer);\n\
         COPY public.t (id) FROM stdin;\n1\n2\n\\.\n"
    );
    let path = dir.join("forum-2026-01-01-000000-v20260101000000.sql.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(4));
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    path
}

fn drill_file(path: &Path, target: PostgresTarget) -> DrillReport {
    drill::drill(
        &DrillInput::File {
            path: path.to_path_buf(),
            expected_sha256: None,
        },
        &DrillOptions {
            target,
            work_dir: None,
            cap: Default::default(),
        },
    )
    .expect("the drill runs")
}

/// Drills `hostile` (with `MARKER` replaced by a file path) into the shared server and checks
/// the verdict names `cause` and the server is unchanged.
fn refused_on_server(hostile: &str, cause: &str) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let file = backup(
        dir.path(),
        &hostile.replace("MARKER", &marker.display().to_string()),
    );
    let c = server();
    let _one = serial();
    let before = fingerprint(c);
    let report = drill_file(&file, PostgresTarget::Url(c.url("postgres")));
    assert!(!report.ok, "a hostile dump passed:\n{}", report.summary());
    let failures = report.failures.join("\n");
    assert!(
        failures.contains(cause),
        "{cause:?} not named:\n{}",
        report.summary()
    );
    assert!(!marker.exists(), "the dump wrote {}", marker.display());
    assert_eq!(
        fingerprint(c),
        before,
        "the server changed:\n{}",
        report.summary()
    );
}

const REFUSED: &str = "the psql meta-command";

#[test]
fn shell_escape_is_refused_before_psql_sees_it() {
    refused_on_server("\\! id > MARKER", &format!("{REFUSED} `\\! id > "));
}

#[test]
fn output_redirection_is_refused() {
    refused_on_server("\\o MARKER\nSELECT 1;", &format!("{REFUSED} `\\o "));
}

#[test]
fn connecting_to_another_database_is_refused() {
    refused_on_server(
        "\\connect other\nDROP TABLE keep;",
        &format!("{REFUSED} `\\connect other"),
    );
}

#[test]
fn client_copy_to_a_program_is_refused() {
    refused_on_server(
        "\\copy (SELECT 1) TO PROGRAM 'id > MARKER'",
        &format!("{REFUSED} `\\copy "),
    );
}

#[test]
fn a_meta_command_after_a_statement_on_the_same_line_is_refused() {
    refused_on_server("SELECT 1; \\! id > MARKER", &format!("{REFUSED} `\\! id"));
}

#[test]
fn server_copy_to_a_program_needs_rights_the_drill_role_lacks() {
    refused_on_server(
        "COPY (SELECT 1) TO PROGRAM 'id > MARKER';",
        "pg_execute_server_program",
    );
}

#[test]
fn alter_system_is_denied_even_outside_the_load_transaction() {
    // COMMIT ends psql's --single-transaction: as a superuser, ALTER SYSTEM would then work.
    refused_on_server(
        "COMMIT;\nALTER SYSTEM SET work_mem = '77MB';",
        "permission denied to set parameter \"work_mem\"",
    );
}

#[test]
fn dropping_another_database_is_denied() {
    refused_on_server(
        "COMMIT;\nDROP DATABASE other;",
        "must be owner of database other",
    );
}

#[test]
fn set_role_to_the_superuser_is_denied() {
    refused_on_server(
        "SET ROLE postgres;\nCOPY (SELECT 1) TO PROGRAM 'id > MARKER';",
        "permission denied to set role \"postgres\"",
    );
}

#[test]
fn an_untrusted_language_cannot_be_created() {
    // plperlu is off the allow-list: dvault does not create it, and the drill stops at that
    // line, naming it, before the function that needs it reaches psql.
    refused_on_server(
        "CREATE EXTENSION IF NOT EXISTS plperlu;\n\
         CREATE FUNCTION public.f() RETURNS integer LANGUAGE plperlu AS $$ system('id > MARKER'); return 1; $$;\n\
         SELECT public.f();",
        "line 6: the dump creates extension \"plperlu\", which no Discourse database uses",
    );
    // Spelled so that the filter keeps it, it runs as the drill role and fails too.
    refused_on_server("create extension plpython3u;", "plpython3u");
}

#[test]
fn the_minimal_case_is_refused_in_a_throwaway_cluster_too() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let file = backup(dir.path(), &format!("\\! id > {}", marker.display()));
    let report = drill_file(&file, PostgresTarget::Temp);
    assert!(!report.ok, "{}", report.summary());
    assert!(
        report.failures.join("\n").contains("meta-command `\\! id"),
        "{}",
        report.summary()
    );
    assert!(!marker.exists());
    let info = report.temp_cluster.expect("a throwaway cluster");
    assert!(
        !info.data_dir.exists(),
        "the throwaway cluster was left behind"
    );
}

#[test]
fn a_harmless_dump_still_passes_and_leaves_no_role_behind() {
    let dir = tempfile::tempdir().unwrap();
    // pg_dump 15.14+ writes its own \restrict lines; they are dropped, not refused.
    let file = backup(
        dir.path(),
        "\\restrict abcDEF123\nSELECT pg_catalog.set_config('search_path', '', false);\n\
         CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;\n\
         COMMENT ON EXTENSION hstore IS 'data type for storing sets of (key, value) pairs';",
    );
    let c = server();
    let _one = serial();
    let before = fingerprint(c);
    let report = drill_file(&file, PostgresTarget::Url(c.url("postgres")));
    assert!(report.ok, "{}", report.summary());
    assert_eq!(report.tables[0].db_rows, Some(2));
    assert_eq!(fingerprint(c), before);
    // The restore time is the database's creation plus the load's phases, inside the whole
    // drill.
    let t = &report.timings;
    assert!(
        t.restore_secs > t.phases.total() && t.restore_secs < t.total_secs,
        "{t:?}"
    );
    assert!(
        report.summary().contains("restore "),
        "{}",
        report.summary()
    );
}

#[test]
fn statements_discourse_filters_out_do_not_fail_the_drill() {
    // pg_dump 17 writes SET transaction_timeout, which PostgreSQL 15 does not know; foreign
    // servers and discourse_functions definitions are removed by Discourse's restore (issue 17).
    let dir = tempfile::tempdir().unwrap();
    let file = backup(
        dir.path(),
        "SET transaction_timeout = 0;\n\
         CREATE FUNCTION discourse_functions.raise_t_readonly() RETURNS trigger\n    \
         LANGUAGE plpgsql\n    AS $$\n  BEGIN\n    RAISE EXCEPTION 'read only';\n  END\n$$;\n\
         CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (\n    host 'db'\n);\n\
         CREATE USER MAPPING FOR postgres SERVER remote OPTIONS (\n    user 'u'\n);\n\
         CREATE FOREIGN TABLE public.remote_posts (\n    id integer\n)\nSERVER remote;",
    );
    let c = server();
    let _one = serial();
    let report = drill_file(&file, PostgresTarget::Url(c.url("postgres")));
    assert!(report.ok, "{}", report.summary());
    assert_eq!(report.tables.len(), 1, "{:?}", report.tables);
}

#[test]
fn a_crafted_toc_of_a_directory_dump_cannot_run_a_meta_command() {
    // A real pg_dump directory dump whose table comment, in toc.dat, is replaced by a string of
    // the same length that ends the statement and starts a `\!` line in pg_restore's script.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let c = server();
    let filler = "X".repeat(120);
    {
        let _one = serial();
        c.create_database("src").unwrap();
        c.psql(
            "src",
            &format!(
                "CREATE TABLE t (id integer); INSERT INTO t VALUES (1), (2);\n\
                 COMMENT ON TABLE t IS '{filler}';"
            ),
        )
        .unwrap();
        let db = dir.path().join("db");
        c.pg_dump([
            "--format=directory".as_ref(),
            "--no-owner".as_ref(),
            "-f".as_ref(),
            db.as_os_str(),
            "src".as_ref(),
        ])
        .unwrap();
        c.drop_database("src").unwrap();
    }
    let toc = dir.path().join("db/toc.dat");
    let bytes = std::fs::read(&toc).unwrap();
    let original = format!("'{filler}';");
    let mut evil = format!("'';\n\\! id > {}", marker.display());
    assert!(evil.len() <= original.len());
    evil.push_str(&" ".repeat(original.len() - evil.len()));
    let at = bytes
        .windows(original.len())
        .position(|w| w == original.as_bytes())
        .expect("the comment in toc.dat");
    let mut crafted = bytes.clone();
    crafted[at..at + original.len()].copy_from_slice(evil.as_bytes());
    std::fs::write(&toc, crafted).unwrap();
    let backup = dir
        .path()
        .join("forum-2026-01-01-000000-v2026-1-0-20260101000000.tar");
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&backup)
        .arg("-C")
        .arg(dir.path())
        .arg("db")
        .status()
        .unwrap();
    assert!(tar.success());
    let _one = serial();
    let before = fingerprint(c);
    let report = drill_file(&backup, PostgresTarget::Url(c.url("postgres")));
    assert!(!report.ok, "{}", report.summary());
    assert!(
        report
            .failures
            .join("\n")
            .contains("meta-command `\\! id > "),
        "{}",
        report.summary()
    );
    assert!(!marker.exists(), "the crafted toc ran a shell command");
    assert_eq!(fingerprint(c), before);
}

#[test]
fn an_extension_off_the_allow_list_is_never_created() {
    // file_fdw is on this server (contrib) and would read server files: it is not created,
    // and the drill fails naming it.
    refused_on_server(
        "CREATE EXTENSION IF NOT EXISTS file_fdw WITH SCHEMA public;\n\
         CREATE SERVER f FOREIGN DATA WRAPPER file_fdw;",
        "extension \"file_fdw\", which no Discourse database uses (allowed: hstore",
    );
    refused_on_server(
        "CREATE EXTENSION IF NOT EXISTS \"adminpack\" WITH SCHEMA pg_catalog;",
        "extension \"adminpack\", which no Discourse database uses",
    );
}

#[test]
fn an_allowed_extension_the_dump_names_is_created_before_its_first_use() {
    // citext is no baseline extension: the table's column type exists only because dvault
    // created the extension, as the administrator, when the dump's line named it.
    let dir = tempfile::tempdir().unwrap();
    let file = backup(
        dir.path(),
        "CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;\n\
         COMMENT ON EXTENSION citext IS 'data type for case-insensitive character strings';\n\
         CREATE TABLE public.names (n public.citext);\n\
         COPY public.names (n) FROM stdin;\nAbc\n\\.\n\
         CREATE INDEX names_trgm ON public.names USING gin ((n::text) public.gin_trgm_ops);",
    );
    let c = server();
    let _one = serial();
    let before = fingerprint(c);
    let report = drill_file(&file, PostgresTarget::Url(c.url("postgres")));
    assert!(report.ok, "{}", report.summary());
    let names = report.tables.iter().find(|t| t.name == "public.names");
    assert_eq!(
        names.and_then(|t| t.db_rows),
        Some(1),
        "{:?}",
        report.tables
    );
    assert_eq!(fingerprint(c), before);
}

#[test]
fn an_allowed_extension_the_server_lacks_fails_naming_it() {
    let c = server();
    let available = c
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector';",
        )
        .unwrap();
    if available.trim() != "0" {
        eprintln!("SKIPPED: this server has pgvector; the test needs a server without it");
        return;
    }
    refused_on_server(
        "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;",
        "extension vector is not available on this server",
    );
}

#[test]
fn a_damaged_directory_dump_is_refused_by_pg_restore_list_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let c = server();
    {
        let _one = serial();
        c.create_database("src2").unwrap();
        c.psql(
            "src2",
            "CREATE TABLE t (id integer); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        let db = dir.path().join("db");
        c.pg_dump([
            "--format=directory".as_ref(),
            "--no-owner".as_ref(),
            "-f".as_ref(),
            db.as_os_str(),
            "src2".as_ref(),
        ])
        .unwrap();
        c.drop_database("src2").unwrap();
    }
    let toc = dir.path().join("db/toc.dat");
    let bytes = std::fs::read(&toc).unwrap();
    std::fs::write(&toc, &bytes[..bytes.len() / 2]).unwrap();
    let backup = dir
        .path()
        .join("forum-2026-01-01-000000-v2026-1-0-20260101000000.tar");
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&backup)
        .arg("-C")
        .arg(dir.path())
        .arg("db")
        .status()
        .unwrap();
    assert!(tar.success());
    let _one = serial();
    let report = drill_file(&backup, PostgresTarget::Url(c.url("postgres")));
    assert!(!report.ok, "{}", report.summary());
    let failures = report.failures.join("\n");
    assert!(
        failures.contains("pg_restore --list") && failures.contains("could not read"),
        "{}",
        report.summary()
    );
}
