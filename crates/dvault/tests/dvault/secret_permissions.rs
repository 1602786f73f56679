//! Secret files that other users can read: a password file or config file with mode 0644 gets
//! a warning naming the file and its mode; `--strict` (or `strict_permissions = true` in the
//! config) makes it an error; a private file (0600) gets neither.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const DVAULT: &str = env!("CARGO_BIN_EXE_dvault");

fn dvault(dir: &Path, args: &[&str]) -> Output {
    Command::new(DVAULT)
        .args(args)
        .current_dir(dir)
        .env_remove("DVAULT_PASSWORD")
        .env_remove("DVAULT_PASSWORD_FILE")
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_with_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_password_file_others_can_read_is_a_warning_or_with_strict_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = d.join("pw");
    // Named as given on the command line.
    let shown = "pw";
    write_with_mode(&pw, "correct horse\n", 0o644);

    let o = dvault(
        d,
        &[
            "--strict",
            "init",
            "--repo",
            "strict-repo",
            "--password-file",
            "pw",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("password file {shown}"))
            && err.contains("readable by its group and all other users (mode 0644)")
            && err.contains("strict"),
        "{err}"
    );
    assert!(!d.join("strict-repo").exists(), "nothing was created");

    let o = dvault(d, &["init", "--repo", "repo", "--password-file", "pw"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("password file {shown} is readable by"))
            && err.contains("(mode 0644)")
            && err.contains("chmod 600"),
        "a warning naming the file and its mode: {err}"
    );
    assert_eq!(err.matches("readable by").count(), 1, "warned once: {err}");

    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let o = dvault(
        d,
        &[
            "--strict",
            "snapshots",
            "--repo",
            "repo",
            "--password-file",
            "pw",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("readable"), "{}", stderr(&o));

    // Group-readable only (0640) is named as such and refused too.
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o640)).unwrap();
    let o = dvault(
        d,
        &[
            "snapshots",
            "--repo",
            "repo",
            "--password-file",
            "pw",
            "--strict",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("readable by its group (mode 0640)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_config_file_others_can_read_is_a_warning_or_with_strict_permissions_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = d.join("pw");
    write_with_mode(&pw, "secret\n", 0o600);
    let cfg = d.join("dvault.toml");
    let shown = "dvault.toml";
    let site = format!(
        "[sites.forum]\nsource = {{ folder = {:?} }}\nrepository = {{ location = {:?}, \
         password_file = {:?} }}\n",
        d.display().to_string(),
        d.join("repo").display().to_string(),
        pw.display().to_string()
    );
    // `--site nobody` ends the run right after the config is read (exit 2).
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--config", "dvault.toml", "--site", "nobody"];
        all.extend_from_slice(args);
        dvault(d, &all)
    };

    write_with_mode(&cfg, &site, 0o644);
    let o = run(&[]);
    assert!(
        stderr(&o).contains(&format!("config file {shown} is readable by"))
            && stderr(&o).contains("(mode 0644)"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("no site \"nobody\""), "{}", stderr(&o));

    // --strict, or the config's own key: the config error (exit 2) names the file and mode.
    for (text, args) in [
        (site.clone(), &["--strict"][..]),
        (format!("strict_permissions = true\n{site}"), &[][..]),
    ] {
        write_with_mode(&cfg, &text, 0o644);
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(shown) && stderr(&o).contains("(mode 0644)"),
            "{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("no site"), "stopped at the config");
    }

    write_with_mode(&cfg, &format!("strict_permissions = true\n{site}"), 0o600);
    let o = run(&[]);
    assert!(!stderr(&o).contains("readable"), "{}", stderr(&o));
    assert!(stderr(&o).contains("no site \"nobody\""), "{}", stderr(&o));

    // A secret file the site names: that site fails (its only site: exit 1), naming the key,
    // the file and its mode.
    write_with_mode(&pw, "secret\n", 0o604);
    let o = dvault(d, &["run", "--config", "dvault.toml"]);
    let out = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("sites.forum.repository.password_file")
            && out.contains("readable by all other users (mode 0604)"),
        "{out}"
    );
}
