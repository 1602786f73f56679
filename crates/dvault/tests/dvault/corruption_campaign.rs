//! Corruption campaign: one byte flipped, a file truncated, or a file deleted, in every kind of
//! repository file (packs, index, snapshots, keys, config), each on a fresh copy of the same
//! repository. `dvault check --read-data` must fail with a non-zero exit and say what is wrong;
//! a snapshot that does not use the damaged file must still restore bit-exact, and no restore
//! may ever give different bytes (it fails instead).
//!
//! Which snapshots a file can affect follows from the format: backup number k writes new packs,
//! one index file and one snapshot file; those hold only blobs that backup k added, so every
//! snapshot made before backup k uses none of them. `config` and `keys/` serve every snapshot.
//!
//! `DVAULT_CORRUPT_SEED` repeats a campaign (the seed is printed); `DVAULT_CORRUPT_ROUNDS=N`
//! runs N rounds of all cases, each with other random files and offsets.

use crate::repo_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use repo_support::{env_number, make_backups, seed_from_env, sha256, Env, Rng};

/// Every file of the repository, relative, with the backup that wrote it (0: `init`).
fn files_of(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(repo)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip,
    Truncate,
    Delete,
}

/// Damages `file` and returns a description (which byte, how much).
fn damage(file: &Path, how: Damage, rng: &mut Rng) -> String {
    let len = fs::metadata(file).unwrap().len() as usize;
    match how {
        Damage::Flip => {
            let mut bytes = fs::read(file).unwrap();
            let at = rng.below(len);
            bytes[at] ^= 1 << rng.below(8);
            make_writable(file);
            fs::write(file, bytes).unwrap();
            format!("flipped a bit of byte {at} of {len}")
        }
        Damage::Truncate => {
            let to = rng.below(len);
            make_writable(file);
            fs::OpenOptions::new()
                .write(true)
                .open(file)
                .unwrap()
                .set_len(to as u64)
                .unwrap();
            format!("truncated from {len} to {to} bytes")
        }
        Damage::Delete => {
            fs::remove_file(file).unwrap();
            "deleted".to_string()
        }
    }
}

fn make_writable(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(file, fs::Permissions::from_mode(0o600)).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn every_kind_of_damage_is_detected_and_unaffected_snapshots_restore() {
    let rounds: usize = env_number("DVAULT_CORRUPT_ROUNDS", 1);
    let seed = seed_from_env("DVAULT_CORRUPT_SEED");
    eprintln!("corruption campaign: {rounds} round(s), DVAULT_CORRUPT_SEED={seed}");
    let mut rng = Rng(seed);

    let env = Env::new();
    let pristine = env.path().join("pristine");
    let repo_s = pristine.to_str().unwrap();
    env.ok(repo_s, &["init"]);
    let mut born: BTreeMap<String, usize> =
        files_of(&pristine).into_iter().map(|f| (f, 0)).collect();
    // Three backups (formats A, SQL only, B), each a snapshot of its own.
    let inputs = make_backups(env.path(), 5, 60_000);
    let mut snaps: Vec<(String, String)> = Vec::new(); // (short id, SHA-256)
    for (k, file) in inputs.iter().enumerate() {
        let out = env.backup(repo_s, file);
        let id = out["snapshot"]["short_id"].as_str().unwrap().to_string();
        snaps.push((id, sha256(file)));
        for f in files_of(&pristine) {
            born.entry(f).or_insert(k + 1);
        }
    }
    env.ok(repo_s, &["check", "--read-data"]);

    let kinds = ["data/", "index/", "snapshots/", "keys/", "config"];
    let mut cases = 0;
    let mut failures: Vec<String> = Vec::new();
    let (mut restores_ok, mut restores_refused) = (0, 0);
    for round in 0..rounds {
        for kind in kinds {
            for how in [Damage::Flip, Damage::Truncate, Damage::Delete] {
                cases += 1;
                let candidates: Vec<(&String, &usize)> =
                    born.iter().filter(|(f, _)| f.starts_with(kind)).collect();
                assert!(!candidates.is_empty(), "no {kind} file");
                let (file, &k) = candidates[rng.below(candidates.len())];
                let case_dir = env.path().join(format!("case-{round}-{cases}"));
                copy_tree(&pristine, &case_dir);
                let what = damage(&case_dir.join(file), how, &mut rng);
                let tag = format!("{file} ({what}, written by backup {k})");
                let repo = case_dir.to_str().unwrap();
                // A fresh cache each time: a cached copy must not hide the damage.
                let cache = env.path().join(format!("cache-{round}-{cases}"));
                let run = |args: &[&str]| {
                    env.dvault(repo)
                        .env("DVAULT_CACHE_DIR", &cache)
                        .args(args)
                        .output()
                        .unwrap()
                };

                let check = run(&["check", "--read-data"]);
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&check.stdout),
                    String::from_utf8_lossy(&check.stderr)
                );
                eprintln!("--- {tag}: exit {:?}\n{}", check.status.code(), text.trim());
                if check.status.success() {
                    failures.push(format!("{tag}: check --read-data passed"));
                } else if !names_the_damage(&text, file, matches!(how, Damage::Delete), &born, k) {
                    failures.push(format!("{tag}: check's message does not say what: {text}"));
                }

                for (j, (id, want)) in snaps.iter().enumerate() {
                    let to = env.path().join(format!("restored-{cases}-{id}"));
                    let out = run(&["restore", id, "--to", to.to_str().unwrap()]);
                    let unaffected = j + 1 < k;
                    if out.status.success() {
                        let got = sha256(&to);
                        fs::remove_file(&to).unwrap();
                        if &got != want {
                            failures.push(format!("{tag}: restore of {id} gave other bytes"));
                        } else {
                            restores_ok += 1;
                        }
                    } else if unaffected {
                        failures.push(format!(
                            "{tag}: snapshot {id} does not use this file but fails to restore: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    } else {
                        restores_refused += 1;
                        assert!(!to.exists(), "a failed restore leaves no file");
                    }
                }
                fs::remove_dir_all(&case_dir).unwrap();
                let _ = fs::remove_dir_all(&cache);
            }
        }
    }
    eprintln!(
        "corruption campaign: {cases} cases, {} failures; restores: {restores_ok} exact, \
         {restores_refused} refused (snapshots using the damaged file), 0 wrong",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether check's message points at the damage: the damaged file's id (its first 8 hex
/// digits), or for the files every snapshot needs, what they are. A deleted index file's id is
/// nowhere any more; check must then name a pack that only that index listed (one written by
/// the same backup) and say that an index file is missing.
fn names_the_damage(
    text: &str,
    file: &str,
    deleted: bool,
    born: &BTreeMap<String, usize>,
    backup: usize,
) -> bool {
    let lower = text.to_lowercase();
    if file.starts_with("index/") && deleted {
        let orphan_named = born
            .iter()
            .filter(|(f, &k)| k == backup && f.starts_with("data/"))
            .any(|(f, _)| lower.contains(&format!("data/{}", short_name(f))));
        if orphan_named && lower.contains("an index file is missing") {
            return true;
        }
    }
    lower.contains(&short_name(file))
        || (file == "config" && lower.contains("config"))
        || (file.starts_with("keys/") && lower.contains("key"))
}

/// The first 8 hex digits of a repository file's name.
fn short_name(file: &str) -> String {
    let name = PathBuf::from(file)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    name[..name.len().min(8)].to_string()
}
