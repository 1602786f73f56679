//! Shared helpers for the repository tests: fixtures made with the real `tar` and `gzip`, a
//! runner for the `dvault` binary, and SHA-256 of files.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// SHA-256 (hex) of a file.
pub fn sha256(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex::encode(Sha256::digest(&data))
}

pub use dvault_testkit::noise;

/// A small pg_dump-like SQL text with `rows` rows.
pub fn sql_text(rows: usize, day: u64) -> String {
    let mut s = String::from("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n");
    s.push_str("COPY public.posts (id, user_id, raw, updated_at) FROM stdin;\n");
    for i in 0..rows {
        let t = if i % 50 == 0 { day } else { 0 };
        s.push_str(&format!(
            "{i}\t{}\tThis is post number {i} with some words about forums and backups\t2024-01-{:02} 10:00:00\n",
            i % 97,
            1 + t % 28
        ));
    }
    s.push_str("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n");
    s
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three Discourse backup formats, made with real tools in `dir`:
/// format A (`.tar.gz`: GNU tar with dump.sql.gz and uploads, gzip -5), SQL only
/// (`.sql.gz`, gzip -4 -n), and format B (`.tar`, ustar with db/ and uploads/).
/// `upload_bytes` of incompressible uploads go into the tar formats.
pub fn make_backups(dir: &Path, day: u64, upload_bytes: usize) -> Vec<PathBuf> {
    let work = dir.join(format!("src-{day}"));
    let uploads = work.join("uploads/default/original/1X");
    fs::create_dir_all(&uploads).unwrap();
    fs::write(work.join("dump.sql"), sql_text(2000, day)).unwrap();
    run_ok(
        Command::new("gzip")
            .args(["-4", "-n", "-k"])
            .arg(work.join("dump.sql")),
    );
    let n = 4usize;
    for i in 0..n {
        fs::write(
            uploads.join(format!("img{i}.jpg")),
            noise(i as u64 + 1, upload_bytes / n),
        )
        .unwrap();
    }
    // One second apart, so that snapshot times (taken from the names) order A, SQL, B.
    let stamp = |second: u32| format!("2024-03-{:02}-03300{second}", day % 28 + 1);
    let a = dir.join(format!("forum-{}-v20240229123456.tar.gz", stamp(1)));
    let a_tar = dir.join("a.tar");
    run_ok(
        Command::new("tar")
            .current_dir(&work)
            .args(["--format=gnu", "-cf"])
            .arg(&a_tar)
            .args(["dump.sql.gz", "uploads"]),
    );
    let gz = Command::new("gzip")
        .args(["-5", "-c"])
        .arg(&a_tar)
        .output()
        .unwrap();
    assert!(gz.status.success());
    fs::write(&a, gz.stdout).unwrap();
    fs::remove_file(&a_tar).unwrap();

    let sql = dir.join(format!("forum-{}-v20240229123456.sql.gz", stamp(2)));
    fs::copy(work.join("dump.sql.gz"), &sql).unwrap();

    let db = work.join("db");
    fs::create_dir_all(&db).unwrap();
    fs::write(db.join("toc.dat"), noise(99, 5000)).unwrap();
    fs::copy(work.join("dump.sql.gz"), db.join("3456.dat.gz")).unwrap();
    let b = dir.join(format!(
        "forum-{}-v3.4.0.beta3-20240229123456.tar",
        stamp(3)
    ));
    run_ok(
        Command::new("tar")
            .current_dir(&work)
            .args(["--format=ustar", "-cf"])
            .arg(&b)
            .args(["db", "uploads"]),
    );
    fs::remove_dir_all(&work).unwrap();
    vec![a, sql, b]
}

/// A temp folder with a password file (0600) for the tests.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub password_file: PathBuf,
    pub cache: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let password_file = tmp.path().join("password");
        let mut f = fs::File::create(&password_file).unwrap();
        writeln!(f, "correct horse battery staple").unwrap();
        // Private, as an admin keeps it: a readable one gets a warning on every command.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .unwrap();
        let cache = tmp.path().join("cache");
        Self {
            tmp,
            password_file,
            cache,
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A `dvault` command for repository `repo` with this env's password file and cache, and
    /// no inherited DVAULT_* variables.
    pub fn dvault(&self, repo: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dvault"));
        for (k, _) in std::env::vars() {
            if k.starts_with("DVAULT_") {
                c.env_remove(k);
            }
        }
        c.env("DVAULT_REPOSITORY", repo)
            .env("DVAULT_PASSWORD_FILE", &self.password_file)
            .env("DVAULT_CACHE_DIR", &self.cache)
            .env("DVAULT_SCRATCH_DIR", self.path())
            .env("DVAULT_STATE_DIR", self.path().join("state"));
        c
    }

    /// Runs `dvault ARGS` and insists on success.
    pub fn ok(&self, repo: &str, args: &[&str]) -> Output {
        let out = self.dvault(repo).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "dvault {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `dvault ARGS` and insists on failure; returns stderr.
    pub fn fails(&self, repo: &str, args: &[&str]) -> String {
        let out = self.dvault(repo).args(args).output().unwrap();
        assert!(
            !out.status.success(),
            "dvault {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `dvault backup --json FILE`, parsed.
    pub fn backup(&self, repo: &str, file: &Path) -> serde_json::Value {
        let out = self.ok(repo, &["backup", "--json", file.to_str().unwrap()]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `dvault snapshots --json`, parsed.
    pub fn snapshots(&self, repo: &str) -> Vec<serde_json::Value> {
        let out = self.ok(repo, &["snapshots", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Restores snapshot `id` to a new file and returns its SHA-256.
    pub fn restore_sha(&self, repo: &str, id: &str) -> String {
        let out = self.path().join(format!("restored-{id}"));
        let _ = fs::remove_file(&out);
        self.ok(repo, &["restore", id, "--to", out.to_str().unwrap()]);
        let sha = sha256(&out);
        fs::remove_file(&out).unwrap();
        sha
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// xorshift64*: random campaign moments, repeatable from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The number in environment variable `name`, else `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A campaign seed: environment variable `name`, else the clock; always odd (never 0 for
/// xorshift).
pub fn seed_from_env(name: &str) -> u64 {
    env_number(
        name,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    ) | 1
}
