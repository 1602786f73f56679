//! The S3 backup-bucket source (cargo feature `s3`) against a real Garage node on 127.0.0.1:
//! a bucket laid out as Discourse's `backup_location = s3` leaves it (`<db>/<file>`), filled
//! with the simulator's real-format backups by the real `rclone`. `dvault run` stores only the
//! newest, then nothing, then the next day's; the bucket is never changed; an object that is
//! overwritten during the settle wait is passed over; an object named like a backup that cannot
//! be used fails the fetch while it is the newest and is reported once a usable backup is newer.
//!
//! Without Garage installed these tests skip loudly, or fail when `DVAULT_REQUIRE_S3=1` (CI).

#![cfg(feature = "s3")]

use std::path::Path;
use std::time::Duration;

use dvault_core::config::{Config, S3SourceConfig};
use dvault_core::repo::{InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::run::{self, Outcome, RunOptions, RunReport};
use dvault_core::source::s3::S3Source;
use dvault_testkit::{Garage, S3Key};

fn sha256(path: &Path) -> String {
    dvault_core::snapshot::sha256_file(path).unwrap().1
}

fn write_creds(path: &Path, key: &S3Key) {
    std::fs::write(path, format!("{}\n{}\n", key.id, key.secret)).unwrap();
}

fn run_once(config: &Config) -> RunReport {
    let opener = run::RepoOpener::new(config);
    let mut lines = Vec::new();
    let report = run::run(
        config,
        &opener,
        RunOptions {
            site: None,
            drill: None,
            log: &mut |e| {
                lines.push(format!(
                    "- {} [{}] {}",
                    e.level,
                    e.site.unwrap_or("-"),
                    e.message
                ))
            },
        },
    )
    .unwrap();
    assert_eq!(
        report.sites[0].error,
        None,
        "run failed; log:\n{}",
        lines.join("\n")
    );
    report
}

#[test]
fn s3_source_run_stores_only_the_newest_then_nothing_then_the_next_day() {
    let Some(g) = Garage::start("s3_source_run_stores_only_the_newest") else {
        return;
    };
    // Discourse's bucket and the repository's bucket, with separate keys as in production.
    let discourse = g.bucket_with_key("discourse-backups");
    let store = g.bucket_with_key("dvault-repo");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let opts = dvault_sim::Options {
        days: 2,
        formats: vec![dvault_sim::Format::A],
        ..dvault_sim::Options::small(5)
    };
    let files = dvault_sim::generate(&opts, &d.join("sim")).unwrap();
    assert_eq!(files.len(), 3, "three days of format A");
    let name = |i: usize| {
        files[i]
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    for (i, f) in files.iter().enumerate().take(2) {
        g.upload(
            &discourse,
            &f.path,
            "discourse-backups",
            &format!("default/{}", name(i)),
        );
    }
    // Not backups: another database's folder, a half-written format-A tar, unrelated files.
    g.upload(
        &discourse,
        &files[0].path,
        "discourse-backups",
        "other-db/x-2099-01-01-000000-v20990101000000.tar.gz",
    );
    std::fs::write(d.join("junk"), b"not a backup").unwrap();
    g.upload(
        &discourse,
        &d.join("junk"),
        "discourse-backups",
        "default/forum-2099-01-01-000000-v20990101000000.tar",
    );
    g.upload(
        &discourse,
        &d.join("junk"),
        "discourse-backups",
        "default/notes.txt",
    );
    let bucket_before = g.list(&discourse, "discourse-backups", "");

    // A repository's region comes from the environment, as for restic (the source's region is
    // in its config), and this repository is opened in this process, so the variable cannot go
    // to a child instead. The one exception to "no test sets this process's environment" in
    // the crate's test binary: only the S3 tests read the variable, and every one of them signs
    // for Garage's region, the one value ever set.
    std::env::set_var("AWS_DEFAULT_REGION", dvault_testkit::garage::REGION);
    let repo_loc = g.repo_url("dvault-repo", "forum");
    let repo_creds = d.join("repo.s3");
    let src_creds = d.join("discourse.s3");
    write_creds(&repo_creds, &store);
    write_creds(&src_creds, &discourse);
    let pw = d.join("password");
    std::fs::write(&pw, "pw of the s3 test\n").unwrap();
    let mut rc = RepoConfig::new(Location::parse(&repo_loc).unwrap());
    rc.cache_dir = Some(d.join("cache"));
    rc.s3_credentials_file = Some(repo_creds.clone());
    Repo::init(
        &rc,
        &Password::new("pw of the s3 test"),
        &InitOptions::default(),
        None,
    )
    .unwrap();

    let text = format!(
        "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\nscratch_dir = \"{d}\"\n\
         [sites.forum]\n\
         repository = {{ location = \"{repo_loc}\", password_file = \"{pw}\", s3_credentials_file = \"{rcreds}\" }}\n\
         [sites.forum.source]\nsettle = \"1s\"\n\
         [sites.forum.source.s3]\nbucket = \"discourse-backups\"\nprefix = \"default/\"\n\
         endpoint = \"{ep}\"\nregion = \"garage\"\ncredentials_file = \"{screds}\"\n",
        d = d.display(),
        pw = pw.display(),
        rcreds = repo_creds.display(),
        ep = g.endpoint,
        screds = src_creds.display(),
    );
    let cfg_path = d.join("dvault.toml");
    std::fs::write(&cfg_path, text).unwrap();
    let config = Config::load(&cfg_path).unwrap();

    // Run 1: both days are stored, the older one first (the backlog of a first run).
    let r = run_once(&config);
    let site = &r.sites[0];
    assert_eq!(site.outcome, Outcome::Stored);
    assert_eq!(site.file.as_deref(), Some(name(1).as_str()));
    assert_eq!(
        site.sha256.as_deref(),
        Some(sha256(&files[1].path).as_str())
    );
    let older: Vec<_> = site.backfilled.iter().map(|b| b.file.as_str()).collect();
    assert_eq!(older, [name(0).as_str()]);
    assert_eq!(site.backfilled[0].sha256, sha256(&files[0].path));
    assert_eq!(site.snapshots, Some(2));

    // Run 2: nothing new.
    let r = run_once(&config);
    assert_eq!(r.sites[0].outcome, Outcome::AlreadyStored);
    assert!(r.sites[0].backfilled.is_empty());
    assert_eq!(r.sites[0].snapshots, Some(2));

    // Run 3: Discourse uploaded the next day.
    g.upload(
        &discourse,
        &files[2].path,
        "discourse-backups",
        &format!("default/{}", name(2)),
    );
    let r = run_once(&config);
    assert_eq!(r.sites[0].outcome, Outcome::Stored);
    assert_eq!(r.sites[0].file.as_deref(), Some(name(2).as_str()));
    assert!(r.sites[0].backfilled.is_empty());
    assert_eq!(r.sites[0].snapshots, Some(3));

    // What was stored restores bit for bit, and records where it came from.
    let repo = Repo::open(&rc, &Password::new("pw of the s3 test"), None).unwrap();
    let mut snaps = repo.snapshots().unwrap();
    snaps.sort_by(|a, b| a.meta.file_name.cmp(&b.meta.file_name));
    for (i, s) in snaps.iter().enumerate() {
        assert_eq!(s.meta.file_name, name(i));
        assert_eq!(
            s.meta.source,
            format!("s3://discourse-backups/default/{}", name(i))
        );
        let out = d.join(format!("restored-{i}"));
        repo.restore_file(&s.short_id, &out).unwrap();
        assert_eq!(sha256(&out), sha256(&files[i].path));
    }

    // The bucket is exactly as before plus the one upload: nothing changed or deleted, and
    // no temporary download is left in the scratch folder.
    let mut expected = bucket_before;
    expected.push((format!("default/{}", name(2)), files[2].size));
    expected.sort();
    assert_eq!(g.list(&discourse, "discourse-backups", ""), expected);
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".dvault-s3-"))
        .collect();
    assert!(leftovers.is_empty(), "downloads removed: {leftovers:?}");
}

