//! Restore drills on the forum simulator's backups: format A (`.tar.gz`), SQL only (`.sql.gz`)
//! and format B (`.tar`) of the same simulated day, each loaded into a throwaway cluster and
//! checked against itself; the row counts must also equal the simulated forum's own.

use std::path::Path;

use dvault_core::drill::{self, BackupFormat, DrillInput, DrillOptions, PostgresTarget};
use sha2::Digest as _;

fn drill_one(path: &Path) -> drill::DrillReport {
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()));
    drill::drill(
        &DrillInput::File {
            path: path.to_path_buf(),
            expected_sha256: Some(sha),
        },
        &DrillOptions {
            target: PostgresTarget::Temp,
            work_dir: None,
            cap: Default::default(),
        },
    )
    .expect("the drill runs")
}

#[test]
fn drills_pass_on_simulator_backups_of_all_three_formats() {
    let out = tempfile::tempdir().unwrap();
    let opts = dvault_sim::Options {
        days: 1,
        ..dvault_sim::Options::small(7)
    };
    let files = dvault_sim::generate(&opts, out.path()).expect("simulator backups");
    // Day 1's backups: after a day of churn (edits, deletions, secure re-uploads).
    let day1: Vec<_> = files.iter().filter(|f| f.day == 1).collect();
    assert_eq!(day1.len(), 3, "{files:?}");
    let mut posts_rows = Vec::new();
    for f in day1 {
        let report = drill_one(&f.path);
        assert!(report.ok, "{:?}: {}", f.format, report.summary());
        let expected_format = match f.format {
            dvault_sim::Format::A => BackupFormat::TarGz,
            dvault_sim::Format::Sql => BackupFormat::SqlGz,
            dvault_sim::Format::B => BackupFormat::Tar,
        };
        assert_eq!(report.format, Some(expected_format));
        assert!(report.tables.len() >= 10, "{:?}", report.tables);
        assert!(report.sequences.iter().all(|s| s.ok) && !report.sequences.is_empty());
        let posts = report
            .tables
            .iter()
            .find(|t| t.name == "public.posts")
            .unwrap();
        assert!(posts.db_rows.unwrap() > 1000);
        posts_rows.push(posts.db_rows);
        if f.format == dvault_sim::Format::Sql {
            assert!(!report.uploads.checked);
        } else {
            assert!(report.uploads.checked);
            assert!(report.uploads.sha1_verified >= 30, "{:?}", report.uploads);
            assert!(report.uploads.problems.is_empty());
        }
        let info = report.temp_cluster.as_ref().unwrap();
        assert!(!info.data_dir.exists());
    }
    // All three formats restore the same database.
    assert!(
        posts_rows.windows(2).all(|w| w[0] == w[1]),
        "{posts_rows:?}"
    );
}
