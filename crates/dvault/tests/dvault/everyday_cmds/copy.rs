//! `copy` to a local, a REST (`rclone serve restic`) and an S3 (Garage) repository, each copy
//! restored bit-exact and checked by the stock `restic check --read-data`.

use super::*;
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The source repository with six backups, copied to `target` (created by `--init`) with
/// `extra` environment; checks the copy with dvault and the stock restic.
fn copy_and_verify(
    env: &Env,
    files: &[dvault_sim::BackupFile],
    source: &str,
    target: &str,
    setup: &dyn Fn(&mut Command),
) {
    let to_pw = secret(env, "to-password", "target password");
    let mut copy = env.dvault(source);
    setup(&mut copy);
    let out = copy
        .args(["copy", "--to", target, "--init", "--json"])
        .arg("--to-password-file")
        .arg(&to_pw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["copied"].as_array().unwrap().len(), files.len());
    assert_eq!(report["same_chunker"], true);

    let on_target = |args: &[&str]| {
        let mut c = env.dvault(target);
        setup(&mut c);
        let out = c
            .env("DVAULT_PASSWORD_FILE", &to_pw)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // Every copy rebuilds bit-exact from the target, checked against its SHA-256.
    let snaps = json(&on_target(&["snapshots", "--json"]));
    assert_eq!(snaps.as_array().unwrap().len(), files.len());
    for f in files {
        let s = snaps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["meta"]["sha256"] == sha256(&f.path).as_str())
            .unwrap();
        let out = env.path().join("from-target");
        on_target(&[
            "restore",
            s["short_id"].as_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
        ]);
        assert_eq!(sha256(&out), sha256(&f.path));
        fs::remove_file(&out).unwrap();
    }
    // Dedup kept: the target stores no more than the source (same blobs, once each).
    let src = json(&env.ok(source, &["stats", "--json"]));
    let dst = json(&on_target(&["stats", "--json"]));
    assert!(
        dst["pack_bytes"].as_u64().unwrap() <= src["pack_bytes"].as_u64().unwrap() * 11 / 10,
        "{src} {dst}"
    );
    assert_eq!(dst["unique_blobs"], src["unique_blobs"]);
    on_target(&["check", "--read-data"]);
    // A second copy finds everything there.
    let mut again = env.dvault(source);
    setup(&mut again);
    let out = again
        .args(["copy", "--to", target, "--json"])
        .arg("--to-password-file")
        .arg(&to_pw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["copied"].as_array().unwrap().len(), 0);
    assert_eq!(
        report["already_there"].as_array().unwrap().len(),
        files.len()
    );
    // The stock restic reads and checks the target.
    let mut r = Command::new("restic");
    setup(&mut r);
    let out = r
        .env("RESTIC_PASSWORD_FILE", &to_pw)
        .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
        .args(["-r", target, "check", "--read-data"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restic check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn copy_to_a_local_repository_keeps_proof_dedup_and_ledger() {
    let env = Env::new();
    let files = sim_backups(env.path());
    let (repo, _) = filled(&env, &files);
    let target = env.path().join("repo2").display().to_string();
    copy_and_verify(&env, &files, &repo, &target, &|_| {});
    // The ledger of the target holds the copies: a snapshot file deleted there behind
    // dvault's back is reported by check. The folder also holds audit snapshots (not in the
    // ledger), so the file deleted is a copy's own, by its id (the first file listed was
    // an audit snapshot now and then, and check rightly passed).
    let listed = env
        .dvault(&target)
        .env("DVAULT_PASSWORD_FILE", env.path().join("to-password"))
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    let copied = json(&listed)[0]["id"].as_str().unwrap().to_string();
    let victim = env.path().join("repo2/snapshots").join(copied);
    fs::remove_file(&victim).unwrap();
    let out = env
        .dvault(&target)
        .env("DVAULT_PASSWORD_FILE", env.path().join("to-password"))
        .arg("check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is missing"), "{err}");
    // The source itself is refused as target.
    let err = env.fails(&repo, &["copy", "--to", &repo]);
    assert!(err.contains("--to"), "{err}");
}

struct Rest(Child);
impl Drop for Rest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn copy_to_a_rest_server() {
    let env = Env::new();
    let files = sim_backups(env.path());
    let (repo, _) = filled(&env, &files);
    let store = env.path().join("rest-store");
    fs::create_dir_all(&store).unwrap();
    let port = repo_support::free_port();
    let child = Command::new("rclone")
        .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rclone (Debian package `rclone`) is installed");
    let _server = Rest(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "rclone did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let target = format!("rest:http://127.0.0.1:{port}/copy");
    copy_and_verify(&env, &files, &repo, &target, &|_| {});
}

#[cfg(feature = "s3")]
#[test]
fn copy_to_an_s3_repository_on_garage() {
    let Some(g) = dvault_testkit::Garage::start("everyday_copy_to_s3") else {
        return;
    };
    let key = g.bucket_with_key("dvault-copy");
    let target = g.repo_url("dvault-copy", "offsite");
    let env = Env::new();
    let files = sim_backups(env.path());
    let (repo, _) = filled(&env, &files);
    copy_and_verify(&env, &files, &repo, &target, &|c| {
        g.with_key(c, &key);
    });
}