#[test]
fn s3_source_passes_over_an_object_overwritten_during_the_settle_wait() {
    let Some(g) = Garage::start("s3_source_passes_over_a_changing_object") else {
        return;
    };
    let key = g.bucket_with_key("changing");
    let dir = tempfile::tempdir().unwrap();
    let older = dir.path().join("older");
    let newer = dir.path().join("newer");
    std::fs::write(&older, vec![1u8; 10_000]).unwrap();
    std::fs::write(&newer, vec![2u8; 20_000]).unwrap();
    let old_key = "default/forum-2026-01-01-033000-v20250101000000.tar.gz";
    let new_key = "default/forum-2026-01-02-033000-v20250101000000.tar.gz";
    g.upload(&key, &older, "changing", old_key);
    g.upload(&key, &newer, "changing", new_key);

    let creds = dir.path().join("creds");
    write_creds(&creds, &key);
    let cfg = S3SourceConfig {
        bucket: "changing".into(),
        prefix: "default/".into(),
        endpoint: Some(g.endpoint.clone()),
        region: "garage".into(),
        credentials_file: Some(creds),
    };
    let source = S3Source::from_config(&cfg, Duration::from_secs(4)).unwrap();
    // Listing is stable: the newer one wins, and it downloads byte for byte.
    let quiet = S3Source::from_config(&cfg, Duration::ZERO).unwrap();
    let sel = quiet.newest_complete().unwrap();
    let obj = sel.newest.unwrap();
    assert_eq!(obj.key, new_key);
    assert_eq!(obj.size, 20_000);
    let got = quiet.download(&obj, Some(dir.path())).unwrap();
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&newer).unwrap());

    // Now the newer object is rewritten while the source waits: it is passed over.
    let bigger = dir.path().join("bigger");
    std::fs::write(&bigger, vec![3u8; 30_000]).unwrap();
    let writer = std::thread::scope(|s| {
        let h = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            g.upload(&key, &bigger, "changing", new_key);
        });
        let sel = source.newest_complete().unwrap();
        h.join().unwrap();
        sel
    });
    assert_eq!(
        writer.newest.as_ref().map(|o| o.key.as_str()),
        Some(old_key)
    );
    assert_eq!(writer.passed_over.len(), 1, "{:?}", writer.passed_over);
    assert!(
        writer.passed_over[0].contains(new_key) && writer.passed_over[0].contains("still changing"),
        "{:?}",
        writer.passed_over
    );
    // The object listed before the overwrite no longer downloads (bound to its ETag): the
    // changed object is refused rather than mixed with the old listing's size.
    let err = quiet
        .download(&obj, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("changing") && err.contains(new_key), "{err}");
}

