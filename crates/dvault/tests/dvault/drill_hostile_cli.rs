//! `dvault drill --file` on crafted backups (issue 15, items 1 and 4), with the real gzip and
//! tar: the minimal shell-escape case fails the drill with a throwaway cluster and with a given
//! server, running nothing; a decompression bomb is refused at the cap set with the same flags
//! as expand and backup, naming the member and the cap.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dvault_core::postgres::TempCluster;

fn dvault() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dvault"));
    c.env_remove("DVAULT_DRILL_POSTGRES");
    c
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `data` gzipped by the real `gzip` to `path`.
fn gzip_to(data: &[u8], path: &Path) {
    let mut child = Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(path).unwrap())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    assert!(child.wait().unwrap().success());
}

/// The minimal case of issue 15: `\! id > FILE`, one CREATE TABLE and a COPY block.
fn shell_escape_backup(dir: &Path, marker: &Path) -> PathBuf {
    let dump = format!(
        "\\! id > {}\nCREATE TABLE public.t (id integer);\nCOPY public.t (id) FROM stdin;\n1\n\\.\n",
        marker.display()
    );
    let path = dir.join("forum-2026-01-01-000000-v20260101000000.sql.gz");
    gzip_to(dump.as_bytes(), &path);
    path
}

fn assert_refused(out: &Output, marker: &Path) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    assert!(
        text(out).contains("the psql meta-command `\\! id > "),
        "{}",
        text(out)
    );
    assert!(!marker.exists(), "the backup ran a shell command");
}

#[test]
fn drill_file_refuses_a_shell_escape_in_a_throwaway_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let file = shell_escape_backup(dir.path(), &marker);
    let out = dvault()
        .args(["drill", "--postgres-temp", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_refused(&out, &marker);
}

#[test]
fn drill_file_refuses_a_shell_escape_on_a_given_server_and_leaves_it_clean() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let file = shell_escape_backup(dir.path(), &marker);
    let server = TempCluster::start().unwrap();
    let out = dvault()
        .args(["drill", "--postgres", &server.url("postgres"), "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_refused(&out, &marker);
    let left = server
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'dvault%' \
             UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'dvault%'",
        )
        .unwrap();
    assert_eq!(left.trim(), "", "drill database or role left behind");
}

#[test]
fn drill_refuses_a_decompression_bomb_at_the_cap_naming_the_member() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of zeros in dump.sql.gz, in a .tar.gz made by the real tar and gzip: a few
    // hundred bytes on disk. The cap is set low so the test stays cheap.
    let inner = dir.path().join("in");
    std::fs::create_dir(&inner).unwrap();
    gzip_to(&vec![0u8; 64 << 20], &inner.join("dump.sql.gz"));
    let bomb = dir
        .path()
        .join("forum-2026-01-01-000000-v20260101000000.tar.gz");
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(&bomb)
        .arg("-C")
        .arg(&inner)
        .arg("dump.sql.gz")
        .status()
        .unwrap();
    assert!(tar.success());
    assert!(std::fs::metadata(&bomb).unwrap().len() < 200_000);
    let out = dvault()
        .args(["drill", "--postgres-temp", "--max-expansion-ratio", "10"])
        .args(["--expansion-slack", "1MiB", "--file"])
        .arg(&bomb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("member dump.sql.gz: expands to more than")
            && all.contains("10 times the input plus 1048576 bytes"),
        "{all}"
    );
    assert!(all.contains(&bomb.display().to_string()), "{all}");
}
