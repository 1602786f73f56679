//! The audit trail on a REST server: `rclone serve restic --append-only` keeps every record
//! (and the refused forget is recorded too); a later `forget --prune` with full access removes
//! backups but no audit record, and the stock restic still checks the repository.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{audit, ops, restic_checks, sim_backups};
use crate::repo_support::{free_port, Env};

/// A running `rclone serve restic`, killed on drop.
struct Server(Child, String);

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
        let child = cmd.spawn().expect("rclone (Debian package) is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rclone did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server(child, format!("rest:http://127.0.0.1:{port}/"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn audit_records_survive_append_only_server_and_prune() {
    let env = Env::new();
    let store = env.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let files = sim_backups(&env.path().join("backups"), 2);
    let before = {
        let server = Server::start(&store, true);
        let repo = server.1.as_str();
        env.ok(repo, &["init"]);
        for f in &files {
            assert_eq!(env.backup(repo, f)["outcome"], "stored");
        }
        let err = env.fails(repo, &["forget", "--keep-last", "1"]);
        assert!(err.contains("append-only"), "{err}");
        let records = audit(&env, repo);
        assert_eq!(ops(&records), ["backup", "backup", "backup", "forget"]);
        assert_eq!(records[3]["outcome"], "failed");
        assert!(records[3]["detail"]
            .as_str()
            .unwrap()
            .contains("append-only"));
        records
    };
    let server = Server::start(&store, false);
    let repo = server.1.as_str();
    env.ok(repo, &["forget", "--keep-last", "1", "--prune"]);
    assert_eq!(env.snapshots(repo).len(), 1);
    let after = audit(&env, repo);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "every earlier record is still there"
    );
    assert_eq!(ops(&after[before.len()..]), ["forget", "prune"]);
    assert_eq!(
        after[before.len()]["snapshots"].as_array().unwrap().len(),
        2
    );
    // No gap: the two removed snapshots have their forget record.
    env.ok(repo, &["check"]);
    drop(server);
    restic_checks(&env, &store);
}
