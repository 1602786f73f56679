//! The REST backend against a real rest-server implementation: `rclone serve restic`, also in
//! `--append-only` mode, where retention must be refused and nothing may disappear.

use crate::repo_support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use repo_support::{free_port, make_backups, sha256, Env};

/// A running `rclone serve restic`, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path, append_only: bool) -> Self {
        let port = free_port();
        let mut cmd = Command::new("rclone");
        cmd.args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if append_only {
            cmd.arg("--append-only");
        }
        let child = cmd
            .spawn()
            .expect("rclone (Debian package `rclone`) is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rclone did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("rest:http://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rest_server_backup_restore_and_forget() {
    let env = Env::new();
    let store = env.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let server = Server::start(&store, false);
    let repo = server.url.as_str();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 7, 50_000);
    for f in &files[..2] {
        assert_eq!(env.backup(repo, f)["outcome"], "stored");
    }
    let snaps = env.snapshots(repo);
    assert_eq!(snaps.len(), 2);
    let id = snaps[0]["short_id"].as_str().unwrap();
    assert_eq!(env.restore_sha(repo, id), sha256(&files[0]));

    // Both backups are of one day: keeping one per day keeps the more complete one (the
    // .tar.gz with uploads, over the database-only .sql.gz) and removes the other.
    let out = env.ok(repo, &["forget", "--keep-daily", "1", "--prune", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    let left = env.snapshots(repo);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], snaps[0]["id"]);
    env.ok(repo, &["check", "--read-data"]);
    let id = left[0]["short_id"].as_str().unwrap();
    assert_eq!(env.restore_sha(repo, id), sha256(&files[0]));
}

#[test]
fn append_only_server_takes_backups_and_refuses_forget_and_prune() {
    let env = Env::new();
    let store = env.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let files = make_backups(env.path(), 8, 50_000);
    {
        let full = Server::start(&store, false);
        env.ok(&full.url, &["init"]);
        env.backup(&full.url, &files[0]);
        env.backup(&full.url, &files[1]);
    }
    let server = Server::start(&store, true);
    let repo = server.url.as_str();
    assert_eq!(env.backup(repo, &files[2])["outcome"], "stored");
    let before = env.snapshots(repo);
    assert_eq!(before.len(), 3);

    let err = env.fails(repo, &["forget", "--keep-daily", "1"]);
    assert!(
        err.contains("append-only") && err.contains("forget"),
        "{err}"
    );
    let err = env.fails(repo, &["forget", "--keep-daily", "1", "--prune"]);
    assert!(err.contains("append-only"), "{err}");

    let after = env.snapshots(repo);
    assert_eq!(after, before, "no snapshot may disappear");
    env.ok(repo, &["check"]);
    for (f, s) in files.iter().zip(&after) {
        assert_eq!(
            env.restore_sha(repo, s["short_id"].as_str().unwrap()),
            sha256(f)
        );
    }
}
