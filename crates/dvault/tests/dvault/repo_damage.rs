//! One kind of damage per test, each with its exact outcome: which file `dvault check` names,
//! which snapshots still restore bit-exact, and what a refused restore says. (The random
//! campaign over every kind of file is `corruption_campaign.rs`.)
//!
//! Each test makes two snapshots, A then B, and damages a file that only backup B wrote, so
//! A must restore whatever happens to that file. Every command runs with a fresh cache: a
//! cached good copy of the file would hide the damage.

use crate::repo_support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use repo_support::{make_backups, sha256, Env};

struct Setup {
    env: Env,
    repo: PathBuf,
    /// (short id, full id, SHA-256) of A and B.
    a: (String, String, String),
    b: (String, String, String),
    /// Files that backup B added (relative paths), by folder.
    b_index: Vec<String>,
    b_snapshot: String,
    b_packs: Vec<String>,
    runs: std::cell::Cell<u32>,
}

fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_owned();
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn setup() -> Setup {
    let env = Env::new();
    let repo = env.path().join("repo");
    let r = repo.to_str().unwrap().to_string();
    env.ok(&r, &["init"]);
    let inputs = make_backups(env.path(), 3, 30_000);
    let id = |v: &serde_json::Value, f: &Path| {
        (
            v["snapshot"]["short_id"].as_str().unwrap().to_string(),
            v["snapshot"]["id"].as_str().unwrap().to_string(),
            sha256(f),
        )
    };
    let a = id(&env.backup(&r, &inputs[0]), &inputs[0]);
    let before = files(&repo);
    let b = id(&env.backup(&r, &inputs[2]), &inputs[2]);
    let added: Vec<String> = files(&repo).difference(&before).cloned().collect();
    let pick =
        |p: &str| -> Vec<String> { added.iter().filter(|f| f.starts_with(p)).cloned().collect() };
    let b_index = pick("index/");
    // Backup B also writes an audit snapshot: take B's own file by its id.
    let b_snapshot = format!("snapshots/{}", b.1);
    assert!(added.contains(&b_snapshot), "{added:?}");
    let b_packs = pick("data/");
    assert!(!b_index.is_empty() && !b_packs.is_empty(), "{added:?}");
    Setup {
        env,
        repo,
        a,
        b,
        b_index,
        b_snapshot,
        b_packs,
        runs: std::cell::Cell::new(0),
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        self.env
            .dvault(self.repo.to_str().unwrap())
            .env(
                "DVAULT_CACHE_DIR",
                self.env.path().join(format!("cache-{n}")),
            )
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs check --read-data, insists that it fails, and returns its whole output.
    fn check_fails(&self) -> String {
        let out = self.run(&["check", "--read-data"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "check should fail: {text}");
        text
    }

    /// Restores `snap` and returns the SHA-256 of the file, or the error text.
    fn restore(&self, snap: &(String, String, String)) -> Result<String, String> {
        let to = self
            .env
            .path()
            .join(format!("restored-{}", self.runs.get()));
        let out = self.run(&["restore", &snap.0, "--to", to.to_str().unwrap()]);
        if out.status.success() {
            let got = sha256(&to);
            fs::remove_file(&to).unwrap();
            Ok(got)
        } else {
            assert!(!to.exists(), "a failed restore leaves no file");
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn flip(&self, file: &str) {
        let p = self.repo.join(file);
        let mut bytes = fs::read(&p).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x10;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&p, bytes).unwrap();
    }
}

fn name(file: &str) -> &str {
    file.rsplit('/').next().unwrap()
}

#[test]
fn a_damaged_index_file_is_named_and_left_out_so_both_snapshots_still_restore() {
    let s = setup();
    let index = &s.b_index[0];
    s.flip(index);
    let text = s.check_fails();
    assert!(
        text.contains(&format!("index file index/{} is damaged", name(index))),
        "{text}"
    );
    // A does not need the damaged file; B's packs are found from their own headers.
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));
    let to = s.env.path().join("b");
    let out = s.run(&["restore", &s.b.0, "--to", to.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(sha256(&to), s.b.2);
    assert!(
        stderr.contains(&format!("index file index/{} ", name(index)))
            && stderr.contains("damaged"),
        "the restore warns which index file it left out: {stderr}"
    );
    // A backup still works and stores again what the damaged file listed.
    let more = make_backups(s.env.path(), 4, 30_000);
    let out = s.run(&["backup", more[1].to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_damaged_snapshot_file_costs_only_its_own_snapshot() {
    let s = setup();
    s.flip(&s.b_snapshot);
    let text = s.check_fails();
    assert!(
        text.contains(&format!("snapshot file {} is damaged", s.b_snapshot)),
        "{text}"
    );
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));
    let err = s.restore(&s.b).unwrap_err();
    assert!(
        err.contains(&format!("snapshot {}", s.b.1)) && err.contains("is damaged"),
        "{err}"
    );
    let out = s.run(&["snapshots", "--json"]);
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![s.a.1.as_str()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(name(&s.b_snapshot)));
}

#[test]
fn a_deleted_index_file_is_an_error_naming_the_packs_it_listed() {
    let s = setup();
    for f in &s.b_index {
        fs::remove_file(s.repo.join(f)).unwrap();
    }
    let text = s.check_fails();
    let line = text
        .lines()
        .find(|l| l.contains("an index file is missing"))
        .unwrap_or_else(|| panic!("no missing-index error: {text}"));
    for p in &s.b_packs {
        assert!(
            line.contains(&format!("data/{}", &name(p)[..8])),
            "{p} not named: {line}"
        );
        // Each finding once: rustic_core's own log of it is not printed beside dvault's list.
        let short = &name(p)[..8];
        let said = text
            .lines()
            .filter(|l| l.contains(&format!("pack {short} not referenced")))
            .count();
        assert_eq!(said, 1, "{p}: {text}");
    }
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));
}

#[test]
fn a_deleted_snapshot_is_named_from_the_ledger_and_forget_keeps_the_ledger_true() {
    let s = setup();
    let gone = s.repo.join(&s.b_snapshot);
    let saved = fs::read(&gone).unwrap();
    fs::remove_file(&gone).unwrap();
    let text = s.check_fails();
    assert!(
        text.contains(&format!("snapshot {} (", s.b.1)) && text.contains("is missing"),
        "{text}"
    );
    assert!(text.contains("snapshots.json"), "names the ledger: {text}");
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));

    // Put it back, then let dvault remove A: the ledger follows and check passes.
    fs::write(&gone, saved).unwrap();
    let out = s.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.run(&["forget", "--keep-daily", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.run(&["check"]);
    assert!(
        out.status.success(),
        "a snapshot dvault removed is not missing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ledger = fs::read_dir(s.env.path().join("state/repositories"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = fs::read_to_string(ledger).unwrap();
    assert!(!text.contains(&s.a.1) && text.contains(&s.b.1), "{text}");
}

#[test]
fn a_changed_unauthenticated_field_of_a_key_file_is_named_from_the_ledger() {
    let s = setup();
    let keys = s.repo.join("keys");
    let key = fs::read_dir(&keys).unwrap().next().unwrap().unwrap().path();
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&key).unwrap()).unwrap();
    // Only the encrypted master key is authenticated; the host name is not.
    json["hostname"] = serde_json::Value::from("someone-else");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&key, serde_json::to_vec(&json).unwrap()).unwrap();
    let text = s.check_fails();
    let id = key.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        text.contains(&format!("key file keys/{id} changed")),
        "{text}"
    );
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));
}