#[test]
fn s3_source_with_a_refused_key_names_the_bucket_and_endpoint() {
    let Some(g) = Garage::start("s3_source_with_a_refused_key") else {
        return;
    };
    let _key = g.bucket_with_key("guarded");
    let stranger = g.create_key("stranger");
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    write_creds(&creds, &stranger);
    let cfg = S3SourceConfig {
        bucket: "guarded".into(),
        prefix: "default/".into(),
        endpoint: Some(g.endpoint.clone()),
        region: "garage".into(),
        credentials_file: Some(creds),
    };
    let err = S3Source::from_config(&cfg, Duration::ZERO)
        .unwrap()
        .list()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&g.endpoint) && err.contains("guarded") && err.contains(&stranger.id),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn s3_source_reports_objects_named_like_backups_that_cannot_be_used() {
    let Some(g) = Garage::start("s3_source_reports_unusable_objects") else {
        return;
    };
    let key = g.bucket_with_key("odd");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bytes");
    std::fs::write(&file, vec![1u8; 1000]).unwrap();
    let creds = dir.path().join("creds");
    write_creds(&creds, &key);
    let cfg = dvault_core::config::SourceConfig {
        s3: Some(S3SourceConfig {
            bucket: "odd".into(),
            prefix: "default/".into(),
            endpoint: Some(g.endpoint.clone()),
            region: "garage".into(),
            credentials_file: Some(creds),
        }),
        settle: Duration::ZERO,
        ..dvault_core::config::SourceConfig::default()
    };
    let fetch = || dvault_core::source::fetch_newest_in(&cfg, Some(dir.path()), &mut |_| {});
    g.upload(
        &key,
        &file,
        "odd",
        "default/forum-2026-01-01-033000-v20250101000000.tar.gz",
    );
    // Last-Modified has one-second steps.
    std::thread::sleep(Duration::from_millis(1100));
    g.upload(&key, &file, "odd", "default/forum-backup.tar.gz");
    let err = fetch().unwrap_err().to_string();
    assert!(
        err.contains("s3://odd/default/forum-backup.tar.gz") && err.contains("newest file"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let current = "forum-2026-01-02-033000-v2026-1-0-latest-20251220000000.tar";
    g.upload(&key, &file, "odd", &format!("default/{current}"));
    let picked = fetch().unwrap().unwrap();
    assert_eq!(picked.name.file_name, current);
    assert_eq!(picked.unusable.len(), 1, "{:?}", picked.unusable);
}
