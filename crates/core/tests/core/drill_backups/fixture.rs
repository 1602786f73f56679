//! The backups the drill tests load, built once per test run with the real pg_dump, tar and
//! gzip from a small forum-like database in a throwaway cluster: format A (`.tar.gz`), SQL only
//! (`.sql.gz`) and format B (`.tar` with a directory dump and a hard-linked duplicate upload).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dvault_core::postgres::TempCluster;
use flate2::read::MultiGzDecoder;
use sha1::Digest as _;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) format_a: PathBuf,
    pub(super) sql_only: PathBuf,
    pub(super) format_b: PathBuf,
    /// The plain dump (decompressed dump.sql.gz) and the uploads folder (`public/`).
    pub(super) dump_sql: Vec<u8>,
    pub(super) public: PathBuf,
    pub(super) upload_paths: Vec<String>,
    pub(super) posts: u64,
}

pub(super) const POSTS: u64 = 40;

pub(super) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build_fixture().expect("building the fixture backups"))
}

pub(super) fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

pub(super) fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

pub(super) fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_fixture() -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let public = dir.path().join("public");
    let orig = public.join("uploads/default/original/1X");
    std::fs::create_dir_all(&orig)?;
    let cluster = TempCluster::start()?;
    cluster.create_database("forum")?;
    // Uploads: three plain ones, one secure (random sha1, real original_sha1), one stored on S3.
    let mut rows = Vec::new();
    let mut upload_paths = Vec::new();
    for i in 1..=4u32 {
        let content = format!("\u{89}PNG fake image {i} {}", "x".repeat(i as usize * 100));
        let sha = sha1_hex(content.as_bytes());
        let rel = format!("original/1X/{sha}.png");
        std::fs::write(orig.join(format!("{sha}.png")), content.as_bytes())?;
        upload_paths.push(format!("uploads/default/{rel}"));
        let (sha_col, original) = if i == 4 {
            (
                "0123456789abcdef0123456789abcdef01234567".to_string(),
                format!("'{sha}'"),
            )
        } else {
            (sha.clone(), "NULL".to_string())
        };
        rows.push(format!(
            "({i}, '/uploads/default/{rel}', '{sha_col}', {original})"
        ));
    }
    rows.push("(5, '//bucket.s3.amazonaws.com/original/1X/remote.png', 'ffffffffffffffffffffffffffffffffffffffff', NULL)".into());
    let setup = format!(
        "CREATE SCHEMA discourse_functions;
         CREATE FUNCTION discourse_functions.raise_email_logs_readonly() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'Discourse: email_logs is read only'; END $$ LANGUAGE plpgsql;
         CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL);
         CREATE TABLE posts (id bigserial PRIMARY KEY, user_id int REFERENCES users(id), raw text);
         CREATE TABLE \"user\" (id int);
         CREATE TABLE email_logs (id serial PRIMARY KEY, note text);
         CREATE TRIGGER email_logs_readonly BEFORE INSERT ON email_logs
           FOR EACH ROW EXECUTE FUNCTION discourse_functions.raise_email_logs_readonly();
         CREATE TABLE empty_things (id serial PRIMARY KEY);
         CREATE TABLE uploads (id serial PRIMARY KEY, url varchar NOT NULL, sha1 varchar(40),
           original_sha1 varchar);
         INSERT INTO users (username) SELECT 'user' || g FROM generate_series(1, 12) g;
         INSERT INTO posts (user_id, raw) SELECT 1 + g % 12,
           E'line one\\nline two\\twith tab \\\\ backslash ' || g FROM generate_series(1, {POSTS}) g;
         INSERT INTO \"user\" VALUES (1), (2);
         INSERT INTO uploads (id, url, sha1, original_sha1) VALUES {};
         SELECT setval('uploads_id_seq', 5);
         SELECT nextval('empty_things_id_seq');
         ",
        rows.join(", ")
    );
    cluster.psql("forum", &setup)?;
    // Format A and SQL only: Discourse's pg_dump arguments.
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work)?;
    let dump_gz = work.join("dump.sql.gz");
    cluster.pg_dump([
        "--schema=public",
        "-T",
        "public.pg_*",
        "--file",
        dump_gz.to_str().unwrap(),
        "--no-owner",
        "--no-privileges",
        "--verbose",
        "--compress=4",
        "forum",
    ])?;
    let mut dump_sql = Vec::new();
    MultiGzDecoder::new(std::fs::File::open(&dump_gz)?).read_to_end(&mut dump_sql)?;
    let sql_only = dir
        .path()
        .join("forum-2026-01-01-033000-v20250101000000.sql.gz");
    std::fs::copy(&dump_gz, &sql_only)?;
    let format_a = dir
        .path()
        .join("forum-2026-01-01-033000-v20250101000000.tar.gz");
    make_format_a(&format_a, &dump_gz, &public)?;
    // Format B: a directory dump and the uploads in an uncompressed tar, a duplicate upload
    // stored as a hard link.
    let b_root = dir.path().join("b");
    std::fs::create_dir_all(&b_root)?;
    cluster.pg_dump([
        "--schema=public",
        "-T",
        "public.pg_*",
        "--format=directory",
        "--file",
        b_root.join("db").to_str().unwrap(),
        "--no-owner",
        "--no-privileges",
        "--compress=4",
        "forum",
    ])?;
    run(Command::new("cp")
        .arg("-a")
        .arg(public.join("uploads"))
        .arg(&b_root));
    let format_b = dir
        .path()
        .join("forum-2026-01-01-033000-v3.5.0-20250101000000.tar");
    run(Command::new("tar")
        .args(["--format=ustar", "--sort=name", "-cf"])
        .arg(&format_b)
        .arg("-C")
        .arg(&b_root)
        .args(["db", "uploads"]));
    drop(cluster);
    Ok(Fixture {
        _dir: dir,
        format_a,
        sql_only,
        format_b,
        dump_sql,
        public,
        upload_paths,
        posts: POSTS,
    })
}

/// Format A as Discourse builds it: an empty GNU tar, `--append` the dump, `--append` the
/// uploads, then `gzip -5`.
pub(super) fn make_format_a(out: &Path, dump_gz: &Path, public: &Path) -> anyhow::Result<()> {
    let tar = out.with_extension("");
    let dump_dir = dump_gz.parent().unwrap();
    run(Command::new("tar")
        .args(["--create", "--files-from", "/dev/null", "--file"])
        .arg(&tar));
    run(Command::new("tar")
        .args(["--append", "--dereference", "--file"])
        .arg(&tar)
        .arg("-C")
        .arg(dump_dir)
        .arg(dump_gz.file_name().unwrap()));
    run(Command::new("tar")
        .args(["--append", "--dereference", "--file"])
        .arg(&tar)
        .arg("-C")
        .arg(public)
        .arg("uploads/default"));
    run(Command::new("gzip").args(["-5", "-f"]).arg(&tar));
    anyhow::ensure!(out.is_file(), "gzip did not write {}", out.display());
    Ok(())
}
