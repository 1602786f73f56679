//! Fault campaign: `dvault backup` killed with SIGKILL at random moments, again and again, on
//! one repository. After every kill the repository must pass `dvault check --read-data`, every
//! snapshot stored before must restore bit-exact, and the interrupted backup, run again, must
//! succeed. Nothing a killed run leaves behind (scratch folders, cache, half-written packs)
//! may break a later run.
//!
//! What is restored after each kill: `check --read-data` reads and verifies every blob of every
//! snapshot each time; on top of that, every stored snapshot is restored and compared after
//! every 5th kill and at the end, and after the other kills the oldest, the newest and two
//! random earlier ones (restoring all of them after every kill grows quadratically;
//! `DVAULT_FAULT_RESTORE_ALL=1` does it anyway).
//!
//! CI runs `DVAULT_FAULT_RUNS` kills (default 20); more on demand, e.g.
//! `DVAULT_FAULT_RUNS=200 cargo test -p dvault --test dvault fault_campaign:: -- --nocapture`.
//! `DVAULT_FAULT_SEED` repeats a campaign (the seed is printed).

use crate::repo_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use repo_support::{env_number, noise, seed_from_env, sha256, sql_text, Env, Rng};

/// A small SQL-only Discourse backup, different for every `i` (new rows and new random bytes,
/// so every backup writes new packs), made with the real `gzip -4 -n` as pg_dump would.
fn backup_file(dir: &Path, i: u64) -> PathBuf {
    let name = format!(
        "forum-2024-{:02}-{:02}-{:02}{:02}{:02}-v20240229123456.sql.gz",
        1 + (i / 28) % 12,
        1 + i % 28,
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60
    );
    let plain = dir.join(format!("dump-{i}.sql"));
    let mut text = sql_text(3000, i).into_bytes();
    // Random bytes as a bytea-like hex column: new data every run, still text.
    text.extend_from_slice(hex::encode(noise(1000 + i, 200_000)).as_bytes());
    text.push(b'\n');
    fs::write(&plain, text).unwrap();
    let out = std::process::Command::new("gzip")
        .args(["-4", "-n", "-c"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::remove_file(&plain).unwrap();
    let path = dir.join(name);
    fs::write(&path, out.stdout).unwrap();
    path
}

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |rd| rd.count())
}

#[test]
fn backups_killed_at_random_moments_leave_a_sound_repository() {
    let runs: usize = env_number("DVAULT_FAULT_RUNS", 20);
    let seed = seed_from_env("DVAULT_FAULT_SEED");
    eprintln!("fault campaign: {runs} kills, DVAULT_FAULT_SEED={seed}");
    let mut rng = Rng(seed);

    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = repo_path.to_str().unwrap();
    let scratch = env.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let files = env.path().join("files");
    fs::create_dir(&files).unwrap();
    env.ok(repo, &["init"]);

    // Snapshot short id -> SHA-256 of the file it holds.
    let mut stored: BTreeMap<String, String> = BTreeMap::new();
    let record = |out: &serde_json::Value, file: &Path, stored: &mut BTreeMap<_, _>| {
        let id = out["snapshot"]["short_id"].as_str().unwrap().to_string();
        stored.insert(id, sha256(file));
    };

    // One uninterrupted backup gives the time window the kills are spread over.
    let first = backup_file(&files, 0);
    let t0 = Instant::now();
    let out = env.backup(repo, &first);
    let window = t0.elapsed().max(Duration::from_millis(200));
    record(&out, &first, &mut stored);
    eprintln!("an uninterrupted backup takes {window:?}");

    let mut failures: Vec<String> = Vec::new();
    let (mut killed, mut finished_first, mut attempts) = (0usize, 0usize, 0usize);
    let mut max_scratch_left = 0usize;
    let mut restores = 0usize;
    let restore_all = std::env::var("DVAULT_FAULT_RESTORE_ALL").is_ok_and(|v| v == "1");
    let mut i = 1u64;
    while killed < runs && attempts < runs * 3 {
        attempts += 1;
        let file = backup_file(&files, i);
        i += 1;
        let delay = window.mul_f64(1.1 * rng.unit());
        let mut child = env
            .dvault(repo)
            .env("DVAULT_SCRATCH_DIR", &scratch)
            .args(["backup", file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let was_killed = child.try_wait().unwrap().is_none();
        if was_killed {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        } else {
            finished_first += 1;
        }
        child.wait().unwrap();
        let tag = format!("run {attempts} (kill at {delay:?}, killed: {was_killed})");
        max_scratch_left = max_scratch_left.max(count_entries(&scratch));

        // 1. The repository is sound, data included.
        let check = env
            .dvault(repo)
            .args(["check", "--read-data"])
            .output()
            .unwrap();
        if !check.status.success() {
            failures.push(format!(
                "{tag}: check --read-data failed: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            ));
        }
        // 2. The snapshots stored before restore bit-exact (see the module comment).
        let ids: Vec<&String> = stored.keys().collect();
        let chosen: Vec<&String> = if restore_all || killed % 5 == 0 || ids.len() <= 4 {
            ids
        } else {
            let mut pick = vec![ids[0], ids[ids.len() - 1]];
            for _ in 0..2 {
                pick.push(ids[(rng.next() % ids.len() as u64) as usize]);
            }
            pick.sort();
            pick.dedup();
            pick
        };
        restores += chosen.len();
        for id in chosen {
            let want = &stored[id];
            let to = env.path().join(format!("restored-{id}"));
            let out = env
                .dvault(repo)
                .args(["restore", id, "--to", to.to_str().unwrap()])
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{tag}: restore {id} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            } else if &sha256(&to) != want {
                failures.push(format!("{tag}: restore {id} gives a different SHA-256"));
            }
            let _ = fs::remove_file(&to);
        }
        // 3. The interrupted backup, run again, succeeds (or finds itself already stored when
        //    the kill came after its snapshot was written).
        let again = env
            .dvault(repo)
            .env("DVAULT_SCRATCH_DIR", &scratch)
            .args(["backup", "--json", file.to_str().unwrap()])
            .output()
            .unwrap();
        if !again.status.success() {
            failures.push(format!(
                "{tag}: the next backup failed: {}",
                String::from_utf8_lossy(&again.stderr)
            ));
        } else {
            let out: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            let outcome = out["outcome"].as_str().unwrap_or_default();
            if outcome != "stored" && outcome != "already_stored" {
                failures.push(format!("{tag}: unexpected outcome {out}"));
            }
            record(&out, &file, &mut stored);
        }
        fs::remove_file(&file).unwrap();
    }

    // Every snapshot is there once, and a final full check passes.
    let snaps = env.snapshots(repo);
    if snaps.len() != stored.len() {
        failures.push(format!(
            "{} snapshots in the repository, {} expected",
            snaps.len(),
            stored.len()
        ));
    }
    env.ok(repo, &["check", "--read-data"]);
    for (id, want) in &stored {
        assert_eq!(&env.restore_sha(repo, id), want, "final restore of {id}");
    }
    let scratch_left = count_entries(&scratch);

    eprintln!(
        "fault campaign: {attempts} runs, {killed} killed mid-way, {finished_first} finished \
         before their kill moment, {restores} snapshot restores compared along the way and {} at \
         the end, {} failures; scratch folders left: {scratch_left} at the end (at most \
         {max_scratch_left} after a kill)",
        stored.len(),
        failures.len()
    );
    assert!(
        killed >= runs,
        "only {killed} of {runs} runs were killed mid-way"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        scratch_left, 0,
        "killed backups left scratch folders behind that nothing removes"
    );
}
