//! What changes in old content during the day: posts are edited and a few soft-deleted, the
//! day's notifications arrive and are read, now and then a site setting changes, and once a
//! week a Discourse upgrade adds a migration.

use std::collections::BTreeSet;

use anyhow::Result;
use rand::Rng;

use super::{Active, Day};
use crate::copy::{lit, timestamp};
use crate::forum::rows::*;
use crate::forum::*;

impl Forum {
    /// Edits (0.15 % × churn of the posts, mostly recent ones, each at most once): a new
    /// version of the raw and cooked text and a `post_revisions` row.
    pub(super) fn edit_posts(&mut self, d: &mut Day) -> Result<()> {
        let n_posts_now = self.posts.len() as u32;
        let mut edited = BTreeSet::new();
        for _ in 0..count(n_posts_now, 0.0015, self.opts.churn) {
            let post = recent(&mut d.rng, n_posts_now);
            if self.posts[post as usize - 1].deleted || !edited.insert(post) {
                continue;
            }
        }
        let mut revisions = String::new();
        for &post in &edited {
            let when = d.at();
            let (user, version) = {
                let p = &mut self.posts[post as usize - 1];
                p.version += 1;
                (p.user_id, p.version)
            };
            let body = self.post_body(post, version);
            d.ld.sql(&format!(
                "UPDATE posts SET raw = {}, cooked = {}, updated_at = '{2}', last_version_at = '{2}', \
                 baked_at = '{2}', version = {3}, public_version = {3}, word_count = {4}, \
                 last_editor_id = {5}, self_edits = self_edits + 1 WHERE id = {post};\n",
                lit(&body.raw),
                lit(&body.cooked),
                timestamp(when),
                version,
                body.words,
                user
            ))?;
            revisions.push_str(&self.revision_row(post, user, version, when));
            self.next_revision += 1;
            d.stats.edits += 1;
        }
        d.ld.copy(REVISION_COLUMNS)?;
        d.ld.sql(&revisions)?;
        d.ld.end_copy()
    }

    /// Soft deletions (0.03 % × churn of the posts; never a topic's first post).
    pub(super) fn delete_posts(&mut self, d: &mut Day) -> Result<()> {
        let n_posts_now = self.posts.len() as u32;
        let mut deleted = Vec::new();
        for _ in 0..count(n_posts_now, 0.0003, self.opts.churn) {
            let post = recent(&mut d.rng, n_posts_now);
            let p = &mut self.posts[post as usize - 1];
            if p.deleted || p.post_number == 1 {
                continue;
            }
            p.deleted = true;
            deleted.push(post);
        }
        d.stats.deletions = deleted.len() as u32;
        if deleted.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = deleted.iter().map(|p| p.to_string()).collect();
        d.ld.sql(&format!(
            "UPDATE posts SET deleted_at = '{}', deleted_by_id = 1 WHERE id IN ({});\n",
            timestamp(d.t0 + d.span / 2),
            ids.join(",")
        ))
    }

    /// Notifications: today's new ones (and the day's `user_actions`) are copied in, active
    /// users read theirs, and as many old read ones as half of today's new ones are purged.
    pub(super) fn deliver_notifications(&mut self, d: &mut Day, active: &Active) -> Result<()> {
        d.ld.copy(NOTIFICATION_COLUMNS)?;
        let new_notes = d.notes.lines().count();
        d.ld.sql(&d.notes)?;
        d.ld.end_copy()?;
        d.ld.copy(USER_ACTION_COLUMNS)?;
        d.ld.sql(&d.actions)?;
        d.ld.end_copy()?;
        let readers: Vec<String> = active.keys().map(|u| u.to_string()).collect();
        d.ld.sql(&format!(
            "UPDATE notifications SET read = true WHERE NOT read AND user_id IN ({});\n\
             DELETE FROM notifications WHERE id IN (SELECT id FROM notifications WHERE read ORDER BY id LIMIT {});\n",
            readers.join(","),
            new_notes / 2
        ))
    }

    /// One day in four an admin changes a site setting.
    pub(super) fn maybe_change_a_setting(&mut self, d: &mut Day) -> Result<()> {
        if !d.rng.random_ratio(1, 4) {
            return Ok(());
        }
        let (name, _, _) = SITE_SETTINGS[d.rng.random_range(0..SITE_SETTINGS.len())];
        let value = d.rng.random_range(1..100u32).to_string();
        let when = d.at();
        d.ld.sql(&format!(
            "UPDATE site_settings SET value = {}, updated_at = '{}' WHERE name = {};\n",
            lit(&value),
            timestamp(when),
            lit(name)
        ))
    }

    /// Every seventh day a Discourse upgrade adds a migration (dated the day before), so the
    /// `-v<migration>` of backup names moves on.
    pub(super) fn add_a_migration_weekly(&mut self, d: &mut Day) -> Result<()> {
        if !d.n.is_multiple_of(7) {
            return Ok(());
        }
        let (y, m, day) = crate::copy::civil_from_days(self.midnight(d.n) / MICROS_PER_DAY - 1);
        let v = format!(
            "{y:04}{m:02}{day:02}{:06}",
            d.rng.random_range(0..235_959u32)
        );
        d.ld.sql(&format!(
            "INSERT INTO schema_migrations (version) VALUES ({});\n",
            lit(&v)
        ))?;
        self.migrations.push(v);
        self.migrations.sort();
        Ok(())
    }
}
