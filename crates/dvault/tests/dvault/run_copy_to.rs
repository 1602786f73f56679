//! `[sites.NAME.copy_to]` (issue 21): `dvault run` stores into the site's local repository,
//! copies the new snapshots into a second repository served by a real REST server (`rclone
//! serve restic`), applies retention in both and says so in its report and metrics; the stock
//! restic reads the second repository and a restore from it is bit-exact. `run --dry-run`
//! lists the older backups the run would store first.

use crate::repo_support;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use repo_support::{free_port, make_backups, sha256};

/// A running `rclone serve restic`, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("rclone")
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rclone (Debian package `rclone`) is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rclone did not start on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server {
            child,
            url: format!("rest:http://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host with a backups folder, a local repository, and a config whose site is copied to the
/// REST repository.
struct Host {
    tmp: tempfile::TempDir,
    server: Server,
}

impl Host {
    fn new() -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let d = dir.as_path();
        for sub in ["backups", "made", "metrics", "store"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        for (f, pw) in [("password", "first\n"), ("password2", "second, off-site\n")] {
            fs::write(d.join(f), pw).unwrap();
            fs::set_permissions(d.join(f), fs::Permissions::from_mode(0o600)).unwrap();
        }
        let server = Server::start(&d.join("store"));
        let text = format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [monitoring]\nprometheus_textfile = \"{d}/metrics/dvault.prom\"\n\
             [sites.main.source]\nfolder = \"{d}/backups\"\nsettle = \"10ms\"\n\
             [sites.main.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n\
             [sites.main.copy_to]\nlocation = \"{url}\"\npassword_file = \"{d}/password2\"\n\
             [sites.main.retention]\nkeep_daily = 7\nforget = true\n",
            d = d.display(),
            url = server.url
        );
        fs::write(d.join("dvault.toml"), text).unwrap();
        fs::set_permissions(d.join("dvault.toml"), fs::Permissions::from_mode(0o600)).unwrap();
        let repo = d.join("repo").display().to_string();
        let host = Host { tmp, server };
        host.ok(&["init", "--repo", &repo]);
        let url = host.server.url.clone();
        host.ok(&["init", "--repo", &url, "--password-file", "password2"]);
        host
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn dvault(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dvault"));
        for (k, _) in std::env::vars() {
            if k.starts_with("DVAULT_") || k == "STATE_DIRECTORY" || k == "CACHE_DIRECTORY" {
                c.env_remove(k);
            }
        }
        c.current_dir(self.path())
            .env("DVAULT_CONFIG", self.path().join("dvault.toml"))
            .env("HOME", self.path())
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

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Makes one day's three backups (.tar.gz with uploads, .sql.gz, .tar) in the folder.
    fn day(&self, day: u64) -> Vec<PathBuf> {
        make_backups(&self.path().join("made"), day, 60_000)
            .into_iter()
            .map(|f| {
                let to = self.path().join("backups").join(f.file_name().unwrap());
                fs::rename(&f, &to).unwrap();
                to
            })
            .collect()
    }

    /// The stock restic on the second repository, after its own check passed.
    fn restic_snapshots(&self) -> Vec<serde_json::Value> {
        let restic = |args: &[&str]| {
            let out = Command::new("restic")
                .args(["-r", &self.server.url])
                .args(["--password-file", "password2", "--no-cache"])
                .current_dir(self.path())
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
        restic(&["check", "--read-data"]);
        serde_json::from_slice(&restic(&["snapshots", "--json", "--tag", "dvault"])).unwrap()
    }
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn run_keeps_a_second_copy_in_a_rest_repository_that_restic_reads_and_restores_bit_exact() {
    let host = Host::new();
    let mut files = host.day(3);
    files.extend(host.day(5));
    let newest = files.last().unwrap().clone();

    // The dry run names the five older backups the run stores first, oldest first, and the
    // second repository; nothing is written.
    let plan = host.json(&["run", "--dry-run", "--json"]);
    let site = &plan["sites"][0];
    let backfill: Vec<String> = serde_json::from_value(site["backfill"].clone()).unwrap();
    assert_eq!(backfill, names(&files[..5]), "{plan}");
    assert_eq!(
        site["file"],
        names(std::slice::from_ref(&newest))[0],
        "{plan}"
    );
    assert_eq!(site["copy_to"], host.server.url.as_str(), "{plan}");
    assert!(host
        .json(&["snapshots", "--json"])
        .as_array()
        .unwrap()
        .is_empty());

    let report = host.json(&["run", "--json"]);
    assert_eq!(report["exit_code"], 0, "{report}");
    let site = &report["sites"][0];
    assert_eq!(site["backfilled"].as_array().unwrap().len(), 5, "{report}");
    // Retention removed some backups from the first repository (per day, the most complete)...
    let first = host.json(&["snapshots", "--json"]);
    let kept = first.as_array().unwrap().len();
    assert!((2..6).contains(&kept), "{first}");
    // ...and the copy holds the very same backups, retention applied there too.
    let copy = &site["copy"];
    assert_eq!(copy["location"], host.server.url.as_str(), "{report}");
    assert_eq!(copy["copied"].as_array().unwrap().len(), kept, "{report}");
    assert_eq!(copy["snapshots"], kept, "{report}");
    let retention = copy["retention"].as_str().unwrap();
    assert!(retention.starts_with(&format!("kept {kept}")), "{report}");
    let metrics = fs::read_to_string(host.path().join("metrics/dvault.prom")).unwrap();
    assert!(
        metrics.contains(&format!("dvault_copy_snapshots{{site=\"main\"}} {kept}\n")),
        "{metrics}"
    );
    assert!(metrics.contains("dvault_last_copy_success_timestamp_seconds{site=\"main\"}"));

    // The stock restic reads the second repository; dvault restores from it bit-exact.
    let url = host.server.url.clone();
    let second = host.json(&[
        "snapshots",
        "--json",
        "--repo",
        &url,
        "--password-file",
        "password2",
    ]);
    let second = second.as_array().unwrap();
    assert_eq!(host.restic_snapshots().len(), second.len());
    let mut first_shas: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["meta"]["sha256"].as_str().unwrap())
        .collect();
    let mut second_shas: Vec<&str> = second
        .iter()
        .map(|s| s["meta"]["sha256"].as_str().unwrap())
        .collect();
    first_shas.sort();
    second_shas.sort();
    assert_eq!(first_shas, second_shas);
    for s in second {
        let id = s["short_id"].as_str().unwrap();
        let original = host
            .path()
            .join("backups")
            .join(s["meta"]["file_name"].as_str().unwrap());
        let out = host.path().join(format!("restored-{id}"));
        host.ok(&[
            "restore",
            id,
            "--to",
            out.to_str().unwrap(),
            "--repo",
            &url,
            "--password-file",
            "password2",
        ]);
        assert_eq!(sha256(&out), sha256(&original), "{}", original.display());
    }

    // A second run finds everything stored and copied: nothing copied again.
    let again = host.json(&["run", "--json"]);
    let copy = &again["sites"][0]["copy"];
    assert_eq!(copy["copied"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(copy["already_there"], 1, "{again}");
    assert_eq!(copy["snapshots"], kept, "{again}");
}
