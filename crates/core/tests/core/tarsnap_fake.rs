//! The Tarsnap store end to end, with a stand-in for the `tarsnap` client: the real client
//! cannot be installed here (it needs a Tarsnap account). The stand-in is a bash script that
//! records its argv, checks the key file it is given has the rights the operation needs
//! (`write`, or `admin` for read and delete), and keeps archives in a temporary directory. Like
//! the real client it takes the stream's members apart (`-c @-`) and writes them back as a new
//! tar (`-r`), re-encoded by Python's tarfile in PAX format, so the rebuild is proven not to
//! depend on dvault's own header bytes. The backups are real GNU tar + gzip files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use dvault_core::repo::tarsnap::{TarsnapConfig, TarsnapStore};
use sha2::{Digest, Sha256};

const FAKE_TARSNAP: &str = r#"#!/bin/bash
# Stand-in for the tarsnap client (see the test's doc comment).
set -euo pipefail
dir="$(dirname "$0")/.."
printf '%s\n' "$*" >> "$dir/argv.log"
mode=; name=; key=; stdin=
while [ $# -gt 0 ]; do
  case "$1" in
    -c|-r|-d|--list-archives) mode=$1 ;;
    -f) name=$2; shift ;;
    --keyfile) key=$2; shift ;;
    --cachedir) [ -d "$2" ] || { echo "tarsnap: cache dir $2 missing" >&2; exit 1; }; shift ;;
    @-) stdin=1 ;;
    *) echo "tarsnap: unexpected argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -r "$key" ] || { echo "tarsnap: cannot read key file $key" >&2; exit 1; }
rights=$(cat "$key")
need() { [ "$rights" = admin ] || { echo "tarsnap: key $key lacks $1 rights" >&2; exit 1; }; }
store="$dir/archives"; mkdir -p "$store"
case "$mode" in
  -c)
    [ -n "$stdin" ] || { echo "tarsnap: -c without @-" >&2; exit 2; }
    [ ! -e "$store/$name" ] || { echo "tarsnap: archive $name already exists" >&2; exit 1; }
    python3 -c '
import sys, tarfile
src = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as dst:
    for m in src:
        dst.addfile(m, src.extractfile(m) if m.isfile() else None)
' "$store/.$name.part"
    mv "$store/.$name.part" "$store/$name" ;;
  -r) need read; cat "$store/$name" ;;
  -d) need delete; rm "$store/$name" ;;
  --list-archives) need read; ls "$store" ;;
  *) echo "tarsnap: no mode" >&2; exit 2 ;;
