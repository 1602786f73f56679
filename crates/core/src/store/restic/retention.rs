//! Which snapshots a retention rule keeps: restic's keep rules, with two choices of dvault's.
//!
//! 1. **Groups.** Rules count within one site: the site name of the config file recorded in the
//!    snapshot (`BackupMeta::site`, what `dvault run` and a command given `--site` store), else,
//!    for snapshots written without one, the site title of the Discourse file name (see
//!    [`group`]). rustic_core's `KeepOptions` group by host, paths or tags, none of which holds
//!    the site, so the groups are made here.
//! 2. **The most complete backup of a period.** A forum may leave several backups on one day: a
//!    `.tar.gz` with uploads, a `.tar`, a database-only `.sql.gz` made by hand. restic keeps the
//!    newest snapshot of each day, week, month or year, which can be the database-only one while
//!    the full backups are deleted. Here each period keeps its most complete snapshot
//!    ([`completeness`]: with uploads before unknown before database-only), the newest among
//!    equals. rustic_core's `KeepOptions::apply` always takes the newest of a period and sorts the
//!    list itself, so no pre-sorting can change its choice; the rules are therefore applied here,
//!    with restic's meaning otherwise: `keep_last` the N newest snapshots, `keep_daily` (weekly by
//!    ISO week, monthly, yearly) one snapshot in each of the N newest periods that have
//!    snapshots, `keep_within` every snapshot younger than the span counted back from the
//!    group's newest snapshot. The decision says when a period kept a snapshot that is not its
//!    newest, and a removed snapshot says which more complete one its period keeps, so that
//!    `forget --dry-run` shows the choice.

use std::collections::BTreeMap;

use rustic_core::repofile::SnapshotFile;

use crate::retention::Retention;
use crate::snapshot::{BackupMeta, Format};

/// How complete a backup is, for choosing within a period: 2 with uploads, 1 unknown (a `.tar`
/// or `.tar.gz` stored before dvault counted uploads), 0 database only.
pub(crate) fn completeness(meta: &BackupMeta) -> u8 {
    match (meta.uploads, meta.format) {
        (Some(n), _) if n > 0 => 2,
        (Some(_), _) | (None, Format::SqlGz) => 0,
        (None, _) => 1,
    }
}

/// The words for a completeness, for messages.
pub(crate) fn completeness_text(meta: &BackupMeta) -> String {
    match (meta.uploads, completeness(meta)) {
        (Some(n), 2) => format!("with {n} uploads"),
        (_, 1) => "uploads not counted".to_string(),
        _ => "database only".to_string(),
    }
}

/// The group retention counts a snapshot in: `site:NAME` for the config's site name, else the
/// site title of its Discourse name, read again by [`crate::discourse`] so that snapshots
/// recorded before a name form was understood group right too. Admin-chosen names (`discourse
/// backup NAME`) form a group of their own, apart from the daily backups even of a site whose
/// title is empty (a parameterized title never holds spaces or parentheses); other files share
/// the group `""` with empty titles.
pub(crate) fn group(meta: &BackupMeta) -> String {
    if let Some(site) = &meta.site {
        return format!("site:{site}");
    }
    match crate::discourse::BackupName::parse(&meta.file_name) {
        Some(n) if n.chosen => "(admin-chosen names)".into(),
        Some(n) => n.title,
        None => String::new(),
    }
}

/// One snapshot's decision within its group.
#[derive(Debug)]
pub(crate) struct Decision {
    pub snapshot: SnapshotFile,
    pub keep: bool,
    pub reasons: Vec<String>,
    pub note: Option<String>,
}

