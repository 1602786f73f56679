//! Day 0's site and people: the applied migrations, the site settings, and every user with
//! their e-mail, profile and statistics.

use std::collections::BTreeSet;

use anyhow::Result;
use rand::Rng;

use super::History;
use crate::copy::Row;
use crate::forum::rows::*;
use crate::forum::*;

impl Forum {
    /// `schema_migrations`: Discourse has thousands; invent the older ones (from the planning
    /// stream) around the base list.
    pub(super) fn load_schema_migrations(
        &mut self,
        h: &mut History,
        ld: &mut Loader,
    ) -> Result<()> {
        let mut versions: BTreeSet<String> = schema::BASE_MIGRATIONS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let newest: String = schema::BASE_MIGRATIONS
            .last()
            .copied()
            .unwrap_or("0")
            .into();
        while versions.len() < 1200 {
            let y = h.plan.random_range(2013..2025);
            let v = format!(
                "{y}{:02}{:02}{:02}{:02}{:02}",
                h.plan.random_range(1..13),
                h.plan.random_range(1..29),
                h.plan.random_range(0..24),
                h.plan.random_range(0..60),
                h.plan.random_range(0..60)
            );
            if v < newest {
                versions.insert(v);
            }
        }
        ld.copy("schema_migrations (version)")?;
        for v in &versions {
            Row::new(&mut ld.buf).s(v).end();
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        self.migrations = versions.into_iter().collect();
        Ok(())
    }

    /// Every user: `users`, `user_emails`, `user_profiles` and `user_stats`, the counters
    /// agreeing with the planned posts and likes.
    pub(super) fn load_users(&mut self, h: &mut History, ld: &mut Loader) -> Result<()> {
        let n_users = h.n_users;
        // Per-user aggregates for users and user_stats.
        let mut post_count = vec![0u32; n_users as usize + 1];
        let mut topic_count = vec![0u32; n_users as usize + 1];
        let mut first_post = vec![None::<i64>; n_users as usize + 1];
        let mut last_post = vec![None::<i64>; n_users as usize + 1];
        let mut likes_received = vec![0u32; n_users as usize + 1];
        for (i, p) in self.posts.iter().enumerate() {
            let u = p.user_id as usize;
            post_count[u] += 1;
            if p.post_number == 1 {
                topic_count[u] += 1;
            }
            let at = h.post_created[i];
            first_post[u] = Some(first_post[u].map_or(at, |f: i64| f.min(at)));
            last_post[u] = Some(last_post[u].map_or(at, |f: i64| f.max(at)));
            likes_received[u] += h.like_counts[i];
        }

        ld.copy(USER_COLUMNS)?;
        for id in 1..=n_users {
            let created = h.user_created(id);
            let seen = (last_post[id as usize].unwrap_or(created)
                + h.rows.random_range(0..20 * MICROS_PER_DAY))
            .min(h.now - 60_000_000);
            self.user_row(
                &mut ld.buf,
                &mut h.rows,
                id,
                created,
                seen,
                last_post[id as usize],
            );
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy(USER_EMAIL_COLUMNS)?;
        for id in 1..=n_users {
            self.email_row(&mut ld.buf, id, h.user_created(id));
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy(USER_PROFILE_COLUMNS)?;
        for id in 1..=n_users {
            profile_row(&mut ld.buf, &mut h.rows, id);
            ld.maybe_flush()?;
        }
        ld.end_copy()?;
        ld.copy(USER_STATS_COLUMNS)?;
        for id in 1..=n_users {
            let u = id as usize;
            let created = h.user_created(id);
            Row::new(&mut ld.buf)
                .n(id)
                .n(h.rows.random_range(0..400u32) + topic_count[u] * 3)
                .n(h.rows.random_range(0..200_000u32))
                .n(h.rows.random_range(1..300u32))
                .n(h.rows.random_range(0..5_000u32) + post_count[u] * 4)
                .n(h.rows.random_range(0..40u32))
                .n(likes_received[u])
                .ts(created)
                .ots(first_post[u])
                .n(post_count[u])
                .n(topic_count[u])
                .ts(created)
                .ts(created)
                .n(h.rows.random_range(0..20u32))
                .n(0)
                .end();
            ld.maybe_flush()?;
        }
        ld.end_copy()
    }
}

/// `site_settings`: the simulated settings, one created per day from the forum's opening.
pub(super) fn load_site_settings(h: &History, ld: &mut Loader) -> Result<()> {
    ld.copy("site_settings (id, name, data_type, value, created_at, updated_at)")?;
    for (i, (name, ty, value)) in SITE_SETTINGS.iter().enumerate() {
        let t = h.start + (i as i64) * MICROS_PER_DAY;
        Row::new(&mut ld.buf)
            .n(i + 1)
            .s(name)
            .n(ty)
            .s(value)
            .ts(t)
            .ts(t)
            .end();
    }
    ld.end_copy()
}