esac
"#;

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("cache")).unwrap();
        let bin = root.join("bin/tarsnap");
        std::fs::write(&bin, FAKE_TARSNAP).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(root.join("write.key"), "write").unwrap();
        std::fs::write(root.join("admin.key"), "admin").unwrap();
        Fake { _tmp: tmp, root }
    }

    fn store(&self, admin: bool, keep_last: Option<u32>) -> TarsnapStore {
        TarsnapStore::new(TarsnapConfig {
            keyfile: self.root.join("write.key"),
            admin_keyfile: admin.then(|| self.root.join("admin.key")),
            cachedir: Some(self.root.join("cache")),
            binary: Some(self.root.join("bin/tarsnap")),
            prefix: "dvault-".into(),
            keep_last,
            keep_daily: None,
        })
    }

    fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn archives(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("archives"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A format-A-like backup made with the real tar and gzip, named as Discourse names it.
fn backup(dir: &Path, day: u32) -> PathBuf {
    let name = format!("forum-2026-01-0{day}-033014-v20250612081530.tar.gz");
    let script = format!(
        "set -euo pipefail; rm -rf src; mkdir -p src/uploads/default/original/1X
         seq 1 {n} | sed 's/^/INSERT INTO posts VALUES (/' | gzip -n -4 > src/dump.sql.gz
         head -c 200000 /dev/zero | tr '\\0' x > src/uploads/default/original/1X/a.png
         tar --format=gnu -cf - -C src dump.sql.gz uploads | gzip -5 > {name}",
        n = 20000 + day * 100
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(name)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn backup_streams_into_tarsnap_and_restore_streams_back_bit_exact() {
    let fake = Fake::new();
    let work = tempfile::tempdir().unwrap();
    let file = backup(work.path(), 1);
    let store = fake.store(true, None);
    let done = store.backup("forum", &file).unwrap();
    assert_eq!(done.archive, "dvault-forum-2026-01-01-033014");
    assert_eq!(fake.archives(), ["dvault-forum-2026-01-01-033014"]);
    let original = std::fs::read(&file).unwrap();
    assert_eq!(done.original.sha256, sha256(&original));

    let mut out = Vec::new();
    let digest = store.restore(&done.archive, &mut out).unwrap();
    assert_eq!(sha256(&out), sha256(&original));
    assert_eq!(digest.sha256, sha256(&original));

    let cache = fake.root.join("cache");
    let (w, a, c) = (
        fake.root.join("write.key"),
        fake.root.join("admin.key"),
        cache.display(),
    );
    assert_eq!(
        fake.argv(),
        [
            format!(
                "-c -f dvault-forum-2026-01-01-033014 --keyfile {} --cachedir {c} @-",
                w.display()
            ),
            format!(
                "-r -f dvault-forum-2026-01-01-033014 --keyfile {}",
                a.display()
            ),
        ]
    );
}

#[test]
fn a_write_only_host_can_back_up_but_not_read_or_delete() {
    let fake = Fake::new();
    let work = tempfile::tempdir().unwrap();
    let file = backup(work.path(), 1);
    let store = fake.store(false, Some(1));
    store.backup("forum", &file).unwrap();
    let err = store.list().unwrap_err().to_string();
    assert!(err.contains("admin_keyfile"), "{err}");
    let err = store
        .restore("dvault-forum-2026-01-01-033014", &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin_keyfile"), "{err}");
    // Only the backup ran the client.
    assert_eq!(fake.argv().len(), 1);
}

#[test]
fn retention_deletes_old_archives_with_the_admin_key() {
    let fake = Fake::new();
    let work = tempfile::tempdir().unwrap();
    let store = fake.store(true, Some(2));
    for day in 1..=3 {
        store.backup("forum", &backup(work.path(), day)).unwrap();
    }
    let deleted = store.apply_retention("forum").unwrap();
    assert_eq!(deleted, ["dvault-forum-2026-01-01-033014"]);
    assert_eq!(
        fake.archives(),
        [
            "dvault-forum-2026-01-02-033014",
            "dvault-forum-2026-01-03-033014"
        ]
    );
    let log = fake.argv();
    assert!(
        log.iter().any(
            |l| l.starts_with("-d -f dvault-forum-2026-01-01-033014 --keyfile")
                && l.contains("admin.key")
        ),
        "{log:?}"
    );
}

#[test]
fn a_failing_expansion_leaves_no_archive_and_names_the_file() {
    let fake = Fake::new();
    let work = tempfile::tempdir().unwrap();
    let bad = work
        .path()
        .join("forum-2026-01-01-033014-v20250612081530.tar.gz");
    std::fs::write(&bad, b"this is not a backup").unwrap();
    let err = format!(
        "{:#}",
        fake.store(true, None).backup("forum", &bad).unwrap_err()
    );
    assert!(
        err.contains("forum-2026-01-01-033014-v20250612081530.tar.gz"),
        "{err}"
    );
    assert!(err.contains("neither gzip nor tar"), "{err}");
    assert!(fake.archives().is_empty(), "{:?}", fake.archives());
}

#[test]
fn a_failing_client_is_reported_with_what_it_said() {
    let fake = Fake::new();
    let work = tempfile::tempdir().unwrap();
    let file = backup(work.path(), 1);
    let store = fake.store(true, None);
    store.backup("forum", &file).unwrap();
    // The same archive name again: the client refuses, and the error says why.
    let err = format!("{:#}", store.backup("forum", &file).unwrap_err());
    assert!(err.contains("already exists"), "{err}");
    let err = format!(
        "{:#}",
        store
            .restore("dvault-forum-1999-01-01-000000", &mut Vec::new())
            .unwrap_err()
    );
    assert!(err.contains("dvault-forum-1999-01-01-000000"), "{err}");
}

/// `dvault run` with a Tarsnap site: the first run stores the newest simulator backup, a second
/// run skips it (known from the host's ledger, since a write-only key cannot list archives), a
/// newer backup is stored and retention (admin key) deletes the older archive; the scheduled
/// drill reads the newest archive back and loads it into a throwaway PostgreSQL cluster.
#[test]
fn dvault_run_stores_skips_retains_and_drills_a_tarsnap_site() {
    use dvault_core::config::Config;
    use dvault_core::drill::RepoDrillHook;
    use dvault_core::run::{self, Outcome, RepoOpener, RunOptions};

    let fake = Fake::new();
    let work = tempfile::tempdir().unwrap();
    let pool = work.path().join("pool");
    let opts = dvault_sim::Options {
        formats: vec![dvault_sim::Format::A],
        days: 1,
        ..dvault_sim::Options::small(5)
    };
    let files = dvault_sim::generate(&opts, &pool).unwrap();
    let folder = work.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    let copy_in = |i: usize| {
        let f = &files[i].path;
        std::fs::copy(f, folder.join(f.file_name().unwrap())).unwrap();
    };
    copy_in(0);
    let config_path = work.path().join("dvault.toml");
    std::fs::write(
        &config_path,
        format!(
            "state_dir = \"{w}/state\"\n\
             [sites.forum.source]\nfolder = \"{folder}\"\nsettle = \"0s\"\n\
             [sites.forum.tarsnap]\nkeyfile = \"{r}/write.key\"\nadmin_keyfile = \"{r}/admin.key\"\n\
             binary = \"{r}/bin/tarsnap\"\ncachedir = \"{r}/cache\"\nkeep_last = 1\n\
             [sites.forum.drill]\nevery = \"1s\"\n",
            w = work.path().display(),
            folder = folder.display(),
            r = fake.root.display()
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    config.check_files().unwrap();
    let hook = RepoDrillHook { scratch_dir: None };
    let run_once = || {
        let mut lines = Vec::new();
        let mut log = |e: &run::LogEvent<'_>| {
            lines.push(format!(
                "- {} [{}] {}",
                e.level,
                e.site.unwrap_or("-"),
                e.message
            ))
        };
        let report = run::run(
            &config,
            &RepoOpener::new(&config),
            RunOptions {
                site: None,
                drill: Some(&hook),
                log: &mut log,
            },
        )
        .unwrap();
        (report.sites[0].clone(), lines.join("\n"))
    };

    let (first, log) = run_once();
    assert_eq!(first.outcome, Outcome::Stored, "{log}");
    let first_archive = first.snapshot.clone().unwrap();
    assert!(
        first_archive.starts_with("dvault-forum-2026-01-01-"),
        "{first_archive}"
    );
    let drill = first.drill.clone().unwrap_or_default();
    assert!(drill.contains(" restored: "), "{drill}\n{log}");
    assert_eq!(fake.archives(), std::slice::from_ref(&first_archive));

    let (second, log) = run_once();
    assert_eq!(second.outcome, Outcome::AlreadyStored, "{log}");
    assert_eq!(second.sha256, first.sha256);

    copy_in(1);
    let (third, log) = run_once();
    assert_eq!(third.outcome, Outcome::Stored, "{log}");
    assert_eq!(
        third.retention.as_deref(),
        Some("deleted 1 archive(s)"),
        "{log}"
    );
    let third_archive = third.snapshot.clone().unwrap();
    assert!(
        third_archive.starts_with("dvault-forum-2026-01-02-"),
        "{third_archive}"
    );
    assert_eq!(fake.archives(), [third_archive]);
    let ledger = std::fs::read_to_string(work.path().join("state/forum.tarsnap.json")).unwrap();
    assert!(!ledger.contains(&first_archive), "{ledger}");
    assert!(
        ledger.contains(third.sha256.as_deref().unwrap()),
        "{ledger}"
    );
}

#[test]
fn a_tarsnap_site_rejects_repository_only_settings_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[sites.forum.tarsnap]\nkeyfile = \"/k\"\n";
    for (extra, key, why) in [
        (
            "[sites.forum.check]\nevery = \"1d\"\n",
            "sites.forum.check",
            "fsck",
        ),
        (
            "[sites.forum.drill]\nevery = \"1d\"\n",
            "sites.forum.drill",
            "admin_keyfile",
        ),
        (
            "[sites.forum.repository]\nlocation = \"/r\"\npassword_file = \"/p\"\n",
            "sites.forum.tarsnap",
            "not both",
        ),
    ] {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let err = dvault_core::config::Config::load(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(key) && err.contains(why), "{err}");
    }
    let path = dir.path().join("none.toml");
    std::fs::write(&path, "[sites.forum.source]\nfolder = \"/b\"\n").unwrap();
    let err = dvault_core::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sites.forum.repository") && err.contains("[tarsnap]"),
        "{err}"
    );
}
