//! A REST server's password never leaves dvault: against a real `rclone serve restic` that
//! wants a login, the password given in the URL shows nowhere in what `init`, `backup`,
//! `snapshots`, `check`, `forget`, `run --json` (a good and a failing run) print, send to the
//! monitoring service or store in the state folder. The login also comes from the
//! environment (dvault's and restic's names) or a file; a wrong one is reported as HTTP 401,
//! not as a missing repository.

use crate::repo_support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use repo_support::{free_port, make_backups, Env};

const USER: &str = "backup";
/// Distinctive, so that a leak anywhere is found by a plain text search.
const SECRET: &str = "Pw7fQ3xLeakCanary";

/// A running `rclone serve restic --user --pass`, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("rclone")
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--user", USER, "--pass", SECRET])
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
        Self { child, port }
    }

    /// `rest:http://[login@]127.0.0.1:PORT/path`.
    fn url(&self, login: &str, path: &str) -> String {
        format!("rest:http://{login}127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                hits.push(p);
            }
        }
    }
    hits
}

/// A `dvault run` config `name.toml` for one site; `repo_keys` go into its
/// `[repository]` table.
fn run_config(
    env: &Env,
    name: &str,
    location: &str,
    repo_keys: &str,
    backups: &Path,
    ping: &str,
) -> PathBuf {
    let d = env.path();
    let config = d.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [sites.forum.source]\nfolder = \"{b}\"\nsettle = \"0s\"\n\
             [sites.forum.repository]\nlocation = \"{location}\"\npassword_file = \"{pw}\"\n{repo_keys}\
             [sites.forum.monitoring]\nping_url = \"{ping}\"\n",
            d = d.display(),
            b = backups.display(),
            pw = env.password_file.display(),
        ),
    )
    .unwrap();
    config
}

fn dvault_run(config: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dvault"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DVAULT_") || k.starts_with("RESTIC_") {
            c.env_remove(k);
        }
    }
    c.args(["run", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn the_rest_password_in_the_url_is_never_printed_sent_or_stored() {
    let env = Env::new();
    let store = env.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let server = Server::start(&store);
    let login = format!("{USER}:{SECRET}@");
    let repo = server.url(&login, "");
    let mut seen = String::new();

    let out = env.ok(&repo, &["init"]);
    let shown = text(&out);
    assert!(
        shown.contains(&format!("rest:http://{USER}:***@127.0.0.1")),
        "init names the repository with the password hidden: {shown}"
    );
    seen += &shown;
    seen += &text(&env.ok(&server.url(&login, "second/"), &["init", "--json"]));
    let files = make_backups(env.path(), 5, 20_000);
    for f in &files[..2] {
        seen += &text(&env.ok(&repo, &["backup", "--json", f.to_str().unwrap()]));
    }
    seen += &text(&env.ok(&repo, &["snapshots", "--json"]));
    seen += &text(&env.ok(&repo, &["check"]));
    seen += &text(&env.ok(&repo, &["forget", "--keep-last", "1", "--prune", "--json"]));
    // An error that names the repository: a path where there is none.
    let missing = server.url(&login, "nothing-here/");
    let err = env.fails(&missing, &["snapshots"]);
    assert!(err.contains("no repository at"), "{err}");
    seen += &err;

    // `dvault run --json`: one good run, one failing run (no repository at that path).
    let pings = dvault_testkit::ping_server();
    let backups = env.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::copy(&files[1], backups.join(files[1].file_name().unwrap())).unwrap();
    let good = run_config(
        &env,
        "good",
        &repo,
        "",
        &backups,
        &format!("{}/good", pings.url),
    );
    let out = dvault_run(&good);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    seen += &text(&out);
    let bad = run_config(
        &env,
        "bad",
        &missing,
        "",
        &backups,
        &format!("{}/bad", pings.url),
    );
    let out = dvault_run(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report.to_string().contains(&format!("{USER}:***@")),
        "the failing run's report names the repository, password hidden: {report}"
    );
    seen += &text(&out);

    assert!(!seen.contains(SECRET), "password printed:\n{seen}");
    let got = pings.got.lock().unwrap().clone();
    let fail = got.iter().find(|(p, _)| p == "/bad/fail");
    assert!(
        fail.is_some_and(|(_, body)| body.contains("no repository at")),
        "the /fail ping says why: {got:?}"
    );
    for (path, body) in &got {
        assert!(!body.contains(SECRET), "ping {path} body: {body}");
    }
    let stored = files_containing(&env.path().join("state"), SECRET);
    assert!(stored.is_empty(), "password stored in {stored:?}");
    let cached = files_containing(&env.path().join("cache"), SECRET);
    assert!(cached.is_empty(), "password stored in {cached:?}");
    // The ledger records where the repository is, password hidden.
    let ledgers = files_containing(&env.path().join("state"), &format!("{USER}:***@"));
    assert!(
        ledgers
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".snapshots.json")),
        "{ledgers:?}"
    );
}

#[test]
fn a_wrong_rest_password_is_reported_as_a_refused_login() {
    let env = Env::new();
    let store = env.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let server = Server::start(&store);
    env.ok(&server.url(&format!("{USER}:{SECRET}@"), ""), &["init"]);
    for cmd in [&["snapshots"][..], &["init"], &["check"]] {
        let err = env.fails(&server.url(&format!("{USER}:wrongPw123@"), ""), cmd);
        assert!(
            err.contains("REST server refused the credentials (HTTP 401)"),
            "{cmd:?}: {err}"
        );
        assert!(!err.contains("dvault init` first"), "{err}");
        assert!(!err.contains("wrongPw123"), "{err}");
    }
    // No login at all: the same, with a hint where to give one.
    let err = env.fails(&server.url("", ""), &["snapshots"]);
    assert!(
        err.contains("(HTTP 401)") && err.contains("DVAULT_REST_USERNAME"),
        "{err}"
    );
}

#[test]
fn the_rest_login_comes_from_the_environment_or_a_file() {
    let env = Env::new();
    let store = env.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let server = Server::start(&store);
    let plain = server.url("", "");
    let out = env
        .dvault(&plain)
        .env("DVAULT_REST_USERNAME", USER)
        .env("DVAULT_REST_PASSWORD", SECRET)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(SECRET));
    // restic's own names.
    let out = env
        .dvault(&plain)
        .env("RESTIC_REST_USERNAME", USER)
        .env("RESTIC_REST_PASSWORD", SECRET)
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // A password file, the user name in the URL.
    let pw = env.path().join("rest-password");
    std::fs::write(&pw, format!("{SECRET}\n")).unwrap();
    let with_user = server.url(&format!("{USER}@"), "");
    let files = make_backups(env.path(), 6, 10_000);
    let out = env
        .dvault(&with_user)
        .env("DVAULT_REST_PASSWORD_FILE", &pw)
        .args(["backup", "--json", files[1].to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // ... and the config key of `dvault run`.
    let pings = dvault_testkit::ping_server();
    let backups = env.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::copy(&files[0], backups.join(files[0].file_name().unwrap())).unwrap();
    let key = format!("rest_password_file = \"{}\"\n", pw.display());
    let config = run_config(&env, "run", &with_user, &key, &backups, &pings.url);
    let out = dvault_run(&config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains(SECRET));
}
