//! The everyday walkthrough of a new admin (issue 21): every command reads the config file
//! `dvault run` reads, so a backup, forget or check by hand shares run's repository, password,
//! locks, ledger and cache (under dvault's name); `run` stores the backups waiting in the folder
//! oldest first, bounded by `source.backfill_limit`; retention groups by the config's site and
//! keeps the most complete backup of a day; each command's help lists only its own options.
//! Real repositories on disk, real gzip/tar backups, and the stock restic reading the result.

use crate::repo_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use repo_support::make_backups;

/// A host with a config file, a backups folder and a home of its own.
struct Host {
    tmp: tempfile::TempDir,
}

impl Host {
    fn new(extra: &str) -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for sub in ["backups", "made", "home"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        let pw = d.join("password");
        fs::write(&pw, "the walkthrough's password\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "state_dir = \"{d}/state\"\n\
             [sites.main.source]\nfolder = \"{d}/backups\"\nsettle = \"10ms\"\n{extra}\
             [sites.main.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n\
             [sites.main.retention]\nkeep_daily = 1\nforget = true\n",
            d = d.display()
        );
        let cfg = d.join("dvault.toml");
        fs::write(&cfg, text).unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
        Host { tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `dvault ARGS` as the admin types it: no repository flags, the config from
    /// DVAULT_CONFIG, and a home of its own (where rustic's cache would go).
    fn dvault(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dvault"));
        for (k, _) in std::env::vars() {
            if k.starts_with("DVAULT_") || k == "STATE_DIRECTORY" || k == "CACHE_DIRECTORY" {
                c.env_remove(k);
            }
        }
        let home = self.path().join("home");
        c.env("DVAULT_CONFIG", self.path().join("dvault.toml"))
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("TMPDIR", self.path())
            .args(args);
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.dvault(args);
        assert!(
            out.status.success(),
            "dvault {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn snapshots(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["snapshots", "--json"])).unwrap()
    }

    /// The stock restic's list of the repository's snapshots, after its own check passed.
    fn restic_snapshots(&self) -> Vec<serde_json::Value> {
        let restic = |args: &[&str]| {
            let out = Command::new("restic")
                .arg("-r")
                .arg(self.path().join("repo"))
                .arg("--password-file")
                .arg(self.path().join("password"))
                .arg("--no-cache")
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "restic {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        restic(&["check"]);
        // Backups only: the audit trail's records are snapshots too (tag dvault-audit).
        serde_json::from_slice(&restic(&["snapshots", "--json", "--tag", "dvault"])).unwrap()
    }

    /// Moves made backups into the folder, as Discourse would have written them.
    fn put_in_folder(&self, files: &[PathBuf]) -> Vec<PathBuf> {
        files
            .iter()
            .map(|f| {
                let to = self.path().join("backups").join(f.file_name().unwrap());
                fs::rename(f, &to).unwrap();
                to
            })
            .collect()
    }
}

fn file_names(snaps: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = snaps
        .iter()
        .map(|s| s["meta"]["file_name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn a_backup_by_hand_and_the_timers_run_share_locks_ledger_and_cache_so_check_stays_quiet() {
    let h = Host::new("");
    let [a, sql, b]: [PathBuf; 3] = make_backups(&h.path().join("made"), 1, 20_000)
        .try_into()
        .unwrap();
    let [a, sql, b]: [PathBuf; 3] = h.put_in_folder(&[a, sql, b]).try_into().unwrap();

    // No --repo, --password-file or --state-dir anywhere: the config says it all.
    h.ok(&["init"]);
    let stored = h.ok(&["backup", a.to_str().unwrap()]);
    assert!(stored.contains("added"), "{stored}");

    // The timer's run is refused while the admin's command holds this host's lock (and the
    // other way round): both take the same lock file in the config's state folder.
    let state = h.path().join("state");
    let key = dvault_core::lock::location_key(&h.path().join("repo").display().to_string());
    let held = dvault_core::lock::RepoLock::acquire(&state, &key, Default::default()).unwrap();
    let out = h.dvault(&["backup", sql.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(11), "{out:?}");
    drop(held);

    // The run stores what is newer than the hand-made snapshot (the .sql.gz, then the .tar),
    // then retention (keep_daily = 1) keeps one backup of the day: the newest with uploads.
    let report: serde_json::Value = serde_json::from_str(&h.ok(&["run", "--json"])).unwrap();
    let site = &report["sites"][0];
    assert_eq!(site["outcome"], "stored", "{report:#}");
    assert_eq!(site["file"], name(&b).as_str());
    assert_eq!(site["backfilled"][0]["file"], name(&sql).as_str());
    assert!(
        site["retention"].as_str().unwrap().contains("removed 2"),
        "{report:#}"
    );
    let snaps = h.snapshots();
    assert_eq!(file_names(&snaps), [name(&b)]);
    // The config's site name, not the file name's title ("forum").
    assert_eq!(snaps[0]["meta"]["site"], "main");
    assert_eq!(snaps[0]["meta"]["uploads"], 4);

    // The hand-made snapshot that run's retention removed is gone from the one ledger too:
    // no false alarm of a snapshot "deleted or lost outside dvault".
    let out = h.dvault(&["check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("missing"), "{text}");

    // One cache, under dvault's name in the state folder; nothing in ~/.cache/rustic, and no
    // second state folder in the home.
    assert!(state.join("cache").is_dir());
    assert!(!h.path().join("home/.cache/rustic").exists());
    assert!(!h.path().join("home/.local/state/dvault").exists());

    // The stock restic reads the repository and sees the same one snapshot.
    assert_eq!(h.restic_snapshots().len(), 1);
}

#[test]
fn run_stores_the_waiting_backups_oldest_first_up_to_backfill_limit() {
    let h = Host::new("backfill_limit = 4\n");
    // Keep everything here: this test is about what is stored.
    let cfg = h.path().join("dvault.toml");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("keep_daily = 1\nforget = true\n", "keep_daily = 10\n");
    fs::write(&cfg, text).unwrap();
    let mut files = make_backups(&h.path().join("made"), 1, 8_000);
    files.extend(make_backups(&h.path().join("made"), 2, 8_000));
    let files = h.put_in_folder(&files);
    h.ok(&["init"]);

    let out = h.dvault(&["run", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("2 older backup(s) not stored: source.backfill_limit = 4"),
        "{log}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = &report["sites"][0];
    let older: Vec<&str> = site["backfilled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    // The newest four: day 1's .tar, then day 2's three, oldest first.
    assert_eq!(
        older,
        vec![name(&files[2]), name(&files[3]), name(&files[4])]
    );
    assert_eq!(site["file"], name(&files[5]).as_str());
    assert_eq!(site["snapshots"], 4);

    // Nothing new: nothing stored, the two left behind stay behind.
    let report: serde_json::Value = serde_json::from_str(&h.ok(&["run", "--json"])).unwrap();
    assert_eq!(report["sites"][0]["outcome"], "already_stored");
    assert_eq!(report["sites"][0]["backfilled"], serde_json::json!([]));

    // Each stored backup restores bit for bit, read by the stock restic too.
    assert_eq!(h.restic_snapshots().len(), 4);
    for s in h.snapshots() {
        let f = files
            .iter()
            .find(|f| name(f) == s["meta"]["file_name"].as_str().unwrap())
            .unwrap();
        assert_eq!(s["meta"]["sha256"], repo_support::sha256(f).as_str());
    }
}

#[test]
fn forget_keeps_the_most_complete_backup_of_a_day_and_the_dry_run_says_so() {
    let h = Host::new("");
    let [a, sql, _b]: [PathBuf; 3] = make_backups(&h.path().join("made"), 3, 20_000)
        .try_into()
        .unwrap();
    h.ok(&["init"]);
    // The .tar.gz with uploads at 03:30:01, a database-only .sql.gz a second later.
    h.ok(&["backup", a.to_str().unwrap()]);
    h.ok(&["backup", sql.to_str().unwrap()]);

    let dry = h.ok(&["forget", "--keep-daily", "1", "--dry-run"]);
    let line = |f: &Path| {
        dry.lines()
            .find(|l| l.contains(&name(f)))
            .unwrap_or_else(|| panic!("{dry}"))
            .to_string()
    };
    assert!(line(&a).contains(" keep "), "{dry}");
    assert!(
        line(&a).contains("the most complete backup of its daily period"),
        "{dry}"
    );
    assert!(line(&sql).contains(" remove "), "{dry}");
    assert!(
        line(&sql).contains(&format!(
            "keeps the more complete {} (with 4 uploads)",
            name(&a)
        )),
        "{dry}"
    );
    assert_eq!(h.snapshots().len(), 2, "a dry run removes nothing");

    h.ok(&["forget", "--keep-daily", "1"]);
    assert_eq!(file_names(&h.snapshots()), [name(&a)]);
    assert_eq!(h.restic_snapshots().len(), 1);
}

#[test]
fn site_selects_a_config_site_and_flags_still_win() {
    let h = Host::new("");
    let cfg = h.path().join("dvault.toml");
    // A second site with its own repository and password.
    let d = h.path().display().to_string();
    let mut text = fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "[sites.other.source]\nfolder = \"{d}/backups\"\n\
         [sites.other.repository]\nlocation = \"{d}/other-repo\"\npassword_file = \"{d}/other-pw\"\n"
    ));
    fs::write(&cfg, text).unwrap();
    fs::write(h.path().join("other-pw"), "other\n").unwrap();

    let out = h.dvault(&["snapshots"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has several sites (main, other): choose one with --site NAME"),
        "{err}"
    );
    let out = h.dvault(&["snapshots", "--site", "nope"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--site nope: no such site") && err.contains("(sites: main, other)"),
        "{err}"
    );

    h.ok(&["init", "--site", "other"]);
    assert!(h.path().join("other-repo/config").is_file());
    assert!(!h.path().join("repo").exists());
    // --repo wins over the site's repository (and, being another repository, takes none of
    // the site's files: the password comes from the flag).
    fs::write(h.path().join("third-pw"), "third\n").unwrap();
    let third = h.path().join("third-repo");
    h.ok(&[
        "init",
        "--site",
        "other",
        "--repo",
        third.to_str().unwrap(),
        "--password-file",
        h.path().join("third-pw").to_str().unwrap(),
    ]);
    assert!(third.join("config").is_file());
    assert!(h
        .ok(&["snapshots", "--site", "other"])
        .contains("0 snapshots"));
}

#[test]
fn each_command_lists_only_the_options_it_takes() {
    let help = |cmd: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_dvault"))
            .args([cmd, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for cmd in ["expand", "rebuild", "inspect", "run"] {
        let h = help(cmd);
        for opt in ["--repo", "--password-file", "--cache-dir", "--state-dir"] {
            assert!(!h.contains(opt), "{cmd} --help lists {opt}:\n{h}");
        }
    }
    for cmd in ["backup", "snapshots", "restore", "check", "forget", "drill"] {
        let h = help(cmd);
        for opt in ["--repo", "--password-file", "--config", "--site"] {
            assert!(h.contains(opt), "{cmd} --help lacks {opt}:\n{h}");
        }
    }
    assert!(!help("snapshots").contains("--scratch-dir"));
    assert!(help("backup").contains("--scratch-dir"));
    // `run` takes its repositories from the config: --repo is a usage error (exit 2).
    let out = Command::new(env!("CARGO_BIN_EXE_dvault"))
        .args(["run", "--repo", "/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
