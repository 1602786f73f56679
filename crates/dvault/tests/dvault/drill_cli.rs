//! Restore drills from the command line, against a real repository and real PostgreSQL
//! clusters: `dvault drill latest` proves the newest snapshot, `dvault run` drills on schedule and
//! records the metric, a tree the stock restic restored drills too, and a damaged pack file
//! makes both fail, naming the snapshot.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dvault(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dvault"));
    c.env("DVAULT_REPOSITORY", dir.join("repo"))
        .env("DVAULT_PASSWORD_FILE", dir.join("password"))
        .env("DVAULT_CACHE_DIR", dir.join("cache"))
        .env("DVAULT_STATE_DIR", dir.join("state"))
        .env_remove("DVAULT_PASSWORD");
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small simulated format-A backup in `dir/backups`, an initialised repository, and a config
/// whose site drills at every run into a throwaway cluster.
fn setup(dir: &Path) -> PathBuf {
    let opts = dvault_sim::Options {
        formats: vec![dvault_sim::Format::A],
        ..dvault_sim::Options::small(23)
    };
    let files = dvault_sim::generate(&opts, &dir.join("backups")).unwrap();
    assert_eq!(files.len(), 1);
    std::fs::write(dir.join("password"), "drill password\n").unwrap();
    ok(dvault(dir).arg("init").output().unwrap());
    let config = dir.join("dvault.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [monitoring]\nprometheus_textfile = \"{d}/dvault.prom\"\n\
             [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"0s\"\n\
             [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n\
             [sites.forum.drill]\nevery = \"1s\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    config
}

fn damage_packs(repo: &Path) {
    let mut stack = vec![repo.join("data")];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mut data = std::fs::read(&p).unwrap();
                let mid = data.len() / 2;
                data[mid] ^= 0xff;
                std::fs::write(&p, &data).unwrap();
                n += 1;
            }
        }
    }
    assert!(n > 0, "no pack files under {}", repo.display());
}

#[test]
fn run_drills_on_schedule_and_drill_latest_proves_the_snapshot_until_a_pack_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = setup(dir);

    let out = ok(dvault(dir)
        .args(["run", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = &report["sites"][0];
    assert_eq!(site["outcome"], "stored", "{report}");
    let drill = site["drill"].as_str().unwrap();
    assert!(
        drill.contains(" restored: ") && drill.contains("tables"),
        "{drill}"
    );
    let metrics = std::fs::read_to_string(dir.join("dvault.prom")).unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("dvault_last_drill_success_timestamp_seconds{"))
        .unwrap_or_else(|| panic!("no drill metric in\n{metrics}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value > 1.7e9, "{line}");

    let out = ok(dvault(dir)
        .args(["drill", "latest", "--postgres-temp", "--json"])
        .output()
        .unwrap());
    let drilled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(drilled["ok"], true);
    assert_eq!(drilled["sha256"], site["sha256"]);
    assert_eq!(drilled["expected_sha256"], site["sha256"]);
    let short = drilled["snapshot"].as_str().unwrap().to_string();
    assert!(site["snapshot"].as_str().unwrap().starts_with(&short));

    // The stock restic's restore of the snapshot holds the dump in the dedup layout; a drill of
    // that tree puts it back together first.
    let restored = dir.join("restic-restore");
    ok(Command::new("restic")
        .args(["-r"])
        .arg(dir.join("repo"))
        .arg("--password-file")
        .arg(dir.join("password"))
        // `--tag dvault`: the newest snapshot may be an audit record (tag dvault-audit).
        .args([
            "--no-cache",
            "restore",
            "latest",
            "--tag",
            "dvault",
            "--target",
        ])
        .arg(&restored)
        .output()
        .unwrap());
    assert!(
        restored.join(".dvault-layout").is_dir(),
        "no layout in the restored tree"
    );
    let out = ok(dvault(dir)
        .args(["drill", "--postgres-temp", "--json", "--tree"])
        .arg(&restored)
        .output()
        .unwrap());
    let from_tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_tree["ok"], true, "{from_tree}");
    assert_eq!(from_tree["sha256"], site["sha256"]);

    damage_packs(&dir.join("repo"));
    std::fs::remove_dir_all(dir.join("cache")).unwrap();
    let out = dvault(dir)
        .args(["drill", &short, "--postgres-temp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("snapshot {short}")) && stdout.contains("FAILED"),
        "{stdout}"
    );

    // The scheduled drill fails too: the run is not a success, and the metric keeps the time of
    // the last drill that passed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = dvault(dir)
        .args(["run", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "a failed drill must fail the run"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = report["sites"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("restore drill"), "{report}");
    let metrics = std::fs::read_to_string(dir.join("dvault.prom")).unwrap();
    assert!(metrics.contains(line), "{metrics}");
}
