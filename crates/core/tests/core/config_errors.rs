//! The config file: the shipped example parses, and every kind of mistake is an error that
//! names the file and the dotted key (or the missing path).

use std::path::{Path, PathBuf};

use dvault_core::config::{parse_subset, Config};

fn origin() -> PathBuf {
    PathBuf::from("/etc/dvault/test.toml")
}

fn minimal(extra_site: &str) -> String {
    format!(
        r#"
[sites.forum1.repository]
location = "/srv/dvault/forum1"
password_file = "/etc/dvault/forum1.password"
{extra_site}
"#
    )
}

fn err_of(text: &str) -> String {
    match Config::parse(text, &origin()) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn shipped_example_config_parses_with_every_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/dvault.toml");
    let text = std::fs::read_to_string(&path).expect("contrib/dvault.toml");
    let cfg = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.sites.len() >= 2, "the example shows several sites");
    assert!(cfg.monitoring.prometheus_textfile.is_some());
    let any = |f: &dyn Fn(&dvault_core::config::SiteConfig) -> bool| cfg.sites.values().any(f);
    assert!(
        any(&|s| s.source.api.is_some()),
        "example shows the admin API"
    );
    assert!(any(&|s| s.retention.is_some()), "example shows retention");
    assert!(any(&|s| s.check.is_some()), "example shows checks");
    assert!(any(&|s| s.drill.is_some()), "example shows drills");
    assert!(
        any(&|s| s.monitoring.ping_url.is_some()),
        "example shows pings"
    );
}

#[test]
fn unknown_key_is_named_with_its_full_path_and_the_file() {
    let e = err_of(&minimal("[sites.forum1.source]\nfoldr = \"/x\"\n"));
    assert!(
        e.starts_with("/etc/dvault/test.toml: sites.forum1.source.foldr: "),
        "{e}"
    );
    assert!(e.contains("unknown field `foldr`"), "{e}");
    assert!(e.contains("line 6"), "line number missing: {e}");

    let e = err_of(&format!("retension = 3\n{}", minimal("")));
    assert!(e.contains("unknown field `retension`"), "{e}");
}

#[test]
fn bad_values_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[sites.forum1.source]\nsettle = \"5 parsecs\"", "sites.forum1.source.settle", "invalid duration"),
        ("[sites.forum1.check]\nevery = \"7d\"\nread_data_subset = \"150%\"", "sites.forum1.check.read_data_subset", "(0, 100]"),
        ("[sites.forum1.check]\nevery = \"0s\"", "sites.forum1.check.every", "> 0"),
        ("[sites.forum1.retention]\nforget = true", "sites.forum1.retention", "keep_"),
        ("[sites.forum1.retention]\nkeep_daily = -1", "sites.forum1.retention.keep_daily", "invalid value"),
        ("[sites.forum1.retention]\nkeep_daily = 7\nkeep_within = \"2 weeks\"", "sites.forum1.retention.keep_within", "expected a duration"),
        ("[sites.forum1.retention]\nkeep_daily = 7\nprune = true", "sites.forum1.retention.prune", "forget = true"),
        ("[sites.forum1.source]\nfolder = \"relative/dir\"", "sites.forum1.source.folder", "absolute"),
        ("[sites.forum1.source.api]\nurl = \"forum.example.com\"", "sites.forum1.source.api.url", "http"),
        ("[sites.forum1.source.api]\nurl = \"https://f\"\ntimeout = \"1s\"\npoll_interval = \"10s\"", "sites.forum1.source.api.timeout", "poll_interval"),
        ("[sites.forum1.monitoring]\nping_url = \"hc-ping.com/x\"", "sites.forum1.monitoring.ping_url", "http"),
        ("[sites.forum1.drill]\nevery = \"7d\"\npostgres_url = \"mysql://x\"", "sites.forum1.drill.postgres_url", "postgres://"),
        ("[sites.forum1.source]\nfolder = \"/a\"\n[sites.forum1.source.s3]\nbucket = \"b\"", "sites.forum1.source", "not both"),
        ("[sites.forum1.copy_to]\nlocation = \"/srv/dvault/forum1/\"\npassword_file = \"/p\"", "sites.forum1.copy_to.location", "own repository"),
        ("[sites.forum1.copy_to]\nlocation = \"/srv/offsite\"\npassword_file = \"/p\"\nrest_password_file = \"/r\"", "sites.forum1.copy_to.rest_password_file", "rest:"),
        ("[sites.forum1.copy_to]\nlocation = \"/srv/offsite\"", "sites.forum1.copy_to", "password_file"),
    ];
    for (extra, key, what) in cases {
        let e = err_of(&minimal(extra));
        assert!(
            e.starts_with(&format!("/etc/dvault/test.toml: {key}: ")),
            "for\n{extra}\nexpected key {key}, got: {e}"
        );
        assert!(e.contains(what), "for\n{extra}\nexpected {what:?} in: {e}");
    }
}

