//! The pull topology against a real OpenSSH server (Debian's openssh-server) on 127.0.0.1: a
//! backup machine reads the forum's backups folder through a chrooted, read-only SFTP account
//! (the Match block shipped in contrib/ssh-pull/). The account cannot write; a changed host key
//! is refused; a backup still being written is not taken; a copy killed half-way is resumed and
//! hashed from its first byte; `dvault run` stores and drills the newest backup.

mod sshd;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dvault_core::source::ssh::{SshSource, SshSourceConfig};
use sha2::Digest as _;
use sshd::Sshd;

fn dvault() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dvault"))
}

/// How the client knows the host's key.
#[derive(Debug, Clone)]
enum Pin {
    KnownHosts(std::path::PathBuf),
    Fingerprint(String),
}

fn source_cfg(s: &Sshd, pin: &Pin) -> SshSourceConfig {
    let (known_hosts, host_key_fingerprint) = match pin {
        Pin::KnownHosts(p) => (Some(p.clone()), None),
        Pin::Fingerprint(f) => (None, Some(f.clone())),
    };
    let cfg = SshSourceConfig {
        location: s.location(),
        identity_file: Some(s.client_key.clone()),
        known_hosts,
        host_key_fingerprint,
        ssh_config: None,
        bandwidth_limit: None,
        connect_timeout: Duration::from_secs(10),
    };
    cfg.validate().unwrap();
    cfg
}