/// Neither a panic's words nor a backtrace: the messages of a damaged pack are dvault's own.
fn assert_no_crash_report(text: &str) {
    let lower = text.to_lowercase();
    for word in [
        "backtrace",
        "panicked",
        "internal failure",
        "rust_backtrace",
    ] {
        assert!(!lower.contains(word), "`{word}` in:\n{text}");
    }
}

#[test]
fn a_flipped_byte_in_a_data_pack_is_named_with_the_files_and_snapshots_it_costs() {
    let s = setup();
    // B's largest new pack holds its data blobs (its tree pack is small).
    let pack = s
        .b_packs
        .iter()
        .max_by_key(|p| fs::metadata(s.repo.join(p)).unwrap().len())
        .unwrap();
    s.flip(pack);
    // RUST_BACKTRACE=1 as an admin might have it set: still no backtrace without -vv.
    let to = s.env.path().join("restored-b");
    let out = s
        .env
        .dvault(s.repo.to_str().unwrap())
        .env("RUST_BACKTRACE", "1")
        .env("DVAULT_CACHE_DIR", s.env.path().join("cache-restore"))
        .args(["restore", &s.b.0, "--to", to.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!to.exists(), "a failed restore leaves no file");
    assert!(
        err.contains(&format!("pack data/{}", name(pack))),
        "names the pack: {err}"
    );
    // B's new packs hold its directory-format dump (its uploads are A's, deduplicated).
    assert!(
        err.contains(&format!("snapshot {} (", s.b.0)) && err.contains("db/toc.dat"),
        "names the snapshot and the files it costs: {err}"
    );
    assert_no_crash_report(&err);
    assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");
    // A does not need the pack.
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));

    let text = s.check_fails();
    assert_no_crash_report(&text);
    let costs = text
        .lines()
        .find(|l| l.contains(&format!("pack data/{} costs", name(pack))))
        .unwrap_or_else(|| panic!("no line with what the pack costs:\n{text}"));
    assert!(costs.contains(&format!("snapshot {}", s.b.0)), "{costs}");
    assert!(
        !costs.contains(&format!("snapshot {}", s.a.0)),
        "A does not need it: {costs}"
    );
}

#[test]
fn a_flipped_byte_in_a_pack_header_fails_a_full_read_data_check_naming_the_pack() {
    let s = setup();
    // A pack's header (the encrypted list of its blobs) sits at its end, before the 4-byte
    // length. B's smallest new pack holds trees only (its root tree among them): rustic_core
    // never reads such a pack, restic does.
    let pack = s
        .b_packs
        .iter()
        .min_by_key(|p| fs::metadata(s.repo.join(p)).unwrap().len())
        .unwrap();
    let p = s.repo.join(pack);
    let mut bytes = fs::read(&p).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&p, bytes).unwrap();
    let text = s.check_fails();
    assert!(
        text.contains(&format!("pack data/{} does not match its name", name(pack))),
        "{text}"
    );
    // Both snapshots still restore: the blobs themselves are intact.
    assert_eq!(s.restore(&s.a), Ok(s.a.2.clone()));
    assert_eq!(s.restore(&s.b), Ok(s.b.2.clone()));
}