/// Applies `rules` to the snapshots of one group (any order); `meta` reads a snapshot's record.
/// The rule's `only_site`, `forget` and `prune` are the caller's business.
pub(crate) fn apply(
    rules: &Retention,
    mut snaps: Vec<SnapshotFile>,
    meta: impl Fn(&SnapshotFile) -> Option<BackupMeta>,
) -> Vec<Decision> {
    if snaps.is_empty() {
        return Vec::new();
    }
    // Newest first, as restic walks them; ties by id so that the result is stable.
    snaps.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let metas: Vec<Option<BackupMeta>> = snaps.iter().map(&meta).collect();
    let rank = |i: usize| metas[i].as_ref().map_or(1, completeness);
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); snaps.len()];
    // Why a kept snapshot was chosen over its period's newest; why a removed one was not.
    let mut kept_notes: Vec<Option<String>> = vec![None; snaps.len()];
    let mut removed_notes: Vec<Option<String>> = vec![None; snaps.len()];
    let count = |n: Option<u32>| n.unwrap_or(0);
    for r in reasons.iter_mut().take(count(rules.keep_last) as usize) {
        r.push("last".into());
    }
    if let (Some(within), Some(newest)) = (&rules.keep_within, snaps.first()) {
        let (span, newest) = (within.span(), newest.time.clone());
        for (i, s) in snaps.iter().enumerate() {
            if s.time.saturating_add(span) > newest {
                reasons[i].push("within".into());
            }
        }
    }
    type Period = fn(&jiff::Zoned) -> (i16, i16);
    let periods: [(u32, &str, Period); 4] = [
        (count(rules.keep_daily), "daily", |t| {
            (t.year(), t.day_of_year())
        }),
        (count(rules.keep_weekly), "weekly", |t| {
            let w = t.date().iso_week_date();
            (w.year(), i16::from(w.week()))
        }),
        (count(rules.keep_monthly), "monthly", |t| {
            (t.year(), i16::from(t.month()))
        }),
        (count(rules.keep_yearly), "yearly", |t| (t.year(), 0)),
    ];
    for (count, name, period) in periods {
        if count == 0 {
            continue;
        }
        // Periods in the order they appear (newest first), each with its snapshots.
        let mut order: Vec<(i16, i16)> = Vec::new();
        let mut members: BTreeMap<(i16, i16), Vec<usize>> = BTreeMap::new();
        for (i, s) in snaps.iter().enumerate() {
            let p = period(&s.time);
            if !members.contains_key(&p) {
                order.push(p);
            }
            members.entry(p).or_default().push(i);
        }
        let periods_found = order.len();
        for p in order.into_iter().take(count as usize) {
            let idx = &members[&p];
            // The most complete; among equals the newest (the first, as they are newest first).
            let best = idx
                .iter()
                .copied()
                .max_by(|&a, &b| rank(a).cmp(&rank(b)).then(b.cmp(&a)))
                .unwrap_or(idx[0]);
            reasons[best].push(name.to_string());
            if best != idx[0] {
                let what = metas[best].as_ref().map_or_else(String::new, |m| {
                    format!("{} ({})", m.file_name, completeness_text(m))
                });
                kept_notes[best].get_or_insert_with(|| {
                    format!("the most complete backup of its {name} period")
                });
                for &i in idx.iter().filter(|&&i| i != best && rank(i) < rank(best)) {
                    removed_notes[i].get_or_insert_with(|| {
                        format!("its {name} period keeps the more complete {what}")
                    });
                }
            }
        }
        // As restic (0.17) and rustic_core do: a count larger than the periods found also
        // keeps the oldest snapshot.
        let oldest = snaps.len() - 1;
        if count as usize > periods_found && !reasons[oldest].iter().any(|r| r == name) {
            reasons[oldest].push(name.to_string());
        }
    }
    snaps
        .into_iter()
        .zip(reasons)
        .zip(kept_notes.into_iter().zip(removed_notes))
        .map(|((snapshot, reasons), (kept, removed))| {
            let keep = !reasons.is_empty();
            Decision {
                keep,
                snapshot,
                reasons,
                note: if keep { kept } else { removed },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_groups_by_the_title_of_every_name_form() {
        let group = |name: &str| {
            group(&BackupMeta {
                file_name: name.into(),
                size: 0,
                sha256: String::new(),
                format: Format::from_file_name(name),
                // A record written before the name form was understood: not consulted.
                discourse: crate::snapshot::DiscourseName::default(),
                host: String::new(),
                source: String::new(),
                site: None,
                uploads: None,
                peel: None,
            })
        };
        assert_eq!(
            group("my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar"),
            "my-forum"
        );
        assert_eq!(
            group("my-forum-2024-03-01-033012-v20240220010101.tar.gz"),
            "my-forum"
        );
        assert_eq!(group("-2019-01-02-030405-v20190101000000.tar.gz"), "");
        assert_eq!(
            group("before-upgrade-v20240220010101.tar.gz"),
            "(admin-chosen names)"
        );
    }

    fn meta(file: &str, uploads: Option<u64>) -> BackupMeta {
        BackupMeta {
            file_name: file.into(),
            size: 0,
            sha256: String::new(),
            format: Format::from_file_name(file),
            discourse: crate::snapshot::DiscourseName::default(),
            host: String::new(),
            source: String::new(),
            site: Some("forum".into()),
            uploads,
            peel: None,
        }
    }

    /// Snapshots at `time` (UTC) whose label is the file name; `uploads` per file.
    fn decide(
        rules: &Retention,
        snaps: &[(&str, &str, Option<u64>)],
    ) -> Vec<(String, bool, String)> {
        let files: Vec<SnapshotFile> = snaps
            .iter()
            .map(|(time, file, _)| SnapshotFile {
                time: time
                    .parse::<jiff::Timestamp>()
                    .unwrap()
                    .to_zoned(jiff::tz::TimeZone::UTC),
                label: (*file).to_string(),
                ..SnapshotFile::default()
            })
            .collect();
        let metas: BTreeMap<String, BackupMeta> = snaps
            .iter()
            .map(|(_, f, u)| ((*f).to_string(), meta(f, *u)))
            .collect();
        let mut out: Vec<_> = apply(rules, files, |s| metas.get(&s.label).cloned())
            .into_iter()
            .map(|d| {
                (
                    d.snapshot.label.clone(),
                    d.keep,
                    d.reasons.join(",") + "|" + d.note.as_deref().unwrap_or(""),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_day_keeps_its_backup_with_uploads_over_a_newer_database_only_one() {
        let rules = Retention {
            keep_daily: Some(1),
            ..Retention::default()
        };
        let d = decide(
            &rules,
            &[
                ("2026-01-03T03:30:00Z", "a.tar.gz", Some(12)),
                ("2026-01-03T09:00:00Z", "b.tar", Some(0)),
                ("2026-01-03T15:30:00Z", "c.sql.gz", Some(0)),
            ],
        );
        assert_eq!(
            d,
            [
                (
                    "a.tar.gz".into(),
                    true,
                    "daily|the most complete backup of its daily period".into()
                ),
                (
                    "b.tar".into(),
                    false,
                    "|its daily period keeps the more complete a.tar.gz (with 12 uploads)".into()
                ),
                (
                    "c.sql.gz".into(),
                    false,
                    "|its daily period keeps the more complete a.tar.gz (with 12 uploads)".into()
                ),
            ]
        );
    }

    #[test]
    fn among_equals_the_newest_is_kept_as_restic_does() {
        let rules = Retention {
            keep_daily: Some(2),
            ..Retention::default()
        };
        let d = decide(
            &rules,
            &[
                ("2026-01-01T03:30:00Z", "1.tar.gz", Some(3)),
                ("2026-01-02T03:30:00Z", "2a.tar.gz", Some(3)),
                ("2026-01-02T04:30:00Z", "2b.tar.gz", Some(3)),
                ("2026-01-03T03:30:00Z", "3.tar.gz", Some(3)),
            ],
        );
        let kept: Vec<&str> = d.iter().filter(|x| x.1).map(|x| x.0.as_str()).collect();
        assert_eq!(kept, ["2b.tar.gz", "3.tar.gz"]);
        assert!(d.iter().all(|x| !x.2.contains("complete")), "{d:?}");
    }

    #[test]
    fn last_within_and_a_count_beyond_the_periods_have_restics_meaning() {
        let snaps = [
            ("2024-03-08T03:30:00Z", "1.tar.gz", Some(3)),
            ("2024-03-09T03:30:00Z", "2.sql.gz", Some(0)),
            ("2024-03-10T03:30:00Z", "3.tar", Some(3)),
        ];
        let kept = |rules: Retention| -> Vec<String> {
            decide(&rules, &snaps)
                .into_iter()
                .filter(|x| x.1)
                .map(|x| x.0)
                .collect()
        };
        assert_eq!(
            kept(Retention {
                keep_last: Some(2),
                ..Retention::default()
            }),
            ["2.sql.gz", "3.tar"]
        );
        // One year found, five asked for: the oldest snapshot is kept too (restic 0.17).
        assert_eq!(
            kept(Retention {
                keep_yearly: Some(5),
                ..Retention::default()
            }),
            ["1.tar.gz", "3.tar"]
        );
        // Within 36 hours of the newest snapshot.
        assert_eq!(
            kept(Retention {
                keep_within: Some("36h".parse().unwrap()),
                ..Retention::default()
            }),
            ["2.sql.gz", "3.tar"]
        );
    }
}
