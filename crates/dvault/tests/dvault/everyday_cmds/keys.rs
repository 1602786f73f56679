//! `key list|add|remove|passwd`: each change checked with the stock `restic` (the old password
//! refused, the new one taken) and followed by the key ledger, so `check` raises no alarm.

use super::*;

#[test]
fn key_passwd_then_stock_restic_refuses_the_old_password_and_takes_the_new() {
    let env = Env::new();
    let repo = env.path().join("repo").display().to_string();
    env.ok(&repo, &["init"]);
    let files = repo_support::make_backups(env.path(), 3, 20_000);
    env.backup(&repo, &files[0]);
    let new_pw = secret(&env, "new-password", "a new long password");
    let second = secret(&env, "second-password", "the second key");

    // add: a second password opens it for dvault and restic; list shows both.
    let added = json(&env.ok(
        &repo,
        &[
            "key",
            "add",
            "--new-password-file",
            second.to_str().unwrap(),
            "--json",
        ],
    ))["added"]
        .as_str()
        .unwrap()
        .to_string();
    let list = json(&env.ok(&repo, &["key", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    let original = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(restic(&env, &repo, &second, &["snapshots"])
        .status
        .success());

    // passwd: the old password is refused by restic and dvault, the new one works.
    env.ok(
        &repo,
        &[
            "key",
            "passwd",
            "--new-password-file",
            new_pw.to_str().unwrap(),
        ],
    );
    let old = restic(&env, &repo, &env.password_file, &["snapshots"]);
    assert!(!old.status.success());
    assert!(
        String::from_utf8_lossy(&old.stderr).contains("wrong password"),
        "{}",
        String::from_utf8_lossy(&old.stderr)
    );
    let err = env.fails(&repo, &["snapshots"]);
    assert!(err.contains("wrong password"), "{err}");
    let ok = restic(&env, &repo, &new_pw, &["check"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let with_new = |args: &[&str]| {
        let out = env
            .dvault(&repo)
            .env("DVAULT_PASSWORD_FILE", &new_pw)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let list = json(&with_new(&["key", "list", "--json"]));
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&original.as_str()),
        "old key removed: {ids:?}"
    );
    assert!(ids.contains(&added.as_str()));

    // remove: the second key goes, restic no longer opens with it; the key in use cannot.
    with_new(&["key", "remove", &added[..8]]);
    assert!(!restic(&env, &repo, &second, &["snapshots"])
        .status
        .success());
    let current = json(&with_new(&["key", "list", "--json"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env
        .dvault(&repo)
        .env("DVAULT_PASSWORD_FILE", &new_pw)
        .args(["key", "remove", &current])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the given password opened"));
    // The ledger follows the changes made on purpose: check raises no key alarm.
    with_new(&["check"]);
    // A new password never comes from an argument value.
    let err = env.fails(&repo, &["key", "add"]);
    assert!(err.contains("no new password"), "{err}");
}
