//! Columns that Discourse writes together, kept in one column file.
//!
//! One file per column keeps a hot counter from rewriting a table's other columns, but when
//! several narrow columns change in the same rows every time (an edit sets a post's `raw`,
//! `cooked`, `updated_at`, `version`, `word_count`, …), each of their files has a rewritten
//! chunk for every changed row: a few timestamps cost a whole chunk each. Side by side in one
//! file, those values change in one place. Which columns change together cannot be seen in a
//! single dump, so it is written down here from what Discourse writes for its everyday events
//! (files and methods of discourse/discourse named per group; a group may span several
//! statements of one event: a daily backup sees them all change in the same rows). A name missing from a dump is skipped, so another
//! Discourse version or a plugin's schema only loses the gain, never exactness.

/// A table (without schema) and column groups: the columns of each group go into one file.
type Groups = (&'static str, &'static [&'static [&'static str]]);

/// The groups, per table: only those that paid when measured (docs/layout.md). Tried and
/// left out: a visit's `users.last_seen_at`/`previous_visit_at` and a day's reading counters
/// in `user_stats` (no gain: those small, hot files change in every chunk either way), and a
/// reply's `topics` counters and times (50 KiB a day worse: the mixed values compress worse
/// than each column alone).
const TOGETHER: &[Groups] = &[
    // An edit: one save in `PostRevisor#update_post` (lib/post_revisor.rb) with the revision's
    // bookkeeping, `cooked`/`baked_*` from `Post`'s before_save, `updated_at` from Rails.
    (
        "posts",
        &[&[
            "raw",
            "cooked",
            "updated_at",
            "last_version_at",
            "baked_at",
            "baked_version",
            "version",
            "public_version",
            "word_count",
            "last_editor_id",
            "self_edits",
            "edit_reason",
            "quote_count",
        ]],
    ),
    // Reading a topic: `TopicUser.update_last_read` (one UPDATE; `highest_seen_post_number`
    // in older versions) and `TopicUser.track_visit!` (app/models/topic_user.rb).
    (
        "topic_users",
        &[&[
            "last_read_post_number",
            "highest_seen_post_number",
            "last_visited_at",
            "total_msecs_viewed",
        ]],
    ),
];

/// The groups of `table` (schema-qualified or not) as indices into `columns` (the block's
/// column names, in field order). Groups with fewer than two of their columns present are left
/// out.
pub(crate) fn together(table: &str, columns: &[&str]) -> Vec<Vec<usize>> {
    let bare = table.rsplit_once('.').map_or(table, |(_, t)| t);
    let bare = bare.trim_matches('"');
    let Some((_, groups)) = TOGETHER.iter().find(|(t, _)| *t == bare) else {
        return Vec::new();
    };
    groups
        .iter()
        .map(|g| {
            let mut idx: Vec<usize> = columns
                .iter()
                .enumerate()
                .filter(|(_, c)| g.contains(&c.trim_matches('"')))
                .map(|(k, _)| k)
                .collect();
            idx.sort_unstable();
            idx
        })
        .filter(|idx| idx.len() > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::together;

    #[test]
    fn groups_name_present_columns_by_index_whatever_the_schema() {
        let cols = ["id", "raw", "like_count", "cooked", "updated_at", "reads"];
        assert_eq!(together("public.posts", &cols), vec![vec![1, 3, 4]]);
        assert_eq!(together("posts", &cols), vec![vec![1, 3, 4]]);
        assert!(together("public.post_actions", &cols).is_empty());
        // One column of a group present: nothing to keep together.
        assert!(together("public.topic_users", &["id", "last_visited_at"]).is_empty());
    }
}