fn with_known_hosts(s: &Sshd) -> Pin {
    Pin::KnownHosts(s.known_hosts.clone())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A real format-B backup from the simulator: (file name, bytes).
fn sim_backup(seed: u64, date: (i64, u32, u32)) -> (String, Vec<u8>) {
    let out = tempfile::tempdir().unwrap();
    let opts = dvault_sim::Options {
        start_date: date,
        formats: vec![dvault_sim::Format::B],
        ..dvault_sim::Options::small(seed)
    };
    dvault_sim::generate(&opts, out.path()).unwrap();
    let entry = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar"))
        .unwrap();
    let name = entry.file_name().unwrap().to_string_lossy().into_owned();
    (name, std::fs::read(&entry).unwrap())
}

#[test]
fn the_account_can_read_but_not_write_as_the_contrib_check_proves() {
    let s = Sshd::start();
    s.put("forum-2026-01-01-000000-v20260101000000.sql.gz", b"x");
    let check =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/ssh-pull/check-read-only");
    let out = Command::new("bash")
        .arg(&check)
        .arg(s.location())
        .arg(&s.client_key)
        .arg(&s.known_hosts)
        .output()
        .unwrap();
    let text = format!(
        "{}{}\nsshd: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(out.status.success(), "{text}");
    for what in ["upload", "mkdir", "rename", "remove", "chmod", "symlink"] {
        assert!(
            text.contains(&format!("ok: {what} refused")),
            "{what}: {text}"
        );
    }
    assert!(
        text.contains("ok: no shell") && text.contains("read-only: OK"),
        "{text}"
    );
    // Nothing appeared in or left the folder.
    let names: Vec<_> = std::fs::read_dir(&s.backups).unwrap().collect();
    assert_eq!(names.len(), 1, "{text}");
}

#[test]
fn a_changed_host_key_is_refused_with_known_hosts_and_with_a_fingerprint() {
    let mut s = Sshd::start();
    s.put("forum-2026-01-01-000000-v20260101000000.sql.gz", b"data");
    for pin in [
        with_known_hosts(&s),
        Pin::Fingerprint(s.fingerprint.clone()),
    ] {
        let src = SshSource::from_config(&source_cfg(&s, &pin), Duration::ZERO).unwrap();
        let sel = src
            .newest_complete()
            .unwrap_or_else(|e| panic!("{pin:?}: {e}\nsshd: {}", s.log()));
        assert!(sel.newest.is_some(), "{pin:?}");
    }
    s.change_host_key();
    for pin in [
        with_known_hosts(&s),
        Pin::Fingerprint(s.fingerprint.clone()),
    ] {
        let src = SshSource::from_config(&source_cfg(&s, &pin), Duration::ZERO).unwrap();
        let e = src.newest_complete().unwrap_err().to_string();
        assert!(e.contains("HOST KEY REFUSED"), "{pin:?}: {e}");
        assert!(e.contains(&format!("127.0.0.1:{}", s.port)), "{e}");
    }
    // A host never seen is refused too (nothing is added to known_hosts on first use).
    let empty = s.dir.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let cfg = source_cfg(&s, &Pin::KnownHosts(empty.clone()));
    let e = SshSource::from_config(&cfg, Duration::ZERO)
        .unwrap()
        .newest_complete()
        .unwrap_err()
        .to_string();
    assert!(e.contains("HOST KEY REFUSED"), "{e}");
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
}

#[test]
fn a_backup_still_being_written_is_not_taken() {
    let s = Sshd::start();
    let done = "forum-2026-01-01-000000-v2026-1-0-latest-20260101000000.tar";
    s.put(done, b"finished backup");
    // Current Discourse writes NAME.tar.partial; older Discourse grows NAME.tar, then gzip grows
    // NAME.tar.gz beside it.
    s.put(
        "forum-2026-01-03-000000-v2026-1-0-latest-20260101000000.tar.partial",
        b"half",
    );
    s.put("forum-2026-01-02-000000-v20260101000000.tar", b"tar");
    s.put(
        "forum-2026-01-02-000000-v20260101000000.tar.gz",
        b"gz so far",
    );
    // And the newest file grows during the settle wait.
    let growing = s
        .backups
        .join("forum-2026-01-04-000000-v2026-1-0-latest-20260101000000.tar");
    std::fs::write(&growing, b"start").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (growing, stop) = (growing.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&growing)
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&[7u8; 1000]).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let scratch = tempfile::tempdir().unwrap();
    let src = SshSource::from_config(
        &source_cfg(&s, &with_known_hosts(&s)),
        Duration::from_secs(2),
    )
    .unwrap();
    let mut notes = Vec::new();
    let picked = src
        .fetch_newest(
            Some(scratch.path()),
            &mut |m: &str| notes.push(m.to_string()),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}\nsshd: {}", s.log()))
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(picked.name.file_name, done, "{:?}", picked.passed_over);
    assert_eq!(std::fs::read(&picked.path).unwrap(), b"finished backup");
    let passed = picked.passed_over.join("\n");
    assert!(
        passed.contains("2026-01-04") && passed.contains("still growing"),
        "{passed}"
    );
    assert!(passed.contains("gzip is still running"), "{passed}");
    assert!(
        !passed.contains(".partial"),
        "never even a candidate: {passed}"
    );
    assert_eq!(
        picked.transfer.as_ref().unwrap().sha256,
        sha256(b"finished backup")
    );
}

struct Site {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

/// A backup machine: a repository made with `dvault init`, and a config pulling from `s`.
fn backup_machine(s: &Sshd, extra_source: &str, extra_site: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("password"), "correct horse\n").unwrap();
    let init = dvault()
        .args(["init", "--repo"])
        .arg(d.join("repo"))
        .arg("--password-file")
        .arg(d.join("password"))
        .env("DVAULT_CACHE_DIR", d.join("cache"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let config = d.join("dvault.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\nscratch_dir = \"{d}/scratch\"\n\
             [monitoring]\nprometheus_textfile = \"{d}/metrics.prom\"\n\
             [sites.forum.source]\nsettle = \"0s\"\n\
             [sites.forum.source.ssh]\nlocation = \"{loc}\"\nidentity_file = \"{key}\"\n\
             known_hosts = \"{kh}\"\n{extra_source}\
             [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n\
             {extra_site}",
            d = d.display(),
            loc = s.location(),
            key = s.client_key.display(),
            kh = s.known_hosts.display(),
        ),
    )
    .unwrap();
    Site { dir, config }
}

fn run_json(config: &Path) -> (Output, serde_json::Value) {
    let out = dvault()
        .args(["run", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, report)
}

#[test]
fn a_copy_killed_half_way_is_resumed_and_the_whole_file_hashed() {
    let s = Sshd::start();
    let (name, bytes) = sim_backup(11, (2026, 1, 5));
    s.put(&name, &bytes);
    // Slow enough to be killed in the middle: the copy takes about 4 seconds.
    let limit = (bytes.len() / 4).max(4096);
    let site = backup_machine(&s, &format!("bandwidth_limit = \"{limit} B\"\n"), "");
    let scratch = site.dir.path().join("scratch");
    let mut child = dvault()
        .args(["run", "--config"])
        .arg(&site.config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let part_len = || {
        walk(&scratch)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".tar.part"))
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    while part_len() < bytes.len() as u64 / 3 {
        assert!(
            Instant::now() < deadline,
            "the copy never got a third of the way"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    let had = part_len();
    assert!(
        had > 0 && had < bytes.len() as u64,
        "{had} of {}",
        bytes.len()
    );

    // The next run (no limit now) continues where the killed one stopped.
    std::fs::write(
        &site.config,
        std::fs::read_to_string(&site.config)
            .unwrap()
            .replace(&format!("bandwidth_limit = \"{limit} B\"\n"), ""),
    )
    .unwrap();
    let (out, report) = run_json(&site.config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\nsshd: {}", s.log());
    let r = &report["sites"][0];
    assert_eq!(r["outcome"], "stored", "{report}");
    assert_eq!(r["file"], name.as_str());
    assert_eq!(r["sha256"], sha256(&bytes).as_str(), "{report}");
    let t = &r["transfer"];
    let resumed = t["resumed_from"].as_u64().unwrap();
    assert!(
        resumed >= had.min(bytes.len() as u64 / 3),
        "{t} (had {had})"
    );
    assert_eq!(
        t["bytes_transferred"].as_u64().unwrap(),
        bytes.len() as u64 - resumed,
        "{t}"
    );
    assert!(stderr.contains("resuming sftp://"), "{stderr}");
    // The copy (the forum's backup in plain) is private to dvault's user.
    for d in std::fs::read_dir(&scratch).unwrap() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = d.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    // A third run transfers nothing and finds it stored; the metrics carry the figures.
    let (out, report) = run_json(&site.config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["sites"][0]["outcome"], "already_stored", "{report}");
    assert_eq!(report["sites"][0]["transfer"]["bytes_transferred"], 0);
}

#[test]
fn a_copy_shows_a_progress_bar_on_a_terminal() {
    let s = Sshd::start();
    let (name, bytes) = sim_backup(12, (2026, 1, 6));
    s.put(&name, &bytes);
    let limit = (bytes.len() / 2).max(4096);
    let site = backup_machine(&s, &format!("bandwidth_limit = \"{limit} B\"\n"), "");
    // `script` (util-linux) gives the run a terminal and prints what it showed there.
    let cmd = format!(
        "{} run --config {}",
        env!("CARGO_BIN_EXE_dvault"),
        site.config.display()
    );
    let out = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains(&format!("copying {name}")) && screen.contains("B/s"),
        "{screen}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn dvault_run_over_ssh_stores_and_drills_the_forums_newest_backup() {
    let s = Sshd::start();
    let (old_name, old) = sim_backup(21, (2026, 2, 1));
    let (new_name, new) = sim_backup(22, (2026, 2, 2));
    s.put(&old_name, &old);
    s.put(&new_name, &new);
    let site = backup_machine(&s, "", "[sites.forum.drill]\nevery = \"1s\"\n");
    let (out, report) = run_json(&site.config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\nsshd: {}", s.log());
    let r = &report["sites"][0];
    assert_eq!(r["outcome"], "stored", "{report}");
    assert_eq!(r["file"], new_name.as_str());
    assert_eq!(r["sha256"], sha256(&new).as_str());
    assert_eq!(r["transfer"]["bytes_transferred"], new.len() as u64);
    let drill = r["drill"].as_str().unwrap_or_default();
    assert!(
        drill.starts_with(&format!("{new_name} restored: ")),
        "{drill}\n{stderr}"
    );
    // The snapshot records where the file came from.
    let snaps = dvault()
        .args(["snapshots", "--json"])
        .env("DVAULT_REPOSITORY", site.dir.path().join("repo"))
        .env("DVAULT_PASSWORD_FILE", site.dir.path().join("password"))
        .env("DVAULT_CACHE_DIR", site.dir.path().join("cache"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&snaps.stdout);
    assert!(
        text.contains(&format!(
            "sftp://{}@127.0.0.1:{}/backups/{new_name}",
            sshd::USER,
            s.port
        )),
        "{text}{}",
        String::from_utf8_lossy(&snaps.stderr)
    );
    // The metrics textfile has the transfer's figures.
    let metrics = std::fs::read_to_string(site.dir.path().join("metrics.prom")).unwrap();
    assert!(
        metrics.contains(&format!(
            "dvault_last_transfer_bytes{{site=\"forum\"}} {}\n",
            new.len()
        )) && metrics.contains("dvault_last_transfer_duration_seconds{site=\"forum\"} "),
        "{metrics}"
    );
}

#[test]
fn a_bad_ssh_source_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (source, key, why) in [
        (
            "[sites.forum.source.ssh]\nlocation = \"sftp://forum.example.com/backups\"\n",
            "sites.forum.source.ssh.location",
            "user name is missing",
        ),
        (
            "[sites.forum.source]\nfolder = \"/x\"\n[sites.forum.source.ssh]\n\
             location = \"sftp://u@h/b\"\n",
            "sites.forum.source.ssh",
            "only one of",
        ),
        (
            "[sites.forum.source.ssh]\nlocation = \"sftp://u@h/b\"\n\
             host_key_fingerprint = \"MD5:00\"\n",
            "sites.forum.source.ssh.host_key_fingerprint",
            "SHA256",
        ),
        (
            "[sites.forum.source.ssh]\nlocation = \"sftp://u@h/b\"\nbandwidth_limit = \"fast\"\n",
            "bandwidth_limit",
            "invalid bandwidth",
        ),
    ] {
        let config = d.join("dvault.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{d}/state\"\n{source}[sites.forum.repository]\n\
                 location = \"{d}/repo\"\npassword_file = \"{d}/password\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        let out = dvault()
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{source}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(why),
            "{source}: {stderr}"
        );
    }
}