#[test]
fn missing_required_key_and_empty_sites_are_named() {
    let e = err_of("[sites.forum1.repository]\nlocation = \"/x\"\n");
    assert!(e.contains("sites.forum1.repository"), "{e}");
    assert!(e.contains("password_file"), "{e}");
    let e = err_of("state_dir = \"/tmp\"\n[sites]\n");
    assert!(e.contains(": sites: no site configured"), "{e}");
    let e = err_of("[sites.forum1\n");
    assert!(e.starts_with("/etc/dvault/test.toml: "), "{e}");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn missing_files_name_the_key_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    let pw = dir.path().join("pw");
    let cfg_path = dir.path().join("dvault.toml");
    let write = |pw: &Path, folder: &Path| {
        std::fs::write(
            &cfg_path,
            format!(
                "[sites.forum1.source]\nfolder = \"{}\"\n[sites.forum1.repository]\nlocation = \"/r\"\npassword_file = \"{}\"\n",
                folder.display(),
                pw.display()
            ),
        )
        .unwrap();
    };
    let files_err = || {
        let cfg = Config::load(&cfg_path)
            .unwrap_or_else(|e| panic!("a missing file is no config error: {e}"));
        let e = cfg.check_site_files("forum1").unwrap_err().to_string();
        assert_eq!(cfg.check_files().unwrap_err().to_string(), e);
        e
    };
    write(&pw, &folder);
    let e = files_err();
    assert!(
        e.starts_with(&format!(
            "{}: sites.forum1.repository.password_file: ",
            cfg_path.display()
        )),
        "{e}"
    );
    assert!(e.contains(&pw.display().to_string()), "{e}");
    assert!(e.contains("No such file"), "{e}");

    std::fs::write(&pw, "secret\n").unwrap();
    let gone = dir.path().join("no-such-folder");
    write(&pw, &gone);
    let e = files_err();
    assert!(e.contains("sites.forum1.source.folder"), "{e}");
    assert!(e.contains(&gone.display().to_string()), "{e}");

    write(&pw, &folder);
    let cfg = Config::load(&cfg_path).expect("all files present");
    cfg.check_files().expect("all files present");
    let e = cfg.check_site_files("forum9").unwrap_err().to_string();
    assert!(e.contains("sites.forum9: no such site"), "{e}");

    let e = Config::load(&dir.path().join("nope.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.toml: cannot read config file"), "{e}");
}

/// One site's missing files do not hide another site's good ones: each site is checked alone.
#[test]
fn files_are_checked_per_site() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("good")).unwrap();
    std::fs::write(d.join("pw"), "secret\n").unwrap();
    let cfg_path = d.join("dvault.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[sites.bad.source]\nfolder = \"{d}/gone\"\n[sites.bad.repository]\nlocation = \"/r\"\npassword_file = \"{d}/pw\"\n\
             [sites.good.source]\nfolder = \"{d}/good\"\n[sites.good.repository]\nlocation = \"/r\"\npassword_file = \"{d}/pw\"\n",
            d = d.display()
        ),
    )
    .unwrap();
    let cfg = Config::load(&cfg_path).unwrap_or_else(|e| panic!("{e}"));
    cfg.check_site_files("good")
        .expect("good's files are there");
    let e = cfg.check_site_files("bad").unwrap_err().to_string();
    assert!(
        e.contains("sites.bad.source.folder") && e.contains("gone"),
        "{e}"
    );
}

#[test]
fn read_data_subset_is_a_percentage() {
    assert_eq!(parse_subset("2.5%"), Ok(2.5));
    assert_eq!(parse_subset(" 100 % "), Ok(100.0));
    assert!(parse_subset("1/5").is_err());
    assert!(parse_subset("0%").is_err());
    assert!(parse_subset("101%").is_err());
    assert!(parse_subset("5 apples").is_err());
}
