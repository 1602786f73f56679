//! Failure and recovery hooks of `dvault run`: a command with the documented environment
//! variables, and a webhook that gets them as JSON (a one-shot HTTP server in the test).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;

use super::sim_backups;
use crate::repo_support::Env;

/// Accepts one HTTP request and returns its body.
fn one_request(listener: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut len = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let mut s = stream;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8(body).unwrap()
    })
}

#[test]
fn failure_and_recovery_hooks_run_with_their_variables() {
    let env = Env::new();
    let d = env.path();
    let repo = d.join("repo");
    env.ok(repo.to_str().unwrap(), &["init"]);
    std::fs::create_dir_all(d.join("backups")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = d.join("dvault.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [monitoring]\nreport_html = \"{d}/report.html\"\n\
             [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"0s\"\n\
             [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{pw}\"\n\
             [sites.forum.hooks]\n\
             on_failure = \"env | grep ^DVAULT_ | sort > {d}/failure.env\"\n\
             on_recovery = \"env | grep ^DVAULT_ | sort > {d}/recovery.env\"\n\
             recovery_webhook = \"http://127.0.0.1:{port}/hook\"\n",
            d = d.display(),
            pw = env.password_file.display()
        ),
    )
    .unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_dvault"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env_remove("DVAULT_REPOSITORY")
            .output()
            .unwrap()
    };
    // No backup in the folder: the run fails and the failure hook gets the error.
    let out = run();
    assert!(!out.status.success());
    let failure = std::fs::read_to_string(d.join("failure.env")).unwrap();
    assert!(failure.contains("DVAULT_EVENT=failure"), "{failure}");
    assert!(failure.contains("DVAULT_SITE=forum"), "{failure}");
    assert!(failure.contains("DVAULT_OUTCOME=failed"), "{failure}");
    assert!(
        failure.contains("DVAULT_ERROR=no complete Discourse backup found"),
        "{failure}"
    );
    assert!(failure.contains(&format!("DVAULT_REPORT={}/report.html", d.display())));

    // A backup appears: the next run stores it, and recovery is announced both ways.
    let file = &sim_backups(&d.join("sim"), 0)[0];
    std::fs::copy(file, d.join("backups").join(file.file_name().unwrap())).unwrap();
    let body = one_request(listener);
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recovery = std::fs::read_to_string(d.join("recovery.env")).unwrap();
    assert!(recovery.contains("DVAULT_EVENT=recovery") && recovery.contains("DVAULT_ERROR=\n"));
    let sent: serde_json::Value = serde_json::from_str(&body.join().unwrap()).unwrap();
    assert_eq!(sent["event"], "recovery");
    assert_eq!(sent["site"], "forum");
    assert_eq!(sent["outcome"], "stored");
    // The run rewrote the HTML report.
    let page = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(page.contains("data-figure=\"snapshots\">1<"), "{page}");
}
