//! `dvault run` as an admin's timer runs it: real processes, a real repository made with
//! `dvault init`, real gzip'd backups. Two runs at once on one repository: one stores, the other
//! exits with code 11 naming the holder; a bad config exits with 2 naming the key; `--json`
//! prints the report on stdout and JSON log lines on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn dvault() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dvault"))
}

fn make_backup(folder: &Path, name: &str) {
    let plain = folder.join(name.trim_end_matches(".gz"));
    let mut sql = String::from("COPY public.users (id, name) FROM stdin;\n");
    for i in 0..3000 {
        sql.push_str(&format!("{i}\tuser{i}\n"));
    }
    sql.push_str("\\.\n");
    std::fs::write(&plain, sql).unwrap();
    assert!(Command::new("gzip")
        .arg("-n")
        .arg(&plain)
        .status()
        .unwrap()
        .success());
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(settle: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("backups")).unwrap();
    std::fs::write(d.join("password"), "correct horse\n").unwrap();
    let init = dvault()
        .arg("init")
        .arg("--repo")
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
    make_backup(
        &d.join("backups"),
        "forum-2024-05-01-033000-v20240420000000.sql.gz",
    );
    let config = d.join("dvault.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"{settle}\"\n\
             [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n",
            d = d.display()
        ),
    )
    .unwrap();
    Setup { dir, config }
}

fn run(config: &Path, extra: &[&str]) -> Output {
    dvault()
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn two_concurrent_runs_one_stores_the_other_exits_11_naming_the_holder() {
    let s = setup("3s");
    // The first run holds the lock during its 3 s settle wait.
    let first = dvault()
        .arg("run")
        .arg("--config")
        .arg(&s.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_pid = first.id();
    std::thread::sleep(Duration::from_millis(1000));
    let second = run(&s.config, &[]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(11), "{stderr}");
    assert!(stderr.contains("locked by another dvault run"), "{stderr}");
    assert!(stderr.contains(&format!("pid {first_pid}")), "{stderr}");
    let first = first.wait_with_output().unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("forum: stored"));
    // A third run finds it stored.
    let third = run(&s.config, &[]);
    assert_eq!(third.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&third.stdout).contains("already stored"));
}

#[test]
fn a_run_killed_mid_way_leaves_a_lock_the_next_run_clears() {
    let s = setup("3s");
    let mut first = dvault()
        .arg("run")
        .arg("--config")
        .arg(&s.config)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    first.kill().unwrap(); // SIGKILL while it holds the lock
    first.wait().unwrap();
    let next = run(&s.config, &["--json"]);
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("cleared a stale lock"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&next.stdout).unwrap();
    assert_eq!(report["sites"][0]["outcome"], "stored");
    assert_eq!(report["exit_code"], 0);
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["time"].is_string() && v["level"].is_string() && v["message"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn config_errors_exit_2_naming_the_key() {
    let s = setup("0s");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, text.replace("settle = ", "setle = ")).unwrap();
    let out = run(&s.config, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sites.forum.source.setle"), "{stderr}");
    assert!(stderr.contains(&s.config.display().to_string()), "{stderr}");

    let out = dvault()
        .arg("run")
        .env("DVAULT_CONFIG", s.dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml: cannot read config file"));
}

#[test]
fn a_site_with_a_missing_folder_or_password_file_fails_alone_with_exit_3() {
    let s = setup("0s");
    let d = s.dir.path();
    let three = d.join("three.toml");
    let base = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(d.join("other-password"), "other secret\n").unwrap();
    std::fs::write(
        &three,
        format!(
            "{base}[sites.other.source]\nfolder = \"{d}/other-backups\"\n\
             [sites.other.repository]\nlocation = \"{d}/other-repo\"\n\
             password_file = \"{d}/other-password\"\n",
            d = d.display()
        ),
    )
    .unwrap();
    let out = run(&three, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stderr}\n{stdout}");
    assert!(stdout.contains("forum: stored"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "[other] {}: sites.other.source.folder: {}/other-backups: No such file or directory",
            three.display(),
            d.display()
        )),
        "{stderr}"
    );

    // The folder is there now, but the password file is gone: still only `other` fails.
    std::fs::create_dir(d.join("other-backups")).unwrap();
    std::fs::remove_file(d.join("other-password")).unwrap();
    let out = run(&three, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = |n: &str| {
        report["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["site"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(site("forum")["outcome"], "already_stored");
    assert_eq!(site("other")["outcome"], "failed");
    let err = site("other")["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("sites.other.repository.password_file")
            && err.contains("other-password")
            && err.contains("No such file or directory"),
        "{err}"
    );
    assert_eq!(report["exit_code"], 3);

    // A syntax mistake still stops the whole run with 2.
    let text = std::fs::read_to_string(&three).unwrap();
    std::fs::write(
        &three,
        text.replace("[sites.other.source]", "[sites.other.sourc]"),
    )
    .unwrap();
    let out = run(&three, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sites.other.sourc"));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_run_stopped_by_sigterm_pings_fail_records_the_failure_and_leaves_no_scratch() {
    let s = setup("0s");
    let d = s.dir.path();
    // A backup big enough that the run is still storing it when the signal comes.
    let plain = d.join("backups/forum-2024-05-02-033000-v20240420000000.sql");
    let mut sql = String::from("COPY public.posts (id, raw) FROM stdin;\n");
    let mut x: u64 = 7;
    for i in 0..400_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        sql.push_str(&format!("{i}\tpost {x:x} {:x}\n", x.rotate_left(17)));
    }
    sql.push_str("\\.\n");
    std::fs::write(&plain, sql).unwrap();
    assert!(Command::new("gzip")
        .args(["-n", "-5"])
        .arg(&plain)
        .status()
        .unwrap()
        .success());
    let pings = dvault_testkit::ping_server();
    let scratch = d.join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut cfg = std::fs::read_to_string(&s.config).unwrap();
    cfg = format!(
        "scratch_dir = \"{}\"\n{cfg}\
         [sites.forum.monitoring]\nping_start = \"{u}/start\"\nping_success = \"{u}/ok\"\n\
         ping_fail = \"{u}/fail\"\n[monitoring]\nprometheus_textfile = \"{}\"\n",
        scratch.display(),
        d.join("dvault.prom").display(),
        u = pings.url
    );
    std::fs::write(&s.config, cfg).unwrap();

    let mut child = dvault()
        .arg("run")
        .arg("--config")
        .arg(&s.config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let scratch_entries = || std::fs::read_dir(&scratch).unwrap().count();
    while scratch_entries() == 0 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!("ended early: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no scratch folder appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sends a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert_eq!(scratch_entries(), 0, "scratch left behind: {stderr}");
    assert!(stderr.contains("stopped by a signal"), "{stderr}");
    let got = pings.got.lock().unwrap().clone();
    let fail = got.iter().find(|(p, _)| p == "/fail");
    assert!(
        fail.is_some_and(|(_, body)| body.contains("stopped by a signal")),
        "pings: {got:?}"
    );
    let prom = std::fs::read_to_string(d.join("dvault.prom")).unwrap();
    assert!(
        prom.lines()
            .any(|l| l.starts_with("dvault_last_run_success{") && l.ends_with(" 0")),
        "{prom}"
    );
}
