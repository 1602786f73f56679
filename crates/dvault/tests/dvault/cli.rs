//! The command line's promises: exit codes (0 success, 1 error, 2 usage), stdin input, errors
//! that name the file and offset, no output left behind on failure, and `--version`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const DVAULT: &str = env!("CARGO_BIN_EXE_dvault");

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(DVAULT)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn sample(dir: &Path) {
    sh(
        dir,
        "mkdir src && seq 1 20000 > src/a.txt && tar -cf - -C src a.txt | gzip -5 > b.tar.gz",
    );
}

#[test]
fn version_names_zlib_and_gzip() {
    let o = run(&["--version"], Path::new("."));
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with(&format!("dvault {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("zlib 1."), "{text}");
    assert!(text.contains("gzip: gzip 1."), "{text}");
}

#[test]
fn usage_errors_exit_with_2() {
    let o = run(&["expand"], Path::new("."));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["no-such-command"], Path::new("."));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn expand_rebuild_round_trip_and_stdin() {
    let w = tempfile::tempdir().unwrap();
    sample(w.path());
    let o = run(&["expand", "b.tar.gz", "tree"], w.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["rebuild", "tree", "out.tar.gz"], w.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    sh(w.path(), "cmp b.tar.gz out.tar.gz");
    // stdin: spooled, so the same tree comes out (named after nothing: the tar's members).
    let mut child = Command::new(DVAULT)
        .args(["expand", "-", "tree2"])
        .current_dir(w.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(w.path().join("b.tar.gz")).unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    sh(w.path(), "cmp tree/a.txt tree2/a.txt");
    let o = run(&["inspect", "--json", "b.tar.gz"], w.path());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["layers"][0]["method"], "gzip -5");
    assert_eq!(report["layers"][1]["kind"], "tar");
}

#[test]
fn truncated_gzip_fails_with_file_and_offset_and_leaves_nothing() {
    let w = tempfile::tempdir().unwrap();
    sample(w.path());
    sh(w.path(), "head -c 2000 b.tar.gz > cut.tar.gz");
    let before = names(w.path());
    let o = run(&["expand", "cut.tar.gz", "tree"], w.path());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("cut.tar.gz") && e.contains("truncated"), "{e}");
    assert_eq!(names(w.path()), before, "no tree, no temporary directory");
}

#[test]
fn wrong_crc_fails_and_leaves_nothing() {
    let w = tempfile::tempdir().unwrap();
    sample(w.path());
    // Flip a bit of the CRC-32 in the trailer (8 bytes from the end).
    sh(
        w.path(),
        "python3 -c \"b=bytearray(open('b.tar.gz','rb').read()); b[-8]^=1; open('crc.tar.gz','wb').write(b)\"",
    );
    let before = names(w.path());
    let o = run(&["expand", "crc.tar.gz", "tree"], w.path());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("crc.tar.gz") && e.to_lowercase().contains("crc"),
        "{e}"
    );
    assert_eq!(names(w.path()), before);
}

#[test]
fn not_a_backup_is_an_error() {
    let w = tempfile::tempdir().unwrap();
    std::fs::write(w.path().join("notes.txt"), b"hello, world\n").unwrap();
    let o = run(&["expand", "notes.txt", "tree"], w.path());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("notes.txt: neither gzip nor tar (first bytes: 68 65 6c 6c"),
        "{e}"
    );
    assert!(!w.path().join("tree").exists());
    let o = run(&["inspect", "notes.txt"], w.path());
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn rebuild_of_a_tampered_tree_fails_and_writes_no_output() {
    let w = tempfile::tempdir().unwrap();
    sample(w.path());
    sh(w.path(), "gzip -dc b.tar.gz > b.tar");
    for backup in ["b.tar.gz", "b.tar"] {
        let tree = format!("tree-{backup}");
        assert!(run(&["expand", backup, &tree], w.path()).status.success());
        sh(
            w.path(),
            &format!("printf 'X' | dd of={tree}/a.txt bs=1 seek=10 conv=notrunc status=none"),
        );
        let o = run(&["rebuild", &tree, "out"], w.path());
        assert_eq!(o.status.code(), Some(1), "{backup}");
        let e = stderr(&o);
        if backup == "b.tar" {
            // Nothing but the final SHA-256 can notice a changed byte in a tar member.
            assert!(
                e.contains("rebuild mismatch: expected 112640 bytes, sha256"),
                "{e}"
            );
        } else {
            assert!(e.contains(&format!("rebuilding from {tree}")), "{e}");
        }
        assert!(
            !names(w.path()).iter().any(|n| n.contains("out")),
            "no output left"
        );
    }
}

#[test]
fn unknown_recipe_version_is_refused_clearly() {
    let w = tempfile::tempdir().unwrap();
    sample(w.path());
    assert!(run(&["expand", "b.tar.gz", "tree"], w.path())
        .status
        .success());
    let p = w.path().join("tree/.peel/recipe.json");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen("\"version\":1", "\"version\":99", 1)).unwrap();
    let o = run(&["rebuild", "tree", "out.tar.gz"], w.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("recipe version 99 is not supported: this build reads version 1"),
        "{}",
        stderr(&o)
    );
}
